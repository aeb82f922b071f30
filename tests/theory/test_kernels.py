"""Tests of the kernel library: closed forms, invariants, Monte Carlo and the DEQ kernel."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from perceptrons.theory.kernels import (
    GELU,
    ABReLU,
    Dense,
    DEQKernelInfo,
    Elementwise,
    Erf,
    Identity,
    Kernel,
    LeakyReLU,
    ReLU,
    Residual,
    Sin,
    Tanh,
    deq_kernel,
    serial,
)

F64 = torch.float64
# (k11, k22, k12) columns: zero, positive, negative, unequal and antipodal correlations
ENTRIES = torch.tensor(
    [(1.0, 1.0, 0.0), (1.0, 1.0, 0.6), (2.0, 0.5, -0.7), (0.3, 1.7, 0.69), (1.5, 1.5, -1.5)],
    dtype=F64,
).T


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def inputs(n: int, d: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=gen(seed), dtype=F64)


def pair(rho: float, d: int = 10) -> torch.Tensor:
    """Two inputs with |x|^2/d = 1 and correlation rho."""
    x = torch.zeros(2, d, dtype=F64)
    x[0, 0] = math.sqrt(d)
    x[1, 0], x[1, 1] = rho * math.sqrt(d), math.sqrt((1 - rho * rho) * d)
    return x


def circle(num: int, d: int = 4) -> torch.Tensor:
    angles = torch.arange(num, dtype=F64) * 2 * math.pi / num
    x = torch.zeros(num, d, dtype=F64)
    x[:, 0], x[:, 1] = torch.cos(angles), torch.sin(angles)
    return x * math.sqrt(d)


def net(parameterization: str = "ntk"):
    return serial(
        Dense(1.3, 0.2, parameterization),
        Erf(),
        Dense(1.2, 0.1, parameterization),
        ReLU(),
        Dense(1.0, 0.3, parameterization),
    )


# ---------------------------------------------------------------------------- closed forms
SMOOTH = [
    (Erf(), torch.erf),
    (Sin(), torch.sin),
    (Identity(), lambda x: x),
    (Tanh(), torch.tanh),
    (GELU(), torch.nn.functional.gelu),
]


@pytest.mark.parametrize(("activation", "fn"), SMOOTH, ids=lambda v: repr(v)[:12])
def test_smooth_duals_match_gauss_hermite_with_autograd_derivative(activation, fn) -> None:
    reference = Elementwise(fn)  # derivative by autograd
    torch.testing.assert_close(
        activation.dual(*ENTRIES), reference.dual(*ENTRIES), atol=1e-9, rtol=0
    )
    torch.testing.assert_close(
        activation.derivative_dual(*ENTRIES), reference.derivative_dual(*ENTRIES), atol=1e-9, rtol=0
    )


KINKS = [(ReLU(), 0.0, 1.0), (ABReLU(-0.3, 1.2), -0.3, 1.2), (LeakyReLU(0.1), 0.1, 1.0)]


@pytest.mark.parametrize(("activation", "a", "b"), KINKS, ids=lambda v: repr(v)[:12])
def test_kink_duals_match_quadrature_and_monte_carlo(activation, a, b) -> None:
    def fn(x):
        return torch.where(x > 0, b * x, a * x)

    def slope(x):
        return a + (b - a) * (x > 0).to(F64)

    # quadrature converges slowly at a kink: about 1e-3
    torch.testing.assert_close(
        activation.dual(*ENTRIES), Elementwise(fn).dual(*ENTRIES), atol=5e-3, rtol=0
    )
    # Monte Carlo with 4e5 samples, tolerance 5 standard errors
    k11, k22, k12 = ENTRIES
    z1, z2 = torch.randn(2, 400_000, 1, generator=gen(1), dtype=F64)
    rho = k12 / torch.sqrt(k11 * k22)
    u1 = torch.sqrt(k11) * z1
    u2 = torch.sqrt(k22) * (rho * z1 + torch.sqrt((1 - rho * rho).clamp_min(0)) * z2)
    for samples, exact in (
        (fn(u1) * fn(u2), activation.dual(*ENTRIES)),
        (slope(u1) * slope(u2), activation.derivative_dual(*ENTRIES)),
    ):
        mean, se = samples.mean(0), samples.std(0) / math.sqrt(samples.shape[0])
        assert bool(((mean - exact).abs() <= 5 * se + 1e-12).all()), (mean, exact, se)


def test_closed_form_network_matches_quadrature_network() -> None:
    x1, x2 = inputs(5), inputs(3, seed=1)
    closed = serial(Dense(1.4, 0.1), Erf(), Dense(0.9, 0.2), Sin(), Dense(1.1)).kernel(x1, x2)
    quad = serial(
        Dense(1.4, 0.1), Elementwise(torch.erf), Dense(0.9, 0.2), Elementwise(torch.sin), Dense(1.1)
    ).kernel(x1, x2)
    torch.testing.assert_close(closed.nngp, quad.nngp, atol=1e-6, rtol=0)  # our tolerance: 1e-6
    torch.testing.assert_close(closed.ntk, quad.ntk, atol=1e-6, rtol=0)


def test_input_kernel_and_one_layer_ntk_follow_neural_tangents() -> None:
    x = inputs(4)
    k = serial(Dense(1.5, 0.5)).kernel(x)
    torch.testing.assert_close(k.nngp, 2.25 * x @ x.T / 4 + 0.25)
    torch.testing.assert_close(k.ntk, k.nngp)  # Theta^1 = K^1
    two = serial(Dense(1.5, 0.5), ReLU(), Dense(0.8, 0.1)).kernel(x)
    relu = ReLU()
    diag = torch.diagonal(k.nngp)
    expected = 0.64 * relu.derivative_dual(diag[:, None], diag[None], k.nngp) * k.ntk + two.nngp
    torch.testing.assert_close(two.ntk, expected)


# ---------------------------------------------------------------------------- invariants
@pytest.mark.parametrize(
    "description",
    [net(), serial(Dense(1.0), Tanh(), Residual(serial(Dense(1.2, 0.1), GELU(), Dense(0.7)), 0.5))],
)
def test_kernels_are_symmetric_psd(description) -> None:
    k = description.kernel(inputs(12, d=3))
    for matrix in (k.nngp, k.ntk):
        torch.testing.assert_close(matrix, matrix.T, atol=0, rtol=0)
        assert torch.linalg.eigvalsh(matrix).min() > -1e-10 * matrix.abs().max()


def test_relu_diagonal_homogeneity_and_rotation_invariance() -> None:
    description = serial(Dense(1.7), ReLU(), Dense(1.3), ReLU(), Dense(0.9))
    x = inputs(6, d=5)
    k = description.kernel(x)
    norms = (x * x).sum(1) / 5
    torch.testing.assert_close(torch.diagonal(k.nngp), 0.81 * 1.69 / 2 * 2.89 / 2 * norms)
    scaled = description.kernel(2.5 * x)
    torch.testing.assert_close(scaled.nngp, 6.25 * k.nngp)
    torch.testing.assert_close(scaled.ntk, 6.25 * k.ntk)
    rotation, _ = torch.linalg.qr(torch.randn(5, 5, generator=gen(3), dtype=F64))
    rotated = net().kernel(x @ rotation)
    torch.testing.assert_close(rotated.nngp, net().kernel(x).nngp)
    torch.testing.assert_close(rotated.ntk, net().kernel(x).ntk)
    k_deq, _ = deq_kernel(x @ rotation, weight_std=0.8, input_std=1.0, bias_std=0.1)
    torch.testing.assert_close(k_deq, deq_kernel(x, weight_std=0.8, input_std=1.0, bias_std=0.1)[0])


def test_cross_kernel_is_a_block_of_the_joint_kernel_and_chunking_is_exact() -> None:
    x1, x2 = inputs(7), inputs(5, seed=1)
    description = serial(
        Dense(1.2, 0.1), Tanh(), Residual(serial(Dense(1.0), ReLU(), Dense(0.8, 0.2)), 0.7)
    )
    joint = description.kernel(torch.cat([x1, x2]))
    cross = description.kernel(x1, x2)
    torch.testing.assert_close(cross.nngp, joint.nngp[:7, 7:])
    torch.testing.assert_close(cross.ntk, joint.ntk[:7, 7:])
    chunked = description.kernel(x1, x2, block_size=3)
    # equal up to the summation order of the matrix products
    torch.testing.assert_close(chunked.nngp, cross.nngp, atol=1e-14, rtol=0)
    torch.testing.assert_close(chunked.ntk, cross.ntk, atol=1e-14, rtol=0)
    full, _ = deq_kernel(x1, x2, weight_std=0.6, input_std=1.0, activation=Erf())
    blocks, _ = deq_kernel(x1, x2, weight_std=0.6, input_std=1.0, activation=Erf(), block_size=2)
    # blocks stop at their own iteration count: both are within tol of K*
    torch.testing.assert_close(blocks, full, atol=1e-9, rtol=0)


# ---------------------------------------------------------------------------- DEQ kernel
# Reference values of our own derivation (not the paper's): |x|^2/d = 1, sigma_w = 0.6,
# sigma_u = 1, no bias.
REFERENCE = [
    (ReLU(), 0.0, 1.219512, 0.076936, 0.609756, 0.213712),
    (ReLU(), 0.5, 1.219512, 0.636968, 0.609756, 0.380467),
    (ReLU(), 0.9, 1.219512, 1.100037, 0.609756, 0.555658),
    (Erf(), 0.5, 1.178381, 0.581014, 0.495503, 0.225040),
    (Tanh(), 0.5, 1.151189, 0.570245, 0.419970, 0.195124),
]


@pytest.mark.parametrize(("activation", "rho", "k11", "k12", "v11", "v12"), REFERENCE)
def test_deq_kernel_reference_values(activation, rho, k11, k12, v11, v12) -> None:
    x = pair(rho)
    k, info = deq_kernel(x, weight_std=0.6, input_std=1.0, activation=activation)
    v, _ = deq_kernel(x, weight_std=0.6, input_std=1.0, activation=activation, output="hidden")
    assert isinstance(info, DEQKernelInfo) and info.converged and info.residual <= 1e-10
    assert 0 < info.num_iter < 40
    got = torch.stack([k[0, 0], k[0, 1], v[0, 0], v[0, 1]])
    torch.testing.assert_close(
        got, torch.tensor([k11, k12, v11, v12], dtype=F64), atol=1e-6, rtol=0
    )


def test_deq_kernel_fixed_point_properties() -> None:
    x = inputs(6, d=5)
    norms = (x * x).sum(1) / 5
    k, _ = deq_kernel(x, weight_std=0.9, input_std=1.2, bias_std=0.3)
    torch.testing.assert_close(torch.diagonal(k), (1.44 * norms + 0.09) / (1 - 0.81 / 2))
    relu = ReLU()
    diag = torch.diagonal(k)
    torch.testing.assert_close(
        k, 0.81 * relu.dual(diag[:, None], diag[None], k) + 1.44 * x @ x.T / 5 + 0.09
    )
    for scale in (0.0, 5.0):
        other, _ = deq_kernel(x, weight_std=0.9, input_std=1.2, bias_std=0.3, init_scale=scale)
        torch.testing.assert_close(other, k, atol=1e-9, rtol=0)
    diagonals = [
        torch.diagonal(deq_kernel(x, weight_std=s, input_std=1.0)[0]) for s in (0.3, 0.8, 1.3)
    ]
    assert bool((diagonals[0] < diagonals[1]).all() and (diagonals[1] < diagonals[2]).all())
    homogeneous, _ = deq_kernel(3 * x, weight_std=0.9, input_std=1.2)
    torch.testing.assert_close(homogeneous, 9 * deq_kernel(x, weight_std=0.9, input_std=1.2)[0])


def test_odd_activation_is_singular_on_antipodal_inputs_without_bias() -> None:
    x = circle(10)
    for activation in (Erf(), Tanh(num_nodes=40)):
        v, _ = deq_kernel(x, weight_std=0.6, input_std=1.0, activation=activation, output="hidden")
        assert torch.linalg.eigvalsh(v).min().abs() < 1e-12 * v.abs().max()
        biased, _ = deq_kernel(
            x, weight_std=0.6, input_std=1.0, bias_std=0.5, activation=activation
        )
        assert torch.linalg.eigvalsh(biased).min() > 1e-4
    relu, _ = deq_kernel(circle(9), weight_std=0.6, input_std=1.0, output="hidden")
    assert torch.linalg.eigvalsh(relu).min() > 1e-3  # our computed value: 9.55e-3


def test_deq_kernel_without_fixed_point_raises() -> None:
    x = inputs(3)
    with pytest.raises(ValueError, match="weight_std.*no fixed point"):
        deq_kernel(x, weight_std=math.sqrt(2), input_std=1.0)
    with pytest.raises(ValueError, match="no fixed point"):
        deq_kernel(x, weight_std=1.0, input_std=1.0, activation=Identity())
    with pytest.raises(ValueError, match="no fixed point"):
        deq_kernel(x, weight_std=1.2, input_std=1.0, activation=ABReLU(-1.0, 1.0))
    with pytest.raises(RuntimeError, match="max_iter"):
        deq_kernel(x, weight_std=1.3, input_std=1.0, max_iter=3)


# ---------------------------------------------------------------------------- Monte Carlo
@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
def test_nngp_matches_monte_carlo_over_built_networks(parameterization) -> None:
    description = serial(
        net(parameterization),
        Residual(
            serial(Dense(1.0, 0.1, parameterization), Tanh(), Dense(0.8, None, parameterization)),
            0.6,
        ),
    )
    x = inputs(4, d=3)
    exact = description.kernel(x, ntk=False).nngp
    width, num_nets, generator = 256, 60, gen(7)
    grams = []
    with torch.no_grad():
        for _ in range(num_nets):
            model = description.build(3, width, out_features=width, generator=generator, dtype=F64)
            out = model(x)  # (4, width): the units are samples of the output GP
            grams.append(out @ out.T / width)
    grams = torch.stack(grams)
    mean, se = grams.mean(0), grams.std(0) / math.sqrt(num_nets)
    # 4 standard errors, plus the O(1/width) finite-width bias
    assert bool(((mean - exact).abs() <= 4 * se + 2 * exact.abs().max() / width).all()), (
        mean,
        exact,
        se,
    )


def test_empirical_ntk_approaches_analytic_ntk() -> None:
    description = serial(Dense(1.3, 0.2), Erf(), Dense(1.2, 0.1), ReLU(), Dense(1.0, 0.3))
    x = inputs(4, d=3)
    exact = description.kernel(x).ntk
    errors = []
    for width in (16, 1024):
        model = description.build(3, width, out_features=1, generator=gen(11), dtype=F64)
        params = [p for p in model.parameters() if p.requires_grad]
        rows = []
        for point in x:
            grads = torch.autograd.grad(model(point).sum(), params)
            rows.append(torch.cat([g.reshape(-1) for g in grads]))
        jacobian = torch.stack(rows)
        errors.append(float((jacobian @ jacobian.T - exact).abs().max() / exact.abs().max()))
    assert errors[1] < 0.1 and errors[1] < errors[0], errors


# ---------------------------------------------------------------------------- API and errors
def test_build_shapes_and_residual() -> None:
    description = serial(
        Dense(1.0, 0.1), ReLU(), Residual(serial(Dense(1.0), Erf(), Dense(0.5)), 0.3), Dense(1.0)
    )
    model = description.build(5, 32, out_features=2, generator=gen(0))
    assert model(torch.randn(7, 5)).shape == (7, 2)
    assert description.build(5, 32)(torch.randn(3, 5)).shape == (3, 32)
    a = description.build(5, 8, generator=gen(1), dtype=F64)(inputs(2, d=5))
    b = description.build(5, 8, generator=gen(1), dtype=F64)(inputs(2, d=5))
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    with pytest.raises(ValueError, match="out_features"):
        serial(ReLU()).build(5, 8, out_features=3)
    with pytest.raises(ValueError, match="width"):
        description.build(5, 0)


def test_standard_parameterization_ntk_needs_width_and_keeps_nngp() -> None:
    description = net("standard")
    with pytest.raises(ValueError, match="width="):
        description.kernel(inputs(3))
    with pytest.raises(ValueError, match="width"):
        description.kernel(inputs(3), width=0)
    k = description.kernel(inputs(3), ntk=False)
    assert isinstance(k, Kernel) and k.ntk is None
    torch.testing.assert_close(k.nngp, net().kernel(inputs(3)).nngp)
    # a single standard Dense needs no width: its fan-in is d
    single = Dense(1.5, 0.2, "standard").kernel(inputs(3))
    x = inputs(3)
    torch.testing.assert_close(single.ntk, x @ x.T + 1.0)
    wide, narrow = (description.kernel(inputs(3), width=w).ntk for w in (400, 100))
    assert bool((wide.diagonal() > 3 * narrow.diagonal()).all())  # grows with the fan-in


def test_standard_parameterization_ntk_matches_empirical_ntk() -> None:
    description = serial(
        Dense(1.3, 0.2, "standard"),
        Erf(),
        Dense(1.2, 0.1, "standard"),
        ReLU(),
        Dense(1.0, 0.3, "standard"),
    )
    x, width = inputs(4, d=3), 1024
    exact = description.kernel(x, width=width).ntk
    model = description.build(3, width, out_features=1, generator=gen(11), dtype=F64)
    params = list(model.parameters())
    rows = []
    for point in x:
        grads = torch.autograd.grad(model(point).sum(), params)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    jacobian = torch.stack(rows)
    error = float((jacobian @ jacobian.T - exact).abs().max() / exact.abs().max())
    assert error < 0.1, error


def test_relu_ntk_diagonal_is_exact_and_zero_inputs_are_finite() -> None:
    """On the diagonal the correlation is exactly 1 (theta = 0, ReLU' dual = 1/2) at every
    layer: a rounded correlation would put arccos(1 - 1e-16) ~ 1e-8 into the NTK there."""
    depth, w, b = 6, 1.4, 0.1
    layers = []
    for _ in range(depth):
        layers += [Dense(w, b), ReLU()]
    description = serial(*layers, Dense(1.0))
    x = inputs(37, d=5, seed=3)
    k = description.kernel(x, block_size=8)  # several blocks, off-diagonal block offsets
    q = (x * x).sum(1) / 5
    theta = torch.zeros_like(q)
    for _ in range(depth):  # K <- w^2 K + b^2; Theta <- w^2 Theta + K; then ReLU: K/2, Theta/2
        q = w * w * q + b * b
        theta = w * w * theta + q
        q, theta = q / 2, theta / 2
    q_out, theta_out = q, q + theta  # final Dense(1.0): K <- K, Theta <- Theta + K
    torch.testing.assert_close(k.nngp.diagonal(), q_out, rtol=1e-14, atol=0)
    torch.testing.assert_close(k.ntk.diagonal(), theta_out, rtol=1e-14, atol=0)
    x[3] = 0.0  # zero variance: correlation 0 by convention, finite everywhere
    k0 = description.kernel(x)
    assert bool(torch.isfinite(k0.nngp).all() and torch.isfinite(k0.ntk).all())


def test_kernel_blocks_reuse_a_fixed_number_of_workspace_buffers(monkeypatch) -> None:
    """Memory is the outputs plus a few block-sized buffers, however many blocks there are."""
    import perceptrons.theory.kernels.core as core

    created = []
    original = core._Workspace.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        created.append(self)

    monkeypatch.setattr(core._Workspace, "__init__", init)
    layers = []
    for _ in range(4):
        layers += [Dense(1.2, 0.1), ReLU(), Dense(0.9, 0.2, "standard"), LeakyReLU(0.2)]
    description = serial(*layers, Dense(1.0))
    k = description.kernel(inputs(50, d=3), block_size=4, width=10)  # 13 blocks
    assert len(created) == 1 and len(created[0]._owned) <= 4, len(created[0]._owned)
    assert bool(torch.isfinite(k.ntk).all())
    # residual blocks and quadrature/closed-form activations give their buffers back too
    block = serial(ReLU(), Dense(1.0, 0.1), Erf(), Dense(0.7))
    mixed = serial(Dense(1.0, 0.1), Residual(block, 0.5), Residual(block, 0.5), Tanh(), Dense(1))
    created.clear()
    mixed.kernel(inputs(50, d=3), block_size=4)
    assert len(created) == 1 and len(created[0]._owned) <= 6, len(created[0]._owned)


REFERENCE = Path(__file__).parent / "data" / "neural_tangents_reference.json"


def test_values_match_neural_tangents() -> None:
    """Values computed by neural-tangents 0.6.5 (benchmarks/neural_tangents_side.py reference)."""
    reference = json.loads(REFERENCE.read_text())
    i = torch.arange(4, dtype=F64)[:, None]
    x = torch.sin(1 + 1.3 * i + 0.7 * torch.arange(3, dtype=F64)[None, :])
    std = "standard"
    cases = {
        "relu_ntk": serial(Dense(1.4, 0.1), ReLU(), Dense(1.4, 0.1), ReLU(), Dense(1.0)),
        "erf_abrelu": serial(
            Dense(1.2, 0.3), Erf(), Dense(0.9), ABReLU(-0.5, 1.5), Dense(1.1, 0.2)
        ),
        "leaky_sin_gelu": serial(
            Dense(1.0, 0.2),
            LeakyReLU(0.1),
            Dense(1.1, 0.1),
            Sin(),
            Dense(0.8, 0.05),
            GELU(),
            Dense(1.0),
        ),
        "residual": serial(
            Dense(1.0, 0.1),
            Residual(serial(ReLU(), Dense(1.0, 0.1), Erf(), Dense(0.7)), 1.0),
            ReLU(),
            Dense(1.0),
        ),
        "standard_relu_erf": serial(
            Dense(1.4, 0.1, std), ReLU(), Dense(1.3, None, std), Erf(), Dense(1.0, 0.2, std)
        ),
    }
    assert set(cases) <= set(reference)
    for name, description in cases.items():
        k = description.kernel(x, width=reference["width"])
        for key in ("nngp", "ntk"):
            expected = torch.tensor(reference[name][key], dtype=F64)
            torch.testing.assert_close(getattr(k, key), expected, rtol=1e-9, atol=1e-12)


def test_bad_inputs_raise_naming_the_argument() -> None:
    x = inputs(3)
    with pytest.raises(ValueError, match="x2"):
        net().kernel(x, inputs(2, d=5))
    with pytest.raises(ValueError, match="x1"):
        net().kernel(x[0])
    bad = x.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="x1"):
        net().kernel(bad)
    with pytest.raises(ValueError, match="x2"):
        deq_kernel(x, bad, weight_std=0.5, input_std=1.0)
    with pytest.raises(ValueError, match="block_size"):
        net().kernel(x, block_size=0)
    for kwargs, name in (({"weight_std": 0.0}, "weight_std"), ({"bias_std": -1.0}, "bias_std")):
        with pytest.raises(ValueError, match=name):
            Dense(**kwargs)
    with pytest.raises(ValueError, match="parameterization"):
        Dense(1.0, parameterization="mup")
    for kwargs, name in (
        ({"weight_std": -0.5, "input_std": 1.0}, "weight_std"),
        ({"weight_std": 0.5, "input_std": 0.0}, "input_std"),
        ({"weight_std": 0.5, "input_std": 1.0, "bias_std": float("nan")}, "bias_std"),
        ({"weight_std": 0.5, "input_std": 1.0, "max_iter": 0}, "max_iter"),
        ({"weight_std": 0.5, "input_std": 1.0, "output": "out"}, "output"),
    ):
        with pytest.raises(ValueError, match=name):
            deq_kernel(x, **kwargs)
    with pytest.raises(ValueError, match="block"):
        Residual(serial(Dense(1.0), ReLU()))
    with pytest.raises(TypeError, match="layers"):
        serial(Dense(1.0), torch.relu)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_kernels_on_gpu_match_cpu() -> None:
    x1, x2 = inputs(6), inputs(4, seed=1)
    description = serial(Dense(1.2, 0.1), Tanh(), Dense(1.0), ReLU(), Dense(0.9, 0.2))
    cpu, gpu = description.kernel(x1, x2), description.kernel(x1.cuda(), x2.cuda())
    assert gpu.nngp.device.type == "cuda"
    torch.testing.assert_close(gpu.nngp.cpu(), cpu.nngp, atol=1e-12, rtol=0)
    torch.testing.assert_close(gpu.ntk.cpu(), cpu.ntk, atol=1e-12, rtol=0)
    k_gpu, _ = deq_kernel(x1.cuda(), x2.cuda(), weight_std=0.6, input_std=1.0, activation=Erf())
    k_cpu, _ = deq_kernel(x1, x2, weight_std=0.6, input_std=1.0, activation=Erf())
    torch.testing.assert_close(k_gpu.cpu(), k_cpu, atol=1e-12, rtol=0)


def test_deq_kernel_of_one_set_is_exactly_symmetric_across_blocks() -> None:
    x = inputs(9, d=4, seed=5)
    k, _ = deq_kernel(x, weight_std=0.6, input_std=1.0, activation=Erf(), block_size=4)
    assert torch.equal(k, k.T)
    full, _ = deq_kernel(x, weight_std=0.6, input_std=1.0, activation=Erf(), block_size=9)
    torch.testing.assert_close(k, full, rtol=1e-9, atol=1e-12)  # within the solver's tol


# ---------------------------------------------------------------------------- residual scale
# Dense(w0, b0) -> Residual(serial(Dense(w1, b1), ReLU, Dense(w2, b2)), scale) -> ReLU
# -> Dense(w3, b3); the ReLU after the block sees the residual's variances too
RESIDUAL_STDS = (1.2, 0.3, 1.1, 0.2, 0.9, 0.1, 1.0, 0.2)


def residual_net(scale: float):
    w0, b0, w1, b1, w2, b2, w3, b3 = RESIDUAL_STDS
    block = serial(Dense(w1, b1), ReLU(), Dense(w2, b2))
    return serial(Dense(w0, b0), Residual(block, scale), ReLU(), Dense(w3, b3))


def _arccos_relu(k11, k22, k12):
    """Cho & Saul's degree-1 arc-cosine kernel E[relu(u1) relu(u2)] and the degree-0 one
    E[step(u1) step(u2)], u ~ N(0, [[k11, k12], [k12, k22]])."""
    norm = torch.sqrt(k11 * k22)
    theta = torch.arccos((k12 / norm).clamp(-1.0, 1.0))
    dual = norm * (torch.sin(theta) + (math.pi - theta) * torch.cos(theta)) / (2 * math.pi)
    return dual, (math.pi - theta) / (2 * math.pi)


def _residual_net_by_hand(x1, x2, scale):
    """The NNGP and NTK recursion of `residual_net` written out: NTK parameterisation, each
    K a triple (k(x1, x1), k(x2, x2), k(x1, x2)) and Theta the cross NTK."""
    w0, b0, w1, b1, w2, b2, w3, b3 = RESIDUAL_STDS

    def dense(k, theta, w, b):  # K <- w^2 K + b^2, Theta <- w^2 Theta + K_new
        k = tuple(w * w * ki + b * b for ki in k)
        return k, w * w * theta + k[2]

    def relu(k, theta):  # K <- V(K), Theta <- Vdot(K) Theta
        k11, k22, k12 = k
        diag1, diag2 = _arccos_relu(k11, k11, k11)[0], _arccos_relu(k22, k22, k22)[0]
        cross, slope = _arccos_relu(k11, k22, k12)
        return (diag1, diag2, cross), slope * theta

    k_in = ((x1 * x1).sum(1)[:, None], (x2 * x2).sum(1)[None, :], x1 @ x2.T)
    k, theta = dense(tuple(ki / x1.shape[1] for ki in k_in), 0.0, w0, b0)
    k_block, theta_block = dense(*relu(*dense(k, theta, w1, b1)), w2, b2)
    # independent zero-mean branch: both kernels add scale^2 times the block's
    k = tuple(ki + scale * scale * kb for ki, kb in zip(k, k_block, strict=True))
    theta = theta + scale * scale * theta_block
    k, theta = dense(*relu(k, theta), w3, b3)
    return k[2], theta


@pytest.mark.parametrize("scale", [0.5, 2.0, -0.7])
def test_residual_kernels_with_a_scale_match_the_hand_written_recursion(scale) -> None:
    x1, x2 = inputs(3), inputs(2, seed=1)
    nngp, ntk = _residual_net_by_hand(x1, x2, scale)
    k = residual_net(scale).kernel(x1, x2)
    torch.testing.assert_close(k.nngp, nngp, rtol=1e-12, atol=0)
    torch.testing.assert_close(k.ntk, ntk, rtol=1e-12, atol=0)
    # the sign of the branch does not matter: only scale^2 enters
    flipped = residual_net(-scale).kernel(x1, x2)
    torch.testing.assert_close(flipped.nngp, k.nngp, rtol=1e-14, atol=0)
    torch.testing.assert_close(flipped.ntk, k.ntk, rtol=1e-14, atol=0)


@pytest.mark.parametrize("scale", [0.5, 2.0])
def test_residual_ntk_with_a_scale_matches_the_empirical_ntk(scale) -> None:
    """Mean empirical NTK of independently drawn wide networks, within 5 standard errors (from
    the spread of the draws) plus an O(1/width) finite-width allowance."""
    description = residual_net(scale)
    x = inputs(4, d=3)
    exact = description.kernel(x).ntk
    width, num_nets, generator = 512, 24, gen(13)
    ntks = []
    for _ in range(num_nets):
        model = description.build(3, width, out_features=1, generator=generator, dtype=F64)
        params = list(model.parameters())
        rows = []
        for point in x:
            grads = torch.autograd.grad(model(point).sum(), params)
            rows.append(torch.cat([g.reshape(-1) for g in grads]))
        jacobian = torch.stack(rows)
        ntks.append(jacobian @ jacobian.T)
    ntks = torch.stack(ntks)
    mean, se = ntks.mean(0), ntks.std(0) / math.sqrt(num_nets)
    tol = 5 * se + 2 * exact.abs().max() / width
    assert bool(((mean - exact).abs() <= tol).all()), (mean, exact, se)
