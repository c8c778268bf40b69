"""Search mod-113 training recipes for the layer-1 residual geometry (effective rank) of the paper's
subject: train each recipe with scripts/train_mod113.py's loop, measure erank at a, b, = and over all
three positions, and append a row per recipe to <out>/recipes.jsonl (weights in <out>/<recipe>.*); then write
<out>/erank_by_hook.csv: the same measure at every residual and MLP hook of every recipe's weights. Each trained
recipe also leaves <out>/<recipe>_erank_by_step.csv: erank and accuracy every 100 steps, kept when stopped early.
"untrained" is the recipes' common starting point (seed 0), measured without training.

    python scripts/mod113_recipes.py [--out outputs/mod113_recipes] [--threads 1] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from sae_lab.artifacts import atomic_write
from sae_lab.models.mod113 import CARD_FILE, WEIGHTS_FILE, all_inputs, answers

sys.path.insert(0, str(Path(__file__).parent))
from train_mod113 import erank_by_hook, forward, initial_params, layer1_erank, train  # noqa: E402

# name: train_mod113.train keyword arguments. "shipped" is the recipe of sae_lab's mod113 weights.
RECIPES = {
    "untrained": dict(stop="untrained"),
    "shipped": dict(train_frac=0.5, lr=2e-3, weight_decay=1.0, stop="clean"),
    "first100": dict(train_frac=0.5, lr=2e-3, weight_decay=1.0, stop="first"),
    "wd0_frac0.9_first100": dict(train_frac=0.9, lr=2e-3, weight_decay=0.0, stop="first", max_steps=3000),
    "wd0.1_frac0.7_first100": dict(train_frac=0.7, lr=2e-3, weight_decay=0.1, stop="first", max_steps=3000),
    "init2_first100": dict(train_frac=0.5, lr=2e-3, weight_decay=1.0, stop="first", init_scale=2.0, max_steps=3000),
    "wd0.3_first100": dict(train_frac=0.5, lr=2e-3, weight_decay=0.3, stop="first", max_steps=3000),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("outputs/mod113_recipes"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    table = args.out / "recipes.jsonl"
    done = {json.loads(line)["name"] for line in table.read_text().splitlines()} if table.exists() else set()
    for name, kwargs in RECIPES.items():
        if (args.only and name not in args.only) or name in done:
            continue
        start = time.time()
        if name == "shipped":  # measured on the shipped weights, not retrained
            params = load_file(str(WEIGHTS_FILE))
            card = json.loads(CARD_FILE.read_text())
            card["recipe"].update(stop="clean", init_scale=1.0)
        elif name == "untrained":
            params = initial_params(seed=0)
            with torch.no_grad():
                accuracy = (forward(params, all_inputs()).argmax(-1) == answers(all_inputs())).float().mean().item()
            card = {"recipe": {"optimizer": "none", **kwargs, "seed": 0, "init_scale": 1.0}, "steps": 0,
                    "accuracy_all_pairs": accuracy}
        else:
            params, card = train(log_every=100, log=lambda m, n=name: print(f"[{n}] {m}", flush=True),
                                 on_check=ErankByStep(args.out / f"{name}_erank_by_step.csv"), **kwargs)
        card.update(layer1_erank(params), name=name, wall_seconds=round(time.time() - start))
        save_file({k: v.detach().contiguous() for k, v in params.items()}, str(args.out / f"{name}.safetensors"))
        (args.out / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
        with table.open("a") as f:
            f.write(json.dumps({"name": name, **card["recipe"], **{k: v for k, v in card.items()
                                if k not in ("task", "architecture", "recipe", "name")}}) + "\n")
        print(f"[{name}] erank a/b/=/all: {card['erank_a']:.1f} {card['erank_b']:.1f} "
              f"{card['erank_eq']:.1f} {card['erank_all']:.1f}; steps {card['steps']}", flush=True)
    write_erank_by_hook(args.out)


class ErankByStep:
    """train()'s on_check: the cached residual's erank (a, b, =, all) and the accuracies at every check, the
    whole table rewritten atomically each time so a stopped run keeps what it measured."""

    def __init__(self, path: Path) -> None:
        self.path, self.rows = path, []

    def __call__(self, step: int, params: dict[str, torch.Tensor], stats: dict[str, float]) -> None:
        self.rows.append({"step": step, **stats, **{k: round(v, 3) for k, v in layer1_erank(params).items()}})
        write_csv_atomically(self.path, self.rows)


def write_csv_atomically(path: Path, rows: list[dict]) -> None:
    atomic_write(path, lambda tmp: pd.DataFrame(rows).to_csv(tmp, index=False))


def write_erank_by_hook(out: Path) -> None:
    """erank at every hook for each recipe whose weights are in `out`, in RECIPES order (written atomically)."""
    rows = []
    for name in RECIPES:
        weights = out / f"{name}.safetensors"
        if weights.exists():
            for hook, erank in erank_by_hook(load_file(str(weights))).items():
                rows.append({"name": name, "hook": hook, **{k: round(v, 2) for k, v in erank.items()}})
    if rows:
        write_csv_atomically(out / "erank_by_hook.csv", rows)


if __name__ == "__main__":
    main()
