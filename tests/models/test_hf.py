"""HFSubject on tiny random GPT-NeoX and GPT-2 models saved locally: activations and (patched) losses
against plain `transformers`, cheap construction, and one-sentence errors that come fast offline."""

import time

import pytest
import torch
from transformers import AutoConfig  # noqa: F401  (imported here so the timed calls below do not pay for it)

from sae_lab.data.tokens import TokenDataSpec
from sae_lab.metrics.behaviour import ce_per_sequence, kl_per_sequence
from sae_lab.models import SubjectModel
from sae_lab.models.hf import HFSubject, SubjectUnavailable
from tests.helpers.lm_fixtures import (
    HIDDEN,
    N_CTX,
    N_LAYERS,
    VOCAB_SIZE,
    load_hf_model,
    save_tiny_lm,
    save_tiny_text_dataset,
)

ARCHS = ["gpt_neox", "gpt2"]


@pytest.fixture(scope="session")
def lm_dirs(tmp_path_factory):
    return {arch: save_tiny_lm(tmp_path_factory.mktemp(arch), arch) for arch in ARCHS}


@pytest.fixture(scope="module", params=ARCHS)
def arch(request):
    return request.param


@pytest.fixture(scope="module")
def subject(lm_dirs, arch):
    return HFSubject(str(lm_dirs[arch]))


@pytest.fixture(scope="module")
def hf_model(lm_dirs, arch):
    return load_hf_model(lm_dirs[arch])


def hf_blocks(model):
    return model.gpt_neox.layers if hasattr(model, "gpt_neox") else model.transformer.h


