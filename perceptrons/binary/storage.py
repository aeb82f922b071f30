"""Saving and loading packed models as safetensors: `save_packed`, `load_packed`.

The file holds the packed model's ``state_dict()`` (int64 weight words, floating scales,
biases and every other tensor; no pickle) and, in the safetensors metadata, the format tag and
a JSON description of each packed module (its path in the model and its constructor
arguments). It is written atomically (`perceptrons.io.save_tensors`). A packed model stores
about ``1 / 32`` of the bytes of its binary layers' FP32 weights, so the file is smaller than
the FP32 ``state_dict``'s by about `perceptrons.binary.model_size_report`'s ratio (plus the
few hundred bytes of the header).

Loading needs the architecture: `load_packed` takes a *template*, a module of the same
architecture (typically a freshly built float model, e.g. ``create_model("bivit", config)``,
whose weights are discarded), copies it, puts empty packed modules of the recorded sizes at
the recorded paths and loads every tensor (strictly: a missing or unexpected tensor raises).
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import torch
from torch import nn

from perceptrons.binary.kernels import BackendName
from perceptrons.binary.modules import PackedBinaryAttention, PackedBinaryLinear
from perceptrons.io import load_tensors, save_tensors

__all__ = ["FORMAT", "load_packed", "save_packed"]

FORMAT = "perceptrons.binary.packed/1"
"""The ``format`` metadata entry of files written by `save_packed`."""


def _describe(model: nn.Module) -> dict[str, dict[str, Any]]:
    """``path -> constructor arguments`` of the outermost packed modules of ``model``."""
    found: dict[str, dict[str, Any]] = {}
    for path, module in model.named_modules():
        if any(path.startswith(f"{outer}.") or outer == "" for outer in found):
            continue  # inside a packed attention (or a packed root)
        if isinstance(module, PackedBinaryAttention):
            found[path] = {
                "kind": "attention",
                "embed_dim": module.embed_dim,
                "num_heads": module.num_heads,
                "binarizer": module.binarizer,
                "fraction": module.fraction,
                "bias": module.qkv.bias is not None,
                "dtype": str(module.qkv.scales.dtype).removeprefix("torch."),
            }
        elif isinstance(module, PackedBinaryLinear):
            found[path] = {
                "kind": "linear",
                "in_features": module.in_features,
                "out_features": module.out_features,
                "bias": module.bias is not None,
                "binarize_input": module.binarize_input,
                "dtype": str(module.scales.dtype).removeprefix("torch."),
            }
    return found


def save_packed(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Write a packed model (`perceptrons.binary.to_packed`) to a safetensors file, atomically.

    Args:
        model: The packed model (a model with no packed module is saved as it is).
        path: Destination file (folders are created).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    metadata = {"format": FORMAT, "packed_modules": json.dumps(_describe(model))}
    save_tensors(path, dict(model.state_dict()), metadata=metadata)


def _metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(os.fspath(path), framework="pt") as handle:
        return handle.metadata() or {}


def _build(spec: dict[str, Any], backend: BackendName, threads: int | None) -> nn.Module:
    dtype = getattr(torch, spec["dtype"])
    if spec["kind"] == "attention":
        return PackedBinaryAttention(
            spec["embed_dim"],
            spec["num_heads"],
            binarizer=spec["binarizer"],
            fraction=spec["fraction"],
            bias=spec["bias"],
            backend=backend,
            threads=threads,
            dtype=dtype,
        )
    return PackedBinaryLinear(
        spec["in_features"],
        spec["out_features"],
        bias=spec["bias"],
        binarize_input=spec["binarize_input"],
        backend=backend,
        threads=threads,
        dtype=dtype,
    )


def load_packed(
    path: str | os.PathLike[str],
    template: nn.Module,
    *,
    backend: BackendName = "auto",
    threads: int | None = None,
) -> nn.Module:
    """Read a file of `save_packed` into a copy of ``template`` (which is not modified).

    Args:
        path: The safetensors file.
        template: A module of the saved model's architecture (float or packed; its tensors
            are replaced).
        backend: Kernel backend of the loaded packed modules.
        threads: Threads of the numba backend.

    Returns:
        The packed model, in eval mode.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a file of `save_packed`, a recorded module path the template lacks,
            or tensors that do not match the architecture (missing, unexpected, mis-shaped).
    """
    if not isinstance(template, nn.Module):
        raise TypeError(f"template: expected an nn.Module, got {type(template).__name__}")
    tensors = load_tensors(path)
    metadata = _metadata(path)
    if metadata.get("format") != FORMAT:
        raise ValueError(
            f"{path}: not a packed model file (format {metadata.get('format')!r}, expected "
            f"{FORMAT!r})"
        )
    specs: dict[str, dict[str, Any]] = json.loads(metadata["packed_modules"])
    model = copy.deepcopy(template)
    if "" in specs:
        model = _build(specs[""], backend, threads)
    else:
        for module_path, spec in specs.items():
            parent_path, _, name = module_path.rpartition(".")
            try:
                parent = model.get_submodule(parent_path)
                parent.get_submodule(name)
            except AttributeError:
                raise ValueError(
                    f"{path}: the template has no module {module_path!r} (saved packed "
                    f"{spec['kind']}); pass a model of the saved architecture"
                ) from None
            setattr(parent, name, _build(spec, backend, threads))
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path}: tensors do not match the template ({err})") from None
    return model.eval()
