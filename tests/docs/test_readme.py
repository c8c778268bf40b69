"""The README works as a front door: every relative link in README.md and docs/*.md resolves (to a file, and
for a `#anchor` into Markdown to one of its headings), and the README's shell commands run as written.

Shell commands are the lines of the README's ```sh / bash / shell / console blocks. A `python train.py ...`
line runs from the repository root with `budget=smoke progress=false` appended and its run, sweep and cache
dirs in a temporary folder, so nothing is written into the checkout. Lines that cannot run here, or not
within a minute, are in SKIP with the reason, which pytest reports as the skip message.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.runs import ROOT, run_train

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
SHELL_BLOCKS = {"sh", "bash", "shell", "console"}
SMOKE = ("budget=smoke", "progress=false")

# (regular expression searched in the command, why it is not run here). Every entry must match a README line.
SKIP: list[tuple[str, str]] = [
    (r"^make (demo|test)\b", "installs .venv and runs the 5-seed demo or the test suite: minutes, and this test "
                             "runs inside the suite"),
    (r"model=(pythia|gpt2)", "needs the model's weights from the Hugging Face Hub, which this machine cannot reach"),
    (r"model=docs-lm", "over a minute on the smoke budget (it builds a 200K-vector activation cache); "
                       "tests/e2e/test_docs_lm_runs.py runs model=docs-lm"),
    (r"hydra/launcher=slurm", "needs a SLURM cluster (tests/e2e/test_slurm.py, slurm tier)"),
    (r"logger=wandb(?!.*logger\.offline=true)", "needs a W&B login (tests/e2e/test_loggers.py runs W&B offline)"),
    (r"experiment=", "a preset sweep of many runs (table2: 20) takes minutes even on the smoke budget; "
                     "tests/e2e/test_experiments.py runs every preset on a tiny budget"),
]

CONSOLE_SCRIPTS = {"sae-lab-train": "sae_lab.cli", "sae-lab-report": "sae_lab.cli.report",
                   "sae-lab-geometry": "sae_lab.cli.geometry"}


# ---------------------------------------------------------------------------------------------- Markdown


def fenced_blocks(text: str) -> list[tuple[str, list[str]]]:
    """(info string's first word, lines) of every fenced code block."""
    blocks, info, lines, fence = [], "", [], None
    for line in text.splitlines():
        stripped = line.strip()
        if fence is None:
            match = re.match(r"(`{3,}|~{3,})\s*([^\s`]*)", stripped)
            if match:
                fence, info, lines = match.group(1), match.group(2).lower(), []
        elif stripped.startswith(fence) and stripped.strip(fence[0]) == "":
            blocks.append((info, lines))
            fence = None
        else:
            lines.append(line)
    return blocks


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks and indented (4-space) code blocks."""
    out, fence, code, blank = [], None, False, True
    for line in text.splitlines():
        stripped = line.strip()
        if fence is not None:
            fence = None if stripped.startswith(fence) else fence
            continue
        if re.match(r"(`{3,}|~{3,})", stripped):
            fence = stripped[:3]
            continue
        code = line.startswith("    ") and (blank or code)  # indented after a blank line: a code block
        blank = stripped == ""
        if not code:
            out.append(line)
    return out


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its rendered text lower-cased, punctuation dropped, spaces -> '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose_lines(page.read_text()):
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = github_slug(match.group(1))
        out.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return out


def relative_links(page: Path) -> list[str]:
    """Targets of the page's Markdown links and images that are not URLs (inline code left out)."""
    targets = []
    for line in prose_lines(page.read_text()):
        line = re.sub(r"`[^`]*`", "", line)
        for match in re.finditer(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", line):
            target = match.group(1)
            if not re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):
                targets.append(target)
    return targets


def link_cases() -> list:
    return [pytest.param(page, target, id=f"{page.relative_to(ROOT)}->{target}")
            for page in PAGES for target in relative_links(page)]


@pytest.mark.parametrize(("page", "target"), link_cases())
def test_relative_link_resolves(page: Path, target: str):
    path, _, anchor = target.partition("#")
    file = (page.parent / path).resolve() if path else page
    assert file.exists(), f"{page.relative_to(ROOT)} links to {target}: {path} does not exist"
    if anchor and file.suffix == ".md":
        assert anchor in anchors(file), (f"{page.relative_to(ROOT)} links to {target}: {file.name} has no heading "
                                         f"with that anchor; it has {sorted(anchors(file))}")


def test_pages_have_links():
    """The parser finds links at all (a broken regular expression would pass every case above vacuously)."""
    assert any(t.startswith("docs/") for t in relative_links(README))
    assert "the-mod-113-model" in anchors(ROOT / "docs" / "subjects.md")


# ---------------------------------------------------------------------------------------------- commands


def readme_commands() -> list[str]:
    """One command per line of the README's shell blocks, comments and a leading `$ ` prompt removed."""
    commands = []
    for info, lines in fenced_blocks(README.read_text()):
        if info not in SHELL_BLOCKS:
            continue
        for line in lines:
            line = re.sub(r"^\s*\$\s+", "", line).strip()
            words = shlex.split(line, comments=True)
            if words:
                commands.append(shlex.join(words))
    return commands


def skip_reason(command: str) -> str | None:
    for pattern, reason in SKIP:
        if re.search(pattern, command):
            return reason
    return None


def train_args(words: list[str]) -> list[str] | None:
    """The arguments of a `python train.py ...` / `sae-lab-train ...` line; None for any other command."""
    if words[:2] == ["python", "train.py"]:
        return words[2:]
    if words[:1] == ["sae-lab-train"]:
        return words[1:]
    return None


def command_cases() -> list:
    cases, smoke_runs = [], {}
    for command in readme_commands():
        reason = skip_reason(command)
        args = train_args(shlex.split(command))
        if reason is None and args is not None and "--help" not in args:
            key = tuple(dict.fromkeys([*args, *SMOKE]))  # what actually runs, duplicates dropped
            if key in smoke_runs:
                reason = f"runs exactly what `{smoke_runs[key]}` runs once {' '.join(SMOKE)} is appended"
            smoke_runs.setdefault(key, command)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        cases.append(pytest.param(command, marks=marks, id=command))
    return cases


def program(name: str) -> list[str]:
    """A console script from this interpreter's environment, or its module through this interpreter."""
    script = Path(sys.executable).with_name(name)
    return [str(script)] if script.exists() else [sys.executable, "-m", CONSOLE_SCRIPTS[name]]


def run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> dict:
    """One temporary folder (and activation cache) for all the commands, and the sweep dirs they made."""
    return {"root": tmp_path_factory.mktemp("readme"), "sweeps": []}


def run_command(command: str, workdir: dict) -> subprocess.CompletedProcess:
    words = shlex.split(command)
    root: Path = workdir["root"]
    here = root / f"cmd{len(list(root.glob('cmd*')))}"
    cache = f"cache_dir={root / 'cache'}"
    args = train_args(words)
    if args is not None:
        if "--help" in args:
            return run_train(*args)
        where = f"hydra.sweep.dir={here / 'sweep'}" if "-m" in args else f"hydra.run.dir={here / 'run'}"
        proc = run_train(*args, *SMOKE, where, cache)
        if "-m" in args:
            workdir["sweeps"].append(here / "sweep")
        return proc
    if words[:3] == ["python", "-m", "sae_lab.cli.geometry"] or words[:1] == ["sae-lab-geometry"]:
        rest = words[3:] if words[0] == "python" else words[1:]
        return run([*program("sae-lab-geometry"), *rest, f"out={here / 'geo'}", cache])
    if words[:3] in (["python", "-m", "sae_lab.cli.report"], ["python", "-m", "sae_lab.report"]) \
            or words[:1] == ["sae-lab-report"]:
        rest = words[3:] if words[0] == "python" else words[1:]
        if not workdir["sweeps"]:  # run alone (-k): make the README's first sweep first
            sweep = next(c for c in readme_commands() if (a := train_args(shlex.split(c))) and "-m" in a
                         and skip_reason(c) is None)
            assert run_command(sweep, workdir).returncode == 0
        dirs = [str(workdir["sweeps"][-1]) if "<" in w or w.startswith("outputs/") else w for w in rest]
        return run([*program("sae-lab-report"), *dirs])
    pytest.fail(f"the README command `{command}` is neither run by this test nor in its SKIP list: add one")


@pytest.mark.parametrize("command", command_cases())
def test_readme_commands(command: str, workdir: dict):
    proc = run_command(command, workdir)
    assert proc.returncode == 0, f"`{command}` exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"


def test_readme_has_commands_and_every_skip_is_used():
    commands = readme_commands()
    assert any(train_args(shlex.split(c)) for c in commands), "the README's cheat sheet has no python train.py line"
    unused = [pattern for pattern, _ in SKIP if not any(re.search(pattern, c) for c in commands)]
    assert not unused, f"SKIP entries that match no README command (remove them): {unused}"
