"""Infinite-width NNGP and NTK kernels from one network description, and the DEQ NNGP kernel.

Dimension legend: ``n1``, ``n2`` numbers of inputs in ``x1`` and ``x2``; ``d`` input features.

One description (as in neural-tangents' ``stax.serial``) yields both the finite network
(`Layer.build`, made of `perceptrons.layers.DenseLinear` so the parameterisations match) and its
infinite-width kernels (`Layer.kernel`)::

    net = serial(Dense(1.5, 0.1), ReLU(), Dense(1.0))
    k = net.kernel(x1, x2)          # k.nngp, k.ntk: (n1, n2)
    module = net.build(d, width=512, generator=torch.Generator().manual_seed(0))

Conventions are neural-tangents' ``stax.Dense(out, W_std, b_std)``: the first ``Dense`` sees the
input kernel :math:`x\\cdot x'/d`, so :math:`K^1 = \\sigma_w^2 x\\cdot x'/d + \\sigma_b^2`. Every
``Dense`` maps :math:`K \\mapsto \\sigma_w^2 K + \\sigma_b^2` and every activation
:math:`K \\mapsto V_\\phi(K)`; in NTK parameterisation

.. math::

    \\Theta \\mapsto \\dot V_\\phi(K) \\odot \\Theta \\ \\text{(activation)}, \\qquad
    \\Theta \\mapsto \\sigma_w^2 \\Theta + K_{\\text{new}} \\ \\text{(Dense)},

so :math:`\\Theta^{\\ell+1} = \\sigma_w^2 \\dot V_\\phi(K^\\ell)\\odot\\Theta^\\ell +
K^{\\ell+1}`. The variances :math:`K(x, x)` are propagated alongside the cross kernel, so
``x1 != x2`` works.
``bias_std=None`` means no bias (neural-tangents' ``b_std=None``); ``bias_std=0`` is a bias
initialised at zero.

Standard parameterisation (``Dense(..., parameterization="standard")``) has the same NNGP; its
NTK adds the fan-in times the incoming NNGP instead of the NNGP,
:math:`\\Theta \\mapsto \\sigma_w^2\\Theta + n_{in} K (+1 \\text{ with a bias})`, exactly as
neural-tangents does, so it grows with the width: pass the hidden width the finite network
would have, ``kernel(..., width=n)`` (the first layer's fan-in is ``d``).

`deq_kernel` computes the DEQ NNGP kernel of Gao et al. (2023), arXiv:2310.10767 (Corollary
4.2 in the numbering of the authors' code): the fixed point
:math:`K^* = \\sigma_w^2 V_\\phi(K^*) + \\sigma_u^2 x\\cdot x'/d + \\sigma_b^2` by Picard
iteration.

All kernels are float64 (unless ``dtype`` says otherwise), on the device of ``x1``, computed in
blocks of ``block_size`` rows of ``x1`` so peak memory is O(block_size · n2).
"""

from perceptrons.theory.kernels.activations import (
    GELU,
    ABReLU,
    Activation,
    Elementwise,
    Erf,
    Identity,
    LeakyReLU,
    ReLU,
    Sin,
    Tanh,
)
from perceptrons.theory.kernels.core import Dense, Kernel, Layer, Residual, Serial, serial
from perceptrons.theory.kernels.deq import DEQKernelInfo, deq_depth_kernels, deq_kernel

__all__ = [
    "GELU",
    "ABReLU",
    "Activation",
    "DEQKernelInfo",
    "Dense",
    "Elementwise",
    "Erf",
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
]
