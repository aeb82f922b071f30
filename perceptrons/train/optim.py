"""Optimiser and learning-rate schedule factories built from their configs.

Sparse embedding updates. An ``nn.Embedding(sparse=True)`` (or ``nn.EmbeddingBag``) gets a
sparse COO gradient that holds only the rows a batch looked up, so an optimiser that applies
it row by row costs O(rows of the batch) per step instead of O(rows of the table). Dense
Adam/AdamW cannot take such gradients; `make_optimizer` given the model and
``OptimizerConfig(embedding_optimizer="sparse_adam" | "adagrad")`` puts the parameters of the
model's sparse embedding modules (`sparse_embedding_parameters`) into `torch.optim.SparseAdam`
(the "lazy" Adam: only the moments of the rows in the gradient are updated and applied,
https://pytorch.org/docs/stable/generated/torch.optim.SparseAdam.html; computed row-wise by
its subclass `RowSparseAdam`, bit-identical and faster) or `torch.optim.Adagrad`
(element-wise accumulators, updated only on the rows in the gradient), or `RowwiseAdagrad`
(``"rowwise_adagrad"``: one accumulator per row, the mean of the row's squared gradient, as in
PyTorch-BigGraph (Lerer et al. 2019, arXiv:1903.12287, section 4.1) and FBGEMM/torchrec's
``EXACT_ROWWISE_ADAGRAD``, https://pytorch.org/torchrec/), and every other parameter into the
configured sgd/adam/adamw. The two are driven as one `CombinedOptimizer`
(named after torchrec's ``CombinedOptimizer``,
https://pytorch.org/torchrec/torchrec.optim.html, whose keyed state layout it does not use):
concatenated ``param_groups``, one ``step``/``zero_grad`` and one torch-format ``state_dict``,
so the scheduler, `fit` and the checkpoint code treat it as a single optimiser.

No-decay parameter groups. A model may name the parameters that must not get the optimiser's
(coupled or decoupled) weight decay with a method ``no_weight_decay() -> set[str]`` of
parameter names (as in ``model.named_parameters()``) or module-name prefixes, timm's convention
(https://huggingface.co/docs/timm: ``no_weight_decay`` / ``param_groups_weight_decay``; there:
biases, norms, position embeddings). `make_optimizer` given such a model and a
``weight_decay != 0`` splits its dense parameters into a group with the configured
``weight_decay`` and one with ``weight_decay=0`` (`weight_decay_groups`); a model without the
method, or ``weight_decay=0``, gets one group as before.

`clip_grad_norm` is ``torch.nn.utils.clip_grad_norm_`` that also accepts sparse gradients
(torch's raises ``NotImplementedError`` on them: ``linalg.vector_norm`` has no sparse kernel).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR

from perceptrons.train.config import OptimizerConfig, ScheduleConfig

__all__ = [
    "CombinedOptimizer",
    "RowSparseAdagrad",
    "RowSparseAdam",
    "RowwiseAdagrad",
    "clip_grad_norm",
    "lr_factor",
    "make_optimizer",
    "make_scheduler",
    "schedule_function",
    "sparse_embedding_parameters",
    "weight_decay_groups",
]

_SPARSE_MODULES = (nn.Embedding, nn.EmbeddingBag)


def sparse_embedding_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Parameters of ``model``'s ``nn.Embedding``/``nn.EmbeddingBag`` modules built with
    ``sparse=True``, in module order, each once.

    These are the tables `make_optimizer` hands to the embedding optimiser. Their weights must
    be read only through sparse lookups (``F.embedding``/``F.embedding_bag`` with
    ``sparse=True``): a dense use (weight tying, ``weight[ids]``) would give them a dense
    gradient, which `torch.optim.SparseAdam` refuses.
    """
    seen: set[int] = set()
    found = []
    for module in model.modules():
        if isinstance(module, _SPARSE_MODULES) and module.sparse:
            for param in module.parameters(recurse=False):
                if id(param) not in seen:
                    seen.add(id(param))
                    found.append(param)
    return found


