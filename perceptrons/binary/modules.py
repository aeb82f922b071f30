"""Bit-packed inference modules: `PackedBinaryLinear`, `PackedBinaryAttention`, `to_packed`.

A packed module holds its ±1 weights as int64 words (`perceptrons.binary.pack_signs`, ``(d_out,
ceil(d_in / 64))``) and its per-channel scales ``alpha (d_out,)`` and bias ``(d_out,)`` in
floating point, all as buffers (no parameters: the modules are for inference and pass no
gradient to their weights). Built from a trained `perceptrons.layers.binary.BinaryLinear` /
`perceptrons.layers.binary.BinaryAttention` with ``from_binary``, or for a whole model with
`to_packed`, their outputs equal those of the float binary modules in eval mode:

* W1A1 (``binarize_input=True``): ``y = (k - 2 popcount(pack(x) XOR w)) * alpha + b``, the
  integer part exact (`perceptrons.binary.binary_matmul`); the float module sums ``±alpha``
  in float32, so the two agree to float rounding (about 1e-6 relative);
* W1A32 (``binarize_input=False``): real activations times the ±1 weights, unpacked on each
  call (storage stays packed): ``F.linear(x, alpha ⊙ unpack(w), b)``, the float module's
  operation on the same values;
* attention: ``q kᵀ`` by XNOR-popcount on the packed signs of ``q`` and ``k`` (exact
  integers, then ``* d^-1/2`` and softmax in float, as the float module does), the binariser
  on the probabilities in float, and ``B v`` by AND-popcount on the packed map and the packed
  signs of ``v`` (`perceptrons.binary.binary_mask_matmul`, exact). The only inexact part is the
  qkv projection (rounding as above).

Whole models: every sign is a discontinuity, so an entry that lies within float rounding of 0
before a sign can come out with the other sign than in the float model, and everything after
it differs; every packed layer agrees with its float layer on the same input to about 1e-6
relative, but a deep model on a large batch can have a few samples whose outputs differ
markedly (measured in ``benchmarks/binary.py``). The packed W1A1 output is bit-identical to
``(sign(x) Sᵀ) * alpha + b`` computed in float32 (the dot products of ±1 values are exact
integers in float32 for ``d_in < 2^24``, in any summation order), so a float model that
evaluates its binary layers in that order is reproduced exactly.

Only *binarised* layers are packed: a `BinaryLinear` or `BinaryAttention` with ``binarized =
False`` runs in full precision (``x Wᵀ + b``, softmax attention) and `to_packed` leaves it a
full-precision module. Attention with the stochastic ``"bernoulli"`` binariser is not packed
as a whole (its projections are).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from perceptrons.binary.kernels import BackendName, binary_mask_matmul, binary_matmul
from perceptrons.binary.packing import num_words, pack_mask, pack_signs, unpack_signs
from perceptrons.checks import check_tensor
from perceptrons.layers.binary import (
    BinaryAttention,
    BinaryLinear,
    binarize_attention,
)

__all__ = [
    "PACKED_BINARIZERS",
    "PackedBinaryAttention",
    "PackedBinaryLinear",
    "to_packed",
]

PACKED_BINARIZERS = ("sab", "threshold", "argmax", "presoftmax")
"""The deterministic attention binarisers `PackedBinaryAttention` supports."""


def _check_input(x: object, name: str, size: int) -> Tensor:
    expected = f"(..., {size})"
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a tensor of shape {expected}, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name}: expected a floating tensor of shape {expected}, got dtype {x.dtype}"
        )
    if x.dim() < 1 or x.shape[-1] != size:
        raise ValueError(f"{name}: expected shape {expected}, got {tuple(x.shape)}")
    return x


class PackedBinaryLinear(nn.Module):
    """Bit-packed binary linear layer ``(..., d_in) -> (..., d_out)`` for inference.

    ``y = sign(x) (alpha ⊙ S)ᵀ + b`` (W1A1) or ``y = x (alpha ⊙ S)ᵀ + b`` (W1A32) with ``S``
    the ±1 weights held packed (module docstring).

    Args:
        in_features: ``d_in``.
        out_features: ``d_out``.
        bias: Hold a bias.
        binarize_input: ``sign(x)`` (W1A1, XNOR-popcount) or real activations (W1A32).
        backend: Kernel backend of the W1A1 product (`perceptrons.binary.binary_matmul`).
        threads: Threads of the numba backend (None: ``torch.get_num_threads()``).
        dtype: Floating dtype of the scales and bias.

    Attributes:
        weight_packed: ``(d_out, ceil(d_in / 64))`` int64 words of the signs ``S``.
        scales: ``(d_out,)`` the per-channel scales ``alpha``.
        bias: ``(d_out,)`` or None.
    """

    weight_packed: Tensor
    scales: Tensor
    bias: Tensor | None

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        binarize_input: bool = True,
        backend: BackendName = "auto",
        threads: int | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"in_features, out_features: must be >= 1, got {in_features}, {out_features}"
            )
        self.in_features, self.out_features = in_features, out_features
        self.binarize_input = bool(binarize_input)
        self.backend, self.threads = backend, threads
        words = num_words(in_features)
        self.register_buffer("weight_packed", torch.zeros(out_features, words, dtype=torch.int64))
        self.register_buffer("scales", torch.ones(out_features, dtype=dtype))
        self.register_buffer("bias", torch.zeros(out_features, dtype=dtype) if bias else None)

    @classmethod
    def from_binary(
        cls, layer: BinaryLinear, *, backend: BackendName = "auto", threads: int | None = None
    ) -> PackedBinaryLinear:
        """Pack a binarised `BinaryLinear` (its ``weight_signs()``, scales and bias).

        A learned-scale (PWS) layer that has not run yet gets the mean scale it would set on
        its first forward; ``layer`` itself is not modified.

        Raises:
            TypeError: ``layer`` is not a `BinaryLinear`.
            ValueError: ``layer.binarized`` is False (it is a full-precision layer; keep it).
        """
        if not isinstance(layer, BinaryLinear):
            raise TypeError(f"layer: expected a BinaryLinear, got {type(layer).__name__}")
        if not layer.binarized:
            raise ValueError(
                "layer: binarized is False, so it runs in full precision (x W^T + b) and "
                "has no binary weights to pack; keep it as a BinaryLinear"
            )
        weight = layer.weight.detach()
        packed = cls(
            layer.in_features,
            layer.out_features,
            bias=layer.bias is not None,
            binarize_input=layer.binarize_input,
            backend=backend,
            threads=threads,
            dtype=weight.dtype,
        )
        if layer.scale == "learned" and not bool(layer.scale_initialized):
            scales = weight.abs().mean(1)  # the value its first forward would set
        else:
            scales = layer.channel_scales()
        with torch.no_grad():
            packed.weight_packed.copy_(pack_signs(layer.weight_signs()).cpu())
            packed.scales.copy_(scales)
            if layer.bias is not None:
                packed.bias.copy_(layer.bias.detach())
        return packed.to(weight.device)

    def weight_signs(self) -> Tensor:
        """``(d_out, d_in)`` the ±1 weights ``S``, unpacked (dtype of the scales)."""
        return unpack_signs(self.weight_packed, self.in_features, dtype=self.scales.dtype)

    def set_binarized(self, binarized: bool) -> None:
        """Packed layers are binary only: True is accepted, False raises ``ValueError``."""
        if not binarized:
            raise ValueError("a packed layer cannot run in full precision (no latent weights)")

    def forward(self, x: Tensor) -> Tensor:
        """``(..., d_in) -> (..., d_out)`` in the dtype of ``x``; no gradient to the weights
        (and none to ``x`` for W1A1)."""
        x = _check_input(x, "x", self.in_features)
        scales = self.scales.to(x.dtype)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        if not self.binarize_input:
            signs = unpack_signs(self.weight_packed, self.in_features, dtype=x.dtype)
            return F.linear(x, signs * scales[:, None], bias)
        rows = pack_signs(x).reshape(-1, self.weight_packed.shape[1])
        dots = binary_matmul(
            rows, self.weight_packed, self.in_features, backend=self.backend, threads=self.threads
        )
        y = dots.to(x.dtype).mul_(scales)  # in place: one output-sized buffer
        if bias is not None:
            y.add_(bias)
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, binarize_input={self.binarize_input}, "
            f"backend={self.backend!r}"
        )


class PackedBinaryAttention(nn.Module):
    """Bit-packed binary multi-head self-attention ``(b, n, e) -> (b, n, e)`` for inference.

    ``q, k, v = sign(qkv(x))`` packed per head, ``s = (d - 2 popcount(q XOR k)) / sqrt(d)``,
    ``P = softmax(s)``, ``B = binarizer(P)`` (or ``1[s > 0]`` for ``"presoftmax"``) packed
    along the keys, ``out = 2 popcount(B AND v₊) - popcount(B)`` per head, heads
    concatenated, then ``proj`` (module docstring).

    Args:
        embed_dim: ``e`` (a multiple of ``num_heads``).
        num_heads: ``h``.
        binarizer: One of `PACKED_BINARIZERS`.
        fraction: SAB's share of the row maximum.
        bias: Biases in both projections.
        backend: Kernel backend (`perceptrons.binary.binary_matmul`).
        threads: Threads of the numba backend.
        dtype: Floating dtype of the scales and biases.

    Attributes:
        qkv: `PackedBinaryLinear` ``e -> 3 e`` (W1A1).
        proj: `PackedBinaryLinear` ``e -> e`` (W1A1).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        *,
        binarizer: str = "sab",
        fraction: float = 0.25,
        bias: bool = True,
        backend: BackendName = "auto",
        threads: int | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if num_heads < 1 or embed_dim % num_heads:
            raise ValueError(
                f"embed_dim, num_heads: embed_dim must be a multiple of num_heads >= 1, got "
                f"{embed_dim}, {num_heads}"
            )
        if binarizer not in PACKED_BINARIZERS:
            raise ValueError(
                f"binarizer: PackedBinaryAttention supports the deterministic binarizers "
                f"{PACKED_BINARIZERS}, got {binarizer!r} (a 'bernoulli' map is random; keep "
                f"that attention a BinaryAttention)"
            )
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction: must be in (0, 1], got {fraction}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.binarizer, self.fraction = binarizer, fraction
        self.backend, self.threads = backend, threads
        kwargs: dict[str, Any] = {
            "bias": bias,
            "backend": backend,
            "threads": threads,
            "dtype": dtype,
        }
        self.qkv = PackedBinaryLinear(embed_dim, 3 * embed_dim, **kwargs)
        self.proj = PackedBinaryLinear(embed_dim, embed_dim, **kwargs)

    @classmethod
    def from_binary(
        cls,
        attention: BinaryAttention,
        *,
        backend: BackendName = "auto",
        threads: int | None = None,
    ) -> PackedBinaryAttention:
        """Pack a binarised `BinaryAttention` (both projections and its binariser).

        Raises:
            TypeError: not a `BinaryAttention`.
            ValueError: it (or one of its projections) is not binarised, a projection does
                not binarise its input, or its binariser is not in `PACKED_BINARIZERS`.
        """
        if not isinstance(attention, BinaryAttention):
            raise TypeError(
                f"attention: expected a BinaryAttention, got {type(attention).__name__}"
            )
        layers = (attention.qkv, attention.proj)
        if not (attention.binarized and all(layer.binarized for layer in layers)):
            raise ValueError(
                "attention: binarized is False (for it or a projection), so it runs in full "
                "precision; keep it as a BinaryAttention"
            )
        if not all(layer.binarize_input for layer in layers):
            raise ValueError("attention: its projections must binarise their inputs (W1A1)")
        weight = attention.qkv.weight
        packed = cls(
            attention.embed_dim,
            attention.num_heads,
            binarizer=attention.binarizer,
            fraction=attention.fraction,
            bias=attention.qkv.bias is not None,
            backend=backend,
            threads=threads,
            dtype=weight.dtype,
        )
        packed.qkv = PackedBinaryLinear.from_binary(attention.qkv, backend=backend, threads=threads)
        packed.proj = PackedBinaryLinear.from_binary(
            attention.proj, backend=backend, threads=threads
        )
        return packed.to(weight.device)

    def set_binarized(self, binarized: bool) -> None:
        """Packed attention is binary only: True is accepted, False raises ``ValueError``."""
        if not binarized:
            raise ValueError("packed attention cannot run in full precision (no latent weights)")

    def _scores(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Integer scores ``q kᵀ`` ``(b, h, n, n)`` int32, their scaled float values, and the
        ``(b, h, n, d)`` values ``v`` (real; only their signs are used)."""
        b, n, _ = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (b, h, n, d) each
        d = self.head_dim
        dots = binary_matmul(
            pack_signs(q), pack_signs(k), d, backend=self.backend, threads=self.threads
        )
        return dots, dots.to(x.dtype) * d**-0.5, v

    def _binary_map(self, dots: Tensor, scores: Tensor) -> tuple[Tensor, Tensor]:
        """``(P, B)``: float probabilities and the bool ``(b, h, n, n)`` map."""
        probs = scores.softmax(-1)  # scores > 0 exactly where the integer dots are
        return probs, binarize_attention(scores, probs, self.binarizer, self.fraction) > 0.5

    def attention_maps(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(P, B)``: the ``(b, h, n, n)`` softmax probabilities and the {0, 1} map (dtype of
        ``x``), as `BinaryAttention.attention_maps` returns them."""
        check_tensor(x, "x", ("b", "n", self.embed_dim))
        dots, scores, _ = self._scores(x)
        probs, mask = self._binary_map(dots, scores)
        return probs, mask.to(x.dtype)

    def forward(self, x: Tensor) -> Tensor:
        """``(b, n, e) -> (b, n, e)`` in the dtype of ``x``; no gradient."""
        check_tensor(x, "x", ("b", "n", self.embed_dim))
        b, n, _ = x.shape
        dots, scores, v = self._scores(x)
        _, mask = self._binary_map(dots, scores)
        out = binary_mask_matmul(
            pack_mask(mask),
            pack_signs(v.transpose(-1, -2)),  # (b, h, d, W): signs of v along the tokens
            n,
            backend=self.backend,
            threads=self.threads,
        )  # (b, h, n, d) int32
        out = out.to(x.dtype).transpose(1, 2).reshape(b, n, self.embed_dim)
        return self.proj(out)

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
            f"binarizer={self.binarizer!r}, fraction={self.fraction}, backend={self.backend!r}"
        )


