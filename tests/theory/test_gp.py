"""Tests of the NNGP/NTK Gaussian-process regressors in `perceptrons.theory.gp`."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, DotProduct
from sklearn.linear_model import Ridge

from perceptrons.theory import DEQKernel, NNGPRegressor, NTKRegressor
from perceptrons.theory.gp import kernel_ridge_predict
from perceptrons.theory.kernels import Dense, Kernel, ReLU, serial

RELU_NET = serial(Dense(1.4, 0.1), ReLU(), Dense(1.4, 0.1), ReLU(), Dense(1.0))


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 4))
    y = np.sin(x[:, 0]) + 0.5 * x[:, 1]
    return x, y


@pytest.mark.parametrize("cls", [NNGPRegressor, NTKRegressor])
def test_clone_and_get_params(cls):
    est = cls(RELU_NET, jitter=1e-6, dtype="float32")
    params = est.get_params()
    assert params == {"kernel": RELU_NET, "jitter": 1e-6, "dtype": "float32"}
    copy = clone(est)
    assert copy is not est
    copied = copy.get_params()
    # clone deep-copies the description; descriptions compare by repr
    assert repr(copied.pop("kernel")) == repr(RELU_NET)
    assert copied == {"jitter": 1e-6, "dtype": "float32"}
    assert cls(**params).get_params() == params


@pytest.mark.parametrize("cls", [NNGPRegressor, NTKRegressor])
def test_interpolates_training_data(cls, data):
    x, y = data
    est = cls(RELU_NET, jitter=1e-12).fit(x, y)
    np.testing.assert_allclose(est.predict(x), y, atol=1e-6)
    mean, std = est.predict(x, return_std=True)
    assert mean.shape == (30,) and std.shape == (30,)
    assert std.max() < 1e-3
    _, far = est.predict(x + 3.0, return_std=True)
    assert far.min() > 1e-2
    y2 = np.stack([y, -y], 1)
    assert est.fit(x, y2).predict(x[:5]).shape == (5, 2)


def test_linear_kernel_is_ridge_regression(data):
    x, y = data
    w, b, jitter = 1.3, 0.4, 1e-3
    est = NNGPRegressor(serial(Dense(w, b)), jitter=jitter).fit(x, y)
    # NNGP of a linear network: K = w^2 x.x'/d + b^2; the posterior mean is kernel ridge.
    k = w**2 * x @ x.T / x.shape[1] + b**2
    ridge = jitter * np.mean(np.diag(k))
    x_test = x[:7] + 0.3
    k_test = w**2 * x_test @ x.T / x.shape[1] + b**2
    expected = k_test @ np.linalg.solve(k + ridge * np.eye(30), y)
    np.testing.assert_allclose(est.predict(x_test), expected, rtol=1e-8, atol=1e-10)
    # the same as primal ridge regression on features [w x / sqrt(d), b]
    phi = np.hstack([w * x / np.sqrt(x.shape[1]), np.full((30, 1), b)])
    phi_test = np.hstack([w * x_test / np.sqrt(x.shape[1]), np.full((7, 1), b)])
    beta = np.linalg.solve(phi.T @ phi + ridge * np.eye(5), phi.T @ y)
    np.testing.assert_allclose(est.predict(x_test), phi_test @ beta, rtol=1e-7, atol=1e-9)


def test_matches_sklearn_gaussian_process(data):
    x, y = data
    d, w, b, jitter = x.shape[1], 1.2, 0.5, 1e-4
    est = NNGPRegressor(serial(Dense(w, b)), jitter=jitter).fit(x, y)
    # w^2 (x.x'/d) + b^2 == (w^2/d) (sigma0^2 + x.x') with sigma0^2 = b^2 d / w^2
    sk_kernel = ConstantKernel(w**2 / d, "fixed") * DotProduct(b * np.sqrt(d) / w, "fixed")
    mean_diag = np.mean(w**2 * np.sum(x**2, 1) / d + b**2)
    gpr = GaussianProcessRegressor(sk_kernel, alpha=jitter * mean_diag, optimizer=None)
    gpr.fit(x, y)
    x_test = np.random.default_rng(1).normal(size=(9, d))
    mean, std = est.predict(x_test, return_std=True)
    sk_mean, sk_std = gpr.predict(x_test, return_std=True)
    np.testing.assert_allclose(mean, sk_mean, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(std, sk_std, rtol=1e-6, atol=1e-8)


def test_ntk_std_matches_formula(data):
    x, y = data
    est = NTKRegressor(RELU_NET, jitter=1e-8).fit(x, y)
    x_test = x[:6] + 0.5
    xt, xs = torch.as_tensor(x), torch.as_tensor(x_test)
    k = RELU_NET.kernel(xt)
    kc = RELU_NET.kernel(xs, xt)
    kss = RELU_NET.kernel(xs)
    theta = k.ntk + 1e-8 * k.ntk.diagonal().mean() * torch.eye(30, dtype=torch.float64)
    a = torch.linalg.solve(theta, kc.ntk.T).T
    cov = kss.nngp + a @ k.nngp @ a.T - a @ kc.nngp.T - kc.nngp @ a.T
    mean, std = est.predict(x_test, return_std=True)
    np.testing.assert_allclose(mean, (a @ torch.as_tensor(y)).numpy(), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(std**2, cov.diagonal().clamp_min(0).numpy(), rtol=1e-5, atol=1e-7)


class _IndefiniteKernel:
    """Any object with ``.kernel(x1, x2, ntk=...)`` is accepted; this one is not PSD."""

    def kernel(self, x1, x2=None, *, ntk=False, dtype=torch.float64):
        x2 = x1 if x2 is None else x2
        k = -torch.cdist(torch.as_tensor(x1, dtype=dtype), torch.as_tensor(x2, dtype=dtype))
        k = k + 1.0
        return Kernel(k, k if ntk else None)


def test_non_positive_definite_kernel_raises(data):
    x, y = data
    with pytest.raises(ValueError, match="not positive definite"):
        NNGPRegressor(_IndefiniteKernel(), jitter=0.0).fit(x, y)


def test_input_errors_name_the_argument(data):
    x, y = data
    est = NNGPRegressor(RELU_NET)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="X"):
        est.fit(bad, y)
    with pytest.raises(ValueError, match="y"):
        est.fit(x, y[:-1])
    with pytest.raises(ValueError, match="Reshape your data"):  # sklearn's check_array
        est.fit(x[0], y)
    with pytest.raises(ValueError, match="jitter"):
        NNGPRegressor(RELU_NET, jitter=-1.0).fit(x, y)
    with pytest.raises(ValueError, match="dtype"):
        NNGPRegressor(RELU_NET, dtype="int8").fit(x, y)
    with pytest.raises(TypeError, match="kernel"):
        NNGPRegressor(object()).fit(x, y)
    with pytest.raises(NotFittedError):  # the failed fits above fitted nothing
        est.predict(x)
    est.fit(x, y)
    with pytest.raises(ValueError, match="X has 2 features"):
        est.predict(x[:, :2])
    with pytest.raises(NotImplementedError, match="NTK"):
        NTKRegressor(DEQKernel(0.6, 1.0)).fit(x, y)


def test_deq_kernel_digits():
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x = digits.data.astype(np.float64)
    x = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
    perm = np.random.default_rng(0).permutation(len(x))
    train, test = perm[:200], perm[200:350]
    targets = np.eye(10)[digits.target] - 0.1
    est = NNGPRegressor(DEQKernel(0.6, 1.0), jitter=1e-2).fit(x[train], targets[train])
    pred = est.predict(x[test])
    assert pred.shape == (150, 10)
    accuracy = np.mean(pred.argmax(1) == digits.target[test])
    assert accuracy > 0.9


def test_sklearn_input_validation(data):
    """scikit-learn's messages (``validate_data``) for inputs it refuses."""
    x, y = data
    est = NNGPRegressor(RELU_NET)
    with pytest.raises(NotFittedError):
        est.predict(x)
    with pytest.raises(ValueError, match="requires y to be passed"):
        est.fit(x, None)
    with pytest.raises(TypeError, match="dense data is required"):
        est.fit(sparse.csr_matrix(x), y)
    with pytest.raises(ValueError, match="Complex data not supported"):
        est.fit(x + 1j, y)
    with pytest.raises(ValueError, match="0 sample"):
        est.fit(x[:0], y[:0])
    with pytest.raises(ValueError, match="0 feature"):
        est.fit(x[:, :0], y)
    with pytest.raises(ValueError, match="dim 3"):
        est.fit(x, y[:, None, None])
    # object arrays of numbers are converted, as sklearn's estimators do
    np.testing.assert_allclose(
        est.fit(x.astype(object), y.astype(object)).predict(x[:3]),
        est.fit(x, y).predict(x[:3]),
    )


