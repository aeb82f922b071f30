"""Synthetic CTR data with planted interactions and a known oracle, a test bed for EMOFM.

This generator is our reconstruction, not taken from a paper (EMOFM: Li & Wu 2023,
arXiv:2310.04482); a known oracle makes AUC gaps between models attributable. Dimension legend:
``n`` rows, ``F`` single-valued fields, ``M`` multi-valued fields, ``T`` types, ``k`` latent
dimension.

**Fields** mimic the CVR challenge data: user, scene and ad fields (single-valued), then
user multi-value fields, named ``f1, f2, ...`` in that order. Field ``f`` has a cardinality
drawn log-uniformly in ``[min_cardinality, max_cardinality]``; values follow a Zipf law of
exponent ``s_f ~ U[zipf_min, zipf_max]`` over ranks, mapped to value ids by a random
permutation. A multi-valued field holds a bag of ``1 + Poisson(mean_multi_length - 1)`` values
(at most ``max_multi_length``).

**Ground truth.** With ``x_f`` the value of field ``f`` (for a multi-valued field, a quantity of
``x_f`` is the mean over its bag):

.. math::

    z_t(x) = b + \\alpha \\sum_f w_f[x_f]
             + \\beta \\Big(\\sum_{(f,g) \\in P} \\langle u_f[x_f], u_g[x_g] \\rangle
             + \\sum_{(f,g,h) \\in P_3} a_f[x_f] a_g[x_g] a_h[x_h]\\Big)
             + \\gamma \\Big(\\delta_t + \\sum_{(f,g) \\in P_t} \\langle v^t_f[x_f], v^t_g[x_g]
             \\rangle\\Big)

* ``P``: ``num_pairs`` planted pairs across groups (a user field with an ad or scene field);
  ``P_3``: ``num_triples`` planted triples; ``P_t``: ``num_type_pairs`` pairs per type.
* **Interaction families** (``interaction``): the formula above is ``"product"`` (the
  default): every pair term ``<u_f[x_f], u_g[x_g]>`` is a rank-``latent_dim`` product, which FM,
  DeepFM and DCN-V2 represent exactly. The other families replace the pair terms of ``P`` and
  every ``P_t`` (the triples stay products):

  - ``"lookup"``: a random effect per pair of values, hashed into a table: each field's
    values are hashed into ``B_f = min(cardinality, lookup_buckets)`` buckets and the pair
    term is ``L_fg[bucket_f(x_f), bucket_g(x_g)]`` with ``L_fg`` a ``B_f x B_g`` Gaussian
    table, a full-rank (not a low-rank product) function of the two values;
  - ``"conjunction"``: ``num_conjunctions`` rules per pair, rule ``j`` firing when ``x_f`` is
    in a random value set ``S_fj`` and ``x_g`` in ``S_gj`` (each value in a set with
    probability ``conjunction_fraction``): ``sum_j c_j 1[x_f in S_fj] 1[x_g in S_gj]``, step
    functions on value sets (each rule is an indicator product, so the pair has rank
    ``num_conjunctions``; it is sparse rather than smooth);
  - ``"mixed"``: each pair draws one of the three families.

  Lookup tables and conjunction terms are double-centred exactly (under the value or bucket
  distributions: ``1[x in S] - P(S)``), so they too have zero mean given any single field,
  and scaled to the variance ``1 / latent_dim`` of a product pair under the value
  distribution, so that no family dominates a mixed task. Their parameters come from a
  separate random stream, so ``"product"`` tasks are unchanged. For a multi-valued field the
  term is the mean over the bag (as everywhere).
* Every latent table (``u``, ``a``, ``v``) is centred under its field's value distribution, so
  an interaction has zero mean given any single field: the first-order terms are the best
  additive explanation of the interactions (types aside, see below).
* ``alpha``, ``beta``, ``gamma`` scale the three parts to the standard deviations
  ``first_order_std``, ``interaction_std`` and ``type_std`` on a calibration sample, and ``b``
  is set (bisection on the same sample) so that the mean click probability is ``base_rate``.
* **Types**: ``t ~ softmax(type_temperature * g(x))`` with ``g_t`` a random additive score of
  the scene and ad fields, so the type is predictable from the features (an auxiliary type
  model has signal). Labels are ``y ~ Bernoulli(sigmoid(z_t(x)))``.
* ``interactions=False`` removes the pair, triple and type terms (``beta = gamma = 0``): then the
  oracle equals the first-order oracle and every reasonable model ties.

**Oracles** returned per row: ``probability = sigmoid(z_t(x))`` (the true type known: the Bayes
predictor of the validation setting), ``probability_hidden_type = sum_t pi_t(x)
sigmoid(z_t(x))`` (the Bayes predictor when types are hidden at test time) and
``first_order_probability = sigmoid(b + alpha sum_f w_f[x_f])`` (the first-order-only oracle that
LR should match). Types are hidden at test time by the model code, not here: every sample
carries its true types, so per-type metrics can be computed.

All randomness flows from ``config.seed`` (the task's parameters) and the ``seed`` of
`SyntheticCTRTask.sample` (the rows), through numpy Generators; sampling is vectorised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import torch

from perceptrons.config import Config, require
from perceptrons.ctr.features import NUM_SPECIAL_IDS, PAD_ID, CTRBatch, CTRFeatures
from perceptrons.ctr.io.schema import CTRSchema, RawChunk, cvr_schema, object_array
from perceptrons.io import atomic_write

__all__ = [
    "INTERACTION_FAMILIES",
    "SyntheticCTRConfig",
    "SyntheticCTRData",
    "SyntheticCTRTask",
    "synthetic_ctr",
]

InteractionFamily: TypeAlias = Literal["product", "lookup", "conjunction", "mixed"]
INTERACTION_FAMILIES = ("product", "lookup", "conjunction", "mixed")
"""Values of `SyntheticCTRConfig.interaction` (see the module docstring)."""
_PAIR_FAMILIES = ("product", "lookup", "conjunction")
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_SPARSE_RANGE = 10**15  # raw feature ids are "hashed integers" below this


@dataclass(frozen=True, kw_only=True)
class SyntheticCTRConfig(Config):
    """Parameters of a synthetic CTR task (defaults: the CVR data's 26 fields; our choice).

    Attributes:
        num_user_fields: Single-valued user fields (group "user").
        num_scene_fields: Scene fields (group "scene").
        num_ad_fields: Ad fields (group "ad").
        num_multi_fields: Multi-valued user fields (group "user_multi").
        min_cardinality: Smallest field cardinality.
        max_cardinality: Largest field cardinality (cardinalities are log-uniform between).
        zipf_min: Smallest Zipf exponent of a field's value frequencies.
        zipf_max: Largest Zipf exponent.
        mean_multi_length: Mean bag size of a multi-valued field (>= 1).
        max_multi_length: Largest bag size.
        latent_dim: Dimension k of the interaction vectors (our range: 4-8).
        num_pairs: Planted cross-group pairs (our range: 3-8).
        num_triples: Planted third-order triples.
        num_types: Number of row types T (the CVR data's conversion types: 3).
        num_type_pairs: Type-specific pairs per type.
        type_temperature: Sharpness of the type distribution given the features.
        interactions: Plant the pair, triple and type terms; False leaves first-order only.
        interaction: Family of the pair terms (planted and type-specific): "product" (the
            latent products), "lookup" (hashed random tables), "conjunction" (value-set
            rules) or "mixed" (one family drawn per pair); see the module docstring.
        lookup_buckets: Largest number of buckets ``B`` a field's values are hashed into for a
            lookup table (``min(cardinality, B)``).
        num_conjunctions: Conjunction rules per pair.
        conjunction_fraction: Probability that a value belongs to a rule's value set.
        first_order_std: Standard deviation of the first-order part of the logit.
        interaction_std: Standard deviation of the pair and triple part.
        type_std: Standard deviation of the type-specific part.
        base_rate: Mean click probability (our range: 3-20%).
        calibration_rows: Rows of the sample that sets the scales and the bias.
        seed: Seed of the task's parameters.
    """

    num_user_fields: int = 13
    num_scene_fields: int = 3
    num_ad_fields: int = 8
    num_multi_fields: int = 2
    min_cardinality: int = 3
    max_cardinality: int = 100_000
    zipf_min: float = 1.05
    zipf_max: float = 1.4
    mean_multi_length: float = 3.0
    max_multi_length: int = 8
    latent_dim: int = 8
    num_pairs: int = 6
    num_triples: int = 0
    num_types: int = 3
    num_type_pairs: int = 2
    type_temperature: float = 2.0
    interactions: bool = True
    interaction: InteractionFamily = "product"
    lookup_buckets: int = 32
    num_conjunctions: int = 4
    conjunction_fraction: float = 0.3
    first_order_std: float = 0.9
    interaction_std: float = 1.0
    type_std: float = 0.5
    base_rate: float = 0.1
    calibration_rows: int = 20_000
    seed: int = 0

    def validate(self) -> None:
        for name in ("num_user_fields", "num_ad_fields"):
            require(getattr(self, name) >= 1, name, "must be >= 1", getattr(self, name))
        for name in ("num_scene_fields", "num_multi_fields", "num_pairs", "num_triples"):
            require(getattr(self, name) >= 0, name, "must be >= 0", getattr(self, name))
        require(self.min_cardinality >= 2, "min_cardinality", "must be >= 2", self.min_cardinality)
        require(
            self.max_cardinality >= self.min_cardinality,
            "max_cardinality",
            "must be >= min_cardinality",
            self.max_cardinality,
        )
        require(0 < self.zipf_min <= self.zipf_max, "zipf_max", "needs 0 < zipf_min <= zipf_max")
        require(self.mean_multi_length >= 1, "mean_multi_length", "must be >= 1")
        require(self.max_multi_length >= 1, "max_multi_length", "must be >= 1")
        require(self.latent_dim >= 1, "latent_dim", "must be >= 1", self.latent_dim)
        require(self.num_types >= 1, "num_types", "must be >= 1", self.num_types)
        require(self.num_type_pairs >= 0, "num_type_pairs", "must be >= 0")
        for name in ("first_order_std", "interaction_std", "type_std", "type_temperature"):
            require(getattr(self, name) >= 0, name, "must be >= 0", getattr(self, name))
        require(0 < self.base_rate < 1, "base_rate", "must be in (0, 1)", self.base_rate)
        require(self.calibration_rows >= 100, "calibration_rows", "must be >= 100")
        require(
            self.interaction in INTERACTION_FAMILIES,
            "interaction",
            f"must be one of {INTERACTION_FAMILIES}",
            self.interaction,
        )
        require(self.lookup_buckets >= 2, "lookup_buckets", "must be >= 2", self.lookup_buckets)
        require(self.num_conjunctions >= 1, "num_conjunctions", "must be >= 1")
        require(
            0 < self.conjunction_fraction < 1,
            "conjunction_fraction",
            "must be in (0, 1)",
            self.conjunction_fraction,
        )

    @property
    def num_fields(self) -> int:
        """All fields: single-valued and multi-valued."""
        return self.num_single_fields + self.num_multi_fields

    @property
    def num_single_fields(self) -> int:
        """Single-valued fields (user, scene, ad)."""
        return self.num_user_fields + self.num_scene_fields + self.num_ad_fields


@dataclass(frozen=True, eq=False)
class SyntheticCTRData:
    """Rows drawn from a `SyntheticCTRTask`, with their oracle probabilities.

    Attributes:
        ids: (n, F) int64 value ids of the single-valued fields, field ``f`` in
            ``[0, cardinalities[f])``.
        multi_values: M pairs ``(values, offsets)``: values (total,) int64 value ids, offsets
            (n + 1,) int64; row ``i`` holds ``values[offsets[i]:offsets[i + 1]]`` (>= 1 value).
        types: (n,) int64 true type of each row, in ``[0, T)``.
        labels: (n,) float32 clicks in {0, 1}.
        probability: (n,) float64 oracle ``sigmoid(z_t(x))`` with the true type.
        probability_hidden_type: (n,) float64 oracle with the type marginalised,
            ``sum_t pi_t(x) sigmoid(z_t(x))``.
        first_order_probability: (n,) float64 first-order-only oracle.
        type_probabilities: (n, T) float64 ``pi_t(x)``, the true type distribution.
        task: The task that drew the rows.
    """

    ids: np.ndarray
    multi_values: tuple[tuple[np.ndarray, np.ndarray], ...]
    types: np.ndarray
    labels: np.ndarray
    probability: np.ndarray
    probability_hidden_type: np.ndarray
    first_order_probability: np.ndarray
    type_probabilities: np.ndarray
    task: SyntheticCTRTask

    @property
    def num_rows(self) -> int:
        """Number of rows n."""
        return int(self.labels.shape[0])

    def __len__(self) -> int:
        return self.num_rows

    @property
    def feature_spec(self) -> CTRFeatures:
        """Fields of `to_batch` (cardinalities include the 3 special ids; no numeric fields)."""
        task = self.task
        return CTRFeatures(
            categorical_fields=task.single_fields,
            categorical_cardinalities=tuple(
                int(c) + NUM_SPECIAL_IDS
                for c in task.cardinalities[: task.config.num_single_fields]
            ),
            numeric_fields=(),
            multi_valued_fields=task.multi_fields,
            multi_valued_cardinalities=tuple(
                int(c) + NUM_SPECIAL_IDS
                for c in task.cardinalities[task.config.num_single_fields :]
            ),
            num_types=task.config.num_types,
        )

    def to_batch(self) -> CTRBatch:
        """The rows as a `CTRBatch` directly (value id ``v`` -> ``v + NUM_SPECIAL_IDS``).

        Skips the file round trip; the ids follow the encoders' convention (no OOV or missing
        values occur), with cardinalities as `feature_spec`.
        """
        n = self.num_rows
        multi_ids, lengths = [], []
        for values, offsets in self.multi_values:
            length = np.diff(offsets)
            width = int(length.max()) if n else 1
            out = np.full((n, width), PAD_ID, dtype=np.int64)
            row = np.repeat(np.arange(n), length)
            position = np.arange(values.shape[0]) - np.repeat(offsets[:-1], length)
            out[row, position] = values + NUM_SPECIAL_IDS
            multi_ids.append(torch.from_numpy(out))
            lengths.append(length)
        multi_lengths = np.stack(lengths, axis=1) if lengths else np.zeros((n, 0), np.int64)
        return CTRBatch(
            categorical=torch.from_numpy(self.ids + NUM_SPECIAL_IDS),
            numeric=torch.zeros(n, 0),
            multi_ids=tuple(multi_ids),
            multi_lengths=torch.from_numpy(np.ascontiguousarray(multi_lengths, dtype=np.int64)),
            labels=torch.from_numpy(self.labels.copy()),
            types=torch.from_numpy(self.types.copy()),
        )

    def sparse_ids(self, field: int) -> np.ndarray:
        """The raw, "hashed integer" feature ids of single-valued field ``field``: (n,) int64."""
        return self.task.sparse_id(field, self.ids[:, field])

    def to_raw_chunk(self) -> RawChunk:
        """The rows as a `RawChunk` of the task's cvr schema (feature ids as strings)."""
        task, n = self.task, self.num_rows
        categorical = {
            name: object_array(self.sparse_ids(f).astype(str).tolist())
            for f, name in enumerate(task.single_fields)
        }
        multi = {}
        for j, name in enumerate(task.multi_fields):
            values, offsets = self.multi_values[j]
            sparse = task.sparse_id(task.config.num_single_fields + j, values)
            multi[name] = (object_array(sparse.astype(str).tolist()), offsets.copy())
        return RawChunk(
            line_numbers=np.arange(1, n + 1, dtype=np.int64),
            labels=self.labels.copy(),
            categorical=categorical,
            numeric={},
            multi_valued=multi,
            types=self.types.copy(),
            row_ids=object_array([str(i) for i in range(n)]),
        )

    def write(
        self, path: str | os.PathLike[str], format: str = "cvr", *, hide_types: bool = False
    ) -> CTRSchema:
        """Write the rows as a cvr file or a CSV table (atomically); return its schema.

        Args:
            path: The file to write.
            format: "cvr" (``log_id \\t t1 \\t t2 \\t t3 \\t featid:fieldid ...``; needs
                ``num_types == 3``) or "table" (CSV: ``label,type,f1,...``, multi-valued cells
                joined by "|").
            hide_types: Table only: leave the type column empty (types unknown).

        Returns:
            The schema to read the file with.
        """
        task, n = self.task, self.num_rows
        num_single = task.config.num_single_fields
        labels = self.labels.astype(np.int64).astype(str).tolist()
        types = self.types.tolist()
        single = [self.sparse_ids(f).astype(str).tolist() for f in range(num_single)]
        bags = []  # per multi-valued field: the row's ids as one string, joined by `joiner`
        joiner = " " if format == "cvr" else "|"
        for j, (values, offsets) in enumerate(self.multi_values):
            text = task.sparse_id(num_single + j, values).astype(str).tolist()
            if format == "cvr":
                text = [f"{v}:{num_single + j + 1}" for v in text]
            bounds = zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)
            bags.append([joiner.join(text[a:b]) for a, b in bounds])
        if format == "cvr":
            if task.config.num_types != 3:
                raise ValueError(
                    f"format: cvr files have 3 types, the task has {task.config.num_types}"
                )
            if hide_types:
                raise ValueError("hide_types: a cvr file stores the label in its type's column")
            pairs = [[f"{v}:{f + 1}" for v in column] for f, column in enumerate(single)]
            marks = [("{}\t-\t-", "-\t{}\t-", "-\t-\t{}")[t] for t in types]
            with atomic_write(path) as handle:
                for i, row in enumerate(zip(*pairs, *bags, strict=True)):
                    handle.write(f"{i}\t{marks[i].format(labels[i])}\t{' '.join(row)}\n")
            return task.schema
        if format != "table":
            raise ValueError(f"format: expected 'cvr' or 'table', got {format!r}")
        names = [*task.single_fields, *task.multi_fields]
        type_text = [""] * n if hide_types else [str(t) for t in types]
        with atomic_write(path) as handle:
            handle.write(",".join(["label", "type", *names]) + "\n")
            for row in zip(labels, type_text, *single, *bags, strict=True):
                handle.write(",".join(row) + "\n")
        return CTRSchema(
            format="table",
            label="label",
            type_column="type",
            categorical=task.single_fields,
            multi_valued=task.multi_fields,
            delimiter=",",
            multi_separator="|",
        )


