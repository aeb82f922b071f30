"""``amlp``: AMLP attention's linear memory and time, and NAR accuracy on toy seq2seq tasks.

Paper: Shuyang Jiang, Jun Zhang, Jiangtao Feng, Lin Zheng & Lingpeng Kong, *Attentive
Multi-Layer Perceptron for Non-autoregressive Generation*, ECML-PKDD 2023, arXiv:2310.09512
(project brief ``amlp.md``: efficiency protocol §6/§9/§11, toy tasks §10, targets §12).

What is measured:

* efficiency (one self-attention layer per kind, ``(b, N, e)`` input): the tensors saved for
  backward (`perceptrons.layers.memory`: exact, not timed) and the forward+backward wall time
  on this CPU (interquartile mean of ``time_repeats`` runs after a warm-up). Crossover
  lengths follow the brief's protocol (CAB's "efficiency lengths"): a quadratic fitted to the
  naive attention, a line to AMLP, and their last intersection;
* accuracy: `NARTransformer` models (encoder softmax; decoder self- and cross-attention of
  each kind) trained with `CMLMStep` through `fit` on sort, the monotone toy translation and
  reverse (`perceptrons.data.sequences`), decoded by `mask_predict` with predicted lengths;
  token accuracy on held-out samples.

Claims (thresholds from the issue, fixed before measuring):

* ``no_quadratic_tensor``: AMLP's largest saved tensor grows by <= 2.2x from N to 2N (worst
  AMLP variant) while the naive attention's grows >= 3.5x (otherwise the threshold is NaN
  and the claim fails);
* ``memory_crossover``: saved bytes, crossover length of AMLP (the larger over the variants)
  against naive attention <= 256;
* ``time_crossover_vs_naive``: forward+backward time, crossover length of ``amlp_kind``
  against naive attention <= 4096 (the paper's GPU figure for the whole NAR model: ~1.6k);
* ``sort_accuracy`` / ``translation_accuracy``: NAR-AMLP token accuracy >=
  ``max(0.95, NAR-softmax - 0.03)`` (both conditions of the issue in one threshold);
* ``rank_bottleneck_documented``: on reverse with length >> c, NAR-softmax minus NAR-AMLP
  token accuracy >= 0.05 (an expected property of the c-slot summary, not a bug).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from perceptrons.data.loader import TensorLoader
from perceptrons.data.sequences import Seq2SeqData, make_lexicon, make_sequence_task
from perceptrons.layers.attention import make_attention
from perceptrons.layers.memory import largest_saved_tensor_numel, saved_tensor_bytes
from perceptrons.models.amlp import CMLMStep, exact_match, mask_predict, token_accuracy
from perceptrons.registry import create_model
from perceptrons.studies.amlp.config import FULL, QUICK, AMLPStudyConfig
from perceptrons.studies.base import StudyResult, Table, register_study
from perceptrons.train import fit

__all__ = ["crossover_length", "interpolated_crossover", "run"]

PAPER = (
    "Jiang, Zhang, Feng, Zheng & Kong 2023, Attentive Multi-Layer Perceptron for "
    "Non-autoregressive Generation, ECML-PKDD, arXiv:2310.09512"
)
TASKS = ("sort", "translation", "reverse")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# -------------------------------------------------------------------- efficiency
def crossover_length(lengths, baseline, method) -> float:
    """Length above which ``method`` costs less than ``baseline`` (brief §9, CAB protocol).

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


def _layer(kind: str, config: AMLPStudyConfig, seed: int) -> torch.nn.Module:
    return make_attention(
        kind,
        config.bench_embed_dim,
        config.bench_num_heads,
        num_landmarks=config.num_landmarks,
        generator=_gen(seed),
    )


def _input(config: AMLPStudyConfig, length: int, seed: int) -> torch.Tensor:
    shape = (config.bench_batch_size, length, config.bench_embed_dim)
    return torch.randn(shape, generator=_gen(seed)).requires_grad_(True)


