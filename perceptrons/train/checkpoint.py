"""Pickle-free, atomic, resumable checkpoints.

Layout of a checkpoint root (``out_dir/checkpoints``)::

    step_00000070/
        model.safetensors        model.state_dict()
        optimizer.safetensors    tensors of optimizer.state_dict()["state"]
        optimizer.json           everything else of optimizer.state_dict() (tensors by name)
        state.safetensors        extra tensors (fit: RNG states, log-window accumulators)
        state.json               step, scheduler state, extra JSON state, list of files
    step_00000077/
    latest                       name of the newest checkpoint (for people and tools)

A checkpoint is written into a hidden temporary directory (``.tmp-step_...``) and renamed to
its final name only when every file is on disk, so a directory named ``step_*`` is always
complete; a killed writer leaves at most a temporary directory, which `clean_checkpoint_dir`
removes. Loading reads only safetensors and JSON: nothing is ever unpickled.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from perceptrons.io import (
    atomic_write,
    fsync_dir,
    load_json,
    load_tensors,
    make_temp_dir,
    save_json,
    save_tensors,
)

__all__ = [
    "Checkpoint",
    "capture_rng_state",
    "clean_checkpoint_dir",
    "delete_checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "restore_rng_state",
    "save_checkpoint",
    "truncate_metrics",
]

_STEP_DIR = re.compile(r"^step_(\d{8,})$")
_TENSOR_REF = "__tensor__"


@dataclass
class Checkpoint:
    """What `load_checkpoint` read besides the model, optimiser and scheduler it restored.

    Attributes:
        path: The checkpoint directory.
        step: Number of completed optimiser steps when it was written.
        state: The extra JSON state given to `save_checkpoint`.
        tensors: The extra tensors given to `save_checkpoint` (on CPU).
    """

    path: Path
    step: int
    state: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, Tensor] = field(default_factory=dict)


# ---------------------------------------------------------------------- listing
def list_checkpoints(directory: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """Complete checkpoints ``(step, path)`` under ``directory``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for child in directory.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(directory: str | os.PathLike[str]) -> Path | None:
    """Newest complete checkpoint under ``directory`` (None if there is none).

    Temporary directories of interrupted writes are ignored. The newest ``step_*`` directory is
    used rather than the ``latest`` pointer, which lags behind it when a writer was killed
    between renaming the directory and updating the pointer.
    """
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


def clean_checkpoint_dir(directory: str | os.PathLike[str]) -> list[Path]:
    """Remove what interrupted writers left under ``directory``; return the removed paths.

    Only call this when no other process writes checkpoints into ``directory``.
    """
    directory = Path(directory)
    removed = []
    if not directory.is_dir():
        return removed
    for child in directory.iterdir():
        if child.name.startswith(".tmp-") and child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
        elif child.name.startswith(".latest.") and child.name.endswith(".tmp"):
            with contextlib.suppress(FileNotFoundError):
                child.unlink()
            removed.append(child)
    return removed


def delete_checkpoint(path: str | os.PathLike[str]) -> None:
    """Delete a checkpoint directory: renamed to a temporary name first, so that a killed
    process never leaves a half-deleted ``step_*`` directory."""
    path = Path(path)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".tmp-delete-") as trash:
        os.rename(path, Path(trash) / path.name)


