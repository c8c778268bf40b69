"""Measure the shipped `docs-lm` subject and write its card (card.json with sha256 of every file, MODEL_CARD.md).

Everything goes through the project's own loading path (`model=docs-lm`: HFSubject, TransformerBridge,
the token loader), the one that loads Pythia:
  * held-out loss per token: the model's mean next-token loss over the held-out split (every row the
    loader packs from heldout.npy) and over the fixed subset a test recomputes (the first 200 held-out rows,
    `model.data.n_eval_sequences=200`), against
  * the unigram entropy of the held-out split (its own token frequencies: no unigram model does better),
    a unigram model fitted on the training split (add-one), and a bigram model fitted on the training split
    (interpolated with that unigram; the weight is the best of a grid on the held-out split, so the
    bigram's number is its best case);
  * effective rank and participation ratio of the residual stream (embeddings and every block's output)
    on the first 200 held-out rows (all positions but the BOS);
  * greedy continuations of a few prompts.

    python scripts/docs_lm_card.py [--model-dir sae_lab/models/weights/docs-lm]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from sae_lab.metrics.spectrum import effective_rank, participation_ratio
from sae_lab.shipped import CARD, sha256_of

PROMPTS = ["The Python", "Django", "To create a new", "A list is", "This function returns"]
SUBSET_ROWS = 200


def subject(overrides: list[str] | None = None):
    from hydra import compose, initialize_config_dir

    from sae_lab.config import CONF_DIR, build_subject

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["model=docs-lm", *(overrides or [])])
    return build_subject(cfg.model)


def mean_loss(subj, rows: torch.Tensor, batch: int = 100) -> float:
    """Mean next-token loss per token over every scored position of `rows` (rows have equal length)."""
    return float(torch.cat([subj.loss(rows[i:i + batch]) for i in range(0, len(rows), batch)]).mean())


def ngram_baselines(train: np.ndarray, heldout: np.ndarray, vocab: int) -> dict:
    """Held-out loss per token (nats) of unigram and bigram models fitted on the training stream."""
    p_held = np.bincount(heldout, minlength=vocab) / heldout.size
    nz = p_held > 0
    entropy = float(-(p_held[nz] * np.log(p_held[nz])).sum())
    uni = (np.bincount(train, minlength=vocab) + 1.0) / (train.size + vocab)
    unigram_ce = float(-np.log(uni[heldout]).mean())
    pairs = train[:-1].astype(np.int64) * vocab + train[1:]
    keys, counts = np.unique(pairs, return_counts=True)
    ctx = np.bincount(train[:-1], minlength=vocab).astype(np.float64)
    h_pairs = heldout[:-1].astype(np.int64) * vocab + heldout[1:]
    pos = np.searchsorted(keys, h_pairs)
    pos = np.minimum(pos, keys.size - 1)
    c_pair = np.where(keys[pos] == h_pairs, counts[pos], 0).astype(np.float64)
    c_ctx = ctx[heldout[:-1]]
    p_ml = np.divide(c_pair, c_ctx, out=np.zeros_like(c_pair), where=c_ctx > 0)
    p_uni = uni[heldout[1:]]
    grid = [round(x, 2) for x in np.arange(0.05, 1.0, 0.05)]
    ces = {lam: float(-np.log(lam * p_ml + (1 - lam) * p_uni).mean()) for lam in grid}
    best = min(ces, key=ces.get)
    return {"unigram_entropy_of_heldout": entropy, "unigram_train_fitted": unigram_ce,
            "bigram_train_fitted": ces[best], "bigram_interpolation_weight": best}


def geometry(subj, rows: torch.Tensor) -> list[dict]:
    hooks = [("embeddings", "blocks.0.hook_resid_pre")] + [
        (f"block {layer} output", subj.hook_name(layer)) for layer in range(subj.n_layers)]
    out = []
    for label, hook in hooks:
        x = torch.cat([subj.activations(rows[i:i + 50], hook) for i in range(0, len(rows), 50)])
        out.append({"residual": label, "hook": hook, "n_vectors": len(x), "effective_rank": effective_rank(x),
                    "participation_ratio": participation_ratio(x)})
    return out


def samples(model_dir: Path) -> list[dict]:
    from transformers import AutoTokenizer, GPTNeoXForCausalLM

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = GPTNeoXForCausalLM.from_pretrained(model_dir).eval()
    out = []
    for prompt in PROMPTS:
        ids = torch.tensor([[tok.bos_token_id, *tok(prompt, add_special_tokens=False)["input_ids"]]])
        with torch.no_grad():
            gen = model.generate(ids, max_new_tokens=40, do_sample=False, pad_token_id=tok.eos_token_id)
        out.append({"prompt": prompt, "greedy": tok.decode(gen[0, ids.shape[1]:])})
    return out


def write_markdown(card: dict, path: Path) -> None:
    a, t, e = card["architecture"], card["training"], card["evaluation"]
    lines = [
        "# docs-lm: model card", "",
        f"A GPT-NeoX (Pythia's architecture) of d_model {a['hidden_size']}, {a['num_hidden_layers']} layers, "
        f"{a['num_attention_heads']} heads, d_mlp {a['intermediate_size']}, context {a['max_position_embeddings']}, "
        f"vocabulary {a['vocab_size']} ({a['parameters']:,} parameters), trained from seed {t['seed']} by "
        "`scripts/train_docs_lm.py` on the training split of the shipped docs corpus "
        "(`sae_lab/data/corpora/docs/DATA_CARD.md`).", "",
        f"Training: {t['steps']:,} steps of {t['batch_rows']} rows x {t['context']} tokens = "
        f"{t['tokens_seen']:,} tokens ({t['epochs']} passes over the split), {t['optimizer']}, lr {t['lr']} "
        f"({t['schedule']}); {t['wall_seconds'] / 60:.1f} min wall in all ({t['tokens_per_second']:,} tokens/s), "
        f"{t.get('tokens_per_second_last_epoch', t['tokens_per_second']):,} tokens/s in the last epoch on "
        f"{t['threads']} CPU thread(s). Held-out loss on 256 held-out rows after each pass: "
        f"{', '.join(format(e['heldout_loss_256rows'], '.3f') for e in t.get('epoch_log', []))}. "
        f"{t.get('note', '')}", "",
        "## Held-out loss (nats per token)", "",
        "| model or baseline | loss |", "| :--- | ---: |",
        f"| docs-lm, whole held-out split ({e['heldout_rows']} rows) | {e['heldout_loss']:.4f} |",
        f"| docs-lm, first {SUBSET_ROWS} held-out rows (the test's fixed subset) | {e['heldout_loss_subset']:.4f} |",
        f"| bigram fitted on the training split (interpolation weight {e['bigram_interpolation_weight']}) | "
        f"{e['bigram_train_fitted']:.4f} |",
        f"| unigram fitted on the training split | {e['unigram_train_fitted']:.4f} |",
        f"| unigram entropy of the held-out split | {e['unigram_entropy_of_heldout']:.4f} |", "",
        "Model losses score every next-token prediction of rows of 128 tokens (end-of-text first, as the "
        "project's loader packs them); n-gram losses score the held-out stream.", "",
        "## Residual-stream geometry on held-out text", "",
        "| residual | hook | vectors | effective rank | participation ratio |", "| :--- | :--- | ---: | ---: | ---: |",
        *[f"| {g['residual']} | `{g['hook']}` | {g['n_vectors']:,} | {g['effective_rank']:.1f} | "
          f"{g['participation_ratio']:.1f} |" for g in card["geometry"]], "",
        "## Greedy samples", "",
        *[f"- **{s['prompt']}** → {json.dumps(s['greedy'])}" for s in card["samples"]], "",
        "## Files (sha256)", "",
        *[f"- `{f}`: `{h}`" for f, h in card["sha256"].items()], "",
    ]
    path.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", type=Path, default=Path("sae_lab/models/weights/docs-lm"))
    ap.add_argument("--corpus", type=Path, default=Path("sae_lab/data/corpora/docs"))
    args = ap.parse_args()
    (args.model_dir / CARD).unlink(missing_ok=True)  # the card is rewritten below, with the new digests
    corpus = json.loads((args.corpus / CARD).read_text())
    heldout_tokens = corpus["splits"]["heldout"]["tokens"]
    whole = subject([f"model.data.n_eval_sequences={heldout_tokens // 127}", "model.data.n_train_vectors=127"])
    rows = whole.eval_dataset()
    subset = rows[:SUBSET_ROWS]
    cfg = json.loads((args.model_dir / "config.json").read_text())
    from safetensors import safe_open

    with safe_open(str(args.model_dir / "model.safetensors"), "pt") as f:
        n_params = sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys())
    evaluation = {"heldout_rows": len(rows), "heldout_loss": mean_loss(whole, rows),
                  "subset_rows": SUBSET_ROWS, "heldout_loss_subset": mean_loss(whole, subset),
                  **ngram_baselines(np.load(args.corpus / "train.npy").astype(np.int64),
                                    np.load(args.corpus / "heldout.npy").astype(np.int64), cfg["vocab_size"])}
    arch = {k: cfg[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                                "max_position_embeddings", "vocab_size", "use_parallel_residual")}
    arch["rotary_fraction"] = cfg.get("rope_parameters", {}).get("partial_rotary_factor", cfg.get("rotary_pct"))
    arch["parameters"] = n_params
    files = sorted(p.name for p in args.model_dir.iterdir() if p.is_file() and p.name not in (CARD, "MODEL_CARD.md"))
    card = {"name": "docs-lm", "architecture": arch,
            "training": json.loads((args.model_dir / "training.json").read_text()),
            "evaluation": evaluation, "geometry": geometry(whole, subset), "samples": samples(args.model_dir),
            "sha256": {f: sha256_of(args.model_dir / f) for f in files}}
    write_markdown(card, args.model_dir / "MODEL_CARD.md")
    (args.model_dir / CARD).write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(evaluation, indent=2))
    print(f"bigram - model: {evaluation['bigram_train_fitted'] - evaluation['heldout_loss']:.3f} nats/token; "
          f"perplexity {math.exp(evaluation['heldout_loss']):.1f}")


if __name__ == "__main__":
    main()
