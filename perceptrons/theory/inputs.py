"""Probe inputs for checks at initialisation: prescribed norms, correlations and Gram matrices.

Infinite-width kernels and their limits depend on the inputs only through their Gram matrix
:math:`x \\cdot x'/d`; these helpers build inputs whose Gram matrix is known exactly, so that
finite networks (`perceptrons.theory.montecarlo`, `perceptrons.theory.deq_montecarlo`) can be
compared with kernels (`perceptrons.theory.kernels`) and limits (`perceptrons.theory.limits`)
at a chosen correlation:

* `correlated_inputs`: two inputs with :math:`|x|^2/d = 1` and correlation :math:`\\rho`
  (deterministic);
* `sphere_inputs`: Gaussian directions scaled to :math:`|x|^2/d = 1`;
* `orthonormal_inputs`: :math:`k` inputs with Gram matrix exactly :math:`I` whose coordinates
  look like i.i.d. :math:`N(0, 1)` draws.

Dimension legend: ``k`` inputs, ``d`` input features (``dim``).
"""

from __future__ import annotations

import math

import torch

from perceptrons.checks import check_int, check_number

__all__ = ["correlated_inputs", "orthonormal_inputs", "sphere_inputs"]


def _check_generator(generator: object) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator, got {type(generator).__name__}")
    return generator


def _check_dtype(dtype: object) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype: expected a floating torch.dtype, got {dtype!r}")
    return dtype


def correlated_inputs(rho: float, dim: int, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Two inputs with :math:`|x_1|^2/d = |x_2|^2/d = 1` and correlation :math:`\\rho`.

    .. math::

        x_1 = \\sqrt d\\, e_1, \\qquad x_2 = \\sqrt d\\,(\\rho\\, e_1 + \\sqrt{1-\\rho^2}\\, e_2),
        \\qquad \\frac{x_i\\cdot x_j}{d} = \\begin{pmatrix} 1 & \\rho \\\\ \\rho & 1
        \\end{pmatrix}_{ij}.

    Args:
        rho: Correlation in ``[-1, 1]``.
        dim: Input dimension :math:`d \\ge 2`.
        dtype: Floating dtype of the result (computed in float64).

    Returns:
        Tensor of shape ``(2, d)``.

    Raises:
        ValueError: ``rho`` outside ``[-1, 1]``, ``dim < 2`` or a non-floating ``dtype``.
    """
    rho = check_number("rho", rho, low=-1.0)
    if rho > 1:
        raise ValueError(f"rho: expected a correlation in [-1, 1], got {rho!r}")
    dim = check_int("dim", dim, low=2)
    dtype = _check_dtype(dtype)
    x = torch.zeros(2, dim, dtype=torch.float64)
    x[0, 0], x[1, 0], x[1, 1] = 1.0, rho, math.sqrt(1 - rho * rho)
    return (math.sqrt(dim) * x).to(dtype)


def sphere_inputs(
    num_inputs: int,
    dim: int,
    *,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Independent uniform directions on the sphere of radius :math:`\\sqrt d`.

    :math:`x_i = \\sqrt d\\, g_i/|g_i|` with :math:`g_i \\sim N(0, I_d)`, so
    :math:`|x_i|^2/d = 1` (to rounding) and the kernels' diagonals are those of unit inputs.

    Args:
        num_inputs: Number :math:`k \\ge 1` of inputs.
        dim: Input dimension :math:`d \\ge 1`.
        generator: Generator of the Gaussian draws (its device is used).
        dtype: Floating dtype of the draws and the result.

    Returns:
        Tensor of shape ``(k, d)``.

    Raises:
        TypeError: ``generator`` is not a ``torch.Generator``.
        ValueError: a size below 1 or a non-floating ``dtype``.
    """
    num_inputs = check_int("num_inputs", num_inputs)
    dim = check_int("dim", dim)
    generator = _check_generator(generator)
    dtype = _check_dtype(dtype)
    x = torch.randn(num_inputs, dim, generator=generator, dtype=dtype, device=generator.device)
    return x / x.norm(dim=1, keepdim=True) * math.sqrt(dim)


def orthonormal_inputs(
    num_inputs: int,
    dim: int,
    *,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """:math:`k` inputs with Gram matrix :math:`X X^\\top/d = I` whose coordinates look Gaussian.

    :math:`X = \\sqrt d\\, Q^\\top`, where :math:`Q` ``(d, k)`` has orthonormal columns (the QR
    factor of a ``(d, k)`` matrix of i.i.d. :math:`N(0, 1)` draws, computed in float64). So the
    correlation between inputs is exactly 0 (:math:`\\rho_0 = 0`) and the diagonal exactly 1,
    while each row looks like a draw of :math:`N(0, I_d)`. Use it where a limit assumes
    Gaussian coordinates and not only a Gram matrix: for an MLP only :math:`V_0` matters (its
    first layer is Gaussian given any input), but a ResNet's residual stream keeps its input,
    and a sparse input such as :math:`\\sqrt d\\, e_1` would make a ReLU branch see non-Gaussian
    coordinates (:math:`E[\\mathrm{ReLU}(x)^2] = x^2` rather than :math:`x^2/2`).

    Args:
        num_inputs: Number :math:`k \\ge 1` of inputs, at most ``dim``.
        dim: Input dimension :math:`d`.
        generator: Generator of the Gaussian draws (its device is used).
        dtype: Floating dtype of the result (rounding it, e.g. to float32, perturbs the Gram
            matrix at that precision).

    Returns:
        Tensor of shape ``(k, d)``.

    Raises:
        TypeError: ``generator`` is not a ``torch.Generator``.
        ValueError: a size below 1, ``num_inputs > dim`` or a non-floating ``dtype``.
    """
    num_inputs = check_int("num_inputs", num_inputs)
    dim = check_int("dim", dim)
    if num_inputs > dim:
        raise ValueError(
            f"num_inputs: at most dim = {dim} orthonormal inputs exist, got {num_inputs}"
        )
    generator = _check_generator(generator)
    dtype = _check_dtype(dtype)
    g = torch.randn(
        dim, num_inputs, generator=generator, dtype=torch.float64, device=generator.device
    )
    q, _ = torch.linalg.qr(g)
    return (math.sqrt(dim) * q.T).to(dtype)
