"""Measurements of the ``emofm-ctr`` study: every model trained and tested on the synthetic task.

Protocol (the same for every model, see `EMOFMCTRConfig`): for each repetition ``i`` a new task
(``task.seed = seed + i``) and independent draws of train / validation / test rows; each model
is built with `perceptrons.registry.create_model` and trained by the library's one CTR
protocol, `perceptrons.ctr.pipeline.fit_ctr_model` (`perceptrons.train.fit` through
`perceptrons.ctr.models.CTRStep`; Adam, one learning rate and L2 penalty for all), evaluated on
the validation rows every ``eval_every`` steps (stopping early only when ``patience`` is set);
the weights of the best validation AUC are restored (`perceptrons.train.RestoreBest`) before
testing. Test metrics hide the row
types from the models (EMOFM predicts with its type model's soft mixture); per-type AUCs group
the test rows by their true type.

Oracles on the test rows: ``oracle`` = AUC of the Bayes predictor with types hidden
(``probability_hidden_type``, the best any model here can do), ``oracle_type_known`` =
``probability``, ``first_order_oracle`` = ``first_order_probability``.

Every (repetition, model) pair is one seeded `Job`; `run_job` is a top-level function so that
``workers > 1`` can run the jobs in spawned processes with the same result as in this one.

Runs in parts (``job_dir``): with ``job_dir`` set, every finished job writes a small JSON
record, `job_record_path` ``<job_dir>/<settings key>/seed<s>-<task>-<model>.json``, and a later
run reads the records it finds instead of training those jobs again. The settings key
(`job_key`) hashes every configuration field that can change a job's result (`job_settings`:
the task, row counts, sizes, protocol, optimiser, threads, device) and leaves out the ones that
only choose *which* jobs run (``seed``, ``num_seeds``, the model lists, ``workers``,
``job_dir``) or judge the result (the claim thresholds); records are named by the absolute seed
``seed + i``, so ``--set seed=1 --set num_seeds=1`` trains repetition 1 of a ``seed=0,
num_seeds=3`` run. A run split by seed (or by model list) and then repeated with every seed
merges the parts, and a killed run resumes where it stopped (docs/ctr.md gives the commands).
``benchmarks/ctr_protocol.py`` reuses `repetition_data`, `build_model`, `evaluate_model` and
`oracle_metrics`, and calls `fit_ctr_model` as `train_model` does, to probe the protocol one
model at a time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from perceptrons.ctr import SyntheticCTRData, SyntheticCTRTask
from perceptrons.ctr.features import CTRFeatures
from perceptrons.ctr.metrics import auc, ctr_metrics
from perceptrons.ctr.pipeline import fit_ctr_model
from perceptrons.io import load_json, save_json
from perceptrons.registry import create_model
from perceptrons.studies.base import Table
from perceptrons.studies.common import format_mean_std, predict
from perceptrons.studies.emofm_ctr.config import SWITCHES, EMOFMCTRConfig

__all__ = [
    "ORACLES",
    "PREDICT_BATCH",
    "Comparison",
    "FitSummary",
    "Job",
    "ModelRun",
    "OracleMetrics",
    "TaskRuns",
    "TestMetrics",
    "build_model",
    "compare_models",
    "evaluate_model",
    "job_key",
    "job_record_path",
    "job_settings",
    "load_job_record",
    "oracle_metrics",
    "reliability_bins",
    "repetition_data",
    "repetition_task",
    "run_job",
    "run_jobs",
    "save_job_record",
    "test_rows",
    "train_model",
]

PREDICT_BATCH = 16_384
"""Rows per forward pass when predicting validation and test rows."""
ORACLES = (
    ("oracle", "oracle (types hidden)"),
    ("oracle_type_known", "oracle (type known)"),
    ("first_order_oracle", "first-order oracle"),
)
"""The three oracles: `OracleMetrics` AUC field and label (tables, figures)."""


@dataclass(frozen=True)
class Job:
    """One seeded training job.

    Attributes:
        repetition: Repetition ``i`` (task seed ``seed + i``).
        model: A registered model name, or an ablation name of `SWITCHES` (EMOFM with that
            switch off).
        tie: Train on the interactions-off control task instead of the planted one.
        family: Interaction family of the task (one of ``extra_families``); "" for
            ``task.interaction``.
    """

    repetition: int
    model: str
    tie: bool
    family: str = ""


@dataclass(frozen=True)
class FitSummary:
    """How one model's training went (`train_model`).

    Attributes:
        seconds: Wall time of `fit`.
        steps: Optimiser steps taken.
        epochs: Epochs trained (fractional when stopped early).
        best_step: Optimiser step of the restored best-validation checkpoint.
        val_auc: Its validation AUC.
    """

    seconds: float
    steps: int
    epochs: float
    best_step: int
    val_auc: float


@dataclass(frozen=True)
class TestMetrics:
    """A trained model's metrics on the test rows, types hidden (`evaluate_model`).

    Attributes:
        auc: Pooled test AUC.
        logloss: Pooled log loss.
        pcoc: Predicted over observed clicks (ideal 1).
        type_auc: True row type -> AUC of the rows of that type.
        reliability: ``(mean predicted, observed click rate)`` per decile of the prediction
            (`reliability_bins`; the calibration figure).
        member_auc: EMOFM only: AUC of its two ensemble members (HM, WM); else ``None``.
        type_accuracy: EMOFM only: accuracy of its auxiliary type model; else ``None``.
    """

    auc: float
    logloss: float
    pcoc: float
    type_auc: dict[int, float]
    reliability: tuple[tuple[float, ...], tuple[float, ...]]
    member_auc: tuple[float, ...] | None = None
    type_accuracy: float | None = None


@dataclass(frozen=True)
class ModelRun:
    """One job's result.

    Attributes:
        job: What was trained.
        fit: Its training summary.
        test: Its test metrics.
    """

    job: Job
    fit: FitSummary
    test: TestMetrics


@dataclass(frozen=True)
class OracleMetrics:
    """AUC and log loss of the oracle probabilities on one repetition's test rows.

    Attributes:
        oracle: AUC of ``probability_hidden_type`` (types hidden, the reference of every gap).
        oracle_logloss: Its log loss.
        oracle_type_known: AUC of ``probability`` (the true type known).
        oracle_type_known_logloss: Its log loss.
        first_order_oracle: AUC of ``first_order_probability``.
        first_order_oracle_logloss: Its log loss.
    """

    oracle: float
    oracle_logloss: float
    oracle_type_known: float
    oracle_type_known_logloss: float
    first_order_oracle: float
    first_order_oracle_logloss: float


@dataclass(frozen=True)
class TaskRuns:
    """Every model trained on one task variant, over the repetitions.

    Attributes:
        runs: Model (or ablation) name -> its runs, one per repetition in order.
        oracles: The oracles of each repetition's test rows.
    """

    runs: dict[str, list[ModelRun]]
    oracles: list[OracleMetrics]

    def values(self, name: str, metric: str) -> list[float]:
        """Test metric ``metric`` (a `TestMetrics` field) of model ``name``, per repetition."""
        return [getattr(r.test, metric) for r in self.runs[name]]

    def mean_auc(self, name: str) -> float:
        """Mean test AUC of model ``name`` over the repetitions."""
        return float(np.mean(self.values(name, "auc")))

    def oracle(self, key: str) -> list[float]:
        """Oracle metric ``key`` (an `OracleMetrics` field) per repetition."""
        return [getattr(o, key) for o in self.oracles]

    def oracle_lists(self) -> dict[str, list[float]]:
        """Every `OracleMetrics` field -> its values per repetition."""
        return {f.name: self.oracle(f.name) for f in dataclasses.fields(OracleMetrics)}


@dataclass(frozen=True)
class Comparison:
    """The study's measurements: the planted task and the interactions-off control.

    Attributes:
        planted: Main models and EMOFM ablations on the task with planted interactions.
        control: ``tie_models`` on the same tasks with the interactions switched off.
        majority_type_fraction: Per repetition, the fraction of test rows of the most common
            type (what a type model must beat).
        calibration: Main model -> its test metrics on repetition 0 (reliability curve and
            PCOC of the calibration figure).
        models_table: Test metrics of the main models and the three oracles.
        ablations_table: EMOFM, its ablations and the DNN.
        control_table: The control models and the oracle (= first-order) of the control.
        families: Each of ``extra_families`` -> ``family_models`` trained on that family.
        families_table: Their test metrics and oracles, one block per family.
    """

    planted: TaskRuns
    control: TaskRuns
    majority_type_fraction: list[float]
    calibration: dict[str, TestMetrics]
    models_table: Table
    ablations_table: Table
    control_table: Table
    families: dict[str, TaskRuns] = dataclasses.field(default_factory=dict)
    families_table: Table | None = None


# -------------------------------------------------------------------- data and models
def repetition_task(
    config: EMOFMCTRConfig, i: int, tie: bool, family: str = ""
) -> SyntheticCTRTask:
    """Repetition ``i``'s task (``task.seed = seed + i``); with ``tie`` the same task seed with
    the interactions switched off (the control of claim no_interaction_tie); ``family``
    replaces ``task.interaction`` (one of ``extra_families``)."""
    task = config.task.replace(seed=config.seed + i, interactions=not tie)
    return SyntheticCTRTask(task.replace(interaction=family) if family else task)


def test_rows(config: EMOFMCTRConfig, task: SyntheticCTRTask, i: int) -> SyntheticCTRData:
    """The ``num_test`` test rows of repetition ``i`` (row seed ``3 (seed + i) + 2``)."""
    return task.sample(config.num_test, seed=3 * (config.seed + i) + 2)


# (config, repetition, tie) -> (train, validation, test rows) of the last repetitions drawn in
# this process (a worker usually trains several models of one repetition in a row)
_DATA: dict[tuple[EMOFMCTRConfig, int, bool, str], tuple[Any, Any, SyntheticCTRData]] = {}


def repetition_data(
    config: EMOFMCTRConfig, i: int, tie: bool, family: str = ""
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], SyntheticCTRData]:
    """Train / validation tensors and test rows of repetition ``i`` (independent row draws,
    seeds ``3 (seed + i)``, ``+ 1``, ``+ 2``); the last two repetitions are cached."""
    key = (config, i, tie, family)
    if key not in _DATA:
        while len(_DATA) >= 2:
            del _DATA[next(iter(_DATA))]
        task, seed = repetition_task(config, i, tie, family), config.seed + i
        train = task.sample(config.num_train, seed=3 * seed).to_batch().to_tensors()
        val = task.sample(config.num_val, seed=3 * seed + 1).to_batch().to_tensors()
        _DATA[key] = (train, val, test_rows(config, task, i))
    return _DATA[key]


def build_model(
    name: str, config: EMOFMCTRConfig, features: CTRFeatures, seed: int, **extra: Any
) -> torch.nn.Module:
    """Registered CTR model ``name`` with the study's sizes (``extra`` overrides fields)."""
    kwargs: dict[str, Any] = {"features": features, "embed_dim": config.embed_dim}
    if name not in ("lr", "fm"):
        kwargs.update(hidden_features=config.hidden_features, dropout=config.dropout)
    if name == "autoint":
        kwargs.update(num_heads=2 if config.embed_dim % 2 == 0 else 1)
    if name == "emofm":
        kwargs.update(
            field_dim=config.field_dim,
            type_dim=config.type_dim,
            type_hidden_features=config.type_hidden_features,
            attention_dropout=config.dropout,
        )
    return create_model(name, seed=seed, **kwargs, **extra)