class _Field:
    """One field's value distribution and per-value parameter tables."""

    def __init__(self, rng: np.random.Generator, cardinality: int, exponent: float) -> None:
        weights = np.arange(1, cardinality + 1, dtype=np.float64) ** -exponent
        rank_probs = weights / weights.sum()
        self.cardinality = cardinality
        self.cdf = np.cumsum(rank_probs)
        self.rank_to_id = rng.permutation(cardinality)
        self.probs = np.empty(cardinality)
        self.probs[self.rank_to_id] = rank_probs  # probability of each value id

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        ranks = np.minimum(
            np.searchsorted(self.cdf, rng.random(size), side="right"), self.cardinality - 1
        )
        return self.rank_to_id[ranks]

    def centred(self, table: np.ndarray) -> np.ndarray:
        """``table`` (card, ...) minus its mean under the value distribution."""
        return table - np.tensordot(self.probs, table, axes=1)


class SyntheticCTRTask:
    """A synthetic CTR world: fields, planted effects and the calibrated bias (see module doc).

    Args:
        config: The task's parameters; ``config.seed`` fixes every parameter.

    Example::

        task = SyntheticCTRTask(SyntheticCTRConfig(seed=0))
        train, test = task.sample(200_000, seed=1), task.sample(100_000, seed=2)
        roc_auc_score(test.labels, test.probability)          # the oracle AUC
    """

    def __init__(self, config: SyntheticCTRConfig | None = None) -> None:
        self.config = config = SyntheticCTRConfig() if config is None else config
        rng = np.random.default_rng([config.seed, 0])
        nu, ns, na, nm = (
            config.num_user_fields,
            config.num_scene_fields,
            config.num_ad_fields,
            config.num_multi_fields,
        )
        self.groups = ("user",) * nu + ("scene",) * ns + ("ad",) * na + ("user_multi",) * nm
        names = tuple(f"f{i + 1}" for i in range(config.num_fields))
        self.single_fields = names[: config.num_single_fields]
        self.multi_fields = names[config.num_single_fields :]
        log_card = rng.uniform(
            np.log(config.min_cardinality), np.log(config.max_cardinality + 1), config.num_fields
        )
        self.cardinalities = np.clip(
            np.floor(np.exp(log_card)).astype(np.int64),
            config.min_cardinality,
            config.max_cardinality,
        )
        exponents = rng.uniform(config.zipf_min, config.zipf_max, config.num_fields)
        self.fields = [
            _Field(rng, int(c), float(s))
            for c, s in zip(self.cardinalities, exponents, strict=True)
        ]
        self.salt = rng.integers(0, 2**62, config.num_fields)
        self.first_order = [f.centred(rng.standard_normal(f.cardinality)) for f in self.fields]
        user = [i for i, g in enumerate(self.groups) if g in ("user", "user_multi")]
        other = [i for i, g in enumerate(self.groups) if g in ("scene", "ad")]
        self.pairs = _draw_pairs(rng, user, other, config.num_pairs)
        k = config.latent_dim
        self.latent = {
            f: self.fields[f].centred(
                rng.standard_normal((self.fields[f].cardinality, k)) / np.sqrt(k)
            )
            for f in sorted({f for p in self.pairs for f in p})
        }
        everything = list(range(config.num_fields))
        self.triples = [
            tuple(sorted(rng.choice(everything, 3, replace=False).tolist()))
            for _ in range(config.num_triples)
        ]
        self.triple_tables = {
            f: self.fields[f].centred(rng.standard_normal(self.fields[f].cardinality))
            for f in sorted({f for t in self.triples for f in t})
        }
        self.type_scores = {
            f: rng.standard_normal((self.fields[f].cardinality, config.num_types)) for f in other
        }
        self.type_offsets = rng.standard_normal(config.num_types)
        self.type_pairs = [
            _draw_pairs(rng, user, other, config.num_type_pairs) for _ in range(config.num_types)
        ]
        self.type_latent = [
            {
                f: self.fields[f].centred(
                    rng.standard_normal((self.fields[f].cardinality, k)) / np.sqrt(k)
                )
                for f in sorted({f for p in pairs for f in p})
            }
            for pairs in self.type_pairs
        ]
        # non-product pair families: their own stream, so "product" tasks are unchanged
        family_rng = np.random.default_rng([config.seed, 3])
        self.pair_effects = [self._draw_effect(family_rng, p, None) for p in self.pairs]
        self.type_effects = [
            [self._draw_effect(family_rng, p, t) for p in pairs]
            for t, pairs in enumerate(self.type_pairs)
        ]
        # calibration: scales of the three parts and the bias
        self.alpha, self.beta, self.gamma, self.bias = 1.0, 1.0, 1.0, 0.0
        parts = self._parts(
            *self._draw_features(np.random.default_rng([config.seed, 1]), config.calibration_rows)
        )
        first, inter, typed, type_probs, types = parts
        self.alpha = _scale(first, config.first_order_std)
        self.beta = _scale(inter, config.interaction_std) if config.interactions else 0.0
        typed_true = typed[np.arange(types.shape[0]), types]
        self.gamma = _scale(typed_true, config.type_std) if config.interactions else 0.0
        logit = self.alpha * first + self.beta * inter + self.gamma * typed_true
        self.bias = _solve_bias(logit, config.base_rate)

    @property
    def schema(self) -> CTRSchema:
        """The cvr schema of `SyntheticCTRData.write` files (fields ``f1..f{F+M}``)."""
        fields = range(1, self.config.num_fields + 1)
        multi = tuple(range(self.config.num_single_fields + 1, self.config.num_fields + 1))
        return cvr_schema(fields, multi)

    def sparse_id(self, field: int, ids: np.ndarray) -> np.ndarray:
        """Raw feature ids of value ids ``ids`` of field ``field``: a salted 64-bit mix, < 1e15."""
        x = (ids.astype(np.uint64) + np.uint64(self.salt[field])) & _MASK64
        return (_splitmix64(x) % np.uint64(_SPARSE_RANGE)).astype(np.int64)

    def _draw_effect(
        self, rng: np.random.Generator, pair: tuple[int, int], t: int | None
    ) -> dict[str, Any]:
        """The parameters of one pair term (``t``: its type, ``None`` for a planted pair)."""
        config = self.config
        family = config.interaction
        if family == "mixed":
            family = _PAIR_FAMILIES[int(rng.integers(len(_PAIR_FAMILIES)))]
        f, g = pair
        target = 1.0 / config.latent_dim  # variance of a product pair
        if family == "product":
            latent = self.latent if t is None else self.type_latent[t]
            return {"family": "product", "u": latent[f], "v": latent[g]}
        pf, pg = self.fields[f].probs, self.fields[g].probs
        if family == "lookup":
            buckets = []
            for field, probs in ((f, pf), (g, pg)):
                size = min(self.fields[field].cardinality, config.lookup_buckets)
                bucket = rng.integers(0, size, self.fields[field].cardinality)
                buckets.append((bucket, np.bincount(bucket, weights=probs, minlength=size)))
            (bf, qf), (bg, qg) = buckets
            table = rng.standard_normal((qf.shape[0], qg.shape[0]))
            table = table - (qf @ table)[None, :]  # centre each column under q_f
            table = table - (table @ qg)[:, None]  # and each row under q_g
            variance = float(qf @ table**2 @ qg)
            table *= np.sqrt(target / variance) if variance > 0 else 0.0
            # the pair term as value-indexed tables: row table[bucket_f] picked at bucket_g
            return {"family": "lookup", "rows": table[bf], "bucket_g": bg}
        j, q = config.num_conjunctions, config.conjunction_fraction
        sets_f = rng.random((self.fields[f].cardinality, j)) < q
        sets_g = rng.random((self.fields[g].cardinality, j)) < q
        a = sets_f - pf @ sets_f  # (card_f, J) centred indicators 1[x in S] - P(S)
        b = sets_g - pg @ sets_g
        c = rng.standard_normal(j)
        # Var = sum_jl c_j c_l E[a_j a_l] E[b_j b_l] (independent fields, zero means)
        variance = float(c @ ((a.T * pf) @ a * ((b.T * pg) @ b)) @ c)
        c *= np.sqrt(target / variance) if variance > 0 else 0.0
        return {"family": "conjunction", "u": a * c, "v": b}

    def _pair_term(self, effect: dict[str, Any], pair: tuple[int, int], ids, multi) -> np.ndarray:
        """(n,) value of one pair term at the rows (bag means for multi-valued fields)."""
        f, g = pair
        if effect["family"] in ("product", "conjunction"):
            return np.sum(
                self._field_mean(effect["u"], f, ids, multi)
                * self._field_mean(effect["v"], g, ids, multi),
                axis=1,
            )
        # lookup: L[x_f, x_g] = rows[x_f, bucket_g[x_g]]; g is a scene or ad field
        # (single-valued), f may be multi-valued: the mean over its bag
        num_single = self.config.num_single_fields
        column = effect["bucket_g"][ids[:, g]]
        if f < num_single:
            return effect["rows"][ids[:, f], column]
        values, offsets = multi[f - num_single]
        lengths = np.diff(offsets)
        per_value = effect["rows"][values, np.repeat(column, lengths)]
        return np.add.reduceat(per_value, offsets[:-1]) / lengths

    # ------------------------------------------------------------------ sampling
    def _draw_features(self, rng: np.random.Generator, n: int):
        config = self.config
        ids = (
            np.stack([self.fields[f].draw(rng, n) for f in range(config.num_single_fields)], axis=1)
            if config.num_single_fields
            else np.zeros((n, 0), np.int64)
        )
        multi = []
        for j in range(config.num_multi_fields):
            f = config.num_single_fields + j
            lengths = np.minimum(
                1 + rng.poisson(config.mean_multi_length - 1, n), config.max_multi_length
            )
            offsets = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            multi.append((self.fields[f].draw(rng, int(offsets[-1])), offsets))
        uniform = rng.random(n)  # for the type draw
        return ids.astype(np.int64), multi, uniform

    def _field_mean(self, table: np.ndarray, f: int, ids: np.ndarray, multi) -> np.ndarray:
        """(n, ...) value of ``table`` at field ``f`` (the bag mean for a multi-valued field)."""
        num_single = self.config.num_single_fields
        if f < num_single:
            return table[ids[:, f]]
        values, offsets = multi[f - num_single]
        total = np.add.reduceat(table[values], offsets[:-1], axis=0)  # every bag is non-empty
        lengths = np.diff(offsets).reshape(-1, *([1] * (table.ndim - 1)))
        return total / lengths

    def _parts(self, ids: np.ndarray, multi, uniform: np.ndarray):
        """First-order (n,), interaction (n,), type-specific (n, T) parts; pi (n, T); t (n,)."""
        config, n = self.config, ids.shape[0]
        first = np.zeros(n)
        for f in range(config.num_fields):
            first += self._field_mean(self.first_order[f], f, ids, multi)
        inter = np.zeros(n)
        for pair, effect in zip(self.pairs, self.pair_effects, strict=True):
            inter += self._pair_term(effect, pair, ids, multi)
        for triple in self.triples:
            inter += np.prod(
                [self._field_mean(self.triple_tables[f], f, ids, multi) for f in triple], axis=0
            )
        score = np.zeros((n, config.num_types))
        for f, table in self.type_scores.items():
            score += table[ids[:, f]]
        score *= config.type_temperature / np.sqrt(max(len(self.type_scores), 1))
        score -= score.max(axis=1, keepdims=True)
        type_probs = np.exp(score)
        type_probs /= type_probs.sum(axis=1, keepdims=True)
        types = np.minimum(
            (np.cumsum(type_probs, axis=1) < uniform[:, None]).sum(axis=1), config.num_types - 1
        )
        typed = np.tile(self.type_offsets, (n, 1))
        for t in range(config.num_types):
            for pair, effect in zip(self.type_pairs[t], self.type_effects[t], strict=True):
                typed[:, t] += self._pair_term(effect, pair, ids, multi)
        return first, inter, typed, type_probs, types.astype(np.int64)

    def sample(self, num_rows: int, seed: int = 0) -> SyntheticCTRData:
        """Draw ``num_rows`` rows (features, types, labels) and their oracle probabilities.

        Args:
            num_rows: Rows n.
            seed: Seed of the rows (the task's parameters come from ``config.seed``); the same
                ``(config, num_rows, seed)`` gives identical data.
        """
        if isinstance(num_rows, bool) or not isinstance(num_rows, int) or num_rows < 1:
            raise ValueError(f"num_rows: expected an int >= 1, got {num_rows!r}")
        rng = np.random.default_rng([self.config.seed, 2, seed])
        ids, multi, uniform = self._draw_features(rng, num_rows)
        first, inter, typed, type_probs, types = self._parts(ids, multi, uniform)
        base = self.bias + self.alpha * first
        logits = base[:, None] + self.beta * inter[:, None] + self.gamma * typed  # (n, T)
        probs_all = _sigmoid(logits)
        probability = probs_all[np.arange(num_rows), types]
        labels = (rng.random(num_rows) < probability).astype(np.float32)
        return SyntheticCTRData(
            ids=ids,
            multi_values=tuple(multi),
            types=types,
            labels=labels,
            probability=probability,
            probability_hidden_type=np.sum(type_probs * probs_all, axis=1),
            first_order_probability=_sigmoid(base),
            type_probabilities=type_probs,
            task=self,
        )


