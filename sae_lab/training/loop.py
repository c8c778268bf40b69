"""The Hydra main: build the parts from the config, fit, export.

`python train.py [-m] key=value ...` goes through `sae_lab.cli.main()`, which checks the config
before this module (and Lightning) is imported; notebooks call `train(cfg, run_dir)`.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import lightning as L
from omegaconf import DictConfig, OmegaConf

from sae_lab.artifacts import RunDir, atomic_write_text
from sae_lab.config import (
    ConfigError,
    behaviour_epochs,
    build_subject,
    eval_epochs,
    member_seeds,
    validate,
)
from sae_lab.config.devices import device_available
from sae_lab.config.experiment_keys import condition_of
from sae_lab.data import ActivationDataModule, cached_activations
from sae_lab.integrations.loggers import build_loggers, finish_loggers
from sae_lab.models.protocol import SubjectModel
from sae_lab.sae.base import MemberSAE
from sae_lab.sae.configs import architecture_config
from sae_lab.sae.export import export_members
from sae_lab.sae.module import SAEModule
from sae_lab.training.callbacks import CrossSeedAgreement, DeadFeatureResampler, EvalCallback, LastCheckpoint
from sae_lab.training.callbacks.preemption import PreemptionCheckpoint
from sae_lab.training.erank_sizing import adopt_recorded_d_sae, resolve_d_sae
from sae_lab.training.patched_ce import PatchedCE
from sae_lab.training.run_state import RunInterrupted, check_same_experiment, finished_rows


def quiet_lightning() -> None:
    """Lightning's INFO lines (device summary, product tips, checkpoint notes) drown the metrics."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    # On any machine with SLURM's client installed; sae_lab's jobs do not run under srun.
    warnings.filterwarnings("ignore", message=".*The `srun` command is available.*")
    # Learners without gradients (DB-KSVD) have no optimizer on purpose.
    warnings.filterwarnings("ignore", message=".*returned `None`, this fit will run with no optimizer.*")


def check_oracle_decoder(sae: MemberSAE, subject: SubjectModel, resample_pool: str) -> None:
    """sae.oracle_decoder's preconditions, each a one-sentence ValueError naming the key."""
    if not hasattr(subject, "ground_truth"):
        raise ValueError(f"sae.oracle_decoder needs a subject with a known dictionary (model=synthetic); "
                         f"model={subject.name} has none.")
    if not sae.trains_by_gradient:
        raise ValueError(f"sae.oracle_decoder does not apply to sae={sae.architecture}, which learns its dictionary "
                         f"itself; use it with an SAE trained by gradient.")
    if sae.tied:
        raise ValueError("sae.oracle_decoder needs sae.tied=false: the encoder is trained alone against the fixed "
                         "true decoder.")
    n_true = len(subject.ground_truth().dictionary)
    if sae.d_sae != n_true:
        raise ValueError(f"sae.oracle_decoder needs d_sae equal to the subject's {n_true} true atoms, "
                         f"got d_sae={sae.d_sae}.")
    if resample_pool != "none":
        raise ValueError(f"resample.pool={resample_pool} would overwrite the oracle decoder's rows; set "
                         f"resample.pool=none with sae.oracle_decoder=true.")


def build_sae(cfg: DictConfig, subject: SubjectModel) -> tuple[MemberSAE, type, Any]:
    """The configured architecture's members and its config; every bad option one ConfigError sentence,
    before the activation cache is built (a bad option must not cost a cache build)."""
    try:
        sae_class, sae_cfg = architecture_config(OmegaConf.to_container(cfg.sae))
        sae = sae_class(subject.d_model, cfg.d_sae, member_seeds(cfg.seed, cfg.ensemble), k=cfg.k, cfg=sae_cfg)
        if not sae.trains_by_gradient and cfg.consistency.weight > 0:
            raise ValueError(f"consistency.weight must be 0 for sae={sae.architecture}, which learns without a "
                             f"loss to add it to (got {cfg.consistency.weight}).")
        if getattr(sae_cfg, "known_fraction", 0) and not hasattr(subject, "ground_truth"):
            raise ValueError(f"sae.known_fraction needs a subject with a known dictionary (model=synthetic); "
                             f"model={subject.name} has none.")
        if sae_cfg.oracle_decoder:
            check_oracle_decoder(sae, subject, cfg.resample.pool)
    except ValueError as err:  # the architectures' messages are one sentence naming the key
        raise ConfigError(str(err)) from None
    return sae, sae_class, sae_cfg


def build_eval_callback(cfg: DictConfig, run: RunDir, subject: SubjectModel, hook: str, truth: Any,
                        in_sweep: bool) -> EvalCallback:
    """Per-eval-epoch metrics, snapshots, cross-seed agreement and (where the subject has a network) patched CE."""
    agreement = CrossSeedAgreement(run, condition_of(cfg), hungarian=cfg.agreement_hungarian, siblings=in_sweep)
    behaviour = None
    no_behaviour = getattr(subject, "no_behaviour", None)  # a subject without a network says why
    if cfg.behaviour.enabled and no_behaviour:
        print(f"Behaviour (patched CE) is skipped: {no_behaviour}.")
    elif cfg.behaviour.enabled:
        held_out = subject.eval_dataset()[:cfg.behaviour.max_sequences]
        behaviour = PatchedCE(subject, hook, held_out, batch_size=cfg.behaviour.batch_size)
    return EvalCallback(run, eval_epochs(cfg.budget), agreement=agreement, behaviour=behaviour,
                        behaviour_epochs=behaviour_epochs(cfg), behaviour_resamples=cfg.behaviour.n_resamples,
                        truth=truth)


