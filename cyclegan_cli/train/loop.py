"""The step loop every kind of training shares: data order, one task step at a time, stats and
sample grids on their intervals, evaluation, checkpoints, signals. The run folder
(:mod:`~cyclegan_cli.train.runfolder`) and the checkpointer (:mod:`~cyclegan_cli.train.checkpointer`)
keep the files; DDP lives in :mod:`~cyclegan_cli.train.distributed`.

A *task* (CycleGAN, CUT, pix2pix, DCGAN) supplies the networks and one training step; :func:`fit`
does everything else and reports through callbacks, never printing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch

from cyclegan_cli.errors import Interrupted
from cyclegan_cli.train.checkpointer import Checkpointer, LoopState, rng_state, set_rng_state
from cyclegan_cli.train.distributed import Dist, end_process
from cyclegan_cli.train.runfolder import RunFolder, hold_run, prepare_run, run_path, run_settings
from cyclegan_cli.train.tensorboard import open_events


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
    resume_command: Callable[[Path], str] = lambda run: ""  # what to type to carry on the run in this folder


def _batches(task, epoch: int, dist: Dist, batch_size: int) -> list[list]:
    keys = task.epoch_keys(epoch)  # global order, the same on every rank
    per_rank = len(keys) // dist.world if dist.world > 1 else len(keys)
    mine = keys[dist.rank::dist.world][:per_rank] if dist.world > 1 else keys
    return [mine[i:i + batch_size] for i in range(0, len(mine), batch_size) if len(mine[i:i + batch_size]) == batch_size] \
        or [mine[:batch_size]]


def fit(task, *, run_dir: Path, max_steps: int, batch_size: int, log_every: int | None = None,
        sample_every: int | None = None, save_every: int | None = None, keep_checkpoints: int | None = None,
        workers: int | None = None, dist: Dist | None = None, device: torch.device = torch.device("cpu"),
        callbacks: Callbacks | None = None, evaluator: Callable[[Any], dict] | None = None, eval_every: int = 0,
        tensorboard: bool = True) -> dict:
    """Run ``task`` until ``max_steps`` steps (counted from the run's start) and save a final checkpoint.

    Resumes from the run's latest checkpoint when there is one. Returns the final stats.
    ``tensorboard``: event files in the run folder too, where the package is installed.
    ``log_every``, ``sample_every``, ``save_every``, ``keep_checkpoints``: None is what the run was
    last given (saved in its options), else RUN_SETTINGS; a resume that does not repeat ``--keep 40
    --save-every 250`` must not prune the run to 3 checkpoints or save four times less often.
    """
    dist, cb = dist or Dist(), callbacks or Callbacks()
    run = RunFolder(run_dir, dist.main)
    every = run_settings(run.path, dist.main, log_every=log_every, sample_every=sample_every,
                         save_every=save_every, keep_checkpoints=keep_checkpoints)
    ckpt = Checkpointer(run, task, dist, every["keep_checkpoints"])
    state = ckpt.restore()
    if state is not None:
        if state.step >= max_steps:  # nothing to train, and nothing to write (the log and stats stay as they were)
            if state.step == max_steps:
                cb.on_notice(f"run {run.path.name} is finished (step {state.step:,} of {max_steps:,}): nothing to "
                             "train (a larger --max-steps, or more epochs, continues it)")
            else:
                cb.on_notice(f"run {run.path.name} is already at step {state.step:,}, past --max-steps "
                             f"{max_steps:,}: nothing to train (a larger --max-steps continues it)")
            end_process(dist)  # as the normal end does: a barrier, then the group torn down
            return {}
        cb.on_notice(f"resuming {run.path.name} from step {state.step}")
    state = state or LoopState()
    run.begin(state.step)
    events = open_events(run.path, state.step) if tensorboard and dist.main else None  # cut to the step as stats are
    cb.on_start({"run": str(run.path), "step": state.step, "total": max_steps, "device": str(device),
                 "world": dist.world, "keep": every["keep_checkpoints"]})
    if workers is None:  # on a CPU, loader processes would steal the cores the step needs
        workers = 0 if device.type == "cpu" else 4
    steps = _Steps(task, run, ckpt, dist, device, cb, every, max_steps, evaluator, eval_every, events)
    try:
        with _stop_on_signals() as stop:
            steps.train(state, _Loader(task, workers, device), batch_size, stop)
            if not ckpt.steps() or ckpt.steps()[-1] != state.step:
                if state.step % every["sample_every"] != 0:
                    steps.sample(state.step)
                steps.save(state)
            if dist.world > 1:
                ckpt.check_ranks_agree()
            if events is not None:
                from cyclegan_cli.zoo.runs import read_options

                events.hparams(state.step, read_options(run.path))
    finally:
        if events is not None:
            events.close()
        end_process(dist)
    return steps.last_stats


@contextlib.contextmanager
def _stop_on_signals():
    """A flag that SIGINT and SIGTERM set (the loop stops at the next step, all ranks at the same one)."""
    stop = {"flag": False}
    old = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            old[sig] = signal.signal(sig, lambda signum, frame: stop.update(flag=True))
        except ValueError:  # not in the main thread
            pass
    try:
        yield stop
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


class _Steps:
    """The step loop and what it does on its intervals: stats, samples, evaluation, checkpoints."""

    def __init__(self, task, run: RunFolder, ckpt: Checkpointer, dist: Dist, device, cb: Callbacks, every: dict,
                 max_steps: int, evaluator, eval_every: int, events=None):
        self.task, self.run, self.ckpt, self.dist, self.device, self.cb = task, run, ckpt, dist, device, cb
        self.every, self.max_steps, self.evaluator, self.eval_every = every, max_steps, evaluator, eval_every
        self.events = events  # TensorBoard's (train/tensorboard.py), rank 0's; None without
        self.sums: dict[str, torch.Tensor] = {}
        self.count, self.t_last, self.last_stats = 0, time.perf_counter(), {}

    def train(self, state: LoopState, loader: "_Loader", batch_size: int, stop: dict) -> None:
        task, every, max_steps = self.task, self.every, self.max_steps
        while state.step < max_steps:
            batches = _batches(task, state.epoch, self.dist, batch_size)
            if state.pos >= len(batches):
                state.epoch, state.pos = state.epoch + 1, 0
                continue
            task.on_epoch(state.epoch)
            for batch in loader.iterate(state.epoch, batches[state.pos:]):
                losses = task.train_step(batch, state.step)
                state.step += 1
                state.pos += 1
                self.cb.on_tick(state.step, max_steps)
                self.log(state, losses)
                if state.step % every["sample_every"] == 0:
                    self.sample(state.step)
                if self.evaluator is not None and self.eval_every and state.step % self.eval_every == 0:
                    self.evaluate(state)
                if state.step % every["save_every"] == 0 and state.step < max_steps:
                    self.save(state)
                if self.dist.any(stop["flag"], self.device):  # all ranks stop at the same step
                    self.save(state)
                    again = self.cb.resume_command(self.run.path)
                    raise Interrupted(f"interrupted at step {state.step}; checkpoint saved; "
                                      + (f"to carry on: {again}" if again else "rerun to resume"))
                if state.step >= max_steps:
                    break
            if state.pos >= len(batches):
                state.epoch, state.pos = state.epoch + 1, 0

    def log(self, state: LoopState, losses: dict) -> None:
        for k, v in losses.items():
            self.sums[k] = self.sums.get(k, 0) + v.detach()
        self.count += 1
        if state.step % self.every["log_every"] == 0 or state.step == self.max_steps:
            now = time.perf_counter()
            self.last_stats = {"step": state.step, "epoch": state.epoch,
                               "sec_per_it": round((now - self.t_last) / max(self.count, 1), 5),
                               "lr": self.task.current_lr(),
                               **{k: round(float(v) / self.count, 6) for k, v in self.sums.items()}}
            self.sums, self.count, self.t_last = {}, 0, now
            self.run.append(self.last_stats)
            if self.events is not None:
                self.events.scalars(state.step, self.last_stats)
            self.cb.on_step(state.step, self.max_steps, self.last_stats)

    def save(self, state: LoopState) -> None:
        target = self.ckpt.save(state)
        if self.dist.main:
            self.cb.on_checkpoint(target)

    def sample(self, step: int) -> None:
        if self.dist.main:
            path = self.run.sample_path(step)
            self.task.save_samples(path)
            if self.events is not None:
                self.events.image(step, path)
            self.run.plot()
            self.cb.on_sample(path)

    def evaluate(self, state: LoopState) -> None:
        """Figures for this step's generator, then a checkpoint so RUN:best-kid can point at it.
        The random state is put back afterwards: evaluating never changes what training does."""
        step = state.step
        saved = rng_state()
        figures = self.evaluator(self.task) if self.dist.main else {}
        set_rng_state(saved)
        if self.dist.main:
            self.run.append({"step": step, "eval": figures})
            if self.events is not None:
                self.events.figures(step, figures)
            self.run.plot(losses=False)
            self.cb.on_notice("eval at step {}: {}".format(step, ", ".join(f"{k} {v:.4g}" for k, v in figures.items())))
        if step % self.every["save_every"] != 0 and step < self.max_steps:
            self.save(state)


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
    """What every trainer does once its data is read: the run folder taken (one trainer a run: a
    second one is refused while this one lives), made or checked (``saved``: what options.json holds
    besides the options), the task built by ``make_task(options, saved)``, then :func:`fit` over
    ``total`` steps, evaluating when the options ask for it; returns the run folder."""
    options = replace(options, max_steps=total)
    saved = {**options.saved(), **saved, "world_size": dist.world}
    run_dir = run_path(Path(runs_dir), name, kind, dist)
    with hold_run(run_dir, dist.main):
        prepare_run(run_dir, kind, options, saved, dist.main)
        dist.barrier()
        saved["name"] = run_dir.name
        task = make_task(options, saved)
        from cyclegan_cli.train.evaluation import evaluator_for

        evaluator = evaluator_for(task, options, dist, device)
        fit(task, run_dir=run_dir, max_steps=total, batch_size=options.batch_size, log_every=options.log_every,
            sample_every=options.sample_every, save_every=options.save_every,
            keep_checkpoints=options.keep_checkpoints, workers=options.workers, dist=dist, device=device,
            callbacks=cb, evaluator=evaluator, eval_every=getattr(options, "eval_every", 0),
            tensorboard=options.tensorboard)
    return run_dir
