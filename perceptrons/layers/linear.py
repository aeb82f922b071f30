"""A fully connected layer with explicit initialisation scale and parameterisation.

Dimension legend: ``...`` any leading dimensions, ``d_in`` = ``in_features``,
``d_out`` = ``out_features``.

Two parameterisations give the same distribution of functions at initialisation and differ in
how gradients scale with width (the convention of neural-tangents'
``stax.Dense(out, W_std, b_std, parameterization=...)``):

Standard, with :math:`\\sigma_w` = ``weight_std`` and :math:`\\sigma_b` = ``bias_std``:

.. math::

    y = x W^\\top + b, \\qquad W_{ij} \\sim \\mathcal N(0, \\sigma_w^2 / d_{in}),
    \\quad b_i \\sim \\mathcal N(0, \\sigma_b^2).

NTK:

.. math::

    y = \\frac{\\sigma_w}{\\sqrt{d_{in}}}\\, x W^\\top + \\sigma_b\\, b, \\qquad
    W_{ij} \\sim \\mathcal N(0, 1), \\quad b_i \\sim \\mathcal N(0, 1).

With equal draws (:math:`W_{std} = \\sigma_w W_{ntk} / \\sqrt{d_{in}}`) the outputs agree, and the
gradient of the NTK weight is :math:`\\sigma_w / \\sqrt{d_{in}}` times the standard one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal, TypeAlias

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DenseLinear", "Parameterization"]

Parameterization: TypeAlias = Literal["standard", "ntk"]
_PARAMETERIZATIONS = ("standard", "ntk")


class DenseLinear(nn.Module):
    """Linear layer ``(..., in_features) -> (..., out_features)`` with standard or NTK scaling.

    Args:
        in_features: Size of the input's last dimension.
        out_features: Size of the output's last dimension.
        bias: Whether to add a learnable bias.
        weight_std: :math:`\\sigma_w`. In standard parameterisation ``None`` selects PyTorch's
            default ``nn.Linear`` initialisation (kaiming-uniform weight and
            ``U(-1/sqrt(in_features), 1/sqrt(in_features))`` bias), so the layer is a drop-in
            replacement for ``nn.Linear``; in NTK parameterisation ``None`` means 1.0.
        bias_std: :math:`\\sigma_b`. In NTK parameterisation ``bias_std=0`` makes the bias inert
            (it is multiplied by zero); use ``bias=False`` instead.
        parameterization: ``"standard"`` or ``"ntk"`` (see the module docstring).
        device: Device of the parameters.
        dtype: Floating dtype of the parameters.
        generator: Generator the initial parameters are drawn from (``None``: torch's global
            generator).

    Raises:
        ValueError: a size below 1, a negative or non-finite std, an unknown parameterisation,
            or a non-zero ``bias_std`` with ``weight_std=None`` in standard parameterisation
            (PyTorch's default bias init would silently ignore it).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        weight_std: float | None = None,
        bias_std: float = 0.0,
        parameterization: Parameterization = "standard",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        check_size("in_features", in_features)
        check_size("out_features", out_features)
        if parameterization not in _PARAMETERIZATIONS:
            raise ValueError(
                f"parameterization: expected one of {_PARAMETERIZATIONS}, got {parameterization!r}"
            )
        if weight_std is not None:
            _check_std("weight_std", weight_std)
        _check_std("bias_std", bias_std)
        if parameterization == "standard" and weight_std is None and bias_std != 0:
            raise ValueError(
                f"bias_std: weight_std=None selects nn.Linear's default initialisation, which "
                f"ignores bias_std; set weight_std too, got bias_std={bias_std!r}"
            )
        self.in_features = in_features
        self.out_features = out_features
        self.parameterization: Parameterization = parameterization
        self.weight_std = weight_std
        self.bias_std = float(bias_std)
        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_features, in_features, **factory))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator=generator)

    @property
    def weight_scale(self) -> float:
        """Factor applied to ``x Wᵀ`` in the forward pass (1.0 in standard parameterisation)."""
        if self.parameterization == "ntk":
            std = 1.0 if self.weight_std is None else self.weight_std
            return std / math.sqrt(self.in_features)
        return 1.0

    @property
    def bias_scale(self) -> float:
        """Factor applied to the bias in the forward pass (1.0 in standard parameterisation)."""
        return self.bias_std if self.parameterization == "ntk" else 1.0

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Redraw the parameters from their initial distribution.

        Args:
            generator: Generator to draw from (``None``: torch's global generator).
        """
        w, b = self.weight, self.bias
        if self.parameterization == "ntk":
            nn.init.normal_(w, 0.0, 1.0, generator=generator)
            if b is not None:
                nn.init.normal_(b, 0.0, 1.0, generator=generator)
        elif self.weight_std is None:  # exactly nn.Linear.reset_parameters
            nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=generator)
            if b is not None:
                bound = 1.0 / math.sqrt(self.in_features)
                nn.init.uniform_(b, -bound, bound, generator=generator)
        else:
            nn.init.normal_(
                w, 0.0, self.weight_std / math.sqrt(self.in_features), generator=generator
            )
            if b is not None:
                if self.bias_std == 0:
                    nn.init.zeros_(b)
                else:
                    nn.init.normal_(b, 0.0, self.bias_std, generator=generator)

    def sample_parameters(
        self,
        num: int,
        *,
        generator: torch.Generator | None = None,
        out: Mapping[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Draw ``num`` independent parameter sets from the initial distribution.

        The distribution is exactly that of `reset_parameters` (same formulas, same torch
        sampling calls): with ``num=1`` and a generator in the same state, the draws are
        bitwise equal to the parameters `reset_parameters` would set. Each tensor is filled by
        one vectorised call; weights are drawn before biases. The layer itself is unchanged.

        Args:
            num: Number :math:`M \\ge 1` of parameter sets.
            generator: Generator to draw from (``None``: torch's global generator); it must be
                on the layer's device.
            out: Optional preallocated tensors to fill instead of allocating, with the keys,
                shapes, dtype and device of the result (e.g. slices of a larger buffer).

        Returns:
            ``{"weight": (M, out_features, in_features)}``, plus ``"bias": (M, out_features)``
            when the layer has a bias, in the layer's dtype and on its device. The names match
            `named_parameters`, so the result can be fed to ``torch.func.functional_call``
            under ``torch.func.vmap``.

        Raises:
            ValueError: ``num`` is not an int >= 1, or ``out`` has the wrong keys or shapes.
            TypeError: ``out`` has the wrong dtype or device.
        """
        check_size("num", num)
        shapes = {"weight": (num, self.out_features, self.in_features)}
        if self.bias is not None:
            shapes["bias"] = (num, self.out_features)
        if out is None:
            factory = {"dtype": self.weight.dtype, "device": self.weight.device}
            params = {name: torch.empty(shape, **factory) for name, shape in shapes.items()}
        else:
            params = _check_out(out, shapes, self.weight)
        w, b = params["weight"], params.get("bias")
        with torch.no_grad():
            # The same calls as reset_parameters, on tensors with a leading `num` dimension.
            # (nn.init.kaiming_uniform_ would read fan_in from dimension 1 of a 3-d tensor, so
            # its bound is computed here with nn.init's own formula.)
            if self.parameterization == "ntk":
                w.normal_(0.0, 1.0, generator=generator)
                if b is not None:
                    b.normal_(0.0, 1.0, generator=generator)
            elif self.weight_std is None:
                gain = nn.init.calculate_gain("leaky_relu", math.sqrt(5))
                bound = math.sqrt(3.0) * (gain / math.sqrt(self.in_features))
                w.uniform_(-bound, bound, generator=generator)
                if b is not None:
                    bound = 1.0 / math.sqrt(self.in_features)
                    b.uniform_(-bound, bound, generator=generator)
            else:
                w.normal_(0.0, self.weight_std / math.sqrt(self.in_features), generator=generator)
                if b is not None:
                    if self.bias_std == 0:
                        b.zero_()
                    else:
                        b.normal_(0.0, self.bias_std, generator=generator)
        return params

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer: ``(..., in_features) -> (..., out_features)``."""
        if self.parameterization == "standard":
            return F.linear(x, self.weight, self.bias)
        scale = self.weight_scale
        if self.bias is None:
            y = F.linear(x, self.weight)
            return y if scale == 1.0 else y.mul_(scale)  # in place: linear's backward needs no y
        # bias_scale * b + scale * (x Wᵀ) in one fused op; W itself is never copied.
        return torch.add(self.bias * self.bias_scale, F.linear(x, self.weight), alpha=scale)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, weight_std={self.weight_std}, "
            f"bias_std={self.bias_std}, parameterization={self.parameterization!r}"
        )


def check_size(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value!r}")


def _check_out(
    out: Mapping[str, torch.Tensor],
    shapes: dict[str, tuple[int, ...]],
    like: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Validate the ``out`` tensors of `DenseLinear.sample_parameters`."""
    if set(out) != set(shapes):
        raise ValueError(f"out: expected the keys {sorted(shapes)}, got {sorted(out)}")
    for name, shape in shapes.items():
        tensor = out[name]
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != shape:
            got = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor)
            raise ValueError(f"out[{name!r}]: expected shape {shape}, got {got}")
        if tensor.dtype != like.dtype or tensor.device != like.device:
            raise TypeError(
                f"out[{name!r}]: expected dtype {like.dtype} on {like.device}, "
                f"got {tensor.dtype} on {tensor.device}"
            )
    return dict(out)


def _check_std(name: str, value: object) -> None:
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
