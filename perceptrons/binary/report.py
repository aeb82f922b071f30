"""Storage size of a (packed) model, tensor by tensor: `model_size_report`.

Each row is one entry of the model's ``state_dict()`` as it is stored (parameters and
persistent buffers): its shape, dtype and bytes (``numel * element_size``), and the bytes the
same entry takes in FP32 (``4 * numel``; for the packed weights of a `PackedBinaryLinear`, ``4
* d_out * d_in``, the float matrix they encode). Totals: the model's bytes, its FP32 bytes and
their ratio; and the same for the packed binary weight words alone (``8 * d_out * ceil(d_in /
64)`` bytes against ``4 * d_out * d_in``: a ratio just under 32 when ``d_in`` is a multiple of
64, lower otherwise because of the padding bits).

For an FP32 model every row has ``bytes == fp32_bytes`` (ratio 1). The FP32 column of a packed
model counts its ``(d_out,)`` scales, which a mean-scale float layer derives from its weights
instead of storing; so it is the FP32 model plus ``4 d_out`` bytes per such layer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from perceptrons.binary.modules import PackedBinaryLinear

__all__ = ["SizeReport", "SizeRow", "model_size_report"]


@dataclass(frozen=True)
class SizeRow:
    """One stored tensor.

    Attributes:
        name: Its ``state_dict`` key.
        shape: Its shape as stored.
        dtype: Its dtype as stored (``"int64"``, ``"float32"``, ...).
        bytes: Bytes as stored, ``numel * element_size``.
        fp32_bytes: Bytes of the same values in FP32 (packed words: of the ``(d_out, d_in)``
            float matrix they encode).
        packed: Whether it is a packed binary weight.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    bytes: int
    fp32_bytes: int
    packed: bool


@dataclass(frozen=True)
class SizeReport:
    """Rows and totals of `model_size_report`.

    Attributes:
        rows: One `SizeRow` per stored tensor, in ``state_dict`` order.
    """

    rows: list[SizeRow] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        """Bytes of the model as stored."""
        return sum(r.bytes for r in self.rows)

    @property
    def fp32_bytes(self) -> int:
        """Bytes of the same model in FP32."""
        return sum(r.fp32_bytes for r in self.rows)

    @property
    def ratio(self) -> float:
        """``fp32_bytes / bytes`` (the compression factor; 1 for an FP32 model)."""
        return self.fp32_bytes / self.bytes if self.bytes else 1.0

    @property
    def binary_weight_bytes(self) -> int:
        """Bytes of the packed weight words alone."""
        return sum(r.bytes for r in self.rows if r.packed)

    @property
    def binary_weight_fp32_bytes(self) -> int:
        """FP32 bytes of the weight matrices the packed words encode."""
        return sum(r.fp32_bytes for r in self.rows if r.packed)

    @property
    def binary_weight_ratio(self) -> float:
        """``binary_weight_fp32_bytes / binary_weight_bytes`` (1 when nothing is packed)."""
        packed = self.binary_weight_bytes
        return self.binary_weight_fp32_bytes / packed if packed else 1.0

    def totals(self) -> dict[str, float]:
        """The totals as a dict (bytes as ints, ratios as floats)."""
        return {
            "bytes": self.bytes,
            "fp32_bytes": self.fp32_bytes,
            "ratio": self.ratio,
            "binary_weight_bytes": self.binary_weight_bytes,
            "binary_weight_fp32_bytes": self.binary_weight_fp32_bytes,
            "binary_weight_ratio": self.binary_weight_ratio,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"rows": [...], "totals": {...}}``."""
        rows = [{**asdict(r), "shape": list(r.shape)} for r in self.rows]
        return {"rows": rows, "totals": self.totals()}

    def to_markdown(self) -> str:
        """The rows and totals as a Markdown table."""
        lines = [
            "| tensor | shape | dtype | bytes | FP32 bytes |",
            "|---|---|---|---:|---:|",
        ]
        for r in self.rows:
            shape = str(r.shape)
            name = f"{r.name} (packed)" if r.packed else r.name
            lines.append(f"| {name} | {shape} | {r.dtype} | {r.bytes:,} | {r.fp32_bytes:,} |")
        lines.append(f"| **total** | | | **{self.bytes:,}** | **{self.fp32_bytes:,}** |")
        lines.append("")
        lines.append(
            f"Model: {self.bytes:,} B stored vs {self.fp32_bytes:,} B in FP32 "
            f"({self.ratio:.2f}x smaller); packed binary weights: "
            f"{self.binary_weight_bytes:,} B vs {self.binary_weight_fp32_bytes:,} B "
            f"({self.binary_weight_ratio:.2f}x)."
        )
        return "\n".join(lines)


def model_size_report(model: nn.Module) -> SizeReport:
    """Bytes per stored tensor of ``model`` (packed or not) and the totals (module docstring).

    Args:
        model: Any module, typically the result of `perceptrons.binary.to_packed`.

    Returns:
        A `SizeReport` (``.rows``, ``.bytes``, ``.fp32_bytes``, ``.ratio``,
        ``.binary_weight_bytes``, ``.binary_weight_fp32_bytes``, ``.to_markdown()``).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    logical: dict[str, int] = {}  # state_dict key of packed words -> d_out * d_in
    for prefix, module in model.named_modules():
        if isinstance(module, PackedBinaryLinear):
            key = f"{prefix}.weight_packed" if prefix else "weight_packed"
            logical[key] = module.out_features * module.in_features
    rows = []
    for name, tensor in model.state_dict().items():
        stored = tensor.numel() * tensor.element_size()
        rows.append(
            SizeRow(
                name=name,
                shape=tuple(tensor.shape),
                dtype=str(tensor.dtype).removeprefix("torch."),
                bytes=stored,
                fp32_bytes=4 * logical.get(name, tensor.numel()),
                packed=name in logical,
            )
        )
    return SizeReport(rows)
