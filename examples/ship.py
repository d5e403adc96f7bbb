"""Copy a run's latest checkpoint into pretrained/ as a shipped model: generators only, fp16
safetensors, sha256 and size recorded in pretrained/zoo.json.

    python examples/ship.py RUN_DIR NAME --license "..." --source "..." [--domains a,b]
"""

import argparse
import dataclasses
import json
import os
from pathlib import Path

import torch

from cyclegan_cli.checkpoints import load_model, save_checkpoint
from cyclegan_cli.zoo.download import sha256_file
from cyclegan_cli.zoo.runs import checkpoint_dir, checkpoint_steps

REPO = Path(__file__).resolve().parents[1]


def shipped_training(training: dict) -> dict:
    """The run's options as a shipped config keeps them: a path (the run records its folders as
    absolute paths, so that it can resume from anywhere) cut to the folder's name, so that no
    developer's paths ship."""
    def cut(v):
        if isinstance(v, str) and os.path.isabs(v):
            return Path(v).name
        if isinstance(v, dict):
            return {k: cut(x) for k, x in v.items()}
        if isinstance(v, list):
            names = [cut(x) for x in v]
            paths = [x for x in v if isinstance(x, str) and os.path.isabs(x)]
            if len({Path(x).name for x in paths}) < len(paths):  # photos512/train and photos768/train: both "train"
                names = [str(Path(*Path(x).parts[-2:])) if isinstance(x, str) and os.path.isabs(x) else n
                         for x, n in zip(v, names)]
            return names
        return v

    return cut(training)  # a distill run's inputs and teacher path are lists and dicts of paths


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("name")
    ap.add_argument("--license", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--description", default="")
    ap.add_argument("--aliases", default="")
    ap.add_argument("--step", type=int, help="ship this checkpoint (default: the latest)")
    a = ap.parse_args()
    manifest_file = REPO / "pretrained" / "zoo.json"
    manifest = json.loads(manifest_file.read_text())
    if manifest["models"].get(a.name, {}).get("kind") == "alias":  # photo2sketch: benchmarks/quality.py --choose sets it
        ap.error(f"{a.name} is an alias ({a.name} -> {manifest['models'][a.name]['alias_of']}); ship under the "
                 "method's name (photo2sketch-cut, ...), then let benchmarks/quality.py --choose ... --set-alias "
                 f"{a.name} point it")
    step = a.step or checkpoint_steps(a.run_dir)[-1]
    model = load_model(checkpoint_dir(a.run_dir, step))
    # generators only; where the run kept a moving average of a generator's weights (--ema), that
    # average ships in its place (what translate would use), under the generator's own name
    gens = [k for k in model.nets if k.startswith("G") and not k.endswith("_ema")]
    keep = {k: model.nets.get(k + "_ema", model.nets[k]) for k in gens}
    ema = [k for k in gens if k + "_ema" in model.nets]
    cfg = dataclasses.replace(model.config, nets={k: model.config.nets[k] for k in keep},
                              training=shipped_training(model.config.training),
                              source=f"ganctl run {a.run_dir.name} step {step}" + (" (EMA weights)" if ema else ""))
    target = REPO / "pretrained" / a.name
    save_checkpoint(target, cfg, keep, dtype=torch.float16)
    weights = target / "model.safetensors"
    manifest["models"][a.name] = {
        "kind": cfg.kind, "file": a.name, "sha256": sha256_file(weights), "size": os.path.getsize(weights),
        "format": "checkpoint", "license": a.license, "source": a.source, "domains": cfg.domains,
        "input_size": cfg.image_size, "aliases": [x for x in a.aliases.split(",") if x],
        "description": a.description or f"trained with ganctl ({a.run_dir.name}, step {step})",
    }
    manifest_file.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{a.name}: step {step}, {os.path.getsize(weights) / 1e6:.1f} MB -> {target}")


if __name__ == "__main__":
    main()
