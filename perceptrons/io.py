"""Atomic file writes and pickle-free tensor/JSON storage.

Everything the library writes goes through `atomic_path` (temporary file in the same folder,
fsync, then ``os.replace``; `atomic_write` opens it as a stream), so a killed process leaves
either the old file or the new one, never a half-written file, and every file gets the mode
``open()`` would give it (0666 minus the umask). Folders written as a whole (checkpoints, model
folders, study reports) are built in `make_temp_dir` and renamed into place by `replace_dir`.
Tensors are stored with safetensors and metadata as JSON, so loading never unpickles
arbitrary objects.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import torch
from safetensors.torch import load_file, save_file

__all__ = [
    "atomic_path",
    "atomic_write",
    "current_umask",
    "dir_mode",
    "file_mode",
    "fsync_dir",
    "json_ready",
    "load_json",
    "load_tensors",
    "make_temp_dir",
    "replace_dir",
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


def file_mode() -> int:
    """Permissions of a new file made by ``open(path, "w")``: 0666 minus the umask."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """Permissions of a new folder made by ``os.mkdir``: 0777 minus the umask."""
    return 0o777 & ~current_umask()


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make the entries (renames, new files) of folder ``path`` durable; best effort, since
    not every platform can open a folder."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """The one atomic-write routine: yield a temporary path next to ``path``; on success
    fsync it and rename it onto ``path``.

    Every writer of the library goes through it (`atomic_write`, `save_json`,
    `save_tensors`, figures, CSV and HTML reports), so a killed process leaves either the old
    file or the new one, never a half-written file. On an exception the temporary file is
    removed and ``path`` is untouched. The file gets the permissions an ordinary
    ``open(path, "w")`` would leave: those of the file it replaces, else 0666 minus the umask
    (not ``mkstemp``'s private 0600).

    Yields:
        The temporary path to write (it exists, empty); write it by name, e.g. with a
        library's ``save_file(tmp)``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        permissions = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        permissions = file_mode()
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        os.chmod(tmp, permissions)
        yield tmp
        os.chmod(tmp, permissions)  # again: a writer may have replaced the file (safetensors)
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` (``mode`` ``"w"`` or ``"wb"``); on success
    rename it onto ``path``. See `atomic_path` for the guarantees and permissions."""
    with atomic_path(path) as tmp, open(tmp, mode) as handle:
        yield handle
        handle.flush()


def make_temp_dir(parent: str | os.PathLike[str], prefix: str) -> Path:
    """A new hidden folder in ``parent`` with ordinary permissions (0777 minus the umask,
    not ``mkdtemp``'s private 0700), to be renamed into place when complete."""
    Path(parent).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    os.chmod(tmp, dir_mode())
    return tmp


def replace_dir(tmp: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Put the complete folder ``tmp`` in place of ``dest`` with renames: an existing
    ``dest`` is first renamed aside (and deleted afterwards), so that ``dest`` is at every
    moment either the old complete folder or the new one (or, between the two renames,
    absent, with the old one still complete beside it)."""
    tmp, dest = Path(tmp), Path(dest)
    fsync_dir(tmp)
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{time.time_ns()}")
        os.rename(dest, old)
    try:
        os.rename(tmp, dest)
    except BaseException:
        if old is not None and not dest.exists():
            os.rename(old, dest)
        raise
    fsync_dir(dest.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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
    """Atomically write a flat ``name -> tensor`` mapping as safetensors (`atomic_path`).

    Tensors are made contiguous and detached; shared storage is copied.
    """
    clean = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(clean, tmp, metadata=metadata)


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
