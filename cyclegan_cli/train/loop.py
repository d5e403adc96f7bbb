"""The training machinery both model kinds share: run folders, data order, the step loop,
stats.jsonl, sample grids, checkpoints (last K kept), exact resume, signals and DDP.

A *task* (CycleGAN or DCGAN) supplies the networks and one training step; :func:`fit` does
everything else and reports through callbacks, never printing.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from cyclegan_cli.errors import Interrupted, UsageError
from cyclegan_cli.train.options import LENGTH_OPTIONS


# ---------------------------------------------------------------------------------------------
# callbacks


@dataclass
class Callbacks:
    on_start: Callable[[dict], None] = lambda info: None  # run folder, resumed step, total steps, device
    on_step: Callable[[int, int, dict], None] = lambda step, total, stats: None  # every log interval
    on_sample: Callable[[Path], None] = lambda path: None
    on_checkpoint: Callable[[Path], None] = lambda path: None
    on_notice: Callable[[str], None] = lambda msg: None
    on_tick: Callable[[int, int], None] = lambda step, total: None  # every step, without syncing the device


# ---------------------------------------------------------------------------------------------
# distributed


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


def start_process(device_spec: str, seed: int, deterministic: bool, cb: "Callbacks") -> tuple["Dist", torch.device]:
    """What every kind of training does first: DDP (under torchrun) and the device, a notice when
    there is no GPU, determinism, and seeds (offset by rank so ranks draw different noise)."""
    from cyclegan_cli.device import seed_everything, set_deterministic

    dist, dev = init_distributed(device_spec)
    if dev.type == "cpu" and dist.main:
        cb.on_notice("no GPU found: training on the CPU (slow at full size; see --size and --ngf)")
    set_deterministic(deterministic)
    seed_everything(seed + dist.rank)
    return dist, dev


def wrap_ddp(module: torch.nn.Module, dist: Dist, device: torch.device):
    if dist.world <= 1:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return DDP(module, device_ids=ids)  # buffers broadcast from rank 0 each forward (the default)


# ---------------------------------------------------------------------------------------------
# run folders


def next_run_name(runs_dir: Path, kind: str) -> str:
    n = 0
    if runs_dir.is_dir():
        for d in runs_dir.iterdir():
            if d.name.startswith(kind + "-") and d.name[len(kind) + 1:].isdigit():
                n = max(n, int(d.name[len(kind) + 1:]))
    return f"{kind}-{n + 1:03d}"


def schedule_length(max_steps: int | None, steps_per_epoch: int, epochs: int, decay_epochs: int) -> int:
    """How many steps a run takes: ``max_steps``, which may not pass the end of the learning-rate
    schedule (the rate would be zero, or negative), or the whole schedule."""
    schedule = steps_per_epoch * (epochs + decay_epochs)
    if max_steps and max_steps > schedule:
        raise UsageError(f"--max-steps {max_steps} is past the end of the learning-rate schedule ({schedule} steps "
                         f"= {epochs} + {decay_epochs} epochs of {steps_per_epoch}); to train longer, raise --epochs "
                         "and/or --decay-epochs (a resumed run may change them)")
    return max_steps or schedule


def prepare_run(runs_dir: Path, name: str | None, kind: str, options, saved: dict, main: bool = True,
                dist: "Dist | None" = None) -> tuple[Path, bool]:
    """(run folder, resuming?). An existing run with the same name resumes when its kind matches and
    its fixed options (``options``, resolved) are the same; ``saved`` is what options.json holds."""
    from cyclegan_cli.zoo.runs import OPTIONS_FILE, checkpoint_steps, read_options

    from cyclegan_cli.zoo.names import check_free_user_name, check_name

    runs_dir = Path(runs_dir)
    name = check_name(name, "--name") if name else next_run_name(runs_dir, kind)
    if dist is not None:
        name = dist.broadcast(name)  # rank 0 chooses; other ranks would count the folders at another moment
        if not dist.main:
            return runs_dir / name, None  # rank 0 checks and creates the folder (callers then wait at a barrier)
    run_dir = runs_dir / name
    if (run_dir / OPTIONS_FILE).is_file():
        old = read_options(run_dir)
        if old.get("kind") != kind:
            raise UsageError(f"run {name} exists and is a {old.get('kind')} run; choose another --name")
        # how long to train may change on a resume; what the networks and data are may not
        changed = options.changes_from(type(options).from_saved(old).resolved())
        known = {f.name for f in fields(options)} | {"world_size", "name", "kind"}
        changed += [f"{k} {old[k]} -> {v}" for k, v in sorted(saved.items()) if k not in known and k in old and old[k] != v]
        if changed:
            raise UsageError(f"run {name} was started with other options ({', '.join(changed[:4])}); use --resume {name} "
                             "or another --name")
        length = {k: v for k, v in saved.items() if k in LENGTH_OPTIONS}
        done = checkpoint_steps(run_dir)
        if done and (length.get("max_steps") or done[-1]) < done[-1]:
            return run_dir, True  # already past it: fit() says so and trains nothing; the run keeps its length
        if main and any(old.get(k) != v for k, v in length.items()):
            _write_options(run_dir, {**old, **length})
        return run_dir, True
    if run_dir.exists() and any(run_dir.iterdir()):
        raise UsageError(f"{run_dir} exists and is not a ganctl run; choose another --name")
    check_free_user_name(name, "--name")  # a new run named like a zoo model would make --model NAME ambiguous
    if main:
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)
        (run_dir / "checkpoints").mkdir(exist_ok=True)
        _write_options(run_dir, {**saved, "name": name, "kind": kind})
    return run_dir, False


# how a run reports and keeps itself: free to change on a resume, remembered when not given
RUN_SETTINGS = {"log_every": 50, "sample_every": 500, "save_every": 1000, "keep_checkpoints": 3}


def run_settings(run_dir: Path, main: bool, **given: int | None) -> dict:
    """RUN_SETTINGS for this process: each given one (then saved with the run), else the saved one,
    else the default."""
    from cyclegan_cli.zoo.runs import read_options

    opts = read_options(run_dir)  # {} when unreadable
    out, changed = {}, {}
    for key, default in RUN_SETTINGS.items():
        value = given.get(key)
        if value is None:
            saved = opts.get(key)
            out[key] = saved if isinstance(saved, int) and not isinstance(saved, bool) and saved >= 1 else default
            continue
        if value < 1:
            flag = "--keep" if key == "keep_checkpoints" else "--" + key.replace("_", "-")
            raise UsageError(f"{flag} {value}: must be at least 1")
        out[key] = value
        if opts.get(key) != value:
            changed[key] = value
    if main and opts and changed:
        _write_options(run_dir, {**opts, **changed})
    return out


def _write_options(run_dir: Path, options: dict) -> None:
    from cyclegan_cli.files import atomic_write_bytes
    from cyclegan_cli.zoo.runs import OPTIONS_FILE

    text = json.dumps(options, indent=2, sort_keys=True, default=str) + "\n"
    atomic_write_bytes(run_dir / OPTIONS_FILE, text.encode())


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
# the loop


@dataclass
class LoopState:
    step: int = 0
    epoch: int = 0
    pos: int = 0  # batches of this epoch already done (per rank)


def _batches(task, epoch: int, dist: Dist, batch_size: int) -> list[list]:
    keys = task.epoch_keys(epoch)  # global order, the same on every rank
    per_rank = len(keys) // dist.world if dist.world > 1 else len(keys)
    mine = keys[dist.rank::dist.world][:per_rank] if dist.world > 1 else keys
    return [mine[i:i + batch_size] for i in range(0, len(mine), batch_size) if len(mine[i:i + batch_size]) == batch_size] \
        or [mine[:batch_size]]


def fit(task, *, run_dir: Path, max_steps: int, batch_size: int, log_every: int | None = None,
        sample_every: int | None = None, save_every: int | None = None, keep_checkpoints: int | None = None, workers: int | None = None, dist: Dist | None = None,
        device: torch.device = torch.device("cpu"), callbacks: Callbacks | None = None,
        evaluator: Callable[[Any], dict] | None = None, eval_every: int = 0) -> dict:
    """Run ``task`` until ``max_steps`` steps (counted from the run's start) and save a final checkpoint.

    Resumes from the run's latest checkpoint when there is one. Returns the final stats.
    ``log_every``, ``sample_every``, ``save_every``, ``keep_checkpoints``: None is what the run was
    last given (saved in its options), else RUN_SETTINGS; a resume that does not repeat ``--keep 40
    --save-every 250`` must not prune the run to 3 checkpoints or save four times less often.
    """
    from cyclegan_cli.checkpoints import load_resume, save_checkpoint
    from cyclegan_cli.zoo import runs as registry

    dist = dist or Dist()
    cb = callbacks or Callbacks()
    run_dir = Path(run_dir)
    settings = run_settings(run_dir, dist.main, log_every=log_every, sample_every=sample_every,
                            save_every=save_every, keep_checkpoints=keep_checkpoints)
    log_every, sample_every, save_every, keep_checkpoints = (
        settings[k] for k in ("log_every", "sample_every", "save_every", "keep_checkpoints"))
    state = LoopState()
    if dist.main and (run_dir / "checkpoints").is_dir():
        for leftover in (run_dir / "checkpoints").iterdir():  # a write that a kill interrupted
            if leftover.name.startswith("."):
                shutil.rmtree(leftover, ignore_errors=True)
    steps = registry.checkpoint_steps(run_dir)
    if steps:
        ckpt = registry.checkpoint_dir(run_dir, steps[-1])
        resume = load_resume(ckpt)
        if resume is None:
            raise UsageError(f"{ckpt} has no resume state; cannot continue this run")
        from cyclegan_cli.checkpoints import load_model

        loaded = load_model(ckpt)
        for name, net in task.nets.items():
            net.load_state_dict(loaded.nets[name].state_dict())
        if dist.world > 1 and not dist.main:  # each rank's own pools and random state
            resume = _load_rank_state(ckpt, dist.rank) or resume
        task.load_state_dict(resume["task"])
        state = LoopState(resume["step"], resume["epoch"], resume["pos"])
        set_rng_state(resume["rng"])
        cb.on_notice(f"resuming {run_dir.name} from step {state.step}")
        if state.step > max_steps:  # nothing to train, and nothing to save (the stats stay whole too)
            cb.on_notice(f"run {run_dir.name} is already at step {state.step:,}, past --max-steps {max_steps:,}: "
                         "nothing to train (a larger --max-steps continues it)")
            return {}
    if dist.main:
        _truncate_stats(run_dir / "stats.jsonl", state.step)
        if state.step:  # loss.png marks where a run was resumed
            with open(run_dir / "stats.jsonl", "a") as fh:
                fh.write(json.dumps({"step": state.step, "event": "resume"}) + "\n")
        registry.register(run_dir)
    cb.on_start({"run": str(run_dir), "step": state.step, "total": max_steps, "device": str(device),
                 "world": dist.world})

    stop = {"flag": False}
    old_handlers = {}

    def on_signal(signum, frame):
        stop["flag"] = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old_handlers[sig] = signal.signal(sig, on_signal)
        except ValueError:  # not in the main thread
            pass

    def save(step: int):
        target = registry.checkpoint_dir(run_dir, step)
        resume = {"step": state.step, "epoch": state.epoch, "pos": state.pos, "task": task.state_dict(),
                  "rng": rng_state()}
        if dist.main:
            save_checkpoint(target, task.config(), task.nets, resume=resume)
        dist.barrier()
        if not dist.main:  # the other ranks' pools and random state, beside rank 0's resume.pt
            _save_rank_state(target, dist.rank, resume)
        dist.barrier()
        if dist.main:
            steps = registry.checkpoint_steps(run_dir)
            keep = set(steps[-keep_checkpoints:])
            keep |= {registry.best_step(run_dir, m, steps) for m in ("kid", "fid")} - {None}  # RUN:best-kid stays
            for old in steps:
                if old not in keep:
                    shutil.rmtree(registry.checkpoint_dir(run_dir, old), ignore_errors=True)
            registry.register(run_dir)
            cb.on_checkpoint(target)

    def sample(step: int):
        if dist.main:
            path = run_dir / "samples" / f"step-{step:08d}.png"
            task.save_samples(path)
            from cyclegan_cli.train.plot import plot_losses

            plot_losses(run_dir / "stats.jsonl", run_dir / "loss.png")
            cb.on_sample(path)

    def evaluate(step: int):
        """Figures for this step's generator, then a checkpoint so RUN:best-kid can point at it.
        The random state is put back afterwards: evaluating never changes what training does."""
        saved = rng_state()
        figures = evaluator(task) if dist.main else {}
        set_rng_state(saved)
        if dist.main:
            with open(run_dir / "stats.jsonl", "a") as fh:
                fh.write(json.dumps({"step": step, "eval": figures}) + "\n")
            from cyclegan_cli.train.plot import plot_eval

            plot_eval(run_dir / "stats.jsonl", run_dir / "eval.png")
            cb.on_notice("eval at step {}: {}".format(step, ", ".join(f"{k} {v:.4g}" for k, v in figures.items())))
        if step % save_every != 0 and step < max_steps:
            save(step)

    sums: dict[str, torch.Tensor] = {}
    count, t_last = 0, time.perf_counter()
    last_stats: dict = {}
    if workers is None:  # on a CPU, loader processes would steal the cores the step needs
        workers = 0 if device.type == "cpu" else 4
    loader = _Loader(task, workers, device)
    try:
        while state.step < max_steps:
            batches = _batches(task, state.epoch, dist, batch_size)
            if state.pos >= len(batches):
                state.epoch, state.pos = state.epoch + 1, 0
                continue
            task.on_epoch(state.epoch)
            for batch in loader.iterate(state.epoch, batches[state.pos:]):
                losses = task.train_step(batch, state.step)
                state.step += 1
                state.pos += 1
                cb.on_tick(state.step, max_steps)
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0) + v.detach()
                count += 1
                if state.step % log_every == 0 or state.step == max_steps:
                    now = time.perf_counter()
                    last_stats = {"step": state.step, "epoch": state.epoch,
                                  "sec_per_it": round((now - t_last) / max(count, 1), 5),
                                  "lr": task.current_lr(), **{k: round(float(v) / count, 6) for k, v in sums.items()}}
                    sums, count, t_last = {}, 0, now
                    if dist.main:
                        with open(run_dir / "stats.jsonl", "a") as fh:
                            fh.write(json.dumps(last_stats) + "\n")
                    cb.on_step(state.step, max_steps, last_stats)
                if state.step % sample_every == 0:
                    sample(state.step)
                if evaluator is not None and eval_every and state.step % eval_every == 0:
                    evaluate(state.step)
                if state.step % save_every == 0 and state.step < max_steps:
                    save(state.step)
                if dist.any(stop["flag"], device):  # all ranks stop at the same step
                    save(state.step)
                    raise Interrupted(f"interrupted at step {state.step}; checkpoint saved, rerun to resume")
                if state.step >= max_steps:
                    break
            if state.pos >= len(batches):
                state.epoch, state.pos = state.epoch + 1, 0
        if not registry.checkpoint_steps(run_dir) or registry.checkpoint_steps(run_dir)[-1] != state.step:
            if state.step % sample_every != 0:
                sample(state.step)
            save(state.step)
        if dist.world > 1:
            _check_ranks_agree(task, dist)
    finally:
        for sig, h in old_handlers.items():
            signal.signal(sig, h)
        if dist.world > 1 and torch.distributed.is_initialized():
            # gloo aborts the process ("terminate called without an active exception") when its
            # threads are still up at interpreter exit; a barrier first, so that no rank tears its
            # group down while the other is still in a collective (after an exception, skip it)
            import sys

            if sys.exc_info()[0] is None:
                try:
                    torch.distributed.barrier()
                except Exception:
                    pass
            torch.distributed.destroy_process_group()
    return last_stats


def _rank_file(ckpt: Path, rank: int) -> Path:
    return Path(ckpt) / f"resume-rank{rank}.pt"


def _save_rank_state(ckpt: Path, rank: int, resume: dict) -> None:
    import io

    from cyclegan_cli.files import atomic_write_bytes

    buf = io.BytesIO()
    torch.save(resume, buf)
    atomic_write_bytes(_rank_file(ckpt, rank), buf.getvalue())


def _load_rank_state(ckpt: Path, rank: int) -> dict | None:
    from cyclegan_cli.checkpoints import load_resume

    return load_resume(ckpt, _rank_file(ckpt, rank).name)


def _check_ranks_agree(task, dist: Dist) -> None:
    """DDP keeps the replicas' parameters identical; verify it at the end (a cheap checksum per
    parameter), and with GANCTL_DDP_DUMP=DIR write each rank's weights there for inspection.
    Buffers are left out: batch norm's running statistics legitimately differ by rank (DDP hands
    rank 0's to the others before each forward pass; each rank's last pass updates its own)."""
    from cyclegan_cli.checkpoints import state_tensors

    params = [p for net in task.nets.values() for p in net.parameters()]
    total = torch.tensor([float(p.detach().double().sum()) for p in params], dtype=torch.float64)
    gathered = [torch.zeros_like(total) for _ in range(dist.world)]
    torch.distributed.all_gather(gathered, total)
    if any(not torch.equal(g, gathered[0]) for g in gathered):
        raise RuntimeError("DDP replicas diverged: ranks hold different weights")
    dump = os.environ.get("GANCTL_DDP_DUMP")
    if dump:
        from safetensors.torch import save_file

        Path(dump).mkdir(parents=True, exist_ok=True)
        save_file(state_tensors(task.nets), str(Path(dump) / f"rank{dist.rank}.safetensors"))


def _truncate_stats(file: Path, step: int) -> None:
    """After a resume, drop stats lines past the checkpoint (they will be written again)."""
    if not file.is_file():
        return
    keep = []
    for line in file.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except ValueError:
            pass
    from cyclegan_cli.files import atomic_write_bytes

    atomic_write_bytes(file, ("\n".join(keep) + "\n" if keep else "").encode())


class _EpochBatches:
    """The batch sampler of the one DataLoader a run keeps: it yields whatever batches the
    current epoch was given, so worker processes persist across epochs."""

    def __init__(self):
        self.batches: list = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


class _Loader:
    """One DataLoader for the whole run (persistent workers), fed each epoch's batches of keys."""

    def __init__(self, task, workers: int, device: torch.device):
        self.device = device
        self.sampler = _EpochBatches()
        self.loader = torch.utils.data.DataLoader(
            task.dataset, batch_sampler=self.sampler, num_workers=workers, persistent_workers=workers > 0,
            pin_memory=device.type == "cuda", prefetch_factor=4 if workers else None,
            multiprocessing_context="fork" if workers and os.name == "posix" else None,
        )

    def iterate(self, epoch: int, batches: list):
        if not batches:
            return iter(())
        self.sampler.batches = list(batches)
        return (self._to_device(b) for b in self.loader)

    def _to_device(self, batch):
        if isinstance(batch, (list, tuple)):
            return [t.to(self.device, non_blocking=True) for t in batch]
        return batch.to(self.device, non_blocking=True)


