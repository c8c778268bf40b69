"""Build the shipped `docs` corpus: real, human-written English documentation prose, offline.

Sources (Debian packages, reachable through the Debian registry this project's machines use):
  python3.11-doc     the Python 3.11 documentation's reStructuredText sources (html/_sources/*.rst.txt); PSF licence
  python-django-doc  the Django 3.2 documentation, rendered HTML (the main text of each page); BSD-3-Clause
Both licences allow redistribution with their notices; the data card records them.

Steps, all deterministic: extract each .deb (dpkg-deb), read every page as one document, clean it (drop
reST section underlines, label/comment lines and permalink marks; collapse blank runs), drop paragraphs
already seen earlier in the corpus (boilerplate repeated across pages) and documents under 50 words,
drop exact duplicate documents, split documents into held-out (sha256 of the document's source path,
mod 100 < 4) and training, train a byte-level BPE tokenizer (Hugging Face `tokenizers`, 8,192 ids) on
the training documents only, and write each split as one uint16 stream: every document's ids followed
by the end-of-text id.

    python scripts/build_docs_corpus.py --debs DIR --out sae_lab/data/corpora/docs

DIR holds the two .deb files (`apt-get download python3.11-doc=3.11.2-6+deb12u9
python-django-doc=3:3.2.25-0+deb12u7`); without --debs they are downloaded into a temporary directory.
`--installed` reads the same files from the installed packages instead (`apt-get install` of those versions).
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import re
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

SOURCES = {  # package: (version, licence, glob of the documents inside the package, format)
    "python3.11-doc": ("3.11.2-6+deb12u9", "PSF-2.0 (Python Software Foundation License)",
                       "usr/share/doc/python3.11/html/_sources/**/*.rst.txt", "rst"),
    "python-django-doc": ("3:3.2.25-0+deb12u7", "BSD-3-Clause (Django Software Foundation)",
                          "usr/share/doc/python-django-doc/html/**/*.html", "html"),
}
SKIP_PARTS = (  # HTML pages that are not documents: code listings, indexes, assets
    "_modules", "_static", "_images", "_sources", "genindex", "search", "py-modindex")
VOCAB_SIZE = 8192
EOT = "<|endoftext|>"
HELDOUT_PERCENT = 4
MIN_WORDS = 50


# -------------------------------------------------------------------------------------------- reading
class _MainText(HTMLParser):
    """The text of a Sphinx page's main body (div role=main, class body, or Django's theme: yui-g), with breaks."""

    BLOCKS = {"p", "div", "li", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "dd", "tr", "br", "table",
              "blockquote", "section"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0  # >0 while inside the main body
        self.skip = 0   # >0 inside script/style/permalink anchors
        self.out: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if self.depth:
            if tag == "div":
                self.depth += 1
            if tag in ("script", "style") or (tag == "a" and "headerlink" in (a.get("class") or "")):
                self.skip += 1
            if tag in self.BLOCKS:
                self.out.append("\n\n" if tag != "pre" else "\n")
        elif tag == "div" and (a.get("role") == "main" or {"body", "yui-g"} & set((a.get("class") or "").split())):
            self.depth = 1

    def handle_endtag(self, tag: str) -> None:
        if not self.depth:
            return
        if tag in ("script", "style", "a") and self.skip:
            self.skip -= 1
        if tag == "div":
            self.depth -= 1
        if tag in self.BLOCKS:
            self.out.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self.depth and not self.skip:
            self.out.append(data)


def html_text(raw: str) -> str:
    parser = _MainText()
    parser.feed(raw)
    return html.unescape("".join(parser.out))


_UNDERLINE = re.compile(r"^\s*([=\-~^\"'`#*+.:_])\1{2,}\s*$")
_REST_NOISE = re.compile(r"^\.\. (_[^:]+:|index::|\|)|^\.\.\s*$|^\.\. [a-z-]+:: *$")


def clean(text: str, fmt: str) -> str:
    lines = []
    for line in text.replace("\r\n", "\n").replace("\u00b6", "").split("\n"):
        line = line.rstrip()
        if fmt == "rst" and (_UNDERLINE.match(line) or _REST_NOISE.match(line)):
            continue
        lines.append(line)
    text = "\n".join(lines)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def read_documents(root: Path) -> list[tuple[str, str]]:
    """(source path, cleaned text) of every page of every source, in a fixed order."""
    docs = []
    for package, (_version, _licence, pattern, fmt) in SOURCES.items():
        base = root / package
        files = sorted(p for p in base.glob(pattern) if fmt == "rst" or not (
            set(p.relative_to(base).parts) & set(SKIP_PARTS) or p.stem in SKIP_PARTS))
        for f in files:
            raw = f.read_text(encoding="utf-8", errors="replace")
            text = clean(html_text(raw) if fmt == "html" else raw, fmt)
            docs.append((f"{package}/{f.relative_to(base)}", text))
    return docs


def deduplicate(docs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Drop paragraphs seen earlier in the corpus, then short documents, then exact duplicate documents."""
    seen_par: set[str] = set()
    seen_doc: set[str] = set()
    out = []
    for path, text in docs:
        kept = []
        for par in text.split("\n\n"):
            key = " ".join(par.split())
            if len(key.split()) >= 8 and key in seen_par:  # short paragraphs (headings, "Example:") stay
                continue
            seen_par.add(key)
            kept.append(par)
        text = "\n\n".join(kept)
        digest = hashlib.sha256(text.encode()).hexdigest()
        if len(text.split()) < MIN_WORDS or digest in seen_doc:
            continue
        seen_doc.add(digest)
        out.append((path, text))
    return out


