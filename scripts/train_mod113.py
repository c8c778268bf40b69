"""Train the shipped mod-113 subject model: a 2-layer attention+MLP transformer on (a + b) mod 113.

The network is written here in plain PyTorch with TransformerLens parameter names and shapes, so
the saved safetensors load straight into a TransformerBridge (sae_lab.models.mod113). Plain PyTorch
because full-batch grokking on a 2-core CPU is slow enough without hook overhead.

    python scripts/train_mod113.py --out sae_lab/models/weights
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from sae_lab.models.mod113 import D_VOCAB, SEQ_LEN, P, all_inputs, answers

# The network's shape (the task's constants come from sae_lab.models.mod113); the card records it.
D_MODEL, N_HEADS, D_HEAD, D_MLP, N_LAYERS, N_CTX = 128, 4, 32, 512, 2, SEQ_LEN


def init_params(gen: torch.Generator) -> dict[str, torch.Tensor]:
    def normal(*shape: int, std: float) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * std

    s = 1 / math.sqrt(D_MODEL)
    p = {
        "embed.W_E": normal(D_VOCAB, D_MODEL, std=s),
        "pos_embed.W_pos": normal(N_CTX, D_MODEL, std=s),
        "unembed.W_U": normal(D_MODEL, P, std=s),
        "unembed.b_U": torch.zeros(P),
    }
    for layer in range(N_LAYERS):
        b = f"blocks.{layer}."
        for w in ("W_Q", "W_K", "W_V"):
            p[b + "attn." + w] = normal(N_HEADS, D_MODEL, D_HEAD, std=s)
            p[b + "attn.b_" + w[-1]] = torch.zeros(N_HEADS, D_HEAD)
        p[b + "attn.W_O"] = normal(N_HEADS, D_HEAD, D_MODEL, std=1 / math.sqrt(D_HEAD * N_HEADS))
        p[b + "attn.b_O"] = torch.zeros(D_MODEL)
        p[b + "mlp.W_in"] = normal(D_MODEL, D_MLP, std=s)
        p[b + "mlp.b_in"] = torch.zeros(D_MLP)
        p[b + "mlp.W_out"] = normal(D_MLP, D_MODEL, std=1 / math.sqrt(D_MLP))
        p[b + "mlp.b_out"] = torch.zeros(D_MODEL)
    return p


def residual(p: dict[str, torch.Tensor], tokens: torch.Tensor, all_positions: bool = False,
             record: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """The last block's resid_post, [batch, pos, d_model]; only the "=" position unless `all_positions`.
    `record` (with `all_positions`) receives every residual and MLP activation by TransformerLens hook name."""
    keep = record.__setitem__ if record is not None else lambda name, value: None
    x = p["embed.W_E"][tokens] + p["pos_embed.W_pos"]
    keep("blocks.0.hook_resid_pre", x)
    mask = torch.triu(torch.ones(N_CTX, N_CTX, dtype=torch.bool), 1)
    for layer in range(N_LAYERS):
        b = f"blocks.{layer}."
        q_in = x if layer < N_LAYERS - 1 or all_positions else x[:, -1:]
        q = torch.einsum("bpd,hde->bhpe", q_in, p[b + "attn.W_Q"]) + p[b + "attn.b_Q"][:, None]
        k = torch.einsum("bpd,hde->bhpe", x, p[b + "attn.W_K"]) + p[b + "attn.b_K"][:, None]
        v = torch.einsum("bpd,hde->bhpe", x, p[b + "attn.W_V"]) + p[b + "attn.b_V"][:, None]
        scores = q @ k.transpose(-1, -2) / math.sqrt(D_HEAD)
        scores = scores.masked_fill(mask[-q_in.shape[1]:], float("-inf"))
        z = scores.softmax(-1) @ v
        attn_out = torch.einsum("bhpe,hed->bpd", z, p[b + "attn.W_O"]) + p[b + "attn.b_O"]
        x = q_in + attn_out
        keep(b + "hook_resid_mid", x)
        hidden = torch.relu(x @ p[b + "mlp.W_in"] + p[b + "mlp.b_in"])
        keep(b + "mlp.hook_post", hidden)
        x = x + hidden @ p[b + "mlp.W_out"] + p[b + "mlp.b_out"]
        keep(b + "hook_resid_post", x)
    return x


def forward(p: dict[str, torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
    """Logits at the "=" position, [batch, 113]. The last block computes only that position."""
    return residual(p, tokens)[:, -1] @ p["unembed.W_U"] + p["unembed.b_U"]


def erank_by_position(x: torch.Tensor) -> dict[str, float]:
    """Effective rank of activations [12,769, pos, d] at a, b, = and over all three positions."""
    from sae_lab.metrics.spectrum import effective_rank

    out = {f"erank_{name}": effective_rank(x[:, i]) for i, name in enumerate(("a", "b", "eq"))}
    out["erank_all"] = effective_rank(x.reshape(-1, x.shape[-1]))
    return out


def layer1_erank(p: dict[str, torch.Tensor]) -> dict[str, float]:
    """Effective rank of the last block's resid_post over all 12,769 inputs, at a, b, = and all three."""
    with torch.no_grad():
        return erank_by_position(residual(p, all_inputs(), all_positions=True))


