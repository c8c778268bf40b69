"""Activation-cache build of the shipped language model (`model=docs-lm`) against a bare transformers forward.

    python benchmarks/cache_build.py [--vectors 200000] [--layer 2] [--repeats 1]

sae_lab: `subject_activations` into an empty cache dir (token packing, the TransformerBridge forward up to
the layer, shards written with checksums and verified on load), timed from the subject's construction.
Reference, in the same process: the same rows through transformers' GPTNeoXForCausalLM with
output_hidden_states, batch 32 rows, the kept positions copied into one preallocated tensor (nothing
written). Prints both wall times and sae_lab's throughput as a ratio of the reference's.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from sae_lab.config import CONF_DIR, build_subject
from sae_lab.data import subject_activations


def subject(vectors: int):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["model=docs-lm", f"model.data.n_train_vectors={vectors}"])
    return build_subject(cfg.model)


def time_sae_lab(vectors: int, layer: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subj = subject(vectors)
        acts = subject_activations(subj, subj.hook_name(layer), Path(tmp), progress=False)
        return time.perf_counter() - t0, len(acts)


@torch.no_grad()
def time_reference(vectors: int, layer: int) -> float:
    from transformers import GPTNeoXForCausalLM

    subj = subject(vectors)
    rows = subj.dataset()  # packing is not timed here: the reference is the forward alone
    t0 = time.perf_counter()
    model = GPTNeoXForCausalLM.from_pretrained(subj.source).eval()
    out = torch.empty(len(rows) * (rows.shape[1] - 1), model.config.hidden_size)
    at = 0
    for i in range(0, len(rows), 32):
        h = model(rows[i:i + 32], output_hidden_states=True).hidden_states[layer + 1][:, 1:]
        h = h.reshape(-1, h.shape[-1])
        out[at:at + len(h)] = h
        at += len(h)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vectors", type=int, default=200_000)
    ap.add_argument("--layer", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    ours, ref = [], []
    for _ in range(args.repeats):  # in turn, so a slow spell of the machine hits both
        seconds, n = time_sae_lab(args.vectors, args.layer)
        ours.append(seconds)
        ref.append(time_reference(args.vectors, args.layer))
    a, b = statistics.median(ours), statistics.median(ref)
    print(f"docs-lm layer {args.layer}, {n:,} vectors, {torch.get_num_threads()} threads, median of {args.repeats}")
    print(f"sae_lab cache build: {a:.1f} s ({n / a:,.0f} vectors/s)")
    print(f"bare transformers forward: {b:.1f} s")
    print(f"sae_lab / bare throughput: {b / a:.2f}x")


if __name__ == "__main__":
    main()
