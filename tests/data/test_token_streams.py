"""Token-stream sources (a directory of <split>.npy files, as the shipped corpus is) with a held-out split,
and the card.json check that stops a damaged file before any work."""

import json

import numpy as np
import pytest
import torch

from sae_lab.data.tokens import TokenDataSpec, load_token_sequences
from sae_lab.shipped import DamagedFileError, sha256_of, verify_card
from tests.helpers.lm_fixtures import tiny_tokenizer

EOS = 0


def write_streams(directory, card: bool = True):
    """train: 40 documents of 7..19 tokens; heldout: 10 documents; each ends in EOS. Returns the doc lists."""
    rng = np.random.default_rng(0)
    docs = {name: [list(rng.integers(1, 50, size=rng.integers(7, 20))) + [EOS] for _ in range(n)]
            for name, n in (("train", 40), ("heldout", 10))}
    directory.mkdir(parents=True, exist_ok=True)
    for name, ds in docs.items():
        np.save(directory / f"{name}.npy", np.array([t for d in ds for t in d], dtype=np.uint16))
    if card:
        (directory / "card.json").write_text(json.dumps(
            {"sha256": {f"{n}.npy": sha256_of(directory / f"{n}.npy") for n in docs}}))
    return docs


def rows_by_hand(docs, n_rows, body):
    stream = [int(t) for d in docs for t in d]
    return torch.tensor([[EOS] + stream[i * body:(i + 1) * body] for i in range(n_rows)])


def test_eval_rows_come_from_the_heldout_split_and_train_rows_from_the_start_of_train(tmp_path):
    docs = write_streams(tmp_path / "corpus")
    spec = TokenDataSpec(dataset=str(tmp_path / "corpus"), split="train", eval_split="heldout", context_length=9,
                         n_train_vectors=80, n_eval_sequences=6)
    train, held = load_token_sequences(spec, tiny_tokenizer())
    assert torch.equal(held, rows_by_hand(docs["heldout"], 6, 8))
    assert torch.equal(train, rows_by_hand(docs["train"], 10, 8))
    assert "eval_split" in spec.spec_dict()
    assert "eval_split" not in TokenDataSpec(dataset="x").spec_dict()  # older cache keys are unchanged


def test_one_split_of_a_stream_keeps_the_document_boundary_rule(tmp_path):
    docs = write_streams(tmp_path / "corpus")
    spec = TokenDataSpec(dataset=str(tmp_path / "corpus"), split="train", context_length=9, n_train_vectors=16,
                         n_eval_sequences=3)
    train, held = load_token_sequences(spec, tiny_tokenizer())
    assert torch.equal(held, rows_by_hand(docs["train"], 3, 8))
    # train rows start with the document after the one the 3 eval rows (24 tokens) ended in
    first = int(np.searchsorted(np.cumsum([len(d) for d in docs["train"]]), 3 * 8)) + 1
    assert torch.equal(train, rows_by_hand(docs["train"][first:], 2, 8))


def test_unknown_split_is_one_sentence(tmp_path):
    write_streams(tmp_path / "corpus")
    spec = TokenDataSpec(dataset=str(tmp_path / "corpus"), split="valid", context_length=9, n_train_vectors=8,
                         n_eval_sequences=1)
    with pytest.raises(ValueError, match=r"data split 'valid' is not a token stream of .*; splits: heldout, train\."):
        load_token_sequences(spec, tiny_tokenizer())


@pytest.mark.parametrize("damage", ["flip", "remove"])
def test_a_damaged_or_missing_file_names_itself_and_its_sha256(tmp_path, damage):
    directory = tmp_path / "corpus"
    write_streams(directory)
    expected = json.loads((directory / "card.json").read_text())["sha256"]["train.npy"]
    verify_card(directory)  # intact: no error
    if damage == "flip":
        data = bytearray((directory / "train.npy").read_bytes())
        data[-1] ^= 1
        (directory / "train.npy").write_bytes(bytes(data))
    else:
        (directory / "train.npy").unlink()
    with pytest.raises(DamagedFileError, match=expected) as err:
        verify_card(directory)
    assert str(directory / "train.npy") in str(err.value) and "\n" not in str(err.value)
    spec = TokenDataSpec(dataset=str(directory), split="heldout", context_length=9, n_train_vectors=8,
                         n_eval_sequences=1)
    with pytest.raises(DamagedFileError):
        load_token_sequences(spec, tiny_tokenizer())
