"""The ONNX Runtime backend (a generator exported once to ONNX, cached by its weights' hash, run
on the CPU), ONNX export (with ``PadCrop`` for any-size graphs), and the weights' identity. The int8 backend builds on these
(:mod:`cyclegan_cli.infer.quantize`); the engine chooses between them and torch."""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from cyclegan_cli.errors import UsageError
from cyclegan_cli.models.padding import min_side


# What the ONNX Runtime backend needs: onnxruntime runs the graph, and onnx is what torch.onnx.export
# needs to write it (its TorchScript exporter loads the graph back with onnx). rembg, chromadb and
# faster-whisper install onnxruntime alone.
ONNX_BACKEND_NEEDS = ("onnxruntime", "onnx")


def first_missing(names=ONNX_BACKEND_NEEDS) -> str | None:
    """The first of these packages that cannot be imported here, or None. Imported, not only found,
    so that a broken install (a protobuf it cannot load) counts as missing."""
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # ImportError, or whatever a broken install raises while loading
            return name
    return None


def export_path(net, cache_dir=None) -> Path:
    """Where the ONNX export of these weights is cached: <cache>/onnx/<weights hash>.onnx."""
    return onnx_folder(cache_dir) / f"{weights_hash(net)[:24]}.onnx"


def weights_hash(net) -> str:
    """sha256 over a network's tensors (names and bytes) and class: the identity of the weights."""
    h = hashlib.sha256()
    for k, v in net.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    h.update(type(net).__name__.encode())
    return h.hexdigest()


def onnx_folder(cache_dir=None) -> Path:
    """Where ONNX exports (and what is derived from them: int8 graphs, ranges, fast verdicts) are kept."""
    from cyclegan_cli.zoo.paths import cache_home

    return Path(cache_dir) if cache_dir else cache_home() / "onnx"


def cpu_session(model: Path | bytes):
    """An ONNX Runtime session on the CPU with every graph optimisation (a file, or a model's bytes).
    Its threads sleep when idle rather than spin: a job holds two sessions (int8 and its fp32 guard)
    beside decoding and encoding threads, and a spinning pool takes their cores (docs/benchmarks.md,
    "ONNX Runtime's idle threads")."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), opts, providers=["CPUExecutionProvider"])


class OnnxBackend:
    """The same network exported once to ONNX (cached by weight hash) and run by ONNX Runtime."""

    def __init__(self, net, cache_dir=None, path: Path | None = None):
        """``path``: :func:`export_path` of these weights, where the caller has it already."""
        self.path = path or export_path(net, cache_dir)
        cached = self.path.is_file()
        if not cached:
            export_onnx(net, self.path)
        try:
            self.session = cpu_session(self.path)
        except Exception:  # noqa: BLE001 - whatever ONNX Runtime raises for a file it cannot read
            if not cached:
                raise
            # a cached export that cannot be read (copied half, damaged): exported again
            self.path.unlink(missing_ok=True)
            export_onnx(net, self.path)
            self.session = cpu_session(self.path)
        self.input_name = self.session.get_inputs()[0].name

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x.astype(np.float32, copy=False)})[0]


class PadCrop(torch.nn.Module):
    """An image-to-image generator that takes any height and width: the input is padded (reflected)
    to the network's size multiple and the output cropped back, as :meth:`Translator.forward` does,
    inside an exported graph."""

    def __init__(self, net, multiple: int):
        super().__init__()
        self.net, self.multiple = net, multiple
        self.size_multiple = multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2], x.shape[3]  # traced: the graph computes them from its input
        ph, pw = (self.multiple - h % self.multiple) % self.multiple, (self.multiple - w % self.multiple) % self.multiple
        y = self.net(F.pad(x, [0, pw, 0, ph], mode="reflect"))
        return y[:, :, :h, :w]


def export_onnx(net, path: Path, opset: int = 17, metadata: dict[str, str] | None = None) -> Path:
    """Export with dynamic batch, height and width; written atomically. ``metadata``: the model's
    metadata_props (what the graph takes and gives, for whoever deploys it)."""
    import warnings

    if first_missing(["onnx"]):  # torch.onnx.export needs it
        raise UsageError("ONNX export needs the onnx extra: pip install 'ganctl[onnx]'")
    from cyclegan_cli.files import replacing

    path = Path(path)
    net = net.cpu().eval()
    if hasattr(net, "nz"):  # a DCGAN generator: z (N, nz) -> image (N, 3, S, S) in [-1, 1]
        dummy, names = torch.zeros(1, net.nz), (["z"], ["image"])
        axes = {"z": {0: "n"}, "image": {0: "n"}}
    else:  # an image-to-image generator: (N, 3, H, W) -> (N, 3, H, W), H and W multiples of its size grid
        multiple = min_side(net)
        dummy, names = torch.zeros(1, 3, multiple * 4, multiple * 4), (["image"], ["translated"])
        axes = {"image": {0: "n", 2: "h", 3: "w"}, "translated": {0: "n", 2: "h", 3: "w"}}
    with replacing(path) as tmp, warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, dummy, str(tmp), dynamo=False, opset_version=opset, input_names=names[0],
                          output_names=names[1], dynamic_axes=axes)
        if metadata:
            import onnx

            proto = onnx.load(str(tmp))
            onnx.helper.set_model_props(proto, {str(k): str(v) for k, v in metadata.items()})
            onnx.save(proto, str(tmp))
    return path
