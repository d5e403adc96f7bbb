"""Processes under torchrun: one per device (NCCL on CUDA, gloo on CPU), the rank each one is, and
the collectives the training loop needs (a barrier, rank 0's choice, "does any rank want to stop")."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch


@dataclass
class Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self):
        if self.world > 1:
            torch.distributed.barrier()

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if self.world <= 1:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when it is true on any: every rank takes the same branch, so no rank
        waits in a collective the others never enter (a Ctrl-C reaching one rank first, say)."""
        if self.world <= 1:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item() > 0)


def init_distributed(device_spec: str) -> tuple[Dist, torch.device]:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK: then one process per device, NCCL on CUDA, gloo on CPU."""
    from cyclegan_cli.device import pick_device

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), pick_device(device_spec)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device_spec in ("auto", "cuda") and torch.cuda.is_available():
        torch.cuda.set_device(local)
        device, backend = torch.device("cuda", local), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend=backend)
    return Dist(rank, world), device


def start_process(o, cb) -> tuple["Dist", torch.device]:
    """What every kind of training does first (``o``: its options): DDP (under torchrun) and the
    device, a notice when no GPU was found, determinism, and seeds (offset by rank so ranks draw
    different noise)."""
    from cyclegan_cli.device import seed_everything, set_deterministic

    dist, dev = init_distributed(o.device)
    if dev.type == "cpu" and dist.main and o.device == "auto":  # not when --device cpu asked for it
        preset = getattr(o, "preset", None)  # distill's student has no preset
        # the hint only where it helps (distill's options carry an ngf its student does not use)
        big = o.size >= 128 or (getattr(o, "uses_ngf", True) and o.ngf >= 64)
        if preset == "cpu":
            hint = " with --preset cpu"
        elif preset is not None and big:
            hint = " with the official settings (slow here; --preset cpu is the project's CPU recipe)"
        else:
            hint = f" (slow at this size; see {getattr(o, 'cpu_knobs', '--size and --ngf')})" if big else ""
        cb.on_notice("no GPU found: training on the CPU" + hint)
    set_deterministic(o.deterministic)
    seed_everything(o.seed + dist.rank)
    return dist, dev


def wrap_ddp(module: torch.nn.Module, dist: Dist, device: torch.device):
    if dist.world <= 1:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return DDP(module, device_ids=ids)  # buffers broadcast from rank 0 each forward (the default)


def end_process(dist: Dist) -> None:
    """gloo aborts the process ("terminate called without an active exception") when its threads
    are still up at interpreter exit; a barrier first, so that no rank tears its group down while
    the other is still in a collective (after an exception, skip it)."""
    if dist.world <= 1 or not torch.distributed.is_initialized():
        return
    if sys.exc_info()[0] is None:
        try:
            torch.distributed.barrier()
        except Exception:
            pass
    torch.distributed.destroy_process_group()
