"""Save and load registered models: ``model.json`` (name + config) and ``model.safetensors``.

Layout of a saved model directory::

    model.json         {"format_version": 1, "model": "mlp",
                        "config": {"type": "MLPConfig", "params": {...}}}
    model.safetensors  the state dict (parameters and buffers), flat name -> tensor

Loading rebuilds the model through the registry from the stored config and then loads the
tensors strictly; nothing is unpickled. Both files are written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from perceptrons.config import ConfigError
from perceptrons.io import load_json, load_tensors, save_json, save_tensors
from perceptrons.registry import MODELS, model_name_of

__all__ = ["FORMAT_VERSION", "load_model", "save_model"]

FORMAT_VERSION = 1
CONFIG_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"


def save_model(model: nn.Module, directory: str | os.PathLike[str]) -> Path:
    """Write ``model.json`` and ``model.safetensors`` into ``directory`` (created if needed).

    Args:
        model: A registered model (an ``nn.Module`` with a ``config`` attribute).
        directory: Destination folder; existing files of the same names are replaced.

    Returns:
        The directory.

    Raises:
        ValueError: the model has no ``config``, or its class is not the registered class of its
            config (it could not be rebuilt by `load_model`).
        KeyError: no registered model uses the model's config class.
    """
    config = getattr(model, "config", None)
    if config is None:
        raise ValueError(f"{type(model).__name__}: has no config attribute; cannot save it")
    name = model_name_of(config)
    entry = MODELS.get(name)
    if type(model) is not entry.obj:
        raise ValueError(
            f"{type(model).__name__}: registry name {name!r} builds "
            f"{getattr(entry.obj, '__name__', entry.obj)!r}, not this class; load_model could "
            "not rebuild it"
        )
    directory = Path(directory)
    # Weights first: a model.json present means the weights beside it are complete.
    save_tensors(directory / WEIGHTS_FILE, dict(model.state_dict()), {"model": name})
    save_json(
        directory / CONFIG_FILE,
        {
            "format_version": FORMAT_VERSION,
            "model": name,
            "config": {"type": type(config).__name__, "params": config.to_dict()},
        },
    )
    return directory


def load_model(directory: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> Any:
    """Rebuild a model saved by `save_model`.

    The model is built from the stored config through the registry, converted to the stored
    floating dtype, moved to ``device``, and its state dict is loaded strictly. It is returned in
    training mode, like a freshly built module.

    Args:
        directory: Folder holding ``model.json`` and ``model.safetensors``.
        device: Device of the loaded parameters.

    Returns:
        The model (an ``nn.Module`` with a ``config`` attribute).

    Raises:
        FileNotFoundError: a file is missing (the message names it).
        ValueError: invalid JSON, an unsupported format version, an invalid config, or tensors
            whose names or shapes do not match the model (the message names the file).
        KeyError: the stored model name is not registered (the message names the file).
    """
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    for path in (config_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file (not a saved model directory?)")
    data = load_json(config_path)
    if not isinstance(data, dict) or not {"format_version", "model", "config"} <= set(data):
        raise ValueError(
            f"{config_path}: expected an object with keys format_version, model, config"
        )
    if data["format_version"] != FORMAT_VERSION:
        raise ValueError(
            f"{config_path}: unsupported format_version {data['format_version']!r} "
            f"(this version reads {FORMAT_VERSION})"
        )
    name = data["model"]
    if not isinstance(name, str) or name not in MODELS:
        raise KeyError(f"{config_path}: {MODELS.unknown_message(str(name))}")
    entry = MODELS.get(name)
    try:
        config = entry.config.from_dict(data["config"])
    except ConfigError as err:
        raise ValueError(f"{config_path}: invalid config for model {name!r}: {err}") from None

    # A fixed generator: building must not consume torch's global random state.
    model = entry.obj(config, generator=torch.Generator().manual_seed(0))
    tensors = load_tensors(weights_path, device=str(device))
    _check_state(model, tensors, weights_path)
    dtypes = {t.dtype for t in tensors.values() if t.is_floating_point()}
    if len(dtypes) == 1:
        model.to(dtype=dtypes.pop())
    model.to(device)
    model.load_state_dict(tensors, strict=True)
    return model


def _check_state(model: nn.Module, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Raise `ValueError` naming ``path`` unless names and shapes match the model's state."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    problems = []
    if missing:
        problems.append("missing tensors: " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected tensors: " + ", ".join(unexpected))
    for key in sorted(set(expected) & set(tensors)):
        want, got = tuple(expected[key].shape), tuple(tensors[key].shape)
        if want != got:
            problems.append(f"{key}: expected shape {want}, got {got}")
    if problems:
        raise ValueError(f"{path}: does not match the model's state: " + "; ".join(problems))
