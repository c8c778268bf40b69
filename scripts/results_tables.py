"""Print a sweep report's LM tables (table3.csv, table4.csv) as Markdown for docs/results.md, read with pandas
from the report files so no number is retyped.

    python scripts/results_tables.py outputs/experiments/table3/<dir>
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def markdown(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep", type=Path)
    args = ap.parse_args()
    for name in ("table3.csv", "table4.csv"):
        path = args.sweep / "report" / name
        if path.is_file():
            frame = pd.read_csv(path)
            if "model" in frame:  # shipped subjects are absolute paths; their directory name is the subject
                frame["model"] = frame["model"].map(lambda m: Path(str(m)).name)
            print(f"{name}:\n\n{markdown(frame)}\n")


if __name__ == "__main__":
    main()