def erank_by_hook(p: dict[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """layer1_erank's numbers at every residual and MLP hook of the network, by hook name."""
    record: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        residual(p, all_inputs(), all_positions=True, record=record)
    return {hook: erank_by_position(x) for hook, x in record.items()}


def initial_params(seed: int = 0, init_scale: float = 1.0) -> dict[str, torch.Tensor]:
    """The weights `train(seed=seed)` starts from (the data split is drawn first from the same generator)."""
    gen = torch.Generator().manual_seed(seed)
    torch.randperm(len(all_inputs()), generator=gen)
    return {k: v * init_scale for k, v in init_params(gen).items()}


def train(train_frac: float = 0.5, lr: float = 2e-3, weight_decay: float = 1.0, seed: int = 0,
          max_steps: int = 40_000, log_every: int = 100, stop: str = "clean", init_scale: float = 1.0,
          log=print, on_check=None) -> tuple[dict[str, torch.Tensor], dict]:
    """Full-batch AdamW. stop="clean": held-out accuracy 1 and train loss < 1e-3 (after clean-up);
    stop="first": the first check at which every one of the 12,769 pairs is right. Every `log_every` steps
    (a check) `on_check(step, params, {"train_loss", "test_acc", "acc_all"})` is called when given."""
    tokens = all_inputs()
    labels = answers(tokens)
    perm = torch.randperm(len(tokens), generator=torch.Generator().manual_seed(seed))
    n_train = int(train_frac * len(tokens))
    train_idx, test_idx = perm[:n_train], perm[n_train:]
    params = {k: v.requires_grad_() for k, v in initial_params(seed, init_scale).items()}
    opt = torch.optim.AdamW(params.values(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    start, step, reached = time.time(), 0, False
    for step in range(1, max_steps + 1):
        loss = torch.nn.functional.cross_entropy(forward(params, tokens[train_idx]), labels[train_idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % log_every == 0:
            with torch.no_grad():
                test_acc = (forward(params, tokens[test_idx]).argmax(-1) == labels[test_idx]).float().mean()
                acc_all = (forward(params, tokens).argmax(-1) == labels).float().mean()
            log(f"step {step} train_loss {loss.item():.3e} test_acc {test_acc:.4f} t {time.time() - start:.0f}s")
            if on_check is not None:
                on_check(step, params, {"train_loss": loss.item(), "test_acc": test_acc.item(),
                                        "acc_all": acc_all.item()})
            done = acc_all == 1.0 if stop == "first" else (test_acc == 1.0 and loss.item() < 1e-3)
            if done:
                reached = True
                break
    with torch.no_grad():
        acc_all = (forward(params, tokens).argmax(-1) == labels).float().mean().item()
        acc_test = (forward(params, tokens[test_idx]).argmax(-1) == labels[test_idx]).float().mean().item()
    card = {
        "task": "(a + b) mod 113, input tokens [a, b, =]",
        "architecture": {"n_layers": N_LAYERS, "d_model": D_MODEL, "n_heads": N_HEADS,
                         "d_head": D_HEAD, "d_mlp": D_MLP, "act_fn": "relu", "normalization": None,
                         "d_vocab": D_VOCAB, "d_vocab_out": P, "n_ctx": N_CTX},
        "recipe": {"optimizer": "AdamW full-batch", "lr": lr, "weight_decay": weight_decay,
                   "betas": [0.9, 0.98], "train_frac": train_frac, "seed": seed, "stop": stop,
                   "init_scale": init_scale},
        "steps": step, "stop_reached": reached, "train_seconds": round(time.time() - start),
        "final_train_loss": loss.item(), "heldout_accuracy": acc_test, "accuracy_all_pairs": acc_all,
    }
    return params, card


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("sae_lab/models/weights"))
    ap.add_argument("--name", default="mod113", help="file stem: <name>.safetensors and <name>.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-frac", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--weight-decay", type=float, default=1.0)
    ap.add_argument("--init-scale", type=float, default=1.0)
    ap.add_argument("--stop", choices=("clean", "first"), default="clean")
    ap.add_argument("--max-steps", type=int, default=40_000)
    ap.add_argument("--log-every", type=int, default=100)
    args = ap.parse_args()
    params, card = train(args.train_frac, args.lr, args.weight_decay, args.seed, args.max_steps,
                         args.log_every, args.stop, args.init_scale, log=lambda m: print(m, flush=True))
    card.update(layer1_erank(params))
    args.out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in params.items()}, str(args.out / f"{args.name}.safetensors"))
    (args.out / f"{args.name}.json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
