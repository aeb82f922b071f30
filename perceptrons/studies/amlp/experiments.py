"""Measurements of the ``amlp`` study: attention memory and time, and NAR accuracy on toy tasks.

* `measure_memory`: one self-attention layer per kind on a ``(b, N, e)`` input; the tensors it
  saves for backward (`perceptrons.layers.memory`: exact, not timed);
* `measure_time`: the same layers' forward+backward wall time on this CPU (interquartile mean
  of ``time_repeats`` runs after a warm-up);
* `nar_accuracy`: `NARTransformer` models (encoder softmax; decoder self- and cross-attention of
  each kind) trained with `CMLMStep` through `fit` on sort, the monotone toy translation and
  reverse (`perceptrons.data.sequences`), decoded by `mask_predict` with predicted lengths;
  token accuracy on held-out samples.

Crossover lengths (`crossover_length`) follow the "efficiency length" of the CAB benchmark
(Zhang et al., ICML 2023), by the AMLP paper's authors: a quadratic fitted to the naive
attention, a line to the linear method, and their last intersection.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from perceptrons.data.loader import TensorLoader
from perceptrons.data.sequences import Seq2SeqData, make_lexicon, make_sequence_task
from perceptrons.layers.attention import make_attention
from perceptrons.layers.memory import largest_saved_tensor_numel, saved_tensor_bytes
from perceptrons.models.amlp import CMLMStep, exact_match, mask_predict, token_accuracy
from perceptrons.registry import create_model
from perceptrons.studies.amlp.config import TASKS, AMLPStudyConfig
from perceptrons.studies.base import Table
from perceptrons.studies.common import generator
from perceptrons.train import fit

__all__ = [
    "AccuracyResult",
    "KindMemory",
    "MemoryResult",
    "NARRun",
    "TimeResult",
    "attention_layer",
    "crossover_length",
    "interpolated_crossover",
    "interquartile_mean",
    "layer_input",
    "measure_memory",
    "measure_time",
    "nar_accuracy",
    "task_data",
    "train_nar",
]


# -------------------------------------------------------------------- crossovers
def crossover_length(lengths, baseline, method) -> float:
    """Length above which ``method`` costs less than ``baseline`` (CAB's efficiency length).

    Fits ``baseline ~ a + b N + c N^2`` and ``method ~ a' + b' N`` by least squares and returns
    the largest positive root of their difference: beyond it the baseline is the more
    expensive. Returns 0.0 when the baseline is above the method for every ``N > 0`` and
    ``inf`` when it never overtakes it (``c <= 0`` and no crossing).

    Args:
        lengths: ``(k,)`` lengths, ``k >= 3``.
        baseline: ``(k,)`` costs of the quadratic method (naive attention).
        method: ``(k,)`` costs of the linear method.
    """
    n = np.asarray(lengths, dtype=np.float64)
    base = np.asarray(baseline, dtype=np.float64)
    diff = np.polyfit(n, base, 2)  # baseline - method, highest power first
    diff[1:] -= np.polyfit(n, np.asarray(method, dtype=np.float64), 1)
    scale = max(float(np.abs(base).max()), float(np.abs(np.asarray(method)).max()), 1e-300)
    top = float(n.max())
    # coefficients that change the fit by < 1e-9 of the data at the largest length are zero
    diff[np.abs(diff) * np.array([top**2, top, 1.0]) < 1e-9 * scale] = 0.0
    leading = next((c for c in diff if c != 0.0), 0.0)
    if leading <= 0:  # the baseline never ends up the more expensive
        return math.inf
    roots = np.roots(np.trim_zeros(diff, "f"))
    real = [r.real for r in roots if abs(r.imag) <= 1e-9 * max(1.0, abs(r)) and r.real > 0]
    return float(max(real)) if real else 0.0


def interpolated_crossover(lengths, baseline, method) -> float:
    """Length above which ``method < baseline``, by log-log interpolation of their ratio.

    Interpolates ``log(method / baseline)`` linearly in ``log N`` between the two measured
    lengths where it last changes sign. Returns 0.0 when the method is cheaper at every
    length and ``inf`` when it is not cheaper at the longest one. Less sensitive to noise at
    the longest lengths than `crossover_length` (the ``benchmarks/attention.py`` convention).
    """
    ratio = [math.log(m / b) for m, b in zip(method, baseline, strict=True)]
    if all(r < 0 for r in ratio):
        return 0.0
    if ratio[-1] >= 0:
        return math.inf
    i = max(j for j, r in enumerate(ratio) if r >= 0)
    x0, x1 = math.log(lengths[i]), math.log(lengths[i + 1])
    t = ratio[i] / (ratio[i] - ratio[i + 1])
    return math.exp(x0 + t * (x1 - x0))


# -------------------------------------------------------------------- efficiency
@dataclass(frozen=True)
class KindMemory:
    """What one attention kind saves for backward, per length.

    Attributes:
        lengths: Lengths N, increasing (``memory_lengths`` plus ``growth_length`` and twice it).
        saved_bytes: Bytes of every tensor saved for backward, per length.
        largest_saved: Elements of the largest saved tensor, per length.
    """

    lengths: list[int]
    saved_bytes: list[int]
    largest_saved: list[int]

    def at(self, length: int) -> tuple[int, int]:
        """``(saved bytes, largest saved tensor's elements)`` at ``length``."""
        i = self.lengths.index(length)
        return self.saved_bytes[i], self.largest_saved[i]


@dataclass(frozen=True)
class MemoryResult:
    """The saved-tensor measurement of every ``bench_kinds`` layer.

    Attributes:
        kinds: Attention kind -> its measurement.
        growth: Kind -> largest saved tensor at ``2 growth_length`` over that at
            ``growth_length`` (linear: 2, quadratic: 4).
        crossover: Kind (every one but "naive") -> `crossover_length` of its saved bytes
            against naive attention's over ``memory_lengths``.
        table: Rows ``kind, length, saved_bytes, largest_saved_numel``.
    """

    kinds: dict[str, KindMemory]
    growth: dict[str, float]
    crossover: dict[str, float]
    table: Table


@dataclass(frozen=True)
class TimeResult:
    """The forward+backward timing of every ``bench_kinds`` layer.

    Attributes:
        lengths: The ``time_lengths``.
        seconds: Kind -> interquartile mean seconds per length.
        crossover: Kind (every one but "naive") -> `crossover_length` against naive attention.
        interpolated_crossover: The same by `interpolated_crossover`.
        table: Rows ``kind, length, fwd_bwd_seconds``.
    """

    lengths: tuple[int, ...]
    seconds: dict[str, list[float]]
    crossover: dict[str, float]
    interpolated_crossover: dict[str, float]
    table: Table


def attention_layer(kind: str, config: AMLPStudyConfig, seed: int) -> torch.nn.Module:
    """The measured self-attention layer of ``kind`` (width ``bench_embed_dim``)."""
    return make_attention(
        kind,
        config.bench_embed_dim,
        config.bench_num_heads,
        num_landmarks=config.num_landmarks,
        generator=generator(seed),
    )


def layer_input(config: AMLPStudyConfig, length: int, seed: int) -> torch.Tensor:
    """A ``(bench_batch_size, length, bench_embed_dim)`` Gaussian input requiring grad."""
    shape = (config.bench_batch_size, length, config.bench_embed_dim)
    return torch.randn(shape, generator=generator(seed)).requires_grad_(True)


def measure_memory(config: AMLPStudyConfig) -> MemoryResult:
    """Saved bytes and largest saved tensor per kind and length, their growth and crossovers."""
    table = Table(["kind", "length", "saved_bytes", "largest_saved_numel"])
    kinds: dict[str, KindMemory] = {}
    lengths = sorted({*config.memory_lengths, config.growth_length, 2 * config.growth_length})
    for kind in config.bench_kinds:
        layer = attention_layer(kind, config, config.seed)
        saved, largest = [], []
        for length in lengths:
            x = layer_input(config, length, config.seed + 1)
            saved.append(saved_tensor_bytes(layer, x, x, x))
            largest.append(largest_saved_tensor_numel(layer, x, x, x))
            table.rows.append([kind, length, saved[-1], largest[-1]])
        kinds[kind] = KindMemory(list(lengths), saved, largest)
    n = config.growth_length
    growth = {k: m.at(2 * n)[1] / m.at(n)[1] for k, m in kinds.items()}
    naive = [kinds["naive"].at(m)[0] for m in config.memory_lengths]
    crossover = {
        kind: crossover_length(
            config.memory_lengths, naive, [kinds[kind].at(m)[0] for m in config.memory_lengths]
        )
        for kind in config.bench_kinds
        if kind != "naive"
    }
    return MemoryResult(kinds, growth, crossover, table)


def interquartile_mean(values: list[float]) -> float:
    """The mean of the middle half of ``values`` (the median for fewer than 4)."""
    v = sorted(values)
    if len(v) < 4:
        return float(np.median(v))
    q = len(v) // 4
    return float(np.mean(v[q : len(v) - q]))


def _fwd_bwd_seconds(layer: torch.nn.Module, params: list, x: torch.Tensor) -> float:
    """Seconds of one self-attention forward pass and its backward to ``x`` and ``params``."""
    start = time.perf_counter()
    y = layer(x, x, x)[0]
    torch.autograd.grad(y, [x, *params], torch.ones_like(y))
    return time.perf_counter() - start


def measure_time(config: AMLPStudyConfig) -> TimeResult:
    """Forward+backward seconds per kind and length (interquartile mean), and crossovers."""
    table = Table(["kind", "length", "fwd_bwd_seconds"])
    seconds: dict[str, list[float]] = {}
    for kind in config.bench_kinds:
        layer = attention_layer(kind, config, config.seed)
        params = [p for p in layer.parameters() if p.requires_grad]
        times = []
        for length in config.time_lengths:
            x = layer_input(config, length, config.seed + 1)
            _fwd_bwd_seconds(layer, params, x)  # warm-up
            runs = [_fwd_bwd_seconds(layer, params, x) for _ in range(config.time_repeats)]
            times.append(interquartile_mean(runs))
            table.rows.append([kind, length, times[-1]])
        seconds[kind] = times
    others = [kind for kind in config.bench_kinds if kind != "naive"]
    lengths, naive = config.time_lengths, seconds["naive"]
    return TimeResult(
        lengths=lengths,
        seconds=seconds,
        crossover={k: crossover_length(lengths, naive, seconds[k]) for k in others},
        interpolated_crossover={
            k: interpolated_crossover(lengths, naive, seconds[k]) for k in others
        },
        table=table,
    )


# -------------------------------------------------------------------- NAR accuracy
@dataclass(frozen=True)
class NARRun:
    """One NAR model trained and decoded on one task.

    Attributes:
        task: "sort", "translation" or "reverse".
        kind: Decoder attention kind.
        seed: Seed of the data, initialisation and training.
        accuracy: Token accuracy, ``decode_iterations`` mask-predict passes, predicted length.
        exact_match: Fraction of test sequences decoded exactly.
        accuracy_single_pass: Token accuracy of one decoding pass (no refinement).
        accuracy_gold_length: Token accuracy with the true target lengths given.
        final_loss: Training loss at the last step.
        fit_seconds: Wall time of `fit`.
    """

    task: str
    kind: str
    seed: int
    accuracy: float
    exact_match: float
    accuracy_single_pass: float
    accuracy_gold_length: float
    final_loss: float
    fit_seconds: float


@dataclass(frozen=True)
class AccuracyResult:
    """Every NAR run, and the token accuracy per task and kind over seeds.

    Attributes:
        runs: Every run, seed-major then task then kind.
        mean: ``(task, kind)`` -> mean token accuracy over seeds.
        std: ``(task, kind)`` -> its sample standard deviation (0 for one seed).
        table: One row per run (accuracies rounded to 4 digits, seconds to 2).
    """

    runs: list[NARRun]
    mean: dict[tuple[str, str], float]
    std: dict[tuple[str, str], float]
    table: Table


def task_data(task: str, config: AMLPStudyConfig, seed: int) -> tuple[Seq2SeqData, Seq2SeqData]:
    """``(train, test)`` samples of ``task`` (``num_train`` and ``num_test``) for ``seed``."""
    lengths = {
        "sort": config.sort_lengths,
        "translation": config.translation_lengths,
        "reverse": config.reverse_lengths,
    }[task]
    vocab = {"sort": config.sort_vocab, "reverse": config.reverse_vocab}.get(
        task, config.translation_vocab
    )
    lexicon = make_lexicon(
        config.translation_vocab,
        config.translation_vocab,
        fertility_prob=config.fertility_prob,
        generator=generator(seed),
    )
    data = make_sequence_task(
        task,
        config.num_train + config.num_test,
        min_length=lengths[0],
        max_length=lengths[1],
        vocab_size=vocab,
        generator=generator(seed + 1),
        lexicon=lexicon,
    )
    return data.split(config.num_train)


def train_nar(task: str, kind: str, config: AMLPStudyConfig, seed: int, out_dir: Path) -> NARRun:
    """Train a ``nar_transformer`` with decoder attention ``kind`` on ``task``, then decode
    the test samples three ways (refined, single pass, gold length)."""
    train, test = task_data(task, config, seed)
    model = create_model(
        "nar_transformer",
        seed=seed,
        num_tokens=train.num_tokens,
        max_length=train.max_target_length,
        embed_dim=config.model_dim,
        num_heads=config.model_heads,
        num_encoder_layers=config.num_layers,
        num_decoder_layers=config.num_layers,
        ffn_features=config.ffn_features,
        decoder_attention=kind,
        num_landmarks=config.reverse_landmarks if task == "reverse" else config.num_landmarks,
    )
    loader = TensorLoader((train.source, train.target), config.batch_size, seed=seed)
    start = time.perf_counter()
    fitted = fit(model, CMLMStep(), loader, config.fit.replace(seed=seed), out_dir=out_dir)
    seconds = time.perf_counter() - start
    model.eval()
    tokens, _ = mask_predict(model, test.source, iterations=config.decode_iterations)
    single, _ = mask_predict(model, test.source, iterations=0)
    gold, _ = mask_predict(
        model, test.source, iterations=config.decode_iterations, lengths=test.target_lengths
    )
    return NARRun(
        task=task,
        kind=kind,
        seed=seed,
        accuracy=token_accuracy(tokens, test.target),
        exact_match=exact_match(tokens, test.target),
        accuracy_single_pass=token_accuracy(single, test.target),
        accuracy_gold_length=token_accuracy(gold, test.target),
        final_loss=float(fitted.final["loss"]),
        fit_seconds=seconds,
    )


def nar_accuracy(config: AMLPStudyConfig, out_dir: Path) -> AccuracyResult:
    """`train_nar` for every seed (``seed + 1000 i``), task and ``nar_kinds`` kind; training
    logs go to ``out_dir / "<task>_<kind>_<seed>"``."""
    metrics = ["accuracy", "exact_match", "accuracy_single_pass", "accuracy_gold_length"]
    table = Table(["task", "kind", "seed", *metrics, "final_loss", "fit_seconds"])
    runs: list[NARRun] = []
    scores: dict[tuple[str, str], list[float]] = {}
    for i in range(config.num_seeds):
        seed = config.seed + 1000 * i
        for task in TASKS:
            for kind in config.nar_kinds:
                run = train_nar(task, kind, config, seed, out_dir / f"{task}_{kind}_{seed}")
                runs.append(run)
                scores.setdefault((task, kind), []).append(run.accuracy)
                table.rows.append(
                    [task, kind, seed]
                    + [round(getattr(run, c), 4) for c in [*metrics, "final_loss"]]
                    + [round(run.fit_seconds, 2)]
                )
    return AccuracyResult(
        runs=runs,
        mean={key: float(np.mean(v)) for key, v in scores.items()},
        std={key: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for key, v in scores.items()},
        table=table,
    )
