"""Monte Carlo over many independent finite-width deep equilibrium networks at initialisation.

Paper: Gao, Huo, Liu & Gao (2023), *Wide Neural Networks as Gaussian Processes: Lessons from
Deep Equilibrium Models*, NeurIPS 2023, arXiv:2310.10767. Its abstract states that the outputs
of a wide DEQ tend to a Gaussian process whose kernel is the DEQ NNGP kernel
(`perceptrons.theory.kernels.deq_kernel`), and that the depth and width limits commute; these
simulators measure both at finite width (docs/kernels.md, "The DEQ kernel").

The networks are the weight-tied ReLU (or any elementwise :math:`\\phi`) DEQ of the authors'
notebooks (github.com/deqg/deq), without bias,

.. math::

    h^* = \\phi(W h^* + U x), \\qquad W_{ij} \\sim N(0, \\sigma_w^2/n), \\qquad
    U_{ij} \\sim N(0, \\sigma_u^2/d),

the same law as the registered ``"deq"`` model (`perceptrons.models.deq.DEQModel`) with
``bias_std=0``. Implemented:

* `solve_deq_equilibria`: Picard iteration from :math:`h^0 = 0` of ``M`` networks with given
  weights, batched over networks (one batched matrix product per iteration), as
  `DEQEquilibria`;
* `sample_deq_equilibria`: the same for ``M`` independent draws of the weights;
* `sample_deq_iterate_grams`: the Gram matrices :math:`h^\\ell h^{\\ell\\top}/n` of the first
  ``L`` Picard iterates (tied :math:`W`), or of the first ``L`` layers of the untied MLP with
  input injection (a fresh :math:`W_\\ell` per layer); both tend to the finite-depth kernels
  :math:`V_\\phi(K^\\ell)` of `perceptrons.theory.kernels.deq.deq_depth_kernels` as
  :math:`n \\to \\infty`.

Our choices (a reconstruction: the authors' notebooks run one network at a time): networks are
drawn in chunks whose weights hold about :math:`2^{24}` numbers (128 MiB in float64); the
weights are sampled in float32 (2.5x faster on CPU) and then *are* those float32-valued numbers,
propagated in ``dtype``; a chunk stops iterating when all its networks meet ``tol``, so a
network may take a few more iterations than it needs (which only lowers its residual).

Dimension legend: ``M`` networks, ``p`` inputs, ``d`` input features, ``n`` width, ``T``
Picard iterations, ``L`` iterates or layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from perceptrons.checks import check_int, check_number, check_tensor

__all__ = [
    "DEQEquilibria",
    "sample_deq_equilibria",
    "sample_deq_iterate_grams",
    "solve_deq_equilibria",
]

Activation = Callable[[torch.Tensor], torch.Tensor]
"""An elementwise torch callable, e.g. ``torch.relu`` or ``torch.tanh``."""

_MAX_CHUNK_ELEMENTS = 2**24
"""Weights per chunk of networks when ``chunk_size=None`` (128 MiB in float64)."""

_DTYPES = (torch.float32, torch.float64)


@dataclass(frozen=True)
class DEQEquilibria:
    """Equilibria of ``M`` DEQs at ``p`` inputs, with their Picard residual histories.

    Attributes:
        hidden: Equilibrium states :math:`h^*`, shape ``(M, p, n)``: ``hidden[m, i]`` is the
            state of network ``m`` at input ``i``.
        residuals: Relative residual of every Picard iteration of every network, shape
            ``(T, M)``: :math:`r_t = \\|H^{t+1} - H^t\\|_F / \\|H^{t+1}\\|_F` over the ``p``
            inputs of one network (the norms of the ``(p, n)`` state); NaN after the network's
            chunk stopped (chunks can stop at different iterations).
        converged: Whether each network's last residual is at most ``tol``, shape ``(M,)``.
    """

    hidden: torch.Tensor
    residuals: torch.Tensor
    converged: torch.Tensor

    @property
    def num_networks(self) -> int:
        """``M``."""
        return self.hidden.shape[0]

    @property
    def width(self) -> int:
        """``n``."""
        return self.hidden.shape[-1]

    @property
    def num_iterations(self) -> int:
        """``T``: Picard iterations of the slowest chunk."""
        return self.residuals.shape[0]

    def grams(self) -> torch.Tensor:
        """Finite-width Gram matrices :math:`h^* h^{*\\top}/n` of each network, ``(M, p, p)``.

        As :math:`n \\to \\infty` they tend to :math:`V_\\phi(K^*)`, ``deq_kernel(x,
        output="hidden")`` (docs/kernels.md, "The DEQ kernel").
        """
        return self.hidden @ self.hidden.transpose(1, 2) / self.width


# ------------------------------------------------------------------------------ checks
def _check_generator(generator: object) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator, got {type(generator).__name__}")
    return generator


def _check_activation(activation: object) -> Activation:
    if not callable(activation):
        raise TypeError(f"activation: expected an elementwise callable, got {activation!r}")
    return activation


def _check_tol(tol: object) -> float:
    tol = check_number("tol", tol, low=0.0, strict=True)
    if tol >= 1:
        raise ValueError(f"tol: expected a number in (0, 1), got {tol!r}")
    return tol


def _check_dtype(dtype: object) -> torch.dtype:
    if dtype not in _DTYPES:
        raise ValueError(f"dtype: expected torch.float32 or torch.float64, got {dtype!r}")
    return dtype


def _check_sampling(
    x: object, width: object, num_networks: object, weight_std: object, input_std: object
) -> tuple[torch.Tensor, int, int, float, float]:
    x = check_tensor(x, "x", ("p", "d"), finite=True)
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"x: expected shape (p, d) with p, d >= 1, got {tuple(x.shape)}")
    return (
        x,
        check_int("width", width),
        check_int("num_networks", num_networks),
        check_number("weight_std", weight_std, low=0.0),
        check_number("input_std", input_std, low=0.0),
    )


# ------------------------------------------------------------------------------ helpers
def _chunks(num_networks: int, width: int, chunk_size: int | None) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` covering ``range(num_networks)``."""
    size = max(1, _MAX_CHUNK_ELEMENTS // (width * width)) if chunk_size is None else chunk_size
    return [(s, min(s + size, num_networks)) for s in range(0, num_networks, size)]


def _draw(
    shape: tuple[int, ...], std: float, generator: torch.Generator, dtype: torch.dtype
) -> torch.Tensor:
    """:math:`N(0, \\text{std}^2)` draws of ``shape``, sampled in float32, returned in ``dtype``."""
    w = torch.randn(*shape, generator=generator, dtype=torch.float32, device=generator.device)
    return (w if dtype == torch.float32 else w.to(dtype)).mul_(std)


def _picard(
    injection: torch.Tensor,
    weight: torch.Tensor,
    activation: Activation,
    tol: float,
    max_iter: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Picard iteration in column layout: ``injection`` ``(M, n, p)``, ``weight`` ``(M, n, n)``.

    Returns the last iterate ``(M, n, p)`` and the residual history ``(T, M)``.
    """
    # column layout (M, n, p): W @ h is a batched gemm on contiguous W (2x faster than
    # h @ W^T on CPU)
    h = activation(injection)  # h^1 (h^0 = 0)
    history = []
    for _ in range(max_iter):
        new = activation(torch.baddbmm(injection, weight, h))
        res = torch.linalg.vector_norm(new - h, dim=(1, 2)) / torch.linalg.vector_norm(
            new, dim=(1, 2)
        ).clamp_min(1e-300)
        history.append(res)
        h = new
        if bool((res <= tol).all()):
            break
    return h, torch.stack(history)


def _concat(parts: list[DEQEquilibria]) -> DEQEquilibria:
    """Concatenate chunks along networks, padding shorter residual histories with NaN."""
    length = max(p.residuals.shape[0] for p in parts)
    padded = [
        torch.cat(
            [
                p.residuals,
                torch.full(
                    (length - p.residuals.shape[0], p.residuals.shape[1]),
                    math.nan,
                    dtype=p.residuals.dtype,
                    device=p.residuals.device,
                ),
            ]
        )
        for p in parts
    ]
    return DEQEquilibria(
        hidden=torch.cat([p.hidden for p in parts]),
        residuals=torch.cat(padded, dim=1),
        converged=torch.cat([p.converged for p in parts]),
    )


# ------------------------------------------------------------------------------ public
def solve_deq_equilibria(
    weight: torch.Tensor,
    input_weight: torch.Tensor,
    x: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    activation: Activation = torch.relu,
    tol: float = 1e-10,
    max_iter: int = 200,
) -> DEQEquilibria:
    """Equilibria of ``M`` DEQs with given weights, by Picard iteration batched over networks.

    .. math::

        h^1 = \\phi(U_m x + b_m), \\qquad
        h^{t+1} = \\phi(W_m h^t + U_m x + b_m) \\quad (t \\ge 1),

    from :math:`h^0 = 0` (as the authors' notebooks and `DEQLayer` do), for every network
    :math:`m` and input :math:`x` at once, until every network's relative residual
    :math:`\\|H^{t+1} - H^t\\|_F / \\|H^{t+1}\\|_F` (over its ``p`` inputs) is at most ``tol``
    or ``max_iter`` iterations have run. Computed in the dtype and on the device of ``weight``,
    under the caller's grad mode (no gradients are needed at initialisation: pass tensors that
    do not require them, or call it under ``torch.no_grad()``).

    Args:
        weight: Recurrent weights :math:`W_m`, shape ``(M, n, n)``, floating.
        input_weight: Injection weights :math:`U_m`, shape ``(M, n, d)``.
        x: Inputs as rows, shape ``(p, d)`` (converted to the dtype of ``weight``).
        bias: Injection biases :math:`b_m`, shape ``(M, n)``; ``None``: no bias.
        activation: Elementwise :math:`\\phi` (default ReLU).
        tol: Relative residual to stop at, in ``(0, 1)``.
        max_iter: Maximum number of iterations after :math:`h^1` (>= 1).

    Returns:
        `DEQEquilibria`: ``hidden`` ``(M, p, n)``, ``residuals`` ``(T, M)`` with
        ``T <= max_iter``, ``converged`` ``(M,)``.

    Raises:
        TypeError: a non-tensor or non-floating argument, or a non-callable ``activation``.
        ValueError: inconsistent shapes, non-finite values, a bad ``tol`` or ``max_iter``.
    """
    weight = check_tensor(weight, "weight", ("M", "n", "n"), finite=True)
    if weight.shape[1] != weight.shape[2]:
        raise ValueError(f"weight: expected shape (M, n, n), got {tuple(weight.shape)}")
    m, n = weight.shape[:2]
    input_weight = check_tensor(input_weight, "input_weight", (m, n, "d"), finite=True)
    d = input_weight.shape[2]
    x = check_tensor(x, "x", ("p", d), finite=True)
    if bias is not None:
        bias = check_tensor(bias, "bias", (m, n), finite=True)
    activation = _check_activation(activation)
    tol = _check_tol(tol)
    max_iter = check_int("max_iter", max_iter)
    x = x.to(dtype=weight.dtype, device=weight.device)
    injection = input_weight.to(weight.dtype) @ x.T  # (M, n, p)
    if bias is not None:
        injection = injection + bias.to(weight.dtype)[..., None]
    h, residuals = _picard(injection, weight, activation, tol, max_iter)
    return DEQEquilibria(h.transpose(1, 2), residuals, residuals[-1] <= tol)


def sample_deq_equilibria(
    x: torch.Tensor,
    width: int,
    num_networks: int,
    *,
    weight_std: float,
    input_std: float,
    generator: torch.Generator,
    activation: Activation = torch.relu,
    tol: float = 1e-10,
    max_iter: int = 200,
    dtype: torch.dtype = torch.float64,
    chunk_size: int | None = None,
) -> DEQEquilibria:
    """Equilibria of ``M`` independent random DEQs at the inputs ``x``.

    Each chunk of networks draws :math:`W \\in \\mathbb R^{m \\times n \\times n}` with entries
    :math:`N(0, \\sigma_w^2/n)`, then :math:`U \\in \\mathbb R^{m \\times n \\times d}` with
    entries :math:`N(0, \\sigma_u^2/d)` (sampled in float32, see the module docstring), and
    solves them with `solve_deq_equilibria` in ``dtype``. As :math:`n \\to \\infty`,
    ``result.grams()`` tends to :math:`V_\\phi(K^*)` with
    :math:`K^* = \\sigma_w^2 V_\\phi(K^*) + \\sigma_u^2 x\\cdot x'/d` (`deq_kernel`), with an
    error of order :math:`1/\\sqrt n` per entry; a readout :math:`v^\\top h^*/\\sqrt n`,
    :math:`v \\sim N(0, I)`, is then Gaussian with that covariance. For ReLU the Picard
    residual decays like :math:`(\\sigma_w/\\sqrt 2)^t` (:math:`\\sigma_w\\sqrt{E\\phi'(u)^2}`,
    the local rate) and converges while :math:`\\sigma_w < \\sqrt 2`.

    Randomness: the draws are made chunk by chunk (``W`` then ``U`` of each chunk) from
    ``generator``, so the result depends on the seed, ``M``, ``n``, ``d`` and ``chunk_size``.

    Args:
        x: Inputs as rows, shape ``(p, d)`` (converted to ``dtype``, on the generator's device).
        width: Width :math:`n \\ge 1`.
        num_networks: Number ``M >= 1`` of networks.
        weight_std: :math:`\\sigma_w \\ge 0`.
        input_std: :math:`\\sigma_u \\ge 0`.
        generator: Generator of the weights (its device is used).
        activation: Elementwise :math:`\\phi` (default ReLU).
        tol: Relative residual to stop at, in ``(0, 1)``.
        max_iter: Maximum number of Picard iterations (>= 1).
        dtype: Propagation dtype, ``torch.float64`` or ``torch.float32`` (the iterations are
            memory-bound batched matrix products, so float32 halves their cost; its residual
            floor is about 1e-7).
        chunk_size: Networks per chunk; ``None`` picks the largest chunk whose weights hold at
            most :math:`2^{24}` numbers (at least one network).

    Returns:
        `DEQEquilibria` with ``hidden`` ``(M, p, n)`` in ``dtype``.

    Raises:
        TypeError: a non-tensor ``x``, a bad ``generator`` or ``activation``.
        ValueError: a bad shape, size, standard deviation, ``tol``, ``max_iter``, ``dtype`` or
            ``chunk_size``.
    """
    x, width, num_networks, weight_std, input_std = _check_sampling(
        x, width, num_networks, weight_std, input_std
    )
    generator = _check_generator(generator)
    activation = _check_activation(activation)
    tol = _check_tol(tol)
    max_iter = check_int("max_iter", max_iter)
    dtype = _check_dtype(dtype)
    if chunk_size is not None:
        chunk_size = check_int("chunk_size", chunk_size)
    x = x.to(dtype=dtype, device=generator.device)
    d = x.shape[1]
    parts = []
    for start, stop in _chunks(num_networks, width, chunk_size):
        m = stop - start
        w = _draw((m, width, width), weight_std / math.sqrt(width), generator, dtype)
        u = _draw((m, width, d), input_std / math.sqrt(d), generator, dtype)
        parts.append(
            solve_deq_equilibria(w, u, x, activation=activation, tol=tol, max_iter=max_iter)
        )
    return _concat(parts)


def sample_deq_iterate_grams(
    x: torch.Tensor,
    width: int,
    num_networks: int,
    num_iter: int,
    *,
    weight_std: float,
    input_std: float,
    generator: torch.Generator,
    tied: bool = True,
    activation: Activation = torch.relu,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Grams of the first ``L`` Picard iterates of random DEQs, or of untied MLP layers.

    .. math::

        h^1 = \\phi(U x), \\qquad h^{\\ell+1} = \\phi(W_\\ell h^\\ell + U x), \\qquad
        G^\\ell = h^\\ell h^{\\ell\\top} / n,

    with :math:`W_\\ell = W` for every :math:`\\ell` (``tied``: the unrolled DEQ) or a fresh
    :math:`W_\\ell` per layer (the untied MLP with input injection at every layer). In both
    cases :math:`G^\\ell \\to V_\\phi(K^\\ell)` as :math:`n \\to \\infty`, with
    :math:`K^1 = \\Sigma^1`, :math:`K^{\\ell+1} = \\sigma_w^2 V_\\phi(K^\\ell) + \\Sigma^1`
    (`perceptrons.theory.kernels.deq.deq_depth_kernels`): weight tying does not change the
    infinite-width kernel at any depth, so the two limits commute (the paper's abstract;
    docs/kernels.md, "The DEQ kernel").

    Randomness: per chunk, ``tied`` draws ``W`` then ``U``; untied draws ``U`` then one
    :math:`W_\\ell` per layer (all sampled in float32, propagated in float64).

    Args:
        x: Inputs as rows, shape ``(p, d)``.
        width: Width :math:`n \\ge 1`.
        num_networks: Number ``M >= 1`` of networks.
        num_iter: Number ``L >= 1`` of iterates (tied) or layers (untied).
        weight_std: :math:`\\sigma_w \\ge 0`.
        input_std: :math:`\\sigma_u \\ge 0`.
        generator: Generator of the weights (its device is used).
        tied: One :math:`W` for every iterate (default) or a fresh one per layer.
        activation: Elementwise :math:`\\phi` (default ReLU).
        chunk_size: Networks per chunk; ``None``: as in `sample_deq_equilibria`.

    Returns:
        Float64 tensor of shape ``(L, M, p, p)``: ``result[l - 1, m]`` is :math:`G^\\ell` of
        network ``m``.

    Raises:
        TypeError: a non-tensor ``x``, a bad ``generator`` or ``activation``.
        ValueError: a bad shape, size, standard deviation or ``chunk_size``.
    """
    x, width, num_networks, weight_std, input_std = _check_sampling(
        x, width, num_networks, weight_std, input_std
    )
    num_iter = check_int("num_iter", num_iter)
    generator = _check_generator(generator)
    activation = _check_activation(activation)
    if chunk_size is not None:
        chunk_size = check_int("chunk_size", chunk_size)
    x = x.to(dtype=torch.float64, device=generator.device)
    d = x.shape[1]
    std = weight_std / math.sqrt(width)
    out = []
    for start, stop in _chunks(num_networks, width, chunk_size):
        m = stop - start
        w = _draw((m, width, width), std, generator, torch.float64) if tied else None
        u = _draw((m, width, d), input_std / math.sqrt(d), generator, torch.float64)
        injection = u @ x.T  # (m, n, p), column layout as in solve_deq_equilibria
        h = activation(injection)
        grams = [h.transpose(1, 2) @ h / width]
        for _ in range(num_iter - 1):
            layer = w if tied else _draw((m, width, width), std, generator, torch.float64)
            h = activation(torch.baddbmm(injection, layer, h))
            grams.append(h.transpose(1, 2) @ h / width)
        out.append(torch.stack(grams))
    return torch.cat(out, dim=1)