@pytest.mark.parametrize("cls", [NNGPRegressor, NTKRegressor])
def test_torch_inputs_and_column_targets(cls, data):
    x, y = data
    ref = cls(RELU_NET).fit(x, y)
    xt = torch.as_tensor(x, dtype=torch.float32).requires_grad_(True)
    est = cls(RELU_NET).fit(xt, torch.as_tensor(y))
    np.testing.assert_allclose(est.predict(xt[:4]), ref.predict(x[:4].astype(np.float32)))
    assert est.n_features_in_ == 4 and est.X_train_.dtype == torch.float64
    # multi-output: a column y stays 2-D, without a DataConversionWarning
    column = cls(RELU_NET).fit(x, y[:, None])
    pred = column.predict(x[:4])
    assert pred.shape == (4, 1)
    np.testing.assert_allclose(pred[:, 0], ref.predict(x[:4]))
    assert cls(RELU_NET, dtype="float32").fit(x, y).predict(x[:2]).dtype == np.float32


# ---------------------------------------------------------------- kernel_ridge_predict
@pytest.fixture
def linear_problem():
    rng = np.random.default_rng(3)
    x, x_test = rng.normal(size=(25, 6)), rng.normal(size=(8, 6))
    y = rng.normal(size=(25, 3))
    return torch.as_tensor(x), torch.as_tensor(y), torch.as_tensor(x_test)