def is_heldout(path: str) -> bool:
    return int(hashlib.sha256(path.encode()).hexdigest(), 16) % 100 < HELDOUT_PERCENT


# ------------------------------------------------------------------------------------------ building
def fetch_debs(dest: Path) -> None:
    specs = [f"{p}={v}" for p, (v, *_rest) in SOURCES.items()]
    subprocess.run(["apt-get", "download", *specs], cwd=dest, check=True)


def installed_versions() -> dict[str, str]:
    """{package: installed version} of each source (checked against the pinned one)."""
    out = {}
    for package, (version, *_rest) in SOURCES.items():
        proc = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
        have = proc.stdout.strip() if proc.returncode == 0 else None
        if have != version:
            raise SystemExit(f"{package} {version} is not installed (found {have}); "
                             f"`apt-get install {package}={version}` or use --debs.")
        out[package] = "installed"
    return out


def link_installed(root: Path) -> None:
    """root/<package>/usr/share/doc -> /usr/share/doc, so installed files read like extracted ones."""
    for package in SOURCES:
        (root / package / "usr" / "share").mkdir(parents=True)
        (root / package / "usr" / "share" / "doc").symlink_to("/usr/share/doc")


def extract(debs: Path, root: Path) -> dict[str, str]:
    """Unpack each source's .deb under root/<package>; returns the sha256 of each .deb."""
    shas = {}
    for package in SOURCES:
        found = sorted(debs.glob(f"{package}_*.deb"))
        if not found:
            raise SystemExit(f"No {package}_*.deb in {debs}; run `apt-get download {package}` there.")
        deb = found[-1]
        shas[package] = hashlib.sha256(deb.read_bytes()).hexdigest()
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root / package)], check=True)
    return shas


def train_tokenizer(texts: list[str]):
    from tokenizers import ByteLevelBPETokenizer

    tok = ByteLevelBPETokenizer(add_prefix_space=False)
    tok.train_from_iterator(texts, vocab_size=VOCAB_SIZE, min_frequency=2, special_tokens=[EOT],
                            show_progress=False)
    return tok


