"""Write docs/cli.md: a first session with ganctl, every command run for real and its output kept.

    python examples/cli_walkthrough.py
"""

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]

STEPS = [
    ("Install (the README's first command does this) and check", ["ganctl --version"]),
    ("What models are there? On a terminal this is a table; piped, TSV for scripts",
     ["ganctl zoo list | head -6", "ganctl zoo show photo2sketch"]),
    ("Translate a folder of photos, at full resolution; stdout is one output per line, in input order",
     ["ganctl translate photos --model photo2sketch --out sketches"]),
    ("Run it again: what exists is skipped (and says so with -v); a different model or direction is refused "
     "rather than silently mixed in",
     ["ganctl translate photos --model photo2sketch --out sketches -v",
      "ganctl translate photos --model photo2sketch-cyclegan --out sketches",
      "ganctl translate photos --model photo2sketch-cyclegan --out sketches --dry-run --overwrite"]),
    ("Scripts: one JSON object per file", ["ganctl translate photos/cat.jpg --model photo2sketch --out small --size 128 --json"]),
    ("Train a CycleGAN on two folders (tiny settings so this page builds in seconds; without a terminal, "
     "progress is plain lines)",
     ["ganctl train A B --name first --size 32 --ngf 8 --ndf 8 --blocks 2 --epochs 2 --decay-epochs 2 "
      "--max-steps 6 --log-every 3 --log-seconds 5"]),
    ("Ctrl-C, a crash or --max-steps: the same name carries on, with every option it was started with",
     ["ganctl train --name first --max-steps 12 --log-every 6",
      "ganctl train --name first --ngf 16 --max-steps 16"]),
    ("The run registry", ["ganctl runs list", "ganctl runs show first | head -12"]),
    ("Use the run like any model", ["ganctl translate photos/cat.jpg --model first --out mine --size 64"]),
    ("Sample the shipped DCGAN", ["ganctl sample --model emoji32 --seeds 0-15 --grid 4x4 --scale 2 --out grid.png",
                                   "ganctl sample --model emoji32 --seeds 0-63 --grid 4x4 --out grid2.png"]),
]


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        (work / "photos").mkdir()
        for p in sorted((REPO / "examples" / "photos").glob("*.jpg")):
            (work / "photos" / p.name).write_bytes(p.read_bytes())
        for dom, src in (("A", "mountains.jpg"), ("B", "garden.jpg")):
            (work / dom).mkdir()
            im = Image.open(REPO / "examples" / "photos" / src).convert("RGB")
            for i in range(6):
                im.crop((i * 40, 0, i * 40 + 96, 96)).save(work / dom / f"{i}.png")
        env = {**os.environ, "GANCTL_HOME": str(work / "home"), "NO_COLOR": "1",
               "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "COLUMNS": "100"}
        lines = ["# A first session with ganctl", "",
                 "Every command below was run by `examples/cli_walkthrough.py` on a 2-core CPU; the output is "
                 "what it printed (stdout and stderr together, as in a terminal; the exit status when it is not 0). "
                 "Paths are shortened to the session's folder.", ""]
        for title, cmds in STEPS:
            lines += [f"## {title}", "", "```console"]
            for cmd in cmds:
                r = subprocess.run(cmd, shell=True, cwd=work, env=env, capture_output=True, text=True, timeout=600)
                out = (r.stdout + r.stderr).replace(str(work) + "/", "").replace(str(work), ".")
                lines.append(f"$ {cmd}")
                lines += [line for line in out.rstrip().splitlines()]
                if r.returncode:
                    lines.append(f"(exit {r.returncode})")
            lines += ["```", ""]
        (REPO / "docs" / "cli.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
    print(shlex.quote(str(REPO / "docs" / "cli.md")))