@pytest.mark.parametrize("relative", [True, False])
def test_kernel_ridge_linear_kernel_is_ridge_regression(linear_problem, relative):
    x, y, x_test = linear_problem
    k, k_test = x @ x.T, x_test @ x.T
    ridge = 0.3
    out = kernel_ridge_predict(k, y, k_test, ridge=ridge, relative=relative)
    alpha = ridge * float(k.diagonal().mean()) if relative else ridge
    sk = Ridge(alpha=alpha, fit_intercept=False, solver="cholesky").fit(x.numpy(), y.numpy())
    assert out.shape == (8, 3) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), sk.predict(x_test.numpy()), rtol=1e-10, atol=1e-12)
    # normal equations in the primal
    beta = torch.linalg.solve(x.T @ x + alpha * torch.eye(6, dtype=x.dtype), x.T @ y)
    torch.testing.assert_close(out, x_test @ beta, rtol=1e-10, atol=1e-12)
    # 1-D targets give 1-D predictions, column by column
    one = kernel_ridge_predict(k, y[:, 1], k_test, ridge=ridge, relative=relative)
    assert one.shape == (8,)
    torch.testing.assert_close(one, out[:, 1], rtol=1e-12, atol=1e-12)


def test_kernel_ridge_is_bitwise_the_hand_written_solve(linear_problem):
    """The study code it replaces: ``solve(K + ridge·mean(diag K)·I, y)`` then ``K_* @ alpha``."""
    x, y, x_test = linear_problem
    h = torch.tanh(torch.cat([x, x_test]) @ torch.randn(6, 40, dtype=x.dtype))
    k = h @ h.T / 40
    train, test = torch.arange(25), torch.arange(25, 33)
    ktr = k[train][:, train]
    ridge = 1e-2 * float(torch.diagonal(ktr).mean())
    alpha = torch.linalg.solve(ktr + ridge * torch.eye(len(train), dtype=k.dtype), y)
    expected = k[test][:, train] @ alpha
    out = kernel_ridge_predict(ktr, y, k[test][:, train], ridge=1e-2)
    assert torch.equal(out, expected)