def token_stream(tok, texts: list[str]) -> np.ndarray:
    eot = tok.token_to_id(EOT)
    ids: list[int] = []
    for enc in tok.encode_batch(texts):
        ids.extend(enc.ids)
        ids.append(eot)
    return np.asarray(ids, dtype=np.uint16)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(debs: Path | None, out: Path) -> dict:
    """Build from the .deb files in `debs`, or from the installed packages when `debs` is None."""
    with tempfile.TemporaryDirectory() as tmp:
        if debs is None:
            shas = installed_versions()
            link_installed(Path(tmp))
        else:
            shas = extract(debs, Path(tmp))
        docs = deduplicate(read_documents(Path(tmp)))
    train = [(p, t) for p, t in docs if not is_heldout(p)]
    heldout = [(p, t) for p, t in docs if is_heldout(p)]
    tok = train_tokenizer([t for _, t in train])
    out.mkdir(parents=True, exist_ok=True)
    tok_dir = out / "tokenizer"
    tok_dir.mkdir(exist_ok=True)
    tok.save(str(tok_dir / "tokenizer.json"))
    splits = {}
    for name, part in (("train", train), ("heldout", heldout)):
        ids = token_stream(tok, [t for _, t in part])
        np.save(out / f"{name}.npy", ids)
        splits[name] = {"documents": len(part), "words": sum(len(t.split()) for _, t in part),
                        "tokens": int(ids.size), "per_source": {
                            pkg: sum(p.startswith(pkg + "/") for p, _ in part) for pkg in SOURCES}}
    files = ["train.npy", "heldout.npy", "tokenizer/tokenizer.json"]
    card = {
        "name": "docs",
        "sources": [{"package": p, "version": v, "licence": lic, "documents": pat, "format": fmt,
                     "deb_sha256": shas[p]} for p, (v, lic, pat, fmt) in SOURCES.items()],
        "cleaning": {"min_words": MIN_WORDS, "paragraph_dedup_min_words": 8, "heldout_rule":
                     f"sha256(source path) mod 100 < {HELDOUT_PERCENT}"},
        "tokenizer": {"kind": "byte-level BPE (tokenizers)", "vocab_size": tok.get_vocab_size(),
                      "end_of_text": EOT, "end_of_text_id": tok.token_to_id(EOT), "trained_on": "train split"},
        "dtype": "uint16, one stream per split: each document's ids then end_of_text_id",
        "splits": splits,
        "sha256": {f: sha256(out / f) for f in files},
    }
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    (out / "DATA_CARD.md").write_text(data_card_markdown(card))
    return card


def data_card_markdown(card: dict) -> str:
    s = card["splits"]
    lines = [
        "# The docs corpus: data card", "",
        "Real, human-written English: the prose of two projects' documentation, as Debian ships it. Rebuilt "
        "deterministically by `scripts/build_docs_corpus.py` (extract, clean, deduplicate, split, tokenise).", "",
        "| source package | version | licence | documents |", "| :--- | :--- | :--- | :--- |",
        *[f"| {src['package']} | {src['version']} | {src['licence']} | `{src['documents']}` ({src['format']}) |"
          for src in card["sources"]], "",
        "Both licences allow redistribution; their notices are in the packages' copyright files "
        "(`/usr/share/doc/<package>/copyright`).", "",
        "| split | documents | words | tokens | per source |", "| :--- | ---: | ---: | ---: | :--- |",
        *[f"| {name} | {v['documents']:,} | {v['words']:,} | {v['tokens']:,} | "
          f"{', '.join(f'{k}: {n}' for k, n in v['per_source'].items())} |" for name, v in s.items()], "",
        f"Cleaning: reST section underlines, labels and bare directives dropped; a paragraph of at least "
        f"{card['cleaning']['paragraph_dedup_min_words']} words already seen earlier in the corpus dropped; "
        f"documents under {card['cleaning']['min_words']} words and exact duplicates dropped. Held-out documents: "
        f"{card['cleaning']['heldout_rule']}.", "",
        f"Tokenizer: {card['tokenizer']['kind']}, {card['tokenizer']['vocab_size']:,} ids, trained on the training "
        f"split only; `{card['tokenizer']['end_of_text']}` (id {card['tokenizer']['end_of_text_id']}) ends every "
        f"document. Token files: {card['dtype']}.", "",
        "| file | sha256 |", "| :--- | :--- |", *[f"| `{f}` | `{h}` |" for f, h in card["sha256"].items()], "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debs", type=Path, help="directory with the source .deb files (default: download)")
    parser.add_argument("--installed", action="store_true", help="read the installed packages instead of .debs")
    parser.add_argument("--out", type=Path, default=Path("sae_lab/data/corpora/docs"))
    args = parser.parse_args()
    os.environ.setdefault("RAYON_NUM_THREADS", "1")  # one thread: the BPE merges do not depend on scheduling
    if args.installed:
        card = build(None, args.out)
    elif args.debs is None:
        with tempfile.TemporaryDirectory() as tmp:
            fetch_debs(Path(tmp))
            card = build(Path(tmp), args.out)
    else:
        card = build(args.debs, args.out)
    print(json.dumps(card["splits"], indent=2))


if __name__ == "__main__":
    main()
