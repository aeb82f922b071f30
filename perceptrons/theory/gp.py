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
* `kernel_ridge_predict`: kernel ridge regression with precomputed kernel matrices.

The ``jitter`` is relative, as neural-tangents' ``diag_reg``: the matrix factorised is
:math:`K + \\text{jitter}\\cdot\\operatorname{mean}(\\operatorname{diag}K)\\, I`. If the Cholesky
factorisation fails, the jitter is multiplied by 10 and retried up to `MAX_JITTER`; the value
used is stored in ``jitter_``.

Inputs are validated with scikit-learn's own ``validate_data`` and ``check_is_fitted``, so the
regressors pass ``sklearn.utils.estimator_checks`` and behave as other estimators in a
``Pipeline`` or ``GridSearchCV`` (scikit-learn's developer guide, "Developing scikit-learn
estimators"). They accept multi-output targets: a column ``y`` (n, 1) is kept 2-D, and
``predict`` then returns (m, 1).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils import Tags
from sklearn.utils.validation import check_is_fitted, validate_data

from perceptrons.theory.kernels import Activation, Kernel, deq_kernel

__all__ = ["MAX_JITTER", "DEQKernel", "NNGPRegressor", "NTKRegressor", "kernel_ridge_predict"]

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


def _to_numpy(value: Any) -> Any:
    """A torch tensor as a NumPy array (detached, on the CPU); anything else unchanged."""
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value


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

    def __sklearn_tags__(self) -> Tags:
        """scikit-learn estimator tags: dense real input, multi-output regression."""
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def __sklearn_is_fitted__(self) -> bool:
        """Fitted once ``fit`` has completed (a failed ``fit`` may leave ``n_features_in_``)."""
        return hasattr(self, "alpha_")

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
        """Validate ``X`` for ``predict``: fitted estimator, same number of features as in fit.

        Raises:
            sklearn.exceptions.NotFittedError: ``fit`` has not been called.
            ValueError: as ``sklearn.utils.check_array`` (not 2-D, empty, NaN/inf, complex),
                or a number of features other than ``n_features_in_``.
            TypeError: sparse ``X``.
        """
        check_is_fitted(self)
        dtype = _torch_dtype(self.dtype)
        array = validate_data(self, _to_numpy(X), reset=False, dtype=np.float64)
        return torch.tensor(array, dtype=dtype), dtype  # a copy: X may be read-only

    def _output(self, mean: torch.Tensor) -> np.ndarray:
        mean = mean.cpu().numpy()
        return mean[:, 0] if self._y_1d else mean

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any) -> _KernelRegressor:
        """Condition on training data ``X`` (n, d) and targets ``y`` (n,) or (n, t).

        Returns:
            ``self``.

        Raises:
            ValueError: bad shapes, NaN/inf, complex or empty input, ``y=None`` (messages of
                ``sklearn.utils.validation.validate_data``), bad parameters, or a kernel that is
                not positive definite even with jitter `MAX_JITTER`.
            TypeError: sparse input (dense data is required), or a bad ``kernel``.
            NotImplementedError: `NTKRegressor` with a kernel that has no NTK.
        """
        dtype = self._check_params()
        # X and y separately (y may be (n,) or (n, t)), then a length check naming y
        x, targets = validate_data(
            self,
            _to_numpy(X),
            _to_numpy(y),
            validate_separately=({"dtype": np.float64}, {"dtype": np.float64, "ensure_2d": False}),
        )
        if targets.shape[0] != x.shape[0]:
            raise ValueError(f"y: expected {x.shape[0]} rows to match X, got shape {targets.shape}")
        # copies: the fitted state never shares (possibly read-only) memory with the inputs
        x = torch.tensor(x, dtype=dtype)
        targets = torch.tensor(targets, dtype=dtype)
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