def _outputs(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Model outputs on all rows as CPU tensors ``{"logits", ...}`` (EMOFM: every entry)."""
    out = predict(model, tensors, batch_size=PREDICT_BATCH)
    return out if isinstance(out, dict) else {"logits": out}


# -------------------------------------------------------------------- train and test
def train_model(
    model: torch.nn.Module,
    config: EMOFMCTRConfig,
    train: dict[str, torch.Tensor],
    val: dict[str, torch.Tensor],
    seed: int,
) -> FitSummary:
    """Fit ``model`` by the study's protocol, keeping the best validation-AUC weights.

    The protocol is the library's one, `perceptrons.ctr.pipeline.fit_ctr_model` (what
    ``perceptrons ctr train`` runs too): validation AUC every ``config.eval_every`` steps;
    with ``config.patience`` set, early stopping after that many evaluations without
    improvement; the best weights restored (`RestoreBest`) and the model left in eval mode.
    """
    fitted = fit_ctr_model(
        model,
        train,
        val,
        config.fit.replace(seed=seed, device=config.device),
        batch_size=config.batch_size,
        eval_every=config.eval_every,
        patience=config.patience,
        predict_batch=PREDICT_BATCH,
    )
    if fitted.best_step is None or fitted.best_auc is None:  # AUC raises on non-finite logits
        raise FloatingPointError(f"{type(model).__name__}: no validation AUC to keep")
    return FitSummary(
        seconds=fitted.seconds,
        steps=fitted.steps,
        epochs=fitted.epochs,
        best_step=fitted.best_step,
        val_auc=fitted.best_auc,
    )


def reliability_bins(
    labels: np.ndarray, probabilities: np.ndarray, bins: int = 10
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean predicted probability and observed click rate in ``bins`` equal-count bins of the
    prediction (sorted by it; `numpy.array_split` sizes)."""
    groups = np.array_split(np.argsort(probabilities, kind="stable"), bins)
    return (
        tuple(float(probabilities[g].mean()) for g in groups),
        tuple(float(labels[g].mean()) for g in groups),
    )


