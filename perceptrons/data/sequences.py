"""Seq2seq toy tasks for non-autoregressive models: copy, reverse, sort, histogram, translation.

Toy tasks for AMLP (Jiang et al. 2023, arXiv:2310.09512); the tasks are our choice, since the
paper's machine-translation and speech benchmarks are too large for a CPU. They separate
what a fixed number of attention "slots" can and cannot do: sort and histogram need only global
statistics of the source, the toy translation is local, reverse and copy need every target
position to read one specific source position (permutation routing).

Dimension legend: ``n`` samples, ``S`` padded source length, ``T`` padded target length.

Token convention (shared by every task and by `perceptrons.models.amlp`):

* ``PAD = 0`` fills every position at or after a sequence's length;
* ``MASK = 1`` is the decoder's "unknown token" (never produced by a generator);
* content symbol ``k`` (``0 <= k``) has token id ``NUM_SPECIAL_TOKENS + k`` (= ``k + 2``).

There is no BOS/EOS: non-autoregressive models predict the target length instead.

Task definitions (``x`` the source symbols of one sample, ``L`` its length, drawn uniformly in
``[min_length, max_length]``; symbols uniform in ``[0, vocab_size)``):

* ``copy``: ``y = x``.
* ``reverse``: ``y[i] = x[L - 1 - i]``.
* ``sort``: ``y`` is ``x`` sorted in ascending order (ties keep their multiplicity).
* ``histogram``: ``y[i] = #{j : x[j] = x[i]} - 1``, the number of occurrences of the token at
  position ``i`` in the whole sequence, as the symbol ``count - 1`` (so the target alphabet has
  ``max_length`` symbols); per-position counting, as the "histogram" task of RASP
  (Weiss et al. 2021).
* ``translation``: a monotone toy translation through a fixed random `Lexicon`. Every source word
  has a class (adjective, noun or other) and a translation of one or two target words
  (fertility 1 or 2). Reading left to right, an adjective immediately followed by a noun is
  swapped with it (a local "adjective-noun" reordering, as English to French), then every word
  is replaced by its translation::

      y = lex(x[p(0)]) ++ lex(x[p(1)]) ++ ... ++ lex(x[p(L-1)]),
      p(i) = i + 1 if (x[i], x[i+1]) is (adjective, noun); i - 1 if (x[i-1], x[i]) is; else i.

  Adjective-noun pairs cannot overlap (a noun never starts a pair), so ``p`` is a well-defined
  permutation that moves no word by more than one position. The target length is
  ``sum_i fertility(x[i])``, between ``L`` and ``2 L``.

Every generator is vectorised over samples (no Python loop per sample) and takes an explicit
``generator`` (a `torch.Generator` or an int seed); the same seed gives identical tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

import torch
from torch import Tensor

__all__ = [
    "MASK",
    "NUM_SPECIAL_TOKENS",
    "PAD",
    "SEQUENCE_TASKS",
    "Lexicon",
    "Seq2SeqData",
    "SequenceTask",
    "copy_task",
    "histogram_task",
    "make_lexicon",
    "make_sequence_task",
    "reverse_task",
    "sort_task",
    "translation_task",
]

PAD = 0
MASK = 1
NUM_SPECIAL_TOKENS = 2

SequenceTask: TypeAlias = Literal["copy", "reverse", "sort", "histogram", "translation"]
SEQUENCE_TASKS: tuple[str, ...] = ("copy", "reverse", "sort", "histogram", "translation")

ADJECTIVE, NOUN, OTHER = 1, 2, 0


@dataclass(frozen=True)
class Seq2SeqData:
    """Padded source/target token tensors of a seq2seq task.

    Attributes:
        source: Source token ids ``(n, S)``, int64, ``PAD`` after each length.
        target: Target token ids ``(n, T)``, int64, ``PAD`` after each length.
        source_lengths: Source lengths ``(n,)``, int64, ``>= 1``.
        target_lengths: Target lengths ``(n,)``, int64, ``>= 1``.
        num_tokens: Size of the token id space (specials included): every id is below it.
        max_source_length: Largest possible source length of the generator (``>= S``).
        max_target_length: Largest possible target length of the generator (``>= T``).
    """

    source: Tensor
    target: Tensor
    source_lengths: Tensor
    target_lengths: Tensor
    num_tokens: int
    max_source_length: int
    max_target_length: int

    def __len__(self) -> int:
        return int(self.source.shape[0])

    @property
    def source_padding_mask(self) -> Tensor:
        """``(n, S)`` bool, True at padding (the ``key_padding_mask`` convention of torch)."""
        return self.source == PAD

    @property
    def target_padding_mask(self) -> Tensor:
        """``(n, T)`` bool, True at padding."""
        return self.target == PAD

    def split(self, num_first: int) -> tuple[Seq2SeqData, Seq2SeqData]:
        """The first ``num_first`` samples and the rest (padding trimmed to each part).

        Raises:
            ValueError: ``num_first`` not in ``[1, n - 1]``.
        """
        if not 1 <= num_first < len(self):
            raise ValueError(f"num_first: expected an int in [1, {len(self) - 1}], got {num_first}")
        return self._take(slice(0, num_first)), self._take(slice(num_first, None))

    def _take(self, index: slice) -> Seq2SeqData:
        s_len, t_len = self.source_lengths[index], self.target_lengths[index]
        return Seq2SeqData(
            source=self.source[index, : int(s_len.max())].clone(),
            target=self.target[index, : int(t_len.max())].clone(),
            source_lengths=s_len.clone(),
            target_lengths=t_len.clone(),
            num_tokens=self.num_tokens,
            max_source_length=self.max_source_length,
            max_target_length=self.max_target_length,
        )


@dataclass(frozen=True)
class Lexicon:
    """A fixed random lexicon of the toy translation (see the module docstring).

    Attributes:
        translations: ``(vocab_size, 2)`` int64 target symbols of each source symbol; the second
            entry is ``-1`` for fertility 1.
        word_class: ``(vocab_size,)`` int64: 1 adjective, 2 noun, 0 other.
        target_vocab_size: Number of target symbols.
    """

    translations: Tensor
    word_class: Tensor
    target_vocab_size: int

    @property
    def vocab_size(self) -> int:
        """Number of source symbols."""
        return int(self.translations.shape[0])

    @property
    def fertility(self) -> Tensor:
        """``(vocab_size,)`` int64: number of target words of each source symbol (1 or 2)."""
        return 1 + (self.translations[:, 1] >= 0).long()


# ------------------------------------------------------------------------------ helpers
def _as_generator(generator: object) -> torch.Generator:
    """A `torch.Generator` as is, or a fresh CPU generator seeded with an int."""
    if isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, int) and not isinstance(generator, bool):
        return torch.Generator().manual_seed(generator)
    raise TypeError(
        f"generator: expected a torch.Generator or an int seed, got {type(generator).__name__}"
    )


def _check_sizes(num_samples: int, min_length: int, max_length: int, vocab_size: int) -> None:
    for name, value, low in (
        ("num_samples", num_samples, 1),
        ("min_length", min_length, 1),
        ("vocab_size", vocab_size, 1),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < min_length:
        raise ValueError(
            f"max_length: expected an int >= min_length={min_length}, got {max_length!r}"
        )


def _random_symbols(
    num_samples: int, min_length: int, max_length: int, vocab_size: int, gen: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """Symbols ``(n, S)`` (-1 at padding), lengths ``(n,)``, real-position mask ``(n, S)``."""
    lengths = torch.randint(min_length, max_length + 1, (num_samples,), generator=gen)
    width = int(lengths.max())
    symbols = torch.randint(0, vocab_size, (num_samples, width), generator=gen)
    real = torch.arange(width) < lengths[:, None]
    return symbols.masked_fill(~real, -1), lengths, real


def _tokens(symbols: Tensor, real: Tensor) -> Tensor:
    """Symbols -> token ids, ``PAD`` where not ``real``."""
    return (symbols + NUM_SPECIAL_TOKENS).masked_fill(~real, PAD)


def _same_length_task(
    symbols: Tensor,
    target_symbols: Tensor,
    lengths: Tensor,
    real: Tensor,
    num_symbols: int,
    max_length: int,
) -> Seq2SeqData:
    return Seq2SeqData(
        source=_tokens(symbols, real),
        target=_tokens(target_symbols, real),
        source_lengths=lengths,
        target_lengths=lengths.clone(),
        num_tokens=NUM_SPECIAL_TOKENS + num_symbols,
        max_source_length=max_length,
        max_target_length=max_length,
    )


# ------------------------------------------------------------------------------ the tasks
def copy_task(
    num_samples: int,
    *,
    min_length: int = 8,
    max_length: int = 16,
    vocab_size: int = 16,
    generator: torch.Generator | int,
) -> Seq2SeqData:
    """Copy: target = source. Lengths uniform in ``[min_length, max_length]``.

    Returns:
        `Seq2SeqData` with ``source``/``target`` ``(num_samples, S)``.
    """
    _check_sizes(num_samples, min_length, max_length, vocab_size)
    symbols, lengths, real = _random_symbols(
        num_samples, min_length, max_length, vocab_size, _as_generator(generator)
    )
    return _same_length_task(symbols, symbols.clone(), lengths, real, vocab_size, max_length)


def reverse_task(
    num_samples: int,
    *,
    min_length: int = 8,
    max_length: int = 16,
    vocab_size: int = 16,
    generator: torch.Generator | int,
) -> Seq2SeqData:
    """Reverse: ``target[i] = source[L - 1 - i]`` for ``i < L``.

    Returns:
        `Seq2SeqData` with ``source``/``target`` ``(num_samples, S)``.
    """
    _check_sizes(num_samples, min_length, max_length, vocab_size)
    symbols, lengths, real = _random_symbols(
        num_samples, min_length, max_length, vocab_size, _as_generator(generator)
    )
    index = (lengths[:, None] - 1 - torch.arange(symbols.shape[1])).clamp_min(0)
    target = symbols.gather(1, index).masked_fill(~real, -1)
    return _same_length_task(symbols, target, lengths, real, vocab_size, max_length)


def sort_task(
    num_samples: int,
    *,
    min_length: int = 8,
    max_length: int = 16,
    vocab_size: int = 16,
    generator: torch.Generator | int,
) -> Seq2SeqData:
    """Sort: target = source sorted ascending (our choice: vocabulary <= 16).

    Returns:
        `Seq2SeqData` with ``source``/``target`` ``(num_samples, S)``.
    """
    _check_sizes(num_samples, min_length, max_length, vocab_size)
    symbols, lengths, real = _random_symbols(
        num_samples, min_length, max_length, vocab_size, _as_generator(generator)
    )
    target = symbols.masked_fill(~real, vocab_size).sort(dim=1).values.masked_fill(~real, -1)
    return _same_length_task(symbols, target, lengths, real, vocab_size, max_length)


def histogram_task(
    num_samples: int,
    *,
    min_length: int = 8,
    max_length: int = 16,
    vocab_size: int = 16,
    generator: torch.Generator | int,
) -> Seq2SeqData:
    """Histogram: ``target[i]`` = (number of occurrences of ``source[i]`` in the source) - 1.

    The target alphabet has ``max_length`` symbols (counts 1..max_length), so ``num_tokens`` is
    ``NUM_SPECIAL_TOKENS + max(vocab_size, max_length)``.

    Returns:
        `Seq2SeqData` with ``source``/``target`` ``(num_samples, S)``.
    """
    _check_sizes(num_samples, min_length, max_length, vocab_size)
    symbols, lengths, real = _random_symbols(
        num_samples, min_length, max_length, vocab_size, _as_generator(generator)
    )
    counts = torch.zeros(num_samples, vocab_size + 1, dtype=torch.long)
    counts.scatter_add_(1, symbols.clamp_min(0), real.long())  # pads counted in no bin they read
    target = counts.gather(1, symbols.clamp_min(0)) - 1
    return _same_length_task(
        symbols,
        target.masked_fill(~real, -1),
        lengths,
        real,
        max(vocab_size, max_length),
        max_length,
    )


def make_lexicon(
    vocab_size: int = 16,
    target_vocab_size: int = 16,
    *,
    fertility_prob: float = 0.25,
    adjective_fraction: float = 0.25,
    noun_fraction: float = 0.25,
    generator: torch.Generator | int,
) -> Lexicon:
    """A random `Lexicon` for `translation_task`.

    ``round(adjective_fraction * vocab_size)`` random source symbols are adjectives and
    ``round(noun_fraction * vocab_size)`` others are nouns. Each source symbol has fertility 2
    with probability ``fertility_prob`` (else 1) and translates to independent uniform target
    symbols.

    Raises:
        ValueError: sizes < 1, probabilities outside [0, 1], or more adjectives and nouns than
            symbols.
    """
    for name, value in (("vocab_size", vocab_size), ("target_vocab_size", target_vocab_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    for name, value in (
        ("fertility_prob", fertility_prob),
        ("adjective_fraction", adjective_fraction),
        ("noun_fraction", noun_fraction),
    ):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}: expected a probability in [0, 1], got {value!r}")
    num_adj, num_noun = round(adjective_fraction * vocab_size), round(noun_fraction * vocab_size)
    if num_adj + num_noun > vocab_size:
        raise ValueError(
            "adjective_fraction + noun_fraction: more adjectives and nouns "
            f"({num_adj} + {num_noun}) than symbols ({vocab_size})"
        )
    gen = _as_generator(generator)
    order = torch.randperm(vocab_size, generator=gen)
    word_class = torch.full((vocab_size,), OTHER, dtype=torch.long)
    word_class[order[:num_adj]] = ADJECTIVE
    word_class[order[num_adj : num_adj + num_noun]] = NOUN
    translations = torch.randint(0, target_vocab_size, (vocab_size, 2), generator=gen)
    single = torch.rand(vocab_size, generator=gen) >= fertility_prob
    translations[:, 1] = translations[:, 1].masked_fill(single, -1)
    return Lexicon(translations, word_class, target_vocab_size)


def translation_task(
    num_samples: int,
    lexicon: Lexicon,
    *,
    min_length: int = 8,
    max_length: int = 16,
    generator: torch.Generator | int,
) -> Seq2SeqData:
    """Monotone toy translation through ``lexicon`` (definition in the module docstring).

    Returns:
        `Seq2SeqData` with ``source`` ``(num_samples, S)``, ``target`` ``(num_samples, T)``,
        ``T <= 2 S``; ``num_tokens = NUM_SPECIAL_TOKENS + max(source, target vocabulary)`` and
        ``max_target_length = 2 max_length``.
    """
    if not isinstance(lexicon, Lexicon):
        raise TypeError(f"lexicon: expected a Lexicon, got {type(lexicon).__name__}")
    _check_sizes(num_samples, min_length, max_length, lexicon.vocab_size)
    symbols, lengths, real = _random_symbols(
        num_samples, min_length, max_length, lexicon.vocab_size, _as_generator(generator)
    )
    width = symbols.shape[1]
    cls = lexicon.word_class[symbols.clamp_min(0)].masked_fill(~real, OTHER)
    swap = torch.zeros_like(real)
    swap[:, :-1] = (cls[:, :-1] == ADJECTIVE) & (cls[:, 1:] == NOUN)
    swapped_in = torch.zeros_like(real)  # position i is the noun of a pair starting at i - 1
    swapped_in[:, 1:] = swap[:, :-1]
    order = torch.arange(width) + swap.long() - swapped_in.long()
    reordered = symbols.gather(1, order)  # pads stay in place: a pair never crosses the length
    pieces = lexicon.translations[reordered.clamp_min(0)]  # (n, S, 2)
    valid = (pieces >= 0) & real[:, :, None]
    flat, valid = pieces.reshape(num_samples, 2 * width), valid.reshape(num_samples, 2 * width)
    # stable compaction of the valid pieces to the left: sort by (invalid, position)
    key = (~valid).long() * (2 * width) + torch.arange(2 * width)
    perm = key.argsort(dim=1)
    target_lengths = valid.sum(dim=1)
    out_width = int(target_lengths.max())
    target = flat.gather(1, perm)[:, :out_width]
    target_real = torch.arange(out_width) < target_lengths[:, None]
    num_symbols = max(lexicon.vocab_size, lexicon.target_vocab_size)
    return Seq2SeqData(
        source=_tokens(symbols, real),
        target=_tokens(target, target_real),
        source_lengths=lengths,
        target_lengths=target_lengths,
        num_tokens=NUM_SPECIAL_TOKENS + num_symbols,
        max_source_length=max_length,
        max_target_length=2 * max_length,
    )


def make_sequence_task(
    task: SequenceTask,
    num_samples: int,
    *,
    min_length: int = 8,
    max_length: int = 16,
    vocab_size: int = 16,
    generator: torch.Generator | int,
    lexicon: Lexicon | None = None,
) -> Seq2SeqData:
    """Any task of `SEQUENCE_TASKS` by name.

    Args:
        task: ``"copy"``, ``"reverse"``, ``"sort"``, ``"histogram"`` or ``"translation"``.
        num_samples: Number of samples ``n``.
        min_length: Smallest source length.
        max_length: Largest source length.
        vocab_size: Source symbols (ignored by ``"translation"``, which uses the lexicon's).
        generator: `torch.Generator` or int seed of the samples.
        lexicon: The lexicon of ``"translation"`` (required there, ignored elsewhere).

    Raises:
        ValueError: unknown task, or ``"translation"`` without a lexicon.
    """
    if task == "translation":
        if lexicon is None:
            raise ValueError("lexicon: the translation task needs a Lexicon (see make_lexicon)")
        return translation_task(
            num_samples, lexicon, min_length=min_length, max_length=max_length, generator=generator
        )
    makers = {
        "copy": copy_task,
        "reverse": reverse_task,
        "sort": sort_task,
        "histogram": histogram_task,
    }
    if task not in makers:
        raise ValueError(f"task: expected one of {list(SEQUENCE_TASKS)}, got {task!r}")
    return makers[task](
        num_samples,
        min_length=min_length,
        max_length=max_length,
        vocab_size=vocab_size,
        generator=generator,
    )
