"""Test helpers shipped with the library: run the model contract on your own models.

`check_model` runs the checks that every registered model passes (``tests/contract`` runs them
on each registry name) and raises one `AssertionError` listing every failure::

    from perceptrons.testing import check_model

    check_model(create_model("mlp", seed=0))
    check_model(MyModule(), torch.randn(4, 8), factory=lambda seed: MyModule(seed=seed))

The checks (`CHECKS`), in order:

* ``forward_shapes``: for batch sizes 1 and 3, every output tensor has that leading dimension
  (eval mode);
* ``backward``: every trainable parameter gets a finite, non-``None`` gradient from the sum of
  all floating outputs (train mode, on a copy of the model);
* ``determinism``: two builds with seed 0 have identical state dicts and identical eval-mode
  outputs;
* ``config_roundtrip``: ``from_json(to_json())`` and ``from_dict(to_dict())`` give back an equal
  config;
* ``save_load``: `perceptrons.models.save_model` then `perceptrons.models.load_model` gives the
  same class, config, state dict and bitwise-identical eval-mode outputs;
* ``bad_input``: for a tensor input, an extra leading dimension, a missing batch dimension, a
  wrong last dimension (when ``input_shape[-1]`` is an int), an integer dtype and a non-tensor,
  plus the model's own ``invalid_inputs()`` cases, each raise ``ValueError`` or ``TypeError``
  whose message contains ``format_shape(model.input_shape)``;
* ``float64``: a float64 copy of the model gives float64, finite outputs.

Inputs come from ``example_input`` when given (its leading dimension is resized to the batch
size by cycling its rows), else from ``model.example_input(batch_size, generator=...)``.

Plain modules are supported with a reduced contract: checks that need a registry entry or a
``config`` (``config_roundtrip``, ``save_load``, and ``determinism`` without ``factory``) and
``bad_input`` without an ``input_shape`` attribute are skipped, not failed.

`equivariance_error` measures how far a model on Lie algebra features is from
adjoint-equivariance (or invariance), for the Lie Neurons layers or your own model::

    from perceptrons.lie import sl3
    from perceptrons.testing import equivariance_error

    model = MyModel()  # (b, c, 8, n) -> (b, c_out, 8) equivariant, or (b, k) invariants
    x = torch.randn(16, 2, 8, 5)  # K = 8 at axis 2, the layout of perceptrons.layers.lie
    err = equivariance_error(model, sl3(), x, generator=torch.Generator().manual_seed(0))
    assert err.max < 1e-9, err  # a float64 run; with dtype=torch.float32 expect ~1e-6

`per_sample_equivariance_error` gives the same error for each sample under its own ``g``, e.g.
``per_sample_equivariance_error(model, sl3(), x, generator=...)`` -> ``(16,)`` errors.
"""

from __future__ import annotations

import contextlib
import copy
import json
import statistics
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from perceptrons.checks import check_int, check_number, check_tensor, format_shape
from perceptrons.lie import LieAlgebra, get_algebra
from perceptrons.models import load_model, save_model
from perceptrons.registry import create_model

__all__ = [
    "CHECKS",
    "EquivarianceError",
    "check_model",
    "equivariance_error",
    "per_sample_equivariance_error",
    "run_check",
]

CHECKS = (
    "forward_shapes",
    "backward",
    "determinism",
    "config_roundtrip",
    "save_load",
    "bad_input",
    "float64",
)

Factory = Callable[[int], nn.Module]


class _Skipped(Exception):
    """A check that does not apply to this model; the message is the reason."""


