"""Configuration, presets and registration of the ``amlp`` study (Jiang et al. 2023).

Jiang, Zhang, Feng, Zheng & Kong, ECML-PKDD 2023, arXiv:2310.09512. The paper's accuracy tables
are not available; its efficiency figure (Fig. 4: time and memory against length, whole NAR
model, GPU) and the official code (Shark-NLP/AttentiveMLP) are. The efficiency protocol follows
the CAB benchmark of the same authors (Zhang et al., CAB, ICML 2023); the toy tasks and
every threshold are ours, fixed before measuring (docs/amlp.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from perceptrons.config import require
from perceptrons.layers.attention import ATTENTION_KINDS
from perceptrons.studies.base import StudyConfig, register_study
from perceptrons.train import FitConfig, OptimizerConfig, ScheduleConfig

__all__ = ["FULL", "PAPER", "QUICK", "TASKS", "AMLPStudyConfig"]

PAPER = (
    "Jiang, Zhang, Feng, Zheng & Kong 2023, Attentive Multi-Layer Perceptron for "
    "Non-autoregressive Generation, ECML-PKDD, arXiv:2310.09512"
)
TASKS = ("sort", "translation", "reverse")
"""The toy seq2seq tasks of the accuracy experiment (`perceptrons.data.sequences`)."""


@dataclass(frozen=True, kw_only=True)
class AMLPStudyConfig(StudyConfig):
    """AMLP attention: linear memory and time against softmax, and NAR accuracy on toy tasks.

    Efficiency is measured on one self-attention layer of each kind (``(b, N, e)`` input):
    what it saves for backward (`perceptrons.layers.memory`, exact) and its forward+backward
    wall time on this CPU (interquartile mean). The full protocol (e = 512, 8 heads, batch 4,
    lengths 256..8192, forward and forward+backward, as in the CAB benchmark) is
    ``benchmarks/attention.py`` (docs/benchmarks.md); the study runs a smaller, quicker version
    of it. Thresholds are ours, fixed before measuring (docs/amlp.md).

    Attributes:
        bench_kinds: Attention kinds of the efficiency measurement (and its figure).
        bench_embed_dim: Width e of the measured layer (CAB protocol: 512).
        bench_num_heads: Heads of the measured layer (CAB protocol: 8).
        bench_batch_size: Batch of the measured layer (CAB protocol: 4).
        num_landmarks: AMLP hidden width c of the measured layer and of the NAR models
            (paper: 16, the official code's ``--landmarks``).
        memory_lengths: Lengths N of the saved-tensor measurement (memory_crossover fit).
        growth_length: Claim no_quadratic_tensor compares the largest saved tensor at this
            length N and at 2N.
        time_lengths: Lengths N of the timing (time_crossover_vs_naive fit).
        time_repeats: Timed forward+backward passes per kind and length (after one warm-up).
        nar_kinds: Decoder attention kinds of the trained NAR models; must contain "softmax"
            and amlp_kind.
        amlp_kind: The AMLP variant the accuracy claims use ("amlp-pquery": the paper's MT
            setting, in the official code's training command).
        num_seeds: Independent repetitions (data, initialisation, training); claims use means.
        model_dim: Width of the NAR models.
        model_heads: Attention heads of the NAR models.
        num_layers: Encoder layers and decoder layers (each) of the NAR models.
        ffn_features: Feed-forward hidden width of the NAR models.
        sort_lengths: (min, max) sequence length of the sort task.
        sort_vocab: Symbols of the sort task.
        translation_lengths: (min, max) source length of the toy translation.
        translation_vocab: Source and target symbols of the toy translation lexicon.
        fertility_prob: Probability that a source word translates to two target words.
        reverse_lengths: (min, max) length of the reverse task (rank bottleneck: >> c).
        reverse_vocab: Symbols of the reverse task.
        reverse_landmarks: AMLP hidden width c of the reverse models (length >> c).
        num_train: Training samples per task (drawn once per seed).
        num_test: Held-out samples per task.
        batch_size: Mini-batch size of the NAR training.
        fit: Training loop settings of every NAR model (`CMLMStep`, length loss weight 0.1).
        decode_iterations: Mask-predict refinement passes at evaluation (paper: 10, the
            official code's test decoding), with predicted lengths.
        growth_max: Claim no_quadratic_tensor: largest AMLP growth factor N -> 2N (ours: 2.2,
            linear memory doubles).
        naive_growth_min: Claim no_quadratic_tensor: the naive attention's growth factor must
            be at least this (ours: 3.5; quadratic memory grows ~4x) for the comparison to
            count.
        memory_crossover_max: Claim memory_crossover: maximum crossover length (ours: 256;
            paper Fig. 4: AMLP's memory is below vanilla attention's from 512 tokens on).
        time_crossover_max: Claim time_crossover_vs_naive: maximum crossover length (ours:
            4096; paper Fig. 4, GPU, whole NAR model: about 1.6k).
        accuracy_min: Claims sort_accuracy and translation_accuracy: minimum AMLP token
            accuracy (ours: 0.95).
        accuracy_gap_max: Claims sort_accuracy and translation_accuracy: maximum points behind
            NAR-softmax (ours: 0.03).
        rank_gap_min: Claim rank_bottleneck_documented: minimum softmax - AMLP token accuracy
            on reverse for "measurably worse" (ours: 0.05).
        num_threads: torch intra-op threads while the study runs (restored afterwards); 1
            keeps the timings reproducible on a shared machine and is as fast for these tiny
            models.
    """

    bench_kinds: tuple[str, ...] = ATTENTION_KINDS
    bench_embed_dim: int = 128
    bench_num_heads: int = 2  # head dim 64, as CAB's 512 / 8
    bench_batch_size: int = 1
    num_landmarks: int = 16  # paper: c = 16
    memory_lengths: tuple[int, ...] = (32, 64, 128, 256, 512)
    growth_length: int = 256
    time_lengths: tuple[int, ...] = (128, 256, 512, 1024)
    time_repeats: int = 3
    nar_kinds: tuple[str, ...] = ("softmax", "amlp-pquery")
    amlp_kind: str = "amlp-pquery"
    num_seeds: int = 1
    model_dim: int = 64
    model_heads: int = 4
    num_layers: int = 1  # quick: 1 + 1 layers to stay under 60 s (full: 2 + 2)
    ffn_features: int = 128
    sort_lengths: tuple[int, int] = (4, 8)
    sort_vocab: int = 6
    translation_lengths: tuple[int, int] = (3, 6)
    translation_vocab: int = 6
    fertility_prob: float = 0.25
    reverse_lengths: tuple[int, int] = (8, 12)
    reverse_vocab: int = 8
    reverse_landmarks: int = 2  # n / c >= 4
    num_train: int = 20000
    num_test: int = 500
    batch_size: int = 32
    fit: FitConfig = FitConfig(
        max_steps=300,
        optimizer=OptimizerConfig(name="adamw", lr=3e-3),
        schedule=ScheduleConfig(name="cosine", warmup_steps=30),
        log_every=25,
        progress=False,
    )
    decode_iterations: int = 10  # paper (official code): 10 mask-predict iterations at test
    growth_max: float = 2.2  # thresholds: ours, fixed before measuring
    naive_growth_min: float = 3.5
    memory_crossover_max: float = 256.0
    time_crossover_max: float = 4096.0
    accuracy_min: float = 0.95
    accuracy_gap_max: float = 0.03
    rank_gap_min: float = 0.05
    num_threads: int = 1

    def validate(self) -> None:
        super().validate()
        for name in ("bench_kinds", "nar_kinds"):
            kinds = getattr(self, name)
            require(len(kinds) >= 1, name, "needs at least one kind", kinds)
            bad = [k for k in kinds if k not in ATTENTION_KINDS]
            require(not bad, name, f"unknown kinds {bad}; valid: {ATTENTION_KINDS}", kinds)
            require(len(set(kinds)) == len(kinds), name, "has duplicates", kinds)
        require(
            "naive" in self.bench_kinds and any(k.startswith("amlp") for k in self.bench_kinds),
            "bench_kinds",
            "must contain 'naive' and an AMLP kind",
            self.bench_kinds,
        )
        require(
            self.amlp_kind in ("amlp-pquery", "amlp-cov"),
            "amlp_kind",
            "must be 'amlp-pquery' or 'amlp-cov'",
            self.amlp_kind,
        )
        require(
            "softmax" in self.nar_kinds and self.amlp_kind in self.nar_kinds,
            "nar_kinds",
            f"must contain 'softmax' and amlp_kind={self.amlp_kind!r}",
            self.nar_kinds,
        )
        for name in ("memory_lengths", "time_lengths"):
            values = getattr(self, name)
            require(len(values) >= 3, name, "needs at least three lengths (quadratic fit)", values)
            require(all(v >= 1 for v in values), name, "lengths must be >= 1", values)
            require(list(values) == sorted(set(values)), name, "must be increasing", values)
        for name in (
            "bench_embed_dim",
            "bench_num_heads",
            "bench_batch_size",
            "num_landmarks",
            "growth_length",
            "time_repeats",
            "num_seeds",
            "model_dim",
            "model_heads",
            "num_layers",
            "ffn_features",
            "sort_vocab",
            "translation_vocab",
            "reverse_vocab",
            "reverse_landmarks",
            "num_test",
            "batch_size",
            "decode_iterations",
            "num_threads",
        ):
            value = getattr(self, name)
            require(value >= 1, name, "must be >= 1", value)
        require(
            self.bench_embed_dim % self.bench_num_heads == 0,
            "bench_num_heads",
            f"must divide bench_embed_dim={self.bench_embed_dim}",
            self.bench_num_heads,
        )
        require(
            self.model_dim % self.model_heads == 0,
            "model_heads",
            f"must divide model_dim={self.model_dim}",
            self.model_heads,
        )
        for name in ("sort_lengths", "translation_lengths", "reverse_lengths"):
            low, high = getattr(self, name)
            require(1 <= low <= high, name, "must be (min, max) with 1 <= min <= max", (low, high))
        require(0 <= self.fertility_prob <= 1, "fertility_prob", "must be in [0, 1]")
        require(self.num_train >= self.batch_size, "num_train", "must be >= batch_size")
        for name in (
            "growth_max",
            "naive_growth_min",
            "memory_crossover_max",
            "time_crossover_max",
            "accuracy_gap_max",
            "rank_gap_min",
        ):
            require(getattr(self, name) > 0, name, "must be > 0", getattr(self, name))
        require(0 < self.accuracy_min <= 1, "accuracy_min", "must be in (0, 1]")


QUICK = AMLPStudyConfig()
FULL = AMLPStudyConfig(
    bench_embed_dim=256,
    bench_num_heads=4,
    bench_batch_size=2,
    memory_lengths=(32, 64, 128, 256, 512, 1024, 2048),
    growth_length=1024,
    time_lengths=(256, 512, 1024, 2048, 4096),
    time_repeats=10,
    nar_kinds=("softmax", "linear", "amlp-pquery", "amlp-cov"),
    num_seeds=3,
    model_dim=128,  # our toy NAR setting: d = 128, 2 + 2 layers, 4 heads, c = 16
    num_layers=2,
    ffn_features=512,
    sort_lengths=(16, 32),
    sort_vocab=16,
    translation_lengths=(8, 24),
    translation_vocab=16,
    reverse_lengths=(64, 96),  # >> c = 16
    reverse_landmarks=16,
    num_train=50000,
    num_test=1000,
    batch_size=64,
    fit=FitConfig(
        max_steps=4000,
        optimizer=OptimizerConfig(name="adamw", lr=1e-3),
        schedule=ScheduleConfig(name="cosine", warmup_steps=200),
        log_every=50,
        progress=False,
    ),
)

register_study(
    "amlp",
    config=AMLPStudyConfig,
    presets={"quick": QUICK, "full": FULL},
    paper=PAPER,
    summary=(
        "AMLP: saved-tensor growth, memory/time crossovers vs naive attention, NAR toy accuracy."
    ),
    run="perceptrons.studies.amlp.run:run",
    modules=(
        "perceptrons.layers.attention",
        "perceptrons.layers.memory",
        "perceptrons.models.amlp",
        "perceptrons.data.sequences",
    ),
    docs="docs/amlp.md",
)
