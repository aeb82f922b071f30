"""CTR models (`perceptrons.ctr.models`): shapes, gradients, input formats, EMOFM switches,
`CTRStep`, and LR reaching the first-order oracle under `fit`. The contract checks run in
``tests/contract`` on every registry name."""

from __future__ import annotations

import pytest
import torch

from perceptrons.config import ConfigError
from perceptrons.ctr import CTRBatch, SyntheticCTRConfig, SyntheticCTRTask
from perceptrons.ctr.emofm import EMOFMConfig, type_known_logits
from perceptrons.ctr.features import CTRFeatures, CTRInput, as_ctr_input
from perceptrons.ctr.layers import FieldAttention, FieldEmbedding, MixerBlock
from perceptrons.ctr.metrics import auc
from perceptrons.ctr.models import CTRStep
from perceptrons.data.loader import TensorLoader
from perceptrons.registry import create_model
from perceptrons.train import (
    Callback,
    FitConfig,
    OptimizerConfig,
    ScheduleConfig,
    TrainState,
    fit,
    make_optimizer,
)

CTR_MODELS = ("lr", "fm", "dnn", "deepfm", "dcnv2", "autoint", "emofm")


def _logits(out: object) -> torch.Tensor:
    return out["logits"] if isinstance(out, dict) else out  # type: ignore[index]


@pytest.fixture(scope="module")
def small_task() -> SyntheticCTRTask:
    return SyntheticCTRTask(
        SyntheticCTRConfig(
            num_user_fields=3,
            num_scene_fields=1,
            num_ad_fields=2,
            num_multi_fields=1,
            max_cardinality=50,
            calibration_rows=2_000,
            seed=0,
        )
    )


@pytest.mark.parametrize("name", CTR_MODELS)
def test_shapes_and_gradients(name: str) -> None:
    model = create_model(name, seed=0)
    x = model.example_input(5, generator=torch.Generator().manual_seed(1))
    out = model(x)
    logits = _logits(out)
    assert logits.shape == (5,) and logits.dtype == torch.float32
    logits.sum().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize("name", CTR_MODELS)
def test_accepts_ctrbatch_and_tensor_dict(name: str, small_task: SyntheticCTRTask) -> None:
    data = small_task.sample(6, seed=1)
    features = data.feature_spec
    model = create_model(name, seed=0, features=features).eval()
    batch = data.to_batch()
    with torch.no_grad():
        a = _logits(model(batch))
        b = _logits(model(batch.to_tensors()))
        c = _logits(model(as_ctr_input(batch, features)))
    assert a.shape == (6,)
    assert torch.equal(a, b) and torch.equal(a, c)


def test_field_embedding_pools_multi_valued_ignoring_pad() -> None:
    features = CTRFeatures(
        categorical_fields=("a",),
        categorical_cardinalities=(5,),
        numeric_fields=("x",),
        multi_valued_fields=("m",),
        multi_valued_cardinalities=(6,),
        num_types=0,
    )
    emb = FieldEmbedding(features, 4, generator=torch.Generator().manual_seed(0))
    x = CTRInput(
        categorical=torch.tensor([[3], [4]]),
        numeric=torch.tensor([[2.0], [0.0]]),
        multi_ids=(torch.tensor([[3, 5, 0], [4, 0, 0]]),),
        multi_lengths=torch.tensor([[2], [1]]),
    )
    e = emb(x)
    assert e.shape == (2, 3, 4)
    table = emb.embedding.weight
    torch.testing.assert_close(e[0, 0], table[3])
    torch.testing.assert_close(e[0, 1], (table[5 + 3] + table[5 + 5]) / 2)
    torch.testing.assert_close(e[1, 1], table[5 + 4])
    torch.testing.assert_close(e[0, 2], 2.0 * emb.numeric_vectors[0])
    assert torch.count_nonzero(e[1, 2]) == 0
    with torch.no_grad():
        emb.weights.weight.copy_(torch.arange(11.0).unsqueeze(1))
        emb.numeric_weights.fill_(0.5)
        emb.bias.fill_(-1.0)
    # row 0: -1 + w[3] + (w[8] + w[10]) / 2 + 0.5 * 2
    torch.testing.assert_close(emb.first_order(x), torch.tensor([-1 + 3 + 9 + 1.0, -1 + 4 + 9.0]))


