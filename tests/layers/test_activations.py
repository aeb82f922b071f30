"""Tests of the activation table."""

from __future__ import annotations

import functools
import typing

import pytest
import torch
from torch import nn

from perceptrons.layers import ACTIVATIONS, ActivationName, Erf, get_activation


def test_names_match_the_config_literal() -> None:
    assert tuple(ACTIVATIONS) == typing.get_args(ActivationName)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_activation_is_elementwise(name: str, dtype: torch.dtype) -> None:
    act = get_activation(name)()
    assert isinstance(act, nn.Module)
    x = torch.linspace(-3, 3, 12, dtype=dtype).reshape(2, 2, 3)
    y = act(x)
    assert y.shape == x.shape and y.dtype == dtype
    assert torch.equal(act(x.flatten()).reshape(x.shape), y)


def test_erf_and_factories_build_fresh_modules() -> None:
    x = torch.linspace(-2, 2, 5)
    assert torch.equal(Erf()(x), torch.erf(x))
    factory = get_activation("relu")
    assert factory() is not factory()
    assert torch.equal(get_activation("identity")()(x), x)


def test_factories_pass_through() -> None:
    leaky = functools.partial(nn.LeakyReLU, 0.2)
    assert get_activation(leaky) is leaky
    assert get_activation(nn.GELU) is nn.GELU


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown activation 'rleu'; valid names: relu, gelu"):
        get_activation("rleu")


def test_instances_and_non_callables_are_rejected() -> None:
    with pytest.raises(TypeError, match="pass its class"):
        get_activation(nn.ReLU())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expected an activation name or factory"):
        get_activation(3)  # type: ignore[arg-type]


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        ACTIVATIONS["mine"] = nn.ReLU  # type: ignore[index]
