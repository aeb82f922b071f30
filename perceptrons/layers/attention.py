"""Attentive MLP (AMLP) attention and the attentions it is compared with.

Jiang, Zhang, Feng, Zheng & Kong, "Attentive Multi-Layer Perceptron for Non-autoregressive
Generation", ECML-PKDD 2023, arXiv:2310.09512 (official code ``Shark-NLP/AttentiveMLP``).

Dimension legend: ``b`` batch, ``n`` query length, ``m`` key length, ``e`` = ``embed_dim``,
``h`` heads, ``d`` = ``e / h`` head dim, ``c`` = ``num_landmarks``.

Softmax attention is a two-layer MLP :math:`\\sigma(Q W_1) W_2` whose weights :math:`W_1 = K^\\top`
(``d x m``) and :math:`W_2 = V` (``m x d``) depend on the input, so its hidden width is the key
length. AMLP keeps the adaptive-MLP view with a constant hidden width ``c``:

.. math::

    \\mathrm{AMLP}(Q, K, V) = \\mathrm{LN}\\big(\\mathrm{softmax}_c(s\\, Q W_{QK})\\, W_{QKV}\\big),
    \\qquad W_{QK} \\in \\mathbb R^{d \\times c}, \\quad W_{QKV} \\in \\mathbb R^{c \\times d},

per head, after the usual ``q``/``k``/``v`` in-projections; the heads are concatenated and go
through the output projection. Both weights pool over *all* queries and keys, so AMLP is
non-causal by construction; `AttentiveMLP` refuses ``attn_mask`` and ``is_causal``. Time and
memory are linear in ``n`` and ``m``: no ``n x m`` tensor is ever formed (see
`perceptrons.layers.memory` to check a module).

**PQuery** (``variant="pquery"``, the paper's choice for translation), with learned pseudo-queries
:math:`C_q, C_k \\in \\mathbb R^{c \\times d}` per head and one ``Linear(2d, d)`` shared by the
heads:

.. math::

    P_q = \\mathrm{softmax}_n(C_q Q^\\top) Q, \\quad P_k = \\mathrm{softmax}_m(C_k K^\\top) K,
    \\quad M = \\mathrm{Linear}([P_q \\| P_k]) \\in \\mathbb R^{c \\times d}, \\\\
    W_{QK} = M^\\top, \\qquad W_{QKV} = \\mathrm{softmax}_m(M K^\\top)\\, V, \\qquad s = 1.

Queries are first centred by an exponential moving average of their mean, the buffer
``query_mean`` of shape ``(d,)`` shared by the heads (momentum ``ema_momentum``, 0.99 in the
paper's translation runs).

**Cov** (``variant="cov"``, used by the authors for speech, super-resolution and forecasting),
with :math:`\\hat X` the input with every feature column L2-normalised over the sequence axis,
learned landmarks :math:`C_q, C_k \\in \\mathbb R^{c \\times d}` and learned temperatures
:math:`\\tau_q, \\tau_k, \\tau_{kv}` per head:

.. math::

    A_q = \\mathrm{softmax}(\\tau_q \\hat Q^\\top \\hat Q), \\quad
    A_k = \\mathrm{softmax}(\\tau_k \\hat K^\\top \\hat K), \\quad
    B = \\mathrm{softmax}(\\tau_{kv} \\hat K^\\top \\hat V) \\quad (d \\times d), \\\\
    M = \\mathrm{ReLU}(C_q A_q + C_k A_k), \\quad W_{QK} = M^\\top, \\quad
    W_{QKV} = M B^\\top, \\quad s = 1/\\sqrt d.

Cov sees keys and values only through the order-free Gram matrices, so permuting the source
tokens leaves it unchanged; its output is not a weighted sum of value vectors, which is why the
authors found it weaker than PQuery for cross-attention.

Masking: padded keys are excluded from every pooling over keys, padded queries from every
pooling over queries (softmax logits set to the dtype's minimum and the probabilities zeroed,
so a fully padded sequence gives zeros, not NaN; Cov zeroes padded positions before the
normalisation), and padded query rows of every module's output are zero. Cov's normalised
Gram matrices are computed as :math:`\\mathrm{diag}(1/\\|X\\|) X^\\top Y \\mathrm{diag}(1/\\|Y\\|)`
(the same numbers as normalising first), so no normalised ``n x d`` copy is saved for backward.

As in the official code: per-head output LayerNorm (one ``LayerNorm(d)`` shared by the heads);
xavier-normal (gain 2^-1/2) landmarks of shape ``(h, c, d)`` and temperatures of shape
``(h, 1, 1)`` (so temperatures start random, possibly negative); fairseq's projection init
(xavier-uniform, gain 2^-1/2 for q/k/v, zero biases); optional depthwise convolution branch
:math:`\\mathrm{Dropout}(\\mathrm{ReLU}(\\mathrm{Conv}_n(Q)))` added before the LayerNorm
(``conv_kernel_size``, off by default). Reconstructions and deviations: the EMA is updated only
in training mode (the official code also updates it in eval) from the mean over *unpadded*
queries, stored detached (the current batch's mean still carries gradient, as in the official
code); ``dropout`` acts on the ``n x c`` mixing weights :math:`\\mathrm{softmax}_c(\\cdot)`
(the official modules drop out only the conv branch); the optional q/k/v LayerNorms
(``add_norm``) and the non-softmax :math:`\\sigma_1` options are not implemented.

Baselines with the same interface: `SoftmaxAttention` (``F.scaled_dot_product_attention``),
`NaiveSoftmaxAttention` (materialises the ``(b, h, n, m)`` scores, as the paper's "vanilla"
NAR model, built on fairseq's attention, most likely did) and `LinearAttention` (elu+1 feature
map, non-causal). Use `make_attention` to build any of them by name (`ATTENTION_KINDS`).
"""

