"""Check that SAELens reproduces sae_lab's exports: run INSIDE a venv with sae-lens installed.

sae-lens pins transformer-lens < 4, so it cannot be imported beside sae_lab; this script imports
neither sae_lab nor TransformerLens 4. Each case is a directory holding

    case.json           {"export_dir": "<run dir>/sae/seed{S}"}
    sae_lab.safetensors x [B, d_in], x_hat [B, d_in] (sae_lab's reconstruction of x),
                        active [B, d_sae] (uint8: sae_lab's code z != 0), optionally
                        x_hat_shared [B, d_in] (sae_lab's shared-input path; reported only)

The script loads each export with `SAE.load_from_disk`, encodes and decodes the same x, and prints
(and with --out writes) per case the max abs reconstruction difference and the fraction of
(token, feature) pairs whose active/inactive state agrees. Exit status 1 when any case's difference
exceeds --tolerance or any active feature disagrees.

    python scripts/saelens_interop.py CASES_DIR [--out report.json] [--tolerance 1e-5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

TOLERANCE = 1e-5


def case_dirs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("*/case.json"))


@torch.no_grad()
def check_case(case: Path, tolerance: float) -> dict[str, Any]:
    """SAELens's encode/decode of the case's x against sae_lab's saved reconstruction and mask."""
    from sae_lens import SAE  # only here: `--help` works without sae-lens

    export_dir = Path(json.loads((case / "case.json").read_text())["export_dir"])
    saved = load_file(str(case / "sae_lab.safetensors"))
    sae = SAE.load_from_disk(str(export_dir), device="cpu")
    z = sae.encode(saved["x"])
    x_hat = sae.decode(z)
    active, expected = z != 0, saved["active"].bool()
    diff = (x_hat - saved["x_hat"]).abs().max().item()
    mismatches = int((active != expected).sum())
    return {"export_dir": str(export_dir), "saelens_class": type(sae).__name__,
            "architecture": sae.cfg.architecture(),
            "training_architecture": sae.cfg.metadata.get("training_architecture"),
            "hook_name": sae.cfg.metadata.get("hook_name"),
            "n_tokens": int(saved["x"].shape[0]), "max_abs_diff": diff,
            "active_agreement": 1.0 - mismatches / active.numel(), "active_mismatches": mismatches,
            "mean_l0": active.sum(-1).float().mean().item(),
            **shared_input_diff(saved, x_hat), "ok": diff <= tolerance and mismatches == 0}


def shared_input_diff(saved: dict[str, torch.Tensor], x_hat: torch.Tensor) -> dict[str, float]:
    """sae_lab's shared-input reconstruction, when the case has one (reported, not gated: that path
    folds b_dec into the encoder bias, so it differs by float32 roundoff)."""
    if "x_hat_shared" not in saved:
        return {}
    return {"max_abs_diff_shared_input": (x_hat - saved["x_hat_shared"]).abs().max().item()}


def write_atomically(path: Path, text: str) -> None:
    """Temp file + rename (sae_lab.artifacts' rule; that module cannot be imported in this venv)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", type=Path, help="directory of case directories (each with case.json)")
    parser.add_argument("--out", type=Path, help="also write the JSON report here")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE, help="max abs reconstruction difference")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cases = case_dirs(args.cases)
    if not cases:
        print(f"{args.cases} holds no case directories (*/case.json).", file=sys.stderr)
        return 2
    report = {case.name: check_case(case, args.tolerance) for case in cases}
    text = json.dumps(report, indent=2) + "\n"
    print(text, end="")
    if args.out is not None:
        write_atomically(args.out, text)
    return 0 if all(r["ok"] for r in report.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
