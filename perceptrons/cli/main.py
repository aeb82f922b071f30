"""The ``perceptrons`` command (also ``python -m perceptrons``).

Usage::

    perceptrons [--plugin MODULE ...] [--debug] COMMAND ...
    perceptrons list [models|studies]
    perceptrons info NAME
    perceptrons reproduce NAME [NAME ...]|all [--budget quick|full] [--seed N] [--out DIR]
                                   [--set FIELD=VALUE ...] [--strict]
    perceptrons ctr train|evaluate|predict ...     (see `perceptrons.cli.ctr`)

``reproduce`` runs the named studies in order (``all``: every registered study, sorted by name).
``--set`` takes the fields of the study's config (``perceptrons info NAME`` lists them), dotted
for nested configs (``--set fit.max_epochs=5``); values are parsed by the field's type (JSON, or
comma-separated for tuples). With several studies, every one of them must have the field.

``--plugin MODULE`` imports a Python module before the command runs, so that models and studies
it registers (``MODELS.register``, ``register_study``) can be listed and reproduced like the
built-in ones.

Exit status: 0 when every study ran (claims may fail, and are reported), 1 when a study raised
(or, with ``--strict``, a claim failed) or a data error (a malformed file or saved model, named
on one line), 2 for a usage error: an unknown command, name, budget or field, or a value of
the wrong type, each reported on one line that says what is valid. Any other exception is a
bug and shows its traceback; ``--debug`` re-raises every error, usage and data errors and a
study's own exception included.

The parser imports neither torch nor any study: ``perceptrons --help`` starts at once, and
``list`` / ``info`` import the registered configs but not matplotlib or scikit-learn.

This module is the only place in the library that seeds the global random generators.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import random
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from perceptrons.config import Config, ConfigError, field_docs, field_types, parse_value
from perceptrons.registry import MODELS, STUDIES, Entry
from perceptrons.studies.base import BUDGETS, Study

__all__ = ["field_type", "main"]


class UsageError(Exception):
    """A command-line mistake; reported on one line with exit status 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, status 2
        raise UsageError(message)


def _build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="perceptrons", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (it may register models and studies)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="re-raise every error with its traceback (usage, data and study errors too)",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=Parser, metavar="{list,info,reproduce,ctr}"
    )
    p_list = sub.add_parser("list", help="list registered models and studies")
    p_list.add_argument("what", nargs="?", choices=["models", "studies"])
    p_info = sub.add_parser("info", help="config fields, defaults and paper of a model or study")
    p_info.add_argument("name")
    p_rep = sub.add_parser("reproduce", help="run a study (or all) and write its report")
    p_rep.add_argument("names", nargs="+", metavar="name", help="study names, or 'all'")
    p_rep.add_argument("--budget", default="quick", choices=list(BUDGETS))
    p_rep.add_argument("--seed", type=int, default=None, help="override the preset's seed")
    p_rep.add_argument("--out", default="reports", help="report folder (default: reports)")
    p_rep.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a config field (repeatable)",
    )
    p_rep.add_argument("--strict", action="store_true", help="exit 1 when a claim fails")
    from perceptrons.cli import ctr  # imported here: it imports this module

    ctr.add_parser(sub)
    return parser


# ------------------------------------------------------------------------- helpers
def field_type(config_cls: type[Config], path: str) -> Any:
    """Type annotation of dotted field ``path`` of ``config_cls`` (ConfigError if unknown)."""
    head, _, rest = path.partition(".")
    hints = field_types(config_cls)
    if head not in hints:
        raise ConfigError(
            f"{head}: unknown field of {config_cls.__name__}; valid fields: "
            + ", ".join(f.name for f in dataclasses.fields(config_cls))
        )
    tp = hints[head]
    if rest:
        if not (isinstance(tp, type) and issubclass(tp, Config)):
            raise ConfigError(f"{head}: is not a nested config, cannot set {path!r}")
        return field_type(tp, rest)
    return tp


def _parse_overrides(study: Study, items: Sequence[str]) -> list[tuple[str, Any]]:
    out = []
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {item!r}: expected FIELD=VALUE")
        try:
            tp = field_type(study.config, key.strip())
            value = parse_value(text, tp, key.strip())
        except ConfigError as err:
            raise UsageError(f"--set {item!r} for study {study.name!r}: {err}") from None
        out.append((key.strip(), value))
    return out


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - users' code may draw from the legacy global RNG
    torch.manual_seed(seed)


