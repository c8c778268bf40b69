"""Token loader: packing by hand, BOS first, disjoint eval/train rows, sources, one-sentence errors."""

import math

import pytest
import torch

from sae_lab.data.tokens import TokenDataSpec, load_token_sequences
from tests.helpers.lm_fixtures import save_tiny_text_dataset, tiny_texts, tiny_tokenizer

BOS_ID = 0


@pytest.fixture(scope="session")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture(scope="session")
def text_dir(tmp_path_factory):
    return save_tiny_text_dataset(tmp_path_factory.mktemp("tiny_text"), n_texts=120)


def token_docs(tokenizer, texts):
    """Each text's ids followed by EOS (= BOS here), computed one text at a time."""
    return [tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for t in texts]


def expected_rows(docs, n_eval, n_train, body, bos):
    """Slow reference of the packing rule in sae_lab/data/tokens.py's docstring."""
    starts = [0]
    for d in docs:
        starts.append(starts[-1] + len(d))
    stream = [t for d in docs for t in d]
    eval_rows = [bos + stream[i * body:(i + 1) * body] for i in range(n_eval)]
    used = n_eval * body
    first_train_doc = next(k for k, s in enumerate(starts) if s >= used) if n_eval else 0
    rest = stream[starts[first_train_doc]:]
    train_rows = [bos + rest[i * body:(i + 1) * body] for i in range(n_train)]
    return torch.tensor(train_rows), torch.tensor(eval_rows)


def test_shapes_bos_and_packing_by_hand(tokenizer, text_dir):
    spec = TokenDataSpec(dataset=str(text_dir), context_length=16, n_train_vectors=100, n_eval_sequences=5)
    train, evals = load_token_sequences(spec, tokenizer)
    n_train = math.ceil(100 / 15)  # 15 kept positions per row (BOS dropped)
    assert train.shape == (n_train, 16) and evals.shape == (5, 16)
    assert train.dtype == evals.dtype == torch.long
    assert (train[:, 0] == BOS_ID).all() and (evals[:, 0] == BOS_ID).all()
    exp_train, exp_eval = expected_rows(token_docs(tokenizer, tiny_texts(120)), 5, n_train, 15, [BOS_ID])
    assert torch.equal(evals, exp_eval)
    assert torch.equal(train, exp_train)


def test_train_and_eval_rows_are_disjoint(tokenizer, text_dir):
    spec = TokenDataSpec(dataset=str(text_dir), context_length=12, n_train_vectors=300, n_eval_sequences=20)
    train, evals = load_token_sequences(spec, tokenizer)
    assert train.shape == (math.ceil(300 / 11), 12) and evals.shape == (20, 12)
    shared = {tuple(r) for r in train.tolist()} & {tuple(r) for r in evals.tolist()}
    assert not shared
    # the eval rows do not depend on how many train vectors are asked for
    _, evals_more = load_token_sequences(TokenDataSpec(dataset=str(text_dir), context_length=12,
                                                       n_train_vectors=600, n_eval_sequences=20), tokenizer)
    assert torch.equal(evals, evals_more)


def test_no_bos_and_explicit_kept_per_row(tokenizer, text_dir):
    spec = TokenDataSpec(dataset=str(text_dir), context_length=16, prepend_bos=False, n_train_vectors=100,
                         n_eval_sequences=3)
    train, evals = load_token_sequences(spec, tokenizer)
    assert train.shape == (math.ceil(100 / 16), 16) and evals.shape == (3, 16)
    first = tokenizer(tiny_texts(1)[0], add_special_tokens=False)["input_ids"]
    assert evals[0, : len(first)].tolist() == first[:16]
    exp_train, exp_eval = expected_rows(token_docs(tokenizer, tiny_texts(120)), 3, 7, 16, [])
    assert torch.equal(train, exp_train) and torch.equal(evals, exp_eval)
    train_bos, _ = load_token_sequences(TokenDataSpec(dataset=str(text_dir), context_length=16,
                                                      n_train_vectors=100, n_eval_sequences=3), tokenizer,
                                        kept_per_row=16)
    assert train_bos.shape == (7, 16)