@pytest.mark.parametrize("targets", ["1d", "2d"])
def test_kernel_ridge_matches_nngp_regressor(data, targets):
    x, y = data
    y = y if targets == "1d" else np.stack([y, np.cos(x[:, 2])], 1)
    x_test = np.random.default_rng(2).normal(size=(11, 4))
    jitter = 1e-4
    est = NNGPRegressor(RELU_NET, jitter=jitter).fit(x, y)
    assert est.jitter_ == jitter  # no retry: the same ridge
    xt, xs = torch.as_tensor(x), torch.as_tensor(x_test)
    k, k_cross = RELU_NET.kernel(xt, ntk=False).nngp, RELU_NET.kernel(xs, xt, ntk=False).nngp
    out = kernel_ridge_predict(k, torch.as_tensor(y), k_cross, ridge=jitter)
    assert out.shape == est.predict(x_test).shape
    np.testing.assert_allclose(out.numpy(), est.predict(x_test), rtol=1e-8, atol=1e-10)


def test_kernel_ridge_errors_name_the_argument(linear_problem):
    x, y, x_test = linear_problem
    k, k_test = x @ x.T, x_test @ x.T
    with pytest.raises(ValueError, match=r"k_train: expected shape \(n, n\), got \(25, 24\)"):
        kernel_ridge_predict(k[:, :-1], y, k_test, ridge=0.1)
    with pytest.raises(ValueError, match=r"y_train: expected shape \(25,\) or \(25, t\)"):
        kernel_ridge_predict(k, y[:-1], k_test, ridge=0.1)
    with pytest.raises(ValueError, match=r"y_train: .*got \(25, 3, 1\)"):
        kernel_ridge_predict(k, y[..., None], k_test, ridge=0.1)
    with pytest.raises(ValueError, match=r"k_test_train: expected shape \(m, 25\) .*got \(25, 8\)"):
        kernel_ridge_predict(k, y, k_test.T, ridge=0.1)
    with pytest.raises(ValueError, match=r"k_test_train: .*got \(200,\)"):
        kernel_ridge_predict(k, y, k_test.reshape(-1), ridge=0.1)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="ridge"):
            kernel_ridge_predict(k, y, k_test, ridge=bad)
    with pytest.raises(TypeError, match="ridge"):
        kernel_ridge_predict(k, y, k_test, ridge=torch.tensor(0.1))
    with pytest.raises(TypeError, match="y_train"):
        kernel_ridge_predict(k, y.numpy(), k_test, ridge=0.1)
    with pytest.raises(ValueError, match="y_train: expected dtype torch.float64"):
        kernel_ridge_predict(k, y.float(), k_test, ridge=0.1)
    with pytest.raises(ValueError, match="positive mean diagonal"):
        kernel_ridge_predict(-k, y, k_test, ridge=0.1)
    bad = k.clone()
    bad[0, 1] = float("nan")
    with pytest.raises(ValueError, match="k_train: contains NaN"):
        kernel_ridge_predict(bad, y, k_test, ridge=0.1)
    # ridge 0, not relative: interpolation when the kernel is invertible
    k_full = k + torch.eye(25, dtype=k.dtype)
    fit = kernel_ridge_predict(k_full, y, k_full, ridge=0, relative=False)
    torch.testing.assert_close(fit, y)


def test_kernels_do_not_import_sklearn_or_gp():
    """``perceptrons.theory.kernels`` works without scikit-learn (only `gp` needs it)."""
    import perceptrons.theory.kernels as kernels

    for path in Path(kernels.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith("sklearn"), f"{path.name} imports {name}"
                assert not name.startswith("perceptrons.theory.gp"), f"{path.name} imports {name}"