def synthetic_ctr(
    num_rows: int, *, seed: int = 0, task_seed: int = 0, **config: object
) -> SyntheticCTRData:
    """``SyntheticCTRTask(SyntheticCTRConfig(seed=task_seed, **config)).sample(num_rows, seed)``."""
    return SyntheticCTRTask(SyntheticCTRConfig(seed=task_seed, **config)).sample(num_rows, seed)  # type: ignore[arg-type]


def _draw_pairs(
    rng: np.random.Generator, left: list[int], right: list[int], count: int
) -> list[tuple[int, int]]:
    """``count`` distinct (left, right) field pairs (fewer if there are not that many)."""
    candidates = [(f, g) for f in left for g in right]
    if not candidates or count == 0:
        return []
    chosen = rng.choice(len(candidates), min(count, len(candidates)), replace=False)
    return [candidates[i] for i in sorted(chosen.tolist())]


def _splitmix64(x: np.ndarray) -> np.ndarray:
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _scale(x: np.ndarray, target: float) -> float:
    std = float(np.std(x))
    return target / std if std > 0 else 0.0


def _solve_bias(logit: np.ndarray, rate: float) -> float:
    """``b`` with ``mean(sigmoid(logit + b)) == rate`` (bisection; the mean is increasing in b)."""
    low, high = -40.0, 40.0
    for _ in range(100):
        mid = 0.5 * (low + high)
        if float(np.mean(_sigmoid(logit + mid))) < rate:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)
