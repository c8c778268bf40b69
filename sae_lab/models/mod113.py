"""The default subject: a 2-layer transformer trained through grokking on (a + b) mod 113.

Its weights ship with the package (weights/mod113.safetensors, card in weights/mod113.json,
trained by scripts/train_mod113.py) and load into a TransformerLens 4 TransformerBridge built
with `boot_native`, so hook names are TransformerLens's (`blocks.1.hook_resid_post`).
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property, lru_cache
from pathlib import Path

import torch
from safetensors.torch import load_file

from sae_lab.metrics.behaviour import ce_per_sequence
from sae_lab.models.downstream import clean_forward, clean_residual, logits_after
from sae_lab.models.protocol import Patch

# The task: (a + b) mod P on inputs [a, b, =]; scripts/train_mod113.py imports these.
P = 113
EQ_TOKEN = P
D_VOCAB = P + 1          # 0..P-1 and "="
SEQ_LEN = 3
ANSWER_POSITION = 2  # input is [a, b, =]; the answer is read at "="
WEIGHTS_DIR = Path(__file__).parent / "weights"
WEIGHTS_FILE = WEIGHTS_DIR / "mod113.safetensors"
CARD_FILE = WEIGHTS_DIR / "mod113.json"


def all_inputs() -> torch.Tensor:
    """All 12,769 inputs [a, b, =] as token ids, a-major."""
    a = torch.arange(P).repeat_interleave(P)
    b = torch.arange(P).repeat(P)
    return torch.stack([a, b, torch.full_like(a, EQ_TOKEN)], dim=1)


def answers(tokens: torch.Tensor) -> torch.Tensor:
    return (tokens[:, 0] + tokens[:, 1]) % P


def _scored(logits: torch.Tensor, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probs [S, 1, P] of the answer read at `=`, the answers [S, 1]) from full logits [S, 3, V]."""
    return logits[:, ANSWER_POSITION].float().log_softmax(-1)[:, None, :], answers(batch)[:, None]


def bridge_config(arch: dict):
    from transformer_lens.config import TransformerBridgeConfig

    return TransformerBridgeConfig(
        d_model=arch["d_model"], n_layers=arch["n_layers"], n_heads=arch["n_heads"],
        d_head=arch["d_head"], d_mlp=arch["d_mlp"], n_ctx=arch["n_ctx"], d_vocab=arch["d_vocab"],
        d_vocab_out=arch["d_vocab_out"], act_fn=arch["act_fn"], normalization_type=None,
        positional_embedding_type="standard", seed=0,
    )


def shipped_weights() -> list[str]:
    """Names of the mod-113 networks in the package (`model.weights=`), each a .safetensors with its .json card."""
    return sorted(f.stem for f in WEIGHTS_DIR.glob("*.safetensors") if f.with_suffix(".json").is_file())


@lru_cache(maxsize=2)
def _shared_bridge(arch_json: str, weights_file: str, device: str):
    from transformer_lens.model_bridge import TransformerBridge
    from transformer_lens.utilities.tl_checkpoint_conversion import convert_tl_checkpoint

    cfg = bridge_config(json.loads(arch_json))
    bridge = TransformerBridge.boot_native(cfg)
    state = convert_tl_checkpoint(load_file(weights_file), cfg)
    result = bridge.load_state_dict(state, strict=True)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"{weights_file} does not match the model card's architecture.")
    return bridge.to(device).eval()


