"""``emofm-ctr``: EMOFM (our reconstruction) and the CTR baselines against a known oracle.

Paper: Yujian Li & Kai Wu, *EMOFM: Ensemble MLP mOdel with Feature-based Mixers for
Click-Through Rate Prediction*, CTI 2023 competition report, arXiv:2310.04482 (project brief
``emofm-ctr.md``). The paper body is not available, so there is no paper number to match:
the study checks the brief's §7 targets on the synthetic generator of §6.2, whose oracle click
probability is known per row.

Protocol (the same for every model, see `EMOFMCTRConfig`): for each repetition ``i`` a new task
(``task.seed = seed + i``) and independent draws of train / validation / test rows; each model
is built with `perceptrons.registry.create_model`, trained with `perceptrons.train.fit` through
`perceptrons.models.ctr.CTRStep` (Adam, one learning rate and L2 penalty for all), evaluated
on the validation rows every ``eval_every`` steps (stopping early only when ``patience`` is
set); the weights of the best validation AUC are restored before testing. Test metrics hide the
row types from the models (EMOFM predicts with its type model's soft mixture); per-type AUCs
group the test rows by their true type.

Oracles on the test rows: ``oracle`` = AUC of the Bayes predictor with types hidden
(``probability_hidden_type``, the best any model here can do), ``oracle (type known)`` =
``probability``, ``first-order oracle`` = ``first_order_probability``.

Claims:
    lr_matches_first_order_oracle: |AUC(LR) - AUC(first-order oracle)| <= 0.01 (mean over seeds).
    mixer_beats_dnn: AUC(EMOFM) - AUC(DNN) >= min(0.005, 0.30 * (AUC(oracle) - AUC(DNN)))
        (mean over seeds): a 0.005 margin OR 30% of the DNN -> oracle gap closed; both numbers
        are in the metrics.
    no_interaction_tie: on the interactions-off task, max - min of the models' mean AUCs <= 0.002
        ("within ±0.002 AUC of each other"; the distance to the oracle is reported as well).
    type_model_informative: EMOFM's auxiliary type model accuracy on the test rows > the
        majority-type fraction (mean over seeds).
    ensemble_not_worse: AUC(EMOFM ensemble) - max(AUC(its members)) >= 0 (mean over seeds).
    pcoc_calibrated: max over the main models of |mean PCOC - 1| <= 0.05.
"""

from __future__ import annotations

import copy
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from perceptrons.data.ctr import SyntheticCTRData, SyntheticCTRTask
from perceptrons.data.loader import TensorLoader
from perceptrons.layers.ctr import CTRFeatures
from perceptrons.models.ctr import CTRStep
from perceptrons.models.ctr_metrics import auc, ctr_metrics
from perceptrons.registry import create_model
from perceptrons.studies.base import StudyResult, Table, register_study
from perceptrons.studies.emofm_ctr.config import FULL, QUICK, EMOFMCTRConfig
from perceptrons.train import EarlyStopping, Evaluator, fit

__all__ = ["run"]

PAPER = (
    "Li & Wu 2023, EMOFM: Ensemble MLP mOdel with Feature-based Mixers for Click-Through Rate "
    "Prediction, CTI 2023 competition report, arXiv:2310.04482 (architecture reconstructed)"
)
_SWITCH = {
    "no_field_mixer": "field_mixer",
    "no_type_mixer": "type_mixer",
    "no_type_model": "type_model",
    "no_ensemble": "ensemble",
}
_CHUNK = 16_384


def _model(name: str, config: EMOFMCTRConfig, features: CTRFeatures, seed: int, **extra: Any):
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
        )
    return create_model(name, seed=seed, **kwargs, **extra)


def _slice(tensors: dict[str, torch.Tensor], start: int, stop: int) -> dict[str, torch.Tensor]:
    return {k: v[start:stop] for k, v in tensors.items()}