def evaluate_model(model: torch.nn.Module, test: dict[str, torch.Tensor]) -> TestMetrics:
    """Test metrics of a trained model with the row types hidden from it."""
    out = _outputs(model, test)
    y, types = test["labels"], test["types"]
    p = torch.sigmoid(out["logits"])
    metrics = ctr_metrics(y, p, types)
    member_auc = type_accuracy = None
    if "member_logits" in out:
        member_auc = tuple(auc(y, out["member_logits"][:, j]) for j in range(2))
    if "type_logits" in out:
        type_accuracy = float((out["type_logits"].argmax(-1) == types).float().mean())
    return TestMetrics(
        auc=metrics["auc"],
        logloss=metrics["logloss"],
        pcoc=metrics["pcoc"],
        type_auc={
            int(k.removeprefix("auc_type_")): v
            for k, v in metrics.items()
            if k.startswith("auc_type_")
        },
        reliability=reliability_bins(y.numpy().astype(float), p.numpy().astype(float)),
        member_auc=member_auc,
        type_accuracy=type_accuracy,
    )


def oracle_metrics(data: SyntheticCTRData) -> OracleMetrics:
    """AUC and log loss of the three oracle probabilities of ``data``."""
    y = torch.from_numpy(data.labels)
    out: dict[str, float] = {}
    for key, p in (
        ("oracle", data.probability_hidden_type),
        ("oracle_type_known", data.probability),
        ("first_order_oracle", data.first_order_probability),
    ):
        m = ctr_metrics(y, torch.from_numpy(p))
        out[key] = m["auc"]
        out[f"{key}_logloss"] = m["logloss"]
    return OracleMetrics(**out)


