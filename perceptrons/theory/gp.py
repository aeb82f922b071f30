"""Exact Gaussian-process regression with infinite-width kernels, as scikit-learn estimators.

Dimension legend: ``n`` training inputs; ``m`` test inputs; ``d`` input features; ``t`` outputs.

* `NNGPRegressor`: the posterior of the NNGP prior (Lee et al. 2018): Bayesian inference with an
  infinitely wide network.
* `NTKRegressor`: the infinite-time mean of an infinitely wide network trained by full-batch
  gradient descent on the MSE (Jacot et al. 2018), and its NTK-GP variance, as neural-tangents'
  ``nt.predict.gradient_descent_mse_ensemble(kernel_fn, X, y, diag_reg=jitter)`` at
  ``t = None`` with ``get='ntk'``.
* `DEQKernel`: the DEQ NNGP kernel (`perceptrons.theory.kernels.deq_kernel`) as a kernel
  description; NNGP only.

The ``jitter`` is relative, as neural-tangents' ``diag_reg``: the matrix factorised is
:math:`K + \\text{jitter}\\cdot\\operatorname{mean}(\\operatorname{diag}K)\\, I`. If the Cholesky
factorisation fails, the jitter is multiplied by 10 and retried up to `MAX_JITTER`; the value
used is stored in ``jitter_``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin

from perceptrons.theory.kernels import Activation, Kernel, deq_kernel

__all__ = ["MAX_JITTER", "DEQKernel", "NNGPRegressor", "NTKRegressor"]

MAX_JITTER = 1e-2
"""Largest relative jitter tried before a kernel is declared not positive definite."""

_DIAG_BLOCK = 256  # test inputs per block when computing the kernel diagonal


@dataclasses.dataclass(frozen=True)
class DEQKernel:
    """The DEQ NNGP kernel of :math:`h^* = \\phi(W h^* + Ux + b)` as a kernel description.

    See `perceptrons.theory.kernels.deq_kernel` for the equation and the existence condition.

    Attributes:
        weight_std: :math:`\\sigma_w > 0`.
        input_std: :math:`\\sigma_u > 0`.
        bias_std: :math:`\\sigma_b \\ge 0`.
        activation: :math:`\\phi` (``None``: ReLU).
        output: ``"preactivation"`` (:math:`K^*`) or ``"hidden"`` (:math:`V_\\phi(K^*)`).
    """

    weight_std: float
    input_std: float
    bias_std: float = 0.0
    activation: Activation | None = None
    output: Literal["preactivation", "hidden"] = "preactivation"

    def kernel(
        self,
        x1: torch.Tensor,
        x2: torch.Tensor | None = None,
        *,
        ntk: bool = False,
        block_size: int = 1024,
        dtype: torch.dtype = torch.float64,
    ) -> Kernel:
        """DEQ NNGP kernel between ``x1`` (n1, d) and ``x2`` (n2, d): ``Kernel(nngp (n1, n2))``.

        Raises:
            NotImplementedError: ``ntk=True`` (no DEQ NTK in this library).
            ValueError, RuntimeError: as `deq_kernel`.
        """
        if ntk:
            raise NotImplementedError(
                "DEQKernel: only the NNGP kernel is implemented (no DEQ NTK); "
                "use NNGPRegressor, or ntk=False"
            )
        k, _ = deq_kernel(
            x1,
            x2,
            weight_std=self.weight_std,
            input_std=self.input_std,
            bias_std=self.bias_std,
            activation=self.activation,
            output=self.output,
            block_size=block_size,
            dtype=dtype,
        )
        return Kernel(k, None)


def _torch_dtype(dtype: Any) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        resolved = dtype
    elif isinstance(dtype, str) and isinstance(getattr(torch, dtype, None), torch.dtype):
        resolved = getattr(torch, dtype)
    else:
        raise ValueError(f"dtype: expected 'float64' or 'float32', got {dtype!r}")
    if resolved not in (torch.float32, torch.float64):
        raise ValueError(f"dtype: expected 'float64' or 'float32', got {dtype!r}")
    return resolved


def _as_matrix(name: str, value: Any, dtype: torch.dtype) -> torch.Tensor:
    array = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
    if array.ndim != 2:
        raise ValueError(f"{name}: expected shape (num_samples, num_features), got {array.shape}")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError(f"{name}: expected a non-empty array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"{name}: expected real numbers, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return torch.as_tensor(array.astype(np.float64)).to(dtype)


def _as_targets(value: Any, num_samples: int, dtype: torch.dtype) -> torch.Tensor:
    array = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
    if array.ndim not in (1, 2):
        raise ValueError(f"y: expected shape (n,) or (n, t), got {array.shape}")
    if array.shape[0] != num_samples:
        raise ValueError(f"y: expected {num_samples} rows to match X, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"y: expected real numbers, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        raise ValueError("y: contains NaN or infinite values")
    return torch.as_tensor(array.astype(np.float64)).to(dtype)


def _check_kernel(kernel: Any) -> None:
    if not callable(getattr(kernel, "kernel", None)):
        raise TypeError(
            "kernel: expected a kernel description with .kernel(x1, x2, ntk=...) "
            f"(e.g. serial(Dense(...), ReLU(), ...) or DEQKernel(...)), got {kernel!r}"
        )


def _cholesky(matrix: torch.Tensor, jitter: float) -> tuple[torch.Tensor, float]:
    """Cholesky factor of ``matrix + jitter·mean(diag)·I`` with growing jitter: ``(L, jitter)``."""
    n = matrix.shape[0]
    scale = float(matrix.diagonal().mean())
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(
            f"kernel: not positive definite (mean of the diagonal is {scale!r}); "
            "check the kernel description"
        )
    eye = torch.eye(n, dtype=matrix.dtype, device=matrix.device)
    tried, current = [], jitter
    while True:
        factor, info = torch.linalg.cholesky_ex(matrix + current * scale * eye)
        tried.append(current)
        if int(info) == 0:
            return factor, current
        if current >= MAX_JITTER:
            raise ValueError(
                "kernel: the training kernel matrix is not positive definite; Cholesky failed "
                f"with relative jitter {', '.join(f'{j:.1e}' for j in tried)} "
                f"(cap MAX_JITTER={MAX_JITTER:g}); increase jitter or check the kernel"
            )
        current = min(max(current * 10, 1e-12), MAX_JITTER)


class _KernelRegressor(RegressorMixin, BaseEstimator):
    """Shared fitting/validation of `NNGPRegressor` and `NTKRegressor`."""

    _uses_ntk = False

    def __init__(self, kernel: Any, *, jitter: float = 1e-10, dtype: str = "float64") -> None:
        self.kernel = kernel
        self.jitter = jitter
        self.dtype = dtype

    # ------------------------------------------------------------------ helpers
    def _check_params(self) -> torch.dtype:
        _check_kernel(self.kernel)
        if (
            not isinstance(self.jitter, int | float)
            or isinstance(self.jitter, bool)
            or not np.isfinite(self.jitter)
            or self.jitter < 0
        ):
            raise ValueError(f"jitter: expected a finite number >= 0, got {self.jitter!r}")
        return _torch_dtype(self.dtype)

    def _k(self, x1: torch.Tensor, x2: torch.Tensor | None, dtype: torch.dtype) -> Kernel:
        return self.kernel.kernel(x1, x2, ntk=self._uses_ntk, dtype=dtype)

    def _diagonal(self, x: torch.Tensor, dtype: torch.dtype) -> Kernel:
        """Diagonals ``k(x_i, x_i)`` of shape (m,), in blocks of `_DIAG_BLOCK`."""
        nngp, ntk = [], []
        for start in range(0, x.shape[0], _DIAG_BLOCK):
            k = self._k(x[start : start + _DIAG_BLOCK], None, dtype)
            nngp.append(k.nngp.diagonal())
            if k.ntk is not None:
                ntk.append(k.ntk.diagonal())
        return Kernel(torch.cat(nngp), torch.cat(ntk) if ntk else None)

    def _check_fitted_input(self, X: Any) -> tuple[torch.Tensor, torch.dtype]:
        if not hasattr(self, "X_train_"):
            raise RuntimeError(f"{type(self).__name__}: call fit(X, y) before predict")
        dtype = _torch_dtype(self.dtype)
        x = _as_matrix("X", X, dtype)
        if x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X: expected {self.n_features_in_} features as in fit, got shape {tuple(x.shape)}"
            )
        return x, dtype

    def _output(self, mean: torch.Tensor) -> np.ndarray:
        mean = mean.cpu().numpy()
        return mean[:, 0] if self._y_1d else mean

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any) -> _KernelRegressor:
        """Condition on training data ``X`` (n, d) and targets ``y`` (n,) or (n, t).

        Returns:
            ``self``.

        Raises:
            ValueError: bad shapes, NaN/inf, bad parameters, or a kernel that is not positive
                definite even with jitter `MAX_JITTER`.
            NotImplementedError: `NTKRegressor` with a kernel that has no NTK.
        """
        dtype = self._check_params()
        x = _as_matrix("X", X, dtype)
        targets = _as_targets(y, x.shape[0], dtype)
        self._y_1d = targets.ndim == 1
        targets = targets[:, None] if self._y_1d else targets
        k = self._k(x, None, dtype)
        train = k.ntk if self._uses_ntk else k.nngp
        factor, used = _cholesky(train, float(self.jitter))
        self.X_train_ = x
        self.n_features_in_ = x.shape[1]
        self.jitter_ = used
        self.cholesky_ = factor
        self.alpha_ = torch.cholesky_solve(targets, factor)  # (n, t)
        self.kernel_train_ = k
        return self


class NNGPRegressor(_KernelRegressor):
    """Exact GP regression with an infinite-width NNGP kernel (Bayesian infinite network).

    .. math::

        \\mu(x) = K(x, X)(K + \\epsilon I)^{-1} y, \\qquad
        \\sigma^2(x) = K(x, x) - K(x, X)(K + \\epsilon I)^{-1} K(X, x),

    with :math:`\\epsilon = \\text{jitter}\\cdot\\operatorname{mean}\\operatorname{diag}K`.

    Args:
        kernel: A description from `perceptrons.theory.kernels` (``serial(Dense(...), ...)``)
            or a `DEQKernel`.
        jitter: Relative diagonal regulariser (neural-tangents' ``diag_reg``), >= 0.
        dtype: ``"float64"`` (default) or ``"float32"``.
    """

    _uses_ntk = False

    def predict(
        self, X: Any, return_std: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Posterior mean (m,) or (m, t) at ``X`` (m, d), and, if ``return_std``, std (m,)."""
        x, dtype = self._check_fitted_input(X)
        cross = self._k(x, self.X_train_, dtype).nngp  # (m, n)
        mean = self._output(cross @ self.alpha_)
        if not return_std:
            return mean
        prior = self._diagonal(x, dtype).nngp
        half = torch.linalg.solve_triangular(self.cholesky_, cross.T, upper=False)  # (n, m)
        var = (prior - (half * half).sum(0)).clamp_min(0)
        return mean, var.sqrt().cpu().numpy()


class NTKRegressor(_KernelRegressor):
    """Infinite-width network trained to convergence by gradient descent on the MSE.

    Mean and variance over initialisations at :math:`t = \\infty` (neural-tangents'
    ``gradient_descent_mse_ensemble``, ``get='ntk'``), with :math:`\\Theta` the NTK, :math:`K`
    the NNGP and :math:`\\tilde\\Theta = \\Theta(X, X) + \\epsilon I`:

    .. math::

        \\mu(x) = \\Theta(x, X)\\tilde\\Theta^{-1} y, \\qquad
        \\sigma^2(x) = K(x, x) + A K(X, X) A^\\top - 2 A K(X, x), \\quad
        A = \\Theta(x, X)\\tilde\\Theta^{-1}.

    Args:
        kernel: A description from `perceptrons.theory.kernels` in NTK parameterisation
            (`DEQKernel` has no NTK: ``fit`` raises ``NotImplementedError``).
        jitter: Relative diagonal regulariser (neural-tangents' ``diag_reg``), >= 0.
        dtype: ``"float64"`` (default) or ``"float32"``.
    """

    _uses_ntk = True

    def fit(self, X: Any, y: Any) -> NTKRegressor:  # noqa: D102 - documented on the base
        if isinstance(self.kernel, DEQKernel):
            raise NotImplementedError(
                "NTKRegressor: DEQKernel has no NTK in this library; use NNGPRegressor"
            )
        return super().fit(X, y)

    def predict(
        self, X: Any, return_std: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Infinite-time GD mean (m,) or (m, t) at ``X`` (m, d), and, if ``return_std``, the
        NTK-GP std (m,) over random initialisations."""
        x, dtype = self._check_fitted_input(X)
        cross = self._k(x, self.X_train_, dtype)  # nngp, ntk: (m, n)
        mean = self._output(cross.ntk @ self.alpha_)
        if not return_std:
            return mean
        prior = self._diagonal(x, dtype).nngp
        a = torch.cholesky_solve(cross.ntk.T, self.cholesky_).T  # (m, n)
        k_train = self.kernel_train_.nngp
        var = prior + ((a @ k_train) * a).sum(1) - 2 * (a * cross.nngp).sum(1)
        return mean, var.clamp_min(0).sqrt().cpu().numpy()