def build_trainer(cfg: DictConfig, run: RunDir, device: str, loggers: list, callbacks: list[L.Callback]) -> L.Trainer:
    return L.Trainer(
        max_epochs=cfg.budget.epochs,
        accelerator=cfg.trainer.accelerator or ("gpu" if device.startswith("cuda") else "cpu"),
        devices=1,
        precision=cfg.trainer.precision,
        deterministic=cfg.trainer.deterministic,
        logger=loggers,
        callbacks=callbacks,
        # sae_lab writes its own checkpoint (LastCheckpoint) and has no validation loop.
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=cfg.progress,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        log_every_n_steps=cfg.trainer.log_every_n_steps,
        default_root_dir=str(run.root),
    )


def train(cfg: DictConfig | dict, run_dir: str | Path, callbacks: list[L.Callback] | None = None,
          in_sweep: bool = False) -> dict[int, dict]:
    """Train one run (all ensemble members) into `run_dir`; returns the last eval row per seed.

    `cfg` is a composed config (e.g. `hydra.compose("train", overrides=[...])`); extra Lightning
    `callbacks` run after sae_lab's own. `in_sweep`: the run dir's siblings are runs of the same
    sweep, so cross-seed agreement also compares against their snapshots."""
    cfg = validate(cfg)
    quiet_lightning()
    run = RunDir(Path(run_dir))
    device = device_available(cfg.device)
    adopt_recorded_d_sae(run, cfg)  # d_sae_over_erank: a resumed run keeps the d_sae it resolved
    check_same_experiment(run, cfg)  # before anything is written into a dir that holds another run
    done = finished_rows(run, cfg)
    if done is not None:
        print(f"{run.root} already finished its {cfg.budget.epochs} epochs; nothing to train. Its final metrics:")
        return done
    if cfg.d_sae_over_erank is None:  # else written once d_sae is known (below)
        atomic_write_text(run.config, OmegaConf.to_yaml(cfg, resolve=True))  # the values used, not ${...}

    subject = build_subject(cfg.model, device=device)
    hook = subject.hook_name(cfg.layer)
    sae, sae_class, sae_cfg = build_sae(cfg, subject)
    budget = int(cfg.memory_budget_gb * 2**30)
    try:  # token data problems (too few tokens, an unloadable data set) are one sentence each
        train_acts, eval_acts = cached_activations(subject, hook, Path(cfg.cache_dir), dtype=cfg.cache_dtype,
                                                   memory_budget=budget)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if resolve_d_sae(cfg, train_acts) is not None:  # the SAE above only checked the options
        atomic_write_text(run.config, OmegaConf.to_yaml(cfg, resolve=True))  # the values used, not ${...}
        sae = sae_class(subject.d_model, cfg.d_sae, member_seeds(cfg.seed, cfg.ensemble), k=cfg.k, cfg=sae_cfg)
    loggers = build_loggers(cfg, run)
    data = ActivationDataModule(train_acts, eval_acts, sae.data_batch_size(cfg.batch_size, len(train_acts)),
                                cfg.data_seed, device=device, memory_budget=budget)
    truth = getattr(subject, "ground_truth", lambda: None)()  # the true dictionary and latents, if known
    if sae.cfg.oracle_decoder:
        sae.fix_decoder(truth.dictionary)
    if getattr(sae.cfg, "known_fraction", 0):
        sae.start_from_truth(truth.dictionary)
    module = SAEModule(sae, lr=cfg.lr, consistency_weight=cfg.consistency.weight,
                       consistency_start=cfg.consistency.start, consistency_end=cfg.consistency.end,
                       nan_check_every=cfg.trainer.nan_check_every, log_every=cfg.trainer.loss_log_every)
    evaluation = build_eval_callback(cfg, run, subject, hook, truth, in_sweep)
    preemption = PreemptionCheckpoint(run)
    # The resampler runs before the evaluation, so an eval epoch shows the state after an event.
    resampler = DeadFeatureResampler(run, cfg.resample.every_epochs, cfg.resample.pool, cfg.resample.pool_size,
                                     cfg.data_seed, cfg.resample.stop_after_epoch)
    trainer = build_trainer(cfg, run, device, loggers, [resampler, evaluation,
                                                        LastCheckpoint(run, cfg.budget.checkpoint_every), preemption,
                                                        *(callbacks or [])])
    resume = str(run.last_checkpoint) if run.last_checkpoint.is_file() else None
    if resume:
        print(f"Resuming from {resume}.")
    try:
        trainer.fit(module, datamodule=data, ckpt_path=resume)
    except SystemExit:
        # Lightning turns Ctrl-C into exit(1); submitit's requeue after a preemption checkpoint exits too.
        if trainer.interrupted and preemption.stopped_by is None:  # Lightning's exit(1) after Ctrl-C
            raise RunInterrupted(run, trainer.current_epoch) from None
        raise
    finally:
        finish_loggers(loggers)
    export_members(run, sae, subject.name, hook)
    return evaluation.last
