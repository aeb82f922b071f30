"""Measurements of the ``bivit`` study: a full-precision ViT teacher and its binary students.

Protocol (per data set and repetition ``i``, seed ``s = seed + i``; see `BiViTStudyConfig`):

1. Data: digits (scikit-learn's bundled 8x8 digits, a stratified 80/20 split seeded by ``s``,
   pixels mapped from [0, 16] to [-1, 1]) or shapes (`perceptrons.data.shapes.make_shapes`,
   train and test drawn with seeds ``2 s`` and ``2 s + 1``). The training images get
   ``augment_copies`` copies shifted by up to one pixel (background padding), drawn once.
2. The teacher: ``bivit`` with every block full precision, trained from scratch with the
   plain cross-entropy (`BiViTStep` without teacher) for ``teacher_steps`` steps.
3. Each variant (`VARIANTS`): ``bivit`` with its configuration change, initialised from the
   teacher's weights (learned scales start at mean|W| on the first binary forward), trained
   with distillation from the teacher through `fit` and a `BinarizationSchedule` (CLB stages,
   or one stage for ``one_shot``), the same number of steps for all.
4. Test accuracy of every model; the attention maps of the *teacher* on the test images
   binarised by SAB and by the 0.5 threshold (fraction of empty query rows, "real attention
   maps"); the ``sab`` student packed to bits (`perceptrons.binary.to_packed`): its test
   predictions against the float binary model's, and its size report.

Every run trains through `perceptrons.train.fit` (AdamW, cosine decay, no warm-up).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from perceptrons.data.digits import load_digits_split
from perceptrons.data.loader import TensorLoader
from perceptrons.data.shapes import make_shapes
from perceptrons.layers.binary import empty_row_fraction, softmax_aware_binarize, threshold_binarize
from perceptrons.models.bivit import (
    BinarizationSchedule,
    BiViT,
    BiViTConfig,
    BiViTStep,
    CLBStage,
    clb_stages,
    one_shot_stages,
)
from perceptrons.studies.base import Table
from perceptrons.studies.bivit.config import BiViTStudyConfig
from perceptrons.studies.common import format_mean_std, generator, predict
from perceptrons.train import Callback, FitConfig, OptimizerConfig, ScheduleConfig, fit

__all__ = [
    "CHANGES",
    "DataSplit",
    "DatasetRuns",
    "PackedCheck",
    "SeedRun",
    "VariantRun",
    "accuracy_table",
    "load_data",
    "packed_dict",
    "run_all",
    "run_dataset",
    "run_seed",
    "shift_augment",
    "student_from",
]

CHANGES: dict[str, dict[str, Any]] = {
    "sab": {},
    "threshold": {"binarizer": "threshold"},
    "presoftmax": {"binarizer": "presoftmax"},
    "mean_scale": {"weight_scale": "mean"},
    "one_shot": {},
    "mlp_a32": {"mlp_activation_bits": 32},
}
"""Variant -> its `BiViTConfig` changes (``one_shot`` changes the schedule instead)."""


@dataclass(frozen=True)
class DataSplit:
    """Images ``(n, 1, H, H)`` in about [-1, 1] and labels ``(n,)`` of one repetition."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    image_size: int
    patch_size: int
    num_classes: int


@dataclass(frozen=True)
class PackedCheck:
    """The ``sab`` student packed to bits, against the float binary model on the test set.

    Attributes:
        mismatches: Test images whose predicted class differs.
        max_relative_error: Max over test images of |logits_packed - logits_float|_inf /
            |logits_float|_inf.
        binary_weight_bytes: Bytes of the packed weights of the binary layers.
        binary_weight_fp32_bytes: The same weights as FP32.
        total_bytes: Every tensor of the packed model as stored.
        fp32_total_bytes: Every tensor of the float model as FP32.
    """

    mismatches: int
    max_relative_error: float
    binary_weight_bytes: int
    binary_weight_fp32_bytes: int
    total_bytes: int
    fp32_total_bytes: int