def _memory(config: AMLPStudyConfig) -> tuple[dict, Table]:
    """Saved bytes and largest saved tensor per kind and length."""
    table = Table(["kind", "length", "saved_bytes", "largest_saved_numel"])
    out: dict[str, dict[str, list[float]]] = {}
    lengths = sorted({*config.memory_lengths, config.growth_length, 2 * config.growth_length})
    for kind in config.bench_kinds:
        layer = _layer(kind, config, config.seed)
        rows: dict[str, list[float]] = {"length": [], "bytes": [], "largest": []}
        for length in lengths:
            x = _input(config, length, config.seed + 1)
            saved = saved_tensor_bytes(layer, x, x, x)
            largest = largest_saved_tensor_numel(layer, x, x, x)
            rows["length"].append(length)
            rows["bytes"].append(saved)
            rows["largest"].append(largest)
            table.rows.append([kind, length, saved, largest])
        out[kind] = rows
    return out, table


def _iqm(values: list[float]) -> float:
    """Interquartile mean (the mean of the middle half; the median for fewer than 4)."""
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


def _time(config: AMLPStudyConfig) -> tuple[dict, Table]:
    """Forward+backward seconds per kind and length (IQM)."""
    table = Table(["kind", "length", "fwd_bwd_seconds"])
    out: dict[str, list[float]] = {}
    for kind in config.bench_kinds:
        layer = _layer(kind, config, config.seed)
        params = [p for p in layer.parameters() if p.requires_grad]
        times = []
        for length in config.time_lengths:
            x = _input(config, length, config.seed + 1)
            _fwd_bwd_seconds(layer, params, x)  # warm-up
            seconds = _iqm([_fwd_bwd_seconds(layer, params, x) for _ in range(config.time_repeats)])
            times.append(seconds)
            table.rows.append([kind, length, seconds])
        out[kind] = times
    return out, table


def _plot_efficiency(out_dir: Path, config: AMLPStudyConfig, memory: dict, timing: dict) -> Path:
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_mem, ax_time = fig.subplots(1, 2)
    labels = {"softmax": "softmax (SDPA)", "naive": "naive softmax", "linear": "linear (elu+1)"}
    for i, kind in enumerate(config.bench_kinds):
        style = {"color": f"C{i}", "marker": "o", "label": labels.get(kind, kind)}
        ax_mem.plot(memory[kind]["length"], memory[kind]["bytes"], **style)
        ax_time.plot(config.time_lengths, timing[kind], **style)
    e, h, b = config.bench_embed_dim, config.bench_num_heads, config.bench_batch_size
    ax_mem.set(
        xscale="log",
        yscale="log",
        xlabel="sequence length N",
        ylabel="bytes saved for backward",
        title=f"Activation memory (e={e}, h={h}, b={b})",
    )
    ax_time.set(
        xscale="log",
        yscale="log",
        xlabel="sequence length N",
        ylabel="seconds",
        title="Forward + backward time (this CPU)",
    )
    for ax, ticks in (
        (ax_mem, memory[config.bench_kinds[0]]["length"]),
        (ax_time, config.time_lengths),
    ):
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
    ax_mem.legend(fontsize=8)
    path = out_dir / "efficiency.png"
    fig.savefig(path, dpi=110)
    return path


# -------------------------------------------------------------------- NAR accuracy
def _task_data(task: str, config: AMLPStudyConfig, seed: int) -> tuple[Seq2SeqData, Seq2SeqData]:
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
        generator=_gen(seed),
    )
    data = make_sequence_task(
        task,
        config.num_train + config.num_test,
        min_length=lengths[0],
        max_length=lengths[1],
        vocab_size=vocab,
        generator=_gen(seed + 1),
        lexicon=lexicon,
    )
    return data.split(config.num_train)


def _train_eval(
    task: str, kind: str, config: AMLPStudyConfig, seed: int, out_dir: Path
) -> dict[str, float]:
    train, test = _task_data(task, config, seed)
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
    return {
        "accuracy": token_accuracy(tokens, test.target),
        "exact_match": exact_match(tokens, test.target),
        "accuracy_single_pass": token_accuracy(single, test.target),
        "accuracy_gold_length": token_accuracy(gold, test.target),
        "final_loss": float(fitted.final["loss"]),
        "fit_seconds": seconds,
    }


