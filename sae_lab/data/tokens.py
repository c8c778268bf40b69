"""Token sequences for language-model subjects: a data spec and a loader that packs text into rows.

`load_token_sequences(spec, tokenizer)` returns (train [S_train, T], eval [S_eval, T]) int64 token ids,
T = spec.context_length.

Packing. Documents are read in the data set's order (no shuffling, so the result is deterministic).
Text is tokenised without special tokens and each document is followed by the tokenizer's EOS (when
it has one); pre-tokenised documents (`tokens_column`) are used as they are. The token stream is cut
into rows of T - 1 tokens with BOS put first (`prepend_bos=True`) or of T tokens (`prepend_bos=False`);
a row may span documents.

Token streams. A directory holding `<split>.npy` files (1-D integer token ids, each document followed
by the tokenizer's EOS, as scripts/build_docs_corpus.py writes the shipped corpus) is read as pre-tokenised
documents, cut after each EOS; a card.json beside them is checked first (sae_lab.shipped.verify_card).

Held-out split. With `eval_split` set, the eval rows are the first `n_eval_sequences` rows of that split
and the train rows the first rows of `split`: held-out documents never reach a train row.

Disjoint eval and train rows (one split). The eval rows are the first `n_eval_sequences` rows of the
stream (a fixed part: the first documents of the split). The rest of the document the last eval row ended in is
dropped, and the train rows are packed from the documents after it, as many as needed for
`n_train_vectors` kept positions (`kept_per_row` per row: T - 1 when the BOS position is not kept).
So no token of a document the eval rows touched is in a train row; the eval rows do not depend on
`n_train_vectors`, and the train rows depend on `n_eval_sequences` (both are in `spec_dict()`).
"""

from __future__ import annotations

import glob
import math
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from sae_lab.shipped import verify_card

PACKING = "concat-eos-bos-rows-v1"
TOKENIZE_BATCH = 512
_SAVED_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
_FILE_BUILDERS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet", ".arrow": "arrow"}


@dataclass(frozen=True)
class TokenDataSpec:
    """What text a language-model subject is run on (config group `data`).

    dataset: a Hub data set name (e.g. "NeelNanda/pile-10k"), a directory written by `save_to_disk`, a
        directory / glob of .txt files (one document per file), or a .json/.jsonl/.csv/.parquet file.
    split: the split to read (a directory holding a single saved Dataset has none: it is read whole).
    text_column: the column with the text; tokens_column: read pre-tokenised ids from this column
        (e.g. "input_ids") instead.
    config_name: the Hub data set's configuration (e.g. "wikitext-103-raw-v1"), if it has several.
    context_length: T, tokens per row. prepend_bos: put the tokenizer's BOS first in every row.
    n_train_vectors: how many activation vectors (kept positions) the train rows must give.
    n_eval_sequences: how many held-out rows. streaming: stream a Hub data set instead of downloading it.
    eval_split: take the held-out rows from this split (e.g. "heldout") instead of the start of `split`.
    """

    dataset: str
    split: str = "train"
    text_column: str = "text"
    tokens_column: str | None = None
    config_name: str | None = None
    context_length: int = 128
    prepend_bos: bool = True
    n_train_vectors: int = 1_000_000
    n_eval_sequences: int = 200
    streaming: bool = True
    eval_split: str | None = None

    def __post_init__(self) -> None:
        if self.context_length < 2:
            raise ValueError(f"data.context_length={self.context_length} must be at least 2.")
        if self.n_train_vectors < 1:
            raise ValueError(f"data.n_train_vectors={self.n_train_vectors} must be at least 1.")
        if self.n_eval_sequences < 0:
            raise ValueError(f"data.n_eval_sequences={self.n_eval_sequences} must not be negative.")

    def spec_dict(self) -> dict[str, Any]:
        """Everything that changes the token rows (for the activation-cache key); `streaming` does not."""
        d = asdict(self)
        d.pop("streaming")
        if d["eval_split"] is None:  # absent unless set: the keys of caches built before it existed stay
            d.pop("eval_split")
        d["packing"] = PACKING
        return d


# ------------------------------------------------------------------------------------------ sources
def _load_failed(spec: TokenDataSpec, err: BaseException) -> ValueError:
    first = (str(err).strip().splitlines() or [type(err).__name__])[0].rstrip(".")
    return ValueError(f"data.dataset={spec.dataset} could not be loaded ({first}); pass a directory written by "
                      "`Dataset.save_to_disk`, a directory or glob of .txt files, or a Hub data set name (with "
                      "network access).")


