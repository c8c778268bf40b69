"""A Hugging Face causal LM as a subject model, through a TransformerLens 4 TransformerBridge.

`HFSubject("EleutherAI/pythia-70m")` or `HFSubject("/path/written/by/save_pretrained")`.

The constructor only reads the HF config (fast; it fails fast, with `SubjectUnavailable`, when the
model cannot be found locally and the Hub cannot be reached); the bridge is built with
`TransformerBridge.boot_transformers` on first use. Hook names are TransformerLens's
(`blocks.{layer}.hook_resid_post`); the bridge returns raw HF numerics (no weight folding), so
`blocks.{l}.hook_resid_post` is the output of HF's block l.

Positions. `positions="all_but_bos"` (default) keeps every position except 0 (the BOS position of
rows built with `prepend_bos=True`); `positions="all"` keeps every position. `activations` returns
the kept positions sequence-major, [S * P, d_model]; `patch` replaces the hook's activation at the
kept positions only.

Scored positions. `loss` and `scored_logprobs` score every next-token prediction of a row: the
logits at positions 0..T-2 against the tokens at 1..T-1 (P' = T - 1), i.e. the model's ordinary
LM loss of the row; with `all_but_bos` the prediction made at the BOS position is scored but can
not be changed by a patch (it sees only BOS).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from sae_lab.models.downstream import clean_residual, logits_after
from sae_lab.models.hub import SubjectUnavailable, download_hint, first_line, hub_offline, hub_reachable, read_hf_config
from sae_lab.models.protocol import Patch
from sae_lab.shipped import verify_card

SITES = ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out")
POSITIONS = ("all_but_bos", "all")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack")
_CTX_FIELDS = ("n_positions", "max_position_embeddings", "max_context_length", "max_length", "seq_length",
               "max_sequence_length", "n_ctx")


class HFSubject:
    """Subject-model protocol for a causal LM that TransformerLens 4's TransformerBridge supports."""

    def __init__(self, name: str, hook_site: str = "resid_post", device: str | torch.device = "cpu",
                 dtype: str = "float32", positions: str = "all_but_bos", data: Any = None,
                 default_layer: int | None = None) -> None:
        if hook_site not in SITES:
            raise ValueError(f"model.hook_site={hook_site!r} is not a supported site; allowed: {', '.join(SITES)}.")
        if positions not in POSITIONS:
            raise ValueError(f"model.positions={positions!r} is not allowed; use one of {', '.join(POSITIONS)}.")
        if dtype not in DTYPES:
            raise ValueError(f"model.dtype={dtype!r} is not supported; allowed: {', '.join(DTYPES)}.")
        self.name = str(name)
        self.hook_site = hook_site
        self.positions = positions
        self.dtype_name = dtype
        self.dtype = DTYPES[dtype]
        self.device = torch.device(device)
        self._data = data
        self._local_dir: Path | None = None
        self._offline = False  # load from the local cache only (Hub unreachable or HF_HUB_OFFLINE)
        self.config, self._local_dir, self._offline = read_hf_config(self.name)
        # a directory with a card.json (a shipped subject, its corpus) is checked before any work
        if self._local_dir is not None:
            verify_card(self._local_dir)
        if data is not None and Path(self.data.dataset).expanduser().is_dir():
            verify_card(Path(self.data.dataset).expanduser())
        text_cfg = self.config.get_text_config() if hasattr(self.config, "get_text_config") else self.config
        self.d_model: int = int(text_cfg.hidden_size)
        self.n_layers: int = int(text_cfg.num_hidden_layers)
        self.d_vocab: int = int(text_cfg.vocab_size)
        n_ctx = next((getattr(text_cfg, f) for f in _CTX_FIELDS if isinstance(getattr(text_cfg, f, None), int)),
                     None)
        self.n_ctx: int | None = int(n_ctx) if n_ctx is not None else None
        # the layer `layer=null` means: the middle block unless the model's yaml says otherwise
        self.default_layer = self.n_layers // 2 if default_layer is None else int(default_layer)
        if data is not None and self.n_ctx is not None and self.data.context_length > self.n_ctx:
            raise ValueError(f"model.data.context_length={self.data.context_length} exceeds {self.name}'s "
                             f"n_ctx={self.n_ctx}; use at most {self.n_ctx}.")

    # ----------------------------------------------------------------------------------- loading
    @property
    def source(self) -> str:
        """What `from_pretrained` is given: the resolved local directory or the Hub name."""
        return str(self._local_dir) if self._local_dir is not None else self.name

    @cached_property
    def bridge(self):
        """The TransformerBridge (`boot_transformers`), built on first use, in eval mode."""
        from transformer_lens.model_bridge import TransformerBridge

        try:
            with hub_offline(self._offline):
                bridge = TransformerBridge.boot_transformers(self.source, device=str(self.device), dtype=self.dtype)
        except ValueError as err:
            if "Unsupported architecture" in str(err):
                raise SubjectUnavailable(f"model.name={self.name} has an architecture TransformerLens 4 does not "
                                         f"support ({first_line(err)}); pick a supported causal LM.") from err
            raise
        except OSError as err:
            hint = download_hint(self.name) if self._local_dir is None else "re-save it with `save_pretrained`"
            raise SubjectUnavailable(f"model.name={self.name} has a config but its weights or tokenizer could not "
                                     f"be loaded ({first_line(err)}); {hint}.") from err
        return bridge.eval()

    @cached_property
    def tokenizer(self):
        """The model's own tokenizer (AutoTokenizer, no BOS added by us: callers pass add_special_tokens)."""
        from transformers import AutoTokenizer

        try:
            with hub_offline(self._offline):
                return AutoTokenizer.from_pretrained(self.source, local_files_only=self._offline)
        except OSError as err:
            raise SubjectUnavailable(f"model.name={self.name} has no loadable tokenizer ({first_line(err)}); "
                                     "save one next to the model with `tokenizer.save_pretrained`.") from err

    # ---------------------------------------------------------------------------------- protocol
    def hook_name(self, layer: int, site: str | None = None) -> str:
        site = self.hook_site if site is None else site
        if site not in SITES:
            raise ValueError(f"site={site!r} is not a supported hook site; allowed: {', '.join(SITES)}.")
        if not 0 <= layer < self.n_layers:
            raise ValueError(f"layer={layer} is out of range; {self.name} has layers 0..{self.n_layers - 1}.")
        return f"blocks.{layer}.hook_{site}"

    @cached_property
    def _fingerprint(self) -> str:
        h = hashlib.sha256()
        h.update(json.dumps({"name": self.name if self._local_dir is None else "local", "dtype": self.dtype_name},
                            sort_keys=True).encode())
        if self._local_dir is not None:  # the content of every weight file and the config
            files = sorted(p for p in self._local_dir.rglob("*") if p.is_file()
                           and (p.name == "config.json" or p.name.endswith(WEIGHT_SUFFIXES)))
            for p in files:
                h.update(str(p.relative_to(self._local_dir)).encode())
                with open(p, "rb") as f:
                    for chunk in iter(lambda f=f: f.read(1 << 22), b""):
                        h.update(chunk)
        else:  # a Hub snapshot: its commit pins the weights
            commit = self.hub_commit()
            h.update(str(commit).encode())
            if commit is None:
                h.update(self.config.to_json_string(use_diff=False).encode())
        return h.hexdigest()[:16]

    def hub_commit(self) -> str | None:
        """The commit of the cached Hub snapshot the config was read from (None for a local directory)."""
        if self._local_dir is not None:
            return None
        from huggingface_hub import try_to_load_from_cache

        path = try_to_load_from_cache(self.name, "config.json")
        return Path(path).parent.name if isinstance(path, str) else None

    def fingerprint(self) -> str:
        """A short hash of the weights: weight-file contents for a local directory, the snapshot commit for a Hub
        model; the dtype is part of it (it changes the activations)."""
        return self._fingerprint

    def kept_positions(self, n_positions: int) -> slice:
        return slice(1, n_positions) if self.positions == "all_but_bos" else slice(0, n_positions)

    def kept_per_row(self, context_length: int) -> int:
        return len(range(context_length)[self.kept_positions(context_length)])

    def _check_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 2 or tokens.dtype not in (torch.long, torch.int32, torch.int64):
            raise ValueError(f"tokens must be an integer tensor [S, T]; got {tuple(tokens.shape)} {tokens.dtype}.")
        if self.n_ctx is not None and tokens.shape[1] > self.n_ctx:
            raise ValueError(f"tokens have {tokens.shape[1]} positions but {self.name} has n_ctx={self.n_ctx}.")
        if self.positions == "all_but_bos" and tokens.shape[1] < 2:
            raise ValueError("positions=all_but_bos needs sequences of at least 2 tokens.")
        return tokens.long().to(self.device)

    @staticmethod
    def _layer_of(hook: str) -> int | None:
        m = re.match(r"blocks\.(\d+)\.", hook)
        return int(m.group(1)) if m else None

    def _unknown_hook(self, hook: str) -> ValueError:
        return ValueError(f"hook={hook} is not a hook point of {self.name} (parallel-attention blocks such as "
                          "GPT-NeoX's have no resid_mid); pick a name from its bridge.hook_dict.")

    @torch.no_grad()
    def activations(self, batch: torch.Tensor, hook: str) -> torch.Tensor:
        """Activations [S * P, d_model] float32 at `hook` for the kept positions, sequence-major."""
        tokens = self._check_tokens(batch)
        layer = self._layer_of(hook)
        stop = layer + 1 if layer is not None and layer + 1 < self.n_layers else None
        try:
            _, cache = self.bridge.run_with_cache(tokens, names_filter=hook, stop_at_layer=stop)
        except KeyError as err:
            raise self._unknown_hook(hook) from err
        acts = cache[hook][:, self.kept_positions(tokens.shape[1])]
        return acts.reshape(-1, acts.shape[-1]).float()

    def _logits(self, tokens: torch.Tensor, patch: Patch | None, hook: str | None,
                residual: torch.Tensor | None = None) -> torch.Tensor:
        if patch is None:
            return self.bridge(tokens)
        if hook is None:
            raise ValueError("loss(patch=...) needs the hook name to patch at.")
        kept = self.kept_positions(tokens.shape[1])

        def replace(act: torch.Tensor, hook=None) -> torch.Tensor:  # noqa: ARG001 (TransformerLens signature)
            act = act.clone()
            part = act[:, kept]
            # the patch sees what `activations` returns (float32) and its output is cast back
            act[:, kept] = patch(part.reshape(-1, part.shape[-1]).float()).reshape(part.shape).to(act.dtype)
            return act

        if residual is not None:  # only the model downstream of the hook runs
            return logits_after(self.bridge, hook, replace(residual), self.n_layers)
        try:
            return self.bridge.run_with_hooks(tokens, fwd_hooks=[(hook, replace)])
        except KeyError as err:
            raise self._unknown_hook(hook) from err

    @torch.no_grad()
    def clean_residual(self, batch: torch.Tensor, hook: str) -> torch.Tensor | None:
        """The unpatched activation at a resid_post `hook`, all positions [S, T, d_model] (None otherwise)."""
        return clean_residual(self.bridge, self._check_tokens(batch), hook, self.n_layers)

    @torch.no_grad()
    def scored_logprobs(self, batch: torch.Tensor, patch: Patch | None = None, hook: str | None = None,
                        residual: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probabilities [S, T-1, V] float32 of the predictions at positions 0..T-2, targets [S, T-1]).
        With `residual` (from `clean_residual`), only the model downstream of the hook runs."""
        tokens = self._check_tokens(batch)
        logits = self._logits(tokens, patch, hook, residual)
        return logits[:, :-1].float().log_softmax(-1), tokens[:, 1:]

    @torch.no_grad()
    def loss(self, batch: torch.Tensor, patch: Patch | None = None, hook: str | None = None) -> torch.Tensor:
        """Per-sequence mean next-token cross-entropy [S] over the scored positions; `patch` replaces the
        hook's activation at the kept positions first."""
        tokens = self._check_tokens(batch)
        logits = self._logits(tokens, patch, hook)[:, :-1].float()
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1),
                                               reduction="none")
        return ce.view(tokens.shape[0], -1).mean(-1)

    # -------------------------------------------------------------------------------------- data
    @property
    def data(self):
        from sae_lab.data.tokens import TokenDataSpec

        if self._data is None:
            raise ValueError(f"{self.name} has no token data set; pass data=TokenDataSpec(...) (config key data).")
        if isinstance(self._data, Mapping):
            self._data = TokenDataSpec(**self._data)
        if not isinstance(self._data, TokenDataSpec):
            raise ValueError(f"data must be a TokenDataSpec or a mapping of its fields; got {type(self._data)}.")
        return self._data

    @cached_property
    def _token_sequences(self) -> tuple[torch.Tensor, torch.Tensor]:
        from sae_lab.data.tokens import load_token_sequences

        spec = self.data
        if self.n_ctx is not None and spec.context_length > self.n_ctx:
            raise ValueError(f"data.context_length={spec.context_length} exceeds {self.name}'s n_ctx={self.n_ctx}.")
        return load_token_sequences(spec, self.tokenizer, kept_per_row=self.kept_per_row(spec.context_length))

    @property
    def max_train_vectors(self) -> int:
        """Exactly this many training vectors are cached (the rows hold a few more)."""
        return int(self.data.n_train_vectors)

    def dataset(self) -> torch.Tensor:
        """The training rows [S_train, T] (token ids) whose activations are cached."""
        return self._token_sequences[0]

    def eval_dataset(self) -> torch.Tensor:
        """The held-out rows [S_eval, T], disjoint from `dataset()`."""
        return self._token_sequences[1]

    def data_spec(self) -> dict:
        return {**self.data.spec_dict(), "positions": self.positions}


__all__ = ["HFSubject", "SubjectUnavailable", "hub_offline", "hub_reachable"]
