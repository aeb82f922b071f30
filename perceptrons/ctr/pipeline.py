"""The CTR pipeline end to end: your files in, a trained and saved model out, then scores.

The command line (``perceptrons ctr train|evaluate|predict``), the ``emofm-ctr`` study and
``benchmarks/ctr_protocol.py`` all call this module, so that the three train the same way.

Flow of `train` (one `CTRTrainConfig` holds every choice)::

    config.train ──infer_schema──> CTRSchema          (criteo: fixed; table/cvr: declared
        │                                              columns + inferred rest, reported)
        ├──fit_encoder──> CTREncoder                  (streamed in chunks of chunk_rows)
        ├──iter_encoded──> CTRBatch of training rows  (in memory: ids and numbers only)
        │   validation rows: config.valid encoded the same way, or a seeded ``holdout``
        │   fraction of the training rows (the encoder is still fitted on all of them)
        ▼
    registry model config.model_name with config.model (features = encoder.feature_spec)
        ▼
    fit_ctr_model     the one CTR training protocol: `fit` + `CTRStep` over a `TensorLoader`,
        │             validation AUC every eval_every steps (`Evaluator`), optional early
        │             stopping, the best validation weights restored (`RestoreBest`)
        ▼
    validation metrics (AUC, log loss, PCOC, per-type AUC) ──> TrainedCTR
        ▼
    save(out_dir)     model.json + model.safetensors + encoder.json + train_config.json +
                      ctr.json, built in a temporary folder and renamed into place

`evaluate` and `predict` stream a file through a `TrainedCTR` (or a saved folder, `load`)
chunk by chunk; predictions are test-time ones (row types are never shown to a model).

The in-memory protocol `fit_ctr_model` takes encoded tensors (``CTRBatch.to_tensors()``), so
the study trains on synthetic rows exactly as `train` does on files.

Shapes: ``n`` rows; a tensor dict of rows has ``categorical (n, C)`` int64, ``numeric
(n, N)`` float32, ``multi_ids.{j} (n, L_j)`` int64, ``multi_lengths (n, M)`` int64, ``labels
(n,)`` float32 and ``types (n,)`` int64 (see `perceptrons.ctr.CTRBatch`).
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from perceptrons.config import Config
from perceptrons.ctr.config import CHUNK_ROWS, CTRTrainConfig, ctr_model_names, with_model
from perceptrons.ctr.features import CTRBatch
from perceptrons.ctr.io.encoding import CTREncoder, fit_encoder, iter_encoded
from perceptrons.ctr.io.inference import infer_schema, print_schema_inference
from perceptrons.ctr.io.readers import iter_chunks
from perceptrons.ctr.io.schema import CTRDataError, CTRSchema, ReadStats, criteo_schema
from perceptrons.ctr.metrics import auc, ctr_metrics, logloss
from perceptrons.ctr.models import CTRStep
from perceptrons.data.loader import TensorLoader
from perceptrons.io import (
    atomic_write,
    json_ready,
    load_json,
    make_temp_dir,
    replace_dir,
    save_json,
)
from perceptrons.models.io import load_model, save_model
from perceptrons.registry import MODELS
from perceptrons.train import (
    Callback,
    EarlyStopping,
    Evaluator,
    FitConfig,
    FitResult,
    RestoreBest,
    Step,
    fit,
)

__all__ = [
    "CHUNK_ROWS",
    "CONFIG_FILE",
    "ENCODER_FILE",
    "MANIFEST_FILE",
    "MANIFEST_VERSION",
    "MODEL_FILES",
    "CTRFitResult",
    "CTRTrainConfig",
    "ModelDirError",
    "TrainedCTR",
    "check_out_dir",
    "ctr_model_names",
    "evaluate",
    "fit_ctr_model",
    "load",
    "model_logits",
    "predict",
    "save",
    "train",
    "with_model",
]

MANIFEST_FILE = "ctr.json"
ENCODER_FILE = "encoder.json.gz"
LEGACY_ENCODER_FILE = "encoder.json"
"""The uncompressed encoder file of folders of manifest versions 1 and 2."""
CONFIG_FILE = "train_config.json"
MODEL_FILES = ("model.json", "model.safetensors")
MANIFEST_VERSION = 3
"""Version of ``ctr.json``. Version 2 added ``train_config.json``, version 3 writes the encoder
gzip-compressed (``encoder.json.gz``: vocabularies of hashed ids are most of a small model's
folder); folders of versions 1 (no training config) and 2 (``encoder.json``) are still read
(`TrainedCTR.config` is None for version 1)."""
_READABLE_VERSIONS = (1, 2, 3)
_FORMAT = "perceptrons.ctr.model"
_MIN_HOLDOUT_ROWS = 10

Log = Callable[[str], None]
"""Receives the messages a user should see (schema inference, skipped rows, warnings)."""


class ModelDirError(ValueError):
    """A folder that is not (a complete) model folder of `train`, or an ``out_dir`` that
    cannot become one; the message starts with the folder."""


# ---------------------------------------------------------------------- results
@dataclass(frozen=True)
class CTRFitResult:
    """How `fit_ctr_model` went.

    Attributes:
        steps: Optimiser steps taken.
        epochs: Epochs trained (fractional when stopped early).
        seconds: Wall time of `fit`.
        stopped_early: Whether early stopping ended the run.
        best_step: Step of the best validation AUC (None: no validation, or no AUC).
        best_auc: That AUC.
        restored: Whether the model holds the weights of ``best_step`` (else its last ones).
        val_auc: Validation AUC of the weights the model holds (None: no validation).
        fit: The `FitResult` of `fit` (history of train and validation records).
    """

    steps: int
    epochs: float
    seconds: float
    stopped_early: bool
    best_step: int | None
    best_auc: float | None
    restored: bool
    val_auc: float | None
    fit: FitResult


@dataclass(eq=False)
class TrainedCTR:
    """A trained model with its encoder: what `train` returns and `load` reads.

    Attributes:
        model: The model (eval mode).
        encoder: The fitted encoder (with the schema of the files).
        model_name: Its registry name.
        config: The `CTRTrainConfig` it was trained with, ``model.features`` set to the data's
            (None: a folder of manifest version 1).
        metrics: The validation summary of `train` (``split``, ``auc``, ``logloss``, ``pcoc``,
            ``rows``, ...), as printed by ``perceptrons ctr train``.
        fit: How training went (None when loaded from a folder).
    """

    model: nn.Module
    encoder: CTREncoder
    model_name: str
    config: CTRTrainConfig | None
    metrics: dict[str, Any]
    fit: CTRFitResult | None = None


# ---------------------------------------------------------------------- scoring helpers
def model_logits(
    model: nn.Module, rows: dict[str, Tensor] | CTRBatch, *, batch_size: int = CHUNK_ROWS
) -> Tensor:
    """Click logits of every row, ``batch_size`` rows per forward pass, without gradients.

    Args:
        model: A CTR model (a dict output contributes its ``"logits"``, EMOFM's test-time
            prediction with types hidden).
        rows: ``CTRBatch.to_tensors()`` of ``n`` rows (or the `CTRBatch`); chunks are moved to
            the device of the model's parameters.
        batch_size: Rows per forward pass.

    Returns:
        ``(n,)`` logits on the CPU.
    """
    tensors = rows.to_tensors() if isinstance(rows, CTRBatch) else rows
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    n = int(next(iter(tensors.values())).shape[0])
    parts = []
    with torch.no_grad():
        for start in range(0, n, batch_size):
            out = model({k: v[start : start + batch_size].to(device) for k, v in tensors.items()})
            logits = out["logits"] if isinstance(out, dict) else out
            parts.append(logits.cpu())
    if not parts:
        raise ValueError("rows: has no rows")
    return torch.cat(parts)


def _probabilities(model: nn.Module, rows: dict[str, Tensor], batch_size: int) -> Tensor:
    return torch.sigmoid(model_logits(model, rows, batch_size=batch_size).float())


def _both_classes(labels: Tensor) -> bool:
    positives = float(labels.sum())
    return 0 < positives < labels.numel()


def _metrics(
    labels: Tensor, probs: Tensor, types: Tensor | None, *, strict: bool = True
) -> dict[str, Any]:
    """AUC, logloss, PCOC and rows (+ ``auc_type_<t>``). With one class only, AUC is undefined:
    a `CTRDataError` when ``strict`` (evaluate), else ``auc: None`` and a ``warning`` (train
    keeps its model)."""
    if labels.numel() == 0:
        raise CTRDataError("no rows to evaluate")
    positives = float(labels.sum())
    if not _both_classes(labels):
        message = f"all {labels.numel():,} labels are {int(positives > 0)}: AUC needs both classes"
        if strict:
            raise CTRDataError(message)
        return {
            "auc": None,
            "logloss": logloss(labels, probs),
            "pcoc": float(probs.sum()) / positives if positives else None,
            "rows": int(labels.numel()),
            "warning": f"validation rows: {message}",
        }
    metrics: dict[str, Any] = ctr_metrics(labels, probs, types)
    metrics["rows"] = int(metrics["rows"])
    return metrics


def _say(log: Log | None, message: str) -> None:
    if log is not None:
        log(message)


# ---------------------------------------------------------------------- the one protocol
def fit_ctr_model(
    model: nn.Module,
    train: dict[str, Tensor],
    valid: dict[str, Tensor] | None,
    fit_config: FitConfig,
    *,
    batch_size: int,
    seed: int | None = None,
    eval_every: int | None = None,
    patience: int | None = None,
    restore_best: bool = True,
    predict_batch: int = CHUNK_ROWS,
    step: Step | None = None,
    callbacks: Sequence[Callback] = (),
    out_dir: str | os.PathLike[str] | None = None,
    resume: bool = True,
) -> CTRFitResult:
    """Train a CTR model on encoded rows: the one CTR training protocol.

    `fit` with ``step`` (default `CTRStep`) over a shuffled `TensorLoader` of ``train``. With
    ``valid``, an `Evaluator` computes the validation AUC (of the logits, ``predict_batch``
    rows per forward pass) every ``eval_every`` steps and after the last one (logged as
    ``val/auc``); with ``patience``, `EarlyStopping` ends the run after that many evaluations
    without a better AUC; with ``restore_best``, `RestoreBest` puts the weights of the best
    AUC back at the end. The model is left in eval mode.

    Args:
        model: A CTR model (any ``nn.Module`` that `CTRStep` can train).
        train: ``CTRBatch.to_tensors()`` of the training rows, ``(n, ...)`` each.
        valid: The same of the validation rows (both classes needed), or None (no
            evaluation: the last weights are kept).
        fit_config: Passed to `fit` as it is (budget, optimiser, seed, device, progress,
            checkpoints).
        batch_size: Rows per optimiser step.
        seed: Seed of the loader's shuffling (None: ``fit_config.seed``).
        eval_every: Steps between evaluations (None: once per epoch).
        patience: Evaluations without improvement before stopping (None: no early stopping).
        restore_best: Restore the weights of the best validation AUC.
        predict_batch: Rows per forward pass of the evaluation.
        step: The `Step` (default ``CTRStep()``).
        callbacks: More `fit` callbacks, run after the protocol's own.
        out_dir: `fit`'s folder for ``metrics.jsonl`` and checkpoints (RestoreBest keeps the
            weights named by checkpoints in ``out_dir/restore_best``); None writes nothing.
        resume: Passed to `fit`.

    Returns:
        The `CTRFitResult`.

    Raises:
        ValueError: validation rows of a single class, or ``patience`` without ``valid``.
    """
    loader = TensorLoader(train, batch_size, seed=fit_config.seed if seed is None else seed)
    protocol: list[Callback] = []
    keeper = None
    if valid is not None:
        rows, labels = valid, valid["labels"]
        if not _both_classes(labels):
            raise ValueError("valid: validation AUC needs both classes; pass valid=None")

        def validation_auc(m: nn.Module) -> dict[str, float]:
            return {"auc": auc(labels, model_logits(m, rows, batch_size=predict_batch))}

        every = eval_every if eval_every is not None else len(loader)
        protocol.append(Evaluator(validation_auc, every=every, split="val"))
        if restore_best:
            directory = None if out_dir is None else Path(out_dir) / "restore_best"
            keeper = RestoreBest("val/auc", "max", directory=directory)
            protocol.append(keeper)
        if patience is not None:
            protocol.append(EarlyStopping(metric="val/auc", mode="max", patience=patience))
    elif patience is not None:
        raise ValueError("patience: early stopping needs validation rows (valid is None)")
    start = time.perf_counter()
    result = fit(
        model,
        step if step is not None else CTRStep(),
        loader,
        fit_config,
        [*protocol, *callbacks],
        out_dir=out_dir,
        resume=resume,
    )
    seconds = time.perf_counter() - start
    model.eval()
    best_step = best_auc = None
    if keeper is not None:
        best_step, best_auc = keeper.best_step, keeper.best_value
    elif valid is not None:
        for record in result.history:
            value = record.get("auc") if record.get("split") == "val" else None
            if value is not None and (best_auc is None or value > best_auc):
                best_step, best_auc = int(record["step"]), float(value)
    restored = keeper is not None and best_step is not None
    val_auc = best_auc if restored else result.final.get("val/auc")
    return CTRFitResult(
        steps=result.steps,
        epochs=result.epochs,
        seconds=seconds,
        stopped_early=result.stopped_early,
        best_step=best_step,
        best_auc=best_auc,
        restored=restored,
        val_auc=val_auc,
        fit=result,
    )


# ---------------------------------------------------------------------- train
def _schema(config: CTRTrainConfig, path: Path, log: Log | None) -> CTRSchema:
    if config.format == "criteo":
        return criteo_schema()
    inference = infer_schema(
        path,
        config.format,
        label=config.label or "label",
        categorical=config.categorical or None,
        numeric=config.numeric or None,
        multi_valued=config.multi_valued or None,
        type_column=config.type_column,
        ignore=config.ignore,
    )
    kinds = ("categorical", "numeric", "multi_valued")
    if any(c.kind in kinds for c in inference.columns) and any(
        not c.reason.startswith("declared") for c in inference.columns
    ):
        text = io.StringIO()
        print_schema_inference(inference, file=text)
        _say(log, text.getvalue().rstrip("\n"))
    return inference.schema


def _encode(
    path: Path, encoder: CTREncoder, config: CTRTrainConfig, log: Log | None
) -> tuple[CTRBatch, ReadStats]:
    """Every row of ``path``, encoded, in file order; skipped rows are reported."""
    stats = ReadStats()
    batches = list(
        iter_encoded(
            path,
            encoder,
            chunk_rows=config.chunk_rows,
            skip_bad_rows=config.skip_bad_rows,
            stats=stats,
        )
    )
    if not batches:
        raise CTRDataError(f"{path}: no rows ({stats.summary()})")
    if stats.skipped:
        _say(log, f"{path}: {stats.summary()}")
    return CTRBatch.cat(batches), stats


def _build_model(config: CTRTrainConfig, encoder: CTREncoder) -> tuple[nn.Module, Config]:
    features = encoder.feature_spec
    changes: dict[str, Any] = {"features": features}
    names = {f.name for f in dataclasses.fields(config.model)}
    if "type_model" in names and features.num_types < 2:
        changes["type_model"] = False  # the auxiliary type model needs typed rows
    model_config = config.model.replace(**changes)
    entry = MODELS.get(config.model_name)
    model = entry.obj(model_config, generator=torch.Generator().manual_seed(config.seed))
    return model, model_config


def train(
    config: CTRTrainConfig,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    run_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    log: Log | None = None,
) -> TrainedCTR:
    """Read, encode, train, validate and (with ``out_dir``) save a CTR model.

    See the module docstring for the flow. The validation summary (`TrainedCTR.metrics`):
    ``model``, ``split`` (``"valid"`` or ``"holdout"``), ``auc``, ``logloss``, ``pcoc``,
    ``rows`` (validation rows), ``auc_type_<t>`` for typed data, ``train_rows``, ``steps``,
    ``best_step`` (when the best weights were kept), ``skipped_train`` / ``skipped_valid``
    when rows were skipped, ``warning`` when the validation rows hold a single class (no AUC:
    no evaluation during training, the last weights are kept) and ``seconds``.

    Args:
        config: Data, encoder, model and training loop.
        out_dir: Model folder to write (built beside it, renamed into place; an existing one
            must be empty or an earlier model folder, which is replaced). None: not saved.
        run_dir: `fit`'s folder (``metrics.jsonl``, checkpoints when
            ``config.fit.checkpoint_every`` is set; a rerun with the same folder resumes).
        progress: Override ``config.fit.progress`` (None: keep it).
        log: Receives messages for the user: the schema inference report, skipped rows, the
            single-class warning.

    Returns:
        The `TrainedCTR`.

    Raises:
        CTRDataError: a malformed row (without ``skip_bad_rows``), a declared column missing
            from the file, a file without rows, too few rows for a holdout.
        ModelDirError: ``out_dir`` cannot be written (checked before anything is read).
        FileNotFoundError: a missing input file.
        ValueError: no training file, or checkpoints without ``run_dir``.
    """
    start = time.perf_counter()
    if not config.train:
        raise ValueError("train: no training file given")
    train_path = Path(config.train)
    valid_path = None if config.valid is None else Path(config.valid)
    for path in (train_path, valid_path):
        if path is not None and not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
    if config.fit.checkpoint_every is not None and run_dir is None:
        raise ValueError("fit.checkpoint_every: checkpoints need a run_dir")
    if out_dir is not None:
        check_out_dir(out_dir)
    fit_config = config.fit if progress is None else config.fit.replace(progress=progress)

    schema = _schema(config, train_path, log)
    encoder, _ = fit_encoder(
        train_path,
        schema,
        config.encoder,
        chunk_rows=config.chunk_rows,
        skip_bad_rows=config.skip_bad_rows,
    )
    data, train_stats = _encode(train_path, encoder, config, log)
    valid_stats = None
    if valid_path is None:
        n = data.num_rows
        if n < _MIN_HOLDOUT_ROWS:
            raise CTRDataError(
                f"{train_path}: {n} rows; a holdout needs >= {_MIN_HOLDOUT_ROWS} (or give a "
                "validation file)"
            )
        order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed))
        n_valid = max(1, round(config.holdout * n))
        valid, data = data.index(order[:n_valid]), data.index(order[n_valid:])
    else:
        valid, valid_stats = _encode(valid_path, encoder, config, log)

    model, model_config = _build_model(config, encoder)
    valid_rows = valid.to_tensors()
    evaluated = _both_classes(valid.labels)
    fitted = fit_ctr_model(
        model,
        data.to_tensors(),
        valid_rows if evaluated else None,
        fit_config,
        batch_size=config.batch_size,
        seed=config.seed,
        eval_every=config.eval_every,
        patience=config.patience if evaluated else None,
        restore_best=config.restore_best,
        predict_batch=config.chunk_rows,
        out_dir=run_dir,
    )
    probs = _probabilities(model, valid_rows, config.chunk_rows)
    types = valid.types if schema.has_types else None
    metrics = _metrics(valid.labels, probs, types, strict=False)
    if "warning" in metrics:
        _say(log, f"warning: {metrics['warning']}; the model is saved, its AUC is undefined")
    result: dict[str, Any] = {
        "model": config.model_name,
        "split": "holdout" if valid_path is None else "valid",
        **metrics,
        "train_rows": data.num_rows,
        "steps": fitted.steps,
    }
    if fitted.restored:
        result["best_step"] = fitted.best_step
    if train_stats.skipped:
        result["skipped_train"] = train_stats.skipped
    if valid_stats is not None and valid_stats.skipped:
        result["skipped_valid"] = valid_stats.skipped
    result["seconds"] = round(time.perf_counter() - start, 3)
    trained = TrainedCTR(
        model=model,
        encoder=encoder,
        model_name=config.model_name,
        config=config.replace(model=model_config),
        metrics=json_ready(result),
        fit=fitted,
    )
    if out_dir is not None:
        save(trained, out_dir)
    return trained


# ---------------------------------------------------------------------- model folders
def check_out_dir(out_dir: str | os.PathLike[str]) -> None:
    """Raise `ModelDirError` unless `save` may write ``out_dir``: its parent folder exists,
    and ``out_dir`` is absent, an empty folder or an earlier model folder."""
    out = Path(out_dir)
    if not out.parent.is_dir():
        raise ModelDirError(f"{out}: the folder {out.parent} does not exist")
    if out.exists():
        if not out.is_dir():
            raise ModelDirError(f"{out}: exists and is not a folder")
        if any(out.iterdir()) and not (out / MANIFEST_FILE).is_file():
            raise ModelDirError(
                f"{out}: folder is not empty and holds no earlier model; choose another"
            )


def save(trained: TrainedCTR, out_dir: str | os.PathLike[str]) -> Path:
    """Write the model folder ``out_dir`` (built beside it, then renamed into place)::

        model.json           registry name + model config (`perceptrons.models.io`)
        model.safetensors    the weights
        encoder.json.gz      the fitted encoder, with the schema of the files (gzip JSON)
        train_config.json    the `CTRTrainConfig` ({"type": ..., "params": ...})
        ctr.json             manifest: format, version, model, schema, metrics

    Returns:
        The folder.

    Raises:
        ModelDirError: see `check_out_dir`.
    """
    out = Path(out_dir)
    check_out_dir(out)
    manifest = {
        "format": _FORMAT,
        "version": MANIFEST_VERSION,
        "model": trained.model_name,
        "schema": trained.encoder.schema.to_dict(),
        "config": CONFIG_FILE,
        "metrics": trained.metrics,
    }
    tmp = make_temp_dir(out.parent, f".{out.name}.tmp-")
    try:
        save_model(trained.model, tmp)
        trained.encoder.save(tmp / ENCODER_FILE)
        if trained.config is not None:
            with atomic_write(tmp / CONFIG_FILE) as handle:
                handle.write(trained.config.to_json() + "\n")
        save_json(tmp / MANIFEST_FILE, json_ready(manifest))  # last: the folder is complete
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load(model_dir: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> TrainedCTR:
    """Read a model folder written by `save` (manifest version 1 or 2).

    Args:
        model_dir: The folder.
        device: Device of the model's parameters.

    Returns:
        The `TrainedCTR` (model in eval mode; ``fit`` None).

    Raises:
        ModelDirError: no such folder, or one of its files is missing.
        CTRDataError: a file that cannot be read (the message names it), or a manifest of
            another format or version.
    """
    d = Path(model_dir)
    if not d.is_dir():
        raise ModelDirError(f"{d}: no such folder")
    encoder_file = ENCODER_FILE if (d / ENCODER_FILE).is_file() else LEGACY_ENCODER_FILE
    for name in (MANIFEST_FILE, encoder_file, *MODEL_FILES):
        if not (d / name).is_file():
            raise ModelDirError(
                f"{d}: {name} is missing (not a folder written by 'perceptrons ctr train')"
            )
    try:
        manifest = load_json(d / MANIFEST_FILE)
        if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
            raise ValueError(f"{d / MANIFEST_FILE}: not a CTR model manifest")
        version = manifest.get("version")
        if version not in _READABLE_VERSIONS:
            raise ValueError(
                f"{d / MANIFEST_FILE}: version {version!r} is not one this version reads "
                f"({', '.join(map(str, _READABLE_VERSIONS))})"
            )
        config = None
        if version >= 2:
            if not (d / CONFIG_FILE).is_file():
                raise ModelDirError(f"{d}: {CONFIG_FILE} is missing (manifest version 2)")
            try:
                config = CTRTrainConfig.from_json((d / CONFIG_FILE).read_text())
            except ValueError as err:
                raise ValueError(f"{d / CONFIG_FILE}: {err}") from None
        try:
            encoder = CTREncoder.load(d / encoder_file)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{d / encoder_file}: {err}") from None
        model = load_model(d, device=device)
    except ModelDirError:
        raise
    except (KeyError, ValueError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        raise CTRDataError(f"{d}: {message}") from None
    model.eval()
    metrics = manifest.get("metrics")
    return TrainedCTR(
        model=model,
        encoder=encoder,
        model_name=str(manifest.get("model")),
        config=config,
        metrics=metrics if isinstance(metrics, dict) else {},
    )


def _trained(model: TrainedCTR | str | os.PathLike[str]) -> TrainedCTR:
    return model if isinstance(model, TrainedCTR) else load(model)


# ---------------------------------------------------------------------- evaluate / predict
def evaluate(
    model: TrainedCTR | str | os.PathLike[str],
    data: str | os.PathLike[str],
    *,
    skip_bad_rows: bool = False,
    chunk_rows: int = CHUNK_ROWS,
    log: Log | None = None,
) -> dict[str, Any]:
    """Metrics of a trained model on a labelled file, streamed in chunks.

    Only one label and one probability per row are kept. Predictions are test-time ones: row
    types in the file are never shown to the model (they group the per-type AUCs).

    Args:
        model: A `TrainedCTR` or a model folder (`load`).
        data: A file of the training file's format and columns.
        skip_bad_rows: Skip and count malformed rows.
        chunk_rows: Rows per chunk (and per forward pass).
        log: Receives the skipped-rows summary.

    Returns:
        ``{"auc", "logloss", "pcoc", "rows"}`` (+ ``auc_type_<t>`` for typed data, + ``skipped``
        when rows were skipped).

    Raises:
        CTRDataError: a malformed row, a missing column, no rows, or a single class.
    """
    trained = _trained(model)
    path = Path(data)
    stats = ReadStats()
    labels, probs, types = [], [], []
    for batch in iter_encoded(
        path, trained.encoder, chunk_rows=chunk_rows, skip_bad_rows=skip_bad_rows, stats=stats
    ):
        probs.append(_probabilities(trained.model, batch.to_tensors(), chunk_rows))
        labels.append(batch.labels)
        types.append(batch.types)
    if not probs:
        raise CTRDataError(f"{path}: no rows to evaluate ({stats.summary()})")
    typed = trained.encoder.schema.has_types
    metrics = _metrics(torch.cat(labels), torch.cat(probs), torch.cat(types) if typed else None)
    if stats.skipped:
        metrics["skipped"] = stats.skipped
        _say(log, f"{path}: {stats.summary()}")
    return metrics


def _csv_field(value: str) -> str:
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def predict(
    model: TrainedCTR | str | os.PathLike[str],
    data: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    skip_bad_rows: bool = False,
    chunk_rows: int = CHUNK_ROWS,
    log: Log | None = None,
) -> dict[str, int]:
    """Write the click probability of every row of a file as CSV, in input order.

    Columns: ``line,probability`` (``line,log_id,probability`` for cvr files), ``line`` being
    the row's 1-based line in a text file (the header is line 1) or its 1-based row in a
    Parquet file; probabilities with 9 significant digits. Labels are not needed. A skipped
    malformed row has no output row (``line`` keeps the alignment). The CSV is written to a
    temporary file and renamed: it appears complete or not at all.

    Args:
        model: A `TrainedCTR` or a model folder (`load`).
        data: A file of the training file's format and columns.
        out: The CSV file to write.
        skip_bad_rows: Skip and count malformed rows.
        chunk_rows: Rows per chunk (and per forward pass).
        log: Receives the skipped-rows summary and the number of rows written.

    Returns:
        ``{"rows": written rows, "skipped": skipped rows}``.

    Raises:
        CTRDataError: a malformed row (without ``skip_bad_rows``) or a missing column.
    """
    trained = _trained(model)
    path, out = Path(data), Path(out)
    with_ids = trained.encoder.schema.format == "cvr"
    stats = ReadStats()
    rows = 0
    chunks = iter_chunks(
        path,
        trained.encoder.schema,
        chunk_rows=chunk_rows,
        skip_bad_rows=skip_bad_rows,
        require_label=False,
        stats=stats,
    )
    with atomic_write(out) as handle:
        handle.write("line,log_id,probability\n" if with_ids else "line,probability\n")
        for chunk in chunks:
            batch = trained.encoder.transform(chunk).to_tensors()
            probs = _probabilities(trained.model, batch, chunk_rows).tolist()
            lines = chunk.line_numbers.tolist()
            if with_ids:
                ids = [_csv_field(str(v)) for v in chunk.row_ids]  # type: ignore[union-attr]
                text = [f"{a},{b},{p:.9g}\n" for a, b, p in zip(lines, ids, probs, strict=True)]
            else:
                text = [f"{a},{p:.9g}\n" for a, p in zip(lines, probs, strict=True)]
            handle.write("".join(text))
            rows += len(probs)
    if stats.skipped:
        _say(
            log,
            f"{path}: {stats.skipped:,} malformed rows skipped (no output row; see the line "
            f"column); first: {stats.errors[0]}",
        )
    _say(log, f"wrote {rows:,} predictions to {out}")
    return {"rows": rows, "skipped": stats.skipped}