class Mod113:
    """Subject-model protocol for the shipped mod-113 transformer."""

    eval_is_train = True  # the paper trains and evaluates on all 12,769 inputs

    def __init__(self, name: str = "mod113", hook_site: str = "resid_post", default_layer: int = 1,
                 device: str | torch.device = "cpu", weights: str = "mod113") -> None:
        self.weights_file = WEIGHTS_DIR / f"{weights}.safetensors"
        if not self.weights_file.is_file() or not self.weights_file.with_suffix(".json").is_file():
            raise FileNotFoundError(f"model.weights={weights} is not a mod-113 network in sae_lab/models/weights; "
                                    f"shipped: {', '.join(shipped_weights()) or 'none'} (reinstall sae_lab or train "
                                    "one with scripts/train_mod113.py).")
        self.name, self.hook_site, self.default_layer = name, hook_site, int(default_layer)
        self.card = json.loads(self.weights_file.with_suffix(".json").read_text())
        arch = self.card["architecture"]
        self.d_model: int = arch["d_model"]
        self.n_layers: int = arch["n_layers"]
        self.device = torch.device(device)
        self._arch = arch

    @cached_property
    def bridge(self):
        """The TransformerBridge, built on first use and shared by every Mod113 in this process on
        the same device (building it costs seconds; the jobs of a local sweep run in one process).
        It is only ever run, never trained, so sharing it is safe."""
        return _shared_bridge(json.dumps(self._arch, sort_keys=True), str(self.weights_file), str(self.device))

    def fingerprint(self) -> str:
        return hashlib.sha256(self.weights_file.read_bytes()).hexdigest()[:16]

    def hook_name(self, layer: int, site: str | None = None) -> str:
        if not 0 <= layer < self.n_layers:
            raise ValueError(f"layer={layer} is out of range; mod113 has layers 0..{self.n_layers - 1}.")
        return f"blocks.{layer}.hook_{site or self.hook_site}"

    def dataset(self) -> torch.Tensor:
        """The data set for activations and behaviour: every input, [12769, 3]."""
        return all_inputs()

    def data_spec(self) -> dict:
        return {"dataset": "mod113-all-pairs", "positions": "="}

    @torch.no_grad()
    def logits(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.bridge(tokens.to(self.device))[:, ANSWER_POSITION]

    @torch.no_grad()
    def activations(self, batch: torch.Tensor, hook: str) -> torch.Tensor:
        _, cache = self.bridge.run_with_cache(batch.to(self.device), names_filter=lambda n: n == hook)
        return cache[hook][:, ANSWER_POSITION].float()

    @torch.no_grad()
    def clean_residual(self, batch: torch.Tensor, hook: str) -> torch.Tensor | None:
        """The unpatched activation at a resid_post `hook`, [S, 3, d_model] (None for other sites)."""
        return clean_residual(self.bridge, batch.to(self.device), hook, self.n_layers)

    @torch.no_grad()
    def scored_logprobs(self, batch: torch.Tensor, patch: Patch | None = None, hook: str | None = None,
                        residual: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probs [S, 1, P] of the answer read at `=`, the answers [S, 1]); `patch` replaces the
        `=` activation at `hook` first. With `residual` (from `clean_residual`), only the model
        downstream of the hook runs."""
        batch = batch.to(self.device)
        if patch is not None and hook is None:
            raise ValueError("a patch needs the hook name to patch at.")

        def patched(act: torch.Tensor) -> torch.Tensor:
            act = act.clone()
            act[:, ANSWER_POSITION] = patch(act[:, ANSWER_POSITION]).to(act.dtype)
            return act

        if patch is None:
            logits = self.bridge(batch)
        elif residual is not None:
            logits = logits_after(self.bridge, hook, patched(residual), self.n_layers)
        else:
            logits = self.bridge.run_with_hooks(batch, fwd_hooks=[(hook, lambda act, hook=None: patched(act))])
        return _scored(logits, batch)

    @torch.no_grad()
    def clean_pass(self, batch: torch.Tensor, hook: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """`scored_logprobs(batch)` and `clean_residual(batch, hook)` together: for the last block's
        resid_post the residual's forward is the whole model, so its logits serve (one forward, not two)."""
        batch = batch.to(self.device)
        logits, residual = clean_forward(self.bridge, batch, hook, self.n_layers)
        return *_scored(self.bridge(batch) if logits is None else logits, batch), residual

    @torch.no_grad()
    def loss(self, batch: torch.Tensor, patch: Patch | None = None, hook: str | None = None) -> torch.Tensor:
        """Per-example CE of the answer token [S]; `patch` replaces the `=` activation at `hook`."""
        logprobs, targets = self.scored_logprobs(batch, patch, hook)
        return ce_per_sequence(logprobs, targets)

    def eval_dataset(self) -> torch.Tensor:
        """Held-out sequences for behaviour: for mod113 every input, as the paper trains and evaluates
        on all 12,769 (the one exception to disjoint train/eval data)."""
        return all_inputs()

    def accuracy(self, tokens: torch.Tensor | None = None) -> float:
        tokens = self.dataset() if tokens is None else tokens
        return (self.logits(tokens).argmax(-1).cpu() == answers(tokens)).float().mean().item()