def weight_decay_groups(
    model: nn.Module, params: Sequence[nn.Parameter], weight_decay: float
) -> list[dict[str, Any]] | list[nn.Parameter]:
    """``params`` (parameters of ``model``) split by ``model.no_weight_decay()``.

    Args:
        model: The model; its optional ``no_weight_decay()`` returns parameter names or
            module-name prefixes (``"mixer"`` covers ``"mixer.0.weight"``) exempt from decay.
        params: The parameters to optimise (e.g. all but the sparse embedding tables).
        weight_decay: The configured decay.

    Returns:
        ``params`` unchanged when the model has no ``no_weight_decay`` or ``weight_decay`` is 0;
        otherwise the groups ``[{"params": decayed}, {"params": exempt, "weight_decay": 0.0}]``
        (an empty group left out), in ``named_parameters`` order.

    Raises:
        ValueError: a name of ``no_weight_decay()`` matches no parameter of the model.
    """
    hook = getattr(model, "no_weight_decay", None)
    if hook is None or not callable(hook) or weight_decay == 0:
        return list(params)
    names = set(hook())
    named = list(model.named_parameters())
    for n in sorted(names):
        if not any(name == n or name.startswith(n + ".") for name, _ in named):
            raise ValueError(
                f"no_weight_decay: {n!r} names no parameter (nor module) of {type(model).__name__}"
            )
    exempt_ids = {
        id(p) for name, p in named if any(name == n or name.startswith(n + ".") for n in names)
    }
    wanted = {id(p) for p in params}
    decayed = [p for _, p in named if id(p) in wanted and id(p) not in exempt_ids]
    exempt = [p for _, p in named if id(p) in wanted and id(p) in exempt_ids]
    groups: list[dict[str, Any]] = []
    if decayed:
        groups.append({"params": decayed})
    if exempt:
        groups.append({"params": exempt, "weight_decay": 0.0})
    return groups


