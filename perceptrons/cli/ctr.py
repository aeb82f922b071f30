"""``perceptrons ctr``: train, evaluate and apply click-through-rate models on your own files.

Usage::

    perceptrons ctr train [--config FILE.json] --train FILE [--valid FILE]
        --format criteo|table|cvr [--label COL] [--categorical COLS] [--numeric COLS]
        [--multi-valued COLS] [--type-column COL] [--ignore COLS] --model NAME [--epochs N]
        [--batch-size N] [--lr X] [--min-count N] [--seed N] [--skip-bad-rows]
        [--set FIELD=VALUE ...] [--run-dir DIR] [--quiet] --out DIR
    perceptrons ctr evaluate --model-dir DIR --data FILE [--skip-bad-rows]
    perceptrons ctr predict --model-dir DIR --data FILE --out FILE.csv [--skip-bad-rows]

This module only parses flags: the work is `perceptrons.ctr.pipeline` (`train`, `evaluate`,
`predict`), which documents what each step does and what the model folder holds.

**train** builds one `CTRTrainConfig`: the defaults (or ``--config FILE.json``, e.g. the
``train_config.json`` of an earlier model folder), then the flags, then each ``--set
FIELD=VALUE`` in order. ``--set`` takes any field of `CTRTrainConfig`, dotted for nested
configs (``--set model.embed_dim=8 --set fit.max_epochs=3 --set fit.optimizer.name=adam
--set encoder.min_count=5 --set eval_every=100 --set patience=3``); values are parsed by the
field's type, as ``perceptrons reproduce --set`` does (JSON, or comma-separated for tuples;
the fields of ``model`` are those of the chosen model, ``perceptrons info NAME``). The flags
are shorthands: ``--epochs`` is ``fit.max_epochs``, ``--lr`` ``fit.optimizer.lr``,
``--min-count`` ``encoder.min_count``, ``--seed`` both ``seed`` and ``fit.seed``, ``--model``
``model_name`` with that model's registered defaults (kept when ``--config`` trains the same
model). Without ``--config``, ``--train``, ``--format`` and ``--model`` are required.
``COLS`` is a comma-separated list (the option may also be repeated).

It prints the progress of `fit` (unless ``--quiet``; a bar only on a terminal) and then one
JSON line: ``model, split, auc, logloss, pcoc, rows`` (validation rows), ``auc_type_<t>`` for
typed data, ``train_rows``, ``steps``, ``best_step`` (the restored best-validation step),
``skipped_train``/``skipped_valid`` when rows were skipped, and ``seconds``. ``--run-dir DIR``
is where `fit` writes ``metrics.jsonl`` and, with ``--set fit.checkpoint_every=N``, its
checkpoints (a rerun with the same ``DIR`` resumes).

**evaluate** prints one JSON line ``auc, logloss, pcoc, rows`` (+ ``auc_type_<t>``, +
``skipped``). **predict** writes ``line,probability`` (``line,log_id,probability`` for cvr
files) for every row, in input order.

Exit status: 0 on success; 1 for a data error (a malformed row without ``--skip-bad-rows``, a
declared column missing from the file, an unreadable model folder, a file without rows), with
one line naming file, line and column where they apply; 2 for a usage error (an unknown
option, model, format or ``--set`` field, a value of the wrong type, a missing input file, a
missing ``--out`` parent folder, a ``--model-dir`` without the files of a trained model), one
line saying what is valid. Anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perceptrons.cli.main import Parser, UsageError, field_type

if TYPE_CHECKING:  # torch loads when a command runs, not for --help
    from perceptrons.ctr.pipeline import CTRTrainConfig

__all__ = ["DATA_ERRORS", "add_parser", "run"]


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
    p.add_argument(
        "--config", metavar="FILE.json", help="a saved CTRTrainConfig (flags apply on top)"
    )
    p.add_argument("--train", metavar="FILE", help="training file")
    p.add_argument("--valid", metavar="FILE", help="validation file (default: 10%% holdout)")
    p.add_argument("--format", choices=["criteo", "table", "cvr"])
    p.add_argument("--label", help="table: the 0/1 label column (default: label)")
    for flag, what in (
        ("--categorical", "categorical columns (cvr: fields f<k>)"),
        ("--numeric", "numeric columns (table only)"),
        ("--multi-valued", "multi-valued columns (cvr: fields f<k>)"),
        ("--ignore", "table columns to leave out"),
    ):
        p.add_argument(flag, action="append", default=[], metavar="COLS", help=what)
    p.add_argument("--type-column", metavar="COL", help="table: column holding each row's type")
    p.add_argument("--model", metavar="NAME", help="lr, fm, dnn, deepfm, ...")
    p.add_argument("--epochs", type=_positive_int, help="passes (default: 2)")
    p.add_argument("--batch-size", type=_positive_int, help="default: 1024")
    p.add_argument("--lr", type=_positive_float, help="learning rate (default: AdamW, 1e-3)")
    p.add_argument(
        "--min-count", type=_positive_int, help="vocabulary min count (default: the encoder's)"
    )
    p.add_argument("--seed", type=_nonnegative_int, help="default: 0")
    p.add_argument("--skip-bad-rows", action="store_true", help="skip and count malformed rows")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="set a CTRTrainConfig field, dotted (model.embed_dim=8, fit.max_epochs=3)",
    )
    p.add_argument("--run-dir", metavar="DIR", help="fit's metrics.jsonl and checkpoints")
    p.add_argument("--quiet", action="store_true", help="no progress output")
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


def _input_file(path: str | None, flag: str) -> None:
    if path is not None and not Path(path).is_file():
        raise UsageError(f"{flag} {path}: no such file")


def _log(message: str) -> None:
    print(f"perceptrons: {message}", file=sys.stderr, flush=True)


def _set_type(config: Any, path: str) -> Any:
    """Type of dotted field ``path`` of the config *instance* ``config``: a nested config's
    fields are those of its actual class (``model`` is the chosen model's config)."""
    from perceptrons.config import Config, ConfigError

    head, _, rest = path.partition(".")
    names = {f.name for f in dataclasses.fields(config)}
    child = getattr(config, head) if head in names else None
    if rest and isinstance(child, Config):
        try:
            return _set_type(child, rest)
        except ConfigError as err:
            raise ConfigError(f"{head}.{err}") from None
    return field_type(type(config), path)


def _apply_set(config: CTRTrainConfig, item: str) -> CTRTrainConfig:
    """``config`` with one ``--set FIELD=VALUE`` applied (UsageError naming valid fields)."""
    from perceptrons.config import ConfigError, parse_value
    from perceptrons.ctr.pipeline import with_model

    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"--set {item!r}: expected FIELD=VALUE")
    try:
        value = parse_value(text, _set_type(config, key), key)
        if key == "model_name":
            return with_model(config, value)
        return config.replace_path(key, value)
    except ConfigError as err:
        raise UsageError(f"--set {item!r}: {err}") from None