def _describe_fields(config_cls: type[Config], defaults: Config, prefix: str = "") -> list[str]:
    docs = field_docs(config_cls)
    lines = []
    for f in dataclasses.fields(config_cls):
        value = getattr(defaults, f.name)
        name = prefix + f.name
        if isinstance(value, Config):
            lines.append(f"  {name}: {type(value).__name__} — {docs.get(f.name, '')}")
            lines += _describe_fields(type(value), value, prefix=name + ".")
            continue
        tp = field_types(config_cls)[f.name]
        tname = getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
        lines.append(f"  {name} ({tname}) = {value!r}")
        if docs.get(f.name):
            lines.append(f"      {docs[f.name]}")
    return lines


# ------------------------------------------------------------------------- commands
def _cmd_list(args: argparse.Namespace) -> int:
    groups = [("models", MODELS), ("studies", STUDIES)]
    for title, registry in groups:
        if args.what not in (None, title):
            continue
        print(f"{title}:")
        for entry in registry.entries():
            print(f"  {entry.name:<24} {entry.summary}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    entry: Entry[Any]
    if args.name in STUDIES:
        entry, kind = STUDIES.get(args.name), "study"
    elif args.name in MODELS:
        entry, kind = MODELS.get(args.name), "model"
    else:
        names = STUDIES.names() + MODELS.names()
        import difflib

        close = difflib.get_close_matches(args.name, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UsageError(f"unknown model or study {args.name!r}{hint} (valid: {', '.join(names)})")
    print(f"{kind} {entry.name}: {entry.summary}")
    if entry.paper:
        print(f"paper: {entry.paper}")
    if entry.modules:
        print(f"implemented in: {', '.join(entry.modules)}")
    if entry.docs:
        print(f"docs: {entry.docs}")
    print(f"config: {entry.config.__name__} (fields, type, default)")
    print("\n".join(_describe_fields(entry.config, entry.make_config())))
    if kind == "study":
        study: Study = entry.obj
        from perceptrons.studies.base import config_differences

        for budget, preset in study.presets.items():
            diff = config_differences(preset, entry.config())
            shown = ", ".join(f"{k}={v!r}" for k, v in diff.items()) or "defaults"
            print(f"preset {budget}: {shown}")
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    names: list[str] = []
    for name in args.names:
        if name == "all":
            wanted = list(STUDIES.names())
        elif name in STUDIES:
            wanted = [name]
        else:
            raise UsageError(STUDIES.unknown_message(name) + " or 'all'")
        names += [n for n in wanted if n not in names]
    plans = []
    for name in names:
        study: Study = STUDIES.get(name).obj
        overrides = _parse_overrides(study, args.overrides)
        seed = args.seed if args.seed is not None else study.preset(args.budget).seed
        try:
            from perceptrons.studies.runner import resolve_config

            resolve_config(study, args.budget, seed, overrides)
        except ValueError as err:
            raise UsageError(f"study {name!r}: {err}") from None
        plans.append((name, seed, overrides))

    from perceptrons.studies.runner import run_study

    errored = failed = 0
    for name, seed, overrides in plans:
        print(f"[{name}] running budget={args.budget} seed={seed} ...", flush=True)
        _seed_everything(seed)
        outcome = run_study(
            name,
            budget=args.budget,
            seed=seed,
            out=args.out,
            overrides=overrides,
            reraise=args.debug,
        )
        if outcome.status == "errored":
            errored += 1
            print(
                f"[{name}] ERRORED after {outcome.seconds:.1f} s: {outcome.error} "
                f"(traceback: {outcome.out_dir / 'traceback.txt'})",
                flush=True,
            )
            continue
        assert outcome.result is not None
        claims = outcome.result.claims
        npass = sum(c.passed for c in claims)
        failed += npass < len(claims)
        print(
            f"[{name}] {outcome.status}: {npass}/{len(claims)} claims passed "
            f"in {outcome.seconds:.1f} s -> {outcome.out_dir}",
            flush=True,
        )
        for c in claims:
            mark = "pass" if c.passed else "FAIL"
            print(
                f"    {mark}  {c.id}: measured {c.measured:.6g} {c.comparison} {c.threshold:.6g}",
                flush=True,
            )
    print(f"report: {args.out}/index.html", flush=True)
    if errored:
        print(f"{errored} study(ies) errored", file=sys.stderr)
        return 1
    if failed and args.strict:
        print(f"{failed} study(ies) with failed claims (--strict)", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (see the module docstring)."""
    parser = _build_parser()
    debug = "--debug" in (sys.argv[1:] if argv is None else list(argv))
    try:
        args = parser.parse_args(argv)
        for module in args.plugin:
            try:
                importlib.import_module(module)
            except ImportError as err:
                raise UsageError(f"--plugin {module!r}: cannot import ({err})") from None
        from perceptrons.cli import ctr

        command = {
            "list": _cmd_list,
            "info": _cmd_info,
            "reproduce": _cmd_reproduce,
            "ctr": ctr.run,
        }
        return command[args.command](args)
    except UsageError as err:
        if debug:
            raise
        print(f"perceptrons: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