def check_model(
    model: nn.Module,
    example_input: Any = None,
    *,
    checks: Sequence[str] | None = None,
    factory: Factory | None = None,
) -> None:
    """Run the contract checks on ``model``; raise one `AssertionError` listing every failure.

    Args:
        model: The model to check; it is not modified (mutating checks use copies).
        example_input: A valid input whose leading dimension is the batch (tensor or pytree of
            tensors); ``None`` uses ``model.example_input``.
        checks: Names from `CHECKS` to run (default: all).
        factory: ``factory(seed) -> model`` used by ``determinism``; default for registered
            models: ``create_model(model.config, seed=seed)``.

    Raises:
        AssertionError: one or more checks failed; each is listed with its details.
        ValueError: an unknown check name, or no ``example_input`` and no
            ``model.example_input``.
    """
    names = tuple(CHECKS if checks is None else checks)
    for name in names:
        _check_name(name)
    _check_can_make_input(model, example_input)
    failures = []
    for name in names:
        try:
            run_check(name, model, example_input, factory)
        except AssertionError as err:
            failures.append(f"- {err}")
    if failures:
        raise AssertionError(
            f"check_model({type(model).__name__}): {len(failures)} of {len(names)} checks "
            "failed:\n" + "\n".join(failures)
        )


def run_check(
    name: str,
    model: nn.Module,
    example_input: Any = None,
    factory: Factory | None = None,
) -> str | None:
    """Run one check from `CHECKS`.

    Args:
        name: The check.
        model: The model to check (not modified).
        example_input: As in `check_model`.
        factory: As in `check_model`.

    Returns:
        ``None`` if the check passed, or the reason it was skipped (it does not apply).

    Raises:
        AssertionError: the check failed; the message starts with the check's name. Unexpected
            exceptions are re-raised as `AssertionError` chained to the original.
        ValueError: an unknown check name, or no ``example_input`` and no
            ``model.example_input``.
    """
    _check_name(name)
    _check_can_make_input(model, example_input)
    try:
        _CHECK_FUNCTIONS[name](model, example_input, factory)
    except _Skipped as skip:
        return str(skip)
    except AssertionError as err:
        raise AssertionError(f"{name}: {err}") from None
    except Exception as err:
        raise AssertionError(f"{name}: raised {type(err).__name__}: {err}") from err
    return None


# ------------------------------------------------------------------------------ equivariance
@dataclass(frozen=True)
class EquivarianceError:
    """Result of `equivariance_error`; ``float(result)`` is ``result.max``.

    Attributes:
        max: Largest relative error over the trials.
        median: Median relative error over the trials.
        errors: The relative error of each trial, in order.
        invariant: Whether the output was treated as invariant (given or detected).
    """

    max: float
    median: float
    errors: tuple[float, ...]
    invariant: bool

    def __float__(self) -> float:
        return self.max