@dataclass(frozen=True)
class VariantRun:
    """One trained model.

    Attributes:
        name: ``"fp"`` or a variant of `VARIANTS`.
        accuracy: Test accuracy.
        seconds: Wall time of its `fit`.
        empty_rows: Fraction of empty query rows of its own binary attention maps on the
            test images (mean over blocks); None for the full-precision teacher.
    """

    name: str
    accuracy: float
    seconds: float
    empty_rows: float | None


@dataclass(frozen=True)
class SeedRun:
    """Everything measured on one repetition of one data set.

    Attributes:
        runs: ``"fp"`` and each variant -> its run.
        teacher_empty_rows: Binariser (``"sab"``, ``"threshold"``) -> fraction of empty
            query rows of the teacher's attention maps on the test images, binarised by it.
        packed: The packed ``sab`` student's check.
        example_maps: Block 0, head 0 attention of the first test image: ``"fp"`` (the
            teacher's probabilities) and the binary maps of the ``sab`` and ``threshold``
            students, as nested lists ``(n, n)``.
    """

    runs: dict[str, VariantRun]
    teacher_empty_rows: dict[str, float]
    packed: PackedCheck
    example_maps: dict[str, list[list[float]]]


@dataclass(frozen=True)
class DatasetRuns:
    """The repetitions of one data set (`SeedRun` s, in order)."""

    dataset: str
    seeds: list[SeedRun]

    def accuracies(self, name: str) -> list[float]:
        """Test accuracy of ``name`` per repetition."""
        return [s.runs[name].accuracy for s in self.seeds]

    def mean_accuracy(self, name: str) -> float:
        """Mean test accuracy of ``name`` over the repetitions."""
        return float(np.mean(self.accuracies(name)))


# --------------------------------------------------------------------- data
def shift_augment(x: torch.Tensor, copies: int, gen: torch.Generator) -> torch.Tensor:
    """``copies`` copies of ``x`` ``(n, C, H, W)``, each image shifted by (dy, dx) in {-1, 0,
    1}^2 drawn per image, the uncovered border filled with -1 (the background): ``(copies *
    n, C, H, W)``."""
    n, _, h, w = x.shape
    padded = F.pad(x, (1, 1, 1, 1), value=-1.0)
    out = []
    for _ in range(copies):
        offsets = torch.randint(0, 3, (n, 2), generator=gen)
        shifted = torch.empty_like(x)
        for oy in range(3):  # 9 offset pairs, each a vectorised slice of its images
            for ox in range(3):
                rows = ((offsets[:, 0] == oy) & (offsets[:, 1] == ox)).nonzero().flatten()
                shifted[rows] = padded[rows, :, oy : oy + h, ox : ox + w]
        out.append(shifted)
    return torch.cat(out) if out else x[:0]


def load_data(config: BiViTStudyConfig, dataset: str, seed: int) -> DataSplit:
    """The training (with shifted copies) and test images of ``dataset`` for ``seed``."""
    if dataset == "digits":
        split = load_digits_split(test_fraction=0.2, val_fraction=0.0, seed=seed, standardize=False)
        x_train = split.x_train.reshape(-1, 1, 8, 8) / 8.0 - 1.0
        x_test = split.x_test.reshape(-1, 1, 8, 8) / 8.0 - 1.0
        y_train, y_test = split.y_train, split.y_test
        size, patch, classes = 8, config.digits_patch, 10
    else:
        noise = config.shapes_noise
        x_train, y_train = make_shapes(config.shapes_train, noise=noise, seed=2 * seed)
        x_test, y_test = make_shapes(config.shapes_test, noise=noise, seed=2 * seed + 1)
        size, patch, classes = 16, config.shapes_patch, 5
    extra = shift_augment(x_train, config.augment_copies, generator(seed, 1))
    x_train = torch.cat([x_train, extra])
    y_train = torch.cat([y_train, y_train.repeat(config.augment_copies)])
    return DataSplit(x_train, y_train, x_test, y_test, size, patch, classes)


