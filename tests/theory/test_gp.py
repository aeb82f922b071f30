"""Tests of the NNGP/NTK Gaussian-process regressors in `perceptrons.theory.gp`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, DotProduct

from perceptrons.theory import DEQKernel, NNGPRegressor, NTKRegressor
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
    with pytest.raises(ValueError, match="X"):
        est.fit(x[0], y)
    with pytest.raises(ValueError, match="jitter"):
        NNGPRegressor(RELU_NET, jitter=-1.0).fit(x, y)
    with pytest.raises(ValueError, match="dtype"):
        NNGPRegressor(RELU_NET, dtype="int8").fit(x, y)
    with pytest.raises(TypeError, match="kernel"):
        NNGPRegressor(object()).fit(x, y)
    est.fit(x, y)
    with pytest.raises(ValueError, match="X"):
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
