"""DEQLayer: fixed point, solvers, IFT gradients, Picard rate, divergence, argument checks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.func import functional_call

from perceptrons.layers import (
    DEQLayer,
    FixedPointError,
    SolverInfo,
    anderson_solve,
    picard_solve,
)

F64 = torch.float64


def _layer(width: int = 64, *, seed: int = 0, dtype=F64, **kwargs) -> DEQLayer:
    kwargs.setdefault("weight_std", 0.6)
    kwargs.setdefault("input_std", 1.0)
    return DEQLayer(10, width, dtype=dtype, generator=torch.Generator().manual_seed(seed), **kwargs)


def _x(batch: int = 5, d: int = 10, *, seed: int = 1, dtype=F64) -> torch.Tensor:
    return torch.randn(batch, d, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def _map_residual(layer: DEQLayer, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Per-sample |phi(W h + U x + b) - h| / |h|."""
    with torch.no_grad():
        image = layer.act(h @ layer.recurrent.weight.T + layer.input(x))
    return torch.linalg.vector_norm(image - h, dim=-1) / torch.linalg.vector_norm(h, dim=-1)


@pytest.mark.parametrize("solver", ["picard", "anderson"])
@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_fixed_point_satisfies_equation(solver: str, act: str) -> None:
    layer = _layer(solver=solver, act_layer=act, tol=1e-10, bias_std=0.3)
    x = _x()
    with torch.no_grad():
        h = layer(x)
    assert h.shape == (5, 64) and h.dtype == F64
    info = layer.last_info
    assert isinstance(info, SolverInfo)
    assert info.converged and info.residual <= 1e-10 and 1 <= info.iterations <= 100
    assert float(_map_residual(layer, x, h).max()) <= 1e-10


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_picard_and_anderson_agree(dtype: torch.dtype) -> None:
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    x = _x(dtype=dtype)
    with torch.no_grad():
        h_picard = _layer(solver="picard", tol=tol, dtype=dtype)(x)
        h_anderson = _layer(solver="anderson", tol=tol, dtype=dtype)(x)
    atol = 1e-5 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(h_anderson, h_picard, atol=atol, rtol=atol)


def test_solvers_on_a_linear_map_match_a_direct_solve() -> None:
    g = torch.Generator().manual_seed(0)
    a = 0.8 * torch.randn(20, 20, dtype=F64, generator=g) / math.sqrt(20) / 2
    c = torch.randn(3, 20, dtype=F64, generator=g)
    exact = torch.linalg.solve(torch.eye(20, dtype=F64) - a, c.T).T
    for solve in (picard_solve, anderson_solve):
        z, info = solve(lambda z: z @ a.T + c, torch.zeros_like(c), tol=1e-12, max_iter=500)
        assert info.converged
        torch.testing.assert_close(z, exact, atol=1e-10, rtol=1e-10)


def test_zero_fixed_point_counts_as_converged() -> None:
    layer = _layer(solver="anderson")  # relu, no bias: h* = 0 for x = 0
    with torch.no_grad():
        h = layer(torch.zeros(2, 10, dtype=F64))
    assert torch.equal(h, torch.zeros_like(h))
    assert layer.last_info.converged and layer.last_info.residual == 0.0


def test_deterministic_and_seeded() -> None:
    x = _x()
    with torch.no_grad():
        a, b = _layer(seed=3)(x), _layer(seed=3)(x)
        c = _layer(seed=4)(x)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_initial_scales() -> None:
    layer = DEQLayer(
        400,
        500,
        weight_std=0.6,
        input_std=2.0,
        bias_std=0.5,
        generator=torch.Generator().manual_seed(0),
    )
    assert layer.recurrent.weight.std().item() == pytest.approx(0.6 / math.sqrt(500), rel=0.02)
    assert layer.input.weight.std().item() == pytest.approx(2.0 / math.sqrt(400), rel=0.02)
    assert layer.input.bias.std().item() == pytest.approx(0.5, rel=0.2)


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_ift_gradients_pass_gradcheck(act: str) -> None:
    layer = DEQLayer(
        3,
        6,
        weight_std=0.5,
        input_std=1.0,
        bias_std=0.5,
        act_layer=act,
        tol=1e-13,
        max_iter=500,
        dtype=F64,
        generator=torch.Generator().manual_seed(0),
    )
    names = [name for name, _ in layer.named_parameters()]
    params = [p.detach().clone().requires_grad_() for _, p in layer.named_parameters()]
    x = _x(2, 3).requires_grad_()

    def fn(x, *flat):
        return functional_call(layer, dict(zip(names, flat, strict=True)), (x,))

    assert torch.autograd.gradcheck(fn, (x, *params), eps=1e-6, atol=1e-6, rtol=1e-5)
    assert layer.last_backward_info is not None and layer.last_backward_info.converged


@pytest.mark.parametrize("solver", ["picard", "anderson"])
def test_ift_gradients_match_unrolled_backprop(solver: str) -> None:
    layer = _layer(32, solver=solver, tol=1e-12, bias_std=0.2, act_layer="tanh")
    x = _x(4).requires_grad_()
    target = torch.randn(4, 32, dtype=F64, generator=torch.Generator().manual_seed(5))
    params = [x, *layer.parameters()]

    implicit = torch.autograd.grad(((layer(x) - target) ** 2).sum(), params)
    unrolled_h = layer.forward_iterates(x, 120)[-1]
    unrolled = torch.autograd.grad(((unrolled_h - target) ** 2).sum(), params)
    for a, b in zip(implicit, unrolled, strict=True):
        torch.testing.assert_close(a, b, atol=1e-8, rtol=1e-7)
    assert layer.last_backward_info.converged


