"""The generated shapes data set: shapes, balance, determinism, and each class's geometry."""

import pytest
import torch

from perceptrons.data.shapes import SHAPE_NAMES, make_shapes


def test_shapes_are_balanced_deterministic_and_in_range():
    x, y = make_shapes(500, seed=3)
    assert x.shape == (500, 1, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.bincount(y, minlength=5).tolist() == [100] * 5
    x2, y2 = make_shapes(500, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(make_shapes(500, seed=4)[0], x)


def test_clean_images_are_two_valued_and_each_class_has_its_geometry():
    x, y = make_shapes(1000, noise=0.0, seed=0)
    assert set(x.unique().tolist()) == {-1.0, 1.0}
    on = (x[:, 0] > 0).float()
    area = on.sum((1, 2))
    assert bool((area >= 1).all())  # every shape sets a pixel
    mean_area = {SHAPE_NAMES[c]: float(area[y == c].mean()) for c in range(5)}
    # same scale distribution: square > disc > triangle; ring and cross are thin
    assert mean_area["square"] > mean_area["disc"] > mean_area["triangle"]
    assert mean_area["ring"] < mean_area["disc"] and mean_area["cross"] < mean_area["disc"]
    # a cross is symmetric about its centre row and column: its set pixels form a plus
    cross = on[y == 4]
    rows, cols = cross.sum(2), cross.sum(1)
    assert bool((rows.amax(1) >= 3).all() and (cols.amax(1) >= 3).all())


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="n:"):
        make_shapes(0)
    with pytest.raises(ValueError, match="size"):
        make_shapes(10, size=4)
    with pytest.raises(ValueError, match="noise"):
        make_shapes(10, noise=-1.0)
