"""TensorLoader: coverage, reproducibility, exact position restore, structure, validation."""

from __future__ import annotations

import itertools

import pytest
import torch

from perceptrons.data.loader import TensorLoader


def _ids(batch) -> list[int]:
    return batch[0].tolist() if isinstance(batch, tuple) else batch.tolist()


@pytest.mark.parametrize(("n", "batch_size"), [(1, 1), (10, 3), (12, 4), (7, 10), (50, 7)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_every_sample_once_per_epoch(n, batch_size, shuffle):
    loader = TensorLoader(torch.arange(n), batch_size, shuffle=shuffle, seed=3)
    assert len(loader) == -(-n // batch_size)
    for _ in range(3):
        batches = list(loader)
        assert len(batches) == len(loader)
        assert all(len(b) <= batch_size for b in batches)
        assert sorted(torch.cat(batches).tolist()) == list(range(n))
        if not shuffle:
            assert torch.cat(batches).tolist() == list(range(n))


def test_drop_last():
    loader = TensorLoader(torch.arange(10), 3, drop_last=True)
    assert len(loader) == 3
    batches = list(loader)
    assert [len(b) for b in batches] == [3, 3, 3]
    assert len(set(torch.cat(batches).tolist())) == 9


def test_epochs_differ_and_are_reproducible():
    first = [torch.cat(list(TensorLoader(torch.arange(40), 8, seed=1))) for _ in range(2)]
    assert torch.equal(first[0], first[1])
    loader = TensorLoader(torch.arange(40), 8, seed=1)
    epochs = [torch.cat(list(loader)) for _ in range(3)]
    assert not torch.equal(epochs[0], epochs[1]) and not torch.equal(epochs[1], epochs[2])
    other_seed = torch.cat(list(TensorLoader(torch.arange(40), 8, seed=2)))
    assert not torch.equal(epochs[0], other_seed)


def test_does_not_touch_global_rng():
    state = torch.get_rng_state()
    list(TensorLoader(torch.arange(20), 3))
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("cut", [0, 1, 4, 6, 7, 13, 20])
def test_restore_mid_run_gives_identical_batches(cut):
    def stream(loader):
        while True:
            yield from loader

    reference = TensorLoader(torch.arange(45), 7, seed=9)  # 7 batches per epoch
    expected = list(itertools.islice(stream(reference), cut + 15))
    loader = TensorLoader(torch.arange(45), 7, seed=9)
    consumed = list(itertools.islice(stream(loader), cut))
    state = loader.state_dict()
    assert state == {"epoch": cut // 7, "batch": cut % 7}
    fresh = TensorLoader(torch.arange(45), 7, seed=9)
    fresh.load_state_dict(state)
    rest = list(itertools.islice(stream(fresh), 15))
    assert all(torch.equal(a, b) for a, b in zip(consumed + rest, expected, strict=True))


def test_state_names_the_next_batch_while_a_batch_is_held():
    loader = TensorLoader(torch.arange(6), 2)
    it = iter(loader)
    next(it)
    assert loader.state_dict() == {"epoch": 0, "batch": 1}
    next(it), next(it)
    assert loader.state_dict() == {"epoch": 1, "batch": 0}
    with pytest.raises(StopIteration):
        next(it)


def test_structures_are_preserved():
    x, y = torch.randn(9, 2, 3), torch.arange(9)
    (xb, yb), *_ = TensorLoader((x, y), 4, seed=0)
    assert xb.shape == (4, 2, 3) and yb.shape == (4,)
    assert all(torch.equal(x[i], xb[k]) for k, i in enumerate(yb.tolist()))
    batch = next(iter(TensorLoader({"x": x, "y": y}, 4)))
    assert set(batch) == {"x", "y"} and torch.equal(x[batch["y"]], batch["x"])
    batch = next(iter(TensorLoader([x, y], 5)))
    assert isinstance(batch, list) and batch[0].shape == (5, 2, 3)
    assert isinstance(next(iter(TensorLoader(x, 5))), torch.Tensor)


def test_without_shuffle_batches_are_views():
    x = torch.randn(8, 3)
    batch = next(iter(TensorLoader(x, 4, shuffle=False)))
    assert batch.data_ptr() == x.data_ptr()


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\(5, 2\).*\(4,\)"):
        TensorLoader((torch.zeros(5, 2), torch.zeros(4)), 2)
    with pytest.raises(ValueError, match="batch_size"):
        TensorLoader(torch.zeros(5), 0)
    with pytest.raises(ValueError, match="batch_size"):
        TensorLoader(torch.zeros(5), 2.0)
    with pytest.raises(ValueError, match="n = 0"):
        TensorLoader(torch.zeros(0, 3), 2)
    with pytest.raises(TypeError, match=r"tensors\[1\]"):
        TensorLoader((torch.zeros(5), [1, 2, 3, 4, 5]), 2)
    with pytest.raises(ValueError, match="0-dim"):
        TensorLoader(torch.tensor(1.0), 1)
    loader = TensorLoader(torch.zeros(5), 2)
    with pytest.raises(ValueError, match="batch"):
        loader.load_state_dict({"epoch": 0, "batch": 4})
    with pytest.raises(ValueError, match="keys"):
        loader.load_state_dict({"epoch": 0})
