"""Optimiser factories and learning-rate schedules against their closed forms; sparse
embedding optimisers (SparseAdam/Adagrad), `CombinedOptimizer`, sparse gradient clipping."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from perceptrons.config import ConfigError
from perceptrons.data.loader import TensorLoader
from perceptrons.train import (
    FitConfig,
    OptimizerConfig,
    ScheduleConfig,
    fit,
    latest_checkpoint,
    load_checkpoint,
    make_optimizer,
    make_scheduler,
    save_checkpoint,
)
from perceptrons.train.optim import (
    CombinedOptimizer,
    RowSparseAdagrad,
    RowSparseAdam,
    RowwiseAdagrad,
    clip_grad_norm,
    lr_factor,
    sparse_embedding_parameters,
)


@pytest.mark.parametrize(
    ("name", "cls"),
    [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)],
)
def test_make_optimizer_type_and_hyperparameters(name, cls):
    momentum = 0.8 if name == "sgd" else 0.0
    config = OptimizerConfig(
        name=name, lr=0.05, weight_decay=0.01, momentum=momentum, betas=(0.8, 0.99), eps=1e-6
    )
    optimizer = make_optimizer(nn.Linear(3, 2).parameters(), config)
    assert type(optimizer) is cls
    group = optimizer.param_groups[0]
    assert group["lr"] == 0.05 and group["weight_decay"] == 0.01
    if name == "sgd":
        assert group["momentum"] == 0.8
    else:
        assert tuple(group["betas"]) == (0.8, 0.99) and group["eps"] == 1e-6


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_fused_adam_takes_the_same_steps_up_to_rounding(name):
    results = []
    for fused in (False, True):
        model = nn.Linear(5, 3, dtype=torch.float64)
        with torch.no_grad():
            model.weight.copy_(torch.arange(15.0).reshape(3, 5) / 10)
            model.bias.fill_(0.1)
        optimizer = make_optimizer(
            model.parameters(), OptimizerConfig(name=name, lr=0.01, weight_decay=0.1, fused=fused)
        )
        assert bool(optimizer.param_groups[0]["fused"]) is fused
        x = torch.linspace(-1, 1, 20, dtype=torch.float64).reshape(4, 5)
        for _ in range(5):
            optimizer.zero_grad()
            (model(x) ** 2).sum().backward()
            optimizer.step()
        results.append(model.weight.detach().clone())
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-14)
    assert not torch.equal(results[0], torch.arange(15.0, dtype=torch.float64).reshape(3, 5) / 10)


def test_sgd_step_matches_formula():
    torch.manual_seed(0)
    layer = nn.Linear(4, 1, bias=False)
    before = layer.weight.detach().clone()
    optimizer = make_optimizer(layer.parameters(), OptimizerConfig(name="sgd", lr=0.1))
    layer(torch.ones(1, 4)).sum().backward()
    optimizer.step()
    torch.testing.assert_close(layer.weight.detach(), before - 0.1 * torch.ones(1, 4))


def _lrs(config: ScheduleConfig, total: int, base: float = 2.0) -> list[float]:
    """Learning rate used by each of the ``total`` optimiser steps."""
    param = nn.Parameter(torch.zeros(()))
    optimizer = torch.optim.SGD([param], lr=base)
    scheduler = make_scheduler(optimizer, config, total)
    lrs = []
    for _ in range(total):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_constant():
    assert _lrs(ScheduleConfig(), 5) == [2.0] * 5


def test_warmup_is_linear_then_constant():
    lrs = _lrs(ScheduleConfig(warmup_steps=4), 8)
    assert lrs == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0, 2.0, 2.0, 2.0])


def test_cosine_closed_form_with_warmup():
    warmup, total, ratio = 3, 13, 0.1
    lrs = _lrs(ScheduleConfig(name="cosine", warmup_steps=warmup, min_lr_ratio=ratio), total)
    span = total - warmup
    for t, lr in enumerate(lrs):
        if t < warmup:
            expected = (t + 1) / warmup
        else:
            expected = ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * (t - warmup) / span))
        assert lr == pytest.approx(2.0 * expected, rel=1e-12)
    assert lrs[warmup] == pytest.approx(2.0)  # peak right after warm-up
    assert lrs[warmup + span // 2] == pytest.approx(2.0 * (ratio + (1 - ratio) * 0.5))
    assert lr_factor(ScheduleConfig(name="cosine", min_lr_ratio=ratio), total, total) == (
        pytest.approx(ratio)
    )
    assert all(a >= b for a, b in zip(lrs[warmup:], lrs[warmup + 1 :], strict=False))


def test_linear_closed_form():
    lrs = _lrs(ScheduleConfig(name="linear", min_lr_ratio=0.5), 5)
    assert lrs == pytest.approx([2.0 * (1 - 0.5 * t / 5) for t in range(5)])
    assert lr_factor(ScheduleConfig(name="linear"), 10, 10) == 0.0


def test_step_schedule():
    lrs = _lrs(ScheduleConfig(name="step", step_size=3, gamma=0.5, warmup_steps=2), 10)
    expected = [1.0, 2.0] + [2.0 * 0.5 ** ((t - 2) // 3) for t in range(2, 10)]
    assert lrs == pytest.approx(expected)


def test_factor_stays_at_floor_after_total():
    config = ScheduleConfig(name="cosine", min_lr_ratio=0.2)
    assert lr_factor(config, 50, 10) == pytest.approx(0.2)


def test_scheduler_state_is_plain_json():
    param = nn.Parameter(torch.zeros(()))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = make_scheduler(optimizer, ScheduleConfig(name="cosine", warmup_steps=2), 10)
    optimizer.step()
    scheduler.step()
    json.dumps(scheduler.state_dict(), allow_nan=False)


def test_total_steps_must_be_positive():
    param = nn.Parameter(torch.zeros(()))
    with pytest.raises(ValueError, match="total_steps"):
        make_scheduler(torch.optim.SGD([param], lr=1.0), ScheduleConfig(), 0)


# ---------------------------------------------------------------------- sparse embeddings
class _Bag(nn.Module):
    """Mean of the rows of ``ids`` (b, L) of one table, then a linear head: (b,)."""

    def __init__(self, rows: int, dim: int = 4, *, sparse: bool, seed: int = 0) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.table = nn.Embedding(rows, dim, sparse=sparse)
            self.head = nn.Linear(dim, 1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.table(ids).mean(1)).squeeze(-1)


def _loss(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    target = torch.linspace(-1, 1, ids.shape[0])
    return ((model(ids) - target) ** 2).mean()


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, ids: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    _loss(model, ids).backward()
    optimizer.step()


def _ids(seed: int, rows: int, batch: int = 6, width: int = 3) -> torch.Tensor:
    return torch.randint(0, rows, (batch, width), generator=torch.Generator().manual_seed(seed))


def test_sparse_adam_takes_adams_first_step_and_leaves_other_rows():
    dense, sparse = _Bag(20, sparse=False), _Bag(20, sparse=True)
    before = sparse.table.weight.detach().clone()
    adam = make_optimizer(dense, OptimizerConfig(name="adam", lr=0.01))
    combined = make_optimizer(
        sparse, OptimizerConfig(name="adam", lr=0.01, embedding_optimizer="sparse_adam")
    )
    ids = torch.tensor([[1, 3, 3], [5, 1, 7]])  # repeated ids: their gradients add up
    _step(dense, adam, ids)
    _step(sparse, combined, ids)
    touched = torch.unique(ids)
    untouched = torch.tensor([r for r in range(20) if r not in set(touched.tolist())])
    after = sparse.table.weight.detach()
    torch.testing.assert_close(after[touched], dense.table.weight[touched], rtol=0, atol=1e-6)
    assert not torch.equal(after[touched], before[touched])
    assert torch.equal(after[untouched], before[untouched])
    for a, b in zip(dense.head.parameters(), sparse.head.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    # a later step: dense Adam keeps moving rows with momentum, the lazy SparseAdam does not
    ids2 = torch.tensor([[9, 9, 10]])
    before2 = after.clone()
    dense_before2 = dense.table.weight.detach().clone()
    _step(dense, adam, ids2)
    _step(sparse, combined, ids2)
    moved = (sparse.table.weight != before2).any(1).nonzero().flatten()
    assert moved.tolist() == [9, 10]
    assert not torch.equal(dense.table.weight[touched], dense_before2[touched])


def test_sparse_adagrad_equals_dense_adagrad_over_steps():
    # Adagrad leaves a row with a zero gradient in place, so lazy and dense agree at every step
    dense, sparse = _Bag(30, sparse=False), _Bag(30, sparse=True)
    reference = CombinedOptimizer(
        [
            torch.optim.Adam(dense.head.parameters(), lr=0.01),
            torch.optim.Adagrad(dense.table.parameters(), lr=0.1),
        ]
    )
    config = OptimizerConfig(name="adam", lr=0.01, embedding_optimizer="adagrad", embedding_lr=0.1)
    optimizer = make_optimizer(sparse, config)
    for seed in range(4):
        ids = _ids(seed, 30)
        _step(dense, reference, ids)
        _step(sparse, optimizer, ids)
    for a, b in zip(dense.parameters(), sparse.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_rowwise_adagrad_follows_its_closed_form_over_steps():
    """s_r += mean_d(g_r^2); w_r -= lr g_r / (sqrt(s_r) + eps), from the dense gradients of an
    identical dense model (a row with a zero gradient keeps w_r and s_r: lazy = dense)."""
    rows, lr, eps = 30, 0.1, 1e-10
    dense, sparse = _Bag(rows, sparse=False), _Bag(rows, sparse=True)
    config = OptimizerConfig(
        name="sgd", lr=0.01, embedding_optimizer="rowwise_adagrad", embedding_lr=lr
    )
    optimizer = make_optimizer(sparse, config)
    head = torch.optim.SGD(dense.head.parameters(), lr=0.01)
    weight, total = dense.table.weight.detach().clone().double(), torch.zeros(rows).double()
    for seed in range(4):
        ids = _ids(seed, rows)
        ids[0, 0] = ids[1, 1]  # a repeated id: its gradients add up
        head.zero_grad(set_to_none=True)
        dense.table.weight.grad = None
        _loss(dense, ids).backward()
        g = dense.table.weight.grad.double()
        total += g.square().mean(1)
        weight -= lr * g / (total.sqrt() + eps).unsqueeze(1)
        head.step()
        with torch.no_grad():
            dense.table.weight.copy_(weight)
        _step(sparse, optimizer, ids)
        torch.testing.assert_close(sparse.table.weight.double(), weight, rtol=0, atol=1e-6)
    state = optimizer.state[sparse.table.weight]
    assert state["sum"].shape == (rows,) and state["step"] == 4
    torch.testing.assert_close(state["sum"].double(), total, rtol=1e-5, atol=1e-12)


def test_rowwise_adagrad_refuses_bad_arguments_and_dense_gradients():
    table = nn.Parameter(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="lr"):
        RowwiseAdagrad([table], lr=0.0)
    with pytest.raises(ValueError, match="2-d"):
        RowwiseAdagrad([nn.Parameter(torch.zeros(5))])
    optimizer = RowwiseAdagrad([table])
    table.grad = torch.ones(5, 3)
    with pytest.raises(RuntimeError, match="row-sparse"):
        optimizer.step()


@pytest.mark.parametrize("embedding_optimizer", ["sparse_adam", "adagrad", "rowwise_adagrad"])
def test_a_step_changes_exactly_the_rows_of_the_batch(embedding_optimizer):
    rows = 100_000
    model = _Bag(rows, dim=8, sparse=True)
    optimizer = make_optimizer(
        model, OptimizerConfig(name="adamw", embedding_optimizer=embedding_optimizer)
    )
    for seed in range(6):  # batches of several sizes, with repeated ids
        ids = _ids(seed, rows, batch=2 ** (seed + 2), width=1 + seed % 3)
        ids[0, 0] = ids[-1, -1]
        before = model.table.weight.detach().clone()
        _step(model, optimizer, ids)
        changed = (model.table.weight != before).any(dim=1)
        assert int(changed.sum()) == len(torch.unique(ids))
        assert bool(changed[torch.unique(ids)].all())


def test_make_optimizer_splits_dense_and_sparse_parameters():
    model = _Bag(10, sparse=True)
    config = OptimizerConfig(
        name="adamw", lr=0.01, weight_decay=0.1, embedding_optimizer="sparse_adam", embedding_lr=0.5
    )
    optimizer = make_optimizer(model, config)
    assert isinstance(optimizer, CombinedOptimizer) and isinstance(optimizer, torch.optim.Optimizer)
    dense, embedding = optimizer.optimizers
    assert type(dense) is torch.optim.AdamW and type(embedding) is RowSparseAdam
    assert isinstance(embedding, torch.optim.SparseAdam)
    assert sparse_embedding_parameters(model) == [model.table.weight]
    assert dense.param_groups[0]["params"] == list(model.head.parameters())
    assert dense.param_groups[0]["weight_decay"] == 0.1 and dense.param_groups[0]["lr"] == 0.01
    assert embedding.param_groups[0]["params"] == [model.table.weight]
    assert embedding.param_groups[0]["lr"] == 0.5
    assert optimizer.param_groups == dense.param_groups + embedding.param_groups
    # a model of sparse tables only gets the embedding optimiser alone
    table = nn.EmbeddingBag(10, 3, sparse=True)
    adagrad = make_optimizer(table, OptimizerConfig(embedding_optimizer="adagrad"))
    assert type(adagrad) is RowSparseAdagrad and isinstance(adagrad, torch.optim.Adagrad)
    # "same" with plain sgd applies sparse gradients as they are
    assert type(make_optimizer(model, OptimizerConfig(name="sgd"))) is torch.optim.SGD


def test_make_optimizer_errors_name_embedding_optimizer():
    with pytest.raises(ValueError, match=r"embedding_optimizer: 'same' .* 'adamw'"):
        make_optimizer(_Bag(10, sparse=True), OptimizerConfig(name="adamw"))
    with pytest.raises(ValueError, match=r"embedding_optimizer: .*'sgd'"):
        make_optimizer(_Bag(10, sparse=True), OptimizerConfig(name="sgd", momentum=0.9))
    with pytest.raises(ValueError, match=r"embedding_optimizer: 'sparse_adam' needs sparse"):
        make_optimizer(_Bag(10, sparse=False), OptimizerConfig(embedding_optimizer="sparse_adam"))
    with pytest.raises(ValueError, match=r"embedding_optimizer: 'adagrad' needs the model"):
        make_optimizer(
            _Bag(10, sparse=True).parameters(), OptimizerConfig(embedding_optimizer="adagrad")
        )


def test_optimizer_config_validation_names_the_field():
    with pytest.raises(ConfigError, match=r"^embedding_lr: is only used with"):
        OptimizerConfig(embedding_lr=0.1)
    with pytest.raises(ConfigError, match=r"^embedding_lr: must be finite and > 0"):
        OptimizerConfig(embedding_optimizer="sparse_adam", embedding_lr=-1.0)
    with pytest.raises(ConfigError, match="embedding_optimizer"):
        OptimizerConfig(embedding_optimizer="rmsprop")
    with pytest.raises(ConfigError, match=r"^progress_every: must be >= 1"):
        FitConfig(progress_every=0)


def test_combined_state_dict_has_one_optimizer_layout_and_round_trips(tmp_path):
    model = _Bag(12, sparse=True)
    config = OptimizerConfig(name="adam", embedding_optimizer="sparse_adam")
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, ScheduleConfig(name="linear", warmup_steps=2), 10)
    for seed in range(3):
        _step(model, optimizer, _ids(seed, 12))
        scheduler.step()
    state = optimizer.state_dict()
    # indices 0..2: head weight, head bias (Adam), then the table (SparseAdam)
    assert [g["params"] for g in state["param_groups"]] == [[0, 1], [2]]
    assert sorted(state["state"]) == [0, 1, 2]
    assert set(state["state"][2]) == {"step", "exp_avg", "exp_avg_sq"}
    # the schedule scales both groups
    factor = lr_factor(ScheduleConfig(name="linear", warmup_steps=2), 3, 10)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([1e-3 * factor] * 2)
    save_checkpoint(tmp_path, 3, model=model, optimizer=optimizer, scheduler=scheduler)

    twin = _Bag(12, sparse=True, seed=5)
    twin_optimizer = make_optimizer(twin, config)
    twin_scheduler = make_scheduler(
        twin_optimizer, ScheduleConfig(name="linear", warmup_steps=2), 10
    )
    load_checkpoint(tmp_path, model=twin, optimizer=twin_optimizer, scheduler=twin_scheduler)
    for seed in range(3, 6):
        for m, o, s in ((model, optimizer, scheduler), (twin, twin_optimizer, twin_scheduler)):
            _step(m, o, _ids(seed, 12))
            s.step()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match=r"has 1 parameter groups, this CombinedOptimizer has 2"):
        optimizer.load_state_dict({"state": {}, "param_groups": state["param_groups"][:1]})


def test_combined_optimizer_members_must_be_disjoint():
    param = nn.Parameter(torch.zeros(3))
    with pytest.raises(ValueError, match="shares a parameter"):
        CombinedOptimizer([torch.optim.SGD([param], lr=1.0), torch.optim.Adam([param])])
    with pytest.raises(ValueError, match="at least one"):
        CombinedOptimizer([])


def test_clip_grad_norm_counts_and_scales_sparse_gradients():
    model = _Bag(50, sparse=True)
    ids = torch.tensor([[1, 2, 2], [3, 1, 1]])
    (100 * _loss(model, ids)).backward()
    sparse_grad = model.table.weight.grad.coalesce().to_dense()
    head_grads = [p.grad.clone() for p in model.head.parameters()]
    expected = torch.sqrt(sparse_grad.pow(2).sum() + sum(g.pow(2).sum() for g in head_grads))
    norm = clip_grad_norm(model.parameters(), 0.1)
    torch.testing.assert_close(norm, expected)
    grad = model.table.weight.grad
    assert grad.is_sparse and grad.is_coalesced()
    clipped = torch.sqrt(
        grad.to_dense().pow(2).sum() + sum(p.grad.pow(2).sum() for p in model.head.parameters())
    )
    torch.testing.assert_close(clipped, torch.tensor(0.1), rtol=1e-5, atol=0)
    torch.testing.assert_close(grad.to_dense(), sparse_grad * 0.1 / (expected + 1e-6))
    # without sparse gradients it is torch's clip_grad_norm_ itself
    dense = _Bag(50, sparse=False)
    (100 * _loss(dense, ids)).backward()
    twin = [nn.Parameter(p.detach().clone()) for p in dense.parameters()]
    for copy, p in zip(twin, dense.parameters(), strict=True):
        copy.grad = p.grad.clone()
    assert torch.equal(
        clip_grad_norm(dense.parameters(), 0.1), torch.nn.utils.clip_grad_norm_(twin, 0.1)
    )
    assert all(torch.equal(a.grad, b.grad) for a, b in zip(dense.parameters(), twin, strict=True))


def test_checkpoint_of_a_config_without_the_new_fields_resumes(tmp_path):
    x = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
    y = x.sum(1, keepdim=True)
    config = FitConfig(max_steps=4, checkpoint_every=2, progress=False)

    def run(config: FitConfig):
        step = lambda m, b: {"loss": ((m(b[0]) - b[1]) ** 2).mean()}  # noqa: E731
        return fit(nn.Linear(3, 1), step, TensorLoader((x, y), 8), config, out_dir=tmp_path)

    run(config)
    path = latest_checkpoint(tmp_path / "checkpoints") / "state.json"
    meta = json.loads(path.read_text())
    stored = meta["state"]["config"]
    del stored["progress_every"]
    for key in ("embedding_optimizer", "embedding_lr"):
        del stored["optimizer"]["params"][key]
    path.write_text(json.dumps(meta))
    assert run(config.replace(max_steps=6)).resumed_from == 4


def test_row_sparse_adam_is_bit_identical_to_torch_sparse_adam():
    ours, theirs = _Bag(40, sparse=True), _Bag(40, sparse=True)
    kwargs = dict(lr=0.05, betas=(0.8, 0.99), eps=1e-6)
    optimizers = [
        RowSparseAdam(ours.table.parameters(), **kwargs),
        torch.optim.SparseAdam(theirs.table.parameters(), **kwargs),
    ]
    for seed in range(5):
        ids = _ids(seed, 40, batch=8)
        for model, optimizer in zip((ours, theirs), optimizers, strict=True):
            _step(model, optimizer, ids)
    assert torch.equal(ours.table.weight, theirs.table.weight)
    a, b = optimizers[0].state_dict(), optimizers[1].state_dict()
    assert a["param_groups"] == b["param_groups"] and a["state"][0]["step"] == 5
    assert all(torch.equal(a["state"][0][k], b["state"][0][k]) for k in ("exp_avg", "exp_avg_sq"))
    dense = nn.Linear(2, 1)
    dense(torch.ones(1, 2)).sum().backward()
    with pytest.raises(RuntimeError, match="row-sparse gradients"):
        RowSparseAdam(dense.parameters()).step()


def test_row_sparse_adagrad_is_bit_identical_to_torch_adagrad():
    ours, theirs = _Bag(40, sparse=True), _Bag(40, sparse=True)
    kwargs = dict(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1, eps=1e-6)
    optimizers = [
        RowSparseAdagrad(ours.table.parameters(), **kwargs),
        torch.optim.Adagrad(theirs.table.parameters(), **kwargs),
    ]
    # torch's sparse Adagrad builds sparse tensors and warns that their checks are off
    with torch.sparse.check_sparse_tensor_invariants(enable=False):
        for seed in range(5):
            ids = _ids(seed, 40, batch=8)
            for model, optimizer in zip((ours, theirs), optimizers, strict=True):
                _step(model, optimizer, ids)
    assert torch.equal(ours.table.weight, theirs.table.weight)
    a, b = optimizers[0].state_dict(), optimizers[1].state_dict()
    assert a["param_groups"] == b["param_groups"]
    assert all(torch.equal(a["state"][0][k], b["state"][0][k]) for k in ("step", "sum"))
    dense = nn.Linear(2, 1)
    dense(torch.ones(1, 2)).sum().backward()
    with pytest.raises(RuntimeError, match="row-sparse gradients"):
        RowSparseAdagrad(dense.parameters()).step()


# ------------------------------------------------------------------ no-decay parameter groups
class _NoDecayNet(nn.Module):
    def __init__(self, names: set[str]) -> None:
        super().__init__()
        self.body = nn.Linear(3, 4)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 1)
        self.names = names

    def no_weight_decay(self) -> set[str]:
        return self.names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.body(x))).squeeze(-1)


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_no_weight_decay_names_and_prefixes_get_a_zero_decay_group(name: str) -> None:
    model = _NoDecayNet({"norm", "body.bias", "head.bias"})
    optimizer = make_optimizer(model, OptimizerConfig(name=name, weight_decay=0.1))
    decayed, exempt = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and exempt["weight_decay"] == 0.0
    assert decayed["params"] == [model.body.weight, model.head.weight]
    assert exempt["params"] == [
        model.body.bias,
        model.norm.weight,
        model.norm.bias,
        model.head.bias,
    ]
    # with zero gradients only the decayed group moves (coupled decay)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer.step()
    moved = [not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True)]
    assert moved == [True, False, False, False, True, False]


def test_no_weight_decay_leaves_one_group_without_decay_or_hook() -> None:
    model = _NoDecayNet({"norm"})
    assert len(make_optimizer(model, OptimizerConfig(name="adam")).param_groups) == 1
    plain = nn.Linear(2, 2)
    optimizer = make_optimizer(plain, OptimizerConfig(name="adam", weight_decay=0.1))
    assert len(optimizer.param_groups) == 1
    everything = _NoDecayNet({"body", "norm", "head"})
    optimizer = make_optimizer(everything, OptimizerConfig(name="adam", weight_decay=0.1))
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.0]


def test_no_weight_decay_unknown_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="no_weight_decay.*'bod'"):
        make_optimizer(_NoDecayNet({"bod"}), OptimizerConfig(name="adam", weight_decay=0.1))


def test_no_weight_decay_groups_with_the_sparse_embedding_optimizer() -> None:
    from perceptrons.registry import create_model

    model = create_model("emofm", seed=0, sparse_embeddings=True)
    config = OptimizerConfig(name="adam", weight_decay=1e-4, embedding_optimizer="sparse_adam")
    optimizer = make_optimizer(model, config)
    dense, embedding = optimizer.optimizers
    assert [g["weight_decay"] for g in dense.param_groups] == [1e-4, 0.0]
    assert len(embedding.param_groups) == 1
    x = model.example_input(8, generator=torch.Generator().manual_seed(0))
    model(x)["logits"].sum().backward()
    optimizer.step()
    state = optimizer.state_dict()
    assert len(state["param_groups"]) == 3
    optimizer.load_state_dict(state)