def test_input_errors_name_the_layout() -> None:
    model = create_model("fm", seed=0)
    x = model.example_input(2)
    with pytest.raises(TypeError, match=r"\(batch, fields\).*categorical \(batch, 3\)"):
        model(x._replace(categorical=x.categorical.float()))
    bad = x.categorical.clone()
    bad[0, 1] = 8  # cardinality of field 1 is 8
    with pytest.raises(ValueError, match=r"categorical\[:, 1\]: ids must lie in \[0, 8\)"):
        model(x._replace(categorical=bad))
    with pytest.raises(ValueError, match="missing keys"):
        model({"categorical": x.categorical})


def test_feature_spec_is_the_model_features(small_task: SyntheticCTRTask) -> None:
    spec = small_task.sample(3, seed=0).feature_spec
    assert isinstance(spec, CTRFeatures) and spec.numeric_fields == ()
    assert spec.num_fields == spec.num_sparse == spec.num_categorical + spec.num_multi
    config = EMOFMConfig(features=spec)
    text = config.to_json()
    assert '"type": "CTRFeatures"' in text
    assert EMOFMConfig.from_json(text) == config


def _param_prefixes(**switches: object) -> set[str]:
    model = create_model("emofm", seed=0, **switches)
    return {name.split(".")[0] for name, _ in model.named_parameters()}


def test_emofm_switches_change_the_parameters() -> None:
    full = _param_prefixes()
    assert {
        "embedding",
        "extract",
        "field_mixer",
        "branches",
        "type_mixer",
        "type_model",
        "wm",
    } <= full
    assert full - _param_prefixes(field_mixer=False) == {"field_mixer", "field_ids"}
    assert full - _param_prefixes(field_ids=False) == {"field_ids"}
    assert full - _param_prefixes(type_mixer=False) == {"type_mixer"}
    assert full - _param_prefixes(type_model=False) == {"type_model"}
    assert full - _param_prefixes(ensemble=False) == {"wm"}
    model = create_model("emofm", seed=0, ensemble=False, type_model=False)
    out = model(model.example_input(4))
    assert set(out) == {"logits", "type_head_logits"}
    out = create_model("emofm", seed=0)(model.example_input(4))
    assert set(out) == {"logits", "type_head_logits", "type_logits", "member_logits"}
    assert out["type_head_logits"].shape == (4, 3) and out["member_logits"].shape == (4, 2)


def test_emofm_mixture_and_ensemble_are_probability_averages() -> None:
    model = create_model("emofm", seed=0).eval()
    with torch.no_grad():
        out = model(model.example_input(6, generator=torch.Generator().manual_seed(2)))
        pi = out["type_logits"].softmax(-1)
        p_hm = (pi * out["type_head_logits"].sigmoid()).sum(-1)
        torch.testing.assert_close(out["member_logits"][:, 0].sigmoid(), p_hm)
        p = (p_hm + out["member_logits"][:, 1].sigmoid()) / 2
        torch.testing.assert_close(out["logits"].sigmoid(), p)
        types = torch.tensor([0, 1, 2, -1, 0, 2])
        known = type_known_logits(out, types)
        assert known[1] == out["type_head_logits"][1, 1] and known[3] == out["logits"][3]


def test_emofm_cross_mixer_keys_and_config_errors() -> None:
    groups = (0, 0, 1, 2, 2)  # 3 categorical + 1 multi-valued + 1 numeric
    model = create_model("emofm", seed=0, mixer_keys="cross", field_groups=groups)
    assert model.field_mask.shape == (5, 5) and not model.field_mask[0, 1]
    assert model(model.example_input(3))["logits"].shape == (3,)
    with pytest.raises(ConfigError, match="field_groups"):
        EMOFMConfig(mixer_keys="cross", field_groups=(0, 1))
    with pytest.raises(ConfigError, match="type_model"):
        EMOFMConfig(features=CTRFeatures(num_types=0))
    with pytest.raises(ConfigError, match="num_heads"):
        EMOFMConfig(num_heads=3)