def train_task(kind: str, options, saved: dict, make_task, *, total: int, runs_dir, name, dist: Dist,
               device: torch.device, cb: Callbacks) -> Path:
    """What every trainer does once its data is read: the run folder made or checked (``saved``:
    what options.json holds besides the options), the task built by ``make_task(options, saved)``,
    then :func:`fit` over ``total`` steps, evaluating when the options ask for it; returns the run folder."""
    options = replace(options, max_steps=total)
    saved = {**options.saved(), **saved, "world_size": dist.world}
    run_dir, _ = prepare_run(Path(runs_dir), name, kind, options, saved, dist.main, dist)
    dist.barrier()
    saved["name"] = run_dir.name
    task = make_task(options, saved)
    evaluator, every = None, getattr(options, "eval_every", 0)
    if every:
        from cyclegan_cli.train.evaluation import evaluator_for

        evaluator = evaluator_for(task, every, options.eval_data, options.eval_metrics, options.eval_num,
                                  options.eval_features, dist, device)
    fit(task, run_dir=run_dir, max_steps=total, batch_size=options.batch_size, log_every=options.log_every,
        sample_every=options.sample_every, save_every=options.save_every, keep_checkpoints=options.keep_checkpoints,
        workers=options.workers, dist=dist, device=device, callbacks=cb, evaluator=evaluator, eval_every=every)
    return run_dir