def _train_config(args: argparse.Namespace) -> CTRTrainConfig:
    """The `CTRTrainConfig` of ``ctr train``: ``--config`` (or the defaults), the flags, then
    ``--set`` items in order."""
    from perceptrons.config import ConfigError
    from perceptrons.ctr.pipeline import CTRTrainConfig, ctr_model_names, with_model

    if args.config is not None:
        path = Path(args.config)
        if not path.is_file():
            raise UsageError(f"--config {path}: no such file")
        try:
            config = CTRTrainConfig.from_json(path.read_text())
        except ConfigError as err:
            raise UsageError(f"--config {path}: {err}") from None
    else:
        required = {"--train": args.train, "--format": args.format, "--model": args.model}
        missing = [flag for flag, value in required.items() if value is None]
        if missing:
            raise UsageError(
                f"the following arguments are required: {', '.join(missing)} (or --config FILE)"
            )
        config = CTRTrainConfig()
    if args.model is not None:
        names = ctr_model_names()
        if args.model not in names:
            raise UsageError(f"--model {args.model!r}: not a CTR model (valid: {', '.join(names)})")
    flags = {
        "train": args.train,
        "valid": args.valid,
        "format": args.format,
        "label": args.label,
        "categorical": _columns(args.categorical) or None,
        "numeric": _columns(args.numeric) or None,
        "multi_valued": _columns(args.multi_valued) or None,
        "type_column": args.type_column,
        "ignore": _columns(args.ignore) or None,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "skip_bad_rows": True if args.skip_bad_rows else None,
    }
    changes: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    fit = config.fit
    if args.epochs is not None:
        fit = fit.replace(max_steps=None, max_epochs=args.epochs)
    if args.lr is not None:
        fit = fit.replace_path("optimizer.lr", args.lr)
    if args.seed is not None:
        fit = fit.replace(seed=args.seed)
    changes["fit"] = fit
    if args.min_count is not None:
        changes["encoder"] = config.encoder.replace(min_count=args.min_count)
    try:
        if args.model is not None:
            config = with_model(config, args.model)
        config = config.replace(**changes)
    except ConfigError as err:
        raise UsageError(str(err)) from None
    for item in args.overrides:
        config = _apply_set(config, item)
    return config


# ---------------------------------------------------------------------- commands
def _cmd_train(args: argparse.Namespace) -> int:
    from perceptrons.ctr import pipeline

    config = _train_config(args)
    _input_file(config.train, "--train")
    _input_file(config.valid, "--valid")
    if config.fit.checkpoint_every is not None and args.run_dir is None:
        raise UsageError("fit.checkpoint_every: checkpoints need --run-dir DIR")
    try:
        pipeline.check_out_dir(args.out)
    except pipeline.ModelDirError as err:
        raise UsageError(f"--out {err}") from None
    trained = pipeline.train(
        config,
        out_dir=args.out,
        run_dir=args.run_dir,
        progress=False if args.quiet else None,
        log=_log,
    )
    print(json.dumps(trained.metrics), flush=True)
    return 0


def _load(directory: str) -> Any:
    from perceptrons.ctr import pipeline

    try:
        return pipeline.load(directory)
    except pipeline.ModelDirError as err:
        raise UsageError(f"--model-dir {err}") from None


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from perceptrons.ctr import pipeline
    from perceptrons.io import json_ready

    _input_file(args.data, "--data")
    trained = _load(args.model_dir)
    metrics = pipeline.evaluate(trained, args.data, skip_bad_rows=args.skip_bad_rows, log=_log)
    print(json.dumps(json_ready(metrics)), flush=True)
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from perceptrons.ctr import pipeline

    _input_file(args.data, "--data")
    out = Path(args.out)
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: the folder {out.parent} does not exist")
    if out.is_dir():
        raise UsageError(f"--out {out}: is a folder; expected a CSV file name")
    trained = _load(args.model_dir)
    pipeline.predict(trained, args.data, out, skip_bad_rows=args.skip_bad_rows, log=_log)
    return 0


DATA_ERRORS: tuple[type[BaseException], ...] = (
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
