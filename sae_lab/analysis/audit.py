"""The held-out audit cascade (paper §4.1) of a condition's finished runs: decoder, activation-pattern
and firing-overlap Hungarian between the seeds' exported SAEs, each beside its null.

Nulls: decoder Hungarian of two random dictionaries of the same shape; for the activation and firing
matchings, the same statistic with the second seed's feature indices shuffled independently in each
block of NULL_BLOCK held-out tokens (keeps every token's sparsity, breaks feature identity)."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf

from sae_lab.artifacts import RunDir
from sae_lab.metrics.agreement import (
    activation_hungarian,
    decoder_hungarian,
    firing_overlap_hungarian,
    permute_features_per_block,
    random_dictionaries,
)

AUDIT_TOKENS = 2048   # held-out tokens the codes are compared on
AUDIT_MAX_SEEDS = 5   # the pairs among a condition's first 5 seeds (10 pairs): ~1 s per pair at d_sae 1024
NULL_BLOCK = 256
METRICS = ("decoder", "activation", "firing")


def held_out_activations(run: RunDir, n_tokens: int = AUDIT_TOKENS) -> torch.Tensor:
    """The first `n_tokens` held-out activation vectors of the run's subject and hook, from its cache."""
    from sae_lab.config import build_subject, validate
    from sae_lab.data import cached_activations

    cfg = validate(OmegaConf.load(run.config))
    subject = build_subject(cfg.model)
    _, eval_acts = cached_activations(subject, subject.hook_name(cfg.layer), cfg.cache_dir, dtype=cfg.cache_dtype)
    return torch.as_tensor(np.asarray(eval_acts[:n_tokens]), dtype=torch.float32)


def pair_audit(dec_s: torch.Tensor, dec_t: torch.Tensor, z_s: torch.Tensor, z_t: torch.Tensor,
               null_seed: int = 0) -> dict:
    """The three matchings of one seed pair and the two code-based nulls."""
    shuffled = permute_features_per_block(z_t, NULL_BLOCK, seed=null_seed)
    return {"decoder": decoder_hungarian(dec_s, dec_t)["mean"],
            "activation": activation_hungarian(z_s, z_t), "activation_null": activation_hungarian(z_s, shuffled),
            "firing": firing_overlap_hungarian(z_s, z_t), "firing_null": firing_overlap_hungarian(z_s, shuffled)}


def audit_condition(members: dict[int, RunDir]) -> pd.DataFrame:
    """One row per audited seed pair (seed_a, seed_b, the three matchings and their nulls). Members
    without an export are skipped; fewer than two exports give an empty frame."""
    from sae_lab.sae.export import load_member

    seeds = [s for s in sorted(members) if members[s].sae_weights(s).is_file()][:AUDIT_MAX_SEEDS]
    if len(seeds) < 2:
        return pd.DataFrame()
    x = held_out_activations(members[seeds[0]])
    decoders, codes = {}, {}
    with torch.no_grad():
        for s in seeds:
            sae = load_member(members[s].root, s)
            decoders[s], codes[s] = sae.decoder()[0], sae.encode(x)[0]
    m, d = decoders[seeds[0]].shape
    null = decoder_hungarian(*random_dictionaries(2, m, d, seed=0))["mean"]
    rows = [{"seed_a": a, "seed_b": b, **pair_audit(decoders[a], decoders[b], codes[a], codes[b], null_seed=i),
             "decoder_null": null} for i, (a, b) in enumerate(combinations(seeds, 2))]
    return pd.DataFrame(rows)


def audit_summary(pairs: pd.DataFrame) -> dict:
    """Mean over pairs of each matching, its null and their ratio (audit_<metric>, _null, _ratio)."""
    out = {}
    for name in METRICS:
        value, null = float(pairs[name].mean()), float(pairs[f"{name}_null"].mean())
        out |= {f"audit_{name}": value, f"audit_{name}_null": null, f"audit_{name}_ratio": value / null}
    return out


def audit_table(summary: dict, n_pairs: int) -> str:
    shuffled = f"null: features shuffled per {NULL_BLOCK}-token block"
    labels = {"decoder": "decoder Hungarian (matched abs. cosine; null: random dictionaries)",
              "activation": f"activation-pattern Hungarian (Pearson; {shuffled})",
              "firing": f"firing-overlap Hungarian (Jaccard; {shuffled})"}
    lines = [f"Held-out audit cascade of the exported SAEs ({n_pairs} seed pairs, {AUDIT_TOKENS} held-out tokens):", "",
             "| matching | trained | null | × null |", "| :--- | ---: | ---: | ---: |"]
    lines += [f"| {labels[n]} | {summary[f'audit_{n}']:.4f} | {summary[f'audit_{n}_null']:.4f} | "
              f"{summary[f'audit_{n}_ratio']:.3f}× |" for n in METRICS]
    return "\n".join(lines)