def _text_files(files: list[str]) -> Iterator[str]:
    for f in files:
        yield Path(f).read_text(encoding="utf-8")


def _open_dataset(spec: TokenDataSpec):
    """A datasets.Dataset / IterableDataset, or None when the source is .txt files (see `_documents`)."""
    import datasets

    name = spec.dataset
    path = Path(name).expanduser()
    try:
        if path.is_dir() and any((path / m).is_file() for m in _SAVED_MARKERS):
            ds = datasets.load_from_disk(str(path))
            if isinstance(ds, datasets.DatasetDict):
                if spec.split not in ds:
                    raise ValueError(f"data.split={spec.split!r} is not a split of {name}; splits: "
                                     f"{', '.join(ds)}.")
                ds = ds[spec.split]
            return ds
        if path.is_file() and path.suffix in _FILE_BUILDERS:
            return datasets.load_dataset(_FILE_BUILDERS[path.suffix], data_files=str(path), split="train")
        if path.is_dir():
            return datasets.load_dataset(str(path), name=spec.config_name, split=spec.split)
        from sae_lab.models.hub import hub_offline, hub_reachable

        if hub_reachable():
            return datasets.load_dataset(name, name=spec.config_name, split=spec.split, streaming=spec.streaming)
        try:  # only the local datasets cache: no network retries
            with hub_offline():
                return datasets.load_dataset(name, name=spec.config_name, split=spec.split, streaming=False)
        except Exception as err:
            raise ValueError(
                f"data.dataset={name} is not a local path nor in the local Hugging Face cache, and the Hub cannot "
                f"be reached; download it on a networked machine with `hf download --repo-type dataset {name}` "
                "or pass a local path.") from err
    except ValueError as err:
        if str(err).startswith("data."):
            raise
        raise _load_failed(spec, err) from err
    except Exception as err:  # FileNotFoundError, DatasetNotFoundError, ConnectionError, ...
        raise _load_failed(spec, err) from err


def token_stream_file(spec: TokenDataSpec, split: str) -> Path | None:
    """`<dataset>/<split>.npy` when the source is a directory of token streams (checked against its card)."""
    path = Path(spec.dataset).expanduser()
    if not (path.is_dir() and any(path.glob("*.npy"))):
        return None
    verify_card(path)
    stream = path / f"{split}.npy"
    if not stream.is_file():
        splits = ", ".join(sorted(p.stem for p in path.glob("*.npy")))
        raise ValueError(f"data split {split!r} is not a token stream of {spec.dataset}; splits: {splits}.")
    return stream


def _stream_documents(stream: Path, eos_id: int | None) -> Iterator[list[int]]:
    """The documents of a token stream: cut after each EOS (each keeps its EOS), in order."""
    import numpy as np

    ids = np.load(stream, mmap_mode="r")
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ValueError(f"{stream} must hold a 1-D integer array of token ids; it holds {ids.dtype} {ids.shape}.")
    ends = np.flatnonzero(np.asarray(ids) == eos_id) + 1 if eos_id is not None else np.array([], dtype=np.int64)
    start = 0
    for end in [*ends.tolist(), ids.size]:
        if end > start:
            yield np.asarray(ids[start:end]).tolist()
        start = end


def _documents(spec: TokenDataSpec, split: str | None = None, eos_id: int | None = None
               ) -> Iterator[str | list[int]]:
    """The documents of the source in order: texts, or token-id lists when `tokens_column` is set or the
    source is a directory of token streams."""
    split = spec.split if split is None else split
    stream = token_stream_file(spec, split)
    if stream is not None:
        yield from _stream_documents(stream, eos_id)
        return
    if split != spec.split:
        spec = replace(spec, split=split)
    name = spec.dataset
    path = Path(name).expanduser()
    if any(c in name for c in "*?["):
        files = sorted(glob.glob(str(path), recursive=True))
        if not files:
            raise ValueError(f"data.dataset={name} matches no files.")
        yield from _text_files(files)
        return
    if path.is_file() and path.suffix == ".txt":
        yield from _text_files([str(path)])
        return
    if path.is_dir() and not any((path / m).is_file() for m in _SAVED_MARKERS):
        txt = sorted(str(p) for p in path.rglob("*.txt"))
        if txt:
            yield from _text_files(txt)
            return
    if not path.exists() and (name.startswith(("/", "./", "../", "~")) or name.count("/") > 1):
        raise ValueError(f"data.dataset={name} does not exist on this machine; pass an existing path or a Hub "
                         "data set name.")
    ds = _open_dataset(spec)
    column = spec.tokens_column or spec.text_column
    key = "data.tokens_column" if spec.tokens_column else "data.text_column"
    names = getattr(ds, "column_names", None)
    if names is not None and column not in names:
        raise ValueError(f"{key}={column!r} is not a column of {name}; columns: {', '.join(names)}.")
    try:
        for batch in ds.iter(batch_size=TOKENIZE_BATCH):
            if column not in batch:
                raise ValueError(f"{key}={column!r} is not a column of {name}; columns: {', '.join(batch)}.")
            yield from batch[column]
    except ValueError:
        raise
    except Exception as err:  # a streaming read that fails half-way
        raise _load_failed(spec, err) from err


