"""Click-through-rate building blocks: the one field embedding layer and the interaction blocks.

Dimension legend: ``b`` rows, ``C`` categorical fields, ``N`` numeric fields, ``M``
multi-valued fields, ``L_j`` padded length of multi-valued field ``j``, ``F = C + M + N``
embedded fields, ``k`` = ``embed_dim``, ``h`` heads, ``Q``/``K`` query/key tokens.

Every CTR model of `perceptrons.ctr.models` embeds its input with `FieldEmbedding`:

* a categorical field ``f`` with id ``x_f`` gets the row ``V_f[x_f]`` of its own table;
* a multi-valued field gets the mean of the rows of its ids, ``PAD_ID = 0`` ignored
  (``nn.EmbeddingBag``-style masked mean pooling);
* a numeric field ``n`` with value ``x_n`` gets ``x_n v_n`` (a learned vector scaled by the
  value, the FuxiCTR convention), so every field is a ``k``-vector: ``E`` is ``(b, F, k)``
  in the field order categorical, multi-valued, numeric;
* the first-order (LR) part is ``w_0 + sum_f w_f[x_f] + sum_j mean w_j[ids] + sum_n u_n x_n``.

All categorical and multi-valued tables live in one ``nn.Embedding`` with per-field offsets
(one gather per batch instead of one per field); ids follow the convention of
`perceptrons.ctr.features` (``PAD = 0``, ``OOV = 1``, ``MISSING = 2``, values ``>= 3``), and
the fields are described by its `CTRFeatures`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from perceptrons.ctr.features import PAD_ID, CTRFeatures, CTRInput

__all__ = [
    "CrossNetV2",
    "FieldAttention",
    "FieldEmbedding",
    "MixerBlock",
    "fm_interaction",
    "seeded_linear",
]


class FieldEmbedding(nn.Module):
    """Per-field embeddings ``(b, F, k)`` and the first-order logit ``(b,)`` of CTR rows.

    Args:
        features: The fields (see the module docstring for how each kind is embedded).
        embed_dim: ``k``; 0 builds no vector tables (a first-order-only model).
        first_order: Build the first-order weights and bias.
        embed_std: Standard deviation of the normal initial embeddings.
        sparse: Build both tables as ``nn.Embedding(sparse=True)``: their gradients are sparse
            COO tensors holding only the rows the batch looked up (multi-valued fields pooled
            by ``F.embedding_bag(mode="mean")``, PAD positions left out of the gradient), so
            that `torch.optim.SparseAdam` / `torch.optim.Adagrad` update only those rows
            (``OptimizerConfig(embedding_optimizer=...)``). The outputs equal the dense
            layer's up to rounding.
        device: Device of the parameters.
        dtype: Floating dtype of the parameters.
        generator: Generator the initial embeddings are drawn from.

    Attributes:
        offsets: Python list, the first row of each categorical / multi-valued field's block.
        embedding: ``nn.Embedding(sum of cardinalities, k)`` or ``None``.
        numeric_vectors: ``(N, k)`` parameter ``v_n`` or ``None``.
        weights: ``nn.Embedding(sum of cardinalities, 1)`` first-order weights or ``None``.
        numeric_weights: ``(N,)`` first-order numeric weights ``u_n`` or ``None``.
        bias: Scalar parameter ``w_0`` or ``None``.

    First-order weights start at zero (a zero logit), embeddings at ``N(0, embed_std^2)``.
    """

    def __init__(
        self,
        features: CTRFeatures,
        embed_dim: int,
        *,
        first_order: bool = True,
        embed_std: float = 0.01,
        sparse: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if embed_dim < 0:
            raise ValueError(f"embed_dim: expected an int >= 0, got {embed_dim}")
        if embed_dim == 0 and not first_order:
            raise ValueError("embed_dim: 0 together with first_order=False embeds nothing")
        self.features, self.embed_dim, self.sparse = features, embed_dim, sparse
        cards = features.categorical_cardinalities + features.multi_valued_cardinalities
        self.offsets = [0, *torch.tensor(cards, dtype=torch.long).cumsum(0).tolist()[:-1]]
        total = sum(cards)
        kw = {"device": device, "dtype": dtype}
        self.embedding = self.numeric_vectors = None
        self.weights = self.numeric_weights = self.bias = None
        if embed_dim:
            if total:
                self.embedding = nn.Embedding(total, embed_dim, sparse=sparse, **kw)
                nn.init.normal_(self.embedding.weight, std=embed_std, generator=generator)
            if features.num_numeric:
                self.numeric_vectors = nn.Parameter(
                    torch.empty(features.num_numeric, embed_dim, **kw)
                )
                nn.init.normal_(self.numeric_vectors, std=embed_std, generator=generator)
        if first_order:
            if total:
                self.weights = nn.Embedding(total, 1, sparse=sparse, **kw)
                nn.init.zeros_(self.weights.weight)
            if features.num_numeric:
                self.numeric_weights = nn.Parameter(torch.zeros(features.num_numeric, **kw))
            self.bias = nn.Parameter(torch.zeros((), **kw))

    @property
    def num_fields(self) -> int:
        """F."""
        return self.features.num_fields

    def _pooled(self, table: nn.Embedding, x: CTRInput) -> Tensor:
        """Rows of ``table`` for every categorical / multi-valued field: ``(b, C + M, d)``."""
        c = self.features.num_categorical
        parts = []
        if c:
            offsets = torch.tensor(self.offsets[:c], device=x.categorical.device)
            parts.append(table(x.categorical + offsets))
        for j, ids in enumerate(x.multi_ids):
            if table.sparse:
                parts.append(self._bag_mean(table, ids, self.offsets[c + j]).unsqueeze(1))
                continue
            mask = (ids != PAD_ID).unsqueeze(-1).to(table.weight.dtype)  # (b, L, 1)
            vectors = table(ids + self.offsets[c + j]) * mask
            parts.append((vectors.sum(1) / mask.sum(1).clamp_min(1.0)).unsqueeze(1))
        return torch.cat(parts, dim=1)

    @staticmethod
    def _bag_mean(table: nn.Embedding, ids: Tensor, offset: int) -> Tensor:
        """Mean of the rows of the non-PAD ``ids`` (b, L) of one field: (b, d), zeros for an
        empty list. PAD positions point at row 0, which ``padding_idx=0`` leaves out of the mean
        and of the (sparse) gradient; row 0 is a PAD id (the first field's), never a value."""
        if ids.shape[1] == 0:
            return table.weight.new_zeros(ids.shape[0], table.weight.shape[1])
        rows = torch.where(ids == PAD_ID, 0, ids + offset)
        return F.embedding_bag(rows, table.weight, mode="mean", sparse=True, padding_idx=0)

    def looked_up_rows(self, x: CTRInput) -> Tensor:
        """The distinct table rows the batch ``x`` looks up: sorted int64 ``(R,)``.

        Categorical ids and the non-PAD multi-valued ids, each shifted by its field's offset
        (the rows a sparse gradient of ``x`` touches)."""
        c = self.features.num_categorical
        device = x.categorical.device
        parts = [torch.zeros(0, dtype=torch.long, device=device)]
        if c:
            offsets = torch.tensor(self.offsets[:c], device=device)
            parts.append((x.categorical + offsets).flatten())
        for j, ids in enumerate(x.multi_ids):
            parts.append((ids + self.offsets[c + j])[ids != PAD_ID])
        return torch.unique(torch.cat(parts))

    def squared_row_norms(self, x: CTRInput) -> Tensor:
        """``sum_r (||V[r]||^2 + w[r]^2)`` over the `looked_up_rows` ``r`` of ``x``: a scalar.

        ``V`` is `embedding`, ``w`` the first-order `weights` (each where built; the numeric
        vectors are dense parameters, not included). The rows are looked up with the layer's
        gradient layout, so the penalty keeps a sparse layer's gradients sparse
        (`CTRStep.embedding_l2`)."""
        rows = self.looked_up_rows(x)
        total = None
        for table in (self.embedding, self.weights):
            if table is not None:
                term = F.embedding(rows, table.weight, sparse=table.sparse).pow(2).sum()
                total = term if total is None else total + term
        if total is None:
            reference = next(self.parameters())
            return reference.new_zeros(())
        return total

    def forward(self, x: CTRInput) -> Tensor:
        """Field embeddings ``(b, F, k)`` of a validated `CTRInput` (see `as_ctr_input`)."""
        if not self.embed_dim:
            raise RuntimeError("FieldEmbedding: built with embed_dim=0, no embeddings")
        parts = []
        if self.embedding is not None:
            parts.append(self._pooled(self.embedding, x))
        if self.numeric_vectors is not None:
            values = x.numeric.to(self.numeric_vectors.dtype)
            parts.append(values.unsqueeze(-1) * self.numeric_vectors)
        return torch.cat(parts, dim=1)

    def first_order(self, x: CTRInput) -> Tensor:
        """The first-order logit ``w_0 + sum of field weights``: ``(b,)``."""
        if self.bias is None:
            raise RuntimeError("FieldEmbedding: built with first_order=False")
        out = self.bias.expand(x.categorical.shape[0])
        if self.weights is not None:
            out = out + self._pooled(self.weights, x).sum(dim=(1, 2))
        if self.numeric_weights is not None:
            out = out + x.numeric.to(self.numeric_weights.dtype) @ self.numeric_weights
        return out


def fm_interaction(embeddings: Tensor) -> Tensor:
    """Factorisation-machine pairwise term ``sum_{f < g} <e_f, e_g>``: ``(b, F, k) -> (b,)``.

    .. math::

        \\tfrac12 \\sum_d \\Big[\\big(\\textstyle\\sum_f e_{fd}\\big)^2
        - \\textstyle\\sum_f e_{fd}^2\\Big]
    """
    square_of_sum = embeddings.sum(dim=1).pow(2)
    sum_of_square = embeddings.pow(2).sum(dim=1)
    return 0.5 * (square_of_sum - sum_of_square).sum(dim=-1)


def seeded_linear(
    in_features: int,
    out_features: int,
    generator: torch.Generator | None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    *,
    bias: bool = True,
) -> nn.Linear:
    """``nn.Linear`` with PyTorch's default initialisation drawn from ``generator``."""
    layer = nn.Linear(in_features, out_features, bias=bias, device=device, dtype=dtype)
    bound = 1.0 / math.sqrt(in_features)
    nn.init.uniform_(layer.weight, -bound, bound, generator=generator)
    if bias:
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return layer


class CrossNetV2(nn.Module):
    """DCN-V2 cross network (Wang et al. 2021, arXiv:2008.13535), full-rank: ``(b, d) -> (b, d)``.

    .. math::

        x_{l+1} = x_0 \\odot (W_l x_l + b_l) + x_l

    Args:
        in_features: ``d``.
        num_layers: Number of cross layers.
        device: Device of the parameters.
        dtype: Floating dtype of the parameters.
        generator: Generator of the initial weights.
    """

    def __init__(
        self,
        in_features: int,
        num_layers: int,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            seeded_linear(in_features, in_features, generator, device, dtype)
            for _ in range(num_layers)
        )

    def forward(self, x0: Tensor) -> Tensor:
        """Cross ``x0`` (b, d) with itself ``num_layers`` times: (b, d)."""
        x = x0
        for layer in self.layers:
            x = x0 * layer(x) + x
        return x


class FieldAttention(nn.Module):
    """Multi-head (cross-)attention between token sets: ``(b, Q, d), (b, K, d) -> (b, Q, d)``.

    .. math::

        \\mathrm{Attn}(X, Y) = \\mathrm{drop}\\big(\\mathrm{softmax}\\big((X W_Q)(Y W_K)^\\top
        / \\sqrt{d_h} + \\mathrm{mask}\\big)\\big)(Y W_V)\\, W_O

    Args:
        dim: Token width ``d``.
        num_heads: ``h``; ``d`` must be divisible by it.
        out_projection: Apply ``W_O`` (AutoInt has none; the mixers do).
        dropout: Dropout on the attention probabilities in training (``dropout_p`` of
            ``F.scaled_dot_product_attention``), in [0, 1).
        device: Device of the parameters.
        dtype: Floating dtype of the parameters.
        generator: Generator of the initial weights.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        out_projection: bool = True,
        dropout: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"num_heads: {num_heads} does not divide the width {dim}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout: must be in [0, 1), got {dropout!r}")
        self.num_heads, self.dropout = num_heads, dropout
        self.query, self.key, self.value = (
            seeded_linear(dim, dim, generator, device, dtype, bias=False) for _ in range(3)
        )
        self.out = seeded_linear(dim, dim, generator, device, dtype) if out_projection else None

    def context(self, x: Tensor, y: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """The attended values before ``W_O``: ``sum_g alpha_fg (y_g W_V)`` (b, Q, d)."""
        y = x if y is None else y
        b, q, d = x.shape
        h = self.num_heads

        def heads(t: Tensor) -> Tensor:
            return t.reshape(b, t.shape[1], h, d // h).transpose(1, 2)  # (b, h, n, d_h)

        out = F.scaled_dot_product_attention(
            heads(self.query(x)),
            heads(self.key(y)),
            heads(self.value(y)),
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return out.transpose(1, 2).reshape(b, q, d)

    def forward(self, x: Tensor, y: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """Queries from ``x`` (b, Q, d) attend to ``y`` (b, K, d) (default ``x``).

        ``mask``: optional (Q, K) bool, True where a query may attend to a key; every query
        needs at least one allowed key.
        """
        out = self.context(x, y, mask)
        return out if self.out is None else self.out(out)


class MixerBlock(nn.Module):
    """Pre-LayerNorm cross-attention mixer with a channel MLP: ``(b, n, d) -> (b, n, d)``.

    .. math::

        z = \\mathrm{LN}(h), \\quad c = \\textstyle\\sum_g \\alpha_{fg} z_g W_V, \\quad
        h' = h + \\mathrm{drop}(c W_O) \\;[+\\, z \\odot (c W_P)], \\qquad
        h'' = h' + \\mathrm{drop}(\\mathrm{MLP}(\\mathrm{LN}(h')))

    The "across-token" view (attention over fields or types) alternates with the "inside-token"
    channel MLP, the transformer layout named for EMOFM's mixers (Li & Wu 2023,
    arXiv:2310.04482); the equations are our reconstruction (the paper's were not available).
    The optional product path ``z_f * W_P(sum_g alpha_fg z_g W_V)`` (``product=True``) gives
    the block a multiplicative field-pair term, like FM's ``<e_f, e_g>`` or DCN-V2's
    ``x_0 * (W x)`` (our choice).

    Args:
        dim: Token width ``d``.
        num_heads: Attention heads.
        mlp_ratio: Hidden width of the channel MLP over ``d``.
        dropout: Dropout on the attention and MLP outputs (before the residual sums).
        attention_dropout: Dropout on the attention probabilities.
        zero_init_output: Start ``W_O``, ``W_P`` and the MLP's output linear at zero (weights
            and biases): the block starts as the identity and the residual stream carries the
            tokens unchanged at initialisation (the zero-init residual branch of Fixup / ReZero,
            our choice for EMOFM's mixers). Otherwise PyTorch's default initialisation, with
            zero biases.
        product: Add the product path ``z * (c W_P)``.
        device: Device of the parameters.
        dtype: Floating dtype of the parameters.
        generator: Generator of the initial weights.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        zero_init_output: bool = False,
        product: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        hidden = max(1, round(dim * mlp_ratio))
        self.norm1 = nn.LayerNorm(dim, **kw)
        self.attention = FieldAttention(
            dim, num_heads, dropout=attention_dropout, generator=generator, **kw
        )
        self.product = seeded_linear(dim, dim, generator, **kw) if product else None
        self.norm2 = nn.LayerNorm(dim, **kw)
        self.mlp = nn.Sequential(
            seeded_linear(dim, hidden, generator, **kw),
            nn.GELU(),
            seeded_linear(hidden, dim, generator, **kw),
        )
        self.drop = nn.Dropout(dropout)
        with torch.no_grad():
            outputs = [self.attention.out, self.mlp[2]]
            if self.product is not None:
                outputs.append(self.product)
            for layer in [self.mlp[0], *outputs]:
                layer.bias.zero_()
            if zero_init_output:
                for layer in outputs:
                    layer.weight.zero_()

    def forward(self, h: Tensor, mask: Tensor | None = None) -> Tensor:
        """Mix the tokens of ``h`` (b, n, d); ``mask`` (n, n) bool as in `FieldAttention`."""
        z = self.norm1(h)
        c = self.attention.context(z, z, mask)
        assert self.attention.out is not None
        h = h + self.drop(self.attention.out(c))
        if self.product is not None:
            h = h + self.drop(z * self.product(c))
        return h + self.drop(self.mlp(self.norm2(h)))
