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

# (title, commands[, {"before": text, "after": text}]): every command is run, its output kept
STEPS = [
    ("Install (the README's first command does this) and check", ["ganctl --version"]),
    ("What models are there? On a terminal this is a table; piped, TSV for scripts",
     ["ganctl zoo list | head -6", "ganctl zoo show photo2sketch"]),
    ("Translate a folder of photos, at full resolution; stdout is one output per line, in input order",
     ["ganctl translate photos --model photo2sketch --out sketches"]),
    ("Run it again: what exists is skipped, and stdout lists only what was converted (nothing here; -v names "
     "the skipped on stderr); a different model or direction is refused rather than silently mixed in",
     ["ganctl translate photos --model photo2sketch --out sketches -v",
      "ganctl translate photos --model photo2sketch-cyclegan --out sketches",
      "ganctl translate photos --model photo2sketch-cyclegan --out sketches --dry-run --overwrite"]),
    ("Scripts: one JSON object per file", ["ganctl translate photos/cat.jpg --model photo2sketch --out small --size 128 --json"]),
    ("A page to look through: inputs beside outputs",
     ["ganctl translate photos --model photo2sketch --out page --html -q"],
     {"before": "`--html` also writes `OUT/index.html`: each input beside its output (images scaled down by the "
                "browser and linked to their full size, videos with controls and their first frame as a poster), with relative links and nothing from "
                "the network, so the folder can be copied or served as it is. Its path goes to stderr; stdout still lists "
                "the outputs it converted."}),
    ("Train a CycleGAN on two folders (tiny settings so this page builds in seconds; without a terminal, "
     "progress is plain lines)",
     ["ganctl train A B --name first --size 32 --ngf 8 --ndf 8 --blocks 2 --epochs 2 --decay-epochs 2 "
      "--max-steps 6 --log-every 3 --log-seconds 5"]),
    ("Ctrl-C, a crash or --max-steps: the same name carries on, with every option it was started with",
     ["ganctl train --name first --max-steps 12 --log-every 6",
      "ganctl train --name first --ngf 16 --max-steps 16"]),
    ("The run registry", ["ganctl runs list", "ganctl runs show first | head -12"],
     {"after": "Runs are registered by their folder, so two projects may each have a `cyclegan-001`. A run name "
               "means the run under the runs folder of the project you are in (`./runs`, `GANCTL_RUNS`, or "
               "`train --runs-dir`) first; otherwise the one registered run of that name. A name that several "
               "registered runs share is an error listing their folders: run the command from the project, or give "
               "the run folder (`ganctl runs rm path/to/runs/cyclegan-001`)."}),
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
                 "Paths are shortened to the session's folder (and the shipped models' to the repository's).", ""]
        for title, cmds, *text in STEPS:
            text = text[0] if text else {}
            lines += [f"## {title}", ""] + ([text["before"], ""] if "before" in text else []) + ["```console"]
            for cmd in cmds:
                r = subprocess.run(cmd, shell=True, cwd=work, env=env, capture_output=True, text=True, timeout=600)
                out = (r.stdout + r.stderr).replace(str(work) + "/", "").replace(str(work), ".")
                out = out.replace(str(REPO) + "/", "")
                lines.append(f"$ {cmd}")
                lines += [line for line in out.rstrip().splitlines()]
                if r.returncode:
                    lines.append(f"(exit {r.returncode})")
            lines += ["```", ""] + ([text["after"], ""] if "after" in text else [])
        (REPO / "docs" / "cli.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
    print(shlex.quote(str(REPO / "docs" / "cli.md")))
