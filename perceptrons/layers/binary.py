"""Binary layers of BiViT: sign quantisers with straight-through gradients, `BinaryLinear`
with mean or learned (PWS) weight scales, attention-map binarisers (SAB and its ablations) and
`BinaryAttention`.

Paper: Yefei He, Zhenyu Lou, Luoming Zhang, Jing Liu, Weijia Wu, Hong Zhou & Bohan Zhuang,
*BiViT: Extremely Compressed Binary Vision Transformers*, ICCV 2023, arXiv:2211.07091; partial
official code ``github.com/ThisisBillhe/BiViT`` (``binary_modules/utils_quant.py``: the
quantisers and the SAB attention; no training code).

Dimension legend: ``...`` any leading dimensions, ``d_in`` = ``in_features``, ``d_out`` =
``out_features``, ``b`` batch, ``n`` tokens, ``e`` = ``embed_dim``, ``h`` heads, ``d`` = ``e /
h`` head width.

What follows the official code:

* ``sign`` maps 0 to +1 (true ±1, what bit-packing needs; ``torch.sign(0) = 0``);
* the straight-through estimator (STE) ``"clipped"`` passes the gradient where ``|x| < 1`` and
  zero elsewhere (``|x| = 1`` included); ``"bireal"`` is Bi-Real Net's ApproxSign gradient
  (Liu et al. 2018, arXiv:1808.00278): ``2 + 2x`` on ``[-1, 0)``, ``2 - 2x`` on ``[0, 1)``, 0
  elsewhere;
* `BinaryLinear`: ``y = sign(x) (alpha ⊙ sign(W - mean_row W))ᵀ + b``; the signs of each output
  row are taken after centring it by its mean, ``alpha_c = mean|W_c|`` of the *uncentred* row
  and detached (``scale="mean"``, XNOR-Net's closed-form scale), or a parameter initialised to
  that value on the first forward and then learned (``scale="learned"``, BiViT's parameterised
  weight scales, PWS); activations get no scale; the bias stays full precision;
* softmax-aware binarisation (SAB) of an attention row ``p``: ``B_j = 1[p_j >= 0.25 max_k
  p_k]``, with no renormalisation and no scale, forward ``B``, backward the softmax's (the
  gradient of ``B`` w.r.t. ``p`` is taken as the identity: ``B.detach() - p.detach() + p``);
* the binary attention: ``q, k, v = sign(BinaryLinear(x))``, ``P = softmax(q kᵀ / sqrt(d))``,
  ``out = B(P) v``, then a binary output projection.

Our choices (the paper body was not available): the ablation binarisers follow the forms in
the official file: `threshold_binarize` (``1[p >= 0.5]``, BiT-style rounding of the
probabilities), `presoftmax_binarize` (``1[s > 0]`` on the scaled scores, BiBERT's
Bi-Attention, with the clipped STE on the scores), `bernoulli_binarize` (``B ~ Bernoulli(p)``)
and `argmax_binarize` (one-hot of the row's argmax), all with the identity STE of SAB; the
``binarized`` switch of every binary module (False: the same latent weights used in full
precision, ``y = x Wᵀ + b`` and softmax attention), which the cross-layer binarisation schedule
of `perceptrons.models.bivit` flips stage by stage.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, TypeAlias

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from perceptrons.checks import check_tensor

__all__ = [
    "BINARIZERS",
    "BinarizerName",
    "BinaryAttention",
    "BinaryLinear",
    "BinaryMLP",
    "STEName",
    "ScaleName",
    "argmax_binarize",
    "bernoulli_binarize",
    "binarize_attention",
    "binary_sign",
    "empty_row_fraction",
    "presoftmax_binarize",
    "sign_pm1",
    "softmax_aware_binarize",
    "threshold_binarize",
]

STEName: TypeAlias = Literal["clipped", "bireal"]
ScaleName: TypeAlias = Literal["mean", "learned"]
BinarizerName: TypeAlias = Literal["sab", "threshold", "presoftmax", "bernoulli", "argmax"]
_STES = ("clipped", "bireal")
_SCALES = ("mean", "learned")


def sign_pm1(x: Tensor) -> Tensor:
    """``+1`` where ``x >= 0``, ``-1`` elsewhere (``(...) -> (...)``, dtype of ``x``); no
    gradient."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, ste: str) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.ste = ste
        return sign_pm1(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        inside = x.abs() < 1
        if ctx.ste == "clipped":
            return grad * inside.to(grad.dtype), None
        slope = torch.where(x < 0, 2 + 2 * x, 2 - 2 * x)
        return grad * torch.where(inside, slope, torch.zeros_like(slope)), None


def binary_sign(x: Tensor, ste: STEName = "clipped") -> Tensor:
    """``sign_pm1(x)`` with a straight-through gradient (``(...) -> (...)``).

    Args:
        x: Any floating tensor.
        ste: ``"clipped"``: ``d/dx = 1[|x| < 1]``; ``"bireal"``: ``2 - 2|x|`` on ``|x| < 1``,
            0 elsewhere (ApproxSign).
    """
    if ste not in _STES:
        raise ValueError(f"ste: must be one of {_STES}, got {ste!r}")
    return _SignSTE.apply(x, ste)


def _straight_through(hard: Tensor, soft: Tensor) -> Tensor:
    """Forward ``hard``, gradient of ``soft`` (identity w.r.t. ``soft``)."""
    return hard.detach() - soft.detach() + soft


def _check_last(x: object, name: str, size: int | None = None) -> Tensor:
    """``x`` as a floating tensor of shape ``(..., size)`` (any size >= 1 when None)."""
    expected = f"(..., {'n' if size is None else size})"
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a tensor of shape {expected}, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name}: expected a floating tensor of shape {expected}, got dtype {x.dtype}"
        )
    if x.dim() < 1 or x.shape[-1] < 1 or (size is not None and x.shape[-1] != size):
        raise ValueError(f"{name}: expected shape {expected}, got {tuple(x.shape)}")
    return x


