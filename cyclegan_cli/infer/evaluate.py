"""``ganctl eval``: images -> features -> FID, KID, precision/recall, memorisation.

Images reach the feature network as clean-fid's "clean" preprocessing does: decoded to RGB and
resized to 299x299 with PIL's bicubic filter (resizing with another library shifts FID by several
points). Feature networks:

- ``inception``: the FID Inception network with the TensorFlow 2015-12-05 weights that
  pytorch-fid, torch-fidelity and clean-fid use, from torch-fidelity (``FeatureExtractorInceptionV3``,
  2048-d pool features); its weights come through the zoo as ``inception-fid``.
- a TorchScript file: float32 (N, 3, 299, 299) in [0, 1] -> (N, D).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from cyclegan_cli.errors import InputError, UsageError

SIZE = 299
METRICS = ("fid", "kid", "pr", "memorisation")


def clean_resize(im) -> np.ndarray:
    """PIL image -> (299, 299, 3) uint8, PIL bicubic ("clean" resize)."""
    from PIL import Image

    return np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.BICUBIC), dtype=np.uint8)


def dcgan_samples(G, n: int, device) -> np.ndarray:
    """(n, 299, 299, 3) uint8: a DCGAN's samples for seeds 0..n-1, ready for the features."""
    from PIL import Image

    from cyclegan_cli.infer.sample import generate, latents_for_seeds

    return np.stack([clean_resize(Image.fromarray(im)) for im in generate(G, latents_for_seeds(list(range(n)), G.nz),
                                                                           64, device)])


def load_folder(folder: Path, limit: int | None = None, max_pixels: int | None = None,
                on_skip: Callable[[str], None] | None = None) -> tuple[list[Path], np.ndarray]:
    """(files, (N, 299, 299, 3) uint8) for the readable images of a folder, in sorted order."""
    from cyclegan_cli.data.datasets import load_rgb, scan_folder
    from cyclegan_cli.data.images import DEFAULT_MAX_PIXELS

    files, _ = scan_folder(Path(folder), max_pixels or DEFAULT_MAX_PIXELS, on_skip=on_skip)
    kept, arrays = [], []
    for f in files:
        if limit is not None and len(kept) >= limit:
            break
        try:
            arrays.append(clean_resize(load_rgb(f, max_pixels or DEFAULT_MAX_PIXELS)))
            kept.append(f)
        except InputError as exc:
            if on_skip:
                on_skip(f"skipped {exc}")
    if not arrays:
        raise UsageError(f"{folder}: no readable images")
    return kept, np.stack(arrays)


class Features:
    """A feature network: ``__call__`` maps (N, 299, 299, 3) uint8 -> (N, D) float64."""

    def __init__(self, spec: str = "inception", device: str = "cpu", offline: bool = False, on_progress=None):
        import torch

        from cyclegan_cli.device import pick_device

        self.device = pick_device(device)
        self.name = spec
        if spec == "inception":
            self.net = _inception(offline, on_progress).to(self.device)
            self.takes_uint8 = True
        else:
            path = Path(spec)
            if not path.is_file():
                raise UsageError(f"--features {spec}: 'inception' or a TorchScript .pt file")
            import warnings

            try:
                with warnings.catch_warnings():  # torch's deprecation notice is not the user's business
                    warnings.simplefilter("ignore", FutureWarning)
                    self.net = torch.jit.load(str(path), map_location=self.device).eval()
            except Exception as exc:
                from cyclegan_cli.errors import CheckpointError, reason

                raise CheckpointError(f"{path}: not a TorchScript module ({reason(exc)})") from None
            self.takes_uint8 = False

    def __call__(self, images: np.ndarray, batch: int = 32) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for s in range(0, len(images), batch):
                x = torch.from_numpy(np.ascontiguousarray(images[s:s + batch])).permute(0, 3, 1, 2).to(self.device)
                y = self.net(x) if self.takes_uint8 else self.net(x.float() / 255.0)
                if isinstance(y, (tuple, list)):
                    y = y[0]
                out.append(y.reshape(len(x), -1).double().cpu().numpy())
        return np.concatenate(out)


def _inception(offline: bool, on_progress):
    """torch-fidelity's FID Inception with the weights from the zoo entry ``inception-fid``."""
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError:
        raise UsageError("--features inception needs torch-fidelity: pip install 'ganctl[eval]'") from None
    import tempfile

    import torch

    from cyclegan_cli.zoo import catalog

    entry = catalog.load_manifest().get("inception-fid")
    if entry is None:
        raise UsageError("the zoo manifest has no inception-fid entry")
    from cyclegan_cli.errors import DownloadError

    try:
        raw = catalog.materialize(entry, offline=offline, on_progress=on_progress)
    except DownloadError as exc:  # an offline machine: say the two ways that need no network
        raise DownloadError(f"the FID Inception weights: {exc}",
                            hint=f"on an offline machine, copy {entry.url} here and run: ganctl zoo import FILE "
                                 "--name inception-fid; or evaluate with --features PATH.pt (a TorchScript "
                                 "feature network; figures then compare only with its own)") from None
    # torch-fidelity reads its weights file with a full unpickler; we read ours with weights_only
    # (a file that would run code is refused) and hand it a plain tensor file written here
    state = torch.load(raw, map_location="cpu", weights_only=True)
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "inception.pth"
        torch.save({k: v for k, v in state.items()}, plain)
        return FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(plain))


def evaluate(real: np.ndarray, fake: np.ndarray, features: Features, metrics: list[str],
             train: np.ndarray | None = None, kid_subsets: int = 100, kid_subset_size: int = 1000,
             on_notice=None) -> dict:
    """Every requested metric for uint8 image stacks; returns a JSON-ready dict. ``on_notice`` hears
    what makes a figure less reliable."""
    from cyclegan_cli.infer import metrics as M

    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise UsageError(f"--metrics {','.join(bad)}: choose from {', '.join(METRICS)}")
    M.check_counts(metrics, len(real), len(fake))
    if "memorisation" in metrics and train is None:
        raise UsageError("--metrics memorisation needs --train FOLDER (the images the model was trained on)")
    fr, ff = features(real), features(fake)
    out = {"n_real": len(real), "n_fake": len(fake), "features": features.name, "dim": int(fr.shape[1])}
    if "fid" in metrics:
        out["fid"] = M.fid(fr, ff, on_notice)
    if "kid" in metrics:
        out["kid"], out["kid_std"] = M.kid(fr, ff, kid_subsets, kid_subset_size)
    if "pr" in metrics:
        out["precision"], out["recall"] = M.precision_recall(fr, ff)
    if "memorisation" in metrics:
        ft = features(train)
        idx, dist = M.nearest(ff, ft)
        _, held = M.nearest(fr, ft)
        out["memorisation"] = {"generated_to_train": M.summary(dist), "held_out_to_train": M.summary(held),
                               "closest": [{"fake": int(i), "train": int(idx[i]), "distance": float(dist[i])}
                                           for i in np.argsort(dist)[:16]]}
    return out
