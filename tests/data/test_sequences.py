"""Tests of the seq2seq toy tasks (`perceptrons.data.sequences`): exact task definitions."""

from __future__ import annotations

import pytest
import torch

from perceptrons.data import sequences as seq

SAME_LENGTH = ("copy", "reverse", "sort", "histogram")


def symbols(tokens: torch.Tensor, length: int) -> list[int]:
    return [t - seq.NUM_SPECIAL_TOKENS for t in tokens[:length].tolist()]


@pytest.mark.parametrize("task", SAME_LENGTH)
def test_padding_lengths_and_token_range(task: str) -> None:
    data = seq.make_sequence_task(task, 200, min_length=3, max_length=11, vocab_size=5, generator=0)
    assert data.source.dtype == data.target.dtype == torch.long
    assert data.source.shape == data.target.shape == (200, 11)
    assert int(data.source_lengths.min()) == 3 and int(data.source_lengths.max()) == 11
    assert torch.equal(data.source_lengths, data.target_lengths)
    positions = torch.arange(11)
    for tokens, lengths in ((data.source, data.source_lengths), (data.target, data.target_lengths)):
        real = positions < lengths[:, None]
        assert torch.equal(tokens == seq.PAD, ~real)
        assert bool((tokens[real] >= seq.NUM_SPECIAL_TOKENS).all())
        assert bool((tokens < data.num_tokens).all())
        assert not bool((tokens == seq.MASK).any())
    assert torch.equal(data.source_padding_mask, data.source == seq.PAD)
    assert torch.equal(data.target_padding_mask, data.target == seq.PAD)
    assert data.max_source_length == data.max_target_length == 11


def test_copy_reverse_sort_definitions() -> None:
    kwargs = {"min_length": 1, "max_length": 9, "vocab_size": 4, "generator": 3}
    copy, reverse, sort = (
        seq.copy_task(50, **kwargs),
        seq.reverse_task(50, **kwargs),
        seq.sort_task(50, **kwargs),
    )
    assert torch.equal(copy.source, reverse.source) and torch.equal(copy.source, sort.source)
    assert torch.equal(copy.target, copy.source)
    for i in range(50):
        n = int(copy.source_lengths[i])
        x = symbols(copy.source[i], n)
        assert symbols(reverse.target[i], n) == x[::-1]
        assert symbols(sort.target[i], n) == sorted(x)
    assert copy.num_tokens == seq.NUM_SPECIAL_TOKENS + 4


def test_histogram_counts_each_tokens_occurrences() -> None:
    data = seq.histogram_task(60, min_length=2, max_length=10, vocab_size=3, generator=1)
    assert data.num_tokens == seq.NUM_SPECIAL_TOKENS + 10  # counts 1..max_length
    for i in range(60):
        n = int(data.source_lengths[i])
        x = symbols(data.source[i], n)
        assert symbols(data.target[i], n) == [x.count(v) - 1 for v in x]


def test_lexicon() -> None:
    lex = seq.make_lexicon(
        20, 7, fertility_prob=0.5, adjective_fraction=0.2, noun_fraction=0.3, generator=0
    )
    assert lex.vocab_size == 20 and lex.target_vocab_size == 7
    assert int((lex.word_class == seq.ADJECTIVE).sum()) == 4
    assert int((lex.word_class == seq.NOUN).sum()) == 6
    assert bool((lex.translations[:, 0] >= 0).all()) and bool((lex.translations < 7).all())
    assert set(lex.fertility.tolist()) == {1, 2}
    same = seq.make_lexicon(
        20, 7, fertility_prob=0.5, adjective_fraction=0.2, noun_fraction=0.3, generator=0
    )
    assert torch.equal(lex.translations, same.translations)
    with pytest.raises(ValueError, match="adjective_fraction"):
        seq.make_lexicon(4, 4, adjective_fraction=0.75, noun_fraction=0.5, generator=0)
    with pytest.raises(ValueError, match="fertility_prob"):
        seq.make_lexicon(4, 4, fertility_prob=1.5, generator=0)