# ---------------------------------------------------------------------- optimiser state
def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors and JSON (tensors referenced by name)."""
    tensors: dict[str, Tensor] = {}
    per_param: dict[str, dict[str, Any]] = {}
    for param_id, entries in state["state"].items():
        plain = {}
        for key, value in entries.items():
            if isinstance(value, Tensor):
                name = f"state/{param_id}/{key}"
                tensors[name] = value
                plain[key] = {_TENSOR_REF: name}
            else:
                plain[key] = value
        per_param[str(param_id)] = plain
    return tensors, {"state": per_param, "param_groups": state["param_groups"]}


def _match_types(loaded: Any, template: Any) -> Any:
    """Turn JSON lists back into tuples where the live optimiser uses tuples (e.g. betas)."""
    if isinstance(template, tuple) and isinstance(loaded, list):
        return tuple(loaded)
    return loaded


def _unflatten_optimizer(
    plain: dict[str, Any], tensors: dict[str, Tensor], optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for param_id, entries in plain["state"].items():
        restored = {}
        for key, value in entries.items():
            if isinstance(value, dict) and set(value) == {_TENSOR_REF}:
                restored[key] = tensors[value[_TENSOR_REF]]
            else:
                restored[key] = value
        state[int(param_id)] = restored
    groups = []
    templates = optimizer.param_groups
    for i, group in enumerate(plain["param_groups"]):
        template = templates[i] if i < len(templates) else {}
        groups.append({k: _match_types(v, template.get(k)) for k, v in group.items()})
    return {"state": state, "param_groups": groups}


# ---------------------------------------------------------------------- RNG state
def capture_rng_state() -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Current torch (CPU and initialised CUDA), numpy and python global RNG states.

    Returns:
        ``(tensors, plain)``: torch states as uint8 tensors named ``rng/torch`` and
        ``rng/cuda/<i>``; numpy's and python's states as JSON values.
    """
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = cuda_state
    # The legacy global numpy generator is what user code may draw from: save it as it is.
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    version, internal, gauss_next = random.getstate()
    plain = {
        "numpy": [name, keys.tolist(), pos, has_gauss, cached],
        "python": [version, list(internal), gauss_next],
    }
    return tensors, plain


def restore_rng_state(tensors: dict[str, Tensor], plain: dict[str, Any]) -> None:
    """Inverse of `capture_rng_state` (CUDA states only when CUDA is available)."""
    torch.set_rng_state(tensors["rng/torch"])
    if torch.cuda.is_available():
        for name, cuda_state in tensors.items():
            if name.startswith("rng/cuda/"):
                index = int(name.rsplit("/", 1)[1])
                if index < torch.cuda.device_count():
                    torch.cuda.set_rng_state(cuda_state, index)
    name, keys, pos, has_gauss, cached = plain["numpy"]
    keys = np.asarray(keys, dtype=np.uint32)
    np.random.set_state((name, keys, pos, has_gauss, cached))  # noqa: NPY002
    version, internal, gauss_next = plain["python"]
    random.setstate((version, tuple(internal), gauss_next))