def _predict(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Model outputs on all rows (chunked, on the model's device), as CPU tensors
    ``{"logits", ...}`` (EMOFM: every dict entry)."""
    n = tensors["labels"].shape[0]
    device = next(model.parameters()).device
    parts: list[dict[str, torch.Tensor]] = []
    with torch.no_grad():
        for start in range(0, n, _CHUNK):
            chunk = {k: v.to(device) for k, v in _slice(tensors, start, start + _CHUNK).items()}
            out = model(chunk)
            out = out if isinstance(out, dict) else {"logits": out}
            parts.append({k: v.cpu() for k, v in out.items()})
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def _train(
    model: torch.nn.Module,
    config: EMOFMCTRConfig,
    train: dict[str, torch.Tensor],
    val: dict[str, torch.Tensor],
    seed: int,
) -> dict[str, Any]:
    """Fit ``model`` with early stopping on validation AUC; restores the best weights."""
    loader = TensorLoader(train, config.batch_size, seed=seed)
    best: dict[str, Any] = {"auc": -1.0, "state": None, "step": 0}
    evaluations = [0]

    def validate(m: torch.nn.Module) -> dict[str, float]:
        logits = _predict(m, val)["logits"]
        value = auc(val["labels"], logits)
        evaluations[0] += 1
        if value > best["auc"]:
            best.update(auc=value, state=copy.deepcopy(m.state_dict()), step=evaluations[0])
        return {"auc": value}

    callbacks: list[Any] = [Evaluator(validate, every=config.eval_every, split="val")]
    if config.patience is not None:
        callbacks.append(EarlyStopping(metric="val/auc", mode="max", patience=config.patience))
    start = time.perf_counter()
    fit_config = config.fit.replace(seed=seed, device=config.device)
    fitted = fit(model, CTRStep(), loader, fit_config, callbacks)
    seconds = time.perf_counter() - start
    model.load_state_dict(best["state"])
    model.eval()
    return {
        "seconds": seconds,
        "steps": fitted.steps,
        "epochs": fitted.epochs,
        "best_step": best["step"] * config.eval_every,
        "val_auc": best["auc"],
    }


def _evaluate(model: torch.nn.Module, test: dict[str, torch.Tensor]) -> dict[str, Any]:
    out = _predict(model, test)
    y, types = test["labels"], test["types"]
    p = torch.sigmoid(out["logits"])
    metrics: dict[str, Any] = ctr_metrics(y, p, types)
    metrics["probabilities"] = p.numpy()
    if "member_logits" in out:
        metrics["member_auc"] = [auc(y, out["member_logits"][:, j]) for j in range(2)]
    if "type_logits" in out:
        predicted = out["type_logits"].argmax(-1)
        metrics["type_accuracy"] = float((predicted == types).float().mean())
    return metrics


def _oracles(data: SyntheticCTRData) -> dict[str, float]:
    y = data.labels
    out = {}
    for key, p in (
        ("oracle", data.probability_hidden_type),
        ("oracle_type_known", data.probability),
        ("first_order_oracle", data.first_order_probability),
    ):
        m = ctr_metrics(torch.from_numpy(y), torch.from_numpy(p))
        out[key] = m["auc"]
        out[f"{key}_logloss"] = m["logloss"]
    return out


def _task(config: EMOFMCTRConfig, i: int, tie: bool) -> SyntheticCTRTask:
    """Repetition ``i``'s task (``task.seed = seed + i``); with ``tie`` the same task seed with
    the interactions switched off (the control of claim no_interaction_tie)."""
    return SyntheticCTRTask(config.task.replace(seed=config.seed + i, interactions=not tie))


def _test_rows(config: EMOFMCTRConfig, task: SyntheticCTRTask, i: int) -> SyntheticCTRData:
    return task.sample(config.num_test, seed=3 * (config.seed + i) + 2)


# (config, repetition, tie) -> (train, validation, test rows) of the last repetitions trained in
# this process (a worker usually trains several models of one repetition in a row)
_DATA: dict[tuple[EMOFMCTRConfig, int, bool], tuple[Any, Any, SyntheticCTRData]] = {}


def _data(config: EMOFMCTRConfig, i: int, tie: bool):
    """Train / validation tensors and test rows of repetition ``i`` (independent row draws)."""
    key = (config, i, tie)
    if key not in _DATA:
        while len(_DATA) >= 2:
            del _DATA[next(iter(_DATA))]
        task, seed = _task(config, i, tie), config.seed + i
        train = task.sample(config.num_train, seed=3 * seed).to_batch().to_tensors()
        val = task.sample(config.num_val, seed=3 * seed + 1).to_batch().to_tensors()
        _DATA[key] = (train, val, _test_rows(config, task, i))
    return _DATA[key]


def _job(config: EMOFMCTRConfig, i: int, name: str, tie: bool) -> dict[str, Any]:
    """Train and test one model on repetition ``i`` (an ablation name builds EMOFM with that
    switch off); the same result in any process, since every draw is seeded."""
    seed = config.seed + i
    train, val, test_data = _data(config, i, tie)
    features = test_data.feature_spec
    if name in _SWITCH:
        model = _model("emofm", config, features, seed, **{_SWITCH[name]: False})
    else:
        model = _model(name, config, features, seed)
    info = _train(model, config, train, val, seed)
    info.update(_evaluate(model, test_data.to_batch().to_tensors()))
    return info


def _worker_init(num_threads: int) -> None:
    torch.set_num_threads(num_threads)


def _run_jobs(config: EMOFMCTRConfig, jobs: list[tuple[int, str, bool]]) -> list[dict[str, Any]]:
    """`_job` of every ``(repetition, model, tie)``, in order; in ``config.workers`` spawned
    processes (each with ``config.num_threads`` torch threads) when that is above 1."""
    if config.workers == 1:
        return [_job(config, *job) for job in jobs]
    context = multiprocessing.get_context("spawn")  # CUDA cannot be used in forked children
    with ProcessPoolExecutor(
        config.workers, mp_context=context, initializer=_worker_init, initargs=(config.num_threads,)
    ) as pool:
        futures = [pool.submit(_job, config, *job) for job in jobs]
        return [future.result() for future in futures]


def _mean_std(values: list[float]) -> tuple[float, float]:
    a = np.asarray(values, dtype=float)
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def _fmt(values: list[float], digits: int = 4) -> str:
    mean, std = _mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if len(values) > 1 else f"{mean:.{digits}f}"


def _reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Mean predicted vs observed click rate in equal-count bins of the prediction."""
    order = np.argsort(p)
    groups = np.array_split(order, bins)
    return np.array([p[g].mean() for g in groups]), np.array([y[g].mean() for g in groups])


def _plot_models(out_dir: Path, names: list[str], aucs: dict[str, list[float]], oracles) -> Path:
    fig = Figure(figsize=(7.5, 4), layout="constrained")
    ax = fig.subplots()
    means = [np.mean(aucs[n]) for n in names]
    stds = [np.std(aucs[n], ddof=1) if len(aucs[n]) > 1 else 0.0 for n in names]
    ax.bar(names, means, yerr=stds, capsize=4, color="C0", alpha=0.8)
    for key, style, label in (
        ("oracle", "-", "oracle (types hidden)"),
        ("oracle_type_known", ":", "oracle (type known)"),
        ("first_order_oracle", "--", "first-order oracle"),
    ):
        ax.axhline(np.mean(oracles[key]), color="k", ls=style, lw=1, label=label)
    low = min(min(means) - max(stds + [0.0]), np.mean(oracles["first_order_oracle"])) - 0.01
    high = max(np.mean(oracles["oracle_type_known"]), max(means)) + 0.01
    ax.set(ylim=(low, high), ylabel="test AUC (mean ± std over seeds)", title="AUC per model")
    ax.legend(fontsize=8, loc="lower right")
    path = out_dir / "auc_per_model.png"
    fig.savefig(path, dpi=110)
    return path


def _plot_ablations(out_dir: Path, aucs: dict[str, list[float]], oracle: float) -> Path:
    fig = Figure(figsize=(7, 3.8), layout="constrained")
    ax = fig.subplots()
    names = list(aucs)
    means = [np.mean(aucs[n]) for n in names]
    stds = [np.std(aucs[n], ddof=1) if len(aucs[n]) > 1 else 0.0 for n in names]
    colors = ["C2" if n == "emofm" else "C1" if n == "dnn" else "C0" for n in names]
    ax.barh(names, means, xerr=stds, capsize=4, color=colors, alpha=0.8)
    ax.axvline(oracle, color="k", lw=1, label="oracle (types hidden)")
    ax.set(
        xlim=(min(means) - 0.01, max(max(means), oracle) + 0.005),
        xlabel="test AUC",
        title="EMOFM ablations (one switch off)",
    )
    ax.legend(fontsize=8, loc="lower right")
    path = out_dir / "ablations.png"
    fig.savefig(path, dpi=110)
    return path


def _plot_calibration(out_dir: Path, y: np.ndarray, curves: dict[str, np.ndarray]) -> Path:
    fig = Figure(figsize=(5, 4.5), layout="constrained")
    ax = fig.subplots()
    top = 0.0
    for i, (name, p) in enumerate(curves.items()):
        mean_p, rate = _reliability(y, p)
        top = max(top, mean_p.max(), rate.max())
        ax.plot(
            mean_p, rate, "o-", ms=3, color=f"C{i}", label=f"{name} (PCOC {p.sum() / y.sum():.3f})"
        )
    ax.plot([0, top], [0, top], "k--", lw=1, label="perfect calibration")
    ax.set(
        xlabel="mean predicted click probability (decile)",
        ylabel="observed click rate",
        title="Calibration on the test rows (first seed)",
    )
    ax.legend(fontsize=7)
    path = out_dir / "calibration.png"
    fig.savefig(path, dpi=110)
    return path


@register_study(
    "emofm-ctr",
    config=EMOFMCTRConfig,
    presets={"quick": QUICK, "full": FULL},
    paper=PAPER,
    summary="EMOFM (reconstruction) vs CTR baselines on synthetic data with a known oracle",
)
def run(config: EMOFMCTRConfig, out_dir: Path) -> StudyResult:
    """EMOFM and the CTR baselines against the oracle of a synthetic planted-interaction task."""
    models = list(config.models)
    ablations = list(config.ablations)
    tie_models = list(config.tie_models)
    jobs = [(i, n, False) for i in range(config.num_seeds) for n in [*models, *ablations]]
    jobs += [(i, n, True) for i in range(config.num_seeds) for n in tie_models]
    infos = _run_jobs(config, jobs)
    _DATA.clear()
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in [*models, *ablations]}
    tie_runs: dict[str, list[dict[str, Any]]] = {n: [] for n in tie_models}
    calibration: dict[str, np.ndarray] = {}
    for (i, name, tie), info in zip(jobs, infos, strict=True):
        probabilities = info.pop("probabilities")
        if i == 0 and not tie and name in models:
            calibration[name] = probabilities
        (tie_runs if tie else runs)[name].append(info)

    oracles: dict[str, list[float]] = {}
    tie_oracles: dict[str, list[float]] = {}
    majority: list[float] = []
    calibration_y = np.zeros(0)
    for i in range(config.num_seeds):
        test_data = _test_rows(config, _task(config, i, tie=False), i)
        for key, value in _oracles(test_data).items():
            oracles.setdefault(key, []).append(value)
        counts = np.bincount(test_data.types, minlength=config.task.num_types)
        majority.append(float(counts.max() / counts.sum()))
        if i == 0:
            calibration_y = test_data.labels.astype(float)
        tie_test = _test_rows(config, _task(config, i, tie=True), i)
        for key, value in _oracles(tie_test).items():
            tie_oracles.setdefault(key, []).append(value)

    result = StudyResult()
    # ------------------------------------------------------------------ tables
    num_types = config.task.num_types
    columns = ["model", "AUC", "logloss", "PCOC"]
    columns += [f"AUC type {t}" for t in range(num_types)]
    columns += ["epochs", "fit seconds"]

    def row(name: str, rs: list[dict[str, Any]]) -> list[Any]:
        cells: list[Any] = [name]
        cells += [_fmt([r[k] for r in rs]) for k in ("auc", "logloss", "pcoc")]
        cells += [
            _fmt([r.get(f"auc_type_{t}", float("nan")) for r in rs]) for t in range(num_types)
        ]
        cells += [round(float(np.mean([r["epochs"] for r in rs])), 2)]
        cells += [round(float(np.mean([r["seconds"] for r in rs])), 1)]
        return cells

    models_table = Table(columns, [row(n, runs[n]) for n in models])
    for key, label in (
        ("oracle", "oracle (types hidden)"),
        ("oracle_type_known", "oracle (type known)"),
        ("first_order_oracle", "first-order oracle"),
    ):
        models_table.rows.append(
            [
                label,
                _fmt(oracles[key]),
                _fmt(oracles[f"{key}_logloss"]),
                "",
                *[""] * num_types,
                "",
                "",
            ]
        )
    result.tables["models"] = models_table
    result.tables["ablations"] = Table(
        columns, [row(n, runs[n]) for n in ["emofm", *ablations, "dnn"]]
    )
    tie_table = Table(columns, [row(n, tie_runs[n]) for n in tie_models])
    tie_table.rows.append(
        [
            "oracle (= first-order)",
            _fmt(tie_oracles["oracle"]),
            _fmt(tie_oracles["oracle_logloss"]),
            "",
            *[""] * num_types,
            "",
            "",
        ]
    )
    result.tables["no_interactions"] = tie_table

    # ------------------------------------------------------------------ claims
    mean = {n: float(np.mean([r["auc"] for r in runs[n]])) for n in runs}
    oracle = float(np.mean(oracles["oracle"]))
    first_order = float(np.mean(oracles["first_order_oracle"]))
    lr_gap = mean["lr"] - first_order
    margin = mean["emofm"] - mean["dnn"]
    dnn_gap = oracle - mean["dnn"]
    closed = margin / dnn_gap if dnn_gap > 0 else float("nan")
    tie_mean = {n: float(np.mean([r["auc"] for r in tie_runs[n]])) for n in tie_models}
    tie_spread = max(tie_mean.values()) - min(tie_mean.values())
    tie_oracle = float(np.mean(tie_oracles["oracle"]))
    emofm_runs = runs["emofm"]
    type_accuracy = [r["type_accuracy"] for r in emofm_runs if "type_accuracy" in r]
    ensemble_gain = [r["auc"] - max(r["member_auc"]) for r in emofm_runs if "member_auc" in r]
    pcoc = {n: float(np.mean([r["pcoc"] for r in runs[n]])) for n in models}
    worst = max(pcoc, key=lambda n: abs(pcoc[n] - 1.0))

    result.metrics.update(
        auc={n: [r["auc"] for r in runs[n]] for n in runs},
        logloss={n: [r["logloss"] for r in runs[n]] for n in runs},
        pcoc={n: [r["pcoc"] for r in runs[n]] for n in runs},
        fit_seconds={n: [round(r["seconds"], 2) for r in runs[n]] for n in runs},
        best_step={n: [r["best_step"] for r in runs[n]] for n in runs},
        oracles=oracles,
        tie_auc={n: [r["auc"] for r in tie_runs[n]] for n in tie_models},
        tie_oracle=tie_oracles["oracle"],
        tie_spread=tie_spread,
        tie_max_gap_to_oracle=max(tie_oracle - v for v in tie_mean.values()),
        lr_minus_first_order_oracle=lr_gap,
        emofm_minus_dnn=margin,
        dnn_to_oracle_gap=dnn_gap,
        fraction_of_gap_closed=closed,
        type_accuracy=type_accuracy,
        majority_type_fraction=majority,
        ensemble_member_auc=[r["member_auc"] for r in emofm_runs if "member_auc" in r],
        ensemble_gain=ensemble_gain,
        num_train=config.num_train,
        num_test=config.num_test,
    )
    s = config.num_seeds
    result.claim(
        "lr_matches_first_order_oracle",
        f"|AUC(LR) - AUC(first-order oracle)| on the test rows, mean over {s} seed(s), is at "
        f"most {config.lr_tolerance}",
        abs(lr_gap),
        config.lr_tolerance,
        "<=",
    )
    result.claim(
        "mixer_beats_dnn",
        f"AUC(EMOFM) - AUC(DNN) (mean over {s} seed(s); {margin:+.4f}, closing "
        f"{100 * closed:.1f}% of the DNN -> oracle gap {dnn_gap:.4f}) is at least "
        f"min({config.mixer_margin}, {config.mixer_gap_fraction} x gap): a "
        f"{config.mixer_margin} margin or {100 * config.mixer_gap_fraction:.0f}% of the gap",
        margin,
        min(config.mixer_margin, config.mixer_gap_fraction * dnn_gap),
        ">=",
    )
    result.claim(
        "no_interaction_tie",
        f"with interactions off, max - min of the mean AUCs of {', '.join(tie_models)} is at "
        f"most {config.tie_tolerance} (within ±{config.tie_tolerance} of each other; worst gap "
        f"to the oracle {tie_oracle - min(tie_mean.values()):.4f})",
        tie_spread,
        config.tie_tolerance,
        "<=",
    )
    result.claim(
        "type_model_informative",
        "EMOFM's auxiliary type model accuracy on the test rows exceeds the majority-type "
        f"fraction {np.mean(majority):.4f} (mean over {s} seed(s))",
        float(np.mean(type_accuracy)) if type_accuracy else float("nan"),
        float(np.mean(majority)),
        ">",
    )
    result.claim(
        "ensemble_not_worse",
        "AUC(EMOFM ensemble) - max(AUC(HM member), AUC(WM member)) is >= 0 "
        f"(mean over {s} seed(s))",
        float(np.mean(ensemble_gain)) if ensemble_gain else float("nan"),
        0.0,
        ">=",
    )
    result.claim(
        "pcoc_calibrated",
        f"max over the main models ({', '.join(models)}) of |mean PCOC - 1| is at most "
        f"{config.pcoc_tolerance} (worst: {worst}, PCOC {pcoc[worst]:.4f})",
        abs(pcoc[worst] - 1.0),
        config.pcoc_tolerance,
        "<=",
    )

    # ------------------------------------------------------------------ figures
    aucs = {n: [r["auc"] for r in runs[n]] for n in runs}
    result.figures.append(_plot_models(out_dir, models, aucs, oracles))
    result.figures.append(
        _plot_ablations(out_dir, {n: aucs[n] for n in ["dnn", *ablations, "emofm"]}, oracle)
    )
    result.figures.append(_plot_calibration(out_dir, calibration_y, calibration))
    return result
