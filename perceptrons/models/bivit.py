"""BiViT: a small vision transformer with binary attention and MLPs, cross-layer binarisation
and distillation from its full-precision teacher.

Paper: Yefei He, Zhenyu Lou, Luoming Zhang, Jing Liu, Weijia Wu, Hong Zhou & Bohan Zhuang,
*BiViT: Extremely Compressed Binary Vision Transformers*, ICCV 2023, arXiv:2211.07091; partial
official code ``github.com/ThisisBillhe/BiViT`` (the binary layers and the SAB attention, no
model or training code). The layers are `perceptrons.layers.binary`.

Dimension legend: ``b`` batch, ``C`` = ``in_channels``, ``H = W`` = ``image_size``, ``p`` =
``patch_size``, ``N = (H / p)^2`` patches, ``n = N + 1`` tokens (class token first), ``e`` =
``embed_dim``, ``K`` = ``num_classes``.

`BiViT` (registered as ``"bivit"``): images ``(b, C, H, W)`` (as torchvision models take them)
-> logits ``(b, K)``. A full-precision patch embedding (a ``p x p`` convolution with stride
``p``), a class token and learned positions, ``depth`` pre-LayerNorm blocks ``x + A(LN(x))``,
``x + M(LN(x))`` with ``A`` a `BinaryAttention` and ``M`` a `BinaryMLP`, a final LayerNorm and
a full-precision linear head on the class token. Residual stream, LayerNorms, patch embedding,
positions and head stay full precision (as in the paper's binary backbones, which binarise the
transformer blocks).

Which parts are binary: ``binary_attention`` / ``binary_mlp`` choose it per block (the model's
target); `BiViT.set_binarized` switches the target parts on or off at run time (a part that the
config keeps full precision stays so), which is how a schedule moves from the full-precision
teacher to the binary student without copying weights: every module always holds its latent
full-precision weights.
The run-time switch is not part of the saved state: a saved model loads as its config says
(`perceptrons.models.save_model` / ``load_model``); save a full-precision teacher with
``binary_attention`` and ``binary_mlp`` all False in its config to load it as one.

Cross-layer binarisation (CLB, our reconstruction: the paper's schedule was not available; its
abstract says CLB "decouples the binarization of self-attention and MLPs to avoid mutual
interference"): a list of `CLBStage` s, each naming the parts that are binary (``"attention"``,
``"mlp"``) and its number of optimiser steps, run in one `perceptrons.train.fit` call by the
`BinarizationSchedule` callback; `clb_stages` builds the staged schedule (attention first, MLPs
kept full precision, then everything) and `one_shot_stages` the baseline that binarises
everything at once. Each stage distils from the full-precision teacher with `BiViTStep`: the
cross-entropy plus ``kd_weight`` times the temperature-scaled KL divergence of the logits
(Hinton et al. 2015), our choice of the distillation loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from perceptrons.checks import check_tensor, format_shape
from perceptrons.config import Config, require
from perceptrons.layers.binary import (
    BINARIZERS,
    BinarizerName,
    BinaryAttention,
    BinaryLinear,
    BinaryMLP,
    ScaleName,
    STEName,
)
from perceptrons.registry import MODELS
from perceptrons.train import Callback

__all__ = [
    "PARTS",
    "BiViT",
    "BiViTConfig",
    "BiViTStep",
    "BinarizationSchedule",
    "CLBStage",
    "clb_stages",
    "one_shot_stages",
]

PAPER = (
    "He, Lou, Zhang, Liu, Wu, Zhou & Zhuang 2023, BiViT: Extremely Compressed Binary Vision "
    "Transformers, ICCV 2023, arXiv:2211.07091"
)
MODULES = ("perceptrons.layers.binary", "perceptrons.binary")
"""Library modules these models are built from (shown by ``perceptrons info``)."""
DOCS = "docs/bivit.md"
PARTS = ("attention", "mlp")
"""The module families a `CLBStage` binarises."""


@dataclass(frozen=True, kw_only=True)
class BiViTConfig(Config):
    """Configuration of `BiViT` (defaults: the digits model of the study, 8x8 grey images).

    Attributes:
        image_size: Height and width ``H = W`` of the input images.
        in_channels: Channels ``C`` of the input images.
        patch_size: Side ``p`` of the square patches (must divide ``image_size``).
        num_classes: Number of classes ``K``.
        embed_dim: Token width ``e``.
        depth: Number of transformer blocks.
        num_heads: Attention heads (must divide ``embed_dim``).
        mlp_ratio: MLP hidden width over ``embed_dim``.
        binary_attention: Per block, whether its attention is binary (W1A1 projections,
            binary Q/K/V and a binarised attention map); None: every block's.
        binary_mlp: Per block, whether its MLP has binary weights; None: every block's.
        binarizer: Attention-map binariser (`perceptrons.layers.binary.BINARIZERS`): ``"sab"``
            (the paper's), ``"threshold"``, ``"presoftmax"``, ``"bernoulli"``, ``"argmax"``.
        sab_fraction: SAB's share of the row maximum (0.25, the official code's).
        weight_scale: ``"learned"`` (PWS, the paper's) or ``"mean"`` (detached mean|W|).
        mlp_activation_bits: 1 (W1A1 MLPs) or 32 (W1A32: binary weights, real activations).
        ste: Straight-through gradient of the signs: ``"clipped"`` or ``"bireal"``.
    """

    image_size: int = 8
    in_channels: int = 1
    patch_size: int = 2
    num_classes: int = 10
    embed_dim: int = 64
    depth: int = 4
    num_heads: int = 4
    mlp_ratio: float = 2.0
    binary_attention: tuple[bool, ...] | None = None
    binary_mlp: tuple[bool, ...] | None = None
    binarizer: BinarizerName = "sab"
    sab_fraction: float = 0.25
    weight_scale: ScaleName = "learned"
    mlp_activation_bits: Literal[1, 32] = 1
    ste: STEName = "clipped"

    def validate(self) -> None:
        for name in ("image_size", "in_channels", "patch_size", "num_classes", "embed_dim"):
            require(getattr(self, name) >= 1, name, "must be >= 1", getattr(self, name))
        require(self.depth >= 1, "depth", "must be >= 1", self.depth)
        require(
            self.image_size % self.patch_size == 0,
            "patch_size",
            f"must divide image_size {self.image_size}",
            self.patch_size,
        )
        require(
            self.num_heads >= 1 and self.embed_dim % self.num_heads == 0,
            "num_heads",
            f"must be >= 1 and divide embed_dim {self.embed_dim}",
            self.num_heads,
        )
        require(
            math.isfinite(self.mlp_ratio) and self.mlp_ratio > 0,
            "mlp_ratio",
            "must be finite and > 0",
            self.mlp_ratio,
        )
        for name in ("binary_attention", "binary_mlp"):
            flags = getattr(self, name)
            require(
                flags is None or len(flags) == self.depth,
                name,
                f"needs one flag per block (depth {self.depth})",
                flags,
            )
        require(self.binarizer in BINARIZERS, "binarizer", f"one of {tuple(BINARIZERS)}")
        require(0.0 < self.sab_fraction <= 1.0, "sab_fraction", "must be in (0, 1]")
        require(self.mlp_activation_bits in (1, 32), "mlp_activation_bits", "must be 1 or 32")

    @property
    def num_patches(self) -> int:
        """``N = (H / p)^2``."""
        return (self.image_size // self.patch_size) ** 2

    @property
    def mlp_hidden(self) -> int:
        """Hidden width of the MLPs, ``round(mlp_ratio * e)``."""
        return max(1, round(self.mlp_ratio * self.embed_dim))

    def attention_flags(self) -> tuple[bool, ...]:
        """Per block, whether its attention is binary (``binary_attention`` or all True)."""
        return self.binary_attention or (True,) * self.depth

    def mlp_flags(self) -> tuple[bool, ...]:
        """Per block, whether its MLP is binary (``binary_mlp`` or all True)."""
        return self.binary_mlp or (True,) * self.depth


class _Block(nn.Module):
    def __init__(self, config: BiViTConfig, generator: torch.Generator | None) -> None:
        super().__init__()
        e = config.embed_dim
        self.norm1 = nn.LayerNorm(e)
        self.attn = BinaryAttention(
            e,
            config.num_heads,
            binarizer=config.binarizer,
            fraction=config.sab_fraction,
            scale=config.weight_scale,
            ste=config.ste,
            generator=generator,
        )
        self.norm2 = nn.LayerNorm(e)
        self.mlp = BinaryMLP(
            e,
            config.mlp_hidden,
            scale=config.weight_scale,
            activation_bits=config.mlp_activation_bits,
            ste=config.ste,
            generator=generator,
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def _set_mlp(mlp: BinaryMLP, binarized: bool) -> None:
    for layer in (mlp.fc1, mlp.fc2):
        layer.set_binarized(binarized)


@MODELS.register(
    "bivit",
    config=BiViTConfig,
    paper=PAPER,
    summary="Binary vision transformer: SAB attention, PWS scales, CLB schedule (BiViT)",
    modules=MODULES,
    docs=DOCS,
)
class BiViT(nn.Module):
    """Vision transformer ``(b, C, H, W) -> (b, K)`` with binary attention and MLPs.

    Args:
        config: The architecture.
        generator: Generator of the initial weights (``None``: torch's global generator).

    Attributes:
        input_shape: ``("batch", C, H, W)``.
    """

    config: BiViTConfig

    def __init__(self, config: BiViTConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        c, e, p = config.in_channels, config.embed_dim, config.patch_size
        self.input_shape = ("batch", c, config.image_size, config.image_size)
        self.patch_embed = nn.Conv2d(c, e, kernel_size=p, stride=p)
        bound = 1.0 / math.sqrt(c * p * p)
        with torch.no_grad():
            self.patch_embed.weight.uniform_(-bound, bound, generator=generator)
            self.patch_embed.bias.uniform_(-bound, bound, generator=generator)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, e))
        self.pos_embed = nn.Parameter(torch.empty(1, config.num_patches + 1, e))
        with torch.no_grad():
            self.pos_embed.normal_(0.0, 0.02, generator=generator)
            self.cls_token.normal_(0.0, 0.02, generator=generator)
        self.blocks = nn.ModuleList(_Block(config, generator) for _ in range(config.depth))
        self.norm = nn.LayerNorm(e)
        self.head = nn.Linear(e, config.num_classes)
        bound = 1.0 / math.sqrt(e)
        with torch.no_grad():
            self.head.weight.uniform_(-bound, bound, generator=generator)
            self.head.bias.zero_()
        self.set_binarized(attention=True, mlp=True)

    # ----------------------------------------------------------------- binarisation state
    def set_binarized(self, *, attention: bool | None = None, mlp: bool | None = None) -> None:
        """Switch the binary parts on (True) or to full precision (False); None leaves a part
        as it is. Parts the config keeps full precision stay full precision."""
        c = self.config
        for block, attn_binary, mlp_binary in zip(
            self.blocks, c.attention_flags(), c.mlp_flags(), strict=True
        ):
            if attention is not None:
                block.attn.set_binarized(attention and attn_binary)
            if mlp is not None:
                _set_mlp(block.mlp, mlp and mlp_binary)

    def binarized_parts(self) -> dict[str, list[bool]]:
        """``{"attention": [...], "mlp": [...]}``: per block, whether the part runs binary."""
        return {
            "attention": [b.attn.binarized for b in self.blocks],
            "mlp": [b.mlp.fc1.binarized for b in self.blocks],
        }

    def to_packed(self) -> nn.Module:
        """A bit-packed inference copy (`perceptrons.binary.to_packed`); this model is left
        as it is."""
        from perceptrons.binary import to_packed

        return to_packed(self)

    # ----------------------------------------------------------------- forward
    def _check(self, x: Any) -> Tensor:
        c = self.config
        return check_tensor(x, "x", ("batch", c.in_channels, c.image_size, c.image_size))

    def tokens(self, x: Tensor) -> Tensor:
        """``(b, C, H, W) -> (b, n, e)``: class token and patch tokens with positions."""
        x = self._check(x)
        patches = self.patch_embed(x).flatten(2).transpose(1, 2)  # (b, N, e)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        return torch.cat([cls, patches], dim=1) + self.pos_embed

    def forward(self, x: Tensor) -> Tensor:
        """``(b, C, H, W) -> (b, K)`` logits."""
        h = self.tokens(x)
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h)[:, 0])

    @torch.no_grad()
    def attention_maps(self, x: Tensor) -> list[tuple[Tensor, Tensor | None]]:
        """Per block, ``(P, B)`` of its attention on ``x`` (`BinaryAttention.attention_maps`:
        ``(b, h, n, n)`` probabilities, and the binary map when the block's attention is
        binary)."""
        h = self.tokens(x)
        maps = []
        for block in self.blocks:
            maps.append(block.attn.attention_maps(block.norm1(h)))
            h = block(h)
        return maps

    def example_input(self, batch_size: int, *, generator: torch.Generator | None = None) -> Tensor:
        """``(batch_size, C, H, W)`` standard-normal images."""
        c = self.config
        shape = (batch_size, c.in_channels, c.image_size, c.image_size)
        return torch.randn(shape, generator=generator, dtype=self.head.weight.dtype)

    def extra_repr(self) -> str:
        return f"input_shape={format_shape(self.input_shape)}"


def binary_linear_layers(model: nn.Module) -> list[tuple[str, BinaryLinear]]:
    """``(name, layer)`` of every `BinaryLinear` of ``model``."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, BinaryLinear)]


# --------------------------------------------------------------------- training
class BiViTStep:
    """Cross-entropy with optional distillation from a full-precision teacher (a `fit` Step).

    ``loss = CE(s, y) + kd_weight * T^2 * KL(softmax(t / T) || softmax(s / T))`` with student
    logits ``s``, teacher logits ``t`` (computed under ``no_grad``, teacher in eval mode) and
    temperature ``T`` (Hinton et al. 2015, arXiv:1503.02531). Without a teacher, or with
    ``kd_weight = 0``, the plain cross-entropy.

    Args:
        teacher: The full-precision model to distil from, or None.
        kd_weight: Weight of the distillation term (>= 0).
        temperature: ``T`` (> 0).

    Batches are ``(images (b, C, H, W), labels (b,) int64)``; logged metrics: ``ce``,
    ``kd`` (when a teacher is given) and ``accuracy``.
    """

    def __init__(
        self, teacher: nn.Module | None = None, *, kd_weight: float = 1.0, temperature: float = 1.0
    ) -> None:
        if not (math.isfinite(kd_weight) and kd_weight >= 0):
            raise ValueError(f"kd_weight: must be finite and >= 0, got {kd_weight}")
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature: must be finite and > 0, got {temperature}")
        self.teacher, self.kd_weight, self.temperature = teacher, kd_weight, temperature
        if teacher is not None:
            teacher.eval()
            for p in teacher.parameters():
                p.requires_grad_(False)

    def __call__(self, model: nn.Module, batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        images, labels = batch
        logits = model(images)
        ce = F.cross_entropy(logits, labels)
        out = {"ce": ce.detach(), "accuracy": (logits.argmax(-1) == labels).float().mean()}
        loss = ce
        if self.teacher is not None and self.kd_weight > 0:
            with torch.no_grad():
                target = self.teacher(images)
            t = self.temperature
            kd = F.kl_div(
                F.log_softmax(logits / t, -1),
                F.log_softmax(target / t, -1),
                log_target=True,
                reduction="batchmean",
            ) * (t * t)
            loss = ce + self.kd_weight * kd
            out["kd"] = kd.detach()
        out["loss"] = loss
        return out


@dataclass(frozen=True, kw_only=True)
class CLBStage(Config):
    """One stage of a binarisation schedule.

    Attributes:
        binarize: The parts that run binary in this stage (a subset of ``PARTS``:
            ``"attention"``, ``"mlp"``); the others run full precision.
        steps: Optimiser steps of the stage.
    """

    binarize: tuple[str, ...] = PARTS
    steps: int = 100

    def validate(self) -> None:
        for part in self.binarize:
            require(part in PARTS, "binarize", f"each must be one of {PARTS}", part)
        require(len(set(self.binarize)) == len(self.binarize), "binarize", "repeats a part")
        require(self.steps >= 1, "steps", "must be >= 1", self.steps)


def clb_stages(
    first_steps: int, second_steps: int, *, first: tuple[str, ...] = ("attention",)
) -> tuple[CLBStage, ...]:
    """Cross-layer binarisation: ``first`` (attention by default) binary for ``first_steps``
    steps with the rest full precision, then everything binary for ``second_steps``."""
    return (
        CLBStage(binarize=first, steps=first_steps),
        CLBStage(binarize=PARTS, steps=second_steps),
    )


def one_shot_stages(steps: int) -> tuple[CLBStage, ...]:
    """The baseline: every part binary from the first step, for ``steps`` steps."""
    return (CLBStage(binarize=PARTS, steps=steps),)


class BinarizationSchedule(Callback):
    """Run a list of `CLBStage` s in one `fit`: before each step, the model's binary parts
    are those of the stage the step falls in (`BiViT.set_binarized`).

    Give `fit` ``max_steps = total_steps``. The stage is derived from ``state.step``, so a
    resumed run continues in the right stage; after the last stage the model keeps its
    binary parts. Logged per stage change: nothing (the stage is a pure function of the
    step).

    Args:
        stages: The stages, in order.

    Attributes:
        total_steps: Sum of the stages' steps.
    """

    def __init__(self, stages: tuple[CLBStage, ...] | list[CLBStage]) -> None:
        if not stages:
            raise ValueError("stages: needs at least one stage")
        self.stages = tuple(stages)
        self.total_steps = sum(s.steps for s in self.stages)

    def stage_at(self, step: int) -> CLBStage:
        """The stage of the step that follows ``step`` completed steps (the last stage
        after the schedule)."""
        end = 0
        for stage in self.stages:
            end += stage.steps
            if step < end:
                return stage
        return self.stages[-1]

    def _apply(self, model: nn.Module, step: int) -> None:
        if not isinstance(model, BiViT):
            raise TypeError(
                f"BinarizationSchedule: needs a BiViT model, got {type(model).__name__}"
            )
        parts = self.stage_at(step).binarize
        model.set_binarized(attention="attention" in parts, mlp="mlp" in parts)

    def on_fit_start(self, state: Any) -> None:  # noqa: D102
        self._apply(state.model, state.step)

    def on_step_end(self, state: Any) -> None:  # noqa: D102
        self._apply(state.model, state.step)
