"""Official checkpoints: ``.pth`` state dicts of junyanz/pytorch-CycleGAN-and-pix2pix generators
(ResNet, U-Net) and pytorch/examples DCGAN ``netG.pth``, read without running code and turned
into ganctl's config + prefixed tensors by inferring the architecture from keys and shapes.

A pure converter: it returns the config's fields as a plain dict, and imports nothing of ganctl
but its errors (:mod:`cyclegan_cli.checkpoints`, the format, builds the config from them)."""

from __future__ import annotations

from pathlib import Path

from cyclegan_cli.errors import CheckpointError


def read_pth(file: Path) -> dict:
    """A ``.pth`` state dict, read with ``weights_only=True``: a pickle that would run code is refused."""
    import pickle

    import torch

    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsafe pickle"
        raise CheckpointError(f"{file}: refused: not a plain weights file ({first[:160]})") from None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{file}: unreadable .pth file ({first[:160]})") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(hasattr(v, "shape") for v in obj.values()):
        raise CheckpointError(f"{file}: not a state dict of tensors")
    return obj


_NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")


def _clean_official(sd: dict) -> dict:
    out = {}
    for k, v in sd.items():
        if k.startswith("module."):
            k = k[len("module."):]
        out[k] = v
    return out


def _drop_instance_norm_stats(sd: dict) -> dict:
    """Old official checkpoints carry running stats for InstanceNorm layers that have no weight."""
    out = {}
    for k, v in sd.items():
        base, _, leaf = k.rpartition(".")
        if leaf in _NORM_STATS and f"{base}.weight" not in sd:
            continue
        out[k] = v
    return out


def infer_generator(sd: dict, where: str) -> dict:
    """{"arch", "args"} for an official generator state dict, or a CheckpointError saying why not."""
    if "model.1.weight" in sd and any(".conv_block." in k for k in sd):
        blocks = sorted({int(k.split(".")[1]) for k in sd if ".conv_block." in k})
        n_blocks = len(blocks)
        w = sd["model.1.weight"]  # (ngf, in, 7, 7)
        ngf, input_nc = int(w.shape[0]), int(w.shape[1])
        top = max(int(k.split(".")[1]) for k in sd if ".conv_block." not in k)
        output_nc = int(sd[f"model.{top}.weight"].shape[0])  # the final c7s1 conv: (out, ngf, 7, 7)
        norm = "batch" if "model.2.weight" in sd else "instance"
        # conv_block is [pad, conv, norm, relu, (dropout), pad, conv, norm]: with dropout, index 6 is
        # the second conv (4-D weight); without it, index 6 is the batch norm (1-D weight)
        dropout = any(k.endswith("conv_block.6.weight") and sd[k].dim() == 4 for k in sd)
        args = {"input_nc": input_nc, "output_nc": output_nc, "ngf": ngf, "n_blocks": n_blocks, "norm": norm,
                "use_dropout": dropout}
        # official CUT generators (taesungp/contrastive-unpaired-translation) default to blurred
        # sampling layers, whose fixed filters are stored as ``model.N.filt`` buffers: two down, two up
        filts = [k for k in sd if k.endswith(".filt")]
        if filts:
            if len(filts) != 4:
                raise CheckpointError(f"{where}: a CUT generator with anti-aliasing on one side only "
                                      "(--no_antialias or --no_antialias_up alone) is not supported")
            args["antialias"] = True
        return {"arch": "resnet_generator", "args": args}
    if "model.model.0.weight" in sd:
        # "model." once for the generator, then once per nested block: the innermost key has num_downs + 1
        num_downs = max(k.count("model.") for k in sd if k.startswith("model.model.")) - 1
        w = sd["model.model.0.weight"]  # (ngf, in, 4, 4)
        ngf, input_nc = int(w.shape[0]), int(w.shape[1])
        output_nc = int(sd["model.model.3.weight"].shape[1])  # ConvTranspose weight is (in, out, k, k)
        norm = "batch" if any(k.endswith("running_mean") for k in sd) else "instance"
        if num_downs < 5:
            raise CheckpointError(f"{where}: U-Net with {num_downs} levels is not a known layout")
        # dropout has no weights to tell it by; the official pix2pix U-Nets have it (it only matters
        # with translate --dropout: inference runs without it by default)
        return {"arch": "unet_generator", "args": {"input_nc": input_nc, "output_nc": output_nc,
                                                   "num_downs": num_downs, "ngf": ngf, "norm": norm,
                                                   "use_dropout": True}}
    if "main.0.weight" in sd and sd["main.0.weight"].dim() == 4:
        w = sd["main.0.weight"]  # ConvTranspose: (nz, ngf*mult, 4, 4)
        convs = sorted(int(k.split(".")[1]) for k in sd if k.endswith(".weight") and sd[k].dim() == 4)
        n_stages = len(convs) - 1
        image_size = 2 ** (n_stages + 2)
        nz = int(w.shape[0])
        ngf = int(w.shape[1]) // 2 ** (n_stages - 1)
        nc = int(sd[f"main.{convs[-1]}.weight"].shape[1])
        return {"arch": "dcgan_generator", "args": {"nz": nz, "ngf": ngf, "nc": nc, "image_size": image_size}}
    sample = ", ".join(list(sd)[:3])
    raise CheckpointError(
        f"{where}: cannot tell the architecture from its keys ({sample} ...): not an official "
        "ResNet/U-Net CycleGAN generator or a pytorch/examples DCGAN generator"
    )


def import_state_dict(sd: dict, where: str, source: str = "") -> tuple[dict, dict]:
    """Turn a foreign state dict into (ModelConfig fields, prefixed tensors).

    Accepts one official generator (``horse2zebra.pth``, ``latest_net_G_A.pth``,
    ``latest_net_G.pth``), an examples DCGAN ``netG.pth``, or an already prefixed dict
    (``G_A.model.1.weight`` ...) of generators.
    """
    sd = _clean_official(sd)
    prefixes = {k.split(".", 1)[0] for k in sd}
    if prefixes and prefixes <= {"G_A", "G_B", "G"}:
        parts = {p: {k[len(p) + 1:]: v for k, v in sd.items() if k.startswith(p + ".")} for p in prefixes}
    else:
        name = Path(where).stem
        # training outputs name the direction: latest_net_G_B.pth is the B->A generator
        parts = {"G_B" if name.endswith("net_G_B") else "G_A": sd}
    nets, tensors = {}, {}
    kind = "cyclegan"
    for prefix, part in parts.items():
        part = _drop_instance_norm_stats(part)
        spec = infer_generator(part, where)
        if spec["arch"] == "dcgan_generator":
            kind, prefix = "dcgan", "G"
        nets[prefix] = spec
        tensors.update({f"{prefix}.{k}": v for k, v in part.items()})
    first = next(iter(nets.values()))
    if kind == "dcgan":
        a = first["args"]
        config = dict(kind="dcgan", nets=nets, image_size=a["image_size"], channels=a["nc"], domains=[],
                      source=source)
    else:
        a = first["args"]
        size = 256 if first["arch"] == "resnet_generator" else 2 ** a["num_downs"]
        # an anti-aliased ResNet is CUT's (one generator, A -> B only); without it, CUT's and CycleGAN's look alike
        kind = "cut" if a.get("antialias") and set(nets) == {"G_A"} else "cyclegan"
        config = dict(kind=kind, nets=nets, image_size=size, channels=a["output_nc"], source=source)
    return config, tensors