def tokens(n=3, t=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(2, VOCAB_SIZE, (n, t), generator=g)
    x[:, 0] = 0  # BOS
    return x


def hf_block_outputs(model, x, edit=None):
    """Logits and each block's output (the residual stream after it) from plain transformers; `edit` maps
    (layer, block output) to a replacement."""
    outs, handles = {}, []

    def hook(layer):
        def fn(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            if edit is not None:
                new = edit(layer, hidden)
                if new is not None:
                    hidden = new
                    output = (new, *output[1:]) if isinstance(output, tuple) else new
            outs[layer] = hidden.detach().clone()
            return output
        return fn

    for layer, block in enumerate(hf_blocks(model)):
        handles.append(block.register_forward_hook(hook(layer)))
    try:
        with torch.no_grad():
            out = model(x, output_hidden_states=True)
    finally:
        for h in handles:
            h.remove()
    return out, outs


def hand_ce(logits, x):
    lp = logits[:, :-1].double().log_softmax(-1)
    return -lp.gather(-1, x[:, 1:, None]).squeeze(-1).mean(-1)


def test_constructor_is_cheap_and_reads_the_config(subject):
    assert isinstance(subject, SubjectModel)
    assert (subject.d_model, subject.n_layers, subject.n_ctx, subject.d_vocab) == (HIDDEN, N_LAYERS, N_CTX,
                                                                                   VOCAB_SIZE)
    fresh = HFSubject(subject.name)
    assert "bridge" not in fresh.__dict__  # built lazily
    assert fresh.hook_name(1) == "blocks.1.hook_resid_post"
    assert fresh.hook_name(0, "mlp_out") == "blocks.0.hook_mlp_out"
    with pytest.raises(ValueError, match=r"^layer=2 is out of range; .* has layers 0\.\.1\.$"):
        fresh.hook_name(2)
    with pytest.raises(ValueError, match="site='resid_sideways' is not a supported hook site"):
        fresh.hook_name(0, "resid_sideways")


@pytest.mark.parametrize("layer", range(N_LAYERS))
def test_activations_equal_transformers_hidden_states(subject, hf_model, layer):
    x = tokens()
    acts = subject.activations(x, subject.hook_name(layer))
    out, blocks = hf_block_outputs(hf_model, x)
    assert acts.shape == (3 * 11, HIDDEN) and acts.dtype == torch.float32
    assert (acts - blocks[layer][:, 1:].reshape(-1, HIDDEN)).abs().max() <= 1e-5
    if layer + 1 < N_LAYERS:  # HF's last hidden state has the final LayerNorm applied; the others are block outputs
        assert (acts - out.hidden_states[layer + 1][:, 1:].reshape(-1, HIDDEN)).abs().max() <= 1e-5
    all_pos = HFSubject(subject.name, positions="all").activations(x, subject.hook_name(layer))
    assert all_pos.shape == (3 * 12, HIDDEN)
    assert (all_pos - blocks[layer].reshape(-1, HIDDEN)).abs().max() <= 1e-5


def test_loss_equals_hand_ce_and_identity_patch(subject, hf_model):
    x = tokens(seed=1)
    hook = subject.hook_name(0)
    clean = subject.loss(x)
    out, _ = hf_block_outputs(hf_model, x)
    assert clean.shape == (3,)
    assert torch.allclose(clean.double(), hand_ce(out.logits, x), atol=1e-5)
    ident = subject.loss(x, patch=lambda a: a, hook=hook)
    assert (ident - clean).abs().max() <= 1e-6
    lp, targets = subject.scored_logprobs(x)
    assert lp.shape == (3, 11, VOCAB_SIZE) and lp.dtype == torch.float32 and torch.equal(targets, x[:, 1:])
    assert torch.allclose(ce_per_sequence(lp, targets), clean, atol=1e-6)


@pytest.mark.parametrize("layer", range(N_LAYERS))
def test_zero_patch_loss_by_hand(subject, hf_model, layer):
    x = tokens(seed=2)
    hook = subject.hook_name(layer)
    seen = []

    def zero(a):
        seen.append(a.clone())
        return torch.zeros_like(a)

    zeroed = subject.loss(x, patch=zero, hook=hook)
    # the patch sees exactly the kept-position activations
    assert len(seen) == 1 and torch.equal(seen[0], subject.activations(x, hook))

    def edit(at, hidden):
        if at == layer:
            hidden = hidden.clone()
            hidden[:, 1:] = 0
            return hidden
        return None

    out, _ = hf_block_outputs(hf_model, x, edit=edit)
    assert torch.allclose(zeroed.double(), hand_ce(out.logits, x), atol=1e-5)
    assert (zeroed - subject.loss(x)).abs().min() > 1e-3
    lp_ref, _ = subject.scored_logprobs(x)
    lp_zero, targets = subject.scored_logprobs(x, patch=torch.zeros_like, hook=hook)
    assert torch.allclose(ce_per_sequence(lp_zero, targets), zeroed, atol=1e-6)
    kl = kl_per_sequence(lp_ref, lp_zero)
    assert (kl > 0).all()
    assert torch.allclose(kl_per_sequence(lp_ref, subject.scored_logprobs(x, lambda a: a, hook)[0]),
                          torch.zeros(3), atol=1e-6)


def test_fingerprint(lm_dirs, tmp_path):
    a, b = HFSubject(str(lm_dirs["gpt_neox"])), HFSubject(str(lm_dirs["gpt2"]))
    assert len(a.fingerprint()) == 16 and a.fingerprint() == HFSubject(str(lm_dirs["gpt_neox"])).fingerprint()
    assert a.fingerprint() != b.fingerprint()
    assert HFSubject(str(lm_dirs["gpt_neox"]), dtype="bfloat16").fingerprint() != a.fingerprint()
    other = save_tiny_lm(tmp_path / "neox_seed1", "gpt_neox", seed=1)
    assert HFSubject(str(other)).fingerprint() != a.fingerprint()


def test_token_data_through_the_subject(lm_dirs, tmp_path):
    data_dir = save_tiny_text_dataset(tmp_path / "text", n_texts=60)
    spec = TokenDataSpec(dataset=str(data_dir), context_length=16, n_train_vectors=150, n_eval_sequences=4)
    s = HFSubject(str(lm_dirs["gpt2"]), data=spec)
    train, evals = s.dataset(), s.eval_dataset()
    assert train.shape == (10, 16) and evals.shape == (4, 16) and (train[:, 0] == 0).all()
    assert s.data_spec() == {**spec.spec_dict(), "positions": "all_but_bos"}
    assert s.activations(train, s.hook_name(1)).shape == (150, HIDDEN)
    assert HFSubject(str(lm_dirs["gpt2"]), data=dict(dataset=str(data_dir), context_length=16, n_train_vectors=150,
                                                     n_eval_sequences=4)).data_spec() == s.data_spec()
    with pytest.raises(ValueError, match="has no token data set"):
        HFSubject(str(lm_dirs["gpt2"])).dataset()


def assert_one_sentence(err, start):
    msg = str(err.value)
    assert msg.startswith(start), msg
    assert msg.endswith(".") and "\n" not in msg and msg.count(". ") == 0, msg


def test_unknown_local_path_fails_fast(tmp_path):
    start = time.perf_counter()
    with pytest.raises(SubjectUnavailable) as err:
        HFSubject(str(tmp_path / "no_such_model"))
    assert time.perf_counter() - start < 10
    assert_one_sentence(err, f"model.name={tmp_path / 'no_such_model'} does not exist on this machine;")
    assert isinstance(err.value, ValueError)


def test_directory_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(SubjectUnavailable) as err:
        HFSubject(str(tmp_path))
    assert_one_sentence(err, f"model.name={tmp_path} is a local path but not a Hugging Face model directory")
    with pytest.raises(SubjectUnavailable, match="is a local path but not a Hugging Face model directory"):
        HFSubject(str(tmp_path / "notes.txt"))


def test_missing_hub_name_offline_fails_fast(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    name = "sae-lab-tests/no-such-model-1234"
    start = time.perf_counter()
    with pytest.raises(SubjectUnavailable) as err:
        HFSubject(name)
    assert time.perf_counter() - start < 10
    assert_one_sentence(err, f"model.name={name} is not in the local Hugging Face cache and HF_HUB_OFFLINE "
                             "forbids the Hub; download it on a networked machine with "
                             f"`hf download {name}` (or pass model.name=<local dir>).")


def test_missing_hub_name_without_offline_flag_fails_fast(monkeypatch):
    """Hub unreachable (no network here) or reachable (the repo does not exist): a quick one-sentence error."""
    import huggingface_hub.constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    name = "sae-lab-tests/no-such-model-1234"
    start = time.perf_counter()
    with pytest.raises(SubjectUnavailable) as err:
        HFSubject(name)
    assert time.perf_counter() - start < 10
    msg = str(err.value)
    assert msg.startswith(f"model.name={name} ") and msg.endswith(".") and "\n" not in msg
    assert "the Hub cannot be reached" in msg or "could not be fetched from the Hugging Face Hub" in msg


def test_bad_options(lm_dirs):
    with pytest.raises(ValueError, match="model.positions='middle' is not allowed"):
        HFSubject(str(lm_dirs["gpt2"]), positions="middle")
    with pytest.raises(ValueError, match="model.dtype='float8' is not supported"):
        HFSubject(str(lm_dirs["gpt2"]), dtype="float8")
    s = HFSubject(str(lm_dirs["gpt2"]))
    with pytest.raises(ValueError, match="tokens have 65 positions but .* has n_ctx=64"):
        s.loss(torch.zeros(1, 65, dtype=torch.long))
    with pytest.raises(ValueError, match="needs the hook name"):
        s.loss(tokens(), patch=lambda a: a)


CACHED_SCRIPT = """
import json, sys, time, torch
from sae_lab.models.hf import HFSubject
start = time.perf_counter()
s = HFSubject("sae-lab-tests/tiny-neox")
ctor = time.perf_counter() - start
x = torch.tensor([[0, 5, 9, 33, 2, 17]])
print(json.dumps({"ctor": ctor, "commit": s.hub_commit(), "fp": s.fingerprint(), "loss": s.loss(x).tolist(),
                  "d_model": s.d_model}))
"""


def test_hub_name_from_the_local_cache_offline(lm_dirs, tmp_path):
    """A Hub name whose snapshot is in the local cache loads with the Hub unreachable (HF_HUB_OFFLINE=1)."""
    import json
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--sae-lab-tests--tiny-neox"
    shutil.copytree(lm_dirs["gpt_neox"], repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-c", CACHED_SCRIPT], env=env, cwd=root, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["commit"] == commit and got["d_model"] == HIDDEN and got["ctor"] < 10
    local = HFSubject(str(lm_dirs["gpt_neox"]))
    x = torch.tensor([[0, 5, 9, 33, 2, 17]])
    assert got["loss"] == pytest.approx(local.loss(x).tolist(), abs=1e-6)
    assert got["fp"] != local.fingerprint()  # named by the Hub commit, not by the local files


def test_unknown_hook_point(lm_dirs):
    s = HFSubject(str(lm_dirs["gpt_neox"]))
    hook = s.hook_name(0, "resid_mid")  # a TransformerLens site, but GPT-NeoX's parallel blocks have none
    with pytest.raises(ValueError, match=r"^hook=blocks\.0\.hook_resid_mid is not a hook point of "):
        s.activations(tokens(), hook)
    with pytest.raises(ValueError, match=r"^hook=blocks\.0\.hook_resid_mid is not a hook point of "):
        s.loss(tokens(), patch=lambda a: a, hook=hook)
    gpt2 = HFSubject(str(lm_dirs["gpt2"]))
    assert gpt2.activations(tokens(), gpt2.hook_name(0, "resid_mid")).shape == (33, HIDDEN)