def test_ctr_step_losses(small_task: SyntheticCTRTask) -> None:
    data = small_task.sample(64, seed=1)
    features = data.feature_spec
    batch = data.to_batch()
    step = CTRStep()
    out = step(create_model("dnn", seed=0, features=features), batch.to_tensors())
    assert set(out) == {"loss", "bce"} and out["loss"].requires_grad
    emofm = create_model("emofm", seed=0, features=features)
    out = step(emofm, batch)
    assert set(out) == {"loss", "bce", "head_bce", "member_bce", "type_loss", "type_accuracy"}
    out["loss"].backward()
    assert all(p.grad is not None for p in emofm.parameters())
    # types hidden: the type losses are left out
    hidden = batch.to_tensors() | {"types": torch.full_like(batch.types, -1)}
    assert set(step(emofm, hidden)) == {"loss", "bce", "member_bce"}
    with pytest.raises(TypeError, match="CTRBatch"):
        step(emofm, 3)


def test_lr_reaches_first_order_oracle() -> None:
    task = SyntheticCTRTask(
        SyntheticCTRConfig(
            num_user_fields=4,
            num_scene_fields=1,
            num_ad_fields=3,
            num_multi_fields=1,
            max_cardinality=30,
            interactions=False,
            base_rate=0.2,
            calibration_rows=5_000,
            seed=1,
        )
    )
    train, test = task.sample(20_000, seed=1), task.sample(20_000, seed=2)
    features = train.feature_spec
    model = create_model("lr", seed=0, features=features)
    loader = TensorLoader(train.to_batch().to_tensors(), batch_size=256, seed=0)
    config = FitConfig(
        max_steps=None,
        max_epochs=3,
        optimizer=OptimizerConfig(name="adam", lr=0.05),
        progress=False,
        log_every=50,
    )
    fit(model, CTRStep(), loader, config)
    with torch.no_grad():
        scores = model.eval()(test.to_batch())
    model_auc = auc(test.labels, scores)
    oracle_auc = auc(test.labels, test.first_order_probability)
    assert abs(model_auc - oracle_auc) < 0.02, (model_auc, oracle_auc)


def test_emofm_trains_and_float64(small_task: SyntheticCTRTask) -> None:
    data = small_task.sample(512, seed=3)
    features = data.feature_spec
    model = create_model("emofm", seed=0, features=features)
    loader = TensorLoader(data.to_batch().to_tensors(), batch_size=128, seed=0)
    config = FitConfig(
        max_steps=None, max_epochs=2, optimizer=OptimizerConfig(name="adam"), progress=False
    )
    result = fit(model, CTRStep(), loader, config)
    assert result.steps == 8
    batch = CTRBatch.from_tensors(data.to_batch().to_tensors())
    with torch.no_grad():
        out64 = model.double().eval()(batch)
    assert out64["logits"].dtype == torch.float64 and torch.isfinite(out64["logits"]).all()


# ------------------------------------------------------------------ sparse embedding updates
def _features(cards: tuple[int, ...] = (10, 8), multi: tuple[int, ...] = (7,)) -> CTRFeatures:
    return CTRFeatures(
        categorical_fields=tuple(f"c{i}" for i in range(len(cards))),
        categorical_cardinalities=cards,
        numeric_fields=("x",),
        multi_valued_fields=tuple(f"m{j}" for j in range(len(multi))),
        multi_valued_cardinalities=multi,
        num_types=0,
    )