def _dense_optimizer(
    params: Iterable[Tensor] | Iterable[dict[str, Any]], config: OptimizerConfig
) -> torch.optim.Optimizer:
    if config.name == "sgd":
        return torch.optim.SGD(
            params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
    if config.name == "adam":
        return torch.optim.Adam(
            params,
            lr=config.lr,
            betas=config.betas,
            eps=config.eps,
            weight_decay=config.weight_decay,
            fused=config.fused or None,
        )
    if config.name == "adamw":
        return torch.optim.AdamW(
            params,
            lr=config.lr,
            betas=config.betas,
            eps=config.eps,
            weight_decay=config.weight_decay,
            fused=config.fused or None,
        )
    raise ValueError(f"name: unknown optimizer {config.name!r}")  # unreachable: Literal-checked


def _embedding_optimizer(
    params: list[nn.Parameter], config: OptimizerConfig
) -> torch.optim.Optimizer:
    lr = config.lr if config.embedding_lr is None else config.embedding_lr
    if config.embedding_optimizer == "sparse_adam":
        return RowSparseAdam(params, lr=lr, betas=config.betas, eps=config.eps)
    if config.embedding_optimizer == "adagrad":
        return RowSparseAdagrad(params, lr=lr)
    if config.embedding_optimizer == "rowwise_adagrad":
        return RowwiseAdagrad(params, lr=lr)
    raise ValueError(  # unreachable: Literal-checked
        f"embedding_optimizer: unknown optimizer {config.embedding_optimizer!r}"
    )


def _add_rows(param: Tensor, rows: Tensor, update: Tensor, alpha: float = 1.0) -> None:
    """``param[rows] += alpha * update`` for distinct ``rows``, rounded as ``param.add_(x,
    alpha=alpha)`` would. With ``alpha == 1``, ``index_add_`` (one pass over the rows; 4.0
    against 5.1 ms for 10^5 rows of 16 floats in a 10^7-row table, 1.0 against 2.3 ms for
    1-wide rows, one CPU thread); otherwise a gather, an add and a copy back, since
    ``index_add_`` with ``alpha != 1`` is 6-20x slower on CPU."""
    if alpha == 1.0:
        param.index_add_(0, rows, update)
    else:
        param.index_copy_(0, rows, param.index_select(0, rows).add_(update, alpha=alpha))


def _run_closure(closure: Callable[[], float] | None) -> float | None:
    """The loss of an optimiser's ``closure`` (evaluated with gradients on), or None."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


def _row_sparse_gradient(param: Tensor, optimizer: str, dense: str) -> Tensor:
    """``param.grad``, refused unless row-sparse (what ``nn.Embedding(sparse=True)`` gives)."""
    grad = param.grad
    if not grad.is_sparse or grad.sparse_dim() != 1:
        raise RuntimeError(
            f"{optimizer}: needs row-sparse gradients (nn.Embedding(sparse=True)), "
            f"got a {'sparse' if grad.is_sparse else 'dense'} gradient of shape "
            f"{tuple(grad.shape)}; use {dense} for dense gradients"
        )
    return grad


def _rows_and_values(grad: Tensor, maximize: bool) -> tuple[Tensor, Tensor] | None:
    """``(rows, values)`` of the coalesced row-sparse ``grad`` (negated to maximise), one entry
    per row since the updates are non-linear; None when it holds no row."""
    if maximize:
        grad = -grad
    grad = grad.coalesce()
    values = grad._values()
    if values.numel() == 0:
        return None
    return grad._indices()[0], values


class RowSparseAdam(torch.optim.SparseAdam):
    """`torch.optim.SparseAdam` computed row-wise: the same arguments, state and update.

    torch's implementation updates the moments and the parameter through sparse-tensor
    arithmetic (``dense.sparse_mask(grad)`` and ``dense.add_(sparse)``), which on CPU costs
    several times an indexed gather or scatter of the same rows (about 17 ms each against
    2.5 ms for 10^5 rows of 16 floats in a 10^7-row table, one thread). This subclass runs the
    same arithmetic, in the same order, on the rows of the coalesced gradient with
    ``index_select`` / ``index_copy_``, so its results are bit-identical to torch's (see the
    tests) and its state dict is SparseAdam's.

    Only row-sparse gradients (``grad.sparse_dim() == 1``: what ``nn.Embedding(sparse=True)``
    and ``nn.EmbeddingBag(sparse=True)`` give) are taken.
    """

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One SparseAdam step on the rows present in each parameter's sparse gradient."""
        loss = _run_closure(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            eps, lr = group["eps"], float(group["lr"])
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = _row_sparse_gradient(param, "RowSparseAdam", "Adam")
                state = self.state[param]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(
                        param, memory_format=torch.preserve_format
                    )
                state["step"] += 1
                found = _rows_and_values(grad, group.get("maximize", False))
                if found is None:
                    continue
                rows, values = found
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                # torch's F.sparse_adam, operation for operation
                old_exp_avg = exp_avg.index_select(0, rows)
                exp_avg_update = values.sub(old_exp_avg).mul_(1 - beta1)
                old_exp_avg_sq = exp_avg_sq.index_select(0, rows)
                exp_avg_sq_update = values.pow(2).sub_(old_exp_avg_sq).mul_(1 - beta2)
                numer = exp_avg_update.add_(old_exp_avg)
                exp_avg.index_copy_(0, rows, numer)
                exp_avg_sq_update.add_(old_exp_avg_sq)
                exp_avg_sq.index_copy_(0, rows, exp_avg_sq_update)
                denom = exp_avg_sq_update.sqrt_().add_(eps)
                step = state["step"]
                bias_correction1 = 1 - beta1**step
                bias_correction2 = 1 - beta2**step
                step_size = lr * math.sqrt(bias_correction2) / bias_correction1
                _add_rows(param, rows, -step_size * numer.div_(denom))
        return loss


class RowSparseAdagrad(torch.optim.Adagrad):
    """`torch.optim.Adagrad` on row-sparse gradients, computed row-wise: same state and update.

    Like `RowSparseAdam`: torch's sparse branch (``sum.add_(sparse)``, ``sum.sparse_mask``,
    ``param.add_(sparse)``) run as ``index_select`` / ``index_copy_`` on the
    rows of the coalesced gradient, operation for operation (bit-identical results, Adagrad's
    state dict). Only row-sparse gradients are taken (``weight_decay`` must stay 0, as for
    torch's sparse branch).
    """

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One Adagrad step on the rows present in each parameter's sparse gradient."""
        loss = _run_closure(closure)
        for group in self.param_groups:
            if group["weight_decay"] != 0:
                raise RuntimeError("RowSparseAdagrad: weight_decay must be 0 for sparse gradients")
            lr, lr_decay, eps = float(group["lr"]), group["lr_decay"], group["eps"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = _row_sparse_gradient(param, "RowSparseAdagrad", "Adagrad")
                state = self.state[param]
                step_t, state_sum = state["step"], state["sum"]
                step_t += 1
                step = float(step_t)
                clr = lr / (1 + (step - 1) * lr_decay)
                found = _rows_and_values(grad, group.get("maximize", False))
                if found is None:
                    continue
                rows, values = found
                # torch's sparse branch of Adagrad, operation for operation
                new_sum = state_sum.index_select(0, rows).add_(values.pow(2))
                state_sum.index_copy_(0, rows, new_sum)
                std = new_sum.sqrt_().add_(eps)
                _add_rows(param, rows, values / std, alpha=-clr)
        return loss


class RowwiseAdagrad(torch.optim.Optimizer):
    """Row-wise Adagrad for row-sparse gradients: one accumulator per embedding row.

    For each row ``r`` of the (coalesced) gradient, with ``D`` the row width::

        s_r += mean_d(g_rd ** 2)                 # one float per row, not per element
        w_r -= lr / (sqrt(s_r) + eps) * g_r

    Rows absent from the gradient are not touched (Adagrad leaves a zero-gradient row in place
    anyway, so the lazy update is exact). This is PyTorch-BigGraph's row-wise Adagrad (Lerer et
    al. 2019, arXiv:1903.12287, section 4.1) and FBGEMM's ``EXACT_ROWWISE_ADAGRAD`` that
    torchrec trains its tables with: the state is ``D`` times smaller than element-wise
    Adagrad's (40 MB instead of 640 MB for 10^7 rows of 16 floats), and the step reads and
    writes one float of state per touched row.

    Args:
        params: The embedding weights (2-d; row-sparse gradients only, e.g. from
            ``nn.Embedding(sparse=True)``) or parameter groups.
        lr: Learning rate.
        eps: Added to ``sqrt(s_r)``.
        initial_accumulator_value: Start value of every ``s_r``.

    State per parameter: ``"step"`` (int) and ``"sum"`` (``(rows,)`` float tensor).
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float = 1e-2,
        eps: float = 1e-10,
        initial_accumulator_value: float = 0.0,
    ) -> None:
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"RowwiseAdagrad: lr must be finite and > 0, got {lr}")
        if not eps >= 0:
            raise ValueError(f"RowwiseAdagrad: eps must be >= 0, got {eps}")
        if not initial_accumulator_value >= 0:
            raise ValueError(
                "RowwiseAdagrad: initial_accumulator_value must be >= 0, got "
                f"{initial_accumulator_value}"
            )
        defaults = {"lr": lr, "eps": eps, "initial_accumulator_value": initial_accumulator_value}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for param in group["params"]:
                if param.dim() != 2:
                    raise ValueError(
                        "RowwiseAdagrad: takes 2-d embedding weights (rows, width), got shape "
                        f"{tuple(param.shape)}"
                    )

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One row-wise Adagrad step on the rows present in each parameter's gradient."""
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr, eps = float(group["lr"]), float(group["eps"])
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = _row_sparse_gradient(param, "RowwiseAdagrad", "Adagrad")
                state = self.state[param]
                if len(state) == 0:
                    state["step"] = 0
                    state["sum"] = torch.full(
                        (param.shape[0],),
                        float(group["initial_accumulator_value"]),
                        dtype=param.dtype,
                        device=param.device,
                    )
                state["step"] += 1
                found = _rows_and_values(grad, group.get("maximize", False))
                if found is None:
                    continue
                rows, values = found
                total = state["sum"].index_select(0, rows).add_(values.square().mean(1))
                state["sum"].index_copy_(0, rows, total)
                # one multiplier per row, -lr / (sqrt(s_r) + eps), as FBGEMM computes it
                multiplier = total.sqrt_().add_(eps).reciprocal_().mul_(-lr)
                _add_rows(param, rows, values * multiplier.unsqueeze(1))
        return loss


def make_optimizer(
    params: nn.Module | Iterable[torch.Tensor] | Iterable[dict[str, Any]], config: OptimizerConfig
) -> torch.optim.Optimizer:
    """Build the torch optimiser described by ``config``.

    Args:
        params: The model (`fit` passes it), or parameters / parameter groups to optimise,
            e.g. ``model.parameters()``. ``config.embedding_optimizer != "same"`` needs the
            model, to find its sparse embedding tables (`sparse_embedding_parameters`).
        config: Which optimiser(s) and their hyper-parameters.

    Returns:
        A `torch.optim.SGD`, `torch.optim.Adam` or `torch.optim.AdamW` over every parameter
        (``embedding_optimizer="same"``; split into a decayed and a ``weight_decay=0`` group by
        the model's ``no_weight_decay()``, see `weight_decay_groups`); otherwise a
        `CombinedOptimizer` of that optimiser over the dense parameters (split the same way)
        and `torch.optim.SparseAdam` / `torch.optim.Adagrad` over the sparse embedding tables
        (just the latter when the model has no other parameter).

    Raises:
        ValueError: ``embedding_optimizer="same"`` for a model with sparse embeddings and an
            optimiser that cannot apply sparse gradients (everything but plain sgd); an
            embedding optimiser for a model without sparse embeddings, or without the model;
            a ``no_weight_decay()`` name that matches no parameter.
    """
    if not isinstance(params, nn.Module):
        if config.embedding_optimizer != "same":
            raise ValueError(
                f"embedding_optimizer: {config.embedding_optimizer!r} needs the model, to find "
                "its sparse embedding tables: call make_optimizer(model, config), not "
                "make_optimizer(model.parameters(), config)"
            )
        return _dense_optimizer(params, config)
    model = params
    sparse = sparse_embedding_parameters(model)
    if config.embedding_optimizer == "same":
        plain_sgd = config.name == "sgd" and config.momentum == 0 and config.weight_decay == 0
        if sparse and not plain_sgd:
            raise ValueError(
                f"embedding_optimizer: 'same' gives the sparse embedding gradients of the model "
                f"({len(sparse)} nn.Embedding(sparse=True) weights) to {config.name!r}, which "
                "cannot apply them (only sgd without momentum and weight decay can); set "
                "embedding_optimizer='sparse_adam', 'adagrad' or 'rowwise_adagrad', or build the "
                "model with dense embeddings"
            )
        return _dense_optimizer(
            weight_decay_groups(model, list(model.parameters()), config.weight_decay), config
        )
    if not sparse:
        raise ValueError(
            f"embedding_optimizer: {config.embedding_optimizer!r} needs sparse embedding tables "
            "(nn.Embedding(sparse=True), e.g. a CTR model with sparse_embeddings=True), but "
            f"{type(model).__name__} has none; use embedding_optimizer='same'"
        )
    sparse_ids = {id(p) for p in sparse}
    dense = [p for p in model.parameters() if id(p) not in sparse_ids]
    embedding = _embedding_optimizer(sparse, config)
    if not dense:
        return embedding
    groups = weight_decay_groups(model, dense, config.weight_decay)
    return CombinedOptimizer([_dense_optimizer(groups, config), embedding])


class CombinedOptimizer(torch.optim.Optimizer):
    """Several optimisers over disjoint parameters, driven as one optimiser.

    * ``param_groups``: the members' groups, concatenated (the members' own dicts: a scheduler
      that sets ``group["lr"]`` sets the member's, so one `LambdaLR` schedules them all);
    * ``step()`` and ``zero_grad()`` call every member in order;
    * ``state_dict()`` is one torch-format dict ``{"state", "param_groups"}``: each member's
      parameter indices are shifted by the number of parameters of the members before it,
      which is the layout a single optimiser with all these groups would have; so checkpoint
      code written for one optimiser stores it unchanged. ``load_state_dict`` splits it back
      (groups by the members' group counts) and loads each member;
    * ``state``: a read-only merged view of the members' states.

    Step hooks and ``add_param_group`` belong to the members (``optimizers``).

    Args:
        optimizers: The members (at least one), over disjoint parameters.
    """

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        # No Optimizer.__init__: the groups and the state are the members'.
        members = list(optimizers)
        if not members:
            raise ValueError("optimizers: expected at least one optimizer, got none")
        seen: set[int] = set()
        for i, member in enumerate(members):
            if not isinstance(member, torch.optim.Optimizer):
                raise TypeError(
                    f"optimizers[{i}]: expected a torch Optimizer, got {type(member).__name__}"
                )
            for group in member.param_groups:
                for param in group["params"]:
                    if id(param) in seen:
                        raise ValueError(
                            f"optimizers[{i}]: shares a parameter with an earlier member"
                        )
                    seen.add(id(param))
        self.optimizers = members
        self.defaults: dict[str, Any] = {}

    @property  # type: ignore[override]
    def param_groups(self) -> list[dict[str, Any]]:
        """The members' parameter groups, in member order."""
        return [group for member in self.optimizers for group in member.param_groups]

    @property  # type: ignore[override]
    def state(self) -> dict[Tensor, Any]:
        """Per-parameter state of every member (a merged copy of their ``state`` dicts)."""
        merged: dict[Tensor, Any] = {}
        for member in self.optimizers:
            merged.update(member.state)
        return merged

    def zero_grad(self, set_to_none: bool = True) -> None:
        """``zero_grad`` of every member."""
        for member in self.optimizers:
            member.zero_grad(set_to_none=set_to_none)

    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One step of every member (``closure``, if given, is evaluated once, before)."""
        loss = _run_closure(closure)
        for member in self.optimizers:
            member.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        """One torch-format state dict of all members (see the class docstring)."""
        state: dict[int, Any] = {}
        groups: list[dict[str, Any]] = []
        offset = 0
        for member in self.optimizers:
            part = member.state_dict()
            for index, entry in part["state"].items():
                state[index + offset] = entry
            for group in part["param_groups"]:
                groups.append({**group, "params": [i + offset for i in group["params"]]})
            offset += sum(len(g["params"]) for g in part["param_groups"])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a dict written by `state_dict` into the members.

        Raises:
            ValueError: the dict has another number of parameter groups, or a group another
                number of parameters, than the members have.
        """
        groups = list(state_dict["param_groups"])
        counts = [len(member.param_groups) for member in self.optimizers]
        if len(groups) != sum(counts):
            raise ValueError(
                f"state_dict: has {len(groups)} parameter groups, this CombinedOptimizer has "
                f"{sum(counts)} ({' + '.join(map(str, counts))} in its "
                f"{', '.join(type(m).__name__ for m in self.optimizers)})"
            )
        state = {int(k): v for k, v in state_dict["state"].items()}
        start, offset = 0, 0
        for member, count in zip(self.optimizers, counts, strict=True):
            mine = groups[start : start + count]
            size = sum(len(g["params"]) for g in mine)
            shifted = [{**g, "params": [i - offset for i in g["params"]]} for g in mine]
            member.load_state_dict(
                {
                    "state": {
                        k - offset: v for k, v in state.items() if offset <= k < offset + size
                    },
                    "param_groups": shifted,
                }
            )
            start += count
            offset += size

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Not supported: add the group to one of the members (``optimizers``)."""
        raise TypeError("CombinedOptimizer: add the group to one of its members (.optimizers)")

    def register_step_pre_hook(self, hook: Any) -> Any:
        """Not supported: register the hook on the members (``optimizers``)."""
        raise TypeError("CombinedOptimizer: register step hooks on its members (.optimizers)")

    def register_step_post_hook(self, hook: Any) -> Any:
        """Not supported: register the hook on the members (``optimizers``)."""
        raise TypeError("CombinedOptimizer: register step hooks on its members (.optimizers)")

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        inner = ", ".join(type(m).__name__ for m in self.optimizers)
        return f"CombinedOptimizer([{inner}])"


def clip_grad_norm(parameters: Iterable[Tensor], max_norm: float) -> Tensor:
    """Clip the global gradient 2-norm of ``parameters`` to ``max_norm``; return the norm before.

    ``torch.nn.utils.clip_grad_norm_`` itself when no gradient is sparse. Sparse gradients
    (``nn.Embedding(sparse=True)``) are first coalesced in place (duplicate rows summed: the
    gradient the optimiser applies), their values count in the global norm like dense entries,
    and they are scaled in place by torch's factor ``min(1, max_norm / (norm + 1e-6))``.

    Args:
        parameters: Parameters whose ``.grad`` is clipped (those without a gradient are skipped).
        max_norm: The largest global 2-norm kept.

    Returns:
        The global 2-norm of the gradients before clipping (a scalar tensor).
    """
    params = [p for p in parameters if p.grad is not None]
    if not any(p.grad.is_sparse for p in params):
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    grads = []
    for p in params:
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()
            grads.append(p.grad._values())
        else:
            grads.append(p.grad)
    device = grads[0].device
    norms = [torch.linalg.vector_norm(g, 2.0).to(device) for g in grads]
    total = torch.linalg.vector_norm(torch.stack(norms), 2.0)
    factor = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    with torch.no_grad():
        for g in grads:
            g.mul_(factor.to(g.device, g.dtype))
    return total


def lr_factor(config: ScheduleConfig, step: int, total_steps: int) -> float:
    """Learning-rate factor after ``step`` completed optimiser steps (closed forms in
    `ScheduleConfig`).

    Args:
        config: The schedule.
        step: Number of completed optimiser steps ``t >= 0``.
        total_steps: Total number of steps ``T >= 1`` of the run.

    Returns:
        The factor multiplying the base learning rate for the next step.
    """
    warmup = config.warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    after = step - warmup
    span = max(1, total_steps - warmup)
    ratio = config.min_lr_ratio
    if config.name == "constant":
        return 1.0
    if config.name == "cosine":
        progress = min(after, span) / span
        return ratio + (1.0 - ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if config.name == "linear":
        return 1.0 - (1.0 - ratio) * min(after, span) / span
    if config.name == "step":
        return config.gamma ** (after // config.step_size)
    raise ValueError(f"name: unknown schedule {config.name!r}")  # unreachable: Literal-checked


def schedule_function(config: ScheduleConfig, total_steps: int) -> Callable[[int], float]:
    """``t -> lr_factor(config, t, total_steps)``, the function given to `LambdaLR`.

    A closure (not a callable object), so `LambdaLR.state_dict` stays plain JSON.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps: must be >= 1, got {total_steps!r}")

    def factor(step: int) -> float:
        return lr_factor(config, step, total_steps)

    return factor


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: ScheduleConfig, total_steps: int
) -> LambdaLR:
    """Build a `LambdaLR` scheduler (stepped once after every optimiser step).

    Args:
        optimizer: The optimiser whose groups' ``lr`` is scaled.
        config: The schedule.
        total_steps: Total number of optimiser steps of the run (``>= 1``).

    Returns:
        The scheduler; its ``state_dict()`` is JSON-able.
    """
    return LambdaLR(optimizer, schedule_function(config, total_steps))
