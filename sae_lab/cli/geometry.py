"""Per-layer activation geometry of a subject model: effective rank, participation ratio (raw and
with the top eigenvalue deflated) and PR/d_model, from the activation cache of each layer.

    python -m sae_lab.cli.geometry model=pythia-70m [layers=0,2,4] [n_vectors=20000] [out=DIR]

Other `key=value` arguments are the training config's (e.g. model.name=..., cache_dir=...). Prints a
table and writes geometry.csv and geometry.png under `out` (default outputs/geometry/<model>/).
"""

from __future__ import annotations

import sys
from pathlib import Path

from sae_lab.artifacts import atomic_write, write_csv
from sae_lab.config import CONF_DIR, ConfigError, build_subject, validate
from sae_lab.metrics.spectrum import effective_rank, participation_ratio

OWN_KEYS = ("layers", "n_vectors", "out")


def layer_geometry(subject, layers: list[int], cache_dir: Path, n_vectors: int) -> list[dict]:
    from sae_lab.data import subject_activations

    rows = []
    for layer in layers:
        hook = subject.hook_name(layer)
        cap = getattr(subject, "max_train_vectors", None)
        acts = subject_activations(subject, hook, cache_dir, max_vectors=min(n_vectors, cap) if cap else None)
        x = acts[:n_vectors]
        pr = participation_ratio(x)
        rows.append({"model": subject.name, "layer": layer, "hook": hook, "n_vectors": len(x),
                     "d_model": subject.d_model, "effective_rank": effective_rank(x), "pr_raw": pr,
                     "pr_deflated": participation_ratio(x, deflate=True), "pr_over_d_model": pr / subject.d_model})
    return rows


def plot(rows: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    layers = [r["layer"] for r in rows]
    for key, label in (("effective_rank", "effective rank"), ("pr_raw", "PR (raw)"), ("pr_deflated", "PR (deflated)")):
        ax.plot(layers, [r[key] for r in rows], marker="o", label=label)
    ax.set_xlabel("layer")
    ax.set_ylabel(f"dimensions (d_model = {rows[0]['d_model']})")
    ax.set_title(f"{rows[0]['model']}: activation geometry by layer", fontsize=9)
    ax.legend(fontsize=8)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))


def main(argv: list[str] | None = None) -> int:
    from hydra import compose, initialize_config_dir

    args = list(sys.argv[1:] if argv is None else argv)
    own = {a.split("=", 1)[0]: a.split("=", 1)[1] for a in args if a.split("=", 1)[0] in OWN_KEYS}
    overrides = [a for a in args if a.split("=", 1)[0] not in OWN_KEYS]
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = validate(compose("train", overrides=overrides))
        subject = build_subject(cfg.model)
        layers = [int(v) for v in own["layers"].split(",")] if "layers" in own else list(range(subject.n_layers))
        if any(not 0 <= layer < subject.n_layers for layer in layers):
            raise ConfigError(f"layers must be between 0 and {subject.n_layers - 1}, got {own['layers']}.")
        n_vectors = int(own.get("n_vectors", 20000))
    except (ConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = layer_geometry(subject, layers, Path(cfg.cache_dir), n_vectors)
    out = Path(own.get("out", Path("outputs/geometry") / Path(str(subject.name)).name))
    write_csv(out / "geometry.csv", rows)
    plot(rows, out / "geometry.png")
    print("| layer | effective rank | PR raw | PR deflated | PR/d_model |\n| ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['layer']} | {r['effective_rank']:.1f} | {r['pr_raw']:.1f} | {r['pr_deflated']:.1f} | "
              f"{r['pr_over_d_model']:.3f} |")
    print(f"Written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
