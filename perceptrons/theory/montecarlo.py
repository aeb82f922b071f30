"""Monte Carlo over finite networks at initialisation, and exact Gram-chain simulators.

Paper: Li & Nica (2023), *Differential Equation Scaling Limits of Shaped and Unshaped Neural
Networks*, arXiv:2310.12079 (the shaped MLP and the :math:`d^{-1/2}` ResNet of its abstract;
docs/scaling-limits.md).

Implemented:

* `simulate_grams`: draws many independent initialisations of a *real* torch model (any module
  with ``forward_hidden`` whose random parameters live in `DenseLinear` layers), runs them
  batched with ``torch.func.vmap`` + ``torch.func.functional_call``, and records every layer's
  :math:`k \\times k` Gram matrix, as `GramTrajectories`.
* `mlp_gram_chain`, `resnet_gram_chain`: exact cheap simulators of both networks. They
  have the same law as the real networks (argument in their docstrings) at :math:`O(nk^2)`
  cost per layer instead of :math:`O(n^2 k)`, and serve as a second, independent
  implementation to test the torch models against.
* `moment_matched_chain`: the scalar chain of :math:`\\varepsilon = 1 - \\rho` of the unshaped
  ReLU MLP that matches the first two moments of one exact step (docs/scaling-limits.md).
* `ks_statistic`, `ks_critical_value`, `ks_normal_statistic` (defined in
  `perceptrons.theory.ks`, re-exported here): the Kolmogorov–Smirnov tests used to compare
  these distributions; `ks_normal_statistic`, the one-sample test against a centred Gaussian
  of given variance (e.g. network outputs against an NNGP variance).

Reconstruction: only the paper's abstract was available; the chains are our derivation from
the Gaussian conditional law of one layer given the previous one (argued in their docstrings).

Dimension legend: ``M`` networks or chains (``num_networks``, ``num_chains``), ``k`` inputs,
``n`` width, ``d`` depth, ``L + 1`` recorded layers (index 0 is the input), ``P`` parameters of
one network.

Conventions: Gram matrices are accumulated in float64; all randomness comes from an explicit
``torch.Generator``.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, TypeAlias

import torch
from torch import nn
from torch.func import functional_call, vmap

from perceptrons.checks import check_int, check_number, check_tensor
from perceptrons.layers.linear import DenseLinear
from perceptrons.theory.dual import one_minus_j
from perceptrons.theory.ks import ks_critical_value, ks_normal_statistic, ks_statistic

__all__ = [
    "GramTrajectories",
    "Representation",
    "ks_critical_value",
    "ks_normal_statistic",
    "ks_statistic",
    "mlp_gram_chain",
    "moment_matched_chain",
    "resnet_gram_chain",
    "simulate_grams",
]

Representation: TypeAlias = Literal["post", "pre"]
"""Which tensors of ``forward_hidden`` `simulate_grams` records (see there)."""

Activation: TypeAlias = Callable[[torch.Tensor], torch.Tensor]
"""An elementwise torch callable, e.g. ``torch.relu`` or a `ShapedReLU` instance."""

MEMORY_BUDGET_BYTES = 64 * 2**20
"""Memory `simulate_grams` aims to stay under per chunk of networks when ``chunk_size=None``."""

_RNG_BLOCK_NUMBERS = 2**22
"""Random numbers per RNG block of networks (blocks hold 1 to `_MAX_RNG_BLOCK` networks)."""

_MAX_RNG_BLOCK = 16


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GramTrajectories:
    """Gram matrices of ``M`` networks (or chains) at every recorded layer.

    Also wraps the output of the chain simulators: ``GramTrajectories(mlp_gram_chain(...))``.

    Attributes:
        grams: Float64 tensor of shape ``(M, L + 1, k, k)``; ``grams[m, l]`` is the Gram matrix
            of network ``m`` at layer ``l``, layer 0 being the input (see `simulate_grams`
            for the exact indexing).
        widths: Width :math:`n_\\ell` used to normalise each layer (``L + 1`` ints), or
            ``None`` when unknown (chains).

    Raises:
        ValueError: ``grams`` is not of shape ``(M, L + 1, k, k)``, or ``widths`` has the wrong
            length.
    """

    grams: torch.Tensor
    widths: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        check_tensor(self.grams, "grams", ("M", "L + 1", "k", "k"))
        if self.grams.shape[-1] != self.grams.shape[-2]:
            raise ValueError(
                f"grams: expected shape (M, L + 1, k, k), got {tuple(self.grams.shape)}"
            )
        if self.widths is not None and len(self.widths) != self.grams.shape[1]:
            raise ValueError(
                f"widths: expected {self.grams.shape[1]} widths (one per layer), "
                f"got {len(self.widths)}"
            )

    @property
    def num_networks(self) -> int:
        """``M``."""
        return self.grams.shape[0]

    @property
    def num_layers(self) -> int:
        """``L``: recorded layers after the input (``grams`` has ``L + 1`` entries)."""
        return self.grams.shape[1] - 1

    @property
    def num_inputs(self) -> int:
        """``k``."""
        return self.grams.shape[-1]

    @property
    def final(self) -> torch.Tensor:
        """Gram matrices of the last recorded layer, shape ``(M, k, k)``."""
        return self.grams[:, -1]

    def layer(self, index: int) -> torch.Tensor:
        """Gram matrices of layer ``index`` (0 is the input), shape ``(M, k, k)``."""
        return self.grams[:, index]

    def mean(self) -> torch.Tensor:
        """Average over networks, shape ``(L + 1, k, k)``."""
        return self.grams.mean(0)

    def variance(self, i: int = 0) -> torch.Tensor:
        """Diagonal entry :math:`V^{ii}` (squared norm / width of input ``i``), ``(M, L + 1)``."""
        return self.grams[:, :, i, i]

    def covariance(self, i: int = 0, j: int = 1) -> torch.Tensor:
        """Entry :math:`V^{ij}`, shape ``(M, L + 1)``."""
        return self.grams[:, :, i, j]

    def correlation(self, i: int = 0, j: int = 1) -> torch.Tensor:
        """:math:`\\rho^{ij} = V^{ij}/\\sqrt{V^{ii}V^{jj}}`, shape ``(M, L + 1)``.

        Clipped to ``[-1, 1]``; 0 where a variance is 0.
        """
        norm = torch.sqrt(self.variance(i) * self.variance(j))
        safe = torch.where(norm > 0, norm, torch.ones_like(norm))
        rho = torch.where(norm > 0, self.covariance(i, j) / safe, torch.zeros_like(norm))
        return rho.clamp(-1.0, 1.0)


# --------------------------------------------------------------------------------------------
# Monte Carlo over real networks
# --------------------------------------------------------------------------------------------


class _ForwardHidden(nn.Module):
    """Makes ``net.forward_hidden`` the ``forward`` that ``functional_call`` invokes."""

    def __init__(self, net: nn.Module, post_activation: bool | None) -> None:
        super().__init__()
        self.net = net
        self.kwargs = {} if post_activation is None else {"post_activation": post_activation}

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net.forward_hidden(x, **self.kwargs)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Put every submodule in eval mode; restore each one's own mode afterwards."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode


def _check_generator(generator: object) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator: expected a torch.Generator, got {type(generator).__name__}")
    return generator


def _model_in_features(model: nn.Module) -> int | str:
    """``in_features`` of a layer or of a model with a config; a free dimension if unknown."""
    candidates = [
        getattr(owner, "in_features", None) for owner in (model, getattr(model, "config", None))
    ]
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, tuple) and shape:
        candidates.append(shape[-1])
    for value in candidates:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return "in_features"


def rng_block(params_per_network: int) -> int:
    """Networks per RNG block: about `_RNG_BLOCK_NUMBERS` numbers, 1 to `_MAX_RNG_BLOCK`."""
    return max(1, min(_MAX_RNG_BLOCK, _RNG_BLOCK_NUMBERS // params_per_network))


def simulate_grams(
    model: nn.Module,
    inputs: torch.Tensor,
    num_networks: int,
    *,
    generator: torch.Generator,
    chunk_size: int | None = None,
    representation: Representation = "post",
) -> GramTrajectories:
    """Gram matrices of every layer over ``M`` independent initialisations of ``model``.

    Every `DenseLinear` of ``model`` is redrawn ``M`` times from its own initial distribution
    (`DenseLinear.sample_parameters`, i.e. exactly what `DenseLinear.reset_parameters` does,
    in either parameterisation); every other parameter and buffer (norms, ...) is the model's
    own and is shared. The networks run batched through ``torch.func.vmap`` over
    ``torch.func.functional_call`` in chunks of networks, in eval mode (dropout off, batch
    norm on its running statistics; each submodule's mode is restored afterwards), without
    autograd. ``model`` itself is not modified.

    Recorded layers. With :math:`x` the inputs (rows) and :math:`H_\\ell` of shape
    ``(k, n_ell)`` the representations returned by ``model.forward_hidden``,
    ``grams[m, l] = H_l H_lᵀ / n_l`` (in float64) for network ``m``:

    * index 0 is always the input Gram :math:`V_0 = x x^\\top / n_{in}`;
    * indices :math:`1, 2, \\dots` are the tensors of ``forward_hidden``, in order; a first
      tensor that *is* the input (`ResidualMLP` without input projection, where
      :math:`h_0 = x`) is not repeated.

    For `MLP` (``d`` hidden layers and a readout) that is ``L + 1 = d + 2`` entries:
    index :math:`\\ell = 1..d` is hidden layer :math:`\\ell` and index ``d + 1`` the network
    output. ``representation="post"`` records hidden layers after norm, activation and dropout
    (``forward_hidden(x, post_activation=True)``): for the shaped MLP of Li & Nica (normalised
    `ShapedReLU`, ``weight_std=1``, no bias) ``grams[:, l]`` is then exactly
    :math:`V_\\ell = \\frac{c}{n}\\langle\\phi_s(z_\\ell^\\alpha), \\phi_s(z_\\ell^\\beta)\\rangle`,
    the conditional covariance of the next pre-activations. ``"pre"`` records the
    pre-activations :math:`z_\\ell` (the output of each hidden `DenseLinear`).

    For `ResidualMLP` without input projection (Li & Nica's ResNet) index
    :math:`\\ell = 0..d` is the residual stream :math:`V_\\ell = \\langle x_\\ell^\\alpha,
    x_\\ell^\\beta\\rangle / n` for both representations (``L + 1 = d + 1``); with an input
    projection index 1 is :math:`h_0 = W_{in} x` and index :math:`\\ell + 1` is
    :math:`h_\\ell`. Model wrappers must accept ``forward_hidden(x, *, post_activation)`` for
    ``"post"``; otherwise pass their inner layer (e.g. ``model.net``) or use ``"pre"``.

    Randomness. ``generator`` draws one seed per RNG block of consecutive networks (1 to 16
    networks, fixed by the parameter count of one network); block ``b`` draws all its
    parameters from its own generator, layer by layer, with one vectorised
    `DenseLinear.sample_parameters` call per layer. Blocks never straddle chunks, so the
    result depends only on the seed, the model and ``M``: not on ``chunk_size`` (rounded to
    a whole number of blocks) nor on the number of threads. On CPU the blocks of a chunk are
    drawn in parallel threads (``torch.get_num_threads()`` of them): the cost is mostly
    Gaussian sampling, which torch does on one core per generator.

    Args:
        model: Module with ``forward_hidden(x) -> list of (k, n_l) tensors`` whose random
            parameters are `DenseLinear` layers (e.g. `MLP`, `ResidualMLP`).
        inputs: Inputs of shape ``(k, in_features)``, converted to the model's dtype.
        num_networks: Number ``M >= 1`` of independent initialisations.
        generator: Generator the per-block seeds are drawn from.
        chunk_size: Networks per batched forward pass (rounded down to a whole number of RNG
            blocks, at least one); ``None`` picks it from a memory budget of about 64 MiB.
        representation: ``"post"`` or ``"pre"`` (see above).

    Returns:
        `GramTrajectories` with ``grams`` of shape ``(M, L + 1, k, k)`` (float64, on the
        model's device) and the width of every recorded layer.

    Raises:
        TypeError: ``model`` is not a module with ``forward_hidden``, its ``forward_hidden``
            takes no ``post_activation`` with ``representation="post"``, ``generator`` is not
            a ``torch.Generator``, or ``inputs`` is not a floating tensor.
        ValueError: ``inputs`` not of shape ``(k, in_features)`` or not finite, ``M < 1``, a
            bad ``chunk_size`` or ``representation``, no `DenseLinear` in the model, or
            ``forward_hidden`` not returning tensors of shape ``(k, n)``.
    """
    num_networks = check_int("num_networks", num_networks)
    if chunk_size is not None:
        chunk_size = check_int("chunk_size", chunk_size)
    if representation not in ("post", "pre"):
        raise ValueError(f"representation: expected 'post' or 'pre', got {representation!r}")
    generator = _check_generator(generator)
    forward_hidden = getattr(model, "forward_hidden", None)
    if not isinstance(model, nn.Module) or not callable(forward_hidden):
        raise TypeError(
            f"model: expected an nn.Module with a forward_hidden method (e.g. "
            f"perceptrons.layers.MLP or ResidualMLP), got {type(model).__name__}"
        )
    post_activation: bool | None = None
    if representation == "post":
        if "post_activation" not in inspect.signature(forward_hidden).parameters:
            raise TypeError(
                f"model: {type(model).__name__}.forward_hidden takes no post_activation "
                f"keyword, needed for representation='post'; pass the wrapped layer (e.g. "
                f"model.net) or representation='pre'"
            )
        post_activation = True
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, DenseLinear)]
    if not linears:
        raise ValueError(
            f"model: {type(model).__name__} has no DenseLinear layer whose parameters could "
            f"be redrawn"
        )
    reference = linears[0][1].weight
    check_tensor(inputs, "inputs", ("k", _model_in_features(model)), finite=True)
    x = inputs.to(dtype=reference.dtype, device=reference.device)
    wrapper = _ForwardHidden(model, post_activation)

    with torch.no_grad(), _eval_mode(model):
        hidden = wrapper(x)  # one pass with the model's own weights: shapes and layout
        if not isinstance(hidden, Sequence) or not all(
            isinstance(h, torch.Tensor) and h.dim() == 2 and h.shape[0] == x.shape[0]
            for h in hidden
        ):
            raise ValueError(
                f"model: forward_hidden must return a list of tensors of shape (k, n) for "
                f"inputs of shape (k, in_features) = {tuple(x.shape)}"
            )
        skip = 1 if len(hidden) > 0 and hidden[0] is x else 0
        widths = (x.shape[1], *(h.shape[1] for h in hidden[skip:]))
        grams = _run_networks(
            wrapper, linears, x, num_networks, generator, chunk_size, skip, widths
        )
    return GramTrajectories(grams, widths)


def _run_networks(
    wrapper: _ForwardHidden,
    linears: list[tuple[str, DenseLinear]],
    x: torch.Tensor,
    num_networks: int,
    generator: torch.Generator,
    chunk_size: int | None,
    skip: int,
    widths: tuple[int, ...],
) -> torch.Tensor:
    """The batched loop of `simulate_grams`: ``(M, L + 1, k, k)`` float64."""
    k, device, dtype = x.shape[0], x.device, x.dtype
    shapes: dict[str, tuple[int, ...]] = {}
    for name, layer in linears:
        for pname, param in layer.named_parameters(recurse=False):
            shapes[f"net.{name}.{pname}" if name else f"net.{pname}"] = tuple(param.shape)
    params_per_network = sum(math.prod(shape) for shape in shapes.values())
    block = rng_block(params_per_network)
    num_blocks = -(-num_networks // block)
    if chunk_size is None:
        itemsize = torch.finfo(dtype).bits // 8
        per_network = (
            params_per_network * itemsize
            + 4 * k * sum(widths) * max(itemsize, 8)  # activations and their float64 copies
            + 8 * k * k * len(widths)
        )
        chunk_size = MEMORY_BUDGET_BYTES // per_network
    blocks_per_chunk = max(1, chunk_size // block)
    seeds = torch.randint(
        0, 2**62, (num_blocks,), generator=generator, device=generator.device
    ).tolist()

    grams = torch.empty(num_networks, len(widths), k, k, dtype=torch.float64, device=device)
    x64 = x.to(torch.float64)
    grams[:, 0] = x64 @ x64.T / widths[0]
    batched = vmap(
        lambda params, inputs: functional_call(wrapper, params, (inputs,)),
        in_dims=(0, None),
        randomness="error",
    )
    workers = min(torch.get_num_threads(), blocks_per_chunk) if device.type == "cpu" else 1
    # One parameter buffer for all chunks: fresh memory costs page faults on every chunk.
    buffers = {
        name: torch.empty(
            (min(blocks_per_chunk * block, num_networks), *shape), dtype=dtype, device=device
        )
        for name, shape in shapes.items()
    }
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        for first_block in range(0, num_blocks, blocks_per_chunk):
            chunk_blocks = range(first_block, min(first_block + blocks_per_chunk, num_blocks))
            start = first_block * block
            stop = min(chunk_blocks[-1] * block + block, num_networks)
            params = {name: buffer[: stop - start] for name, buffer in buffers.items()}

            def fill(b: int, start: int = start, stop: int = stop, params: dict = params) -> None:
                lo = b * block - start
                hi = min(lo + block, stop - start)
                block_generator = torch.Generator(device=device).manual_seed(seeds[b])
                for name, layer in linears:
                    prefix = f"net.{name}." if name else "net."
                    out = {
                        pname: params[prefix + pname][lo:hi]
                        for pname, _ in layer.named_parameters(recurse=False)
                    }
                    layer.sample_parameters(hi - lo, generator=block_generator, out=out)

            if workers > 1:
                list(pool.map(fill, chunk_blocks))
            else:
                for b in chunk_blocks:
                    fill(b)
            hidden = batched(params, x)[skip:]
            for index, h in enumerate(hidden, start=1):
                h64 = h.to(torch.float64)
                grams[start:stop, index] = h64 @ h64.mT / widths[index]
    return grams


# --------------------------------------------------------------------------------------------
# Exact Gram chains
# --------------------------------------------------------------------------------------------


def _psd_factor(v: torch.Tensor) -> torch.Tensor:
    """Lower-triangular ``L`` with ``L Lᵀ = v`` for PSD ``v`` of shape ``(..., k, k)``.

    For ``k >= 8`` LAPACK's batched Cholesky, with `_column_cholesky` for the matrices it
    rejects as not positive definite; for small ``k`` `_column_cholesky` alone (fewer calls).
    """
    if v.shape[-1] < 8:
        return _column_cholesky(v)
    factor, info = torch.linalg.cholesky_ex(v)
    singular = info != 0
    if bool(singular.any()):
        factor[singular] = _column_cholesky(v[singular])
    return factor


def _column_cholesky(v: torch.Tensor) -> torch.Tensor:
    """Cholesky factor of PSD ``v`` of shape ``(..., k, k)``, singular matrices included.

    Vectorised over the leading dimensions (a loop over the ``k`` columns); a pivot below
    ``16 eps`` times its diagonal entry gives a zero column, so ``L Lᵀ = v`` up to rounding for
    any PSD ``v``.
    """
    k = v.shape[-1]
    factor = torch.zeros_like(v)
    tiny = 16 * torch.finfo(v.dtype).eps
    for j in range(k):
        column = v[..., j:, j] - (factor[..., j:, :j] * factor[..., j : j + 1, :j]).sum(-1)
        pivot = column[..., 0]
        keep = pivot > tiny * v[..., j, j].abs()
        root = torch.sqrt(torch.where(keep, pivot, torch.ones_like(pivot)))
        column = torch.where(keep[..., None], column / root[..., None], 0.0)
        factor[..., j:, j] = column
    return factor


def _check_psd(name: str, v: object, device: torch.device) -> torch.Tensor:
    v = check_tensor(v, name, ("k", "k"), finite=True)
    if v.shape[0] != v.shape[1] or v.shape[0] < 1:
        raise ValueError(f"{name}: expected shape (k, k), got {tuple(v.shape)}")
    v = v.to(dtype=torch.float64, device=device)
    scale = v.abs().max().clamp_min(torch.finfo(torch.float64).tiny)
    if (v - v.T).abs().max() > 1e-10 * scale:
        raise ValueError(f"{name}: expected a symmetric matrix")
    if torch.linalg.eigvalsh(v).min() < -1e-10 * scale:
        raise ValueError(f"{name}: expected a positive semi-definite matrix")
    return (v + v.T) / 2


def mlp_gram_chain(
    v0: torch.Tensor,
    width: int,
    depth: int,
    activation: Activation,
    num_chains: int,
    *,
    generator: torch.Generator,
    weight_var: float = 1.0,
) -> torch.Tensor:
    """Exact Gram chain of an MLP of constant width, ``M`` chains at once.

    .. math::

        V_{\\ell+1} = \\frac{\\sigma^2}{n} \\sum_{i=1}^{n} \\phi(g_i)\\phi(g_i)^\\top, \\qquad
        g_i \\sim N(0, V_\\ell) \\text{ i.i.d.}, \\qquad \\sigma^2 = \\text{weight\\_var},

    with :math:`g = Z L^\\top`, :math:`Z \\in \\mathbb R^{n \\times k}` i.i.d. N(0, 1) and
    :math:`L L^\\top = V_\\ell` (a semi-definite-safe Cholesky factor): :math:`O(nk^2)` per layer.

    Same law as the network. Take :math:`z_1 = W_0 x`, :math:`z_{\\ell+1} = W_\\ell
    \\phi(z_\\ell)` with :math:`W_\\ell` i.i.d. :math:`N(0, \\sigma^2/n_\\ell)` (fan-in
    :math:`n_\\ell`), e.g. `MLP` with ``weight_std`` :math:`\\sigma`, no bias, either
    parameterisation. Write representations as ``(n, k)`` matrices (a column per input).
    :math:`W_\\ell` is independent of :math:`z_1, \\dots, z_\\ell`, so given them the rows of
    :math:`z_{\\ell+1}` are i.i.d. :math:`N(0, V_\\ell)` with :math:`V_\\ell =
    \\frac{\\sigma^2}{n}\\phi(z_\\ell)^\\top\\phi(z_\\ell)` (and :math:`V_0 = \\sigma^2 x^\\top x /
    n_{in}` for the first layer). This conditional law depends on the past only through
    :math:`V_\\ell`, and :math:`Z L^\\top` has it for any factor :math:`L`; so
    :math:`(V_0, \\dots, V_d)` is a Markov chain with this kernel, and the chain here has the
    same law as the network's. In terms of `simulate_grams` (``representation="post"``,
    whose ``grams[:, l]`` is :math:`G_\\ell = \\phi(z_\\ell)^\\top\\phi(z_\\ell)/n` with the same
    indexing, layer 0 the input): :math:`V_\\ell = \\sigma^2 G_\\ell` in law for
    :math:`\\ell = 0..d` when ``v0`` :math:`= \\sigma^2 G_0`. With :math:`\\sigma^2 = 1` and the
    constant :math:`c` inside the activation (Li & Nica's shaped MLP: normalised
    `ShapedReLU`, ``weight_std=1``) the two are the same random variable, entry by entry.
    Correlations are equal in law for any :math:`\\sigma^2`.

    Args:
        v0: :math:`V_0`, symmetric positive semi-definite, shape ``(k, k)``: the covariance of
            the first pre-activations.
        width: :math:`n \\ge 1`.
        depth: Number :math:`d \\ge 0` of layers.
        activation: Elementwise :math:`\\phi`, evaluated in float64.
        num_chains: Number ``M >= 1`` of independent chains.
        generator: Generator of the Gaussian draws (its device is used).
        weight_var: :math:`\\sigma^2 \\ge 0`.

    Returns:
        Float64 tensor of shape ``(M, d + 1, k, k)``: :math:`V_0, \\dots, V_d` of each chain.

    Raises:
        ValueError: a bad ``v0`` (shape, symmetry, definiteness), size or variance.
        TypeError: ``generator`` is not a ``torch.Generator``.
    """
    generator = _check_generator(generator)
    device = generator.device
    v0 = _check_psd("v0", v0, device)
    width = check_int("width", width)
    depth = check_int("depth", depth, low=0)
    num_chains = check_int("num_chains", num_chains)
    weight_var = check_number("weight_var", weight_var, low=0.0)
    k = v0.shape[0]
    out = torch.empty(num_chains, depth + 1, k, k, dtype=torch.float64, device=device)
    out[:, 0] = v0
    factor = _psd_factor(v0).expand(num_chains, k, k)
    # Representations are stored transposed, a row per input: z is (M, k, n) = L Zᵀ.
    for layer in range(1, depth + 1):
        noise = torch.randn(
            num_chains, k, width, dtype=torch.float64, device=device, generator=generator
        )
        h = activation(factor @ noise)
        v = (h @ h.mT) * (weight_var / width)
        out[:, layer] = v
        factor = _psd_factor(v)
    return out


def resnet_gram_chain(
    x0: torch.Tensor,
    depth: int,
    branch_scale: float,
    activation: Activation,
    num_chains: int,
    *,
    generator: torch.Generator,
) -> torch.Tensor:
    """Exact chain of the ResNet :math:`x_{\\ell+1} = x_\\ell + \\beta W_\\ell\\phi(x_\\ell)`.

    With the stream as an ``(n, k)`` matrix :math:`X_\\ell` (a column per input),

    .. math::

        X_{\\ell+1} = X_\\ell + \\frac{\\beta}{\\sqrt n} Z L^\\top, \\qquad
        L L^\\top = \\phi(X_\\ell)^\\top \\phi(X_\\ell), \\qquad
        V_\\ell = X_\\ell^\\top X_\\ell / n,

    with :math:`Z \\in \\mathbb R^{n \\times k}` i.i.d. N(0, 1): :math:`O(nk^2)` per layer.

    Same law as the network `ResidualMLP` with ``input_projection=False``, ``bias=False``,
    no norm, ``weight_std=1`` (:math:`W_\\ell` i.i.d. :math:`N(0, 1/n)`, either
    parameterisation) and ``branch_scale`` :math:`\\beta` (Li & Nica's ResNet has
    :math:`\\beta = \\sigma_r/\\sqrt d`): :math:`W_\\ell` is independent of
    :math:`X_0, \\dots, X_\\ell`, so given them the rows of :math:`W_\\ell \\phi(X_\\ell)` are
    i.i.d. :math:`N(0, \\phi(X_\\ell)^\\top\\phi(X_\\ell)/n)`, which is the law of the rows of
    :math:`Z L^\\top/\\sqrt n`. The transition kernels agree, so the whole stream
    :math:`(X_0, \\dots, X_d)` (not only its Gram matrices) has the network's law, and
    ``result[:, l]`` has the law of ``simulate_grams(...).grams[:, l]`` (layer 0 the input
    :math:`x_0`, layer :math:`\\ell` the stream after :math:`\\ell` blocks).

    Args:
        x0: The :math:`k` inputs as rows, shape ``(k, n)`` (the ``inputs`` of
            `simulate_grams`), or one such input per chain, shape ``(M, k, n)`` (e.g. the
            Gaussian output of a random input layer, drawn independently for each chain).
        depth: Number :math:`d \\ge 0` of residual blocks.
        branch_scale: :math:`\\beta`.
        activation: Elementwise :math:`\\phi`, evaluated in float64.
        num_chains: Number ``M >= 1`` of independent chains.
        generator: Generator of the Gaussian draws (its device is used).

    Returns:
        Float64 tensor of shape ``(M, d + 1, k, k)``: :math:`V_0, \\dots, V_d` of each chain.

    Raises:
        ValueError: a bad ``x0``, size or ``branch_scale``.
        TypeError: ``generator`` is not a ``torch.Generator``.
    """
    generator = _check_generator(generator)
    device = generator.device
    num_chains = check_int("num_chains", num_chains)
    shape = (num_chains, "k", "n") if getattr(x0, "ndim", 2) == 3 else ("k", "n")
    x0 = check_tensor(x0, "x0", shape, finite=True).to(device=device, dtype=torch.float64)
    depth = check_int("depth", depth, low=0)
    branch_scale = check_number("branch_scale", branch_scale)
    k, width = x0.shape[-2:]
    out = torch.empty(num_chains, depth + 1, k, k, dtype=torch.float64, device=device)
    # The stream is stored transposed, a row per input: (M, k, n), updated as X += s L Zᵀ.
    stream = x0.expand(num_chains, k, width).clone()
    out[:, 0] = stream @ stream.mT / width
    scale = branch_scale / math.sqrt(width)
    for layer in range(1, depth + 1):
        h = activation(stream)
        factor = _psd_factor(h @ h.mT)
        noise = torch.randn(
            num_chains, k, width, dtype=torch.float64, device=device, generator=generator
        )
        stream = torch.baddbmm(stream, factor, noise, alpha=scale)
        out[:, layer] = stream @ stream.mT / width
    return out


def moment_matched_chain(
    width: int,
    num_layers: int,
    num_chains: int,
    *,
    generator: torch.Generator,
    rho0: float = 0.0,
    drift: float = 2.0,
    variance: float = 8.0,
    record_layers: Sequence[int] | None = None,
) -> torch.Tensor:
    """Moment-matched chain of :math:`\\varepsilon_\\ell = 1 - \\rho_\\ell` of the ReLU MLP.

    For the He-initialised ReLU MLP (c = 2, no bias; docs/scaling-limits.md, claim 2):

    .. math::

        \\varepsilon_{\\ell+1} = \\Bigl[1 - J(1 - \\varepsilon_\\ell)
            + \\frac{b\\,\\varepsilon_\\ell}{n}\\Bigr]
            \\exp\\Bigl(\\sqrt{s^2/n}\\,\\xi_\\ell - \\frac{s^2}{2n}\\Bigr), \\qquad
        \\xi_\\ell \\sim N(0, 1),

    with :math:`(b, s^2) = (2, 8)`: the mean :math:`1 - J(1-\\varepsilon) + 2\\varepsilon/n`
    and the variance :math:`\\approx 8\\varepsilon^2/n` of one exact step near
    :math:`\\rho = 1`
    (:math:`1 - J(1-\\varepsilon)` from `perceptrons.theory.dual.one_minus_j`, without
    cancellation). The singular q-SDE (`perceptrons.theory.limits.simulate_q_sde`; its
    constants are our derivation) is its limit in
    :math:`q_\\ell = \\ell^2 \\varepsilon_\\ell`, :math:`t = \\ell / n`.

    Args:
        width: :math:`n \\ge 1`.
        num_layers: Number of steps :math:`\\ell_{max} \\ge 0`.
        num_chains: Number ``M >= 1`` of independent chains.
        generator: Generator of the :math:`\\xi_\\ell` (its device is used).
        rho0: Input correlation :math:`\\rho_0 \\in [-1, 1]`.
        drift: :math:`b \\ge 0`; other values than 2 serve to check that a test rejects them.
        variance: :math:`s^2 \\ge 0`; other values than 8 serve the same purpose.
        record_layers: Layers :math:`\\ell` to return (default: all). A deep chain (e.g.
            :math:`n = \\ell_{max} = 65536`) should record only the layers it needs: the full
            trajectory takes ``8 (num_layers + 1) M`` bytes.

    Returns:
        Float64 tensor of shape ``(len(record_layers), M)`` (default ``(num_layers + 1, M)``):
        :math:`\\varepsilon_\\ell = 1 - \\rho_\\ell` (clipped to ``[0, 2]``) for the recorded
        layers; multiply row :math:`\\ell` by :math:`\\ell^2` for :math:`q_\\ell`.

    Raises:
        ValueError: a bad size or ``rho0``.
        TypeError: ``generator`` is not a ``torch.Generator``.
    """
    generator = _check_generator(generator)
    width = check_int("width", width)
    num_layers = check_int("num_layers", num_layers, low=0)
    num_chains = check_int("num_chains", num_chains)
    rho0 = check_number("rho0", rho0, low=-1.0)
    if rho0 > 1:
        raise ValueError(f"rho0: expected a correlation in [-1, 1], got {rho0!r}")
    drift = check_number("drift", drift, low=0.0)
    variance = check_number("variance", variance, low=0.0)
    device = generator.device
    if record_layers is None:
        record = list(range(num_layers + 1))
    else:
        record = [int(i) for i in record_layers]
        if any(i < 0 or i > num_layers for i in record):
            raise ValueError(
                f"record_layers: expected layers in [0, {num_layers}], got {list(record_layers)}"
            )
    rows = {layer: row for row, layer in enumerate(record)}
    out = torch.empty(len(record), num_chains, dtype=torch.float64, device=device)
    eps = torch.full((num_chains,), 1.0 - rho0, dtype=torch.float64, device=device)
    if 0 in rows:
        out[rows[0]] = eps
    # noise is drawn in blocks of layers, so memory stays O(block * M) for any depth
    block = max(1, min(num_layers, 2**22 // num_chains))
    for start in range(0, num_layers, block):
        stop = min(start + block, num_layers)
        # float32 draws (several times faster than float64 on CPU), used in float64
        noise = torch.randn(
            stop - start, num_chains, dtype=torch.float32, device=device, generator=generator
        ).double()
        log_factor = math.sqrt(variance / width) * noise - variance / (2 * width)
        for layer in range(start, stop):
            mean = one_minus_j(eps).to(device) + drift * eps / width
            eps = (mean * torch.exp(log_factor[layer - start])).clamp(0.0, 2.0)
            if layer + 1 in rows:
                out[rows[layer + 1]] = eps
    return out
