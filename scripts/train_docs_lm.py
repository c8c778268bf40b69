"""Train the shipped `docs-lm` subject: a small GPT-NeoX (Pythia's architecture) on the shipped docs corpus.

Plain PyTorch around transformers' GPTNeoXForCausalLM, from a fixed seed. Rows are what the project's
token loader gives a subject (sae_lab.data.tokens): the end-of-text id first, then 127 tokens of the
training stream; every epoch visits all rows in a seeded order. AdamW, linear warm-up then cosine decay.
A checkpoint after every epoch makes the run resumable (same command again); the finished model is saved
with save_pretrained (safetensors + config) beside the tokenizer, ready for TransformerBridge.

    python scripts/train_docs_lm.py --out sae_lab/models/weights/docs-lm
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

CORPUS = Path("sae_lab/data/corpora/docs")
SHAPE = {"hidden_size": 128, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 512,
         "max_position_embeddings": 128}
CONTEXT = 128


def rows(stream: np.ndarray, bos: int, context: int = CONTEXT) -> torch.Tensor:
    """[N, context] rows: bos + the next context - 1 tokens of the stream (a tail short of a row is dropped)."""
    body = context - 1
    n = stream.size // body
    ids = torch.from_numpy(stream[: n * body].astype(np.int64)).reshape(n, body)
    return torch.cat([torch.full((n, 1), bos, dtype=torch.long), ids], dim=1)


def build_model(vocab: int, eot: int, seed: int):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(seed)
    cfg = GPTNeoXConfig(vocab_size=vocab, rotary_pct=0.25, use_parallel_residual=True, tie_word_embeddings=False,
                        bos_token_id=eot, eos_token_id=eot, hidden_act="gelu", **SHAPE)
    return GPTNeoXForCausalLM(cfg)


@torch.no_grad()
def heldout_loss(model, data: torch.Tensor, batch: int = 64) -> float:
    """Mean next-token loss (nats) over every predicted position of `data` (the BOS is never a target)."""
    model.eval()
    total, count = 0.0, 0
    for i in range(0, len(data), batch):
        x = data[i:i + batch]
        logits = model(x).logits[:, :-1].float()
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1),
                                                 reduction="sum")
        total, count = total + loss.item(), count + x[:, 1:].numel()
    model.train()
    return total / count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--out", type=Path, default=Path("sae_lab/models/weights/docs-lm"))
    ap.add_argument("--work", type=Path, default=Path("outputs/docs_lm_train"), help="checkpoints and log")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--note", default="", help="a line for training.json (e.g. how the run was interrupted)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from transformers import PreTrainedTokenizerFast

    card = json.loads((args.corpus / "card.json").read_text())
    eot = card["tokenizer"]["end_of_text_id"]
    vocab = card["tokenizer"]["vocab_size"]
    train = rows(np.load(args.corpus / "train.npy"), eot)
    heldout = rows(np.load(args.corpus / "heldout.npy"), eot)[:256]  # a fixed subset, for the log only
    model = build_model(vocab, eot, args.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    steps_per_epoch = len(train) // args.batch
    total = steps_per_epoch * args.epochs

    def lr_at(step: int) -> float:
        if step < args.warmup:
            return (step + 1) / args.warmup
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - args.warmup) / max(1, total - args.warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    args.work.mkdir(parents=True, exist_ok=True)
    ckpt, log_path = args.work / "last.pt", args.work / "log.jsonl"
    epoch0, seconds0 = 0, 0.0
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        epoch0, seconds0 = state["epoch"], state["seconds"]
        print(f"resuming after epoch {epoch0}")
    model.train()
    for epoch in range(epoch0, args.epochs):
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(args.seed * 1000 + epoch))
        t0 = time.perf_counter()
        for s in range(steps_per_epoch):
            x = train[order[s * args.batch:(s + 1) * args.batch]]
            loss = model(x, labels=x).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            if s % 100 == 0:
                rate = (s + 1) * x.numel() / (time.perf_counter() - t0)
                print(f"epoch {epoch} step {s}/{steps_per_epoch} loss {loss.item():.3f} {rate:,.0f} tok/s", flush=True)
        epoch_seconds = time.perf_counter() - t0
        seconds = seconds0 + epoch_seconds
        seconds0 = seconds
        record = {"epoch": epoch + 1, "step": (epoch + 1) * steps_per_epoch, "train_loss_last": loss.item(),
                  "heldout_loss_256rows": heldout_loss(model, heldout), "seconds": seconds,
                  "epoch_seconds": epoch_seconds, "threads": torch.get_num_threads(),
                  "tokens": (epoch + 1) * steps_per_epoch * args.batch * CONTEXT}
        print(json.dumps(record), flush=True)
        with log_path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "epoch": epoch + 1, "seconds": seconds}, tmp)
        tmp.replace(ckpt)

    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    tok = PreTrainedTokenizerFast(tokenizer_file=str(args.corpus / "tokenizer" / "tokenizer.json"),
                                  bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    tok.model_max_length = CONTEXT
    tok.save_pretrained(args.out)
    train_info = {"seed": args.seed, "epochs": args.epochs, "batch_rows": args.batch, "context": CONTEXT,
                  "steps": total, "tokens_seen": total * args.batch * CONTEXT, "lr": args.lr,
                  "warmup_steps": args.warmup, "schedule": "linear warm-up, cosine to 0.1x", "optimizer":
                  "AdamW(betas=(0.9, 0.95), weight_decay=0.1), grad-norm clip 1.0",
                  "threads": torch.get_num_threads(), "wall_seconds": round(seconds0, 1),
                  "tokens_per_second": round(total * args.batch * CONTEXT / seconds0),
                  "epoch_log": [json.loads(line) for line in log_path.read_text().splitlines()], "note": args.note}
    if train_info["epoch_log"]:  # the last epoch alone: a rate undisturbed by pauses or resumes
        last = train_info["epoch_log"][-1]
        if "epoch_seconds" in last:
            train_info["tokens_per_second_last_epoch"] = round(steps_per_epoch * args.batch * CONTEXT
                                                                / last["epoch_seconds"])
    (args.out / "training.json").write_text(json.dumps(train_info, indent=2) + "\n")
    print(json.dumps(train_info))


if __name__ == "__main__":
    main()