def kernel_ridge_predict(
    k_train: torch.Tensor,
    y_train: torch.Tensor,
    k_test_train: torch.Tensor,
    *,
    ridge: float,
    relative: bool = True,
) -> torch.Tensor:
    """Kernel ridge regression with precomputed kernel matrices.

    .. math::

        \\hat y = K_{*X}\\,(K_{XX} + \\lambda I)^{-1} y, \\qquad
        \\lambda = \\begin{cases}
            \\text{ridge}\\cdot\\operatorname{mean}(\\operatorname{diag}K_{XX})
                & \\text{relative} \\\\
            \\text{ridge} & \\text{otherwise,}
        \\end{cases}

    the posterior mean of `NNGPRegressor` for the same kernel with ``jitter = ridge`` (relative),
    but solved with ``torch.linalg.solve`` (LU) instead of a Cholesky factorisation, and without
    the jitter retry. It accepts any kernel matrix, e.g. an empirical Gram matrix
    :math:`h h^\\top / n` of a finite network.

    Args:
        k_train: Training kernel :math:`K_{XX}`, shape ``(n, n)``.
        y_train: Training targets, shape ``(n,)`` or ``(n, t)``.
        k_test_train: Cross kernel :math:`K_{*X}` between test and training inputs, shape
            ``(m, n)``.
        ridge: Diagonal regulariser, finite and >= 0.
        relative: Scale ``ridge`` by the mean of the diagonal of ``k_train`` (as the relative
            ``jitter`` of the regressors, neural-tangents' ``diag_reg``); otherwise add
            ``ridge`` as is.

    Returns:
        Predictions of shape ``(m,)`` for 1-D ``y_train``, ``(m, t)`` otherwise, with the dtype
        and device of ``k_train``.

    Raises:
        TypeError: an argument that is not a tensor, or a non-numeric ``ridge``.
        ValueError: a shape other than the ones above, differing dtypes or devices, a
            non-floating dtype, NaN/inf, a negative or non-finite ``ridge``, or (``relative``)
            a diagonal whose mean is not positive.
        torch.linalg.LinAlgError: ``k_train + ridge I`` is singular.
    """
    for name, value in (("k_train", k_train), ("y_train", y_train), ("k_test_train", k_test_train)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if isinstance(ridge, bool) or not isinstance(ridge, int | float):
        raise TypeError(f"ridge: expected a number, got {type(ridge).__name__}")
    if not np.isfinite(ridge) or ridge < 0:
        raise ValueError(f"ridge: expected a finite number >= 0, got {ridge!r}")
    if k_train.ndim != 2 or k_train.shape[0] != k_train.shape[1]:
        raise ValueError(f"k_train: expected shape (n, n), got {tuple(k_train.shape)}")
    n = k_train.shape[0]
    if n < 1:
        raise ValueError(f"k_train: expected at least one training input, got shape {(n, n)}")
    if y_train.ndim not in (1, 2) or y_train.shape[0] != n:
        raise ValueError(
            f"y_train: expected shape ({n},) or ({n}, t) to match k_train, "
            f"got {tuple(y_train.shape)}"
        )
    if k_test_train.ndim != 2 or k_test_train.shape[1] != n:
        raise ValueError(
            f"k_test_train: expected shape (m, {n}) to match k_train, "
            f"got {tuple(k_test_train.shape)}"
        )
    if not k_train.dtype.is_floating_point:
        raise ValueError(f"k_train: expected a floating dtype, got {k_train.dtype}")
    for name, value in (("y_train", y_train), ("k_test_train", k_test_train)):
        if value.dtype != k_train.dtype or value.device != k_train.device:
            raise ValueError(
                f"{name}: expected dtype {k_train.dtype} on {k_train.device} as k_train, "
                f"got {value.dtype} on {value.device}"
            )
    for name, value in (("k_train", k_train), ("y_train", y_train), ("k_test_train", k_test_train)):
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name}: contains NaN or infinite values")
    if relative:
        scale = float(torch.diagonal(k_train).mean())
        if scale <= 0:
            raise ValueError(
                f"k_train: a relative ridge needs a positive mean diagonal, got {scale!r}"
            )
        value = ridge * scale
    else:
        value = ridge
    eye = torch.eye(n, dtype=k_train.dtype, device=k_train.device)
    alpha = torch.linalg.solve(k_train + value * eye, y_train)  # (n,) or (n, t)
    return k_test_train @ alpha
