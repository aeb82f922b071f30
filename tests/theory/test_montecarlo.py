"""Tests of `perceptrons.theory.montecarlo`: real networks against the exact Gram chains.

Distributional comparisons use the two-sample Kolmogorov–Smirnov distance against the critical
value at level ``ALPHA = 1e-4`` (c(alpha) = 2.23, i.e. about 4 standard errors): two samples of
the same law pass with probability 1 - 1e-4 whatever the seeds, and every such test also shows
that a wrong constant or a wrong layer index is rejected at that level. All runs are seeded.
"""

from __future__ import annotations

import math

import pytest
import scipy.stats
import torch
from torch import nn

from perceptrons.layers import MLP, DenseLinear, ResidualMLP, ShapedReLU
from perceptrons.theory.dual import relu_correlation_map
from perceptrons.theory.montecarlo import (
    GramTrajectories,
    ks_critical_value,
    ks_normal_statistic,
    ks_statistic,
    mlp_gram_chain,
    moment_matched_chain,
    resnet_gram_chain,
    simulate_grams,
)

ALPHA = 1e-4
WIDTH = DEPTH = 32
NUM_NETWORKS, NUM_CHAINS = 1000, 2000


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def two_inputs(n: int, rho: float = 0.0, seed: int = 0) -> torch.Tensor:
    """Two inputs of squared norm ``n`` and correlation ``rho``, shape ``(2, n)``.

    Their coordinates come in pairs ``(u, -u)``, so ``|relu(x)|^2 = |x|^2 / 2`` like a Gaussian
    vector's (what the ResNet's norm growth e^{sigma^2 t / 2} assumes).
    """
    half = torch.randn(n // 2, 2, generator=gen(seed), dtype=torch.float64)
    basis, _ = torch.linalg.qr(torch.cat([half, -half]))
    a, b = basis[:, 0], basis[:, 1]
    return torch.stack([a, rho * a + math.sqrt(1 - rho**2) * b]) * math.sqrt(n)


def ks_alpha(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    return ks_statistic(a, b), ks_critical_value(a.numel(), b.numel(), ALPHA)


def assert_same_law(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    distance, critical = ks_alpha(a, b)
    assert distance < critical, f"{what}: KS {distance:.4f} >= {critical:.4f}"


def assert_different_law(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    distance, critical = ks_alpha(a, b)
    assert distance > critical, f"{what}: KS {distance:.4f} <= {critical:.4f} (not rejected)"


# ----------------------------------------------------------------------- MLP vs Gram chain
@pytest.fixture(scope="module")
def relu_mlp() -> GramTrajectories:
    """He-initialised ReLU MLP (c = 2 via weight_std = sqrt 2), n = d = 32, M = 1000."""
    net = MLP(WIDTH, [WIDTH] * DEPTH, 1, weight_std=math.sqrt(2), bias=False, generator=gen(0))
    return simulate_grams(net, two_inputs(WIDTH).float(), NUM_NETWORKS, generator=gen(1))


def test_relu_mlp_matches_the_gram_chain(relu_mlp: GramTrajectories) -> None:
    assert relu_mlp.grams.shape == (NUM_NETWORKS, DEPTH + 2, 2, 2)
    assert relu_mlp.grams.dtype == torch.float64
    assert relu_mlp.widths == (WIDTH,) * (DEPTH + 1) + (1,)
    # The chain's V_l is weight_var times the network's post-activation Gram (V_0 included).
    chain = GramTrajectories(
        mlp_gram_chain(
            2 * relu_mlp.grams[0, 0], WIDTH, DEPTH, torch.relu, NUM_CHAINS,
            generator=gen(2), weight_var=2.0,
        )
    )  # fmt: skip
    for layer in (1, 2, DEPTH):
        assert_same_law(
            relu_mlp.correlation()[:, layer], chain.correlation()[:, layer], f"rho_{layer}"
        )
    assert_same_law(
        torch.log(2 * relu_mlp.variance()[:, DEPTH]), torch.log(chain.variance()[:, DEPTH]),
        "log V11",
    )  # fmt: skip


def test_relu_chain_with_a_wrong_constant_or_layer_index_is_rejected(
    relu_mlp: GramTrajectories,
) -> None:
    wrong = GramTrajectories(
        mlp_gram_chain(
            2 * relu_mlp.grams[0, 0], WIDTH, DEPTH, torch.relu, NUM_CHAINS,
            generator=gen(2), weight_var=1.3,
        )
    )  # fmt: skip
    assert_different_law(
        torch.log(2 * relu_mlp.variance()[:, DEPTH]), torch.log(wrong.variance()[:, DEPTH]),
        "log V11 with weight_var 1.3",
    )  # fmt: skip
    chain = GramTrajectories(
        mlp_gram_chain(
            2 * relu_mlp.grams[0, 0], WIDTH, 3, torch.relu, NUM_CHAINS,
            generator=gen(3), weight_var=2.0,
        )
    )  # fmt: skip
    for mc_layer, chain_layer in ((1, 2), (2, 1), (2, 3)):
        assert_different_law(
            relu_mlp.correlation()[:, mc_layer], chain.correlation()[:, chain_layer],
            f"rho: network layer {mc_layer} against chain layer {chain_layer}",
        )  # fmt: skip


def test_shaped_mlp_matches_the_gram_chain() -> None:
    """Normalised ShapedReLU at rate d, weight_std = 1: grams are exactly V_l (mlp_gram_chain)."""
    act = ShapedReLU.factory(0.0, -1.0, DEPTH)
    net = MLP(WIDTH, [WIDTH] * DEPTH, 1, act_layer=act, weight_std=1.0, bias=False)
    mc = simulate_grams(net, two_inputs(WIDTH).float(), NUM_NETWORKS, generator=gen(4))
    v0 = mc.grams[0, 0]
    chain = GramTrajectories(mlp_gram_chain(v0, WIDTH, DEPTH, act(), NUM_CHAINS, generator=gen(5)))
    assert_same_law(mc.correlation()[:, DEPTH], chain.correlation()[:, DEPTH], "rho_d")
    for layer in (1, DEPTH):
        assert_same_law(
            mc.variance()[:, layer].log(), chain.variance()[:, layer].log(), f"log V11_{layer}"
        )
    wrong_var = mlp_gram_chain(
        v0, WIDTH, DEPTH, act(), NUM_CHAINS, generator=gen(5), weight_var=1.3
    )
    assert_different_law(
        mc.variance()[:, DEPTH].log(), GramTrajectories(wrong_var).variance()[:, DEPTH].log(),
        "log V11 with weight_var 1.3",
    )  # fmt: skip
    wrong_shape = ShapedReLU(0.0, -3.0, DEPTH)
    wrong_rho = mlp_gram_chain(v0, WIDTH, DEPTH, wrong_shape, NUM_CHAINS, generator=gen(5))
    assert_different_law(
        mc.correlation()[:, DEPTH], GramTrajectories(wrong_rho).correlation()[:, DEPTH],
        "rho_d with c_minus = -3",
    )  # fmt: skip


def test_resnet_matches_the_gram_chain() -> None:
    """ResidualMLP (no projection, no bias, weight_std 1, beta = 1/sqrt d) vs the stream chain."""
    beta = 1.0 / math.sqrt(DEPTH)
    net = ResidualMLP(
        WIDTH, WIDTH, DEPTH, None, branch_scale=beta, bias=False, weight_std=1.0,
        input_projection=False,
    )  # fmt: skip
    x = two_inputs(WIDTH, rho=0.3)
    mc = simulate_grams(net, x.float(), NUM_NETWORKS, generator=gen(6))
    # Index l is the stream after l blocks; index 0 is the input itself, not repeated.
    assert mc.grams.shape == (NUM_NETWORKS, DEPTH + 1, 2, 2)
    chain = GramTrajectories(
        resnet_gram_chain(x, DEPTH, beta, torch.relu, NUM_CHAINS, generator=gen(7))
    )
    torch.testing.assert_close(mc.grams[0, 0], chain.grams[0, 0])
    for layer in (1, DEPTH):
        assert_same_law(mc.correlation()[:, layer], chain.correlation()[:, layer], f"rho_{layer}")
        assert_same_law(
            mc.variance()[:, layer].log(), chain.variance()[:, layer].log(), f"log V11_{layer}"
        )
    wrong = GramTrajectories(
        resnet_gram_chain(x, DEPTH, 1.5 * beta, torch.relu, NUM_CHAINS, generator=gen(7))
    )
    assert_different_law(
        mc.variance()[:, DEPTH].log(), wrong.variance()[:, DEPTH].log(), "log V11, 1.5 beta"
    )


@pytest.mark.parametrize("sigma_r", [1.0, 1.5])
def test_resnet_norm_grows_like_exp_sigma_squared_over_two(sigma_r: float) -> None:
    """E[V11(t=1)] = e^{sigma_r^2 / 2} V11(0) (`ScaledResNetModel`), up to O(1/d)."""
    width, depth = 256, 64
    x = two_inputs(width)
    chain = GramTrajectories(
        resnet_gram_chain(x, depth, sigma_r / math.sqrt(depth), torch.relu, 1000, generator=gen(8))
    )
    final = chain.variance()[:, depth]
    limit = math.exp(sigma_r**2 / 2)
    # The exact finite-d mean is (1 + sigma^2/(2d))^d; the gap to the limit is O(1/d).
    discretisation = limit - (1 + sigma_r**2 / (2 * depth)) ** depth
    se = final.std().item() / math.sqrt(final.numel())
    assert abs(final.mean().item() - limit) < 4 * se + discretisation
    # The same on the torch network (smaller, since it costs O(n^2) per layer).
    width, depth, num = 128, 32, 200
    net = ResidualMLP(
        width, width, depth, None, branch_scale=sigma_r / math.sqrt(depth), bias=False,
        weight_std=1.0, input_projection=False,
    )  # fmt: skip
    final = simulate_grams(net, two_inputs(width).float(), num, generator=gen(9)).variance()[
        :, depth
    ]
    discretisation = limit - (1 + sigma_r**2 / (2 * depth)) ** depth
    se = final.std().item() / math.sqrt(num)
    assert abs(final.mean().item() - limit) < 4 * se + discretisation


# --------------------------------------------------------------------- the model's own init
FIRST_LAYER_INITS = {
    # name -> (MLP kwargs, E[W^2] * fan_in, bias variance)
    "standard": ({"weight_std": math.sqrt(2)}, 2.0, 0.0),
    "standard_with_bias": ({"weight_std": 1.0, "bias_std": 0.5}, 1.0, 0.25),
    "ntk": ({"weight_std": math.sqrt(2), "parameterization": "ntk"}, 2.0, 0.0),
    # nn.Linear: weight and bias U(-b, b), b = 1/sqrt(fan_in = 16), variance b^2/3.
    "default": ({}, 1 / 3, 1 / (3 * 16)),
}


@pytest.mark.parametrize("init", list(FIRST_LAYER_INITS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_first_layer_gram_has_the_analytic_distribution(init: str, dtype: torch.dtype) -> None:
    """Index 1 ("pre") is W x / fan_in-scaled: a Wishart mean s^2 G_0 + b^2 (exact variance
    for Gaussian weights), so the Monte Carlo draws from the model's own initialisation."""
    kwargs, weight_var, bias_var = FIRST_LAYER_INITS[init]
    fan_in, width, num = 16, 64, 2000
    net = MLP(fan_in, [width], 1, dtype=dtype, **kwargs)
    x = two_inputs(fan_in, rho=0.5)
    mc = simulate_grams(net, x, num, generator=gen(10), representation="pre")
    assert mc.grams.dtype == torch.float64 and mc.widths == (fan_in, width, 1)
    torch.testing.assert_close(mc.grams[:, 0], (x @ x.T / fan_in).expand(num, 2, 2))
    g0 = x @ x.T / fan_in
    expected = weight_var * g0 + bias_var
    first = mc.layer(1)
    se = first.std(0) / math.sqrt(num)
    assert torch.all((first.mean(0) - expected).abs() < 5 * se), (first.mean(0), expected)
    if init in ("standard", "ntk"):  # Gaussian weights, no bias: an exact Wishart matrix
        var11 = 2 * expected[0, 0] ** 2 / width
        var12 = (expected[0, 0] * expected[1, 1] + expected[0, 1] ** 2) / width
        for empirical, exact in ((first[:, 0, 0].var(), var11), (first[:, 0, 1].var(), var12)):
            # SE of a sample variance ~ sqrt(2 / num) relative (near-Gaussian entries).
            assert abs(empirical / exact - 1) < 6 * math.sqrt(2 / num)


def test_post_activation_grams_are_the_activation_of_the_same_draws() -> None:
    """ "post" and "pre" see the same weights: with identity activation they coincide, and with
    ReLU the post diagonal is about half the pre diagonal."""
    x = two_inputs(16).float()
    linear = MLP(16, [32, 32], 1, act_layer="identity", weight_std=1.0)
    post = simulate_grams(linear, x, 50, generator=gen(11))
    pre = simulate_grams(linear, x, 50, generator=gen(11), representation="pre")
    torch.testing.assert_close(post.grams, pre.grams)
    relu = MLP(16, [512], 1, weight_std=1.0)
    post = simulate_grams(relu, x, 50, generator=gen(12)).variance()[:, 1]
    pre = simulate_grams(relu, x, 50, generator=gen(12), representation="pre").variance()[:, 1]
    assert torch.all(post < pre) and abs((post / pre).mean().item() - 0.5) < 0.05


def test_batched_networks_equal_a_loop_over_reinitialised_models(monkeypatch) -> None:
    """With one network per RNG block, network i is the model after `reset_parameters` of each
    DenseLinear (in module order) with a generator seeded by the i-th seed drawn from
    ``generator``: the vmapped Monte Carlo equals a plain loop, up to rounding."""
    from perceptrons.theory import montecarlo

    monkeypatch.setattr(montecarlo, "rng_block", lambda params_per_network: 1)
    norm_net = MLP(8, [16, 12], 3, norm_layer=nn.LayerNorm, weight_std=1.3, bias_std=0.2)
    for net in (norm_net, ResidualMLP(8, 16, 3, 4, weight_std=1.0, bias_std=0.1)):
        x = torch.randn(5, 8, generator=gen(13))
        num = 6
        mc = simulate_grams(net, x, num, generator=gen(14), chunk_size=4)
        seeds = torch.randint(0, 2**62, (num,), generator=gen(14)).tolist()
        for i, seed in enumerate(seeds):
            generator = gen(seed)
            for module in net.modules():
                if isinstance(module, DenseLinear):
                    module.reset_parameters(generator=generator)
            with torch.no_grad():
                hidden = net.forward_hidden(x, post_activation=True)
            grams = [x @ x.T / 8] + [h @ h.T / h.shape[1] for h in hidden]
            torch.testing.assert_close(
                mc.grams[i], torch.stack(grams).double(), rtol=1e-5, atol=1e-6
            )


# ------------------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_deterministic_and_independent_of_chunking_and_threads(dtype: torch.dtype, monkeypatch):
    net = MLP(12, [24] * 3, 2, weight_std=1.0, bias_std=0.1, dtype=dtype)
    x = torch.randn(3, 12, generator=gen(15), dtype=dtype)
    reference = simulate_grams(net, x, 70, generator=gen(16)).grams
    assert torch.equal(simulate_grams(net, x, 70, generator=gen(16)).grams, reference)
    for chunk_size in (1, 16, 33, 1000):
        chunked = simulate_grams(net, x, 70, generator=gen(16), chunk_size=chunk_size)
        assert torch.equal(chunked.grams, reference), chunk_size
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert torch.equal(simulate_grams(net, x, 70, generator=gen(16)).grams, reference)
    assert not torch.equal(simulate_grams(net, x, 70, generator=gen(17)).grams, reference)
    # Different networks are different draws.
    assert not torch.equal(reference[0, 1], reference[1, 1])


def test_model_state_is_restored() -> None:
    net = MLP(6, [8, 8], 1, dropout=0.5, weight_std=1.0)
    net.train()
    net.layers[0].eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    simulate_grams(net, torch.randn(2, 6), 4, generator=gen(0))
    assert net.training and not net.layers[0].training and net.layers[1].training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


# ------------------------------------------------------------------------------ the chains
def test_mlp_chain_tends_to_the_infinite_width_recursion() -> None:
    chain = GramTrajectories(
        mlp_gram_chain(torch.eye(2), 8192, 4, torch.relu, 20, generator=gen(18), weight_var=2.0)
    )
    rho = torch.tensor(0.0, dtype=torch.float64)
    for layer in range(1, 5):
        rho = relu_correlation_map(rho)
        # sd of a correlation after l layers at width n is about sqrt(l / n) < 0.03 here.
        assert abs(chain.correlation()[:, layer].mean().item() - rho.item()) < 0.03
    # E[V11] is preserved exactly (ReLU, weight_var 2): a martingale.
    assert abs(chain.variance()[:, 4].mean().item() - 1) < 4 * chain.variance()[:, 4].std() / 4


def test_chains_handle_singular_gram_matrices() -> None:
    """Equal inputs (rho = 1): V is singular at every layer, the factorisation still works."""
    chain = GramTrajectories(
        mlp_gram_chain(torch.ones(2, 2), 16, 5, torch.relu, 10, generator=gen(19), weight_var=2.0)
    )
    assert torch.isfinite(chain.grams).all()
    torch.testing.assert_close(chain.correlation(), torch.ones(10, 6, dtype=torch.float64))
    x = torch.ones(2, 16)
    stream = GramTrajectories(resnet_gram_chain(x, 4, 0.5, torch.relu, 10, generator=gen(20)))
    torch.testing.assert_close(stream.correlation(), torch.ones(10, 5, dtype=torch.float64))


def test_moment_matched_chain_matches_the_exact_relu_chain() -> None:
    """The study's unshaped q check, scaled down from n = 256 to n = 64 (M = 2000 each, < 1 s).

    The moment-matched chain is an approximation (it drops o(eps/n) terms): at n = 64 the KS
    distance to the exact chain is measured at 0.02-0.04 (critical values 0.043 at 5%, 0.070
    at 1e-4), so the tolerance is 0.06; wrong constants (b, s^2) give 0.14-0.38 and must
    exceed 0.12.
    """
    width, num = 64, 2000
    exact = mlp_gram_chain(
        torch.eye(2), width, width, torch.relu, num, generator=gen(21), weight_var=2.0
    )
    eps_exact = 1 - GramTrajectories(exact).correlation()  # (M, n + 1)
    layers = (width // 4, width // 2, width)  # t = 0.25, 0.5, 1
    eps = moment_matched_chain(width, width, num, generator=gen(22))
    assert eps.shape == (width + 1, num) and torch.all(eps[0] == 1)
    for layer in layers:
        assert ks_statistic(eps_exact[:, layer], eps[layer]) < 0.06, layer
    for drift, variance in ((0.0, 8.0), (4.0, 8.0), (2.0, 4.0), (2.0, 12.0)):
        wrong = moment_matched_chain(
            width, width, num, generator=gen(22), drift=drift, variance=variance
        )
        distance = max(ks_statistic(eps_exact[:, t], wrong[t]) for t in layers)
        assert distance > 0.12, (drift, variance, distance)


# -------------------------------------------------------------------------- KS and helpers
def test_ks_statistic_equals_scipy() -> None:
    a = torch.randn(300, generator=gen(23))
    b = torch.randn(500, generator=gen(24)) + 0.2
    ties = torch.randint(0, 5, (200,), generator=gen(25)).double()
    ties_b = torch.randint(0, 6, (90,), generator=gen(26)).double()
    for x, y in ((a, b), (ties, ties_b), (a[:1], b)):
        expected = scipy.stats.ks_2samp(x.numpy(), y.numpy()).statistic
        assert ks_statistic(x, y) == pytest.approx(expected, abs=1e-12)
    assert ks_statistic(a, a) == 0.0
    assert ks_critical_value(1000, 1000) == pytest.approx(1.358 * math.sqrt(2 / 1000), rel=1e-3)
    assert ks_critical_value(10, 40, alpha=1e-4) > ks_critical_value(10, 40)


def test_gram_trajectories_helpers() -> None:
    grams = torch.tensor([[[[4.0, 2.0], [2.0, 1.0]], [[1.0, 0.0], [0.0, 0.0]]]])
    trajectories = GramTrajectories(grams.double())
    assert (trajectories.num_networks, trajectories.num_layers, trajectories.num_inputs) == (
        1,
        1,
        2,
    )
    torch.testing.assert_close(trajectories.correlation(), torch.tensor([[1.0, 0.0]]).double())
    torch.testing.assert_close(trajectories.variance(1), torch.tensor([[1.0, 0.0]]).double())
    torch.testing.assert_close(trajectories.final, grams[:, -1].double())
    torch.testing.assert_close(trajectories.mean(), grams[0].double())
    with pytest.raises(ValueError, match=r"\(M, L \+ 1, k, k\)"):
        GramTrajectories(torch.zeros(2, 3, 2))
    with pytest.raises(ValueError, match=r"\(M, L \+ 1, k, k\)"):
        GramTrajectories(torch.zeros(2, 3, 2, 3))
    with pytest.raises(ValueError, match="widths"):
        GramTrajectories(torch.zeros(2, 3, 2, 2), widths=(1, 2))


# ------------------------------------------------------------------------------- errors
class _NoPostActivation(nn.Module):
    """A wrapper whose forward_hidden has no post_activation keyword."""

    def __init__(self) -> None:
        super().__init__()
        self.net = MLP(4, [8], 2)

    def forward_hidden(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net.forward_hidden(x)


class _NoDenseLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 8)

    def forward_hidden(self, x: torch.Tensor, *, post_activation: bool = False) -> list:
        return [self.linear(x)]


def test_simulate_grams_rejects_bad_arguments() -> None:
    net = MLP(4, [8], 2)
    x = torch.randn(3, 4)
    with pytest.raises(ValueError, match=r"inputs: expected shape \(k, 4\), got \(3, 5\)"):
        simulate_grams(net, torch.randn(3, 5), 2, generator=gen(0))
    with pytest.raises(ValueError, match=r"\(k, 4\)"):
        simulate_grams(net, torch.randn(4), 2, generator=gen(0))
    with pytest.raises(ValueError, match="finite"):
        simulate_grams(net, torch.full((2, 4), math.nan), 2, generator=gen(0))
    with pytest.raises(TypeError, match="floating"):
        simulate_grams(net, torch.ones(2, 4, dtype=torch.int64), 2, generator=gen(0))
    for bad in (0, -3, 2.0):
        with pytest.raises(ValueError, match="num_networks"):
            simulate_grams(net, x, bad, generator=gen(0))
    with pytest.raises(ValueError, match="chunk_size"):
        simulate_grams(net, x, 2, generator=gen(0), chunk_size=0)
    with pytest.raises(ValueError, match="representation"):
        simulate_grams(net, x, 2, generator=gen(0), representation="mid")
    with pytest.raises(TypeError, match="generator"):
        simulate_grams(net, x, 2, generator=None)
    with pytest.raises(TypeError, match="forward_hidden"):
        simulate_grams(nn.Linear(4, 2), x, 2, generator=gen(0))
    with pytest.raises(TypeError, match="post_activation"):
        simulate_grams(_NoPostActivation(), x, 2, generator=gen(0))
    wrapped = simulate_grams(_NoPostActivation(), x, 2, generator=gen(0), representation="pre")
    assert wrapped.grams.shape == (2, 3, 3, 3)
    with pytest.raises(ValueError, match="DenseLinear"):
        simulate_grams(_NoDenseLinear(), x, 2, generator=gen(0))


def test_chains_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match="symmetric"):
        mlp_gram_chain(
            torch.tensor([[1.0, 0.5], [0.0, 1.0]]), 4, 2, torch.relu, 3, generator=gen(0)
        )
    with pytest.raises(ValueError, match="semi-definite"):
        mlp_gram_chain(
            torch.tensor([[1.0, 2.0], [2.0, 1.0]]), 4, 2, torch.relu, 3, generator=gen(0)
        )
    with pytest.raises(ValueError, match=r"v0: expected shape \(k, k\)"):
        mlp_gram_chain(torch.ones(2, 3), 4, 2, torch.relu, 3, generator=gen(0))
    with pytest.raises(ValueError, match="width"):
        mlp_gram_chain(torch.eye(2), 0, 2, torch.relu, 3, generator=gen(0))
    with pytest.raises(ValueError, match="weight_var"):
        mlp_gram_chain(torch.eye(2), 4, 2, torch.relu, 3, generator=gen(0), weight_var=-1.0)
    with pytest.raises(TypeError, match="generator"):
        mlp_gram_chain(torch.eye(2), 4, 2, torch.relu, 3, generator=None)
    with pytest.raises(ValueError, match=r"x0: expected shape \(k, n\)"):
        resnet_gram_chain(torch.ones(4), 2, 0.5, torch.relu, 3, generator=gen(0))
    with pytest.raises(ValueError, match="num_chains"):
        resnet_gram_chain(torch.ones(2, 4), 2, 0.5, torch.relu, 0, generator=gen(0))
    with pytest.raises(ValueError, match="rho0"):
        moment_matched_chain(8, 4, 3, generator=gen(0), rho0=1.5)
    with pytest.raises(ValueError, match="a: expected a non-empty"):
        ks_statistic(torch.tensor([]), torch.ones(3))
    with pytest.raises(ValueError, match="b: expected"):
        ks_statistic(torch.ones(3), torch.tensor([math.inf]))
    with pytest.raises(ValueError, match="alpha"):
        ks_critical_value(10, 10, alpha=1.0)


def test_ks_normal_statistic_equals_scipy_and_rejects_a_wrong_variance() -> None:
    sample = 1.5 * torch.randn(2000, generator=gen(27), dtype=torch.float64)
    for variance in (2.25, 1.0, 4.0):
        expected = scipy.stats.kstest(sample.numpy(), "norm", (0, math.sqrt(variance))).statistic
        assert ks_normal_statistic(sample, variance) == pytest.approx(expected, abs=1e-12)
    critical = ks_critical_value(sample.numel(), alpha=ALPHA)  # one-sample
    assert ks_normal_statistic(sample, 2.25) < critical
    assert ks_normal_statistic(sample, 1.0) > critical  # sd 1 instead of 1.5: rejected
    assert ks_normal_statistic(sample.reshape(40, 50), 2.25) == ks_normal_statistic(sample, 2.25)


def test_one_sample_ks_critical_value_is_the_two_sample_limit() -> None:
    c = math.sqrt(-0.5 * math.log(0.05 / 2))
    assert ks_critical_value(2000) == c / math.sqrt(2000)
    assert ks_critical_value(2000, None, 0.05) == ks_critical_value(2000)
    assert ks_critical_value(2000, 10**9) == pytest.approx(ks_critical_value(2000), rel=1e-5)
    assert ks_critical_value(100, alpha=1e-4) > ks_critical_value(100)
    with pytest.raises(ValueError, match="n1"):
        ks_critical_value(0)
    with pytest.raises(ValueError, match="n2"):
        ks_critical_value(10, 0)
    with pytest.raises(ValueError, match="variance"):
        ks_normal_statistic(torch.ones(3), 0.0)
    with pytest.raises(ValueError, match="sample: expected a non-empty"):
        ks_normal_statistic(torch.tensor([]))