def _rows(features: CTRFeatures, b: int, seed: int) -> CTRInput:
    """Random rows with PAD-padded multi-valued lists (1-3 ids of 4) and repeated ids."""
    g = torch.Generator().manual_seed(seed)
    cat = torch.stack(
        [torch.randint(1, c, (b,), generator=g) for c in features.categorical_cardinalities], 1
    )
    cat[0] = cat[-1]
    multi, lengths = [], []
    for c in features.multi_valued_cardinalities:
        length = torch.randint(1, 4, (b,), generator=g)
        ids = torch.randint(1, c, (b, 4), generator=g).masked_fill(
            torch.arange(4) >= length[:, None], 0
        )
        multi.append(ids)
        lengths.append(length)
    numeric = torch.randn(b, features.num_numeric, generator=g)
    return CTRInput(cat, numeric, tuple(multi), torch.stack(lengths, 1))


def _distinct_rows(features: CTRFeatures, x: CTRInput) -> torch.Tensor:
    """Table rows of the batch, by hand: field offset + id, PAD positions left out."""
    cards = features.categorical_cardinalities + features.multi_valued_cardinalities
    offsets = [sum(cards[:i]) for i in range(len(cards))]
    found = {
        offsets[i] + int(v) for i in range(features.num_categorical) for v in x.categorical[:, i]
    }
    for j, ids in enumerate(x.multi_ids):
        found |= {offsets[features.num_categorical + j] + int(v) for v in ids.flatten() if v != 0}
    return torch.tensor(sorted(found))