def _packed_or_none(
    module: nn.Module, backend: BackendName, threads: int | None, attention: bool
) -> nn.Module | None:
    """The packed replacement of ``module``, or None to keep it (and recurse into it)."""
    if isinstance(module, BinaryLinear):
        if module.binarized:
            return PackedBinaryLinear.from_binary(module, backend=backend, threads=threads)
        return None
    if (
        attention
        and isinstance(module, BinaryAttention)
        and module.binarized
        and module.qkv.binarized
        and module.proj.binarized
        and module.qkv.binarize_input
        and module.proj.binarize_input
        and module.binarizer in PACKED_BINARIZERS
    ):
        return PackedBinaryAttention.from_binary(module, backend=backend, threads=threads)
    return None


def _replace_children(
    module: nn.Module, backend: BackendName, threads: int | None, attention: bool
) -> None:
    for name, child in list(module.named_children()):
        packed = _packed_or_none(child, backend, threads, attention)
        if packed is None:
            _replace_children(child, backend, threads, attention)
        else:
            setattr(module, name, packed)


def to_packed(
    model: nn.Module,
    *,
    backend: BackendName = "auto",
    threads: int | None = None,
    attention: bool = True,
) -> nn.Module:
    """A bit-packed inference copy of ``model``; ``model`` itself is not modified.

    Every binarised `BinaryLinear` of a deep copy becomes a `PackedBinaryLinear` and, with
    ``attention``, every binarised `BinaryAttention` with a deterministic binariser a
    `PackedBinaryAttention` (a ``"bernoulli"`` one keeps its float attention with packed
    projections). Layers with ``binarized = False`` are full precision and stay as they are.
    The copy is put in eval mode.

    Args:
        model: Any module (a `BinaryLinear` or `BinaryAttention` itself is converted too).
        backend: Kernel backend of the packed modules (`perceptrons.binary.binary_matmul`).
        threads: Threads of the numba backend (None: ``torch.get_num_threads()``).
        attention: Also pack attention (False: only the linear layers).

    Returns:
        The packed copy, in eval mode.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    clone = copy.deepcopy(model)
    packed = _packed_or_none(clone, backend, threads, attention)
    if packed is None:
        _replace_children(clone, backend, threads, attention)
        packed = clone
    return packed.eval()
