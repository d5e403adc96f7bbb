"""Write pretrained/TRAINING.md from the runs of the shipped models (steps, compute time, losses).

    python examples/training_report.py work-data/runs
"""

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HARDWARE = "a 2-core x86_64 CPU (AMD EPYC, AVX2), no GPU, sharing the machine with development work"


def summary(run: Path) -> str:
    rows = [json.loads(l) for l in (run / "stats.jsonl").read_text().splitlines() if l.strip()]
    rows = [r for r in rows if "sec_per_it" in r]  # loss lines (not resume events or evaluations)
    opts = json.loads((run / "options.json").read_text())
    seconds, prev = 0.0, 0
    for r in rows:
        seconds += r["sec_per_it"] * (r["step"] - prev)
        prev = r["step"]
    last = rows[-1]
    first = rows[0]
    losses = ", ".join(f"{k} {v:.3f}" for k, v in last.items() if k.startswith("loss"))
    start = ", ".join(f"{k} {v:.3f}" for k, v in first.items() if k.startswith("loss"))
    return (f"## {run.name} ({opts['kind']})\n\n- steps: {last['step']} (epoch {last['epoch']}), batch "
            f"{opts['batch_size']}\n- compute time: {seconds / 3600:.2f} h of training steps on {HARDWARE}\n- losses at step {first['step']}: "
            f"{start}\n- losses at the end (mean of the last log interval): {losses}\n- options: "
            f"`{json.dumps({k: v for k, v in opts.items() if k not in ('folder', 'folder_a', 'folder_b')})}`\n")


def main(runs: Path):
    parts = ["# How the shipped models were trained\n",
             "Recipes (data preparation and commands): examples/README.md. Figures from the runs' stats.jsonl.\n"]
    for name in ("photo2sketch", "emoji32"):
        if (runs / name / "stats.jsonl").is_file():
            parts.append(summary(runs / name))
    (REPO / "pretrained" / "TRAINING.md").write_text("\n".join(parts))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "work-data/runs"))