# --------------------------------------------------------------------- models
def model_config(config: BiViTStudyConfig, data: DataSplit, **changes: Any) -> BiViTConfig:
    """The study's `BiViTConfig` for ``data`` (``changes`` override fields)."""
    return BiViTConfig(
        image_size=data.image_size,
        in_channels=1,
        patch_size=data.patch_size,
        num_classes=data.num_classes,
        embed_dim=config.embed_dim,
        depth=config.depth,
        num_heads=config.num_heads,
        mlp_ratio=config.mlp_ratio,
        **changes,
    )


def student_from(teacher: BiViT, config: BiViTConfig, seed: int = 0) -> BiViT:
    """A `BiViT` of ``config`` holding the teacher's weights (the learned-scale parameters,
    present in only one of them, are left out: they start at mean|W| on the first binary
    forward)."""
    student = BiViT(config, generator=generator(seed, 3))  # every draw is overwritten
    result = student.load_state_dict(teacher.state_dict(), strict=False)
    scale_keys = ("weight_scale", "scale_initialized")
    odd = [k for k in [*result.missing_keys, *result.unexpected_keys] if not k.endswith(scale_keys)]
    if odd:
        raise ValueError(f"student_from: teacher and student differ beyond the scales: {odd}")
    return student


def _fit(
    model: nn.Module,
    step: BiViTStep,
    data: DataSplit,
    config: BiViTStudyConfig,
    steps: int,
    seed: int,
    callbacks: list[Callback],
    weight_decay: float,
) -> float:
    loader = TensorLoader((data.x_train, data.y_train), config.batch_size, seed=seed)
    fit_config = FitConfig(
        max_steps=steps,
        optimizer=OptimizerConfig(name="adamw", lr=config.lr, weight_decay=weight_decay),
        schedule=ScheduleConfig(name="cosine"),
        log_every=max(1, steps // 4),
        progress=False,
        seed=seed,
    )
    start = time.perf_counter()
    fit(model, step, loader, fit_config, callbacks)
    return time.perf_counter() - start


def _accuracy(model: nn.Module, data: DataSplit) -> float:
    model.eval()
    logits = predict(model, data.x_test, batch_size=1024)
    return float((logits.argmax(-1) == data.y_test).float().mean())


def _own_empty_rows(model: BiViT, x: torch.Tensor) -> float | None:
    maps = [b for _, b in model.attention_maps(x) if b is not None]
    return float(np.mean([empty_row_fraction(b) for b in maps])) if maps else None


def _teacher_empty_rows(teacher: BiViT, x: torch.Tensor) -> dict[str, float]:
    probs = [p for p, _ in teacher.attention_maps(x)]
    return {
        "sab": float(np.mean([empty_row_fraction(softmax_aware_binarize(p)) for p in probs])),
        "threshold": float(np.mean([empty_row_fraction(threshold_binarize(p)) for p in probs])),
    }


def _packed_check(student: BiViT, data: DataSplit) -> PackedCheck:
    from perceptrons.binary import model_size_report, to_packed

    student.eval()
    packed = to_packed(student)
    packed.eval()
    reference = predict(student, data.x_test, batch_size=1024)
    logits = predict(packed, data.x_test, batch_size=1024)
    scale = reference.abs().amax(-1).clamp_min(1e-12)
    report = model_size_report(packed)
    return PackedCheck(
        mismatches=int((logits.argmax(-1) != reference.argmax(-1)).sum()),
        max_relative_error=float(((logits - reference).abs().amax(-1) / scale).max()),
        binary_weight_bytes=int(report.binary_weight_bytes),
        binary_weight_fp32_bytes=int(report.binary_weight_fp32_bytes),
        total_bytes=int(report.bytes),
        fp32_total_bytes=int(report.fp32_bytes),
    )


def _stages(config: BiViTStudyConfig, name: str) -> tuple[CLBStage, ...]:
    if name == "one_shot":
        return one_shot_stages(config.stage1_steps + config.stage2_steps)
    return clb_stages(config.stage1_steps, config.stage2_steps)


def run_seed(config: BiViTStudyConfig, dataset: str, i: int) -> SeedRun:
    """Teacher and every variant on repetition ``i`` of ``dataset``."""
    seed = config.seed + i
    data = load_data(config, dataset, seed)
    teacher = BiViT(model_config(config, data), generator=generator(seed, 2))
    teacher.set_binarized(attention=False, mlp=False)
    seconds = _fit(
        teacher, BiViTStep(), data, config, config.teacher_steps, seed, [], config.weight_decay
    )
    runs = {"fp": VariantRun("fp", _accuracy(teacher, data), seconds, None)}
    teacher.eval()
    students: dict[str, BiViT] = {}
    for name in config.variants:
        student = student_from(teacher, model_config(config, data, **CHANGES[name]), seed)
        step = BiViTStep(teacher, kd_weight=config.kd_weight, temperature=config.temperature)
        schedule = BinarizationSchedule(_stages(config, name))
        seconds = _fit(
            student,
            step,
            data,
            config,
            schedule.total_steps,
            seed,
            [schedule],
            config.student_weight_decay,
        )
        accuracy = _accuracy(student, data)
        runs[name] = VariantRun(name, accuracy, seconds, _own_empty_rows(student, data.x_test))
        students[name] = student
    first = data.x_test[:1]
    example = {"fp": teacher.attention_maps(first)[0][0][0, 0].tolist()}
    for name in ("sab", "threshold"):
        if name in students:
            example[name] = students[name].attention_maps(first)[0][1][0, 0].tolist()
    return SeedRun(
        runs=runs,
        teacher_empty_rows=_teacher_empty_rows(teacher, data.x_test),
        packed=_packed_check(students["sab"], data),
        example_maps=example,
    )


def run_dataset(config: BiViTStudyConfig, dataset: str) -> DatasetRuns:
    """`run_seed` for every repetition of ``dataset``, in this process."""
    return DatasetRuns(dataset, [run_seed(config, dataset, i) for i in range(config.num_seeds)])


def _worker_init(num_threads: int) -> None:
    torch.set_num_threads(num_threads)


def run_all(config: BiViTStudyConfig) -> list[DatasetRuns]:
    """Every data set and repetition: one `run_seed` job each, in ``config.workers`` spawned
    processes (each with ``config.num_threads`` torch threads) when that is above 1; every job
    is seeded, so the result does not depend on ``workers``."""
    jobs = [(name, i) for name in config.datasets for i in range(config.num_seeds)]
    if config.workers == 1:
        done = [run_seed(config, name, i) for name, i in jobs]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            config.workers,
            mp_context=context,
            initializer=_worker_init,
            initargs=(config.num_threads,),
        ) as pool:
            futures = [pool.submit(run_seed, config, name, i) for name, i in jobs]
            done = [f.result() for f in futures]
    by_name: dict[str, list[SeedRun]] = {name: [] for name in config.datasets}
    for (name, _), seed_run in zip(jobs, done, strict=True):
        by_name[name].append(seed_run)
    return [DatasetRuns(name, by_name[name]) for name in config.datasets]


def accuracy_table(config: BiViTStudyConfig, results: list[DatasetRuns]) -> Table:
    """Test accuracy (mean ± std over seeds), fit seconds and empty attention rows per model
    and data set."""
    table = Table(["dataset", "model", "accuracy", "fit seconds", "empty attention rows"])
    for runs in results:
        for name in ("fp", *config.variants):
            rs = [s.runs[name] for s in runs.seeds]
            empty = [r.empty_rows for r in rs if r.empty_rows is not None]
            table.rows.append(
                [
                    runs.dataset,
                    name,
                    format_mean_std([r.accuracy for r in rs]),
                    round(float(np.mean([r.seconds for r in rs])), 1),
                    format_mean_std(empty, 3) if empty else "",
                ]
            )
    return table


def packed_dict(check: PackedCheck) -> dict[str, Any]:
    """``check`` as a plain dict (result metrics)."""
    return dataclasses.asdict(check)
