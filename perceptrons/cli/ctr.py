"""``perceptrons ctr``: train, evaluate and apply click-through-rate models on your own files.

Usage::

    perceptrons ctr train --train FILE [--valid FILE] --format criteo|table|cvr [--label COL]
        [--categorical COLS] [--numeric COLS] [--multi-valued COLS] [--type-column COL]
        [--ignore COLS] --model NAME [--epochs N] [--batch-size N] [--lr X] [--min-count N]
        [--seed N] [--skip-bad-rows] --out DIR
    perceptrons ctr evaluate --model-dir DIR --data FILE [--skip-bad-rows]
    perceptrons ctr predict --model-dir DIR --data FILE --out FILE.csv [--skip-bad-rows]

``COLS`` is a comma-separated list (the option may also be repeated). Table columns (and cvr
fields ``f<k>``) that are not declared are classified by `infer_schema`; the report goes to
stderr. ``--type-column`` names a table column with each row's type (cvr files have types).

**train** fits the encoder on the training file (streamed), encodes it into memory (encoded
rows are compact: 8 bytes per categorical id, 4 per numeric value), trains ``--epochs`` epochs
with AdamW and `CTRStep`, then scores the validation rows: the ``--valid`` file (streamed), or,
without one, a seeded 10% of the training rows held out from training (``"split": "holdout"``;
the encoder is still fitted on every training row). It prints a progress bar (only on a
terminal) and then one JSON line: ``split, auc, logloss, pcoc, rows`` (validation rows),
``auc_type_<t>`` for typed data, ``train_rows`` and ``skipped_train``/``skipped_valid`` when rows
were skipped. ``DIR`` then holds everything `predict` needs and nothing else::

    DIR/model.json          registry name + model config (`perceptrons.models.io`)
    DIR/model.safetensors   the weights
    DIR/encoder.json        the fitted encoder, with the schema of the files
    DIR/ctr.json            manifest: format version, model, schema, training options, metrics

``DIR`` is written into a temporary folder beside it and renamed at the end, so a failed run
leaves nothing; an existing ``DIR`` must be empty or a model folder of an earlier ``train``
(it is replaced).

**evaluate** streams the file in chunks (kept: one label and one probability per row) and prints
one JSON line ``auc, logloss, pcoc, rows`` (+ ``auc_type_<t>``, + ``skipped`` with
``--skip-bad-rows`` when rows were skipped). Predictions are the test-time ones (row types, if
the file has them, are never shown to the model; EMOFM's ``"logits"``).

**predict** streams the file and writes a CSV with a header and one row per input row, in input
order: ``line,probability`` (``line,log_id,probability`` for cvr files), ``line`` being the
row's 1-based line in a text file (the header is line 1) or its 1-based row in a Parquet file.
Labels are not needed. With ``--skip-bad-rows`` a malformed row has no output row — the
``line`` column keeps the alignment — and the count goes to stderr. The file is written to a
temporary file and renamed, so it appears complete or not at all.

Exit status: 0 on success; 1 for a data error (malformed row without ``--skip-bad-rows``, a
declared column missing from the file, an unreadable model folder, a file without rows), with
one line naming file, line and column where they apply; 2 for a usage error (unknown option,
model or format, a missing input file, a missing ``--out`` parent folder, a ``--model-dir``
without the files of a trained model).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perceptrons.cli.main import Parser, UsageError

if TYPE_CHECKING:  # torch loads when a command runs, not for --help
    import torch

__all__ = ["add_parser", "run"]

MANIFEST = "ctr.json"
ENCODER = "encoder.json"
MODEL_FILES = ("model.json", "model.safetensors")
_FORMAT = "perceptrons.ctr.model"
_VERSION = 1
_CHUNK_ROWS = 65_536
_HOLDOUT = 0.1


class DataError(Exception):
    """A problem with the data or a saved model; one line, exit status 1."""


# ---------------------------------------------------------------------- parser
def _int_at_least(low: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer ``>= low``, else a message naming the bound."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}")
        return value

    return parse


_positive_int, _nonnegative_int = _int_at_least(1), _int_at_least(0)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def add_parser(sub: Any) -> None:
    """Add the ``ctr`` command (with ``train``, ``evaluate``, ``predict``) to ``sub``."""
    p_ctr = sub.add_parser("ctr", help="train, evaluate and apply CTR models on your files")
    ctr_sub = p_ctr.add_subparsers(
        dest="ctr_command",
        required=True,
        parser_class=Parser,
        metavar="{train,evaluate,predict}",
    )
    p = ctr_sub.add_parser("train", help="fit encoder and model on a file; save both")
    p.add_argument("--train", required=True, metavar="FILE", help="training file")
    p.add_argument("--valid", metavar="FILE", help="validation file (default: 10%% holdout)")
    p.add_argument("--format", required=True, choices=["criteo", "table", "cvr"])
    p.add_argument("--label", help="table: the 0/1 label column (default: label)")
    for flag, what in (
        ("--categorical", "categorical columns (cvr: fields f<k>)"),
        ("--numeric", "numeric columns (table only)"),
        ("--multi-valued", "multi-valued columns (cvr: fields f<k>)"),
        ("--ignore", "table columns to leave out"),
    ):
        p.add_argument(flag, action="append", default=[], metavar="COLS", help=what)
    p.add_argument("--type-column", metavar="COL", help="table: column holding each row's type")
    p.add_argument("--model", required=True, metavar="NAME", help="lr, fm, dnn, deepfm, ...")
    p.add_argument("--epochs", type=_positive_int, default=2, help="passes (default: 2)")
    p.add_argument("--batch-size", type=_positive_int, default=1024, help="default: 1024")
    p.add_argument("--lr", type=_positive_float, default=1e-3, help="AdamW rate (default 1e-3)")
    p.add_argument(
        "--min-count", type=_positive_int, default=1, help="vocabulary min count (default: 1)"
    )
    p.add_argument("--seed", type=_nonnegative_int, default=0, help="default: 0")
    p.add_argument("--skip-bad-rows", action="store_true", help="skip and count malformed rows")
    p.add_argument("--out", required=True, metavar="DIR", help="model folder to write")

    p = ctr_sub.add_parser("evaluate", help="AUC, logloss, PCOC of a saved model on a file")
    p.add_argument("--model-dir", required=True, metavar="DIR")
    p.add_argument("--data", required=True, metavar="FILE")
    p.add_argument("--skip-bad-rows", action="store_true")

    p = ctr_sub.add_parser("predict", help="click probabilities of a file's rows, as CSV")
    p.add_argument("--model-dir", required=True, metavar="DIR")
    p.add_argument("--data", required=True, metavar="FILE")
    p.add_argument("--out", required=True, metavar="FILE.csv")
    p.add_argument("--skip-bad-rows", action="store_true")


# ---------------------------------------------------------------------- helpers
def _columns(values: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        out += [v.strip() for v in value.split(",") if v.strip()]
    return tuple(out)


def _input_file(path: str, flag: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{flag} {path}: no such file")
    return p


def _out_parent(path: Path, flag: str) -> None:
    parent = path.parent
    if not parent.is_dir():
        raise UsageError(f"{flag} {path}: the folder {parent} does not exist")


def _ctr_model_entry(name: str) -> Any:
    from perceptrons.ctr.models import CTRModelConfig
    from perceptrons.registry import MODELS

    ctr_names = [n for n in MODELS.names() if issubclass(MODELS.get(n).config, CTRModelConfig)]
    if name not in ctr_names:
        raise UsageError(f"--model {name!r}: not a CTR model (valid: {', '.join(ctr_names)})")
    return MODELS.get(name)


def _stderr(message: str) -> None:
    print(f"perceptrons: {message}", file=sys.stderr, flush=True)


def _probabilities(model: Any, batch: Any) -> torch.Tensor:
    import torch

    out = model(batch)
    logits = out["logits"] if isinstance(out, dict) else out
    return torch.sigmoid(logits.float())


def _metrics(
    labels: torch.Tensor, probs: torch.Tensor, types: torch.Tensor | None, strict: bool = True
) -> dict:
    """AUC, logloss, PCOC and rows. With one class only, AUC is undefined: an error when
    ``strict`` (evaluate), else ``auc: null`` and a ``warning`` (train keeps its model)."""
    from perceptrons.ctr.metrics import ctr_metrics, logloss

    if labels.numel() == 0:
        raise DataError("no rows to evaluate")
    positives = float(labels.sum())
    if positives == 0 or positives == labels.numel():
        message = f"all {labels.numel():,} labels are {int(positives > 0)}: AUC needs both classes"
        if strict:
            raise DataError(message)
        pcoc = float(probs.sum()) / positives if positives else None
        return {
            "auc": None,
            "logloss": logloss(labels, probs),
            "pcoc": pcoc,
            "rows": int(labels.numel()),
            "warning": f"validation rows: {message}",
        }
    metrics = ctr_metrics(labels, probs, types)
    metrics["rows"] = int(metrics["rows"])
    return metrics


def _score_file(
    path: Path, model: Any, encoder: Any, skip_bad_rows: bool, strict: bool = True
) -> tuple[dict[str, Any], Any]:
    """Stream ``path`` through ``model``: metrics of every row, and the read stats."""
    import torch

    from perceptrons.ctr import ReadStats, iter_encoded

    stats = ReadStats()
    labels, probs, types = [], [], []
    with torch.inference_mode():
        for batch in iter_encoded(
            path, encoder, chunk_rows=_CHUNK_ROWS, skip_bad_rows=skip_bad_rows, stats=stats
        ):
            probs.append(_probabilities(model, batch))
            labels.append(batch.labels)
            types.append(batch.types)
    if not probs:
        raise DataError(f"{path}: no rows to evaluate ({stats.summary()})")
    typed = encoder.schema.has_types
    types_ = torch.cat(types) if typed else None
    metrics = _metrics(torch.cat(labels), torch.cat(probs), types_, strict)
    return metrics, stats


def _load_model_dir(directory: str) -> tuple[Any, Any, dict[str, Any]]:
    """(model in eval mode, encoder, manifest) of a ``train`` output folder."""
    from perceptrons.ctr import CTREncoder
    from perceptrons.io import load_json
    from perceptrons.models.io import load_model

    d = Path(directory)
    if not d.is_dir():
        raise UsageError(f"--model-dir {directory}: no such folder")
    for name in (MANIFEST, ENCODER, *MODEL_FILES):
        if not (d / name).is_file():
            raise UsageError(
                f"--model-dir {directory}: {name} is missing (not a folder written by "
                "'perceptrons ctr train')"
            )
    try:
        manifest = load_json(d / MANIFEST)
        if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
            raise ValueError(f"{d / MANIFEST}: not a CTR model manifest")
        if manifest.get("version") != _VERSION:
            raise ValueError(
                f"{d / MANIFEST}: version {manifest.get('version')!r} is not {_VERSION}"
            )
        try:
            encoder = CTREncoder.load(d / ENCODER)
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{d / ENCODER}: {err}") from None
        model = load_model(d)
    except (KeyError, ValueError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        raise DataError(f"--model-dir {directory}: {message}") from None
    model.eval()
    return model, encoder, manifest


def _csv_field(value: str) -> str:
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


# ---------------------------------------------------------------------- train
def _schema(args: argparse.Namespace, path: Path) -> Any:
    from perceptrons.ctr import criteo_schema, infer_schema, print_schema_inference

    categorical, numeric = _columns(args.categorical), _columns(args.numeric)
    multi, ignore = _columns(args.multi_valued), _columns(args.ignore)
    declared = {
        "--label": args.label,
        "--categorical": categorical,
        "--numeric": numeric,
        "--multi-valued": multi,
        "--type-column": args.type_column,
        "--ignore": ignore,
    }
    allowed = {
        "criteo": set(),
        "cvr": {"--categorical", "--multi-valued"},
        "table": set(declared),
    }[args.format]
    for flag, value in declared.items():
        if value and flag not in allowed:
            raise UsageError(f"{flag}: not used by --format {args.format} (fixed columns)")
    if args.format == "criteo":
        return criteo_schema()
    inference = infer_schema(
        path,
        args.format,
        label=args.label or "label",
        categorical=categorical or None,
        numeric=numeric or None,
        multi_valued=multi or None,
        type_column=args.type_column,
        ignore=ignore,
    )
    if any(c.kind in ("categorical", "numeric", "multi_valued") for c in inference.columns) and any(
        not c.reason.startswith("declared") for c in inference.columns
    ):
        print_schema_inference(inference, file=sys.stderr)
    return inference.schema


def _check_out_dir(out: Path) -> None:
    _out_parent(out, "--out")
    if out.exists():
        if not out.is_dir():
            raise UsageError(f"--out {out}: exists and is not a folder")
        if any(out.iterdir()) and not (out / MANIFEST).is_file():
            raise UsageError(
                f"--out {out}: folder is not empty and holds no earlier model; choose another"
            )


def _write_model_dir(out: Path, model: Any, encoder: Any, manifest: dict[str, Any]) -> None:
    """Write the folder beside ``out``, then rename it onto ``out`` (replacing an old model)."""
    from perceptrons.io import make_temp_dir, replace_dir, save_json
    from perceptrons.models.io import save_model

    tmp = make_temp_dir(out.parent, f".{out.name}.tmp-")
    try:
        save_model(model, tmp)
        encoder.save(tmp / ENCODER)
        save_json(tmp / MANIFEST, manifest)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _cmd_train(args: argparse.Namespace) -> int:
    import torch

    from perceptrons.ctr import EncoderConfig, encode_file, fit_encoder
    from perceptrons.ctr.models import CTRStep
    from perceptrons.data.loader import TensorLoader
    from perceptrons.io import json_ready
    from perceptrons.train import FitConfig, OptimizerConfig, fit

    start = time.perf_counter()
    entry = _ctr_model_entry(args.model)
    train_path = _input_file(args.train, "--train")
    valid_path = _input_file(args.valid, "--valid") if args.valid else None
    out = Path(args.out)
    _check_out_dir(out)
    schema = _schema(args, train_path)
    skip = args.skip_bad_rows

    encoder, _ = fit_encoder(
        train_path,
        schema,
        EncoderConfig(min_count=args.min_count),
        chunk_rows=_CHUNK_ROWS,
        skip_bad_rows=skip,
    )
    data, train_stats = encode_file(train_path, encoder, chunk_rows=_CHUNK_ROWS, skip_bad_rows=skip)
    if train_stats.skipped:
        _stderr(f"{train_path}: {train_stats.summary()}")
    holdout = None
    if valid_path is None:
        n = data.num_rows
        if n < 10:
            raise DataError(f"{train_path}: {n} rows; a holdout needs >= 10 (or give --valid)")
        order = torch.randperm(n, generator=torch.Generator().manual_seed(args.seed))
        n_valid = max(1, round(_HOLDOUT * n))
        holdout, data = data.index(order[:n_valid]), data.index(order[n_valid:])

    features = encoder.feature_spec
    overrides: dict[str, Any] = {"features": features}
    fields = {f.name for f in dataclasses.fields(entry.config)}
    if "type_model" in fields and features.num_types < 2:
        overrides["type_model"] = False  # the auxiliary type model needs typed rows
    config = entry.make_config(**overrides)
    model = entry.obj(config, generator=torch.Generator().manual_seed(args.seed))
    loader = TensorLoader(data.to_tensors(), args.batch_size, shuffle=True, seed=args.seed)
    fit_config = FitConfig(
        max_steps=None,
        max_epochs=args.epochs,
        optimizer=OptimizerConfig(lr=args.lr, fused=True),  # large embedding tables
        seed=args.seed,
        log_every=max(1, min(50, len(loader))),
    )
    fit(model, CTRStep(), loader, fit_config)
    model.eval()

    valid_stats = None
    if holdout is not None:
        with torch.inference_mode():
            probs = torch.cat(
                [
                    _probabilities(model, holdout.index(slice(i, i + _CHUNK_ROWS)))
                    for i in range(0, holdout.num_rows, _CHUNK_ROWS)
                ]
            )
        typed = schema.has_types
        metrics = _metrics(holdout.labels, probs, holdout.types if typed else None, False)
    else:
        assert valid_path is not None
        metrics, valid_stats = _score_file(valid_path, model, encoder, skip, strict=False)
        if valid_stats.skipped:
            _stderr(f"{valid_path}: {valid_stats.summary()}")
    if "warning" in metrics:
        _stderr(f"warning: {metrics['warning']}; the model is saved, its AUC is undefined")
    result: dict[str, Any] = {
        "model": args.model,
        "split": "holdout" if holdout is not None else "valid",
        **metrics,
        "train_rows": data.num_rows,
    }
    if train_stats.skipped:
        result["skipped_train"] = train_stats.skipped
    if valid_stats is not None and valid_stats.skipped:
        result["skipped_valid"] = valid_stats.skipped
    result["seconds"] = round(time.perf_counter() - start, 3)
    manifest = {
        "format": _FORMAT,
        "version": _VERSION,
        "model": args.model,
        "schema": schema.to_dict(),
        "train": {
            "train": str(train_path),
            "valid": None if valid_path is None else str(valid_path),
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "min_count": args.min_count,
            "seed": args.seed,
            "skip_bad_rows": skip,
        },
        "metrics": result,
    }
    _write_model_dir(out, model, encoder, json_ready(manifest))
    print(json.dumps(json_ready(result)), flush=True)
    return 0


# ---------------------------------------------------------------------- evaluate / predict
def _cmd_evaluate(args: argparse.Namespace) -> int:
    from perceptrons.io import json_ready

    path = _input_file(args.data, "--data")
    model, encoder, _ = _load_model_dir(args.model_dir)
    metrics, stats = _score_file(path, model, encoder, args.skip_bad_rows)
    if stats.skipped:
        metrics["skipped"] = stats.skipped
        _stderr(f"{path}: {stats.summary()}")
    print(json.dumps(json_ready(metrics)), flush=True)
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import torch

    from perceptrons.ctr import ReadStats, iter_chunks
    from perceptrons.io import atomic_write

    path = _input_file(args.data, "--data")
    out = Path(args.out)
    _out_parent(out, "--out")
    if out.is_dir():
        raise UsageError(f"--out {out}: is a folder; expected a CSV file name")
    model, encoder, _ = _load_model_dir(args.model_dir)
    with_ids = encoder.schema.format == "cvr"
    stats = ReadStats()
    rows = 0
    chunks = iter_chunks(
        path,
        encoder.schema,
        chunk_rows=_CHUNK_ROWS,
        skip_bad_rows=args.skip_bad_rows,
        require_label=False,
        stats=stats,
    )
    with atomic_write(out) as handle, torch.inference_mode():
        handle.write("line,log_id,probability\n" if with_ids else "line,probability\n")
        for chunk in chunks:
            probs = _probabilities(model, encoder.transform(chunk)).tolist()
            lines = chunk.line_numbers.tolist()
            if with_ids:
                ids = [_csv_field(str(v)) for v in chunk.row_ids]  # type: ignore[union-attr]
                text = [f"{a},{b},{p:.9g}\n" for a, b, p in zip(lines, ids, probs, strict=True)]
            else:
                text = [f"{a},{p:.9g}\n" for a, p in zip(lines, probs, strict=True)]
            handle.write("".join(text))
            rows += len(probs)
    if stats.skipped:
        _stderr(
            f"{path}: {stats.skipped:,} malformed rows skipped (no output row; see the line "
            f"column); first: {stats.errors[0]}"
        )
    _stderr(f"wrote {rows:,} predictions to {out}")
    return 0


DATA_ERRORS: tuple[type[BaseException], ...] = (
    DataError,
    FileNotFoundError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)
"""What a user's file or saved model can cause (with `perceptrons.ctr.CTRDataError`):
reported on one line with exit status 1. Anything else is a bug and shows its traceback."""


def run(args: argparse.Namespace) -> int:
    """Run ``perceptrons ctr ...``; data errors print one line and return 1.

    Only data errors (`DATA_ERRORS`, `perceptrons.ctr.CTRDataError`, a missing optional
    dependency) are caught; ``--debug`` re-raises them too.
    """
    from perceptrons.ctr import CTRDataError

    command = {"train": _cmd_train, "evaluate": _cmd_evaluate, "predict": _cmd_predict}
    try:
        return command[args.ctr_command](args)
    except (*DATA_ERRORS, CTRDataError, ModuleNotFoundError) as err:
        if getattr(args, "debug", False):
            raise
        message = str(err) or type(err).__name__
        with contextlib.suppress(Exception):
            message = message.splitlines()[0] if message else message
        print(f"perceptrons: error: {message}", file=sys.stderr, flush=True)
        return 1
