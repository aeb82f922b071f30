"""Atomic file writes and pickle-free tensor/JSON storage.

Everything the library writes goes through `atomic_write` (temporary file in the same folder,
flush + fsync, then ``os.replace``), so a killed process leaves either the old file or the new
one, never a half-written file. Tensors are stored with safetensors and metadata as JSON, so
loading never unpickles arbitrary objects.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import torch
from safetensors.torch import load_file, save_file

__all__ = [
    "atomic_write",
    "current_umask",
    "json_ready",
    "load_json",
    "load_tensors",
    "save_json",
    "save_tensors",
]


def current_umask() -> int:
    """The process umask: from ``/proc/self/status`` where there is one (Linux), else by
    setting and restoring it (Python has no getter)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success rename it onto ``path``.

    On an exception the temporary file is removed and ``path`` is untouched. The file gets the
    permissions an ordinary ``open(path, "w")`` would leave: those of the file it replaces,
    else 0666 minus the umask (not ``mkstemp``'s private 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        permissions = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        permissions = 0o666 & ~current_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, permissions)
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def json_ready(value: Any) -> Any:
    """Convert tensors, numpy scalars, tuples and non-finite floats to plain JSON values.

    Non-finite floats become ``None`` (JSON has no NaN).
    """
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, torch.Tensor):
        return json_ready(value.tolist())
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return json_ready(value.item())
    if hasattr(value, "tolist") and callable(value.tolist):
        return json_ready(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def save_json(path: str | os.PathLike[str], data: Any, *, indent: int | None = 2) -> None:
    """Atomically write ``data`` as strict JSON (no NaN)."""
    text = json.dumps(json_ready(data), indent=indent, allow_nan=False, sort_keys=False)
    with atomic_write(path) as handle:
        handle.write(text + "\n")


def load_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file.

    Raises:
        ValueError: the file is not valid JSON; the message names the file and line.
    """
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: invalid JSON at line {err.lineno}: {err.msg}") from None


def save_tensors(
    path: str | os.PathLike[str],
    tensors: dict[str, torch.Tensor],
    metadata: dict[str, str] | None = None,
) -> None:
    """Atomically write a flat ``name -> tensor`` mapping as safetensors.

    Tensors are made contiguous and detached; shared storage is copied.
    """
    path = Path(path)
    clean = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file(clean, tmp, metadata=metadata)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def load_tensors(path: str | os.PathLike[str], device: str = "cpu") -> dict[str, torch.Tensor]:
    """Read a safetensors file written by `save_tensors`.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a valid safetensors file (message names it).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return load_file(str(path), device=device)
    except Exception as err:  # safetensors raises its own error types
        raise ValueError(f"{path}: not a valid safetensors file ({err})") from None
