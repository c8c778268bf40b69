"""Print a sweep report's tables as Markdown for docs/results.md, read with pandas from the report files so no
number is retyped. By default the LM tables (table3.csv, table4.csv); --csv names others, --columns picks columns.

    python scripts/results_tables.py outputs/experiments/table3/<dir>
    python scripts/results_tables.py outputs/experiments/proxy_gap/<dir> --csv proxy_gap.csv proxy_gap_kstar.csv
    python scripts/results_tables.py <sweep> --csv final.csv --columns condition epoch mmcs mmcs_x_random verdict
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
    ap.add_argument("--csv", nargs="+", default=["table3.csv", "table4.csv"], help="report files to print")
    ap.add_argument("--columns", nargs="+", help="only these columns (those a file lacks are skipped)")
    args = ap.parse_args()
    for name in args.csv:
        path = args.sweep / "report" / name
        if path.is_file():
            frame = pd.read_csv(path)
            if args.columns:
                frame = frame[[c for c in args.columns if c in frame]]
            if "model" in frame:  # shipped subjects are absolute paths; their directory name is the subject
                frame["model"] = frame["model"].map(lambda m: Path(str(m)).name)
            print(f"{name}:\n\n{markdown(frame)}\n")


if __name__ == "__main__":
    main()