def test_repeated_backward_gives_the_same_gradient() -> None:
    layer = _layer(16, tol=1e-12)
    x = _x(3).requires_grad_()
    h = layer(x)
    first = torch.autograd.grad(h.sum(), x, retain_graph=True)[0]
    second = torch.autograd.grad(h.sum(), x)[0]
    assert torch.equal(first, second)


def test_forward_iterates_shape_and_first_iterate() -> None:
    layer = _layer(16, bias_std=0.3)
    x = _x(3)
    with torch.no_grad():
        it = layer.forward_iterates(x, 4)
        h = layer(x)
    assert it.shape == (4, 3, 16)
    torch.testing.assert_close(it[0], torch.relu(layer.input(x)))
    # far iterates approach the fixed point
    with torch.no_grad():
        far = layer.forward_iterates(x, 60)[-1]
    torch.testing.assert_close(far, h, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("weight_std", [0.6, 1.0])
def test_picard_rate_matches_theory_for_relu(weight_std: float) -> None:
    """Rate |h^{l+1} - h^l| / |h^l - h^{l-1}| ~ sigma_w sqrt(E[phi'^2]) = sigma_w / sqrt 2."""
    layer = _layer(1000, weight_std=weight_std)
    x = _x(8)
    with torch.no_grad():
        iterates = layer.forward_iterates(x, 50)
    steps = torch.linalg.vector_norm(iterates[1:] - iterates[:-1], dim=-1)  # (49, b)
    first, last = 10, 40
    rate = (steps[last] / steps[first]) ** (1 / (last - first))
    predicted = weight_std / math.sqrt(2)
    assert float(rate.mean()) == pytest.approx(predicted, rel=0.1)


def test_divergence_raises_naming_residual_and_bound() -> None:
    layer = _layer(64, weight_std=3.0, max_iter=50)
    with pytest.raises(FixedPointError, match=r"residual .* > tol .*sqrt\(2\)"):
        layer(_x())
    assert layer.last_info is None  # never set to a failed solve's info on raise


@pytest.mark.parametrize(("bad", "kind"), [(math.nan, "NaN"), (math.inf, "infinite")])
@pytest.mark.parametrize("on_divergence", ["raise", "flag"])
def test_non_finite_input_is_named_not_blamed_on_weight_std(bad, kind, on_divergence) -> None:
    layer = _layer(64, on_divergence=on_divergence)  # a contracting layer: weight_std is fine
    x = _x()
    x[2, 1] = bad
    with pytest.raises(ValueError, match=rf"{kind} values \(1 entries, rows 2\)") as caught:
        layer(x)
    assert "weight_std" not in str(caught.value)
    assert layer.last_info is None


def test_non_finite_input_to_the_deq_model_is_named() -> None:
    from perceptrons.registry import create_model

    model = create_model("deq", seed=0, in_features=3, width=16)
    x = torch.zeros(4, 3)
    x[1:3, 0] = -math.inf
    with pytest.raises(ValueError, match="finite") as caught:
        model(x)
    assert "weight_std" not in str(caught.value)
    with pytest.raises(ValueError, match="finite"):
        model.equilibrium(x)


@pytest.mark.parametrize("solver", ["picard", "anderson"])
def test_divergence_is_flagged(solver: str) -> None:
    layer = _layer(64, weight_std=3.0, max_iter=50, on_divergence="flag", solver=solver)
    with torch.no_grad():
        layer(_x())
    info = layer.last_info
    assert not info.converged and not info.residual <= layer.tol
    assert info.iterations <= 50


def test_too_few_iterations_raise() -> None:
    layer = _layer(64, max_iter=3, tol=1e-10)
    with pytest.raises(FixedPointError, match="after 3 iterations"):
        layer(_x())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"solver": "broyden"}, "solver"),
        ({"on_divergence": "ignore"}, "on_divergence"),
        ({"tol": 0.0}, "tol"),
        ({"tol": 1.5}, "tol"),
        ({"max_iter": 0}, "max_iter"),
        ({"anderson_memory": 0}, "anderson_memory"),
        ({"weight_std": -1.0}, "weight_std"),
        ({"input_std": math.nan}, "weight_std"),  # DenseLinear names its own argument
        ({"bias_std": -0.1}, "bias_std"),
        ({"act_layer": "nope"}, "unknown activation"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _layer(8, **kwargs)


def test_bad_sizes_and_num_iter_raise() -> None:
    with pytest.raises(ValueError, match="width"):
        DEQLayer(3, 0, weight_std=0.5, input_std=1.0)
    with pytest.raises(ValueError, match="in_features"):
        DEQLayer(0, 4, weight_std=0.5, input_std=1.0)
    with pytest.raises(ValueError, match="num_iter"):
        _layer(8).forward_iterates(_x(), 0)


def test_factory_activation_and_repr() -> None:
    layer = _layer(8, act_layer=nn.Tanh)
    assert isinstance(layer.act, nn.Tanh)
    assert "solver='picard'" in repr(layer)
