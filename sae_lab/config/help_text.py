"""`python train.py --help`: sae_lab's groups and keys, a line each, read from conf/ (Hydra's
`hydra.help.template` is this text, through the `sae_lab_help` resolver)."""

from __future__ import annotations

import re
from pathlib import Path

from sae_lab.config.schema import CONFIG_GROUPS

_KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>\w+):\s*(?P<value>[^#]*?)\s*(?:#\s*(?P<doc>.*))?$")


def _keys(train_yaml: Path) -> list[tuple[str, str, str]]:
    """(dotted key, default, comment) for the documented keys of conf/train.yaml, up to the hydra block."""
    out, parent = [], ""
    for line in train_yaml.read_text().splitlines():
        if line.startswith("hydra:"):
            break
        m = _KEY_LINE.match(line)
        if not m or m["key"] == "defaults":
            continue
        if not m["indent"]:
            parent = m["key"] if not m["value"] else ""
            key = m["key"]
        elif parent and len(m["indent"]) == 2:
            key = f"{parent}.{m['key']}"
        else:
            continue
        value = re.sub(r"^\$\{oc\.env:\w+,(.*)\}$", r"\1", m["value"] or "")  # an env default shows its fallback
        value = re.sub(r"^\$\{oc\.select:[\w.]+,(.*)\}$", r"\1", value)  # and so does a subject-given one
        out.append((key, value, (m["doc"] or "").strip()))
    return out


def help_text(conf_dir: Path) -> str:
    from omegaconf import OmegaConf

    defaults = {}
    for item in OmegaConf.load(conf_dir / "train.yaml").defaults:
        if OmegaConf.is_dict(item):
            defaults.update({str(k): str(v) for k, v in item.items()})
    lines = ["sae_lab: train sparse autoencoders on a subject model's activations, many seeds at once,",
             "and compare the seeds' dictionaries against random ones.", "",
             "  python train.py [key=value ...]                one run (its dir is printed at the start)",
             "  python train.py -m seed=1..20 [key=value ...]  a sweep, one run per value, then the report",
             "  sae-lab-report DIR                             the cross-seed report of any dir of runs", "",
             "== Config groups (group=choice; * is the default) =="]
    for group in CONFIG_GROUPS:
        names = sorted(p.stem for p in (conf_dir / group).glob("*.yaml"))
        marked = [f"{n}*" if defaults.get(group) == n else n for n in names]
        lines.append(f"  {group:<11} {', '.join(marked)}")
    lines += ["", "== Keys (key=value; dotted keys reach into groups, e.g. sae.aux_k=256, budget.epochs=100) =="]
    for key, value, doc in _keys(conf_dir / "train.yaml"):
        lines.append(f"  {key:<26} {value:<9} {doc}".rstrip())
    lines += ["", "Every key with its meaning: docs/config.md. Hydra's own flags (-sc install=bash for tab",
              "completion, --cfg job to print the composed config, --info): --hydra-help.", ""]
    return "\n".join(lines).replace("$", "$$")  # Hydra reads the template with string.Template
