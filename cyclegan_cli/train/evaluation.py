"""Training-time evaluation (``train --eval-every``): the generator's samples against a folder of
real images, with the same metrics as ``ganctl eval``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def evaluator_for(task, o, dist, device):
    """The ``fit`` evaluator for ``--eval-every`` (None without it), from the options ``o``
    (validated: --eval-data given). Rank 0 evaluates; the other ranks get an empty one, so that
    every rank takes part in the checkpoint that follows."""
    if not getattr(o, "eval_every", 0):
        return None
    if not dist.main:
        return lambda task: {}
    return make_evaluator(task, Path(o.eval_data), list(o.eval_metrics), o.eval_num, o.eval_features, device)


def make_evaluator(task, data: Path, metrics: list[str], num: int, features: str, device: torch.device):
    """A function task -> {metric: figure}. The real images and the feature network are loaded
    once; each call draws the same samples (the first ``num`` A images, or seeds 0..num-1)."""
    from cyclegan_cli.errors import UsageError
    from cyclegan_cli.infer.evaluate import Features, evaluate, load_folder

    bad = [m for m in metrics if m not in ("fid", "kid", "pr")]
    if bad:
        raise UsageError(f"--eval-metrics {','.join(bad)}: choose from fid, kid, pr")
    _, real = load_folder(Path(data), num)
    feats = Features(features, device=str(device))

    def run(task) -> dict:
        fake = samples(task, len(real))
        out = evaluate(real, fake, feats, metrics)
        keys = {"fid": ["fid"], "kid": ["kid", "kid_std"], "pr": ["precision", "recall"]}
        return {k: out[k] for m in metrics for k in keys[m]}

    return run


@torch.no_grad()
def samples(task, n: int) -> np.ndarray:
    """(n, 299, 299, 3) uint8 from the task's generator, in eval mode, put back in train mode after."""
    from PIL import Image

    from cyclegan_cli.data.datasets import to_tensor
    from cyclegan_cli.infer.evaluate import clean_resize, dcgan_samples

    name = "G_A" if "G_A" in task.nets else "G"
    G = task.nets.get(name + "_ema", task.nets[name])  # the moving average, as translate and sample use it
    was = G.training
    G.eval()
    out = []
    try:
        if "G_A" in task.nets:  # translations of the first n images of domain A, run as translate runs them
            from cyclegan_cli.models.cyclegan import for_translation
            from cyclegan_cli.models.padding import run_padded

            net = for_translation(G)  # per-image batch norm, dropout off (a copy when that changes anything)
            for i in range(min(n, len(task.dataset.a))):
                x = to_tensor(task.dataset.a.get(i))[None].to(task.device)
                y = run_padded(net, x)  # any load size: padded to the generator's grid, cropped back
                y = y[0].float().clamp(-1, 1).add(1).mul(127.5).round().byte().permute(1, 2, 0).cpu().numpy()
                out.append(clean_resize(Image.fromarray(y)))
        else:
            return dcgan_samples(G, n, task.device)
    finally:
        G.train(was)
    return np.stack(out)
