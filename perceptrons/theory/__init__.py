"""Theory: infinite-width kernels, scaling limits, Monte Carlo estimators.

* `perceptrons.theory.dual`: dual activations (V-maps) in closed form and by Gauss–Hermite
  quadrature, the ReLU correlation map, the standard MLP NNGP recursion.
* `perceptrons.theory.limits`: the correlation ODE, the neural covariance and correlation SDEs,
  the unshaped q-SDE and their Euler–Maruyama solver (Li & Nica 2023, arXiv:2310.12079).
* `perceptrons.theory.kernels`: one network description (``serial(Dense(...), ReLU(), ...)``)
  giving both the finite network (``.build``) and its NNGP/NTK kernels (``.kernel``), in
  neural-tangents' conventions; the DEQ NNGP kernel (`deq_kernel`, Gao et al. 2023).
* `perceptrons.theory.gp`: scikit-learn GP regressors with these kernels (`NNGPRegressor`,
  `NTKRegressor`), the DEQ kernel as a description (`DEQKernel`) and kernel ridge regression
  with a precomputed kernel (`kernel_ridge_predict`); re-exported here lazily, so that
  importing the kernels does not import scikit-learn.
* `perceptrons.theory.deq_montecarlo`: many independent finite DEQs at initialisation, batched
  (equilibria, iterate Grams); `perceptrons.theory.inputs`: probe inputs with a known Gram.
* `perceptrons.theory.montecarlo`: batched Monte Carlo of real networks at initialisation
  (layer-wise Gram trajectories), the exact Gram-chain simulators and two-sample KS helpers.
"""

from perceptrons.theory.deq_montecarlo import (
    DEQEquilibria,
    sample_deq_equilibria,
    sample_deq_iterate_grams,
    solve_deq_equilibria,
)
from perceptrons.theory.dual import (
    ab_relu_dual,
    correlation_gap,
    dual_matrix,
    erf_dual,
    erf_prime_dual,
    gauss_hermite_dual,
    nngp_recursion,
    one_minus_j,
    relu_correlation_map,
    relu_dual,
    shaped_correlation_drift,
    shaped_relu_correlation_map,
    sign_dual,
    step_dual,
)
from perceptrons.theory.inputs import correlated_inputs, orthonormal_inputs, sphere_inputs
from perceptrons.theory.kernels import (
    GELU,
    ABReLU,
    Activation,
    Dense,
    DEQKernelInfo,
    Elementwise,
    Erf,
    Identity,
    Kernel,
    Layer,
    LeakyReLU,
    ReLU,
    Residual,
    Serial,
    Sin,
    Tanh,
    deq_depth_kernels,
    deq_kernel,
    serial,
)
from perceptrons.theory.limits import (
    Q_STAR,
    correlation_ode,
    effective_c2,
    euler_maruyama,
    explosion_coefficient,
    q_infinite_width,
    shaped_relu_drift,
    simulate_correlation_sde,
    simulate_covariance_sde,
    simulate_q_sde,
    smooth_drift,
)
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

__all__ = [
    "GramTrajectories",
    "Q_STAR",
    "ab_relu_dual",
    "correlation_gap",
    "correlation_ode",
    "dual_matrix",
    "effective_c2",
    "erf_dual",
    "erf_prime_dual",
    "euler_maruyama",
    "explosion_coefficient",
    "gauss_hermite_dual",
    "nngp_recursion",
    "one_minus_j",
    "q_infinite_width",
    "relu_correlation_map",
    "relu_dual",
    "shaped_correlation_drift",
    "shaped_relu_correlation_map",
    "shaped_relu_drift",
    "sign_dual",
    "simulate_correlation_sde",
    "simulate_covariance_sde",
    "simulate_q_sde",
    "smooth_drift",
    "step_dual",
    "ks_critical_value",
    "ks_normal_statistic",
    "ks_statistic",
    "mlp_gram_chain",
    "moment_matched_chain",
    "resnet_gram_chain",
    "simulate_grams",
    # kernels
    "ABReLU",
    "Activation",
    "DEQKernelInfo",
    "Dense",
    "Elementwise",
    "Erf",
    "GELU",
    "Identity",
    "Kernel",
    "Layer",
    "LeakyReLU",
    "ReLU",
    "Residual",
    "Serial",
    "Sin",
    "Tanh",
    "deq_depth_kernels",
    "deq_kernel",
    "serial",
    # DEQ Monte Carlo and probe inputs
    "DEQEquilibria",
    "correlated_inputs",
    "orthonormal_inputs",
    "sample_deq_equilibria",
    "sample_deq_iterate_grams",
    "solve_deq_equilibria",
    "sphere_inputs",
    # gp (loaded on first use: it imports scikit-learn)
    "DEQKernel",
    "NNGPRegressor",
    "NTKRegressor",
    "kernel_ridge_predict",
]

_LAZY = {name: "perceptrons.theory.gp" for name in __all__[__all__.index("DEQKernel") :]}


def __getattr__(name: str):  # PEP 562: scikit-learn is imported only when gp is used
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'perceptrons.theory' has no attribute {name!r}")
