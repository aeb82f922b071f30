"""Click-through-rate models: the standard baselines and EMOFM, all on one `FieldEmbedding`.

Paper: Yujian Li & Kai Wu, *EMOFM: Ensemble MLP mOdel with Feature-based Mixers for
Click-Through Rate Prediction*, CTI 2023 competition report, arXiv:2310.04482. The paper body
is not available: EMOFM here is **our reconstruction**, built from the blocks the author names
(WM, AM, HM, field-wise and type-wise mixers, ensemble); the equations, sizes and the ensemble
composition are ours.

Dimension legend: ``b`` rows, ``F`` embedded fields, ``k`` = ``embed_dim``, ``T`` types,
``d1`` = ``field_dim``, ``d2`` = ``type_dim``.

Input (every model): encoded rows as a `perceptrons.ctr.layers.CTRInput`, a
``perceptrons.ctr.CTRBatch`` or its ``to_tensors()`` dict (what a `TensorLoader` yields);
see `perceptrons.ctr.layers.as_ctr_input`. Row types are never read by a model (they are
hidden at test time); `CTRStep` reads them from the batch for the auxiliary losses. The config
holds the fields as a nested `CTRFeatures`: an encoder's or a synthetic sample's
``feature_spec`` as it is.

Output: the baselines return click logits ``(b,)``; ``"emofm"`` returns a dict (see `EMOFM`).

Baselines (definitions of FuxiCTR / DeepCTR-Torch):

* ``"lr"``: ``w_0 + sum_f w_f[x_f]``;
* ``"fm"``: LR + ``sum_{f<g} <e_f, e_g>`` (Rendle 2010);
* ``"dnn"``: ``MLP(flatten(E))`` (= EMOFM's WM, no LR term);
* ``"deepfm"``: LR + FM + DNN, one shared embedding (Guo et al. 2017);
* ``"dcnv2"``: full-rank cross network `CrossNetV2` on ``flatten(E)`` and an MLP, "parallel"
  (both read ``flatten(E)``, outputs concatenated, FuxiCTR's default) or "stacked" (the MLP
  reads the cross output) (Wang et al. 2021); no low-rank / mixture-of-experts variant;
* ``"autoint"``: AutoInt+ (Song et al. 2019): interacting layers ``ReLU(MHSA(H) + H W_res)``
  over the fields (no output projection, as in the paper), a linear readout of the flattened
  result, plus a DNN logit when ``use_dnn`` and an LR logit when ``use_lr``.

Weight decay (our choice, every model): `CTRModel.no_weight_decay` names the biases and the
norm layers' parameters (timm's ``no_weight_decay`` convention), and
`perceptrons.train.make_optimizer` puts them in a ``weight_decay=0`` group; the value-embedding
tables and the dense weights keep ``OptimizerConfig.weight_decay``, the same for every model
(that shrinkage, scaled up by Adam on rarely seen rows, is part of the shared protocol).
EMOFM and AutoInt also exempt their attention / mixer weights and EMOFM its field-ID embeddings:
with ``weight_decay=1e-4`` coupled into Adam, the decay term of the query/key weights at
initialisation (about 2e-5 per entry) is ~70x their loss gradient (about 2.5e-7; AutoInt's
1e-9), so within 80 steps of the quick preset their norm falls from 2.3 to 0.27 (AutoInt 2.4 to
0.03) and the attention stays uniform (entropy ln F): decay, not data, sets the attention.

EMOFM reconstruction choices beyond the named blocks (each ours, with the reason):

* the extraction and mixer linears start with zero biases: with PyTorch's default
  ``U(+-1/sqrt(k))`` biases and embeddings at std 0.01 every field token is about ``GELU(b_1)``,
  the same vector for every field (the field-specific part was under 2% of the token), so
  attention had nothing to tell the fields apart by and the mixer's output was
  field-independent;
* learned field-ID embeddings ``p_f`` are added to the field tokens before the field mixer
  (``field_ids``, like a transformer's position embeddings): queries and keys can then pick
  field pairs even while the value embeddings are still small;
* the mixers start as the identity (``W_O``, the MLP's output linear and ``W_P`` zero-init,
  ``mixer_zero_init``): the residual stream carries the extracted tokens unchanged at first;
* dropout acts on the attention probabilities (``attention_dropout``), not on the mixer
  outputs (``mixer_dropout``, default 0): dropout noise on the mixer output was ~70x the
  field-specific part of the tokens;
* optional keys of the other field groups only (``mixer_keys="cross"``), and an optional
  product path ``h_f * W_P(sum_g alpha_fg h_g W_V)`` (``mixer_product``), a multiplicative
  field-pair term as in FM / DCN-V2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from perceptrons.config import Config, require
from perceptrons.ctr.features import CTRFeatures, CTRInput, as_ctr_input
from perceptrons.ctr.layers import (
    CrossNetV2,
    FieldAttention,
    FieldEmbedding,
    fm_interaction,
    seeded_linear,
)
from perceptrons.layers import MLP
from perceptrons.registry import MODELS

__all__ = [
    "DeepConfig",
    "CTRModel",
    "CTRModelConfig",
    "CTRStep",
    "DCNv2",
    "DCNv2Config",
    "DNN",
    "DNNConfig",
    "DeepFM",
    "DeepFMConfig",
    "FM",
    "FMConfig",
    "LR",
    "LRConfig",
    "AutoInt",
    "AutoIntConfig",
]

PAPER = (
    "Li & Wu, EMOFM: Ensemble MLP mOdel with Feature-based Mixers for Click-Through Rate "
    "Prediction, arXiv:2310.04482"
)
MODULES = ("perceptrons.ctr.layers", "perceptrons.ctr.metrics", "perceptrons.ctr")
"""Library modules these models are built from (shown by ``perceptrons info``)."""
DOCS = "docs/ctr.md"
NormName: TypeAlias = Literal["none", "layernorm", "batchnorm"]
_NORMS = {"none": None, "layernorm": nn.LayerNorm, "batchnorm": nn.BatchNorm1d}
_INPUT_SHAPE = ("batch", "fields")


# ------------------------------------------------------------------------------ configs
@dataclass(frozen=True, kw_only=True)
class CTRModelConfig(Config):
    """Fields shared by every CTR model config.

    Attributes:
        features: The embedded fields (``encoder.feature_spec``); the default
            is a tiny 5-field example with every kind of field.
        embed_dim: Embedding size k (reczoo/BARS uses 10, the reczoo CVR baseline 64).
        embed_std: Standard deviation of the initial embeddings.
        sparse_embeddings: Build the embedding tables as ``nn.Embedding(sparse=True)``
            (`FieldEmbedding`'s ``sparse``): a step's gradient holds only the batch's rows, so
            with ``OptimizerConfig(embedding_optimizer="sparse_adam")`` (or ``"adagrad"``) the
            step time no longer grows with the vocabulary. Dense Adam/AdamW cannot apply sparse
            gradients (`make_optimizer` says so); L2 on the rows: ``CTRStep(embedding_l2=)``.
    """

    features: CTRFeatures = CTRFeatures()
    embed_dim: int = 16
    embed_std: float = 0.01
    sparse_embeddings: bool = False

    def validate(self) -> None:
        require(self.embed_dim >= 1, "embed_dim", "must be >= 1", self.embed_dim)
        require(self.embed_std > 0, "embed_std", "must be > 0", self.embed_std)


@dataclass(frozen=True, kw_only=True)
class DeepConfig(CTRModelConfig):
    """Fields of the models with an MLP tower.

    Attributes:
        hidden_features: Hidden widths of the MLP (FuxiCTR's DNN uses (400, 400, 400)).
        activation: Hidden activation name.
        norm: Normalisation before each activation: "none", "layernorm" or "batchnorm".
        dropout: Dropout after each hidden activation, in [0, 1) (reczoo CVR baseline: 0.1).
    """

    hidden_features: tuple[int, ...] = (128, 64)
    activation: str = "relu"
    norm: NormName = "none"
    dropout: float = 0.0

    def validate(self) -> None:
        super().validate()
        for w in self.hidden_features:
            require(w >= 1, "hidden_features", "each width must be >= 1", self.hidden_features)
        require(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)", self.dropout)


@dataclass(frozen=True, kw_only=True)
class LRConfig(CTRModelConfig):
    """Logistic regression (first-order only); ``embed_dim`` and ``embed_std`` are unused."""


@dataclass(frozen=True, kw_only=True)
class FMConfig(CTRModelConfig):
    """Factorisation machine."""


@dataclass(frozen=True, kw_only=True)
class DNNConfig(DeepConfig):
    """Embedding + MLP (EMOFM's WM)."""


@dataclass(frozen=True, kw_only=True)
class DeepFMConfig(DeepConfig):
    """DeepFM: LR + FM + DNN on one embedding."""


@dataclass(frozen=True, kw_only=True)
class DCNv2Config(DeepConfig):
    """DCN-V2.

    Attributes:
        num_cross_layers: Cross layers of `CrossNetV2`.
        structure: "parallel" (cross and MLP both read the embeddings, FuxiCTR's default) or
            "stacked" (the MLP reads the cross network's output).
    """

    num_cross_layers: int = 3
    structure: Literal["parallel", "stacked"] = "parallel"

    def validate(self) -> None:
        super().validate()
        require(self.num_cross_layers >= 1, "num_cross_layers", "must be >= 1")


@dataclass(frozen=True, kw_only=True)
class AutoIntConfig(DeepConfig):
    """AutoInt+ (with ``use_dnn``) or AutoInt.

    Attributes:
        num_attention_layers: Interacting layers.
        num_heads: Attention heads; must divide ``embed_dim``.
        use_dnn: Add the DNN logit (AutoInt+).
        use_lr: Add the first-order logit.

    Weight decay: the attention weights, biases and norms are in `AutoInt.no_weight_decay`
    (our choice: coupled L2 shrank the query/key weights 80x in 80 steps, see the module
    docstring).
    """

    num_attention_layers: int = 2
    num_heads: int = 2
    use_dnn: bool = True
    use_lr: bool = False

    def validate(self) -> None:
        super().validate()
        require(self.num_attention_layers >= 1, "num_attention_layers", "must be >= 1")
        require(self.num_heads >= 1, "num_heads", "must be >= 1", self.num_heads)
        require(self.embed_dim % self.num_heads == 0, "num_heads", "must divide embed_dim")


# ------------------------------------------------------------------------------ base class
class CTRModel(nn.Module):
    """Shared model protocol of the CTR models (input checks, example input, embedding).

    Subclasses build their parts in ``__init__`` after calling ``super().__init__`` and
    implement ``_forward(x: CTRInput)``.
    """

    config: CTRModelConfig

    def __init__(
        self,
        config: CTRModelConfig,
        *,
        embed: bool = True,
        first_order: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.features = config.features
        self.input_shape: tuple[str | int, ...] = _INPUT_SHAPE
        self.embedding = FieldEmbedding(
            config.features,
            config.embed_dim if embed else 0,
            first_order=first_order,
            embed_std=config.embed_std,
            sparse=config.sparse_embeddings,
            generator=generator,
        )

    def no_weight_decay(self) -> set[str]:
        """Parameter / module names without weight decay (timm's convention, read by
        `perceptrons.train.make_optimizer`): every bias and every norm layer (our choice, as in
        timm's ``param_groups_weight_decay``: decaying them only shifts or rescales
        activations). Subclasses add their own."""
        names = {
            name for name, _ in self.named_parameters() if name.rsplit(".", 1)[-1].endswith("bias")
        }
        for name, module in self.named_modules():
            if isinstance(module, nn.LayerNorm | nn.BatchNorm1d) and any(
                True for _ in module.parameters(recurse=False)
            ):
                names.add(name)
        return names

    @property
    def flat_dim(self) -> int:
        """``F * k``, the width of the flattened embeddings."""
        return self.features.num_fields * self.config.embed_dim

    def _mlp(self, in_features: int, hidden: tuple[int, ...], out: int, generator: Any) -> MLP:
        config = self.config
        assert isinstance(config, DeepConfig)
        return MLP(
            in_features,
            hidden,
            out,
            act_layer=config.activation,
            norm_layer=_NORMS[config.norm],
            dropout=config.dropout,
            generator=generator,
        )

    # -------------------------------------------------------------- model protocol
    def example_input(
        self, batch_size: int, *, generator: torch.Generator | None = None
    ) -> CTRInput:
        """Random valid rows: uniform ids (some OOV / MISSING), 1-3 ids per multi-valued field."""
        fs = self.features
        device = next(self.parameters()).device
        dtype = next(self.parameters()).dtype
        cat = [
            torch.randint(1, c, (batch_size, 1), generator=generator)
            for c in fs.categorical_cardinalities
        ]
        categorical = torch.cat(cat, 1) if cat else torch.zeros(batch_size, 0, dtype=torch.long)
        numeric = torch.randn(batch_size, fs.num_numeric, generator=generator, dtype=dtype)
        multi, lengths = [], []
        for c in fs.multi_valued_cardinalities:
            length = torch.randint(1, 4, (batch_size,), generator=generator)
            ids = torch.randint(1, c, (batch_size, 3), generator=generator)
            ids = ids.masked_fill(torch.arange(3) >= length[:, None], 0)
            multi.append(ids.to(device))
            lengths.append(length)
        multi_lengths = (
            torch.stack(lengths, 1) if lengths else torch.zeros(batch_size, 0, dtype=torch.long)
        )
        return CTRInput(
            categorical.to(device), numeric.to(device), tuple(multi), multi_lengths.to(device)
        )

    def invalid_inputs(self) -> list[tuple[str, Any]]:
        """Inputs that must be rejected with an error naming ``(batch, fields)``."""
        x = self.example_input(2, generator=torch.Generator().manual_seed(0))
        cases: list[tuple[str, Any]] = [
            ("a bare tensor", x.categorical),
            ("a nested list", [t.tolist() for t in (x.categorical, x.numeric)]),
            ("categorical with an extra dimension", x._replace(categorical=x.categorical[None])),
            ("categorical without batch dimension", x._replace(categorical=x.categorical[0])),
            ("floating categorical ids", x._replace(categorical=x.categorical.float())),
            ("int32 categorical ids", x._replace(categorical=x.categorical.int())),
            ("different row counts", x._replace(numeric=x.numeric[:1])),
            ("a missing multi-valued field", x._replace(multi_ids=x.multi_ids[:-1])),
            ("a dict without keys", {"labels": x.categorical}),
        ]
        if self.features.num_categorical:
            too_big = x.categorical.clone()
            too_big[0, 0] = self.features.categorical_cardinalities[0]
            negative = x.categorical.clone()
            negative[1, -1] = -1
            cases.append(("an id >= cardinality", x._replace(categorical=too_big)))
            cases.append(("a negative id", x._replace(categorical=negative)))
        if self.features.num_numeric:
            nan = x.numeric.clone()
            nan[0, 0] = float("nan")
            cases.append(("NaN numeric value", x._replace(numeric=nan)))
            cases.append(("integer numeric values", x._replace(numeric=x.numeric.long())))
        if self.features.num_multi:
            ids = list(x.multi_ids)
            ids[0] = ids[0].clone()
            ids[0][0, 0] = self.features.multi_valued_cardinalities[0]
            cases.append(("a multi-valued id >= cardinality", x._replace(multi_ids=tuple(ids))))
        return cases

    def forward(self, inputs: Any) -> Any:
        """Click logits of encoded rows.

        Args:
            inputs: A `CTRInput`, ``CTRBatch`` or ``CTRBatch.to_tensors()`` dict of ``b`` rows.

        Returns:
            Logits ``(b,)`` (``"emofm"``: a dict, see `EMOFM`).

        Raises:
            TypeError, ValueError: malformed inputs (see `as_ctr_input`); the message contains
                ``(batch, fields)`` and the expected layout.
        """
        return self._forward(as_ctr_input(inputs, self.features))

    def _forward(self, x: CTRInput) -> Any:
        raise NotImplementedError


# ------------------------------------------------------------------------------ baselines
@MODELS.register(
    "lr",
    config=LRConfig,
    summary="CTR logistic regression (first-order only)",
    paper=PAPER,
    modules=MODULES,
    docs=DOCS,
)
class LR(CTRModel):
    """Logistic regression ``w_0 + sum_f w_f[x_f]``: rows -> logits ``(b,)``."""

    def __init__(self, config: LRConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__(config, embed=False, generator=generator)

    def _forward(self, x: CTRInput) -> Tensor:
        return self.embedding.first_order(x)


@MODELS.register(
    "fm",
    config=FMConfig,
    summary="CTR factorisation machine (Rendle 2010)",
    paper=PAPER,
    modules=MODULES,
    docs=DOCS,
)
class FM(CTRModel):
    """Factorisation machine: LR + ``sum_{f<g} <e_f, e_g>``: rows -> logits ``(b,)``."""

    def __init__(self, config: FMConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__(config, generator=generator)

    def _forward(self, x: CTRInput) -> Tensor:
        return self.embedding.first_order(x) + fm_interaction(self.embedding(x))


@MODELS.register(
    "dnn",
    config=DNNConfig,
    summary="CTR embedding + MLP (EMOFM's WM)",
    paper=PAPER,
    modules=MODULES,
    docs=DOCS,
)
class DNN(CTRModel):
    """``MLP(flatten(E))``: rows -> logits ``(b,)``."""

    def __init__(self, config: DNNConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__(config, first_order=False, generator=generator)
        self.mlp = self._mlp(self.flat_dim, config.hidden_features, 1, generator)

    def _forward(self, x: CTRInput) -> Tensor:
        return self.mlp(self.embedding(x).flatten(1)).squeeze(-1)


@MODELS.register(
    "deepfm",
    config=DeepFMConfig,
    summary="DeepFM: LR + FM + DNN (Guo et al. 2017)",
    paper=PAPER,
    modules=MODULES,
    docs=DOCS,
)
class DeepFM(CTRModel):
    """LR + FM + ``MLP(flatten(E))`` on one embedding: rows -> logits ``(b,)``."""

    def __init__(self, config: DeepFMConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__(config, generator=generator)
        self.mlp = self._mlp(self.flat_dim, config.hidden_features, 1, generator)

    def _forward(self, x: CTRInput) -> Tensor:
        e = self.embedding(x)
        deep = self.mlp(e.flatten(1)).squeeze(-1)
        return self.embedding.first_order(x) + fm_interaction(e) + deep


@MODELS.register(
    "dcnv2",
    config=DCNv2Config,
    summary="DCN-V2 cross network + MLP (Wang 2021)",
    paper=PAPER,
    modules=MODULES,
    docs=DOCS,
)
class DCNv2(CTRModel):
    """Cross network and MLP on ``flatten(E)``, parallel or stacked: rows -> logits ``(b,)``."""

    def __init__(self, config: DCNv2Config, *, generator: torch.Generator | None = None) -> None:
        super().__init__(config, first_order=False, generator=generator)
        d = self.flat_dim
        self.cross = CrossNetV2(d, config.num_cross_layers, generator=generator)
        hidden = config.hidden_features
        # the MLP ends with its last hidden width (ReLU applied in forward), then one head
        self.mlp = self._mlp(d, hidden[:-1], hidden[-1], generator) if hidden else None
        if config.structure == "parallel":
            head_in = d + (hidden[-1] if hidden else 0)
        else:
            head_in = hidden[-1] if hidden else d
        self.head = seeded_linear(head_in, 1, generator)

    def _forward(self, x: CTRInput) -> Tensor:
        e = self.embedding(x).flatten(1)
        crossed = self.cross(e)
        if self.mlp is None:
            h = crossed
        elif self.config.structure == "parallel":
            h = torch.cat([crossed, F.relu(self.mlp(e))], dim=-1)
        else:
            h = F.relu(self.mlp(crossed))
        return self.head(h).squeeze(-1)


@MODELS.register(
    "autoint",
    config=AutoIntConfig,
    summary="AutoInt+: self-attention over fields",
    paper=PAPER,
    modules=MODULES,
    docs=DOCS,
)
class AutoInt(CTRModel):
    """Interacting layers over the fields (+ DNN, + LR): rows -> logits ``(b,)``."""

    def __init__(self, config: AutoIntConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__(config, first_order=config.use_lr, generator=generator)
        k = config.embed_dim
        self.attention = nn.ModuleList(
            FieldAttention(k, config.num_heads, out_projection=False, generator=generator)
            for _ in range(config.num_attention_layers)
        )
        self.residual = nn.ModuleList(
            seeded_linear(k, k, generator, bias=False) for _ in range(config.num_attention_layers)
        )
        self.head = seeded_linear(self.flat_dim, 1, generator)
        self.mlp = (
            self._mlp(self.flat_dim, config.hidden_features, 1, generator)
            if config.use_dnn
            else None
        )

    def no_weight_decay(self) -> set[str]:
        """Biases, norms and the attention weights (see `AutoIntConfig`)."""
        return super().no_weight_decay() | {"attention"}

    def _forward(self, x: CTRInput) -> Tensor:
        e = self.embedding(x)
        h = e
        for attention, residual in zip(self.attention, self.residual, strict=True):
            h = F.relu(attention(h) + residual(h))
        out = self.head(h.flatten(1)).squeeze(-1)
        if self.mlp is not None:
            out = out + self.mlp(e.flatten(1)).squeeze(-1)
        if self.config.use_lr:
            out = out + self.embedding.first_order(x)
        return out


# ------------------------------------------------------------------------------ the step
@dataclass
class CTRStep:
    """`perceptrons.train.Step` of the CTR models: BCE with logits (+ EMOFM's auxiliary losses).

    ``batch`` is a ``CTRBatch``, its ``to_tensors()`` dict (a `TensorLoader` batch) or a pair
    ``(inputs, labels)`` / triple ``(inputs, labels, types)``; types ``-1`` are unknown.

    For a model returning a tensor: ``loss = BCE(logits, labels)``. For a dict output
    (``"emofm"``), ``loss = BCE(logits) + head_loss_weight * BCE(l_{t*}) on rows of known type
    + member_loss_weight * mean of the members' BCE + type_loss_weight * CE(type_logits, t*)``
    on rows of known type (our reconstruction: masked multi-task BCE, lambda CE for the AM, BCE
    of the test-time path).

    With ``embedding_l2 = lambda > 0`` the loss gains ``lambda * sum_r (||V[r]||^2 + w[r]^2)``
    over the distinct table rows ``r`` the batch looks up (`FieldEmbedding.looked_up_rows`;
    ``V`` the embedding table, ``w`` the first-order weights), returned as the metric
    ``"embedding_l2"``. FuxiCTR's ``embedding_regularizer`` (``(lambda / 2) ||V||^2``) and
    DeepCTR-Torch's ``l2_reg_embedding`` (``lambda ||V||^2``) put the penalty on the whole
    tables, whose dense gradient would touch every row at every step; this one has the same
    gradient ``2 lambda V[r]`` as DeepCTR-Torch's on the batch's rows and none elsewhere, so
    it stays sparse with ``sparse_embeddings=True``. It is the only decay of the tables under
    ``OptimizerConfig(embedding_optimizer=...)`` (SparseAdam has none); the dense parameters
    keep ``OptimizerConfig.weight_decay``.

    Attributes:
        type_loss_weight: lambda of the AM's cross-entropy (our range: 0.1-1).
        head_loss_weight: Weight of the true type head's BCE.
        member_loss_weight: Weight of the ensemble members' BCE.
        embedding_l2: lambda of the L2 penalty on the looked-up embedding rows (0: none).

    Returns (from ``__call__``): ``{"loss", "bce"}`` plus ``"head_bce"``, ``"member_bce"``,
    ``"type_loss"``, ``"type_accuracy"`` and ``"embedding_l2"`` when they apply; scalars.
    """

    type_loss_weight: float = 0.5
    head_loss_weight: float = 1.0
    member_loss_weight: float = 0.5
    embedding_l2: float = 0.0

    def __post_init__(self) -> None:
        require(
            math.isfinite(self.embedding_l2) and self.embedding_l2 >= 0,
            "embedding_l2",
            "must be finite and >= 0",
            self.embedding_l2,
        )

    def __call__(self, model: nn.Module, batch: Any) -> dict[str, Tensor]:
        inputs, labels, types = _split_batch(batch)
        embedding = getattr(model, "embedding", None)
        if self.embedding_l2 and not isinstance(embedding, FieldEmbedding):
            raise TypeError(
                f"embedding_l2: needs a CTR model with a FieldEmbedding `.embedding`, got "
                f"{type(model).__name__}"
            )
        out = self._task_losses(model(inputs), labels, types)
        if self.embedding_l2:
            assert isinstance(embedding, FieldEmbedding)
            x = as_ctr_input(inputs, embedding.features)
            penalty = self.embedding_l2 * embedding.squared_row_norms(x)
            out["loss"] = out["loss"] + penalty
            out["embedding_l2"] = penalty.detach()
        return out

    def _task_losses(self, out: Any, labels: Tensor, types: Tensor | None) -> dict[str, Tensor]:
        """BCE (+ EMOFM's auxiliary losses) of the model output ``out``."""
        if isinstance(out, Tensor):
            bce = F.binary_cross_entropy_with_logits(out, labels.to(out.dtype))
            return {"loss": bce, "bce": bce.detach()}
        logits = out["logits"]
        y = labels.to(logits.dtype)
        bce = F.binary_cross_entropy_with_logits(logits, y)
        loss = bce
        metrics: dict[str, Tensor] = {"bce": bce.detach()}
        known = types >= 0 if types is not None else None
        if "type_head_logits" in out and known is not None and bool(known.any()):
            heads = out["type_head_logits"]
            if heads.shape[1] == 1:
                known = torch.ones_like(known)
            picked = heads[known].gather(1, types[known].clamp_min(0).unsqueeze(1)).squeeze(1)
            head_bce = F.binary_cross_entropy_with_logits(picked, y[known])
            loss = loss + self.head_loss_weight * head_bce
            metrics["head_bce"] = head_bce.detach()
        if "member_logits" in out:
            members = out["member_logits"]
            member_bce = F.binary_cross_entropy_with_logits(
                members, y.unsqueeze(1).expand_as(members)
            )
            loss = loss + self.member_loss_weight * member_bce
            metrics["member_bce"] = member_bce.detach()
        if "type_logits" in out and known is not None and bool(known.any()):
            type_logits = out["type_logits"][known]
            type_loss = F.cross_entropy(type_logits, types[known])
            loss = loss + self.type_loss_weight * type_loss
            metrics["type_loss"] = type_loss.detach()
            accuracy = (type_logits.detach().argmax(-1) == types[known]).to(logits.dtype).mean()
            metrics["type_accuracy"] = accuracy
        return {"loss": loss, **metrics}


def _split_batch(batch: Any) -> tuple[Any, Tensor, Tensor | None]:
    """``(inputs, labels, types or None)`` of a CTR batch (see `CTRStep`)."""
    if isinstance(batch, dict):
        if "labels" not in batch:
            raise ValueError("batch: a CTR batch dict needs a 'labels' entry")
        return batch, batch["labels"], batch.get("types")
    if hasattr(batch, "labels") and hasattr(batch, "categorical"):
        return batch, batch.labels, getattr(batch, "types", None)
    if isinstance(batch, tuple | list) and len(batch) in (2, 3):
        return batch[0], batch[1], batch[2] if len(batch) == 3 else None
    raise TypeError(
        f"batch: expected a CTRBatch, its to_tensors() dict or (inputs, labels[, types]), "
        f"got {type(batch).__name__}"
    )
