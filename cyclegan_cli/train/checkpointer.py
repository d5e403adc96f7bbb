"""Checkpoints of a run as training writes and reads them: each saved atomically with the resume
state (the loop's position, the task's optimizers and pools, every random generator), the other
DDP ranks' own state beside rank 0's, the last K kept; and, at the end of a DDP run, a check that
the replicas hold the same weights."""

from __future__ import annotations

import io
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cyclegan_cli.errors import UsageError
from cyclegan_cli.train.distributed import Dist
from cyclegan_cli.train.runfolder import RunFolder


@dataclass
class LoopState:
    step: int = 0
    epoch: int = 0
    pos: int = 0  # batches of this epoch already done (per rank)


# ---------------------------------------------------------------------------------------------
# RNG state (python, numpy, torch, CUDA) in a form torch.load(weights_only=True) accepts


def rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy(), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------------
# the checkpointer


class Checkpointer:
    """Saves and restores ``task`` (its nets, its own state) and the loop's position in ``run``."""

    def __init__(self, run: RunFolder, task, dist: Dist, keep: int):
        self.run, self.task, self.dist, self.keep = run, task, dist, keep

    def steps(self) -> list[int]:
        from cyclegan_cli.zoo.runs import checkpoint_steps

        return checkpoint_steps(self.run.path)

    def restore(self) -> LoopState | None:
        """The loop's position from the latest checkpoint, with the nets, the task's state and the
        random generators put back as they were then (each rank its own); None for a new run.
        What a killed trainer left of a checkpoint being written was removed when this process took
        the run (:func:`~cyclegan_cli.train.runfolder.hold_run`); nothing else is."""
        from cyclegan_cli.checkpoints import load_model, load_resume
        from cyclegan_cli.zoo.runs import checkpoint_dir

        steps = self.steps()
        if not steps:
            return None
        ckpt = checkpoint_dir(self.run.path, steps[-1])
        resume = load_resume(ckpt)
        if resume is None:
            raise UsageError(f"{ckpt} has no resume state; cannot continue this run")
        loaded = load_model(ckpt)
        for name, net in self.task.nets.items():
            net.load_state_dict(loaded.nets[name].state_dict())
        if self.dist.world > 1 and not self.dist.main:  # each rank's own pools and random state
            resume = load_resume(ckpt, _rank_file(ckpt, self.dist.rank).name) or resume
        self.task.load_state_dict(resume["task"])
        set_rng_state(resume["rng"])
        return LoopState(resume["step"], resume["epoch"], resume["pos"])

    def save(self, state: LoopState) -> Path:
        """A checkpoint at ``state.step`` (every rank takes part), then the older ones pruned."""
        from cyclegan_cli.checkpoints import save_checkpoint
        from cyclegan_cli.files import atomic_write_bytes
        from cyclegan_cli.zoo.runs import checkpoint_dir

        target = checkpoint_dir(self.run.path, state.step)
        resume = {"step": state.step, "epoch": state.epoch, "pos": state.pos, "task": self.task.state_dict(),
                  "rng": rng_state()}
        if self.dist.main:
            save_checkpoint(target, self.task.config(), self.task.nets, resume=resume)
        self.dist.barrier()
        if not self.dist.main:  # the other ranks' pools and random state, beside rank 0's resume.pt
            buf = io.BytesIO()
            torch.save(resume, buf)
            atomic_write_bytes(_rank_file(target, self.dist.rank), buf.getvalue())
        self.dist.barrier()
        if self.dist.main:
            self.run.prune(self.keep)
        return target

    def check_ranks_agree(self) -> None:
        """DDP keeps the replicas' parameters identical; verify it at the end (a cheap checksum per
        parameter), and with GANCTL_DDP_DUMP=DIR write each rank's weights there for inspection.
        Buffers are left out: batch norm's running statistics legitimately differ by rank (DDP hands
        rank 0's to the others before each forward pass; each rank's last pass updates its own)."""
        from cyclegan_cli.checkpoints import state_tensors

        params = [p for net in self.task.nets.values() for p in net.parameters()]
        total = torch.tensor([float(p.detach().double().sum()) for p in params], dtype=torch.float64)
        gathered = [torch.zeros_like(total) for _ in range(self.dist.world)]
        torch.distributed.all_gather(gathered, total)
        if any(not torch.equal(g, gathered[0]) for g in gathered):
            raise RuntimeError("DDP replicas diverged: ranks hold different weights")
        dump = os.environ.get("GANCTL_DDP_DUMP")
        if dump:
            from safetensors.torch import save_file

            Path(dump).mkdir(parents=True, exist_ok=True)
            save_file(state_tensors(self.task.nets), str(Path(dump) / f"rank{self.dist.rank}.safetensors"))


def _rank_file(ckpt: Path, rank: int) -> Path:
    return Path(ckpt) / f"resume-rank{rank}.pt"