def _token_docs(docs: Iterable[str | list[int]], tokenizer, eos_id: int | None) -> Iterator[list[int]]:
    """Each document as token ids (+ EOS after each text document), tokenising texts in batches."""
    pending: list[str] = []

    def flush() -> Iterator[list[int]]:
        if pending:
            for ids in tokenizer(pending, add_special_tokens=False)["input_ids"]:
                yield list(ids) + ([eos_id] if eos_id is not None else [])
            pending.clear()

    for doc in docs:
        if isinstance(doc, str):
            pending.append(doc)
            if len(pending) >= TOKENIZE_BATCH:
                yield from flush()
        else:
            yield from flush()
            yield [int(t) for t in doc]
    yield from flush()


def _pack(docs: Iterator[list[int]], n_rows: int, body: int, bos: list[int]) -> list[list[int]]:
    """Up to `n_rows` rows of `bos + body tokens`; the rest of the last document used is dropped."""
    rows: list[list[int]] = []
    buffer: list[int] = []
    while len(rows) < n_rows:
        while len(buffer) < body:
            doc = next(docs, None)
            if doc is None:
                return rows
            buffer.extend(doc)
        n = min(len(buffer) // body, n_rows - len(rows))
        rows.extend(bos + buffer[i * body:(i + 1) * body] for i in range(n))
        buffer = buffer[n * body:]
    return rows


def load_token_sequences(spec: TokenDataSpec, tokenizer, kept_per_row: int | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """(train [S_train, T], eval [S_eval, T]) int64 rows packed from `spec.dataset` (see the module docstring).

    `kept_per_row` is how many activation vectors one row gives (default: T - 1 with BOS, T without);
    S_train = ceil(n_train_vectors / kept_per_row).
    """
    T = spec.context_length
    if kept_per_row is None:
        kept_per_row = T - 1 if spec.prepend_bos else T
    if not 1 <= kept_per_row <= T:
        raise ValueError(f"kept_per_row={kept_per_row} must be in 1..{T}.")
    bos: list[int] = []
    if spec.prepend_bos:
        bos_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if bos_id is None:
            raise ValueError("data.prepend_bos=true but the tokenizer has neither a BOS nor an EOS token; set "
                             "data.prepend_bos=false.")
        bos = [int(bos_id)]
    body = T - len(bos)
    n_train = math.ceil(spec.n_train_vectors / kept_per_row)
    eos = tokenizer.eos_token_id
    docs = _token_docs(_documents(spec, eos_id=eos), tokenizer, eos)
    eval_docs = docs if spec.eval_split is None else _token_docs(_documents(spec, spec.eval_split, eos), tokenizer,
                                                                  eos)
    eval_rows = _pack(eval_docs, spec.n_eval_sequences, body, bos)
    if len(eval_rows) < spec.n_eval_sequences:
        raise ValueError(f"data.n_eval_sequences={spec.n_eval_sequences} asks for more rows than "
                         f"data.dataset={spec.dataset} (split {spec.eval_split or spec.split}) gives: only "
                         f"{len(eval_rows)} rows of {T} tokens are available.")
    train_rows = _pack(docs, n_train, body, bos)
    if len(train_rows) < n_train:
        raise ValueError(f"data.n_train_vectors={spec.n_train_vectors} asks for more than data.dataset="
                         f"{spec.dataset} (split {spec.split}) gives after the {spec.n_eval_sequences} eval rows: "
                         f"only {len(train_rows) * kept_per_row} vectors ({len(train_rows)} rows of {T} tokens) "
                         "are available.")

    def as_tensor(rows: list[list[int]]) -> torch.Tensor:
        return torch.tensor(rows, dtype=torch.long).reshape(len(rows), T)

    return as_tensor(train_rows), as_tensor(eval_rows)


__all__ = ["TokenDataSpec", "load_token_sequences", "token_stream_file"]
