"""The checkpoint format: a folder with ``config.json`` and ``model.safetensors`` (+ optional resume state).

- ``config.json``: a :class:`ModelConfig` - which nets, built how, for which images and domains.
- ``model.safetensors``: every net's state under a prefix (``G_A.``, ``G_B.``, ``D_A.``, ``D_B.``
  for CycleGAN, ``G.``, ``D.`` for DCGAN). The config is also stored in the file's metadata, so a
  lone ``.safetensors`` is self-describing.
- ``resume.pt`` (training only): optimizers, schedulers, pools, RNG, step; read with
  ``torch.load(weights_only=True)`` so it can never run code.

Official CycleGAN ``.pth`` files and pytorch/examples DCGAN ``netG.pth`` files are read by
:mod:`cyclegan_cli.official`, which infers the architecture from keys and shapes.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cyclegan_cli import __version__
from cyclegan_cli.errors import CheckpointError, NotFoundError, UsageError, reason

FORMAT_VERSION = 1
TRANSLATION_KINDS = ("cyclegan", "pix2pix", "cut", "distill")  # image -> image models, run by translate
ONE_WAY_KINDS = {"pix2pix": "a pix2pix model translates the way it was trained",
                 "cut": "a CUT model translates A->B only (it has one generator, trained one way)",
                 "distill": "a distilled student translates the way its teacher did (distil the other side for BtoA)"}
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
RESUME_FILE = "resume.pt"


@dataclass
class ModelConfig:
    kind: str  # "cyclegan" or "pix2pix" (translation: see TRANSLATION_KINDS) or "dcgan"
    nets: dict[str, dict[str, Any]]  # net name -> {"arch": registry name, "args": constructor kwargs}
    image_size: int = 256  # the training crop / DCGAN output size
    channels: int = 3
    normalization: dict[str, list[float]] = field(default_factory=lambda: {"mean": [0.5] * 3, "std": [0.5] * 3})
    domains: list[str] = field(default_factory=lambda: ["A", "B"])  # CycleGAN: G_A maps domains[0] -> domains[1]
    training: dict[str, Any] = field(default_factory=dict)  # resolved training options, empty when imported
    source: str = ""  # where the weights came from (a run, an official file, a URL)
    ganctl_version: str = __version__
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict, where: str = "config.json") -> "ModelConfig":
        if not isinstance(data, dict):
            raise CheckpointError(f"{where}: not a JSON object")
        version = data.get("format_version")
        if not isinstance(version, int):
            raise CheckpointError(f"{where}: no format_version")
        if version > FORMAT_VERSION:
            raise CheckpointError(
                f"{where}: format version {version} is newer than this ganctl understands "
                f"({FORMAT_VERSION}); upgrade ganctl"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        missing = [n for n in ("kind", "nets") if n not in data]
        if missing:
            raise CheckpointError(f"{where}: missing {', '.join(missing)}")
        unknown = sorted(set(data) - names)
        if unknown:
            raise CheckpointError(f"{where}: unknown fields {', '.join(unknown)}")
        return cls(**data)


@dataclass
class LoadedModel:
    """A checkpoint in memory: its config and its nets, built and in eval mode."""

    config: ModelConfig
    nets: dict  # name -> nn.Module
    path: str = ""

    def generator(self, direction: str = "AtoB", raw: bool = False):
        """The generator for ``AtoB`` / ``BtoA`` (CycleGAN) or the DCGAN generator: the EMA of its
        weights when the checkpoint has one, unless ``raw``."""
        if self.config.kind == "dcgan":
            name = "G"
        else:
            name = {"AtoB": "G_A", "BtoA": "G_B"}.get(direction)
            if name is None:
                raise UsageError(f"unknown direction {direction!r}: use AtoB or BtoA")
        if name not in self.nets:
            if self.config.kind in ONE_WAY_KINDS and direction == "BtoA":
                raise UsageError(f"--direction BtoA: {ONE_WAY_KINDS[self.config.kind]}")
            have = ", ".join(sorted(self.nets))
            raise UsageError(f"this model has no {direction} generator ({name}); it has {have}")
        if not raw and name + "_ema" in self.nets:
            return self.nets[name + "_ema"]
        return self.nets[name]

    def generators_only(self) -> tuple[ModelConfig, dict]:
        """(config, nets) with the generators alone (and their EMA): what a model in a zoo needs. A
        training checkpoint's discriminators, CUT's patch sampler and distill's adaptors are left out."""
        gens = {k: v for k, v in self.nets.items() if k.startswith("G")}
        return dataclasses.replace(self.config, nets={k: self.config.nets[k] for k in gens}), gens


# ---------------------------------------------------------------------------------------------
# saving


def state_tensors(nets: dict, dtype=None) -> dict:
    """Prefix every net's state dict with its name; optionally cast floating tensors (e.g. fp16 to ship)."""
    out = {}
    for name, net in nets.items():
        sd = net.state_dict() if hasattr(net, "state_dict") else net
        for key, t in sd.items():
            t = t.detach().cpu()
            if dtype is not None and t.is_floating_point():
                t = t.to(dtype)
            out[f"{name}.{key}"] = t.contiguous()
    return out