def equivariance_error(
    module: Callable[[torch.Tensor], torch.Tensor],
    algebra: LieAlgebra | str,
    x: torch.Tensor,
    num_trials: int = 20,
    generator: torch.Generator | None = None,
    *,
    scale: float = 0.5,
    invariant: bool | None = None,
    feature_axis: int = 2,
    output_axis: int | None = None,
    per_sample: bool = True,
    dtype: torch.dtype = torch.float64,
) -> EquivarianceError:
    """Relative adjoint-equivariance error of ``module`` at ``x``, worst over random ``g``.

    For each trial, ``g = algebra.random_group_element(scale=scale)`` (one per sample of ``x``
    when ``per_sample``, else one for the batch) and the error is

    .. math::

        \\frac{\\|f(\\mathrm{Ad}_g x) - \\mathrm{Ad}_g f(x)\\|}{\\|\\mathrm{Ad}_g f(x)\\|}
        \\quad\\text{(equivariant)}, \\qquad
        \\frac{\\|f(\\mathrm{Ad}_g x) - f(x)\\|}{\\|f(x)\\|} \\quad\\text{(invariant)},

    with Frobenius norms over the whole output, so it is relative to the output's scale. ``Ad``
    is applied along ``feature_axis`` of the input and ``output_axis`` of the output
    (`perceptrons.lie.LieAlgebra.apply_adjoint`). The module runs on a deep copy converted to
    ``dtype`` and in eval mode, without gradients; ``x`` is rounded to ``dtype`` first, while
    ``g``, ``Ad_g`` and the comparison are float64 (the e3nn practice), so the result measures
    the module's own error in ``dtype``. Typical values: ~1e-14 for exactly equivariant
    float64 models, ~1e-6 in float32 (scale 0.5), O(0.1-1) for an MLP on flattened features.

    Args:
        module: The model; an ``nn.Module`` (copied and converted) or any callable (called on
            ``dtype`` inputs as is).
        algebra: The algebra (a `LieAlgebra` or a name for `perceptrons.lie.get_algebra`).
        x: Input with ``K`` = ``algebra.dim`` at ``feature_axis``, e.g. ``(b, c, K[, n])``.
        num_trials: Number of random group elements.
        generator: Generator of the group elements (``None``: torch's global generator).
        scale: ``h ~ U[-scale, scale]^K``, ``g = exp(hat(h))``.
        invariant: Treat the output as invariant (``True``) or equivariant (``False``);
            ``None`` detects: equivariant iff the output has size ``K`` at ``output_axis``.
            Pass it when the detection could be fooled (an invariant output that happens to
            have ``K`` entries there).
        feature_axis: The algebra axis of ``x`` (2 in the layer layout).
        output_axis: The algebra axis of the output (default ``feature_axis``).
        per_sample: One ``g`` per sample (row of axis 0) rather than one for the whole batch.
        dtype: Floating dtype the module is evaluated in.

    Returns:
        An `EquivarianceError` with the max, the median and every trial's error.

    Raises:
        ValueError: ``x`` has no ``K`` at ``feature_axis``, ``num_trials < 1``, a bad
            ``scale``, or an equivariant output whose shape does not allow ``Ad`` at
            ``output_axis``.
        TypeError: ``x`` is not a floating tensor, or ``dtype`` is not floating.
    """
    lie = get_algebra(algebra)
    check_int("num_trials", num_trials)
    check_number("scale", scale, low=0.0, strict=True)
    f, x_in, x64 = _prepare_equivariance(module, lie, x, feature_axis, dtype)
    out_axis = feature_axis if output_axis is None else output_axis
    errors = []
    with torch.no_grad():
        y = f(x_in).double()
        if invariant is None:
            invariant = _detect_invariant(lie, y, out_axis)
        y_norm = torch.linalg.vector_norm(y)
        g = lie.random_group_element(
            (num_trials, x.shape[0]) if per_sample else (num_trials,),
            scale=scale,
            generator=generator,
            device=x.device,
        )
        for adjoint in lie.Ad(g):  # one trial per g (or per batch of g's)
            y_g = f(lie.apply_adjoint(adjoint, x64, axis=feature_axis).to(dtype)).double()
            if invariant:
                target, norm = y, y_norm
            else:
                target = lie.apply_adjoint(adjoint, y, axis=out_axis)
                norm = torch.linalg.vector_norm(target)
            diff = torch.linalg.vector_norm(y_g - target)
            errors.append(float(diff / norm.clamp_min(torch.finfo(torch.float64).tiny)))
    return EquivarianceError(
        max=max(errors),
        median=statistics.median(errors),
        errors=tuple(errors),
        invariant=bool(invariant),
    )


