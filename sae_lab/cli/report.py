"""`python -m sae_lab.cli.report DIR` (or `sae-lab-report DIR`): the cross-seed report of a dir of runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sae-lab-report", description=__doc__)
    ap.add_argument("dir", type=Path, help="a sweep dir or any directory containing run dirs")
    ap.add_argument("--resamples", type=int, default=5000, help="bootstrap resamples (default 5000)")
    ap.add_argument("--quiet", action="store_true", help="print only where the report was written")
    ap.add_argument("--full", action="store_true", help="print all of summary.md before the headline")
    args = ap.parse_args(argv)
    if not args.dir.is_dir():
        print(f"error: {args.dir} is not a directory; pass a sweep dir or a dir of runs.", file=sys.stderr)
        return 2
    from sae_lab.analysis.build import build_report
    from sae_lab.analysis.runs import NoRunDirsError

    try:
        summary = build_report(args.dir, n_resamples=args.resamples)
    except NoRunDirsError as err:  # nothing to report: say so and write nothing
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. DIR is read-only or a folder in it unreadable
        print(f"error: {err.filename or args.dir}: {err.strerror or err}; the report needs to read the runs "
              f"and write {args.dir}/report.", file=sys.stderr)
        return 2
    if args.full:
        print(summary.read_text())
    if not args.quiet:
        print(summary.with_name("headline.txt").read_text(), end="")
    print(f"Report written to {summary.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