def save_checkpoint(path, config: ModelConfig, nets: dict, resume: dict | None = None, dtype=None) -> Path:
    """Write a checkpoint folder atomically (temporary folder, fsync, rename). Returns its path.

    Each file is serialised in memory and written by Python, so that a full disk is an OSError
    naming the checkpoint (not a serialiser's internal assertion); the previous checkpoint at
    ``path``, if any, stays as it was."""
    import io

    import torch
    from safetensors.torch import save as safetensors_bytes

    from cyclegan_cli.files import atomic_folder, write_synced

    target = Path(path)
    tensors = state_tensors(nets, dtype)
    with atomic_folder(target) as tmp:
        write_synced(tmp / CONFIG_FILE, (config.to_json() + "\n").encode())
        write_synced(tmp / WEIGHTS_FILE, safetensors_bytes(tensors, metadata={"ganctl_config": config.to_json()}))
        if resume is not None:
            buf = io.BytesIO()
            torch.save(resume, buf)
            write_synced(tmp / RESUME_FILE, buf.getbuffer())
    return target


# ---------------------------------------------------------------------------------------------
# loading


def _read_safetensors(file: Path) -> tuple[dict, dict]:
    from safetensors import safe_open

    try:
        tensors = {}
        with safe_open(str(file), framework="pt") as f:
            meta = f.metadata() or {}
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
        return tensors, meta
    except FileNotFoundError:
        raise NotFoundError(f"{file}: no such file") from None
    except Exception as exc:  # safetensors raises its own error type for truncated/corrupt files
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{file}: unreadable or truncated safetensors file ({first})") from None


def build_nets(config: ModelConfig, tensors: dict, where: str, device=None) -> dict:
    """Build every net named in the config and load its prefixed tensors strictly."""
    from cyclegan_cli.models import build

    nets = {}
    prefixes = {k.split(".", 1)[0] for k in tensors}
    extra = prefixes - set(config.nets)
    if extra:
        raise CheckpointError(f"{where}: unexpected nets {', '.join(sorted(extra))} not in the config")
    for name, spec in config.nets.items():
        try:
            net = build(spec["arch"], **spec.get("args", {}))
        except (KeyError, ValueError, UsageError) as exc:  # arguments its architecture refuses
            raise CheckpointError(f"{where}: cannot build net {name}: {exc}") from None
        sd = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}
        load_strict(net, sd, f"{where}: net {name}")
        if device is not None:
            net.to(device)
        nets[name] = net.eval()
    return nets


def load_strict(net, sd: dict, where: str) -> None:
    """``load_state_dict(strict=True)`` with one line that names the first offending keys."""
    expected = net.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]

    def few(keys):
        return ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")

    if missing:
        raise CheckpointError(f"{where}: missing keys {few(missing)}")
    if unexpected:
        raise CheckpointError(f"{where}: unexpected keys {few(unexpected)}")
    for k, v in sd.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise CheckpointError(
                f"{where}: shape mismatch for {k}: file has {tuple(v.shape)}, model expects {tuple(expected[k].shape)}"
            )
    sd = {k: (v.to(expected[k].dtype) if v.is_floating_point() else v) for k, v in sd.items()}
    net.load_state_dict(sd, strict=True)


def load_config(folder) -> ModelConfig:
    folder = Path(folder)
    file = folder / CONFIG_FILE
    if not file.is_file():
        raise CheckpointError(f"{folder}: not a checkpoint (no {CONFIG_FILE})")
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{file}: unreadable JSON ({exc})") from None
    return ModelConfig.from_dict(data, str(file))


def load_model(path, device=None, nets: list[str] | None = None) -> LoadedModel:
    """Load a checkpoint folder, a ``.safetensors`` file or an official ``.pth`` file.

    ``nets`` limits which nets are built (e.g. only the generators for inference).
    Zoo names and run names are resolved by :func:`cyclegan_cli.zoo.resolve.resolve_model`.
    """
    p = Path(path)
    if not p.exists():
        raise NotFoundError(f"{p}: no such file or folder")
    if p.is_dir():
        config = load_config(p)
        weights = p / WEIGHTS_FILE
        if not weights.is_file():
            raise CheckpointError(f"{p}: no {WEIGHTS_FILE}")
        tensors, _ = _read_safetensors(weights)
        where = str(p)
    elif p.suffix == ".safetensors":
        tensors, meta = _read_safetensors(p)
        where = str(p)
        if "ganctl_config" in meta:
            config = ModelConfig.from_dict(json.loads(meta["ganctl_config"]), f"{p} metadata")
        else:
            from cyclegan_cli.official import import_state_dict

            fields, tensors = import_state_dict(tensors, where, source=str(p))
            config = ModelConfig(**fields)
    elif p.suffix in (".pth", ".pt", ".ckpt"):
        from cyclegan_cli.official import import_state_dict, read_pth

        fields, tensors = import_state_dict(read_pth(p), str(p), source=str(p))
        config = ModelConfig(**fields)
        where = str(p)
    else:
        raise CheckpointError(f"{p}: not a checkpoint (expected a folder, .safetensors or .pth)")
    if nets is not None:
        keep = [n for n in nets if n in config.nets]
        config = dataclasses.replace(config, nets={n: config.nets[n] for n in keep})
        tensors = {k: v for k, v in tensors.items() if k.split(".", 1)[0] in keep}
    return LoadedModel(config, build_nets(config, tensors, where, device), str(p))


# ---------------------------------------------------------------------------------------------
# resume state


def load_resume(folder, name: str = RESUME_FILE) -> dict | None:
    """A checkpoint's resume state (``name``: ``resume.pt``, or another rank's file), None when absent."""
    import torch

    file = Path(folder) / name
    if not file.is_file():
        return None
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{file}: unreadable resume state ({reason(exc)})") from None