def _plot_accuracy(out_dir: Path, config: AMLPStudyConfig, means: dict, stds: dict) -> Path:
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(config.nar_kinds)
    x = np.arange(len(TASKS))
    for i, kind in enumerate(config.nar_kinds):
        values = [means[(task, kind)] for task in TASKS]
        errors = [stds[(task, kind)] for task in TASKS]
        ax.bar(x + (i - (len(config.nar_kinds) - 1) / 2) * width, values, width, yerr=errors,
               color=f"C{i}", label=kind, capsize=3)  # fmt: skip
    ax.axhline(config.accuracy_min, color="k", ls="--", lw=1, label=f"{config.accuracy_min:g}")
    names = {
        "sort": f"sort\nn {config.sort_lengths[0]}-{config.sort_lengths[1]}",
        "translation": (
            f"toy translation\nn {config.translation_lengths[0]}-{config.translation_lengths[1]}"
        ),
        "reverse": (
            f"reverse\nn {config.reverse_lengths[0]}-{config.reverse_lengths[1]}, "
            f"c={config.reverse_landmarks}"
        ),
    }
    ax.set_xticks(x, [names[t] for t in TASKS])
    ax.set(
        ylabel="token accuracy (mask-predict, predicted length)",
        ylim=(0, 1.02),
        title=f"NAR Transformer, decoder attention per kind ({config.num_seeds} seed(s))",
    )
    ax.legend(fontsize=8, loc="lower left")
    path = out_dir / "accuracy.png"
    fig.savefig(path, dpi=110)
    return path


