"""Generated images of simple shapes, a small vision task that needs no download.

`make_shapes` draws ``n`` grey ``size x size`` images of one of five shapes, each at a random
position and scale, as ``(n, 1, size, size)`` float images in about ``[-1, 1]`` with labels
``(n,)``:

====  =================  ============================================================
 id   shape              pixels set (centre ``(cy, cx)``, scale ``s``, offsets ``dy, dx``)
====  =================  ============================================================
 0    disc               ``dy^2 + dx^2 <= s^2``
 1    square             ``max(|dy|, |dx|) <= s``
 2    triangle (up)      ``0 <= dy + s <= 2 s`` and ``|dx| <= (dy + s) / 2``
 3    ring               ``(s - 1.2)^2 <= dy^2 + dx^2 <= s^2``
 4    cross              ``min(|dy|, |dx|) <= 0.8`` and ``max(|dy|, |dx|) <= s``
====  =================  ============================================================

Centres are uniform in ``[s, size - 1 - s]`` (the whole shape stays inside), scales ``s``
uniform in ``[size / 6, size / 3]``; set pixels are ``+1``, the background ``-1``, plus
independent Gaussian noise of std ``noise`` on every pixel. Classes are balanced (``i mod
5``, then shuffled). Everything is vectorised over the ``(n, size, size)`` pixel grid and drawn
from a seeded `numpy.random.Generator`: the same seed gives the same images on every platform.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["SHAPE_NAMES", "make_shapes"]

SHAPE_NAMES = ("disc", "square", "triangle", "ring", "cross")
"""Class id -> shape name."""


def make_shapes(
    n: int, *, size: int = 16, noise: float = 0.3, seed: int = 0, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` noisy shape images and their labels.

    Args:
        n: Number of images (>= 1).
        size: Side of the square images (>= 8).
        noise: Std of the Gaussian pixel noise (>= 0).
        seed: Seed of every draw.
        dtype: Floating dtype of the images.

    Returns:
        ``(images (n, 1, size, size), labels (n,) int64 in [0, 5))``.

    Raises:
        ValueError: ``n < 1``, ``size < 8`` or ``noise < 0``.
    """
    if n < 1:
        raise ValueError(f"n: must be >= 1, got {n}")
    if size < 8:
        raise ValueError(f"size: must be >= 8, got {size}")
    if not noise >= 0:
        raise ValueError(f"noise: must be >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(SHAPE_NAMES))
    s = rng.uniform(size / 6, size / 3, n)
    cy = rng.uniform(s, size - 1 - s)
    cx = rng.uniform(s, size - 1 - s)
    grid = np.arange(size, dtype=np.float64)
    dy = grid[None, :, None] - cy[:, None, None]  # (n, size, 1)
    dx = grid[None, None, :] - cx[:, None, None]  # (n, 1, size)
    r = s[:, None, None]
    ady, adx = np.abs(dy), np.abs(dx)
    d2 = dy**2 + dx**2
    masks = np.stack(
        [
            d2 <= r**2,
            np.maximum(ady, adx) <= r,
            (dy + r >= 0) & (dy + r <= 2 * r) & (adx <= (dy + r) / 2),
            (d2 <= r**2) & (d2 >= (r - 1.2) ** 2),
            (np.minimum(ady, adx) <= 0.8) & (np.maximum(ady, adx) <= r),
        ]
    )  # (5, n, size, size)
    mask = masks[labels, np.arange(n)]
    images = np.where(mask, 1.0, -1.0) + noise * rng.standard_normal((n, size, size))
    x = torch.from_numpy(images).to(dtype).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))
