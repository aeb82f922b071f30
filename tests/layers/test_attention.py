"""Attention layers: AMLP (PQuery, Cov) and the softmax/linear baselines behind one interface."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.func import functional_call

from perceptrons.layers import (
    ATTENTION_KINDS,
    AttentiveMLP,
    LinearAttention,
    NaiveSoftmaxAttention,
    SoftmaxAttention,
    largest_saved_tensor_numel,
    make_attention,
    saved_tensor_bytes,
)

F64 = torch.float64
E, H, C = 16, 2, 4  # embed_dim, heads, landmarks for the small tests
AMLP_KINDS = ("amlp-pquery", "amlp-cov")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


CLASSES = {
    "softmax": SoftmaxAttention,
    "naive": NaiveSoftmaxAttention,
    "linear": LinearAttention,
}


def _module(kind: str, *, seed: int = 0, dtype=F64, conv: bool = False, **kwargs):
    """The module of ``kind`` (``make_attention``'s defaults) with extra constructor kwargs."""
    factory = {"generator": _gen(seed), "dtype": dtype}
    if kind in CLASSES:
        return CLASSES[kind](E, H, **factory, **kwargs)
    if conv:
        kwargs["conv_kernel_size"] = 3
    return AttentiveMLP(E, H, C, kind.removeprefix("amlp-"), **factory, **kwargs)


def _x(*shape: int, seed: int = 1, dtype=F64) -> torch.Tensor:
    return torch.randn(*shape, generator=_gen(seed), dtype=dtype)


# (kind, conv branch): every kind, plus both AMLP variants with the conv branch on
CASES = [(kind, False) for kind in ATTENTION_KINDS] + [(kind, True) for kind in AMLP_KINDS]
CASE_IDS = [f"{k}{'-conv' if c else ''}" for k, c in CASES]


@pytest.mark.parametrize(("kind", "conv"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_output_shape_self_and_cross(kind: str, conv: bool, dtype: torch.dtype) -> None:
    mod = _module(kind, conv=conv, dtype=dtype)
    x, src = _x(3, 7, E, dtype=dtype), _x(3, 5, E, seed=2, dtype=dtype)
    out, weights = mod(x, x, x)
    assert out.shape == x.shape and out.dtype == dtype and weights is None
    out, _ = mod(x, src, src)
    assert out.shape == x.shape and torch.isfinite(out).all()


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_batch_first_false_is_the_transpose(kind: str) -> None:
    first, second = _module(kind), _module(kind, batch_first=False)
    x, src = _x(2, 6, E), _x(2, 4, E, seed=2)
    kpm = torch.tensor([[False, False, True, True], [False, False, False, False]])
    expected = first(x, src, src, key_padding_mask=kpm)[0]
    t = lambda y: y.transpose(0, 1)  # noqa: E731
    got = second(t(x), t(src), t(src), key_padding_mask=kpm)[0]
    assert got.shape == (6, 2, E)
    torch.testing.assert_close(t(got), expected, rtol=0, atol=1e-13)


@pytest.mark.parametrize(("kind", "conv"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
def test_padding_invariance(kind: str, conv: bool, training: bool) -> None:
    """Appending padded keys and queries (with garbage values) leaves real positions unchanged."""
    mod = _module(kind, conv=conv).train(training)
    n, m, extra_n, extra_m = 6, 5, 3, 4
    x, src = _x(2, n, E), _x(2, m, E, seed=2)
    # sample 1 also has real padding inside its valid lengths: 2 queries and 1 key
    qpm = torch.zeros(2, n, dtype=torch.bool)
    kpm = torch.zeros(2, m, dtype=torch.bool)
    qpm[1, 4:], kpm[1, 4:] = True, True
    x_pad = torch.cat([x, 100 * _x(2, extra_n, E, seed=3)], dim=1)
    src_pad = torch.cat([src, -50 * _x(2, extra_m, E, seed=4)], dim=1)
    qpm_pad = torch.cat([qpm, torch.ones(2, extra_n, dtype=torch.bool)], dim=1)
    kpm_pad = torch.cat([kpm, torch.ones(2, extra_m, dtype=torch.bool)], dim=1)
    # each call gets its own copy so PQuery's training-mode EMA update starts equal
    ref, _ = copy.deepcopy(mod)(x, src, src, key_padding_mask=kpm, query_padding_mask=qpm)
    out, _ = copy.deepcopy(mod)(
        x_pad, src_pad, src_pad, key_padding_mask=kpm_pad, query_padding_mask=qpm_pad
    )
    torch.testing.assert_close(out[:, :n], ref, rtol=0, atol=1e-12)
    assert (out[qpm_pad] == 0).all() and (ref[qpm] == 0).all()
    # the same holds for cross-attention's output in self-attention form
    ref_self, _ = copy.deepcopy(mod)(x, x, x, key_padding_mask=qpm, query_padding_mask=qpm)
    out_self, _ = copy.deepcopy(mod)(
        x_pad, x_pad, x_pad, key_padding_mask=qpm_pad, query_padding_mask=qpm_pad
    )
    torch.testing.assert_close(out_self[:, :n], ref_self, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_fully_padded_keys_give_finite_output(kind: str) -> None:
    mod = _module(kind)
    x, src = _x(2, 5, E), _x(2, 4, E, seed=2)
    kpm = torch.tensor([[True] * 4, [False, True, True, True]])
    out, _ = mod(x, src, src, key_padding_mask=kpm)
    assert torch.isfinite(out).all()
    qpm = torch.ones(2, 5, dtype=torch.bool)
    out, _ = mod(x, src, src, key_padding_mask=kpm, query_padding_mask=qpm)
    assert (out == 0).all()


@pytest.mark.parametrize("kind", ["amlp-cov", "amlp-pquery", "softmax", "naive", "linear"])
def test_permuting_source_tokens_leaves_cross_attention_unchanged(kind: str) -> None:
    """Every pooling over keys is order-free, Cov's Gram matrices included."""
    mod = _module(kind).eval()  # in training, PQuery's EMA would move between the calls
    x, src = _x(2, 6, E), _x(2, 9, E, seed=2)
    kpm = torch.zeros(2, 9, dtype=torch.bool)
    kpm[0, [1, 5]] = True
    perm = torch.randperm(9, generator=_gen(5))
    ref, _ = mod(x, src, src, key_padding_mask=kpm)
    out, _ = mod(x, src[:, perm], src[:, perm], key_padding_mask=kpm[:, perm])
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_self_attention_is_permutation_equivariant(kind: str) -> None:
    mod = _module(kind).eval()
    x = _x(2, 7, E)
    perm = torch.randperm(7, generator=_gen(6))
    torch.testing.assert_close(mod(x[:, perm], x[:, perm], x[:, perm])[0], mod(x, x, x)[0][:, perm])


def _gradcheck(mod: torch.nn.Module, *, restore_buffers: bool = False) -> None:
    """gradcheck over the inputs and every parameter, with both padding masks."""
    e = mod.embed_dim
    x = _x(2, 5, e, seed=7).requires_grad_()
    src = _x(2, 4, e, seed=8).requires_grad_()
    val = _x(2, 4, e, seed=9).requires_grad_()
    kpm = torch.tensor([[False, False, False, True], [False] * 4])
    qpm = torch.tensor([[False] * 5, [False, False, False, True, True]])
    names = [name for name, _ in mod.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in mod.parameters()]
    buffers = {name: b.clone() for name, b in mod.named_buffers()}

    def f(q, k, v, *ps):
        if restore_buffers:  # PQuery's training-mode EMA changes its buffer at every call
            for name, b in mod.named_buffers():
                b.copy_(buffers[name])
        state = dict(zip(names, ps, strict=True))
        args = (q, k, v)
        kwargs = {"key_padding_mask": kpm, "query_padding_mask": qpm}
        return functional_call(mod, state, args, kwargs)[0]

    assert torch.autograd.gradcheck(f, (x, src, val, *params), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(("kind", "conv"), [(k, c) for k in AMLP_KINDS for c in (False, True)])
def test_gradcheck_amlp(kind: str, conv: bool) -> None:
    variant = kind.removeprefix("amlp-")
    kernel = 3 if conv else None
    mod = AttentiveMLP(8, 2, 3, variant, conv_kernel_size=kernel, generator=_gen(0), dtype=F64)
    _gradcheck(mod.eval())


def test_gradcheck_pquery_training_mode_ema() -> None:
    """In training the current batch's query mean is part of the graph."""
    mod = AttentiveMLP(8, 2, 3, ema_momentum=0.5, generator=_gen(0), dtype=F64).train()
    mod.query_mean.copy_(_x(4, seed=10))
    _gradcheck(mod, restore_buffers=True)


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_every_parameter_gets_a_finite_gradient(kind: str) -> None:
    mod = _module(kind, dtype=torch.float32).train()
    x, src = _x(2, 5, E, dtype=torch.float32), _x(2, 4, E, seed=2, dtype=torch.float32)
    kpm = torch.tensor([[False, False, True, True], [False] * 4])
    out, _ = mod(x, src, src, key_padding_mask=kpm)
    out.square().sum().backward()
    for name, p in mod.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("kind", ["amlp-pquery", "amlp-cov", "linear"])
def test_causal_and_attention_masks_rejected(kind: str) -> None:
    mod = _module(kind)
    x = _x(2, 5, E)
    with pytest.raises(ValueError, match="non-causal"):
        mod(x, x, x, is_causal=True)
    with pytest.raises(ValueError, match="non-causal"):
        mod(x, x, x, attn_mask=torch.ones(5, 5, dtype=torch.bool).triu(1))


def test_ema_centring_updates_only_in_training() -> None:
    mod = _module("amlp-pquery")
    x = _x(2, 5, E)
    assert mod.query_mean.shape == (E // H,) and (mod.query_mean == 0).all()
    mod.eval()
    out_eval = mod(x, x, x)[0]
    assert (mod.query_mean == 0).all()
    mod.train()
    mod(x, x, x)
    first = mod.query_mean.clone()
    assert (first != 0).all() and not first.requires_grad
    mod(x, x, x)
    assert not torch.equal(mod.query_mean, first)
    # expected value: momentum 0.99 from zero, then again, with the same batch mean
    q = mod.q_proj(x).view(2, 5, H, E // H)
    batch_mean = q.mean(dim=(0, 1, 2)).detach()
    torch.testing.assert_close(first, 0.01 * batch_mean)
    torch.testing.assert_close(mod.query_mean, 0.99 * first + 0.01 * batch_mean)
    mod.eval()
    frozen = mod.query_mean.clone()
    assert not torch.equal(mod(x, x, x)[0], out_eval)  # the centring changed the output
    assert torch.equal(mod.query_mean, frozen)


def test_ema_disabled_and_cov_have_no_buffer() -> None:
    assert "query_mean" not in dict(_module("amlp-pquery", ema_momentum=None).named_buffers())
    cov = AttentiveMLP(E, H, variant="cov", ema_momentum=0.9)
    assert cov.ema_momentum is None and not list(cov.buffers())


@pytest.mark.parametrize("mask", ["none", "padding", "causal", "bool", "float", "all"])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_sdpa_equals_naive_softmax(mask: str, dtype: torch.dtype) -> None:
    sdpa = SoftmaxAttention(E, H, generator=_gen(0), dtype=dtype)
    naive = NaiveSoftmaxAttention(E, H, generator=_gen(1), dtype=dtype)
    naive.load_state_dict(sdpa.state_dict())
    x, src = _x(3, 6, E, dtype=dtype), _x(3, 6, E, seed=2, dtype=dtype)
    kwargs: dict = {}
    kpm = torch.tensor([[False] * 6, [False] * 4 + [True] * 2, [True] * 6])
    if mask in ("padding", "all"):
        kwargs["key_padding_mask"] = kpm
    if mask in ("causal", "all"):
        kwargs["is_causal"] = True
    if mask in ("bool", "all"):
        kwargs["attn_mask"] = torch.rand(6, 6, generator=_gen(3)) < 0.3
    if mask == "float":
        kwargs["attn_mask"] = _x(3 * H, 6, 6, seed=4, dtype=dtype)
    a, b = sdpa(x, src, src, **kwargs)[0], naive(x, src, src, **kwargs)[0]
    assert torch.isfinite(a).all()
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def test_same_seed_same_weights_and_outputs() -> None:
    for kind in ATTENTION_KINDS:
        a, b, c = _module(kind, seed=3), _module(kind, seed=3), _module(kind, seed=4)
        x = _x(2, 5, E)
        assert torch.equal(a(x, x, x)[0], b(x, x, x)[0])
        assert not torch.equal(a(x, x, x)[0], c(x, x, x)[0])


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_no_quadratic_saved_tensor(kind: str) -> None:
    """Largest tensor saved for backward, lengths 64 -> 128: AMLP ~2x, naive ~4x."""
    mod = make_attention(kind, 32, 4, num_landmarks=8, generator=_gen(0))
    sizes = [
        largest_saved_tensor_numel(mod, *(3 * [_x(2, n, 32, dtype=torch.float32)]))
        for n in (64, 128)
    ]
    ratio = sizes[1] / sizes[0]
    if kind == "naive":
        assert 3.5 <= ratio <= 4.0
        assert sizes[1] == 2 * 4 * 128 * 128  # the (b, h, n, m) scores
    else:
        assert ratio <= 2.2, (kind, sizes)


@pytest.mark.parametrize("mask", ["padding", "causal"])
def test_sdpa_keeps_linear_memory_with_masks(mask: str) -> None:
    mod = make_attention("softmax", 32, 4, generator=_gen(0))
    sizes = []
    for n in (64, 128):
        x = _x(2, n, 32, dtype=torch.float32)
        kpm = torch.zeros(2, n, dtype=torch.bool)
        kpm[0, -5:] = True
        kwargs = {"key_padding_mask": kpm} if mask == "padding" else {"is_causal": True}
        sizes.append(largest_saved_tensor_numel(mod, x, x, x, **kwargs))
    assert sizes[1] / sizes[0] <= 2.2


def test_saved_tensor_bytes() -> None:
    x64, x128 = _x(2, 64, 32, dtype=torch.float32), _x(2, 128, 32, dtype=torch.float32)
    for kind, low, high in [("naive", 3.0, 4.0), ("amlp-pquery", 1.8, 2.1), ("amlp-cov", 1.5, 2.1)]:
        mod = make_attention(kind, 32, 4, num_landmarks=8, generator=_gen(0))
        ratio = saved_tensor_bytes(mod, x128, x128, x128) / saved_tensor_bytes(mod, x64, x64, x64)
        assert low <= ratio <= high, (kind, ratio)
    # a plain function: both inputs saved by the product, counted once each
    a, b = torch.ones(3, 4, requires_grad=True), torch.ones(4, 5, requires_grad=True)
    assert saved_tensor_bytes(torch.matmul, a, b) == (12 + 20) * 4
    assert largest_saved_tensor_numel(torch.matmul, a, b) == 20


def test_make_attention_kinds() -> None:
    x = _x(2, 5, E)
    for kind in ATTENTION_KINDS:
        built = make_attention(kind, E, H, num_landmarks=C, generator=_gen(0), dtype=F64)
        direct = _module(kind)
        assert type(built) is type(direct) and built.batch_first
        assert torch.equal(built(x, x, x)[0], direct(x, x, x)[0])
    assert make_attention("amlp-cov", E, H).variant == "cov"
    assert make_attention("amlp-pquery", E, H, num_landmarks=3).num_landmarks == 3
    assert make_attention("naive", E, H, dropout=0.25).dropout == 0.25
    with pytest.raises(ValueError, match=r"expected one of \('softmax', 'naive'"):
        make_attention("flash", E, H)


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_bad_inputs_raise_clear_errors(kind: str) -> None:
    mod = _module(kind)
    x, src = _x(2, 5, E), _x(2, 4, E, seed=2)
    bad = [
        ((x[0], x[0], x[0]), {}, ValueError, r"query: expected shape \(batch, query_length, 16\)"),
        ((_x(2, 5, E + 1), src, src), {}, ValueError, r"query: expected shape .*got \(2, 5, 17\)"),
        ((x, src, src[:, :3]), {}, ValueError, r"value: expected the shape of key"),
        ((x, _x(3, 4, E), src), {}, ValueError, r"key: expected shape \(2, key_length, 16\)"),
        ((x, src, src.float()), {}, TypeError, "value: expected dtype torch.float64"),
        ((x.long(), src, src), {}, TypeError, "query: expected a floating tensor"),
        ((x, src, src), {"key_padding_mask": torch.zeros(2, 5, dtype=torch.bool)}, ValueError,
         r"key_padding_mask: expected shape \(batch, key_length\) = \(2, 4\)"),
        ((x, src, src), {"key_padding_mask": torch.zeros(2, 4)}, TypeError,
         "key_padding_mask: expected a bool tensor"),
        ((x, src, src), {"query_padding_mask": torch.zeros(2, 4, dtype=torch.bool)}, ValueError,
         r"query_padding_mask: expected shape \(batch, query_length\) = \(2, 5\)"),
    ]  # fmt: skip
    for args, kwargs, error, match in bad:
        with pytest.raises(error, match=match):
            mod(*args, **kwargs)


def test_bad_attn_mask_for_softmax() -> None:
    mod = _module("softmax")
    x = _x(2, 5, E)
    with pytest.raises(ValueError, match=r"attn_mask: expected shape \(query_length, key_length"):
        mod(x, x, x, attn_mask=torch.zeros(4, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match="attn_mask: expected a bool or float tensor"):
        mod(x, x, x, attn_mask=torch.zeros(5, 5, dtype=torch.long))


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="embed_dim: expected a multiple of num_heads=3"):
        AttentiveMLP(16, 3)
    with pytest.raises(ValueError, match="embed_dim: expected a multiple of num_heads=3"):
        SoftmaxAttention(16, 3)
    with pytest.raises(ValueError, match="variant: expected one of"):
        AttentiveMLP(16, 2, variant="query")
    with pytest.raises(ValueError, match="num_landmarks"):
        AttentiveMLP(16, 2, num_landmarks=0)
    with pytest.raises(ValueError, match=r"ema_momentum: expected a value in \[0, 1\)"):
        AttentiveMLP(16, 2, ema_momentum=1.0)
    with pytest.raises(ValueError, match="conv_kernel_size: expected an odd int"):
        AttentiveMLP(16, 2, conv_kernel_size=4)
    with pytest.raises(ValueError, match="dropout"):
        LinearAttention(16, 2, dropout=1.0)


# --------------------------------------------------------------------------- formulas by hand
def _softmax_rows(a: torch.Tensor) -> torch.Tensor:
    e = torch.exp(a - a.max(-1, keepdim=True).values)
    return e / e.sum(-1, keepdim=True)


def _randomise(mod: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every parameter redrawn N(0, 0.7^2) (biases, LayerNorm affine and temperatures too)."""
    g = _gen(seed)
    with torch.no_grad():
        for p in mod.parameters():
            p.copy_(0.7 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return mod.eval()


def _head(x: torch.Tensor, proj: torch.nn.Linear, i: int, j: int, d: int) -> torch.Tensor:
    """Head ``j`` of batch item ``i`` after the projection: ``(length, d)``."""
    return (x[i] @ proj.weight.T + proj.bias)[:, j * d : (j + 1) * d]


def _conv_by_hand(mod: AttentiveMLP, q: torch.Tensor, j: int) -> torch.Tensor:
    """relu(sum_s w[j, s] q[t + s - pad] + bias[j]) over the sequence, zero padded: (n, d)."""
    size = mod.conv_kernel_size
    pad = size // 2
    padded = torch.cat([q.new_zeros(pad, q.shape[1]), q, q.new_zeros(pad, q.shape[1])])
    out = sum(mod.conv_weight[j, 0, s, 0] * padded[s : s + q.shape[0]] for s in range(size))
    return torch.relu(out + mod.conv_bias[j])


def _layer_norm(x: torch.Tensor, norm: torch.nn.LayerNorm) -> torch.Tensor:
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias


def _amlp_by_hand(mod: AttentiveMLP, query, key, value) -> torch.Tensor:
    """The module docstring's Cov / PQuery equations, one batch item and head at a time."""
    h, d = mod.num_heads, mod.head_dim
    inputs = ((query, mod.q_proj), (key, mod.k_proj), (value, mod.v_proj))
    outputs = []
    for i in range(query.shape[0]):
        heads = []
        for j in range(h):
            q, k, v = (_head(t, p, i, j, d) for t, p in inputs)
            cq, ck = mod.q_landmarks[j], mod.k_landmarks[j]  # (c, d)
            if mod.variant == "cov":
                qh, kh, vh = (t / t.norm(dim=0) for t in (q, k, v))  # unit feature columns
                a_q = _softmax_rows(mod.temperature_q[j] * qh.T @ qh)  # (d, d)
                a_k = _softmax_rows(mod.temperature_k[j] * kh.T @ kh)
                bkv = _softmax_rows(mod.temperature_kv[j] * kh.T @ vh)
                m = torch.relu(cq @ a_q + ck @ a_k)  # (c, d)
                w_qk, w_qkv, s = m.T, m @ bkv.T, 1 / d**0.5
            else:
                q = q - mod.query_mean
                p_q = _softmax_rows(cq @ q.T) @ q  # (c, d)
                p_k = _softmax_rows(ck @ k.T) @ k
                proj = mod.landmark_proj
                m = torch.cat([p_q, p_k], dim=1) @ proj.weight.T + proj.bias  # (c, d)
                w_qk, w_qkv, s = m.T, _softmax_rows(m @ k.T) @ v, 1.0
            out = _softmax_rows(s * q @ w_qk) @ w_qkv  # (n, d)
            if mod.conv_kernel_size is not None:
                out = out + _conv_by_hand(mod, q, j)
            heads.append(_layer_norm(out, mod.out_norm))
        outputs.append(torch.cat(heads, dim=1) @ mod.out_proj.weight.T + mod.out_proj.bias)
    return torch.stack(outputs)


@pytest.mark.parametrize("conv", [False, True], ids=["plain", "conv"])
@pytest.mark.parametrize("variant", ["cov", "pquery"])
def test_amlp_matches_its_equations_written_out(variant: str, conv: bool) -> None:
    """Cross-attention with distinct keys and values, every parameter random, eval mode."""
    mod = AttentiveMLP(8, 2, 3, variant, conv_kernel_size=3 if conv else None, dtype=F64)
    _randomise(mod, seed=11)
    if variant == "pquery":
        mod.query_mean.copy_(_x(4, seed=12))
    query, key, value = _x(2, 5, 8, seed=13), _x(2, 4, 8, seed=14), _x(2, 4, 8, seed=15)
    expected = _amlp_by_hand(mod, query, key, value)
    torch.testing.assert_close(mod(query, key, value)[0], expected, rtol=1e-12, atol=1e-12)


def test_linear_attention_matches_its_equation_written_out() -> None:
    mod = _randomise(LinearAttention(8, 2, dtype=F64), seed=16)
    query, key, value = _x(2, 5, 8, seed=17), _x(2, 4, 8, seed=18), _x(2, 4, 8, seed=19)
    inputs = ((query, mod.q_proj), (key, mod.k_proj), (value, mod.v_proj))
    outputs = []
    for i in range(2):
        heads = []
        for j in range(2):
            q, k, v = (_head(t, p, i, j, 4) for t, p in inputs)
            phi_q, phi_k = torch.nn.functional.elu(q) + 1, torch.nn.functional.elu(k) + 1
            rows = [
                sum(phi_q[t] @ phi_k[s] * v[s] for s in range(4))
                / sum(phi_q[t] @ phi_k[s] for s in range(4))
                for t in range(5)
            ]
            heads.append(torch.stack(rows))
        outputs.append(torch.cat(heads, dim=1) @ mod.out_proj.weight.T + mod.out_proj.bias)
    expected = torch.stack(outputs)
    torch.testing.assert_close(mod(query, key, value)[0], expected, rtol=1e-12, atol=1e-12)
