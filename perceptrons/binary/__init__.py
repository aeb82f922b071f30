"""Real bit-packed inference for binary networks (BiViT's `perceptrons.layers.binary`).

Paper: Yefei He, Zhenyu Lou, Luoming Zhang, Jing Liu, Weijia Wu, Hong Zhou & Bohan Zhuang,
*BiViT: Extremely Compressed Binary Vision Transformers*, ICCV 2023, arXiv:2211.07091. The
float binary layers simulate binarisation (±1 values in float32); this package stores the
signs as bits and computes with them. The binary inner product ``a · b = k - 2 popcount(a XOR
b)`` of ±1 vectors packed into words is the one of XNOR-Net (Rastegari et al. 2016,
arXiv:1603.05279) as binary inference engines such as Larq Compute Engine implement it
(https://docs.larq.dev/compute-engine/); the code here is our own.

Shapes: a ``(..., K)`` tensor packs into ``(..., ceil(K / 64))`` int64 words (`pack_signs`: bit
set where ``x >= 0``; `pack_mask`: where ``mask != 0``; `unpack_signs` inverts); `binary_matmul`
``(..., n, W) x (..., m, W) -> (..., n, m)`` int32 equals ``sign(A) @ sign(B)ᵀ`` exactly and
`binary_mask_matmul` the {0, 1} x ±1 product of binary attention ``B @ v``, for any ``K``.
Kernels: numba (``pip install 'perceptrons[fast]'``; compiled on first use, a few seconds) or
numpy's ``bitwise_count`` (numpy >= 2), chosen automatically (``backend="auto"``) or by name.

Modules: `PackedBinaryLinear` and `PackedBinaryAttention` (``from_binary`` of a binarised
`BinaryLinear` / `BinaryAttention`; outputs equal the float modules' in eval to float
rounding), `to_packed` (a packed copy of a whole model), `model_size_report` (bytes per tensor
as stored vs FP32), `save_packed` / `load_packed` (safetensors, atomic).

Example::

    packed = to_packed(model)              # model: e.g. create_model("bivit", config)
    print(model_size_report(packed).to_markdown())
    save_packed(packed, "bivit.packed.safetensors")
    again = load_packed("bivit.packed.safetensors", model)
"""

from perceptrons.binary.kernels import (
    BACKENDS,
    BackendName,
    binary_mask_matmul,
    binary_matmul,
    numba_available,
    resolve_backend,
    warm_up,
)
from perceptrons.binary.modules import (
    PACKED_BINARIZERS,
    PackedBinaryAttention,
    PackedBinaryLinear,
    to_packed,
)
from perceptrons.binary.packing import (
    WORD_BITS,
    check_packed,
    last_word_mask,
    num_words,
    pack_mask,
    pack_signs,
    unpack_signs,
)
from perceptrons.binary.report import SizeReport, SizeRow, model_size_report
from perceptrons.binary.storage import FORMAT, load_packed, save_packed

__all__ = [
    "BACKENDS",
    "FORMAT",
    "PACKED_BINARIZERS",
    "WORD_BITS",
    "BackendName",
    "PackedBinaryAttention",
    "PackedBinaryLinear",
    "SizeReport",
    "SizeRow",
    "binary_mask_matmul",
    "binary_matmul",
    "check_packed",
    "last_word_mask",
    "load_packed",
    "model_size_report",
    "numba_available",
    "num_words",
    "pack_mask",
    "pack_signs",
    "resolve_backend",
    "save_packed",
    "to_packed",
    "unpack_signs",
    "warm_up",
]
