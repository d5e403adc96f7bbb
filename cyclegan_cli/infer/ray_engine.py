"""``translate --engine ray``: the same jobs, run on a Ray cluster with Ray Data.

The planned jobs become a Ray Dataset (one row per file); ``map_batches`` runs :class:`RayTranslator`,
a stateful class, in a pool of actors: each actor loads the model once, then decodes, translates
and writes (atomically, as the local engine does) the files of its batches, videos whole. Actors
ask for one GPU on GPU clusters and one CPU otherwise; one that dies is restarted and its batch
retried by Ray. Results come back as rows and are reported as the local engine reports them.

Every node must see the model folder and ``--out`` at the same paths (a shared file system).
Only this module imports ray, and only when ``--engine ray`` is used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from cyclegan_cli.errors import UsageError


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError("--engine ray needs Ray Data: pip install 'ganctl[ray]'") from None
    return ray


class RayTranslator:
    """One actor: the model loaded once; each call translates a batch of jobs and returns their results."""

    def __init__(self, model_path: str, direction: str, options: dict):
        from cyclegan_cli.checkpoints import load_model
        from cyclegan_cli.infer.engine import Translator

        pidfile = os.environ.get("GANCTL_RAY_PID_DIR")  # tests kill actors by pid
        if pidfile:
            Path(pidfile, str(os.getpid())).write_text("")
        loaded = load_model(model_path)
        self.options = options
        self.translator = Translator(loaded.generator(direction, raw=options.get("raw_weights", False)), loaded.config, device=options["device"],
                                     precision=options["precision"], backend=options["backend"],
                                     tile=options["tile"], max_memory=options["max_memory"],
                                     dropout=options["dropout"])

    def __call__(self, batch: dict) -> dict:
        """Images go through the local engine's own pipeline (decode, translate, atomic write, one
        failure line per file); a video is translated whole."""
        import time

        from cyclegan_cli.infer.pipeline import Job, one_line, translate_images

        o = self.options
        jobs = [Job(Path(s), Path(d), k) for s, d, k in zip(batch["src"], batch["dst"], batch["kind"])]
        results = {}  # output -> (status, error, ms, frames): two jobs may read one source

        def on_result(r):
            results[r["output"]] = (r["status"], r["error"], r["ms"], 0)

        images = [j for j in jobs if j.kind == "image"]
        if images:
            translate_images(self.translator, images, o["fmt"], o["quality"], o["size"], 1, 1, o["max_pixels"],
                             on_result)
        for job in jobs:
            if job.kind != "video":
                continue
            from cyclegan_cli.infer.video import translate_video

            t0 = time.perf_counter()
            try:
                info = translate_video(self.translator, job.src, job.dst, size=o["size"], **o["video"])
                error, frames = info.get("error"), info.get("frames")
            except Exception as exc:  # one file's failure is its own result, as in the local engine
                error, frames = one_line(job, exc), 0
            results[str(job.dst)] = ("failed" if error else "ok", error, round((time.perf_counter() - t0) * 1000, 1),
                                     frames)
        out = {"src": [], "dst": [], "status": [], "error": [], "ms": [], "frames": []}
        for job in jobs:
            status, error, ms, frames = results[str(job.dst)]
            for k, v in (("src", str(job.src)), ("dst", str(job.dst)), ("status", status), ("error", error or ""),
                         ("ms", ms or 0.0), ("frames", frames or 0)):
                out[k].append(v)
        return out


def translate_dataset(ds, model_path: str, direction: str = "AtoB", options: dict | None = None,
                      workers: int | None = None, gpus: bool | None = None):
    """For your own Ray pipelines: a Dataset with ``src``/``dst``/``kind`` columns -> the same rows
    with ``status``, ``error``, ``ms`` and ``frames``, the files written by a pool of RayTranslator
    actors (``workers`` of them, default: one per GPU, or per CPU on a CPU cluster)."""
    ray = import_ray()
    opts = {"device": "auto", "precision": "auto", "backend": "torch", "tile": None, "max_memory": None,
            "dropout": False, "size": None, "fmt": "same", "quality": 95, "max_pixels": 89_478_485, "video": {}}
    opts.update(options or {})
    resources = ray.cluster_resources()
    if gpus is None:
        gpus = resources.get("GPU", 0) >= 1
    if workers is None:
        workers = max(1, int(resources.get("GPU" if gpus else "CPU", 1)))
    if not gpus:
        opts["device"] = "cpu" if opts["device"] == "auto" else opts["device"]
    # A killed actor is restarted and its batch retried: Ray Data's own default for actor pools
    # (max_restarts=-1, max_task_retries=-1), which tests/test_ray.py checks; passing them here is the
    # deprecated ray_remote_args route.
    return ds.map_batches(RayTranslator, fn_constructor_kwargs={"model_path": model_path, "direction": direction,
                                                                "options": opts},
                          batch_size=1, concurrency=workers, num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1)


def run_jobs(jobs: list, model_path: str, direction: str, options: dict, address: str | None,
             workers: int | None, report: Callable[[dict], None]) -> tuple[int, int]:
    """Run the planned jobs on Ray (a local cluster, or the one at ``address``); report each result.
    Returns (converted, failed)."""
    import logging

    ray = import_ray()
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # our stderr carries our lines only
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                 configure_logging=False)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.verbose_progress = False
        ds = ray.data.from_items([{"src": str(j.src), "dst": str(j.dst), "kind": j.kind} for j in jobs],
                                 override_num_blocks=max(1, len(jobs)))
        converted = failed = 0
        for row in translate_dataset(ds, model_path, direction, options, workers).iter_rows():
            ok = row["status"] == "ok"
            converted += ok
            failed += not ok
            r = {"input": row["src"], "output": row["dst"], "status": row["status"], "ms": row["ms"],
                 "error": row["error"] or None}
            if row["frames"]:
                r["frames"] = row["frames"]
            report(r)
        return converted, failed
    finally:
        if started:
            ray.shutdown()