def per_sample_equivariance_error(
    module: Callable[[torch.Tensor], torch.Tensor],
    algebra: LieAlgebra | str,
    x: torch.Tensor,
    g: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    *,
    scale: float = 0.5,
    invariant: bool | None = None,
    feature_axis: int = 2,
    output_axis: int | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Relative adjoint-equivariance error of ``module`` for each sample of ``x``, one ``g`` each.

    The per-sample counterpart of `equivariance_error` (for histograms of the errors, or to
    find the inputs where a model breaks the symmetry): sample ``i`` (row ``i`` of axis 0) is
    transformed by its own group element ``g_i`` and its error is

    .. math::

        \\frac{\\|f(\\mathrm{Ad}_{g_i} x_i) - \\mathrm{Ad}_{g_i} f(x_i)\\|}
        {\\|\\mathrm{Ad}_{g_i} f(x_i)\\|} \\quad\\text{(equivariant)}, \\qquad
        \\frac{\\|f(\\mathrm{Ad}_{g_i} x_i) - f(x_i)\\|}{\\|f(x_i)\\|} \\quad\\text{(invariant)},

    with Frobenius norms over the sample's whole output row. The conventions are those of
    `equivariance_error`: ``Ad`` along ``feature_axis`` of the input and ``output_axis`` of the
    output, the module evaluated on a deep copy in ``dtype`` and eval mode without gradients,
    ``x`` rounded to ``dtype`` first, ``g``, ``Ad_g`` and the comparison in float64. For a
    batch of one sample and the same ``g``, the result equals `equivariance_error`'s trial
    error.

    Args:
        module: The model, mapping ``(b, ...)`` inputs to ``(b, ...)`` outputs (one output row
            per sample); an ``nn.Module`` (copied and converted) or any callable (called on
            ``dtype`` inputs as is).
        algebra: The algebra (a `LieAlgebra` or a name for `perceptrons.lie.get_algebra`).
        x: Input ``(b, ...)`` with ``K`` = ``algebra.dim`` at ``feature_axis``, e.g.
            ``(b, c, K[, n])``.
        g: Group elements ``(b, m, m)``, one per sample (``m`` = ``algebra.matrix_size``),
            e.g. those that made a conjugated test set; ``None`` draws them with
            ``algebra.random_group_element((b,), scale=scale, generator=generator)``.
        generator: Generator of the drawn ``g`` (``None``: torch's global generator); only
            without ``g``.
        scale: ``h ~ U[-scale, scale]^K``, ``g = exp(hat(h))`` for drawn ``g``.
        invariant: Treat the output as invariant (``True``) or equivariant (``False``);
            ``None`` detects: equivariant iff the output has size ``K`` at ``output_axis``.
        feature_axis: The algebra axis of ``x`` (2 in the layer layout; not 0, the samples).
        output_axis: The algebra axis of the output (default ``feature_axis``).
        dtype: Floating dtype the module is evaluated in.

    Returns:
        ``(b,)`` float64 relative errors on the CPU, in the order of the samples (an exact
        zero when the transformed output matches bit for bit).

    Raises:
        ValueError: ``x`` has no samples or no ``K`` at ``feature_axis``, ``feature_axis`` is
            0, ``g`` is not ``(b, m, m)``, both ``g`` and ``generator`` are given, a bad
            ``scale``, the output has no leading dimension ``b``, or an equivariant output
            whose shape does not allow ``Ad`` at ``output_axis``.
        TypeError: ``x`` or ``g`` is not a floating tensor, or ``dtype`` is not floating.
    """
    lie = get_algebra(algebra)
    check_number("scale", scale, low=0.0, strict=True)
    f, x_in, x64 = _prepare_equivariance(module, lie, x, feature_axis, dtype)
    b = x.shape[0]
    if b == 0:
        raise ValueError(f"x: has no samples (shape {tuple(x.shape)})")
    if feature_axis % x.dim() == 0:
        raise ValueError("feature_axis: axis 0 holds the samples, one g each; use axis >= 1")
    if g is None:
        g = lie.random_group_element((b,), scale=scale, generator=generator, device=x.device)
    elif generator is not None:
        raise ValueError("generator: draws g, so pass either g or generator, not both")
    else:
        check_tensor(g, "g", (b, lie.matrix_size, lie.matrix_size))
    out_axis = feature_axis if output_axis is None else output_axis
    adjoint = lie.Ad(g.detach().to(device=x.device, dtype=torch.float64))  # (b, K, K)
    with torch.no_grad():
        y = f(x_in).double()
        if y.dim() == 0 or y.shape[0] != b:
            raise ValueError(
                f"module output: expected one row per sample, shape ({b}, ...), got "
                f"{tuple(y.shape)}"
            )
        if invariant is None:
            invariant = _detect_invariant(lie, y, out_axis)
        y_g = f(lie.apply_adjoint(adjoint, x64, axis=feature_axis).to(dtype)).double()
        target = y if invariant else lie.apply_adjoint(adjoint, y, axis=out_axis)
        diff = torch.linalg.vector_norm((y_g - target).reshape(b, -1), dim=1)
        norm = torch.linalg.vector_norm(target.reshape(b, -1), dim=1)
    return (diff / norm.clamp_min(torch.finfo(torch.float64).tiny)).cpu()


def _prepare_equivariance(
    module: Callable[[torch.Tensor], torch.Tensor],
    lie: LieAlgebra,
    x: torch.Tensor,
    feature_axis: int,
    dtype: torch.dtype,
) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor, torch.Tensor]:
    """Check ``x``, ``feature_axis`` and ``dtype``; return the module to evaluate (an eval-mode
    ``dtype`` copy of an ``nn.Module``), ``x`` rounded to ``dtype`` and that rounded ``x`` in
    float64."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype: expected a floating torch.dtype, got {dtype!r}")
    if not isinstance(x, torch.Tensor) or x.dim() == 0:
        check_tensor(x, "x", ("batch", "...", lie.dim))  # raises
    if not -x.dim() <= feature_axis < x.dim():
        raise ValueError(
            f"feature_axis: {feature_axis} out of range for x of shape {tuple(x.shape)}"
        )
    expected_shape: list[int | None] = [None] * x.dim()
    expected_shape[feature_axis] = lie.dim
    check_tensor(x, "x", expected_shape)
    if isinstance(module, nn.Module):
        f: Callable[[torch.Tensor], torch.Tensor] = copy.deepcopy(module).to(dtype).eval()
    else:
        f = module
    x_in = x.detach().to(dtype)
    return f, x_in, x_in.double()


def _detect_invariant(lie: LieAlgebra, y: torch.Tensor, out_axis: int) -> bool:
    """Whether ``y`` is treated as invariant: it has no size ``K`` at ``out_axis``."""
    return not (-y.dim() <= out_axis < y.dim() and y.shape[out_axis] == lie.dim)


# ------------------------------------------------------------------------------ the checks
def _forward_shapes(model: nn.Module, example_input: Any, factory: Factory | None) -> None:
    problems = []
    with _eval(model), torch.no_grad():
        for batch in (1, 3):
            out = model(_make_input(model, example_input, batch))
            leaves = _leaves(out)
            if not leaves:
                raise AssertionError("forward returned no tensors")
            for path, t in leaves:
                if t.dim() == 0 or t.shape[0] != batch:
                    problems.append(
                        f"batch {batch}: output{path} has shape {tuple(t.shape)}, "
                        f"expected leading dimension {batch}"
                    )
    if problems:
        raise AssertionError("; ".join(problems))


def _backward(model: nn.Module, example_input: Any, factory: Factory | None) -> None:
    m = copy.deepcopy(model).train()
    params = [(n, p) for n, p in m.named_parameters() if p.requires_grad]
    if not params:
        raise _Skipped("the model has no trainable parameters")
    m.zero_grad(set_to_none=True)
    out = m(_make_input(m, example_input, 3))
    floating = [t for _, t in _leaves(out) if t.is_floating_point()]
    if not any(t.requires_grad for t in floating):
        raise AssertionError("no floating output depends on the parameters")
    sum(t.sum() for t in floating).backward()
    missing = [n for n, p in params if p.grad is None]
    nonfinite = [n for n, p in params if p.grad is not None and not torch.isfinite(p.grad).all()]
    problems = []
    if missing:
        problems.append("no gradient for " + ", ".join(missing))
    if nonfinite:
        problems.append("non-finite gradient for " + ", ".join(nonfinite))
    if problems:
        raise AssertionError("; ".join(problems))


def _determinism(model: nn.Module, example_input: Any, factory: Factory | None) -> None:
    if factory is None:
        config = getattr(model, "config", None)
        if config is None:
            raise _Skipped("no factory given and the model has no config")

        def factory(seed: int) -> nn.Module:
            return create_model(config, seed=seed)

    first, second = factory(0), factory(0)
    state1, state2 = first.state_dict(), second.state_dict()
    if set(state1) != set(state2):
        raise AssertionError("two builds with seed 0 have different state dict keys")
    differ = [k for k in state1 if not torch.equal(state1[k], state2[k])]
    if differ:
        raise AssertionError(
            "two builds with seed 0 differ in " + ", ".join(differ) + " (is every random draw "
            "taken from the generator argument, never torch's global generator?)"
        )
    x = _make_input(first, example_input, 3)
    with _eval(first), _eval(second), torch.no_grad():
        out1, out2 = _leaves(first(x)), _leaves(second(x))
    _assert_same_outputs(out1, out2, "two builds with seed 0")


def _config_roundtrip(model: nn.Module, example_input: Any, factory: Factory | None) -> None:
    config = getattr(model, "config", None)
    if config is None:
        raise _Skipped("the model has no config")
    from_json = type(config).from_json(config.to_json())
    if from_json != config:
        raise AssertionError(f"from_json(to_json()) gave {from_json!r}, expected {config!r}")
    plain = json.loads(json.dumps(config.to_dict()))
    from_dict = type(config).from_dict(plain)
    if from_dict != config:
        raise AssertionError(f"from_dict(to_dict()) gave {from_dict!r}, expected {config!r}")


def _save_load(model: nn.Module, example_input: Any, factory: Factory | None) -> None:
    if getattr(model, "config", None) is None:
        raise _Skipped("the model has no config")
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    with tempfile.TemporaryDirectory() as tmp:
        save_model(model, tmp)
        loaded = load_model(tmp, device=device)
    if type(loaded) is not type(model):
        raise AssertionError(f"loaded a {type(loaded).__name__}, expected {type(model).__name__}")
    if loaded.config != model.config:
        raise AssertionError(f"loaded config {loaded.config!r}, expected {model.config!r}")
    state, state_loaded = model.state_dict(), loaded.state_dict()
    differ = [
        k
        for k in state
        if k not in state_loaded
        or state[k].dtype != state_loaded[k].dtype
        or not torch.equal(state[k], state_loaded[k])
    ]
    if differ:
        raise AssertionError("loaded state differs in " + ", ".join(differ))
    x = _make_input(model, example_input, 3)
    with _eval(model), _eval(loaded), torch.no_grad():
        _assert_same_outputs(_leaves(model(x)), _leaves(loaded(x)), "saved and loaded models")


def _bad_input(model: nn.Module, example_input: Any, factory: Factory | None) -> None:
    shape = getattr(model, "input_shape", None)
    if shape is None:
        raise _Skipped("the model has no input_shape")
    expected = format_shape(shape)
    x = _make_input(model, example_input, 3)
    cases: list[tuple[str, Any]] = []
    if isinstance(x, torch.Tensor):
        cases.append(("an extra leading dimension", x.unsqueeze(0)))
        cases.append(("no batch dimension", x[0]))
        if isinstance(shape[-1], int) and not isinstance(shape[-1], bool):
            cases.append((f"last dimension {shape[-1] + 1}", torch.cat([x, x[..., :1]], dim=-1)))
        if x.is_floating_point():
            cases.append(("an integer dtype", x.round().to(torch.int64)))
        cases.append(("a nested list instead of a tensor", x.tolist()))
    invalid_inputs = getattr(model, "invalid_inputs", None)
    if callable(invalid_inputs):
        cases.extend(invalid_inputs())
    if not cases:
        raise _Skipped("the input is not a tensor and the model defines no invalid_inputs()")
    problems = []
    with _eval(model), torch.no_grad():
        for description, bad in cases:
            try:
                model(bad)
            except (ValueError, TypeError) as err:
                if expected not in str(err):
                    problems.append(
                        f"{description}: message {str(err)!r} does not contain the expected "
                        f"shape {expected}"
                    )
            except Exception as err:
                problems.append(
                    f"{description}: raised {type(err).__name__} ({err}), "
                    "expected ValueError or TypeError"
                )
            else:
                problems.append(f"{description}: accepted, expected ValueError or TypeError")
    if problems:
        raise AssertionError("; ".join(problems))


def _float64(model: nn.Module, example_input: Any, factory: Factory | None) -> None:
    m = copy.deepcopy(model).double().eval()
    if example_input is None:
        x = _make_input(m, None, 3)
    else:
        x = _tree_map(_to_float64, _make_input(m, example_input, 3))
    with torch.no_grad():
        leaves = _leaves(m(x))
    problems = []
    for path, t in leaves:
        if t.is_floating_point() and t.dtype != torch.float64:
            problems.append(f"output{path} has dtype {t.dtype}, expected torch.float64")
        elif t.is_floating_point() and not torch.isfinite(t).all():
            problems.append(f"output{path} has non-finite values")
    if problems:
        raise AssertionError("; ".join(problems))


_CHECK_FUNCTIONS: dict[str, Callable[[nn.Module, Any, Factory | None], None]] = {
    "forward_shapes": _forward_shapes,
    "backward": _backward,
    "determinism": _determinism,
    "config_roundtrip": _config_roundtrip,
    "save_load": _save_load,
    "bad_input": _bad_input,
    "float64": _float64,
}


# ------------------------------------------------------------------------------ helpers
def _check_name(name: str) -> None:
    if name not in _CHECK_FUNCTIONS:
        raise ValueError(f"unknown check {name!r}; valid checks: {', '.join(CHECKS)}")


def _check_can_make_input(model: nn.Module, example_input: Any) -> None:
    if example_input is None and not callable(getattr(model, "example_input", None)):
        raise ValueError(
            f"{type(model).__name__}: pass example_input, or define "
            "example_input(batch_size, *, generator=None) on the model"
        )


@contextlib.contextmanager
def _eval(module: nn.Module) -> Iterator[nn.Module]:
    """Put ``module`` in eval mode for the ``with`` block, then restore every submodule's mode."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes:
            m.training = training


def _make_input(model: nn.Module, example_input: Any, batch: int) -> Any:
    """An input with leading dimension ``batch``: resized ``example_input`` or a fresh one."""
    if example_input is None:
        return model.example_input(batch, generator=torch.Generator().manual_seed(0))

    def resize(t: torch.Tensor) -> torch.Tensor:
        if t.dim() == 0:
            return t
        rows = torch.arange(batch, device=t.device) % t.shape[0]
        return t.index_select(0, rows)

    return _tree_map(resize, example_input)


def _to_float64(t: torch.Tensor) -> torch.Tensor:
    return t.double() if t.is_floating_point() else t


def _tree_map(fn: Callable[[torch.Tensor], torch.Tensor], tree: Any) -> Any:
    if isinstance(tree, torch.Tensor):
        return fn(tree)
    if isinstance(tree, dict):
        return {k: _tree_map(fn, v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        mapped = [_tree_map(fn, v) for v in tree]
        return type(tree)(*mapped) if hasattr(tree, "_fields") else type(tree)(mapped)
    return tree


def _leaves(tree: Any, path: str = "") -> list[tuple[str, torch.Tensor]]:
    """``(path, tensor)`` pairs of a tensor pytree; paths look like ``["logits"]`` or ``[0]``."""
    if isinstance(tree, torch.Tensor):
        return [(path, tree)]
    items: Iterable[tuple[Any, Any]] = ()
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, list | tuple):
        items = enumerate(tree)
    return [leaf for key, value in items for leaf in _leaves(value, f"{path}[{key!r}]")]


def _assert_same_outputs(
    first: list[tuple[str, torch.Tensor]], second: list[tuple[str, torch.Tensor]], what: str
) -> None:
    if [p for p, _ in first] != [p for p, _ in second]:
        raise AssertionError(f"{what} return different output structures")
    differ = [
        f"output{p}" for (p, a), (_, b) in zip(first, second, strict=True) if not torch.equal(a, b)
    ]
    if differ:
        raise AssertionError(f"{what} give different outputs: " + ", ".join(differ))