# -------------------------------------------------------------------- the study
@register_study(
    "amlp",
    config=AMLPStudyConfig,
    presets={"quick": QUICK, "full": FULL},
    paper=PAPER,
)
def run(config: AMLPStudyConfig, out_dir: Path) -> StudyResult:
    """AMLP: saved-tensor growth, memory/time crossovers vs naive attention, NAR toy accuracy."""
    started = time.perf_counter()
    result = StudyResult()
    amlp_kinds = [k for k in config.bench_kinds if k.startswith("amlp")]

    # ---- memory (exact)
    memory, memory_table = _memory(config)
    result.tables["memory"] = memory_table

    def growth(kind: str) -> float:
        rows = memory[kind]
        at = dict(zip(rows["length"], rows["largest"], strict=True))
        return at[2 * config.growth_length] / at[config.growth_length]

    growths = {kind: growth(kind) for kind in config.bench_kinds}
    worst_amlp = max(growths[k] for k in amlp_kinds)
    naive_growth = growths["naive"]
    result.metrics.update({f"largest_saved_growth_{k}": v for k, v in growths.items()})
    n = config.growth_length
    result.claim(
        "no_quadratic_tensor",
        f"largest tensor saved for backward grows <= {config.growth_max}x from N={n} to "
        f"2N for AMLP (worst of {', '.join(amlp_kinds)}), while naive attention's grows "
        f">= {config.naive_growth_min}x (measured {naive_growth:.2f}x; threshold NaN if not)",
        worst_amlp,
        config.growth_max if naive_growth >= config.naive_growth_min else math.nan,
        "<=",
    )
    lengths = config.memory_lengths
    at = {k: dict(zip(memory[k]["length"], memory[k]["bytes"], strict=True)) for k in memory}
    memory_crossovers = {
        kind: crossover_length(
            lengths, [at["naive"][m] for m in lengths], [at[kind][m] for m in lengths]
        )
        for kind in config.bench_kinds
        if kind != "naive"
    }
    result.metrics.update({f"memory_crossover_{k}": v for k, v in memory_crossovers.items()})
    result.claim(
        "memory_crossover",
        "length above which AMLP saves fewer bytes for backward than naive attention (quadratic "
        "fit to naive, line to AMLP, larger over the variants; one layer, e="
        f"{config.bench_embed_dim}, {config.bench_num_heads} heads, c={config.num_landmarks}) "
        f"is <= {config.memory_crossover_max:g}",
        max(memory_crossovers[k] for k in amlp_kinds),
        config.memory_crossover_max,
        "<=",
    )

    # ---- time (this CPU)
    timing, time_table = _time(config)
    result.tables["time"] = time_table
    time_kind = config.amlp_kind if config.amlp_kind in config.bench_kinds else amlp_kinds[0]
    time_crossovers = {
        kind: crossover_length(config.time_lengths, timing["naive"], timing[kind])
        for kind in config.bench_kinds
        if kind != "naive"
    }
    result.metrics.update({f"time_crossover_{k}": v for k, v in time_crossovers.items()})
    for kind in time_crossovers:
        result.metrics[f"time_crossover_interp_{kind}"] = interpolated_crossover(
            config.time_lengths, timing["naive"], timing[kind]
        )
    result.claim(
        "time_crossover_vs_naive",
        f"length above which {time_kind} forward+backward is faster than naive attention on "
        f"this CPU (quadratic fit to naive, line to AMLP; one layer, e="
        f"{config.bench_embed_dim}, batch {config.bench_batch_size}) is <= "
        f"{config.time_crossover_max:g} (paper, GPU, whole NAR model: ~1.6k)",
        time_crossovers[time_kind],
        config.time_crossover_max,
        "<=",
    )
    result.figures.append(_plot_efficiency(out_dir, config, memory, timing))

    # ---- NAR accuracy
    table = Table(
        [
            "task",
            "kind",
            "seed",
            "accuracy",
            "exact_match",
            "accuracy_single_pass",
            "accuracy_gold_length",
            "final_loss",
            "fit_seconds",
        ]
    )
    runs: dict[tuple[str, str], list[float]] = {}
    for i in range(config.num_seeds):
        seed = config.seed + 1000 * i
        for task in TASKS:
            for kind in config.nar_kinds:
                scores = _train_eval(task, kind, config, seed, out_dir / f"{task}_{kind}_{seed}")
                runs.setdefault((task, kind), []).append(scores["accuracy"])
                table.rows.append(
                    [task, kind, seed]
                    + [round(scores[c], 4) for c in table.columns[3:-1]]
                    + [round(scores["fit_seconds"], 2)]
                )
    result.tables["accuracy"] = table
    means = {key: float(np.mean(v)) for key, v in runs.items()}
    stds = {key: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for key, v in runs.items()}
    for (task, kind), value in means.items():
        result.metrics[f"accuracy_{task}_{kind}"] = value
    amlp = config.amlp_kind
    for task, claim_id in (("sort", "sort_accuracy"), ("translation", "translation_accuracy")):
        softmax = means[(task, "softmax")]
        result.claim(
            claim_id,
            f"NAR-{amlp} token accuracy on {task} (mean of {config.num_seeds} seed(s), "
            f"{config.decode_iterations} mask-predict iterations, predicted length) >= "
            f"max({config.accuracy_min:g}, NAR-softmax {softmax:.4f} - "
            f"{config.accuracy_gap_max:g})",
            means[(task, amlp)],
            max(config.accuracy_min, softmax - config.accuracy_gap_max),
            ">=",
        )
    result.claim(
        "rank_bottleneck_documented",
        f"on reverse with n {config.reverse_lengths[0]}-{config.reverse_lengths[1]} >> "
        f"c={config.reverse_landmarks}, NAR-softmax token accuracy "
        f"({means[('reverse', 'softmax')]:.4f}) minus NAR-{amlp}'s "
        f"({means[('reverse', amlp)]:.4f}) is >= {config.rank_gap_min:g}: "
        "the c-slot summary cannot route every position",
        means[("reverse", "softmax")] - means[("reverse", amlp)],
        config.rank_gap_min,
        ">=",
    )
    result.figures.append(_plot_accuracy(out_dir, config, means, stds))
    result.metrics["wall_time_s"] = time.perf_counter() - started
    return result
