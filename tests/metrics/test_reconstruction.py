"""Each reconstruction metric against a plain-Python loop (the slow reference) or a closed form."""

import math

import pytest
import torch

from sae_lab import metrics as M


def _case(seed=0, n=7, d=3, members=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    x_hat = x + 0.3 * torch.randn(members, n, d, generator=g, dtype=torch.float64)
    return x, x_hat


def _loop_reference(x, x_hat_m):
    xs, hs = x.tolist(), x_hat_m.tolist()
    n, d = len(xs), len(xs[0])
    mean = [sum(r[j] for r in xs) / n for j in range(d)]
    sse = sum((xs[t][j] - hs[t][j]) ** 2 for t in range(n) for j in range(d))
    sst = sum((xs[t][j] - mean[j]) ** 2 for t in range(n) for j in range(d))

    def norm(v):
        return math.sqrt(sum(a * a for a in v))

    cos = sum(sum(a * b for a, b in zip(xs[t], hs[t], strict=True)) / (norm(xs[t]) * norm(hs[t]))
              for t in range(n)) / n
    rel = sum(norm([a - b for a, b in zip(xs[t], hs[t], strict=True)]) / norm(xs[t]) for t in range(n)) / n
    ve = 0.0
    for j in range(d):
        r = [xs[t][j] - hs[t][j] for t in range(n)]
        rm = sum(r) / n
        var_r = sum((v - rm) ** 2 for v in r) / n
        var_x = sum((xs[t][j] - mean[j]) ** 2 for t in range(n)) / n
        ve += var_r / var_x
    return {"mse_mean": sse / (n * d), "sse_per_token": sse / n, "sst_per_token": sst / n,
            "fvu": sse / sst, "r2": 1 - sse / sst, "cos_sim": cos, "rel_error_norm": rel,
            "var_explained_dim": 1 - ve / d}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_loop_reference(seed):
    x, x_hat = _case(seed)
    got = {
        "mse_mean": M.mse_mean(x, x_hat), "sse_per_token": M.sse_per_token(x, x_hat),
        "sst_per_token": M.sst_per_token(x).expand(2), "fvu": M.fvu(x, x_hat), "r2": M.r_squared(x, x_hat),
        "cos_sim": M.cosine_sim(x, x_hat), "rel_error_norm": M.relative_error_norm(x, x_hat),
        "var_explained_dim": M.variance_explained_per_dim(x, x_hat),
    }
    for member in range(2):
        ref = _loop_reference(x, x_hat[member])
        for name, value in got.items():
            assert value[member].item() == pytest.approx(ref[name], rel=1e-10), name


def test_closed_form_values():
    # x = [[1, 0], [0, 1]], x_hat = [[1, 0], [0, 0]]: SSE = 1, mean = [.5, .5], SST = 4 * .25 = 1.
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    x_hat = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    assert M.mse_mean(x, x_hat).item() == pytest.approx(0.25)
    assert M.fvu(x, x_hat).item() == pytest.approx(1.0)
    assert M.r_squared(x, x_hat).item() == pytest.approx(0.0)
    assert M.relative_error_norm(x, x_hat).item() == pytest.approx(0.5)  # errors 0 and 1
    # cos: token 0 is 1, token 1 is 0/0 -> 0 by torch's eps convention
    assert M.cosine_sim(x, x_hat).item() == pytest.approx(0.5)


def test_sparsity_counts():
    z = torch.tensor([[[0.0, 2.0, 0.0, 1.0], [0.5, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0]]])
    active = M.active_per_token(z)
    counts = M.firing_counts(z)
    assert active.tolist() == [[2, 1, 1]]
    assert counts.tolist() == [[1, 2, 0, 1]]
    assert M.l0(active).item() == pytest.approx(4 / 3)
    assert M.alive_fraction(counts).item() == pytest.approx(0.75)


def test_reconstruction_metrics_keys_and_shapes():
    x, x_hat = _case()
    z = torch.relu(torch.randn(2, 7, 5))
    out = M.reconstruction_metrics(x, x_hat, M.active_per_token(z), M.firing_counts(z))
    assert set(out) == {"mse_mean", "fvu", "r2", "sse_per_token", "sst_per_token", "var_explained_dim",
                        "cos_sim", "rel_error_norm", "l0", "alive_frac"}
    assert all(v.shape == (2,) for v in out.values())


def test_sparse_counts_match_dense():
    g = torch.Generator().manual_seed(0)
    values = torch.relu(torch.randn(2, 50, 4, generator=g))
    indices = torch.stack([torch.randperm(16, generator=g)[:4] for _ in range(100)]).view(2, 50, 4)
    dense = torch.zeros(2, 50, 16).scatter(-1, indices, values)
    assert torch.equal(M.firing_counts_sparse(values, indices, 16), M.firing_counts(dense))
    assert torch.equal(M.active_per_token(values), M.active_per_token(dense))
