"""Builders of tiny, offline language-model artefacts for tests (no Hugging Face Hub needed).

- `tiny_tokenizer()`: a word-level PreTrainedTokenizerFast over WORDS, BOS = EOS = "<|endoftext|>" (id 0).
- `save_tiny_lm(path, arch)`: a random GPT-NeoX ("gpt_neox") or GPT-2 ("gpt2") causal LM (hidden 32, 2 layers,
  4 heads, vocab 200, context 64) and the tokenizer, written with `save_pretrained` into `path`; `hidden=`
  gives another width (a multiple of 4), e.g. a "larger" model for cross-scale tables.
- `save_tiny_text_dataset(path, n_texts)`: a `datasets.Dataset` with a "text" column, written with `save_to_disk`.

Use them from session-scoped fixtures, e.g.

    @pytest.fixture(scope="session")
    def neox_dir(tmp_path_factory):
        return save_tiny_lm(tmp_path_factory.mktemp("neox"), "gpt_neox")
"""

from __future__ import annotations

import random
from pathlib import Path

BOS = "<|endoftext|>"
UNK = "<unk>"
VOCAB_SIZE = 200
N_CTX = 64
HIDDEN = 32
N_LAYERS = 2
N_HEADS = 4
WORDS = (
    "the a an one two three four five six seven eight nine ten cat dog bird fish horse cow sheep goat mouse "
    "rat fox wolf bear lion tiger runs walks jumps sleeps eats drinks sees hears likes chases finds big small "
    "red blue green old young fast slow happy sad and or but then so because when while after before in on "
    "at under over near with from to of by house tree river hill field road town city day night morning "
    "evening rain sun snow wind . ,"
).split()


def tiny_tokenizer():
    """A word-level fast tokenizer: ids 0 = BOS/EOS, 1 = <unk>, then WORDS; splits on whitespace/punctuation."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {BOS: 0, UNK: 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    assert len(vocab) <= VOCAB_SIZE
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=BOS, unk_token=UNK,
                                   pad_token=BOS, model_max_length=N_CTX)


def tiny_config(arch: str, hidden: int = HIDDEN):
    """The transformers config of a tiny random causal LM, `arch` in {"gpt_neox", "gpt2"}."""
    from transformers import GPT2Config, GPTNeoXConfig

    if arch == "gpt_neox":
        return GPTNeoXConfig(vocab_size=VOCAB_SIZE, hidden_size=hidden, num_hidden_layers=N_LAYERS,
                             num_attention_heads=N_HEADS, intermediate_size=4 * hidden,
                             max_position_embeddings=N_CTX, rotary_pct=0.25, bos_token_id=0, eos_token_id=0,
                             pad_token_id=0, tie_word_embeddings=False)
    if arch == "gpt2":
        return GPT2Config(vocab_size=VOCAB_SIZE, n_embd=hidden, n_layer=N_LAYERS, n_head=N_HEADS, n_positions=N_CTX,
                          n_ctx=N_CTX, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    raise ValueError(f"arch={arch!r} is not a tiny test architecture; use gpt_neox or gpt2.")


def save_tiny_lm(path: str | Path, arch: str = "gpt_neox", seed: int = 0, hidden: int = HIDDEN) -> Path:
    """Write a random tiny causal LM of `arch` and its tokenizer to `path` (save_pretrained); return the path."""
    import torch
    from transformers import AutoModelForCausalLM

    path = Path(path)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(arch, hidden))
    with torch.no_grad():  # larger-than-default weights so layers change the residual stream visibly
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.2)
    model.eval().save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return path


def tiny_texts(n_texts: int = 120, seed: int = 0) -> list[str]:
    """Random sentences over WORDS, 5..20 words each."""
    rng = random.Random(seed)
    words = [w for w in WORDS if w not in {".", ","}]
    return [" ".join(rng.choice(words) for _ in range(rng.randint(5, 20))) + " ." for _ in range(n_texts)]


def save_tiny_text_dataset(path: str | Path, n_texts: int = 120, seed: int = 0) -> Path:
    """Write a `datasets.Dataset` with a "text" column (save_to_disk) to `path`; return the path."""
    from datasets import Dataset

    path = Path(path)
    Dataset.from_dict({"text": tiny_texts(n_texts, seed)}).save_to_disk(str(path))
    return path


def load_hf_model(path: str | Path):
    """The saved tiny model through plain `transformers`, eager attention, eval mode, float32."""
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path), attn_implementation="eager",
                                                dtype=torch.float32).eval()