def reference_translation(x: list[int], lex: seq.Lexicon) -> list[int]:
    """Left-to-right reference: swap adjective-noun pairs, then expand by the lexicon."""
    cls = lex.word_class.tolist()
    order, i = [], 0
    while i < len(x):
        if i + 1 < len(x) and cls[x[i]] == seq.ADJECTIVE and cls[x[i + 1]] == seq.NOUN:
            order += [x[i + 1], x[i]]
            i += 2
        else:
            order.append(x[i])
            i += 1
    return [t for w in order for t in lex.translations[w].tolist() if t >= 0]


def test_translation_matches_the_definition() -> None:
    lex = seq.make_lexicon(12, 9, fertility_prob=0.3, generator=5)
    data = seq.translation_task(300, lex, min_length=2, max_length=12, generator=6)
    fert = lex.fertility
    swaps = 0
    for i in range(300):
        n = int(data.source_lengths[i])
        x = symbols(data.source[i], n)
        m = int(data.target_lengths[i])
        assert m == int(fert[torch.tensor(x)].sum())  # fertility
        assert n <= m <= 2 * n
        y = symbols(data.target[i], m)
        assert y == reference_translation(x, lex)
        assert bool((data.target[i, m:] == seq.PAD).all())
        swaps += sum(
            lex.word_class[a] == seq.ADJECTIVE and lex.word_class[b] == seq.NOUN
            for a, b in zip(x, x[1:], strict=False)
        )
    assert swaps > 0  # the sample exercises the reordering
    assert data.max_target_length == 24
    assert data.num_tokens == seq.NUM_SPECIAL_TOKENS + 12


def test_translation_is_monotone_without_adjective_noun_pairs() -> None:
    lex = seq.make_lexicon(10, 10, fertility_prob=0.0, adjective_fraction=0.0, generator=0)
    data = seq.translation_task(40, lex, generator=1)
    assert torch.equal(data.source_lengths, data.target_lengths)
    table = lex.translations[:, 0] + seq.NUM_SPECIAL_TOKENS
    real = data.source != seq.PAD
    expected = table[(data.source - seq.NUM_SPECIAL_TOKENS).clamp_min(0)].masked_fill(~real, 0)
    assert torch.equal(data.target, expected)


@pytest.mark.parametrize("task", seq.SEQUENCE_TASKS)
def test_seeded_and_deterministic(task: str) -> None:
    lex = seq.make_lexicon(generator=0)

    def make(seed):
        return seq.make_sequence_task(task, 30, generator=seed, lexicon=lex)

    a, b, c = make(7), make(torch.Generator().manual_seed(7)), make(8)
    assert torch.equal(a.source, b.source) and torch.equal(a.target, b.target)
    assert not torch.equal(a.source[:, :8], c.source[:, :8])


def test_split_trims_padding() -> None:
    data = seq.sort_task(10, min_length=2, max_length=8, generator=0)
    first, rest = data.split(4)
    assert len(first) == 4 and len(rest) == 6
    assert first.source.shape[1] == int(data.source_lengths[:4].max())
    assert torch.equal(rest.target, data.target[4:, : rest.target.shape[1]])
    with pytest.raises(ValueError, match="num_first"):
        data.split(10)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_length"):
        seq.sort_task(3, min_length=5, max_length=4, generator=0)
    with pytest.raises(ValueError, match="num_samples"):
        seq.copy_task(0, generator=0)
    with pytest.raises(TypeError, match="generator"):
        seq.copy_task(3, generator=1.5)
    with pytest.raises(ValueError, match="task"):
        seq.make_sequence_task("majority", 3, generator=0)
    with pytest.raises(ValueError, match="lexicon"):
        seq.make_sequence_task("translation", 3, generator=0)