# -------------------------------------------------------------------- job records (runs in parts)
JOB_SELECTION_FIELDS = (
    "seed",
    "num_seeds",
    "models",
    "ablations",
    "tie_models",
    "extra_families",
    "family_models",
    "workers",
    "job_dir",
    "lr_tolerance",
    "mixer_margin",
    "mixer_gap_fraction",
    "tie_tolerance",
    "pcoc_tolerance",
)
"""`EMOFMCTRConfig` fields that choose which jobs run or judge their results, and so are left
out of `job_settings`: changing them never changes a job's record."""


def job_settings(config: EMOFMCTRConfig) -> dict[str, Any]:
    """The configuration fields that can change a job's result (all but
    `JOB_SELECTION_FIELDS`), as plain JSON values."""
    return {k: v for k, v in config.to_dict().items() if k not in JOB_SELECTION_FIELDS}


def job_key(config: EMOFMCTRConfig) -> str:
    """16 hex digits of the SHA-256 of `job_settings` (sorted-key JSON): the folder of the
    job records of runs whose jobs give the same results."""
    text = json.dumps(job_settings(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def job_record_path(config: EMOFMCTRConfig, job: Job) -> Path:
    """``<job_dir>/<job_key>/seed<seed + repetition>-<task>-<model>.json``; task is
    ``planted``, ``control`` (the interactions-off task) or the interaction family."""
    if not config.job_dir:
        raise ValueError("job_dir: not set, so jobs keep no records")
    task = job.family or ("control" if job.tie else "planted")
    name = f"seed{config.seed + job.repetition}-{task}-{job.model}.json"
    return Path(config.job_dir) / job_key(config) / name


def save_job_record(config: EMOFMCTRConfig, run: ModelRun) -> Path:
    """Write ``run``'s record (atomically; the folder's ``settings.json`` the first time)."""
    path = job_record_path(config, run.job)
    settings = path.parent / "settings.json"
    if not settings.exists():
        save_json(settings, job_settings(config))
    test = dataclasses.asdict(run.test)
    test["type_auc"] = {str(k): v for k, v in run.test.type_auc.items()}
    save_json(
        path,
        {
            "seed": config.seed + run.job.repetition,
            "model": run.job.model,
            "tie": run.job.tie,
            "family": run.job.family,
            "fit": dataclasses.asdict(run.fit),
            "test": test,
        },
    )
    return path


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def load_job_record(config: EMOFMCTRConfig, job: Job) -> ModelRun | None:
    """The record of ``job`` under ``config.job_dir``, or ``None`` when there is none (or
    ``job_dir`` is unset).

    Raises:
        ValueError: The file is there but is not a record of this job (names the file).
    """
    if not config.job_dir:
        return None
    path = job_record_path(config, job)
    if not path.exists():
        return None
    try:
        doc = load_json(path)
        expected = (config.seed + job.repetition, job.model, job.tie, job.family)
        found = (doc["seed"], doc["model"], doc["tie"], doc["family"])
        if found != expected:
            raise ValueError(f"holds the job {found}, not {expected}")
        fit, test = doc["fit"], doc["test"]
        summary = FitSummary(
            seconds=float(fit["seconds"]),
            steps=int(fit["steps"]),
            epochs=float(fit["epochs"]),
            best_step=int(fit["best_step"]),
            val_auc=float(fit["val_auc"]),
        )
        metrics = TestMetrics(
            auc=_number(test["auc"]),
            logloss=_number(test["logloss"]),
            pcoc=_number(test["pcoc"]),
            type_auc={int(k): _number(v) for k, v in test["type_auc"].items()},
            reliability=(
                tuple(_number(v) for v in test["reliability"][0]),
                tuple(_number(v) for v in test["reliability"][1]),
            ),
            member_auc=None
            if test["member_auc"] is None
            else tuple(_number(v) for v in test["member_auc"]),
            type_accuracy=None if test["type_accuracy"] is None else float(test["type_accuracy"]),
        )
    except (KeyError, TypeError, IndexError, ValueError) as error:
        raise ValueError(f"{path}: not a job record of this study ({error})") from error
    return ModelRun(job, summary, metrics)


def run_job(config: EMOFMCTRConfig, job: Job) -> ModelRun:
    """Train and test one model on repetition ``job.repetition`` (an ablation name builds EMOFM
    with that switch off); the same result in any process, since every draw is seeded. With
    ``config.job_dir`` set, the result is also written as the job's record."""
    seed = config.seed + job.repetition
    train, val, test_data = repetition_data(config, job.repetition, job.tie, job.family)
    features = test_data.feature_spec
    if job.model in SWITCHES:
        model = build_model("emofm", config, features, seed, **{SWITCHES[job.model]: False})
    else:
        model = build_model(job.model, config, features, seed)
    fitted = train_model(model, config, train, val, seed)
    run = ModelRun(job, fitted, evaluate_model(model, test_data.to_batch().to_tensors()))
    if config.job_dir:
        save_job_record(config, run)
    return run


def _worker_init(num_threads: int) -> None:
    torch.set_num_threads(num_threads)


def _report(index: int, total: int, run: ModelRun, source: str) -> None:
    task = run.job.family or ("control" if run.job.tie else "planted")
    print(
        f"emofm-ctr: job {index}/{total} repetition {run.job.repetition} {task} "
        f"{run.job.model}: test AUC {run.test.auc:.4f}, {run.fit.seconds:.0f} s ({source})",
        file=sys.stderr,
        flush=True,
    )


def run_jobs(config: EMOFMCTRConfig, jobs: list[Job]) -> list[ModelRun]:
    """`run_job` of every job, in order; in ``config.workers`` spawned processes (each with
    ``config.num_threads`` torch threads) when that is above 1. Jobs with a record under
    ``config.job_dir`` are read, not trained. A line per finished job goes to stderr."""
    results: list[ModelRun | None] = [load_job_record(config, job) for job in jobs]
    todo = [i for i, run in enumerate(results) if run is None]
    total, done = len(jobs), 0
    for run in results:
        if run is not None:
            done += 1
            _report(done, total, run, f"record in {config.job_dir}")
    if config.workers == 1 or len(todo) <= 1:
        for i in todo:
            results[i] = run = run_job(config, jobs[i])
            done += 1
            _report(done, total, run, "trained")
        return [r for r in results if r is not None]
    context = multiprocessing.get_context("spawn")  # CUDA cannot be used in forked children
    with ProcessPoolExecutor(
        config.workers, mp_context=context, initializer=_worker_init, initargs=(config.num_threads,)
    ) as pool:
        futures = {i: pool.submit(run_job, config, jobs[i]) for i in todo}
        for i, future in futures.items():
            results[i] = run = future.result()
            done += 1
            _report(done, total, run, "trained")
    return [r for r in results if r is not None]


# -------------------------------------------------------------------- the experiment
def _table(
    config: EMOFMCTRConfig, runs: TaskRuns, names: list[str], oracles: list[tuple[str, str]]
) -> Table:
    """Test metrics of ``names`` (mean ± std over repetitions), then rows of ``oracles``
    (``(OracleMetrics field, label)``)."""
    num_types = config.task.num_types
    columns = ["model", "AUC", "logloss", "PCOC"]
    columns += [f"AUC type {t}" for t in range(num_types)]
    columns += ["epochs", "fit seconds"]
    table = Table(columns)
    for name in names:
        rs = runs.runs[name]
        cells: list[Any] = [name]
        cells += [format_mean_std(runs.values(name, k)) for k in ("auc", "logloss", "pcoc")]
        cells += [
            format_mean_std([r.test.type_auc.get(t, float("nan")) for r in rs])
            for t in range(num_types)
        ]
        cells += [round(float(np.mean([r.fit.epochs for r in rs])), 2)]
        cells += [round(float(np.mean([r.fit.seconds for r in rs])), 1)]
        table.rows.append(cells)
    for key, label in oracles:
        table.rows.append(
            [label, format_mean_std(runs.oracle(key))]
            + [format_mean_std(runs.oracle(f"{key}_logloss")), ""]
            + [""] * num_types
            + ["", ""]
        )
    return table


def compare_models(config: EMOFMCTRConfig) -> Comparison:
    """Train and test every model, ablation and control model on every repetition.

    All jobs (``models`` and ``ablations`` on the planted task, ``tie_models`` on the
    interactions-off control) go to one `run_jobs` call, so that ``workers`` processes share
    them.
    """
    models, ablations, tie_models = list(config.models), list(config.ablations), config.tie_models
    reps = range(config.num_seeds)
    jobs = [Job(i, n, False) for i in reps for n in [*models, *ablations]]
    jobs += [Job(i, n, True) for i in reps for n in tie_models]
    families = config.extra_families
    jobs += [Job(i, n, False, fam) for fam in families for i in reps for n in config.family_models]
    results = run_jobs(config, jobs)
    _DATA.clear()
    runs: dict[str, list[ModelRun]] = {n: [] for n in [*models, *ablations]}
    tie_runs: dict[str, list[ModelRun]] = {n: [] for n in tie_models}
    family_runs: dict[str, dict[str, list[ModelRun]]] = {
        fam: {n: [] for n in config.family_models} for fam in families
    }
    for run in results:
        if run.job.family:
            family_runs[run.job.family][run.job.model].append(run)
        else:
            (tie_runs if run.job.tie else runs)[run.job.model].append(run)
    calibration = {
        r.job.model: r.test
        for r in results
        if r.job.repetition == 0 and not r.job.tie and not r.job.family and r.job.model in models
    }
    family_oracles: dict[str, list[OracleMetrics]] = {fam: [] for fam in families}

    oracles: list[OracleMetrics] = []
    tie_oracles: list[OracleMetrics] = []
    majority: list[float] = []
    for i in reps:
        rows = test_rows(config, repetition_task(config, i, tie=False), i)
        oracles.append(oracle_metrics(rows))
        counts = np.bincount(rows.types, minlength=config.task.num_types)
        majority.append(float(counts.max() / counts.sum()))
        tie_rows = test_rows(config, repetition_task(config, i, tie=True), i)
        tie_oracles.append(oracle_metrics(tie_rows))
        for fam in families:
            family_rows = test_rows(config, repetition_task(config, i, False, fam), i)
            family_oracles[fam].append(oracle_metrics(family_rows))
    planted, control = TaskRuns(runs, oracles), TaskRuns(tie_runs, tie_oracles)
    by_family = {fam: TaskRuns(family_runs[fam], family_oracles[fam]) for fam in families}
    families_table = None
    for fam, fam_runs in by_family.items():
        table = _table(config, fam_runs, list(config.family_models), list(ORACLES))
        table.columns.insert(0, "family")
        for row in table.rows:
            row.insert(0, fam)
        if families_table is None:
            families_table = table
        else:
            families_table.rows.extend(table.rows)
    return Comparison(
        planted=planted,
        control=control,
        majority_type_fraction=majority,
        calibration=calibration,
        models_table=_table(config, planted, models, list(ORACLES)),
        ablations_table=_table(config, planted, ["emofm", *ablations, "dnn"], []),
        control_table=_table(
            config, control, list(tie_models), [("oracle", "oracle (= first-order)")]
        ),
        families=by_family,
        families_table=families_table,
    )
