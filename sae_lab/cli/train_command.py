"""`python train.py [-m] key=value ...` (= `sae-lab-train`): the overrides checked (overrides.py), the composed
config judged before any dir exists (prevalidation.py), then Hydra runs the job(s) (job.py)."""

from __future__ import annotations

from sae_lab.cli.overrides import MULTIRUN_FLAGS, prepare_argv
from sae_lab.config import CONF_DIR, ConfigError


def _run_task(cfg):  # noqa: ANN001, ANN202 (a composed DictConfig; Hydra keeps what the job returns)
    """One job; its module (torch, Lightning) is imported only when a job runs, not for --help or -sc."""
    from sae_lab.cli.job import run_task

    return run_task(cfg)


def main() -> None:
    """`python train.py [-m] key=value ...`: ranges rewritten and choices checked before Hydra parses,
    and the heavy imports (Lightning) only after the config validated."""
    import sys

    import hydra

    from sae_lab.cli.interrupts import INTERRUPTED_EXIT
    from sae_lab.cli.prevalidation import prevalidate
    from sae_lab.config import register_configs
    from sae_lab.errors import FAULT_EXIT, fault_sentence

    try:
        both = [a for a in sys.argv[1:] if a in MULTIRUN_FLAGS or a in ("-c", "--cfg", "-i", "--info", "-sc",
                                                                       "--shell-completion")]
        if len(both) > 1 and any(a in MULTIRUN_FLAGS for a in both):
            raise ConfigError(f"{both[0]} and {both[1]} cannot be combined; drop -m to print the config of one job.")
        sys.argv[1:] = prepare_argv(sys.argv[1:])
        prevalidate(sys.argv[1:])
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    register_configs()
    try:
        hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")(_run_task)()
    except KeyboardInterrupt:  # between a sweep's jobs (inside a job, run_task says how to resume)
        print("Interrupted between jobs; run the same command again to resume the sweep.", file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT)
    except OSError as err:  # Hydra's own writing (the sweep dir's multirun.yaml) on a full or read-only disk
        print(f"error: {fault_sentence(err)}", file=sys.stderr)
        sys.exit(FAULT_EXIT)
    failed = getattr(sys.modules.get("sae_lab.cli.job"), "FAILED_JOBS", [])
    if failed:
        print(f"{len(failed)} job(s) failed; each run dir's error.txt says why.", file=sys.stderr)
        sys.exit(1)