def test_sparse_field_embedding_has_the_dense_values_and_sparse_gradients() -> None:
    features = _features()
    dense = FieldEmbedding(features, 4, generator=torch.Generator().manual_seed(0))
    sparse = FieldEmbedding(features, 4, sparse=True, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for emb in (dense, sparse):
            emb.weights.weight.copy_(torch.linspace(-1, 1, emb.weights.weight.shape[0])[:, None])
    x = _rows(features, 6, seed=1)
    e_dense, e_sparse = dense(x), sparse(x)
    torch.testing.assert_close(e_sparse, e_dense, rtol=0, atol=1e-7)
    torch.testing.assert_close(sparse.first_order(x), dense.first_order(x), rtol=0, atol=1e-6)
    (e_dense.pow(2).sum() + dense.first_order(x).sum()).backward()
    (e_sparse.pow(2).sum() + sparse.first_order(x).sum()).backward()
    for name in ("embedding", "weights"):
        grad = getattr(sparse, name).weight.grad
        assert grad.is_sparse, name
        # only the batch's rows are in the gradient: PAD positions are not
        assert torch.equal(torch.unique(grad._indices()), _distinct_rows(features, x)), name
        expected = getattr(dense, name).weight.grad
        torch.testing.assert_close(grad.to_dense(), expected, rtol=0, atol=1e-6)
    assert torch.equal(sparse.looked_up_rows(x), _distinct_rows(features, x))


@pytest.mark.parametrize("name", CTR_MODELS)
def test_sparse_embeddings_config_builds_sparse_tables(name: str) -> None:
    model = create_model(name, seed=0, sparse_embeddings=True)
    reference = create_model(name, seed=0)
    tables = [m for m in model.modules() if isinstance(m, torch.nn.Embedding)]
    assert tables and all(t.sparse for t in tables)
    x = model.example_input(5, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(_logits(model(x)), _logits(reference(x)), rtol=0, atol=1e-6)
    _logits(model(x)).sum().backward()
    assert all(t.weight.grad.is_sparse for t in tables)


def _fit_one_step(sparse: bool, data, features: CTRFeatures):
    model = create_model("deepfm", seed=0, features=features, sparse_embeddings=sparse).double()
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    # torch's SparseAdam adds eps to the uncorrected sqrt(v): Adam's step with eps scaled by
    # 1 / sqrt(1 - beta2^t), which matters for gradients of the embeddings' size (~1e-7);
    # float64, so that the first step, lr * g / (|g| + eps), is not rounding noise where
    # contributions to an entry cancel
    optimizer = OptimizerConfig(
        name="adam", lr=0.01, eps=1e-16, embedding_optimizer="sparse_adam" if sparse else "same"
    )
    loader = TensorLoader(data.to_batch().to_tensors(), batch_size=32, shuffle=False)
    fit(model, CTRStep(), loader, FitConfig(max_steps=1, optimizer=optimizer, progress=False))
    return model, before


def test_sparse_adam_first_step_matches_dense_adam(small_task: SyntheticCTRTask) -> None:
    data = small_task.sample(32, seed=4)
    features = data.feature_spec
    dense, _ = _fit_one_step(False, data, features)
    sparse, before = _fit_one_step(True, data, features)
    x = as_ctr_input(data.to_batch(), features)
    touched = sparse.embedding.looked_up_rows(x)
    untouched = torch.ones(
        sum(features.categorical_cardinalities) + sum(features.multi_valued_cardinalities),
        dtype=torch.bool,
    )
    untouched[touched] = False
    assert bool(untouched.any())
    for key, value in sparse.state_dict().items():
        if key in ("embedding.embedding.weight", "embedding.weights.weight"):
            assert torch.equal(value[untouched], before[key][untouched]), key
            assert bool((value[touched] != before[key][touched]).any(1).all()), key
            torch.testing.assert_close(
                value[touched], dense.state_dict()[key][touched], rtol=0, atol=1e-6
            )
        else:
            torch.testing.assert_close(value, dense.state_dict()[key], rtol=0, atol=1e-6)


@pytest.mark.parametrize("embedding_optimizer", ["sparse_adam", "adagrad", "rowwise_adagrad"])
def test_a_step_changes_only_the_batch_rows_of_a_1e5_row_table(embedding_optimizer: str) -> None:
    features = _features(cards=(60_000, 30_000), multi=(10_000,))  # 10^5 table rows
    model = create_model("fm", seed=0, features=features, sparse_embeddings=True)
    optimizer = make_optimizer(
        model, OptimizerConfig(name="adamw", embedding_optimizer=embedding_optimizer)
    )
    step = CTRStep()
    for seed, b in enumerate((4, 32, 256)):
        x = _rows(features, b, seed=seed)
        labels = (torch.arange(b) % 2).float()
        before = [
            t.weight.detach().clone() for t in (model.embedding.embedding, model.embedding.weights)
        ]
        optimizer.zero_grad(set_to_none=True)
        step(model, (x, labels))["loss"].backward()
        optimizer.step()
        distinct = _distinct_rows(features, x)
        for table, old in zip(
            (model.embedding.embedding, model.embedding.weights), before, strict=True
        ):
            changed = (table.weight != old).any(dim=1)
            assert int(changed.sum()) == len(distinct)
            assert torch.equal(changed.nonzero().flatten(), distinct)


def test_embedding_l2_is_the_hand_computed_term(small_task: SyntheticCTRTask) -> None:
    features = _features()
    model = create_model("deepfm", seed=0, features=features, sparse_embeddings=True)
    with torch.no_grad():
        model.embedding.weights.weight.uniform_(-1, 1, generator=torch.Generator().manual_seed(2))
    x = CTRInput(
        categorical=torch.tensor([[3, 4], [3, 5]]),
        numeric=torch.tensor([[0.5], [1.0]]),
        multi_ids=(torch.tensor([[3, 6, 0], [6, 0, 0]]),),
        multi_lengths=torch.tensor([[2], [1]]),
    )
    labels = torch.tensor([1.0, 0.0])
    rows = [3, 10 + 4, 10 + 5, 18 + 3, 18 + 6]  # offsets 0, 10, 18; PAD (row 18) left out
    V, w = model.embedding.embedding.weight.detach(), model.embedding.weights.weight.detach()
    expected = 1e-3 * (V[rows].pow(2).sum() + w[rows].pow(2).sum())
    out = CTRStep(embedding_l2=1e-3)(model, (x, labels))
    torch.testing.assert_close(out["embedding_l2"], expected)
    torch.testing.assert_close(out["loss"] - out["bce"], expected)
    assert set(out) == {"loss", "bce", "embedding_l2"} and not out["embedding_l2"].requires_grad
    # its gradient: 2 * lambda * V[r] on those rows only, still a sparse gradient
    penalty = 1e-3 * model.embedding.squared_row_norms(as_ctr_input(x, features))
    penalty.backward()
    grad = model.embedding.embedding.weight.grad
    assert grad.is_sparse
    expected_grad = torch.zeros_like(V)
    expected_grad[rows] = 2e-3 * V[rows]
    torch.testing.assert_close(grad.to_dense(), expected_grad)
    assert set(CTRStep()(model, (x, labels))) == {"loss", "bce"}
    with pytest.raises(ConfigError, match=r"^embedding_l2: must be finite and >= 0"):
        CTRStep(embedding_l2=-1.0)
    with pytest.raises(TypeError, match="embedding_l2: needs a CTR model"):
        CTRStep(embedding_l2=0.1)(torch.nn.Linear(2, 1), (x, labels))


class _Interrupt(Callback):
    def __init__(self, at: int | None) -> None:
        self.at = at

    def on_step_end(self, state: TrainState) -> None:
        if state.step == self.at:
            raise KeyboardInterrupt


def _sparse_run(out_dir, data, embedding_optimizer: str, interrupt_at: int | None = None):
    features = data.feature_spec
    model = create_model("deepfm", seed=0, features=features, sparse_embeddings=True, dropout=0.2)
    config = FitConfig(
        max_steps=20,
        log_every=3,
        checkpoint_every=4,
        grad_clip_norm=0.5,
        schedule=ScheduleConfig(name="cosine", warmup_steps=3),
        optimizer=OptimizerConfig(
            name="adamw",
            lr=0.01,
            weight_decay=0.01,
            embedding_optimizer=embedding_optimizer,
            embedding_lr=0.05,
        ),
        progress=False,
    )
    loader = TensorLoader(data.to_batch().to_tensors(), batch_size=32, seed=3)
    result = fit(
        model,
        CTRStep(embedding_l2=1e-4),
        loader,
        config,
        [_Interrupt(interrupt_at)],
        out_dir=out_dir,
    )
    return model, result


@pytest.mark.parametrize("embedding_optimizer", ["sparse_adam", "adagrad", "rowwise_adagrad"])
@pytest.mark.parametrize("interrupt_at", [6, 11])
def test_sparse_fit_resumes_bit_identically(
    tmp_path, small_task: SyntheticCTRTask, embedding_optimizer: str, interrupt_at: int
) -> None:
    data = small_task.sample(160, seed=5)
    reference, expected = _sparse_run(tmp_path / "ref", data, embedding_optimizer)
    with pytest.raises(KeyboardInterrupt):
        _sparse_run(tmp_path / "run", data, embedding_optimizer, interrupt_at)
    model, result = _sparse_run(tmp_path / "run", data, embedding_optimizer)
    assert result.resumed_from == (interrupt_at - 1) // 4 * 4
    for (key, a), b in zip(
        model.state_dict().items(), reference.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), key
    strip = lambda h: [{k: v for k, v in r.items() if k != "time"} for r in h]  # noqa: E731
    assert strip(result.history) == strip(expected.history)
    assert {"grad_norm", "embedding_l2"} <= set(expected.history[-1])


# ------------------------------------------------------------------ EMOFM training setup
def test_emofm_starts_with_zero_biases_identity_mixers_and_field_ids() -> None:
    model = create_model("emofm", seed=0)
    assert torch.count_nonzero(model.extract.bias) == 0
    assert model.field_ids is not None and model.field_ids.shape == (5, 16)
    assert 0.01 < float(model.field_ids.detach().std()) < 0.04  # field_id_std = 0.02
    for block in [*model.field_mixer, model.type_mixer]:
        h = torch.randn(3, 5, block.norm1.normalized_shape[0])
        torch.testing.assert_close(block(h), h)  # zero-init output: the identity
    default = MixerBlock(8, 2, generator=torch.Generator().manual_seed(0))
    assert torch.count_nonzero(default.attention.out.weight) > 0
    assert torch.count_nonzero(default.attention.out.bias) == 0
    h = torch.randn(2, 4, 8)
    assert not torch.allclose(default(h), h)


def test_emofm_no_weight_decay_names_mixers_field_ids_biases_and_norms() -> None:
    model = create_model("emofm", seed=0)
    names = model.no_weight_decay()
    assert {"field_mixer", "type_mixer", "field_ids", "extract.bias", "head_bias"} <= names
    assert "embedding.embedding.weight" not in names and "extract.weight" not in names
    assert not any(n.startswith("embedding") for n in names)  # the tables keep the decay
    off = create_model("emofm", seed=0, field_mixer=False, type_mixer=False).no_weight_decay()
    assert not {"field_mixer", "type_mixer", "field_ids"} & off
    autoint = create_model("autoint", seed=0).no_weight_decay()
    assert "attention" in autoint and "head.bias" in autoint
    dnn = create_model("dnn", seed=0, norm="layernorm").no_weight_decay()
    assert any(n.endswith("bias") for n in dnn) and any("norm" in n for n in dnn)
    optimizer = make_optimizer(model, OptimizerConfig(name="adam", weight_decay=1e-4))
    decayed, exempt = optimizer.param_groups
    assert decayed["weight_decay"] == 1e-4 and exempt["weight_decay"] == 0.0
    exempt_ids = {id(p) for p in exempt["params"]}
    assert id(model.field_mixer[0].attention.query.weight) in exempt_ids
    assert id(model.field_ids) in exempt_ids and id(model.extract.weight) not in exempt_ids


def test_emofm_attention_specialises_without_coupled_decay(small_task: SyntheticCTRTask) -> None:
    """The field mixer's query/key weights keep their norm under Adam + L2 1e-4 (no decay on
    them) and shrink when the decay is coupled into every parameter."""
    data = small_task.sample(2_048, seed=1)
    batch, features = data.to_batch(), data.feature_spec
    norms = {}
    for exempt in (True, False):
        model = create_model("emofm", seed=0, features=features, embed_dim=8, field_dim=8)
        attention = model.field_mixer[0].attention
        if exempt:
            config = OptimizerConfig(name="adam", lr=1e-2, weight_decay=1e-4)
            optimizer = make_optimizer(model, config)
        else:
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
        start = float(torch.cat([attention.query.weight, attention.key.weight]).detach().norm())
        step = CTRStep()
        for _ in range(60):
            optimizer.zero_grad()
            step(model, batch)["loss"].backward()
            optimizer.step()
        end = float(torch.cat([attention.query.weight, attention.key.weight]).detach().norm())
        norms[exempt] = end / start
    assert norms[True] > 0.95 and norms[False] < 0.8


def test_emofm_product_path_attention_dropout_and_config_errors() -> None:
    model = create_model("emofm", seed=0, mixer_product=True, attention_dropout=0.5)
    assert model.field_mixer[0].product is not None
    assert torch.count_nonzero(model.field_mixer[0].product.weight) == 0
    assert model.field_mixer[0].attention.dropout == 0.5
    x = model.example_input(4, generator=torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x)["logits"], model(x)["logits"])
    attention = FieldAttention(8, 2, dropout=0.5, generator=torch.Generator().manual_seed(0))
    h = torch.randn(2, 6, 8)
    attention.train()
    torch.manual_seed(0)
    a, b = attention(h), attention(h)
    assert not torch.allclose(a, b)
    attention.eval()
    torch.testing.assert_close(attention(h), attention(h))
    cross = create_model(
        "emofm", seed=0, mixer_keys="cross", field_groups=(0, 0, 1, 2, 2), mixer_product=True
    )
    assert cross(cross.example_input(3))["logits"].shape == (3,)
    for field, kwargs in (
        ("attention_dropout", {"attention_dropout": 1.0}),
        ("mixer_dropout", {"mixer_dropout": -0.1}),
        ("field_id_std", {"field_id_std": 0.0}),
    ):
        with pytest.raises(ConfigError, match=field):
            EMOFMConfig(**kwargs)
    config = EMOFMConfig(mixer_product=True, attention_dropout=0.1, field_ids=False)
    assert EMOFMConfig.from_json(config.to_json()) == config
