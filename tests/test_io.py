"""Atomic writes: all or nothing, ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from perceptrons.io import atomic_write, load_json, save_json


def test_atomic_write_replaces_whole_or_leaves_the_old_file(tmp_path) -> None:
    path = tmp_path / "out.json"
    save_json(path, {"a": 1})
    with pytest.raises(RuntimeError), atomic_write(path) as handle:
        handle.write('{"a": 2')  # half-written
        raise RuntimeError("interrupted")
    assert load_json(path) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary left behind


def test_atomic_write_uses_the_umask_not_private_permissions(tmp_path) -> None:
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "x.txt") as handle:
            handle.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "x.txt").stat().st_mode) == 0o644


def test_atomic_write_keeps_the_mode_of_the_file_it_replaces(tmp_path) -> None:
    path = tmp_path / "secret.json"
    save_json(path, {"a": 1})
    path.chmod(0o600)
    save_json(path, {"a": 2})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and load_json(path) == {"a": 2}