def _check_rows(x: object, name: str) -> Tensor:
    return _check_last(x, name)


def softmax_aware_binarize(probs: Tensor, fraction: float = 0.25) -> Tensor:
    """SAB: ``1[p_j >= fraction * max_k p_k]`` per row of attention probabilities.

    Args:
        probs: ``(..., n)`` rows of probabilities (softmax outputs).
        fraction: Share of the row maximum an entry must reach (0.25 in the official code).

    Returns:
        ``(..., n)`` in {0, 1} (dtype of ``probs``); the row's argmax is always kept, so no row
        is empty. The gradient w.r.t. ``probs`` is the identity (the backward pass is the
        softmax's).
    """
    _check_rows(probs, "probs")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction: must be in (0, 1], got {fraction}")
    hard = (probs >= fraction * probs.amax(-1, keepdim=True)).to(probs.dtype)
    return _straight_through(hard, probs)


def threshold_binarize(probs: Tensor, threshold: float = 0.5) -> Tensor:
    """``1[p_j >= threshold]`` (``(..., n) -> (..., n)``; identity gradient): rounding of the
    probabilities, which empties every row whose maximum is below ``threshold``."""
    _check_rows(probs, "probs")
    return _straight_through((probs >= threshold).to(probs.dtype), probs)


def presoftmax_binarize(scores: Tensor) -> Tensor:
    """BiBERT-style Bi-Attention on the *scores*: ``1[s_j > 0]`` (``(..., n) -> (..., n)``),
    with the clipped straight-through gradient ``1[|s| < 1]`` w.r.t. ``scores``."""
    _check_rows(scores, "scores")
    hard = (scores > 0).to(scores.dtype)
    soft = scores * (scores.detach().abs() < 1).to(scores.dtype)
    return _straight_through(hard, soft)


