"""The part of a TransformerBridge forward downstream of a residual-stream hook.

Patched CE replaces one hook's activation and needs only what comes after it: for a
`blocks.{L}.hook_resid_post` hook, the blocks after L, the final norm and the unembedding. Caching
the clean residual once and running only that part makes a patched forward much cheaper (on
mod113's last layer, the unembedding alone).
"""

from __future__ import annotations

import re

import torch

_RESID_POST = re.compile(r"^blocks\.(\d+)\.hook_resid_post$")


def resid_post_layer(hook: str) -> int | None:
    """L for `blocks.{L}.hook_resid_post`, else None (other sites take the full patched forward)."""
    m = _RESID_POST.match(hook)
    return int(m.group(1)) if m else None


@torch.no_grad()
def clean_forward(bridge, tokens: torch.Tensor, hook: str, n_layers: int
                  ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(the logits [S, T, V] where this forward ran the whole model, else None; the unpatched activation
    at a resid_post `hook`, all positions [S, T, d_model], else None). A last-block hook's forward is the
    whole model, so its logits come with the residual."""
    layer = resid_post_layer(hook)
    if layer is None:
        return None, None
    stop = layer + 1 if layer + 1 < n_layers else None
    out, cache = bridge.run_with_cache(tokens, names_filter=lambda name: name == hook, stop_at_layer=stop)
    return (out if stop is None else None), cache[hook]


@torch.no_grad()
def clean_residual(bridge, tokens: torch.Tensor, hook: str, n_layers: int) -> torch.Tensor | None:
    """The unpatched activation at a resid_post `hook`, all positions [S, T, d_model]; None for other hooks."""
    return clean_forward(bridge, tokens, hook, n_layers)[1]


@torch.no_grad()
def logits_after(bridge, hook: str, residual: torch.Tensor, n_layers: int) -> torch.Tensor:
    """Logits [S, T, V] of the model continued from `residual` at the resid_post `hook`."""
    layer = resid_post_layer(hook)
    if layer is None:
        raise ValueError(f"logits_after needs a blocks.L.hook_resid_post hook, got {hook}.")
    if layer == n_layers - 1:  # nothing but the final norm and the unembedding is left
        return bridge.unembed(bridge.ln_final(residual))
    return bridge(residual, start_at_layer=layer + 1)
