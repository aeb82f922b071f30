"""Configuration, presets and registration of the ``bivit`` study.

He et al. 2023, arXiv:2211.07091. The paper body was not available: the small-scale protocol,
the cross-layer binarisation schedule and the claims' thresholds are ours, fixed before
measuring (docs/bivit.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from perceptrons.config import require
from perceptrons.studies.base import StudyConfig, register_study

__all__ = ["DATASETS", "FULL", "PAPER", "QUICK", "VARIANTS", "BiViTStudyConfig"]

PAPER = (
    "He, Lou, Zhang, Liu, Wu, Zhou & Zhuang 2023, BiViT: Extremely Compressed Binary Vision "
    "Transformers, ICCV 2023, arXiv:2211.07091 (training protocol reconstructed)"
)
DATASETS = ("digits", "shapes")
VARIANTS = ("sab", "threshold", "presoftmax", "mean_scale", "one_shot", "mlp_a32")
"""Binary students; each changes one thing of ``"sab"`` (SAB attention, learned scales, the
CLB schedule, W1A1 attention and MLPs):

* ``threshold`` / ``presoftmax``: the attention map binarised by 1[p >= 0.5] / BiBERT's
  1[s > 0] instead of SAB;
* ``mean_scale``: detached mean|W| weight scales instead of learned ones (PWS);
* ``one_shot``: every part binary from the first step (same total steps) instead of CLB;
* ``mlp_a32``: MLPs with binary weights and real activations (W1A32).
"""


@dataclass(frozen=True, kw_only=True)
class BiViTStudyConfig(StudyConfig):
    """A full-precision ViT, then binary students distilled from it, on small image tasks.

    Per data set and seed: the full-precision teacher (``"fp"``, every block full precision)
    trains ``teacher_steps`` steps from scratch; every variant starts from the teacher's weights
    and trains ``stage1_steps + stage2_steps`` steps with distillation from it (CLB: attention
    binary and MLPs full precision for ``stage1_steps``, then everything binary). All runs use
    AdamW with ``lr`` and ``weight_decay``, cosine decay, batch ``batch_size``, the same
    augmentation (random shifts of up to one pixel, drawn once: ``augment_copies`` shifted
    copies of the training images).

    Attributes:
        datasets: ``"digits"`` (scikit-learn's 8x8 digits, 1437 train / 360 test) and/or
            ``"shapes"`` (`perceptrons.data.shapes.make_shapes`, 16x16). Claims must hold on
            every data set.
        num_seeds: Repetitions (seed ``seed + i``: split, initialisation, batches).
        digits_patch: Patch side on digits (2: 16 patches).
        shapes_patch: Patch side on shapes (4: 16 patches).
        shapes_train: Generated training images.
        shapes_test: Generated test images.
        shapes_noise: Pixel noise std of the shapes.
        embed_dim: Token width (a multiple of 64 keeps every packed weight row free of
            padding bits; see claim weights_32x_smaller).
        depth: Transformer blocks.
        num_heads: Attention heads.
        mlp_ratio: MLP width over ``embed_dim``.
        batch_size: Mini-batch size.
        lr: AdamW learning rate (cosine decay to 0, no warm-up).
        weight_decay: AdamW decoupled weight decay of the teacher.
        student_weight_decay: The same for the binary students (0: decay pulls the latent
            weights towards 0, where their signs flip at every step; binary networks are
            usually trained with none or very little).
        teacher_steps: Optimiser steps of the full-precision teacher.
        stage1_steps: CLB stage 1 (attention binary, MLPs full precision).
        stage2_steps: CLB stage 2 (everything binary).
        kd_weight: Weight of the distillation term of `BiViTStep`.
        temperature: Distillation temperature.
        augment_copies: Shifted copies of the training images added to them.
        variants: Binary students (`VARIANTS`; must include ``"sab"``, and ``"threshold"``,
            ``"mean_scale"``, ``"one_shot"`` for their claims; the quick preset leaves out
            ``"presoftmax"`` and ``"mlp_a32"``).
        pws_tolerance: Claim pws_not_worse: acc(PWS) - acc(mean scales) >= -this.
        clb_tolerance: Claim clb_not_worse_than_one_shot: acc(CLB) - acc(one-shot) >= -this.
        fp_gap: Claim binary_within_8_points: acc(FP) - acc(binary) <= this.
        size_ratio: Claim weights_32x_smaller: FP32 bytes / packed bytes of the binary weights
            >= this.
        num_threads: torch intra-op threads while the study runs (restored afterwards); 1 is
            as fast for these small models and does not fight other jobs for the cores.
        workers: Processes that run the (data set, repetition) jobs in parallel (1: all in
            this process); each uses ``num_threads`` threads. The full preset is about 2.5
            CPU-hours, so ``--set workers=2`` halves its wall time on two cores.
    """

    datasets: tuple[str, ...] = ("digits",)
    num_seeds: int = 1
    digits_patch: int = 2
    shapes_patch: int = 4
    shapes_train: int = 4000
    shapes_test: int = 1000
    shapes_noise: float = 0.3
    embed_dim: int = 64
    depth: int = 2
    num_heads: int = 4
    mlp_ratio: float = 2.0
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    student_weight_decay: float = 0.0
    teacher_steps: int = 300
    stage1_steps: int = 100
    stage2_steps: int = 100
    kd_weight: float = 1.0
    temperature: float = 2.0
    augment_copies: int = 2
    variants: tuple[str, ...] = ("sab", "threshold", "mean_scale", "one_shot")
    pws_tolerance: float = 0.01
    clb_tolerance: float = 0.01
    fp_gap: float = 0.08
    size_ratio: float = 31.0
    num_threads: int = 1
    workers: int = 1

    def validate(self) -> None:
        super().validate()
        require(len(self.datasets) >= 1, "datasets", "needs >= 1 data set", self.datasets)
        for name in self.datasets:
            require(name in DATASETS, "datasets", f"each must be one of {DATASETS}", name)
        for name in self.variants:
            require(name in VARIANTS, "variants", f"each must be one of {VARIANTS}", name)
        require("sab" in self.variants, "variants", "must include 'sab'", self.variants)
        for name in (
            "num_seeds",
            "digits_patch",
            "shapes_patch",
            "shapes_train",
            "shapes_test",
            "embed_dim",
            "depth",
            "num_heads",
            "batch_size",
            "teacher_steps",
            "stage1_steps",
            "stage2_steps",
            "workers",
        ):
            require(getattr(self, name) >= 1, name, "must be >= 1", getattr(self, name))
        require(8 % self.digits_patch == 0, "digits_patch", "must divide 8", self.digits_patch)
        require(16 % self.shapes_patch == 0, "shapes_patch", "must divide 16", self.shapes_patch)
        require(self.embed_dim % self.num_heads == 0, "num_heads", "must divide embed_dim")
        require(self.augment_copies >= 0, "augment_copies", "must be >= 0")
        for name in ("lr", "temperature", "mlp_ratio"):
            value = getattr(self, name)
            require(math.isfinite(value) and value > 0, name, "must be finite and > 0", value)
        for name in (
            "weight_decay",
            "student_weight_decay",
            "kd_weight",
            "shapes_noise",
            "pws_tolerance",
            "clb_tolerance",
        ):
            value = getattr(self, name)
            require(math.isfinite(value) and value >= 0, name, "must be finite and >= 0", value)


QUICK = BiViTStudyConfig()
FULL = BiViTStudyConfig(
    datasets=DATASETS,
    num_seeds=3,
    embed_dim=64,
    depth=4,
    num_heads=4,
    teacher_steps=3000,
    stage1_steps=1000,
    stage2_steps=1000,
    augment_copies=4,
    variants=VARIANTS,
    shapes_train=8000,
    shapes_test=2000,
)

register_study(
    "bivit",
    config=BiViTStudyConfig,
    presets={"quick": QUICK, "full": FULL},
    paper=PAPER,
    summary="Binary ViT (SAB, PWS, CLB) distilled from its FP teacher; real bit-packed inference",
    run="perceptrons.studies.bivit.run:run",
    modules=("perceptrons.layers.binary", "perceptrons.models.bivit", "perceptrons.binary"),
    docs="docs/bivit.md",
)
