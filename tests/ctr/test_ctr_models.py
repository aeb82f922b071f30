"""CTR models (`perceptrons.ctr.models`): shapes, gradients, input formats, EMOFM switches,
`CTRStep`, and LR reaching the first-order oracle under `fit`. The contract checks run in
``tests/contract`` on every registry name."""

from __future__ import annotations

import pytest
import torch

from perceptrons.config import ConfigError
from perceptrons.ctr import CTRBatch, SyntheticCTRConfig, SyntheticCTRTask
from perceptrons.ctr.features import CTRFeatures, CTRInput, as_ctr_input
from perceptrons.ctr.layers import FieldEmbedding
from perceptrons.ctr.metrics import auc
from perceptrons.ctr.models import CTRStep, EMOFMConfig, type_known_logits
from perceptrons.data.loader import TensorLoader
from perceptrons.registry import create_model
from perceptrons.train import FitConfig, OptimizerConfig, fit

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
    assert full - _param_prefixes(field_mixer=False) == {"field_mixer"}
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
