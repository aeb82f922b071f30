"""``amlp``: AMLP attention's linear memory and time, and NAR accuracy on toy seq2seq tasks.

Paper: Shuyang Jiang, Jun Zhang, Jiangtao Feng, Lin Zheng & Lingpeng Kong, *Attentive
Multi-Layer Perceptron for Non-autoregressive Generation*, ECML-PKDD 2023, arXiv:2310.09512.
Its accuracy tables are not available; Fig. 4 (time and memory of the whole NAR model against
length, on a GPU) is. The measurements are in ``experiments.py``; the thresholds are ours,
fixed before measuring (docs/amlp.md).

Claims:

* ``no_quadratic_tensor``: AMLP's largest saved tensor grows by <= 2.2x from N to 2N (worst
  AMLP variant) while the naive attention's grows >= 3.5x (otherwise the threshold is NaN
  and the claim fails);
* ``memory_crossover``: saved bytes, crossover length of AMLP (the larger over the variants)
  against naive attention <= 256 (Fig. 4: AMLP's memory is below vanilla's from 512 on);
* ``time_crossover_vs_naive``: forward+backward time, crossover length of ``amlp_kind``
  against naive attention <= 4096 (Fig. 4, GPU, whole NAR model: ~1.6k);
* ``sort_accuracy`` / ``translation_accuracy``: NAR-AMLP token accuracy >=
  ``max(0.95, NAR-softmax - 0.03)`` (an absolute level and a gap to softmax in one threshold);
* ``rank_bottleneck_documented``: on reverse with length >> c, NAR-softmax minus NAR-AMLP
  token accuracy >= 0.05 (an expected property of the c-slot summary, not a bug).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from perceptrons.studies.amlp.config import AMLPStudyConfig
from perceptrons.studies.amlp.experiments import measure_memory, measure_time, nar_accuracy
from perceptrons.studies.amlp.figures import plot_accuracy, plot_efficiency
from perceptrons.studies.base import StudyResult

__all__ = ["run"]


def run(config: AMLPStudyConfig, out_dir: Path) -> StudyResult:
    """AMLP: saved-tensor growth, memory/time crossovers vs naive attention, NAR toy accuracy."""
    started = time.perf_counter()
    result = StudyResult()
    amlp_kinds = [k for k in config.bench_kinds if k.startswith("amlp")]

    memory = measure_memory(config)
    result.tables["memory"] = memory.table
    worst_amlp = max(memory.growth[k] for k in amlp_kinds)
    naive_growth = memory.growth["naive"]
    result.metrics.update({f"largest_saved_growth_{k}": v for k, v in memory.growth.items()})
    result.metrics.update({f"memory_crossover_{k}": v for k, v in memory.crossover.items()})
    result.claim(
        "no_quadratic_tensor",
        f"largest tensor saved for backward grows <= {config.growth_max}x from "
        f"N={config.growth_length} to 2N for AMLP (worst of {', '.join(amlp_kinds)}), while "
        f"naive attention's grows >= {config.naive_growth_min}x (measured {naive_growth:.2f}x; "
        "threshold NaN if not)",
        worst_amlp,
        config.growth_max if naive_growth >= config.naive_growth_min else math.nan,
        "<=",
    )
    result.claim(
        "memory_crossover",
        "length above which AMLP saves fewer bytes for backward than naive attention (quadratic "
        "fit to naive, line to AMLP, larger over the variants; one layer, e="
        f"{config.bench_embed_dim}, {config.bench_num_heads} heads, c={config.num_landmarks}) "
        f"is <= {config.memory_crossover_max:g}",
        max(memory.crossover[k] for k in amlp_kinds),
        config.memory_crossover_max,
        "<=",
    )

    timing = measure_time(config)
    result.tables["time"] = timing.table
    time_kind = config.amlp_kind if config.amlp_kind in config.bench_kinds else amlp_kinds[0]
    result.metrics.update({f"time_crossover_{k}": v for k, v in timing.crossover.items()})
    result.metrics.update(
        {f"time_crossover_interp_{k}": v for k, v in timing.interpolated_crossover.items()}
    )
    result.claim(
        "time_crossover_vs_naive",
        f"length above which {time_kind} forward+backward is faster than naive attention on "
        f"this CPU (quadratic fit to naive, line to AMLP; one layer, e="
        f"{config.bench_embed_dim}, batch {config.bench_batch_size}) is <= "
        f"{config.time_crossover_max:g} (paper, GPU, whole NAR model: ~1.6k)",
        timing.crossover[time_kind],
        config.time_crossover_max,
        "<=",
    )
    result.figures.append(plot_efficiency(out_dir, config, memory, timing))

    accuracy = nar_accuracy(config, out_dir)
    result.tables["accuracy"] = accuracy.table
    means, amlp = accuracy.mean, config.amlp_kind
    result.metrics.update({f"accuracy_{t}_{k}": v for (t, k), v in means.items()})
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
    result.figures.append(plot_accuracy(out_dir, config, accuracy))
    result.metrics["wall_time_s"] = time.perf_counter() - started
    return result