from __future__ import annotations

import math
from typing import Literal, TypeAlias

import torch
import torch.nn.functional as F
from torch import nn

from perceptrons.checks import check_int, check_number, check_tensor, format_shape

__all__ = [
    "ATTENTION_KINDS",
    "AMLPVariant",
    "AttentionKind",
    "AttentiveMLP",
    "LinearAttention",
    "NaiveSoftmaxAttention",
    "SoftmaxAttention",
    "make_attention",
]

AMLPVariant: TypeAlias = Literal["pquery", "cov"]
AttentionKind: TypeAlias = Literal["softmax", "naive", "linear", "amlp-pquery", "amlp-cov"]
ATTENTION_KINDS: tuple[str, ...] = ("softmax", "naive", "linear", "amlp-pquery", "amlp-cov")
_VARIANTS = ("pquery", "cov")


def _masked_softmax(logits: torch.Tensor, pad: torch.Tensor | None, dim: int) -> torch.Tensor:
    """Softmax over ``dim`` ignoring entries where ``pad`` (broadcastable) is True.

    A slice that is entirely padding gives zeros (not NaN, and no NaN gradient).
    """
    if pad is None:
        return logits.softmax(dim)
    logits = logits.masked_fill(pad, torch.finfo(logits.dtype).min)
    return logits.softmax(dim).masked_fill(pad, 0.0)


def _column_norms(x: torch.Tensor) -> torch.Tensor:
    """L2 norm of every feature column over the sequence: ``(b, h, n, d) -> (b, h, 1, d)``.

    Clamped below at 1e-12 like ``F.normalize``, so an all-zero (fully padded) column gives a
    zero cosine rather than NaN.
    """
    return torch.linalg.vector_norm(x, dim=2, keepdim=True).clamp_min(1e-12)


def _cosine_gram(
    x: torch.Tensor, y: torch.Tensor, norm_x: torch.Tensor, norm_y: torch.Tensor
) -> torch.Tensor:
    """``x̂ᵀŷ`` of the column-normalised inputs: ``(b, h, n, d) x 2 -> (b, h, d, d)``."""
    return (x.transpose(-1, -2) @ y) / (norm_x.transpose(-1, -2) * norm_y)