def bernoulli_binarize(probs: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """``B_j ~ Bernoulli(p_j)`` independently (``(..., n) -> (..., n)``; identity gradient);
    stochastic in eval as well."""
    _check_rows(probs, "probs")
    hard = torch.bernoulli(probs.detach().clamp(0, 1), generator=generator)
    return _straight_through(hard, probs)


def argmax_binarize(probs: Tensor) -> Tensor:
    """One-hot of each row's argmax (``(..., n) -> (..., n)``; identity gradient)."""
    _check_rows(probs, "probs")
    hard = F.one_hot(probs.argmax(-1), probs.shape[-1]).to(probs.dtype)
    return _straight_through(hard, probs)


BINARIZERS: dict[str, Callable[..., Tensor]] = {
    "sab": softmax_aware_binarize,
    "threshold": threshold_binarize,
    "presoftmax": presoftmax_binarize,
    "bernoulli": bernoulli_binarize,
    "argmax": argmax_binarize,
}
"""Attention binarisers by name; ``"presoftmax"`` takes the scores, the others the
probabilities."""


def binarize_attention(
    scores: Tensor, probs: Tensor, binarizer: str = "sab", fraction: float = 0.25
) -> Tensor:
    """The {0, 1} attention map of ``binarizer`` (`BINARIZERS`): of the scaled ``scores`` for
    ``"presoftmax"``, of the probabilities ``probs = softmax(scores)`` for the others (SAB with
    ``fraction``); both ``(..., n)``, straight-through gradients as each binariser's."""
    if binarizer == "presoftmax":
        return presoftmax_binarize(scores)
    if binarizer == "sab":
        return softmax_aware_binarize(probs, fraction)
    if binarizer not in BINARIZERS:
        raise ValueError(f"binarizer: must be one of {tuple(BINARIZERS)}, got {binarizer!r}")
    return BINARIZERS[binarizer](probs)


def empty_row_fraction(binary: Tensor) -> float:
    """Fraction of the rows of a ``(..., n)`` {0, 1} attention map with no entry set."""
    _check_rows(binary, "binary")
    return float((binary.detach().sum(-1) == 0).float().mean())


class BinaryLinear(nn.Module):
    """Binary linear layer ``(..., d_in) -> (..., d_out)``: ``sign(x) (alpha ⊙ sign(W -
    mean_row W))ᵀ + b`` (see the module docstring).

    Args:
        in_features: ``d_in``.
        out_features: ``d_out``.
        bias: A full-precision bias.
        scale: ``"mean"``: ``alpha_c = mean_i |W_ci|``, detached; ``"learned"`` (PWS): a
            ``(d_out, 1)`` parameter ``weight_scale`` set to that value on the first forward
            (or the first call of `channel_scales`), then trained.
        binarize_input: ``sign(x)`` (W1A1); False keeps real activations (W1A32).
        ste: Straight-through gradient of the signs of the input and of the weights:
            ``"clipped"`` or ``"bireal"``.
        generator: Generator of the initial weights (``nn.Linear``'s kaiming-uniform weight
            and ``U(±1/sqrt(d_in))`` bias).
        device: Device of the parameters.
        dtype: Floating dtype of the parameters.

    Attributes:
        weight: ``(d_out, d_in)`` latent full-precision weights.
        bias: ``(d_out,)`` or None.
        weight_scale: ``(d_out, 1)`` PWS parameter (``scale="learned"`` only).
        binarized: False runs the layer in full precision with the same latent weights
            (``x Wᵀ + b``), True (default) binary; `set_binarized` flips it.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        scale: ScaleName = "mean",
        binarize_input: bool = True,
        ste: STEName = "clipped",
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"in_features, out_features: must be >= 1, got {in_features}, {out_features}"
            )
        if scale not in _SCALES:
            raise ValueError(f"scale: must be one of {_SCALES}, got {scale!r}")
        if ste not in _STES:
            raise ValueError(f"ste: must be one of {_STES}, got {ste!r}")
        self.in_features, self.out_features = in_features, out_features
        self.scale, self.binarize_input, self.ste = scale, binarize_input, ste
        self.binarized = True
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_features, in_features, **factory))
        bound = 1.0 / math.sqrt(in_features)
        with torch.no_grad():
            # nn.Linear's kaiming_uniform_(a=sqrt(5)) is U(±1/sqrt(d_in)) for the weight too
            self.weight.uniform_(-bound, bound, generator=generator)
        if bias:
            self.bias: nn.Parameter | None = nn.Parameter(torch.empty(out_features, **factory))
            with torch.no_grad():
                self.bias.uniform_(-bound, bound, generator=generator)
        else:
            self.register_parameter("bias", None)
        if scale == "learned":
            self.weight_scale = nn.Parameter(torch.ones(out_features, 1, **factory))
            # persistent, so that a loaded model does not re-initialise its learned scales
            self.register_buffer("scale_initialized", torch.zeros((), dtype=torch.bool))

    def set_binarized(self, binarized: bool) -> None:
        """Run binary (True) or in full precision with the same weights (False)."""
        self.binarized = bool(binarized)

    def _mean_scale(self) -> Tensor:
        return self.weight.detach().abs().mean(1, keepdim=True)  # (d_out, 1)

    def _scale(self) -> Tensor:
        if self.scale == "mean":
            return self._mean_scale()
        if not bool(self.scale_initialized):
            with torch.no_grad():
                self.weight_scale.copy_(self._mean_scale())
                self.scale_initialized.fill_(True)
        return self.weight_scale

    def channel_scales(self) -> Tensor:
        """``(d_out,)`` the per-output-channel scales ``alpha`` (detached). With learned
        scales not yet initialised, this initialises them (as the first forward would)."""
        return self._scale().detach().reshape(-1)

    def weight_signs(self) -> Tensor:
        """``(d_out, d_in)`` ``sign(W - mean_row W)`` in {-1, +1} (detached)."""
        w = self.weight.detach()
        return sign_pm1(w - w.mean(1, keepdim=True))

    def binary_weight(self) -> Tensor:
        """``(d_out, d_in)`` ``alpha ⊙ sign(W - mean_row W)``, differentiable (STE to ``W``,
        and to ``weight_scale`` with PWS)."""
        centred = self.weight - self.weight.mean(1, keepdim=True)
        return binary_sign(centred, self.ste) * self._scale()

    def forward(self, x: Tensor) -> Tensor:
        """``(..., d_in) -> (..., d_out)``.

        Binary: ``(sign(x) S^T) * alpha + b`` with ``S = sign(W - mean_row W)``: the products
        with the signs first (exact integers for W1A1), then the scales, so that the
        bit-packed layer (`perceptrons.binary.PackedBinaryLinear`) reproduces the result bit
        for bit; the same value and gradients as ``sign(x) (alpha ⊙ S)^T + b``.
        """
        _check_last(x, "x", self.in_features)
        if not self.binarized:
            return F.linear(x, self.weight, self.bias)
        if self.binarize_input:
            x = binary_sign(x, self.ste)
        signs = binary_sign(self.weight - self.weight.mean(1, keepdim=True), self.ste)
        y = F.linear(x, signs) * self._scale().reshape(-1)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, scale={self.scale!r}, "
            f"binarize_input={self.binarize_input}, ste={self.ste!r}, binarized={self.binarized}"
        )


class BinaryMLP(nn.Module):
    """``fc2(GELU(fc1(x)))`` of two `BinaryLinear` layers (``(..., e) -> (..., e)``).

    With W1A1, fc2 takes ``sign(GELU(h))``, which is ``sign(h)`` except where GELU underflows
    to ``-0.0`` (``h`` below about -9), which ``sign`` maps to +1 like every zero; after a
    LayerNorm such values are rare, and the packed model reproduces them exactly.

    Args:
        embed_dim: ``e``.
        hidden_features: Hidden width.
        scale: Weight scales of both layers.
        activation_bits: 1 (W1A1: both layers take ``sign`` of their input) or 32 (W1A32: real
            activations, binary weights).
        ste: Straight-through gradient.
        generator: Generator of the initial weights.
        device: Device of the parameters.
        dtype: Floating dtype of the parameters.
    """

    def __init__(
        self,
        embed_dim: int,
        hidden_features: int,
        *,
        scale: ScaleName = "learned",
        activation_bits: Literal[1, 32] = 1,
        ste: STEName = "clipped",
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if activation_bits not in (1, 32):
            raise ValueError(f"activation_bits: must be 1 or 32, got {activation_bits}")
        kwargs = {
            "scale": scale,
            "binarize_input": activation_bits == 1,
            "ste": ste,
            "generator": generator,
            "device": device,
            "dtype": dtype,
        }
        self.fc1 = BinaryLinear(embed_dim, hidden_features, **kwargs)
        self.act = nn.GELU()
        self.fc2 = BinaryLinear(hidden_features, embed_dim, **kwargs)

    def forward(self, x: Tensor) -> Tensor:
        """``(..., e) -> (..., e)``."""
        return self.fc2(self.act(self.fc1(x)))


class BinaryAttention(nn.Module):
    """Multi-head self-attention with binary projections, binary Q/K/V and a binarised
    attention map (``(b, n, e) -> (b, n, e)``).

    Binary (``binarized=True``): ``q, k, v = sign(BinaryLinear_qkv(x))`` (W1A1, STE), ``s = q
    kᵀ / sqrt(d)``, ``P = softmax(s)``, ``out = B v`` with ``B = binarizer(P)`` (or of ``s``
    for ``"presoftmax"``) in {0, 1} and no renormalisation, heads concatenated, then
    ``BinaryLinear_proj``. Full precision (``binarized=False``): the same latent weights as
    ordinary softmax attention, ``softmax(q kᵀ / sqrt(d)) v``.

    Args:
        embed_dim: ``e`` (a multiple of ``num_heads``).
        num_heads: ``h``.
        binarizer: ``"sab"`` (default), ``"threshold"``, ``"presoftmax"``, ``"bernoulli"``
            or ``"argmax"`` (`BINARIZERS`).
        fraction: SAB's share of the row maximum (0.25, the official code's).
        scale: Weight scales of both projections (``"learned"``: PWS, as the official
            attention uses).
        ste: Straight-through gradient of every sign.
        bias: Full-precision biases in both projections.
        generator: Generator of the initial weights.
        device: Device of the parameters.
        dtype: Floating dtype of the parameters.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        binarizer: BinarizerName = "sab",
        fraction: float = 0.25,
        scale: ScaleName = "learned",
        ste: STEName = "clipped",
        bias: bool = True,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if num_heads < 1 or embed_dim % num_heads:
            raise ValueError(
                f"embed_dim, num_heads: embed_dim must be a multiple of num_heads >= 1, got "
                f"{embed_dim}, {num_heads}"
            )
        if binarizer not in BINARIZERS:
            raise ValueError(f"binarizer: must be one of {tuple(BINARIZERS)}, got {binarizer!r}")
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction: must be in (0, 1], got {fraction}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.binarizer, self.fraction, self.ste = binarizer, fraction, ste
        self.binarized = True
        kwargs = {
            "bias": bias,
            "scale": scale,
            "ste": ste,
            "generator": generator,
            "device": device,
            "dtype": dtype,
        }
        self.qkv = BinaryLinear(embed_dim, 3 * embed_dim, **kwargs)
        self.proj = BinaryLinear(embed_dim, embed_dim, **kwargs)

    def set_binarized(self, binarized: bool) -> None:
        """Binary attention and projections (True) or full precision (False)."""
        self.binarized = bool(binarized)
        self.qkv.set_binarized(binarized)
        self.proj.set_binarized(binarized)

    def _heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        b, n, _ = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (b, h, n, d) each
        if self.binarized:
            q, k, v = (binary_sign(t, self.ste) for t in (q, k, v))
        return q, k, v

    def _binarize(self, scores: Tensor, probs: Tensor) -> Tensor:
        return binarize_attention(scores, probs, self.binarizer, self.fraction)

    def attention_maps(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """``(P, B)``: the ``(b, h, n, n)`` softmax probabilities and, when binarised, the
        {0, 1} map the forward pass uses (None in full precision)."""
        check_tensor(x, "x", ("b", "n", self.embed_dim))
        q, k, v = self._heads(x)
        scores = (q @ k.transpose(-1, -2)) * self.head_dim**-0.5
        probs = scores.softmax(-1)
        return probs, (self._binarize(scores, probs) if self.binarized else None)

    def forward(self, x: Tensor) -> Tensor:
        """``(b, n, e) -> (b, n, e)``."""
        check_tensor(x, "x", ("b", "n", self.embed_dim))
        b, n, _ = x.shape
        q, k, v = self._heads(x)
        scores = (q @ k.transpose(-1, -2)) * self.head_dim**-0.5
        probs = scores.softmax(-1)
        weights = self._binarize(scores, probs) if self.binarized else probs
        out = (weights @ v).transpose(1, 2).reshape(b, n, self.embed_dim)
        return self.proj(out)

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
            f"binarizer={self.binarizer!r}, fraction={self.fraction}, binarized={self.binarized}"
        )
