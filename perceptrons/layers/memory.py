"""Deterministic memory accounting: the tensors autograd saves for backward.

Wall-clock peak memory on a CPU is noisy (allocator caching, other processes), but what a
forward pass *saves for backward* is exact and reproducible. Both functions run ``fn(*args,
**kwargs)`` once with gradients enabled under `torch.autograd.graph.saved_tensors_hooks` and
inspect every tensor packed for backward; nothing is run backward and the graph is dropped.

Example::

    attn = AttentiveMLP(64, 4)
    x = torch.randn(2, 128, 64)
    largest_saved_tensor_numel(attn, x, x, x)  # grows ~linearly in 128; naive softmax: ~128**2
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["largest_saved_tensor_numel", "saved_tensor_bytes"]


def _saved_tensors(fn: Callable[..., Any], args: tuple, kwargs: dict) -> list[torch.Tensor]:
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn(*args, **kwargs)
    del out
    return saved


def largest_saved_tensor_numel(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Number of elements of the largest tensor saved for backward by one call ``fn(*args)``.

    Args:
        fn: A module or any callable; at least one of its parameters or inputs must require
            grad, or autograd saves nothing.
        *args: Positional inputs of ``fn``.
        **kwargs: Keyword inputs of ``fn``.

    Returns:
        The largest ``numel`` among the saved tensors (0 when nothing was saved). Views count
        with their own size, parameters included.
    """
    return max((t.numel() for t in _saved_tensors(fn, args, kwargs)), default=0)


def saved_tensor_bytes(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> int:
    """Total bytes of the distinct storages saved for backward by one call ``fn(*args)``.

    This is the activation memory a training step holds between its forward and backward pass.
    Each storage counts once however many views of it are saved; when ``fn`` is an
    ``nn.Module`` its own parameters and buffers are left out (they are resident anyway).

    Args:
        fn: A module or any callable.
        *args: Positional inputs of ``fn``.
        **kwargs: Keyword inputs of ``fn``.

    Returns:
        The summed ``nbytes`` of the distinct saved storages.
    """
    skip: set[int] = set()
    if isinstance(fn, nn.Module):
        tensors = [*fn.parameters(), *fn.buffers()]
        skip = {t.untyped_storage().data_ptr() for t in tensors}
    sizes: dict[int, int] = {}
    for t in _saved_tensors(fn, args, kwargs):
        storage = t.untyped_storage()
        if storage.data_ptr() not in skip:
            sizes[storage.data_ptr()] = storage.nbytes()
    return sum(sizes.values())