def test_too_few_tokens(tokenizer, text_dir):
    n_tokens = sum(len(d) for d in token_docs(tokenizer, tiny_texts(120)))
    with pytest.raises(ValueError, match=r"data\.n_eval_sequences=100000 .* only \d+ rows") as err:
        load_token_sequences(TokenDataSpec(dataset=str(text_dir), context_length=16, n_eval_sequences=100_000,
                                           n_train_vectors=10), tokenizer)
    assert int(str(err.value).split("only ")[1].split()[0]) == n_tokens // 15
    with pytest.raises(ValueError, match=r"data\.n_train_vectors=1000000 .* only \d+ vectors") as err:
        load_token_sequences(TokenDataSpec(dataset=str(text_dir), context_length=16, n_train_vectors=10**6,
                                           n_eval_sequences=5), tokenizer)
    available = int(str(err.value).split("only ")[1].split()[0])
    assert 0 < available <= (n_tokens // 15 - 5) * 15
    assert str(err.value).count("\n") == 0 and str(err.value).endswith(".")


def test_txt_files_and_glob(tokenizer, tmp_path):
    texts = tiny_texts(6, seed=3)
    for i, t in enumerate(texts):
        (tmp_path / f"doc{i}.txt").write_text(t)
    spec = TokenDataSpec(dataset=str(tmp_path), context_length=8, n_train_vectors=14, n_eval_sequences=1)
    train, evals = load_token_sequences(spec, tokenizer)
    exp_train, exp_eval = expected_rows(token_docs(tokenizer, texts), 1, 2, 7, [BOS_ID])
    assert torch.equal(evals, exp_eval) and torch.equal(train, exp_train)
    train_glob, evals_glob = load_token_sequences(
        TokenDataSpec(dataset=str(tmp_path / "doc*.txt"), context_length=8, n_train_vectors=14,
                      n_eval_sequences=1), tokenizer)
    assert torch.equal(train_glob, train) and torch.equal(evals_glob, evals)


def test_pretokenized_column_and_dataset_dict_split(tokenizer, tmp_path):
    from datasets import Dataset, DatasetDict

    rows = [[5, 6, 7, 8, 9], [10, 11, 12], [13, 14, 15, 16, 17, 18, 19]]
    DatasetDict({"validation": Dataset.from_dict({"input_ids": rows})}).save_to_disk(str(tmp_path / "dd"))
    spec = TokenDataSpec(dataset=str(tmp_path / "dd"), split="validation", tokens_column="input_ids",
                         context_length=4, n_train_vectors=6, n_eval_sequences=1)
    train, evals = load_token_sequences(spec, tokenizer)
    assert evals.tolist() == [[0, 5, 6, 7]]  # the rest of document 0 is dropped
    assert train.tolist() == [[0, 10, 11, 12], [0, 13, 14, 15]]
    with pytest.raises(ValueError, match=r"data\.split='train' is not a split of .*; splits: validation\."):
        load_token_sequences(TokenDataSpec(dataset=str(tmp_path / "dd"), tokens_column="input_ids",
                                           context_length=4, n_train_vectors=6, n_eval_sequences=1), tokenizer)


def test_unloadable_sources(tokenizer, tmp_path, text_dir):
    with pytest.raises(ValueError, match=r"^data\.dataset=/nonexistent/corpus does not exist on this machine"):
        load_token_sequences(TokenDataSpec(dataset="/nonexistent/corpus", n_train_vectors=10), tokenizer)
    (tmp_path / "junk.bin").write_bytes(b"\x00\x01")
    with pytest.raises(ValueError, match=r"^data\.dataset=.* could not be loaded \(") as err:
        load_token_sequences(TokenDataSpec(dataset=str(tmp_path), n_train_vectors=10), tokenizer)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"data\.text_column='body' is not a column of .*; columns: text\."):
        load_token_sequences(TokenDataSpec(dataset=str(text_dir), text_column="body", n_train_vectors=10),
                             tokenizer)


def test_spec_dict_is_the_cache_key_part():
    a = TokenDataSpec(dataset="d", n_train_vectors=100)
    d = a.spec_dict()
    assert "streaming" not in d and d["packing"] and d["context_length"] == 128 and d["prepend_bos"] is True
    assert TokenDataSpec(dataset="d", n_train_vectors=100, streaming=False).spec_dict() == d
    assert TokenDataSpec(dataset="d", n_train_vectors=100, n_eval_sequences=7).spec_dict() != d
    with pytest.raises(ValueError, match="data.context_length=1 must be at least 2"):
        TokenDataSpec(dataset="d", context_length=1)


def test_hub_name_offline_fails_fast(tokenizer, monkeypatch):
    import time

    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"^data\.dataset=sae-lab-tests/no-such-corpus is not a local path nor in "
                                         r"the local Hugging Face cache, and the Hub cannot be reached; .*\.$"):
        load_token_sequences(TokenDataSpec(dataset="sae-lab-tests/no-such-corpus", n_train_vectors=10), tokenizer)
    assert time.perf_counter() - start < 10