# ---------------------------------------------------------------------- save / load
def save_checkpoint(
    directory: str | os.PathLike[str],
    step: int,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    state: dict[str, Any] | None = None,
    tensors: dict[str, Tensor] | None = None,
    keep: int | None = None,
) -> Path:
    """Atomically write checkpoint ``directory/step_<step>`` and point ``latest`` at it.

    Args:
        directory: Checkpoint root, e.g. ``out_dir / "checkpoints"``.
        step: Number of completed optimiser steps (names the directory).
        model: Its ``state_dict()`` goes to ``model.safetensors``.
        optimizer: Its ``state_dict()`` goes to ``optimizer.safetensors`` + ``optimizer.json``.
        scheduler: A scheduler with a JSON-able ``state_dict()`` (e.g. `LambdaLR`).
        state: Extra JSON state.
        tensors: Extra named tensors.
        keep: Keep only the newest ``keep`` checkpoints (None: keep all).

    Returns:
        The checkpoint directory.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    tmp = make_temp_dir(root, f".tmp-{final.name}-")
    try:
        files = ["model.safetensors"]
        save_tensors(tmp / "model.safetensors", dict(model.state_dict()))
        if optimizer is not None:
            opt_tensors, opt_plain = _flatten_optimizer(optimizer.state_dict())
            save_tensors(tmp / "optimizer.safetensors", opt_tensors)
            save_json(tmp / "optimizer.json", opt_plain, indent=None)
            files += ["optimizer.safetensors", "optimizer.json"]
        save_tensors(tmp / "state.safetensors", dict(tensors or {}))
        files.append("state.safetensors")
        meta = {
            "format": "perceptrons.checkpoint/1",
            "step": step,
            "files": files,
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "state": state or {},
        }
        save_json(tmp / "state.json", meta, indent=None)  # written last
        fsync_dir(tmp)
        if final.exists():
            delete_checkpoint(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(root)
    with atomic_write(root / "latest") as handle:
        handle.write(final.name + "\n")
    if keep is not None:
        for _, old in list_checkpoints(root)[:-keep]:
            if old != final:
                delete_checkpoint(old)
    return final


def _require_file(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing checkpoint file")
    return path


def load_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint` and restore what is given.

    Args:
        path: A checkpoint directory, or a checkpoint root (its newest checkpoint is used).
        model: Receives the weights (``load_state_dict``, strict).
        optimizer: Receives the optimiser state (needs one in the checkpoint).
        scheduler: Receives the scheduler state (needs one in the checkpoint).

    Returns:
        The checkpoint's step, extra JSON state and extra tensors.

    Raises:
        FileNotFoundError: no checkpoint at ``path``, or a file of it is missing (named).
        ValueError: a file is not valid JSON/safetensors, has no optimiser/scheduler state
            while one was asked for, or its optimiser state does not fit ``optimizer``
            (other parameter groups; the message names both).
    """
    path = Path(path)
    if not (path / "state.json").exists() and list_checkpoints(path):
        path = list_checkpoints(path)[-1][1]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such checkpoint directory")
    meta = load_json(_require_file(path / "state.json"))
    if not isinstance(meta, dict) or meta.get("format") != "perceptrons.checkpoint/1":
        raise ValueError(f"{path / 'state.json'}: not a perceptrons checkpoint")
    files = {name: _require_file(path / name) for name in meta["files"]}
    if model is not None:
        model.load_state_dict(load_tensors(files["model.safetensors"]))
    if optimizer is not None:
        if "optimizer.json" not in files:
            raise ValueError(f"{path}: checkpoint has no optimizer state")
        plain = load_json(files["optimizer.json"])
        opt_tensors = load_tensors(files["optimizer.safetensors"])
        # implementation flags are the caller's choice, not state: torch's load_state_dict
        # would copy the checkpoint's (e.g. fused=True into a non-fused optimiser)
        flags = ("fused", "foreach", "capturable", "differentiable")
        chosen = [{k: g[k] for k in flags if k in g} for g in optimizer.param_groups]
        try:
            optimizer.load_state_dict(_unflatten_optimizer(plain, opt_tensors, optimizer))
        except (ValueError, KeyError, IndexError) as error:
            saved = [len(g.get("params", ())) for g in plain.get("param_groups", ())]
            raise ValueError(
                f"{files['optimizer.json']}: the optimiser state does not fit this optimiser "
                f"({error}); the checkpoint has parameter groups of sizes {saved}, the "
                f"optimiser {[len(g['params']) for g in optimizer.param_groups]}: it was "
                "written by a run that grouped the parameters differently (another model, "
                "optimiser or no-weight-decay grouping); start a new run, or load the model "
                "weights alone (load_checkpoint(path, model=...))"
            ) from error
        for group, kept in zip(optimizer.param_groups, chosen, strict=True):
            group.update(kept)
    if scheduler is not None:
        if meta["scheduler"] is None:
            raise ValueError(f"{path / 'state.json'}: checkpoint has no scheduler state")
        scheduler.load_state_dict(meta["scheduler"])
    return Checkpoint(
        path=path,
        step=int(meta["step"]),
        state=meta["state"],
        tensors=load_tensors(files["state.safetensors"]),
    )


def truncate_metrics(path: Path, step: int) -> list[dict[str, Any]]:
    """Records of ``metrics.jsonl`` with ``step <= step``; rewrites the file (atomically) to
    exactly those, dropping later records and a line cut short by a killed writer."""
    if not path.exists():
        return []
    kept, changed = [], False
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            changed = True
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            if record["step"] <= step:
                kept.append(record)
                continue
        changed = True
    if changed:
        with atomic_write(path) as handle:
            handle.writelines(json.dumps(r, allow_nan=False) + "\n" for r in kept)
    return kept