class _MultiheadBase(nn.Module):
    """Projections, input checks and head split shared by every attention here.

    Subclasses implement ``_attend(q, k, v, key_pad, query_pad, attn_mask, is_causal)`` on
    ``(b, h, n, d)``/``(b, h, m, d)`` heads (``key_pad`` ``(b, m)`` and ``query_pad`` ``(b, n)``
    bool or None) and return ``(b, h, n, d)``.
    """

    _supports_attn_mask = False
    _no_mask_message = ""

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float,
        batch_first: bool,
        bias: bool,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
    ) -> None:
        super().__init__()
        check_int("embed_dim", embed_dim)
        check_int("num_heads", num_heads)
        if embed_dim % num_heads:
            raise ValueError(
                f"embed_dim: expected a multiple of num_heads={num_heads}, got {embed_dim}"
            )
        check_number("dropout", dropout, low=0.0)
        if dropout >= 1:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout!r}")
        if not isinstance(batch_first, bool):
            raise TypeError(f"batch_first: expected a bool, got {batch_first!r}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = float(dropout)
        self.batch_first = batch_first
        factory = {"device": device, "dtype": dtype}
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)
        self.k_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)
        self.v_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)

    def _reset_projections(self, generator: torch.Generator | None) -> None:
        """fairseq's init: xavier-uniform, gain 2^-1/2 for q/k/v and 1 for out; zero biases."""
        for proj in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            gain = 1.0 if proj is self.out_proj else 2**-0.5
            nn.init.xavier_uniform_(proj.weight, gain=gain, generator=generator)
            if proj.bias is not None:
                nn.init.zeros_(proj.bias)

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
            f"batch_first={self.batch_first}"
        )

    def _check_inputs(
        self,
        query: object,
        key: object,
        value: object,
        key_padding_mask: object,
        query_padding_mask: object,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Validate and return batch-first ``(b, n, e), (b, m, e), (b, m, e)``."""
        e = self.embed_dim
        if self.batch_first:
            names = ("batch", "query_length", e), ("batch", "key_length", e)
        else:
            names = ("query_length", "batch", e), ("key_length", "batch", e)
        query = check_tensor(query, "query", names[0])
        batch_axis = 0 if self.batch_first else 1
        b = query.shape[batch_axis]
        key_shape = tuple(b if i == batch_axis else s for i, s in enumerate(names[1]))
        key = check_tensor(key, "key", key_shape)
        value = check_tensor(value, "value", key_shape)
        if value.shape != key.shape:
            raise ValueError(
                f"value: expected the shape of key {tuple(key.shape)} "
                f"{format_shape(names[1])}, got {tuple(value.shape)}"
            )
        for name, t in (("key", key), ("value", value)):
            if t.dtype != query.dtype:
                raise TypeError(f"{name}: expected dtype {query.dtype} (query's), got {t.dtype}")
        if not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        n, m = query.shape[1], key.shape[1]
        _check_mask(key_padding_mask, "key_padding_mask", (b, m), "(batch, key_length)")
        _check_mask(query_padding_mask, "query_padding_mask", (b, n), "(batch, query_length)")
        return query, key, value

    def _split(self, x: torch.Tensor, proj: nn.Linear) -> torch.Tensor:
        """``(b, n, e) -> (b, h, n, d)`` after the projection, contiguous.

        One copy here spares the batched products below a contiguous copy each (which
        autograd would save for backward, several per input).
        """
        b, n, _ = x.shape
        return proj(x).view(b, n, self.num_heads, self.head_dim).transpose(1, 2).contiguous()

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        query_padding_mask: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, None]:
        """Attend from ``query`` to ``key``/``value``: ``(b, n, e), (b, m, e) x 2 -> (b, n, e)``.

        With ``batch_first=False`` every sequence is ``(length, batch, e)`` instead, like
        ``nn.MultiheadAttention``; masks are always batch-first.

        Args:
            query: Queries ``(b, n, e)``.
            key: Keys ``(b, m, e)``.
            value: Values ``(b, m, e)``.
            key_padding_mask: Bool ``(b, m)``, True where a key is padding (excluded).
            query_padding_mask: Bool ``(b, n)``, True where a query is padding; its output row
                is zero (and, for AMLP, it is excluded from the pooling over queries).
            attn_mask: Softmax attentions only: ``(n, m)`` or ``(b * h, n, m)``, bool (True =
                not allowed to attend, ``nn.MultiheadAttention``'s convention) or float (added
                to the scores). The others raise ``ValueError``.
            is_causal: Softmax attentions only: also forbid key ``j > i`` for query ``i``.

        Returns:
            ``(output, None)``: output ``(b, n, e)`` (or ``(n, b, e)``); no attention weights.

        Raises:
            TypeError: a non-tensor, non-floating or mismatched-dtype input, or a non-bool
                padding mask.
            ValueError: a wrong rank or size (the message names the expected shape), or a
                causal/attention mask given to a module that cannot apply it.
        """
        if not self._supports_attn_mask and (attn_mask is not None or is_causal):
            raise ValueError(self._no_mask_message)
        query, key, value = self._check_inputs(
            query, key, value, key_padding_mask, query_padding_mask
        )
        q = self._split(query, self.q_proj)
        k = self._split(key, self.k_proj)
        v = self._split(value, self.v_proj)
        out = self._attend(q, k, v, key_padding_mask, query_padding_mask, attn_mask, is_causal)
        b, _, n, _ = out.shape
        out = self.out_proj(out.transpose(1, 2).reshape(b, n, self.embed_dim))
        if query_padding_mask is not None:
            out = out.masked_fill(query_padding_mask[:, :, None], 0.0)
        return (out if self.batch_first else out.transpose(0, 1)), None

    def _attend(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        key_pad: torch.Tensor | None,
        query_pad: torch.Tensor | None,
        attn_mask: torch.Tensor | None,
        is_causal: bool,
    ) -> torch.Tensor:
        raise NotImplementedError


def _check_mask(mask: object, name: str, shape: tuple[int, int], expected: str) -> None:
    if mask is None:
        return
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise TypeError(
            f"{name}: expected a bool tensor of shape {expected} = {shape} (True = padding), "
            f"got {got}"
        )
    if tuple(mask.shape) != shape:
        raise ValueError(
            f"{name}: expected shape {expected} = {shape} (True = padding), got {tuple(mask.shape)}"
        )


# --------------------------------------------------------------------------- AMLP


class AttentiveMLP(_MultiheadBase):
    """AMLP attention (PQuery or Cov variant): linear in the query and key lengths.

    Drop-in for ``nn.MultiheadAttention`` in non-causal self- and cross-attention; see the
    module docstring for both variants' equations.

    Args:
        embed_dim: Model width ``e`` (a multiple of ``num_heads``).
        num_heads: Number of heads ``h``.
        num_landmarks: Hidden width ``c`` of the adaptive MLP (16 in the paper).
        variant: ``"pquery"`` (pseudo-query pooling) or ``"cov"`` (channel covariances).
        dropout: Dropout probability on the ``n x c`` mixing weights and the conv branch.
        batch_first: Sequences are ``(b, length, e)`` if True, ``(length, b, e)`` if False.
        ema_momentum: PQuery only: momentum of the running query mean subtracted from the
            queries (0.99 in the paper); ``None`` disables the centring. Ignored by Cov.
        bias: Biases in the in- and output projections.
        conv_kernel_size: Odd kernel size of the optional depthwise convolution branch over the
            query sequence (``None``: no branch, the paper's translation setting).
        generator: Generator the initial parameters are drawn from.
        device: Device of the parameters.
        dtype: Floating dtype of the parameters.

    Raises:
        ValueError: a size below 1, ``embed_dim`` not divisible by ``num_heads``, an unknown
            variant, a momentum outside [0, 1), a dropout outside [0, 1) or an even kernel.
    """

    _no_mask_message = (
        "AttentiveMLP is non-causal by construction: its MLP weights pool over all queries and "
        "keys, so no attention mask (attn_mask) or causal mask (is_causal=True) can be "
        "applied; pass key_padding_mask/query_padding_mask for padding, or use "
        "SoftmaxAttention for causal attention"
    )

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        num_landmarks: int = 16,
        variant: AMLPVariant = "pquery",
        dropout: float = 0.0,
        batch_first: bool = True,
        *,
        ema_momentum: float | None = 0.99,
        bias: bool = True,
        conv_kernel_size: int | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(embed_dim, num_heads, dropout, batch_first, bias, device, dtype)
        check_int("num_landmarks", num_landmarks)
        if variant not in _VARIANTS:
            raise ValueError(f"variant: expected one of {_VARIANTS}, got {variant!r}")
        if ema_momentum is not None:
            check_number("ema_momentum", ema_momentum, low=0.0)
            if ema_momentum >= 1:
                raise ValueError(f"ema_momentum: expected a value in [0, 1), got {ema_momentum}")
        if conv_kernel_size is not None:
            check_int("conv_kernel_size", conv_kernel_size)
            if conv_kernel_size % 2 == 0:
                raise ValueError(f"conv_kernel_size: expected an odd int, got {conv_kernel_size}")
        self.num_landmarks = num_landmarks
        self.variant: AMLPVariant = variant
        self.ema_momentum = (
            float(ema_momentum) if variant == "pquery" and ema_momentum is not None else None
        )
        self.conv_kernel_size = conv_kernel_size
        h, c, d = num_heads, num_landmarks, self.head_dim
        factory = {"device": device, "dtype": dtype}
        self.q_landmarks = nn.Parameter(torch.empty(h, c, d, **factory))
        self.k_landmarks = nn.Parameter(torch.empty(h, c, d, **factory))
        if variant == "pquery":
            self.landmark_proj = nn.Linear(2 * d, d, **factory)
            if self.ema_momentum is not None:
                self.register_buffer("query_mean", torch.zeros(d, **factory))
        else:
            self.temperature_q = nn.Parameter(torch.empty(h, 1, 1, **factory))
            self.temperature_k = nn.Parameter(torch.empty(h, 1, 1, **factory))
            self.temperature_kv = nn.Parameter(torch.empty(h, 1, 1, **factory))
        if conv_kernel_size is not None:
            self.conv_weight = nn.Parameter(torch.empty(h, 1, conv_kernel_size, 1, **factory))
            self.conv_bias = nn.Parameter(torch.empty(h, **factory))
        self.out_norm = nn.LayerNorm(d, **factory)
        self.reset_parameters(generator=generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Redraw the parameters (and zero the query mean) from their initial distribution.

        Args:
            generator: Generator to draw from (``None``: torch's global generator).
        """
        self._reset_projections(generator)
        landmarks = [self.q_landmarks, self.k_landmarks]
        if self.variant == "cov":
            landmarks += [self.temperature_q, self.temperature_k, self.temperature_kv]
        for p in landmarks:
            nn.init.xavier_normal_(p, gain=2**-0.5, generator=generator)
        if self.variant == "pquery":
            nn.init.kaiming_uniform_(self.landmark_proj.weight, a=math.sqrt(5), generator=generator)
            bound = 1.0 / math.sqrt(2 * self.head_dim)
            nn.init.uniform_(self.landmark_proj.bias, -bound, bound, generator=generator)
            if self.ema_momentum is not None:
                self.query_mean.zero_()
        if self.conv_kernel_size is not None:
            bound = 1.0 / math.sqrt(self.conv_kernel_size)
            nn.init.uniform_(self.conv_weight, -bound, bound, generator=generator)
            nn.init.uniform_(self.conv_bias, -bound, bound, generator=generator)
        self.out_norm.reset_parameters()

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, num_landmarks={self.num_landmarks}, "
            f"variant={self.variant!r}, ema_momentum={self.ema_momentum}, "
            f"conv_kernel_size={self.conv_kernel_size}"
        )

    def _centre(self, q: torch.Tensor, query_pad: torch.Tensor | None) -> torch.Tensor:
        """Subtract the running query mean ``(d,)``; in training, update it first."""
        if self.ema_momentum is None:
            return q
        if not self.training:
            return q - self.query_mean
        if query_pad is None:
            batch_mean = q.mean(dim=(0, 1, 2))
        else:
            keep = (~query_pad)[:, None, :, None].to(q.dtype)  # (b, 1, n, 1)
            count = (keep.sum() * q.shape[1]).clamp_min(1.0)
            batch_mean = (q * keep).sum(dim=(0, 1, 2)) / count
        mean = self.ema_momentum * self.query_mean + (1 - self.ema_momentum) * batch_mean
        with torch.no_grad():
            self.query_mean.copy_(mean)
        return q - mean

    def _conv(self, q: torch.Tensor, query_pad: torch.Tensor | None) -> torch.Tensor:
        """Depthwise conv over the sequence, one kernel per head: ``(b, h, n, d) -> same``."""
        if query_pad is not None:
            q = q.masked_fill(query_pad[:, None, :, None], 0.0)
        pad = self.conv_kernel_size // 2
        out = F.conv2d(q, self.conv_weight, self.conv_bias, padding=(pad, 0), groups=q.shape[1])
        return F.dropout(F.relu(out), self.dropout, self.training)

    def _weights_pquery(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        key_pad: torch.Tensor | None,
        query_pad: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``M`` = W_QKᵀ and W_QKV, both ``(b, h, c, d)``."""
        qpad = None if query_pad is None else query_pad[:, None, None, :]  # (b, 1, 1, n)
        kpad = None if key_pad is None else key_pad[:, None, None, :]  # (b, 1, 1, m)
        pool_q = _masked_softmax(self.q_landmarks @ q.transpose(-1, -2), qpad, -1)  # (b, h, c, n)
        pool_k = _masked_softmax(self.k_landmarks @ k.transpose(-1, -2), kpad, -1)  # (b, h, c, m)
        summary = torch.cat([pool_q @ q, pool_k @ k], dim=-1)  # (b, h, c, 2d)
        m = self.landmark_proj(summary)  # (b, h, c, d)
        slot_weights = _masked_softmax(m @ k.transpose(-1, -2), kpad, -1)  # (b, h, c, m)
        return m, slot_weights @ v

    def _weights_cov(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        key_pad: torch.Tensor | None,
        query_pad: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``M`` = W_QKᵀ and W_QKV, both ``(b, h, c, d)``."""
        if query_pad is not None:
            q = q.masked_fill(query_pad[:, None, :, None], 0.0)
        if key_pad is not None:
            k = k.masked_fill(key_pad[:, None, :, None], 0.0)
            v = v.masked_fill(key_pad[:, None, :, None], 0.0)
        # Gram matrices of the column-normalised inputs (channel cosines), computed as
        # diag(1/|x|) xᵀy diag(1/|y|): the normalised (n, d) copies are never formed or saved
        norm_q, norm_k, norm_v = (_column_norms(x) for x in (q, k, v))
        a_q = (self.temperature_q * _cosine_gram(q, q, norm_q, norm_q)).softmax(-1)  # (b,h,d,d)
        a_k = (self.temperature_k * _cosine_gram(k, k, norm_k, norm_k)).softmax(-1)
        m = F.relu(self.q_landmarks @ a_q + self.k_landmarks @ a_k)  # (b, h, c, d)
        kv = (self.temperature_kv * _cosine_gram(k, v, norm_k, norm_v)).softmax(-1)  # B
        return m, m @ kv.transpose(-1, -2)

    def _attend(self, q, k, v, key_pad, query_pad, attn_mask, is_causal):
        if self.variant == "pquery":
            q = self._centre(q, query_pad)
            m, w_qkv = self._weights_pquery(q, k, v, key_pad, query_pad)
            scale = 1.0
        else:
            m, w_qkv = self._weights_cov(q, k, v, key_pad, query_pad)
            scale = self.head_dim**-0.5
        mix = (scale * (q @ m.transpose(-1, -2))).softmax(-1)  # (b, h, n, c)
        out = F.dropout(mix, self.dropout, self.training) @ w_qkv
        if self.conv_kernel_size is not None:
            out = out + self._conv(q, query_pad)
        return self.out_norm(out)


# --------------------------------------------------------------------------- baselines


def _softmax_mask(
    key_pad: torch.Tensor | None,
    attn_mask: torch.Tensor | None,
    is_causal: bool,
    shape: tuple[int, int, int, int],
    dtype: torch.dtype,
    device: torch.device,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Merge the masks into SDPA's form (bool True = may attend, or float added to scores).

    Returns the mask (broadcastable to ``(b, h, n, m)``, or None) and the bool rows ``(b, h|1,
    n|1, 1)`` that had no allowed key at all (they are unmasked here and zeroed afterwards, so
    a fully padded sequence gives zeros rather than NaN), or None.
    """
    b, h, n, m = shape
    allowed: torch.Tensor | None = None
    additive: torch.Tensor | None = None
    if key_pad is not None:
        allowed = ~key_pad[:, None, None, :]
    if is_causal:
        causal = torch.ones(n, m, dtype=torch.bool, device=device).tril()
        allowed = causal if allowed is None else allowed & causal
    if attn_mask is not None:
        if attn_mask.dim() == 2:
            mask = attn_mask[None, None]
        else:
            mask = attn_mask.view(b, h, n, m)
        if mask.dtype == torch.bool:
            allowed = ~mask if allowed is None else allowed & ~mask
        else:
            additive = mask.to(dtype)
    if allowed is None:
        return additive, None
    empty = ~allowed.any(-1, keepdim=True)
    allowed = allowed | empty
    if additive is not None:
        return torch.where(allowed, additive, -math.inf), empty
    return allowed, empty


class _SoftmaxBase(_MultiheadBase):
    _supports_attn_mask = True

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        batch_first: bool = True,
        *,
        bias: bool = True,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(embed_dim, num_heads, dropout, batch_first, bias, device, dtype)
        self.reset_parameters(generator=generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Redraw the projections (fairseq's init) from ``generator``."""
        self._reset_projections(generator)

    def _mask(self, q, k, key_pad, attn_mask, is_causal):
        b, h, n, _ = q.shape
        m = k.shape[2]
        if attn_mask is not None:
            shapes = ((n, m), (b * h, n, m))
            if not isinstance(attn_mask, torch.Tensor):
                raise TypeError(
                    f"attn_mask: expected a tensor of shape (query_length, key_length) = "
                    f"{shapes[0]} or (batch * num_heads, query_length, key_length) = "
                    f"{shapes[1]}, got {type(attn_mask).__name__}"
                )
            if tuple(attn_mask.shape) not in shapes:
                raise ValueError(
                    f"attn_mask: expected shape (query_length, key_length) = {shapes[0]} or "
                    f"(batch * num_heads, query_length, key_length) = {shapes[1]}, "
                    f"got {tuple(attn_mask.shape)}"
                )
            if attn_mask.dtype != torch.bool and not attn_mask.is_floating_point():
                raise TypeError(
                    f"attn_mask: expected a bool or float tensor, got {attn_mask.dtype}"
                )
        if not isinstance(is_causal, bool):
            raise TypeError(f"is_causal: expected a bool, got {is_causal!r}")
        return _softmax_mask(key_pad, attn_mask, is_causal, (b, h, n, m), q.dtype, q.device)


class SoftmaxAttention(_SoftmaxBase):
    """Multi-head softmax attention through ``F.scaled_dot_product_attention``.

    The "vanilla" baseline as PyTorch ships it: on CPU, SDPA picks a fused (flash-style)
    kernel that never stores the ``n x m`` scores, so its memory is linear in the length while
    its time stays quadratic. That holds with a key padding mask (passed as a ``(b, 1, 1, m)``
    mask) or ``is_causal`` alone; an ``attn_mask`` is an ``n x m`` tensor itself, and
    ``is_causal`` combined with padding is merged into one.

    Args:
        embed_dim: Model width ``e`` (a multiple of ``num_heads``).
        num_heads: Number of heads ``h``.
        dropout: Dropout probability on the attention weights (training only).
        batch_first: Sequences are ``(b, length, e)`` if True, ``(length, b, e)`` if False.
        bias: Biases in the in- and output projections.
        generator: Generator the initial parameters are drawn from.
        device: Device of the parameters.
        dtype: Floating dtype of the parameters.
    """

    def _attend(self, q, k, v, key_pad, query_pad, attn_mask, is_causal):
        p = self.dropout if self.training else 0.0
        if key_pad is None and attn_mask is None and is_causal is True:
            # the fused kernel's own causal path: no (n, m) mask tensor at all
            return F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        mask, empty = self._mask(q, k, key_pad, attn_mask, is_causal)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return out if empty is None else out.masked_fill(empty, 0.0)


class NaiveSoftmaxAttention(_SoftmaxBase):
    """Multi-head softmax attention that materialises the ``(b, h, n, m)`` score matrix.

    ``softmax(Q Kᵀ / sqrt(d) + mask) V`` written out, as in fairseq's multi-head attention
    (the paper's "vanilla" NAR baseline): quadratic time *and* memory. Numerically equal to
    `SoftmaxAttention` with the same weights. Arguments as `SoftmaxAttention`.
    """

    def _attend(self, q, k, v, key_pad, query_pad, attn_mask, is_causal):
        mask, empty = self._mask(q, k, key_pad, attn_mask, is_causal)
        scores = (q * self.head_dim**-0.5) @ k.transpose(-1, -2)  # (b, h, n, m)
        if mask is not None and mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, -math.inf)
        elif mask is not None:
            scores = scores + mask
        weights = F.dropout(scores.softmax(-1), self.dropout, self.training)
        out = weights @ v
        return out if empty is None else out.masked_fill(empty, 0.0)


class LinearAttention(_MultiheadBase):
    """Non-causal linear attention with the elu+1 feature map (Katharopoulos et al. 2020).

    .. math::

        O_i = \\frac{\\phi(q_i)^\\top \\sum_j \\phi(k_j) v_j^\\top}
                   {\\phi(q_i)^\\top \\sum_j \\phi(k_j)}, \\qquad \\phi = \\mathrm{elu} + 1,

    with padded keys left out of both sums; no ``n x m`` tensor. ``attn_mask``/``is_causal``
    raise ``ValueError``. There are no attention weights to drop out, so ``dropout`` acts on
    the per-head outputs before the output projection.

    Args:
        embed_dim: Model width ``e`` (a multiple of ``num_heads``).
        num_heads: Number of heads ``h``.
        dropout: Dropout probability on the per-head outputs (training only).
        batch_first: Sequences are ``(b, length, e)`` if True, ``(length, b, e)`` if False.
        bias: Biases in the in- and output projections.
        generator: Generator the initial parameters are drawn from.
        device: Device of the parameters.
        dtype: Floating dtype of the parameters.
    """

    _no_mask_message = (
        "LinearAttention here is non-causal: attn_mask and is_causal=True are not supported; "
        "pass key_padding_mask/query_padding_mask for padding, or use SoftmaxAttention"
    )

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        batch_first: bool = True,
        *,
        bias: bool = True,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(embed_dim, num_heads, dropout, batch_first, bias, device, dtype)
        self.reset_parameters(generator=generator)

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Redraw the projections (fairseq's init) from ``generator``."""
        self._reset_projections(generator)

    def _attend(self, q, k, v, key_pad, query_pad, attn_mask, is_causal):
        phi_q, phi_k = F.elu(q) + 1, F.elu(k) + 1
        if key_pad is not None:
            phi_k = phi_k.masked_fill(key_pad[:, None, :, None], 0.0)
        kv = phi_k.transpose(-1, -2) @ v  # (b, h, d, d)
        norm = phi_q @ phi_k.sum(2)[..., None]  # (b, h, n, 1)
        out = (phi_q @ kv) / norm.clamp_min(torch.finfo(q.dtype).tiny)
        return F.dropout(out, self.dropout, self.training)


def make_attention(
    kind: AttentionKind,
    embed_dim: int,
    num_heads: int,
    *,
    num_landmarks: int = 16,
    dropout: float = 0.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> nn.Module:
    """Build a batch-first attention module by name.

    Args:
        kind: One of `ATTENTION_KINDS`: ``"softmax"`` (`SoftmaxAttention`), ``"naive"``
            (`NaiveSoftmaxAttention`), ``"linear"`` (`LinearAttention`), ``"amlp-pquery"`` and
            ``"amlp-cov"`` (`AttentiveMLP` with that variant and its defaults).
        embed_dim: Model width ``e``.
        num_heads: Number of heads.
        num_landmarks: AMLP's hidden width ``c`` (ignored by the other kinds).
        dropout: Dropout probability (see each class for where it acts).
        generator: Generator the initial parameters are drawn from.
        device: Device of the parameters.
        dtype: Floating dtype of the parameters.

    Returns:
        The module; call it as ``module(query, key, value, key_padding_mask=...,
        query_padding_mask=...)[0]`` with ``(b, length, e)`` sequences.

    Raises:
        ValueError: an unknown ``kind`` (the message lists the kinds), or invalid sizes.
    """
    common = {"dropout": dropout, "generator": generator, "device": device, "dtype": dtype}
    if kind == "softmax":
        return SoftmaxAttention(embed_dim, num_heads, **common)
    if kind == "naive":
        return NaiveSoftmaxAttention(embed_dim, num_heads, **common)
    if kind == "linear":
        return LinearAttention(embed_dim, num_heads, **common)
    if kind in ("amlp-pquery", "amlp-cov"):
        variant = "pquery" if kind == "amlp-pquery" else "cov"
        return AttentiveMLP(
            embed_dim, num_heads, num_landmarks=num_landmarks, variant=variant, **common
        )
    raise ValueError(f"kind: expected one of {ATTENTION_KINDS}, got {kind!r}")
