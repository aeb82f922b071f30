"""EMOFM (Li & Wu 2023, arXiv:2310.04482), our reconstruction: hierarchical MLPs with field and
type mixers, an auxiliary type model (AM) and a wide MLP member (WM), ensembled.

The paper body is not available: the equations, sizes and ensemble composition are ours (see
the `EMOFM` docstring and ``docs/ctr.md``). It builds on the shared CTR model base of
`perceptrons.ctr.models` (`CTRModel`, `DeepConfig`) and registers as ``"emofm"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from perceptrons.config import require
from perceptrons.ctr.features import CTRInput
from perceptrons.ctr.layers import (
    MixerBlock,
    seeded_linear,
)
from perceptrons.ctr.models import DOCS, MODULES, PAPER, CTRModel, DeepConfig
from perceptrons.registry import MODELS

__all__ = ["EMOFM", "EMOFMConfig", "type_known_logits"]


@dataclass(frozen=True, kw_only=True)
class EMOFMConfig(DeepConfig):
    """EMOFM (our reconstruction); the switches give the ablations.

    ``hidden_features`` is the MLP of the WM ensemble member, ``type_hidden_features`` that of
    each type branch and of the AM.

    Attributes:
        field_dim: d1, width of each field token after stage-1 extraction.
        num_mixer_blocks: Field-mixer blocks stacked in stage 1 (our range: 1-2).
        num_heads: Attention heads of both mixers; must divide field_dim and type_dim.
        mixer_keys: Keys of the field mixer: "all" fields, or "cross": only fields of other
            groups (needs ``field_groups``).
        field_groups: Group id of each embedded field (order: categorical, multi-valued,
            numeric), used by ``mixer_keys="cross"``; () puts every field in its own group.
        type_dim: d2, width of each type branch.
        type_hidden_features: Hidden widths of each type branch MLP and of the AM.
        field_mixer: Use the field-wise mixer in stage 1 (else: extraction only).
        type_mixer: Use the type-wise mixer in stage 2.
        type_model: Use the auxiliary type model (AM) to weight the type heads; without it the
            heads are averaged uniformly.
        type_model_stop_gradient: The AM reads detached embeddings (its loss does not shape
            the shared embedding).
        ensemble: Average the HM's probability with a WM (DNN) member's.
        field_ids: Add learned field-ID embeddings ``p_f`` (F, d1) to the field tokens before
            the field mixer (our choice: with every token close to the same vector at
            initialisation, attention cannot tell the fields apart without them).
        field_id_std: Standard deviation of the initial ``p_f`` (timm's ViT position
            embeddings: 0.02).
        mixer_zero_init: Start both mixers as the identity (zero ``W_O``, ``W_P`` and MLP
            output linear; our choice, see the module docstring).
        attention_dropout: Dropout on the mixers' attention probabilities, in [0, 1).
        mixer_dropout: Dropout on the mixers' attention / MLP outputs, in [0, 1) (our default
            0: on the residual stream it drowned the field-specific signal).
        mixer_product: Add the product path ``h_f * W_P(sum_g alpha_fg h_g W_V)`` to each
            mixer block.

    Weight decay: the mixers, ``p_f``, the biases and the norms are in `EMOFM.no_weight_decay`
    (no coupled L2 on them, see the module docstring); the embedding tables, the extraction
    and the MLP weights keep ``OptimizerConfig.weight_decay``.
    """

    field_dim: int = 16
    num_mixer_blocks: int = 1
    num_heads: int = 2
    mixer_keys: Literal["all", "cross"] = "all"
    field_groups: tuple[int, ...] = ()
    type_dim: int = 32
    type_hidden_features: tuple[int, ...] = (64,)
    field_mixer: bool = True
    type_mixer: bool = True
    type_model: bool = True
    type_model_stop_gradient: bool = False
    ensemble: bool = True
    field_ids: bool = True
    field_id_std: float = 0.02
    mixer_zero_init: bool = True
    attention_dropout: float = 0.0
    mixer_dropout: float = 0.0
    mixer_product: bool = False

    def validate(self) -> None:
        super().validate()
        require(self.field_id_std > 0, "field_id_std", "must be > 0", self.field_id_std)
        for name in ("attention_dropout", "mixer_dropout"):
            value = getattr(self, name)
            require(0.0 <= value < 1.0, name, "must be in [0, 1)", value)
        require(self.field_dim >= 1, "field_dim", "must be >= 1", self.field_dim)
        require(self.type_dim >= 1, "type_dim", "must be >= 1", self.type_dim)
        require(self.num_mixer_blocks >= 1, "num_mixer_blocks", "must be >= 1")
        require(self.num_heads >= 1, "num_heads", "must be >= 1", self.num_heads)
        if self.field_mixer:
            require(self.field_dim % self.num_heads == 0, "num_heads", "must divide field_dim")
        if self.type_mixer:
            require(self.type_dim % self.num_heads == 0, "num_heads", "must divide type_dim")
        require(
            self.type_model is False or self.features.num_types >= 2,
            "type_model",
            "needs features.num_types >= 2",
            self.type_model,
        )
        if self.mixer_keys == "cross":
            require(
                len(self.field_groups) == self.features.num_fields,
                "field_groups",
                f"needs one group per embedded field ({self.features.num_fields})",
                self.field_groups,
            )
            require(
                len(set(self.field_groups)) >= 2,
                "field_groups",
                "needs >= 2 groups for cross keys",
                self.field_groups,
            )
        elif self.field_groups:
            require(False, "field_groups", "is only used with mixer_keys='cross'")


# ------------------------------------------------------------------------------ EMOFM
def _mixture_logit(logits: Tensor, log_weights: Tensor) -> Tensor:
    """``logit(sum_i w_i sigmoid(l_i))`` along the last dim, computed in log space."""
    log_p = torch.logsumexp(log_weights + F.logsigmoid(logits), dim=-1)
    log_q = torch.logsumexp(log_weights + F.logsigmoid(-logits), dim=-1)
    return log_p - log_q


@MODELS.register(
    "emofm",
    config=EMOFMConfig,
    paper=PAPER,
    summary="EMOFM: field/type-wise mixers, auxiliary type model, ensemble (reconstruction)",
    modules=("perceptrons.ctr.models", *MODULES),
    docs=DOCS,
)
class EMOFM(CTRModel):
    """EMOFM (reconstruction): hierarchical MLPs with field and type mixers, an AM, a WM member.

    With ``E`` the field embeddings (b, F, k):

    1. stage 1 (field extraction + field mixer): ``h_f = GELU(W_1 e_f + b_1) + p_f`` (weights
       shared by the fields, ``b_1`` zero at initialisation, ``p_f`` the learned field-ID
       embedding when ``field_ids`` and the field mixer is on), then ``num_mixer_blocks``
       `MixerBlock`s over the F field tokens (keys: all fields, or with ``mixer_keys="cross"``
       the fields of the other groups);
    2. stage 2 (type branches + type mixer): ``z_t = MLP2_t(flatten(H))`` (b, d2) for each
       type t, then one `MixerBlock` over the T type tokens (keys: all types), and a head per
       type ``l_t = w_t . z_t + c_t``;
    3. AM: ``pi = softmax(MLP_AM(flatten(E)))`` (b, T), on the shared embedding (detached when
       ``type_model_stop_gradient``); without AM ``pi`` is uniform;
    4. HM prediction (types hidden): ``p_HM = sum_t pi_t sigmoid(l_t)``;
    5. ensemble: ``p = (p_HM + sigmoid(l_WM)) / 2`` with ``l_WM = MLP(flatten(E))`` (the WM, a
       DNN on the shared embedding); without it ``p = p_HM``.

    Output dict (every entry has leading dimension b):

    * ``"logits"`` (b,): ``logit(p)``, the test-time prediction (types hidden);
    * ``"type_head_logits"`` (b, T): ``l_t``; with a known type ``t*`` the validation-setting
      prediction is ``l_{t*}`` (`type_known_logits`);
    * ``"member_logits"`` (b, 2) when ``ensemble``: ``logit(p_HM)`` and ``l_WM``;
    * ``"type_logits"`` (b, T) when ``type_model``: the AM's logits.

    `CTRStep` trains it with BCE on ``"logits"``, masked BCE of the true type's head, BCE of
    each ensemble member and ``type_loss_weight`` times the AM's cross-entropy.
    """

    config: EMOFMConfig

    def __init__(self, config: EMOFMConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__(config, first_order=False, generator=generator)
        fs, k = config.features, config.embed_dim
        self.num_types = max(fs.num_types, 1)
        n_fields, d1, d2, t = fs.num_fields, config.field_dim, config.type_dim, self.num_types
        self.extract = seeded_linear(k, d1, generator)
        nn.init.zeros_(self.extract.bias)
        mixer = {
            "dropout": config.mixer_dropout,
            "attention_dropout": config.attention_dropout,
            "zero_init_output": config.mixer_zero_init,
            "product": config.mixer_product,
            "generator": generator,
        }
        self.field_mixer = (
            nn.ModuleList(
                MixerBlock(d1, config.num_heads, **mixer) for _ in range(config.num_mixer_blocks)
            )
            if config.field_mixer
            else None
        )
        self.field_ids = None
        if config.field_mixer and config.field_ids:
            self.field_ids = nn.Parameter(torch.empty(n_fields, d1))
            nn.init.normal_(self.field_ids, std=config.field_id_std, generator=generator)
        if config.mixer_keys == "cross":
            groups = torch.tensor(config.field_groups)
            self.register_buffer("field_mask", groups[:, None] != groups[None, :], persistent=False)
        else:
            self.field_mask = None
        hidden = config.type_hidden_features
        self.branches = nn.ModuleList(
            self._mlp(n_fields * d1, hidden, d2, generator) for _ in range(t)
        )
        self.type_mixer = MixerBlock(d2, config.num_heads, **mixer) if config.type_mixer else None
        bound = 1.0 / math.sqrt(d2)
        self.head_weight = nn.Parameter(
            torch.empty(t, d2).uniform_(-bound, bound, generator=generator)
        )
        self.head_bias = nn.Parameter(torch.zeros(t))
        self.type_model = (
            self._mlp(self.flat_dim, hidden, t, generator) if config.type_model else None
        )
        self.wm = (
            self._mlp(self.flat_dim, config.hidden_features, 1, generator)
            if config.ensemble
            else None
        )

    def no_weight_decay(self) -> set[str]:
        """Biases, norms, both mixers and the field-ID embeddings (see `EMOFMConfig`)."""
        names = super().no_weight_decay()
        for name in ("field_mixer", "type_mixer", "field_ids"):
            if getattr(self, name) is not None:
                names.add(name)
        return names

    def _forward(self, x: CTRInput) -> dict[str, Tensor]:
        e = self.embedding(x)  # (b, F, k)
        flat = e.flatten(1)
        h = F.gelu(self.extract(e))  # (b, F, d1)
        if self.field_ids is not None:
            h = h + self.field_ids
        if self.field_mixer is not None:
            for block in self.field_mixer:
                h = block(h, self.field_mask)
        z = torch.stack([branch(h.flatten(1)) for branch in self.branches], dim=1)  # (b, T, d2)
        if self.type_mixer is not None:
            z = self.type_mixer(z)
        heads = (z * self.head_weight).sum(-1) + self.head_bias  # (b, T)
        out: dict[str, Tensor] = {"type_head_logits": heads}
        if self.type_model is not None:
            am_in = flat.detach() if self.config.type_model_stop_gradient else flat
            type_logits = self.type_model(am_in)
            out["type_logits"] = type_logits
            log_pi = F.log_softmax(type_logits, dim=-1)
        else:
            log_pi = torch.full_like(heads, -math.log(self.num_types))
        hm = _mixture_logit(heads, log_pi)
        if self.wm is not None:
            wm = self.wm(flat).squeeze(-1)
            members = torch.stack([hm, wm], dim=-1)
            out["member_logits"] = members
            out["logits"] = _mixture_logit(members, torch.full_like(members, -math.log(2.0)))
        else:
            out["logits"] = hm
        return out


def type_known_logits(output: dict[str, Tensor], types: Tensor) -> Tensor:
    """EMOFM's prediction when the row type is known: ``l_{t*}`` (b,).

    Rows with an unknown type (``-1``) get the test-time ``output["logits"]``.
    """
    heads = output["type_head_logits"]
    known = types >= 0
    picked = heads.gather(1, types.clamp_min(0).unsqueeze(1)).squeeze(1)
    return torch.where(known, picked, output["logits"])
