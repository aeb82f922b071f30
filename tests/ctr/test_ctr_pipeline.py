"""`perceptrons.ctr.pipeline`: the config, the one training protocol, and train -> save -> load
-> evaluate / predict on files."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from perceptrons.config import ConfigError
from perceptrons.ctr import CTRDataError, SyntheticCTRConfig, SyntheticCTRTask, pipeline
from perceptrons.ctr.io.encoding import CTREncoder
from perceptrons.ctr.metrics import auc
from perceptrons.ctr.models import CTRStep, DNNConfig
from perceptrons.ctr.pipeline import CTRTrainConfig, ModelDirError, with_model
from perceptrons.data.loader import TensorLoader
from perceptrons.registry import create_model
from perceptrons.studies.common import predict as study_predict
from perceptrons.train import EarlyStopping, Evaluator, FitConfig, OptimizerConfig, fit

TASK = SyntheticCTRTask(
    SyntheticCTRConfig(
        num_user_fields=3,
        num_scene_fields=1,
        num_ad_fields=2,
        num_multi_fields=1,
        max_cardinality=40,
        first_order_std=1.5,
        base_rate=0.25,
        calibration_rows=2000,
    )
)
QUIET_FIT = FitConfig(
    max_steps=None,
    max_epochs=3,
    optimizer=OptimizerConfig(lr=0.02),
    log_every=5,
    progress=False,
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ctr_pipeline")
    TASK.sample(1500, seed=1).write(d / "train.cvr", "cvr")
    TASK.sample(500, seed=2).write(d / "test.cvr", "cvr")
    TASK.sample(1500, seed=1).write(d / "train.csv", "table")
    return d


def _config(files, **changes) -> CTRTrainConfig:
    base = CTRTrainConfig(
        train=str(files / "train.cvr"),
        valid=str(files / "test.cvr"),
        format="cvr",
        batch_size=128,
        fit=QUIET_FIT,
        eval_every=10,
    )
    return base.replace(**changes)


# ---------------------------------------------------------------------- the config
def test_config_round_trips_through_json_with_any_ctr_model():
    config = with_model(CTRTrainConfig(train="t.csv"), "dnn").replace_path(
        "model.hidden_features", (8, 4)
    )
    assert isinstance(config.model, DNNConfig) and config.model_name == "dnn"
    again = CTRTrainConfig.from_json(config.to_json())
    assert again == config and isinstance(again.model, DNNConfig)
    assert with_model(config, "dnn") is config  # the same model keeps its fields
    assert type(with_model(config, "fm").model).__name__ == "FMConfig"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": "cvr", "label": "y"}, "label: is not used by format 'cvr'"),
        ({"format": "criteo", "categorical": ("C1",)}, "categorical: is not used by format"),
        ({"model_name": "fm"}, "model: model 'fm' is configured by FMConfig, got LRConfig"),
        ({"model_name": "mlp"}, "model_name: is not a CTR model (valid: autoint"),
        ({"holdout": 1.0}, "holdout: must be in (0, 1)"),
        ({"eval_every": 0}, "eval_every: must be >= 1 or None"),
    ],
)
def test_config_errors_name_the_field(changes, message):
    with pytest.raises(ConfigError) as caught:
        CTRTrainConfig().replace(**changes)
    assert message in str(caught.value)


# ---------------------------------------------------------------------- the protocol
def _tensors(n: int, seed: int) -> dict[str, torch.Tensor]:
    return TASK.sample(n, seed=seed).to_batch().to_tensors()


def test_fit_ctr_model_restores_the_best_validation_auc():
    train, valid = _tensors(2000, 1), _tensors(500, 2)
    model = create_model("fm", features=TASK.sample(10, seed=0).feature_spec, seed=0)
    fitted = pipeline.fit_ctr_model(
        model, train, valid, QUIET_FIT, batch_size=100, eval_every=4, predict_batch=128
    )
    assert fitted.restored and fitted.best_step is not None and fitted.steps == 60
    records = [r for r in fitted.fit.history if r["split"] == "val"]
    assert [r["step"] for r in records] == list(range(4, 61, 4))
    assert fitted.best_auc == max(r["auc"] for r in records)
    assert not model.training
    recomputed = auc(valid["labels"], pipeline.model_logits(model, valid, batch_size=77))
    assert recomputed == pytest.approx(fitted.val_auc, abs=1e-6)


def test_fit_ctr_model_argument_errors():
    train, valid = _tensors(300, 1), _tensors(100, 2)
    model = create_model("lr", features=TASK.sample(10, seed=0).feature_spec, seed=0)
    with pytest.raises(ValueError, match="patience: early stopping needs validation rows"):
        pipeline.fit_ctr_model(model, train, None, QUIET_FIT, batch_size=64, patience=2)
    valid["labels"] = torch.zeros_like(valid["labels"])
    with pytest.raises(ValueError, match="both classes"):
        pipeline.fit_ctr_model(model, train, valid, QUIET_FIT, batch_size=64)


def _hand_kept_best(model, train, val, fit_config, batch_size, eval_every, patience):
    """The protocol the emofm-ctr study kept by hand before `RestoreBest` existed."""
    loader = TensorLoader(train, batch_size, seed=fit_config.seed)
    best = {"auc": -1.0, "state": None, "step": 0}
    count = [0]

    def validate(m):
        value = auc(val["labels"], study_predict(m, val, batch_size=16_384)["logits"])
        count[0] += 1
        if value > best["auc"]:
            best.update(auc=value, state=copy.deepcopy(m.state_dict()), step=count[0])
        return {"auc": value}

    callbacks = [Evaluator(validate, every=eval_every, split="val")]
    callbacks.append(EarlyStopping(metric="val/auc", mode="max", patience=patience))
    fit(model, CTRStep(), loader, fit_config, callbacks)
    model.load_state_dict(best["state"])
    return best["step"] * eval_every, best["auc"]


def test_one_protocol_reproduces_the_hand_kept_best_checkpoint_bit_for_bit():
    """``emofm`` (dict output, dropout, auxiliary losses) with early stopping: the same
    weights, best step and validation AUC as the study's former hand-written protocol."""
    train, valid = _tensors(1500, 1), _tensors(400, 2)
    features = TASK.sample(10, seed=0).feature_spec
    config = QUIET_FIT.replace(
        max_epochs=8, optimizer=OptimizerConfig(name="adam", lr=5e-2, fused=True)
    )
    kwargs = dict(embed_dim=8, hidden_features=(16,), dropout=0.1, field_dim=8, type_dim=8)
    old = create_model("emofm", features=features, seed=3, **kwargs)
    new = create_model("emofm", features=features, seed=3, **kwargs)
    old_step, old_auc = _hand_kept_best(old, train, valid, config, 128, 6, 2)
    fitted = pipeline.fit_ctr_model(
        new, train, valid, config, batch_size=128, eval_every=6, patience=2, predict_batch=16_384
    )
    assert fitted.stopped_early and fitted.best_step < fitted.steps  # an earlier step restored
    assert (fitted.best_step, fitted.best_auc) == (old_step, old_auc)
    a, b = old.state_dict(), new.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------- files end to end
def test_train_save_load_predict_is_bit_identical(files, tmp_path):
    config = with_model(_config(files), "dnn").replace_path("model.hidden_features", (16,))
    messages: list[str] = []
    trained = pipeline.train(config, out_dir=tmp_path / "model", log=messages.append)
    metrics = trained.metrics
    assert metrics["model"] == "dnn" and metrics["split"] == "valid" and metrics["rows"] == 500
    assert metrics["train_rows"] == 1500 and metrics["steps"] == 36
    assert trained.fit is not None and trained.fit.restored
    assert metrics.get("best_step") == trained.fit.best_step
    assert {p.name for p in (tmp_path / "model").iterdir()} == {
        "ctr.json",
        "encoder.json.gz",
        "model.json",
        "model.safetensors",
        "train_config.json",
    }
    loaded = pipeline.load(tmp_path / "model")
    assert loaded.config == trained.config and loaded.metrics == json.loads(json.dumps(metrics))
    assert (
        loaded.config is not None and loaded.config.model.features == trained.encoder.feature_spec
    )
    a, b = trained.model.state_dict(), loaded.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)

    for source, name in ((trained, "memory.csv"), (tmp_path / "model", "folder.csv")):
        result = pipeline.predict(source, files / "test.cvr", tmp_path / name)
        assert result == {"rows": 500, "skipped": 0}
    assert (tmp_path / "memory.csv").read_bytes() == (tmp_path / "folder.csv").read_bytes()
    evaluated = pipeline.evaluate(tmp_path / "model", files / "test.cvr")
    assert evaluated == pipeline.evaluate(trained, files / "test.cvr")
    assert evaluated["auc"] == pytest.approx(metrics["auc"], abs=1e-12)


def test_holdout_and_schema_report(files):
    config = CTRTrainConfig(
        train=str(files / "train.csv"), type_column="type", batch_size=256, fit=QUIET_FIT
    )
    messages: list[str] = []
    trained = pipeline.train(config, log=messages.append)
    assert trained.metrics["split"] == "holdout" and trained.metrics["rows"] == 150
    assert trained.metrics["train_rows"] == 1350
    assert any(m.startswith("schema of") for m in messages)


def test_model_folder_versions_and_errors(files, tmp_path):
    out = tmp_path / "model"
    pipeline.train(
        _config(files, restore_best=False, fit=QUIET_FIT.replace(max_epochs=1)), out_dir=out
    )
    manifest = json.loads((out / "ctr.json").read_text())
    assert manifest["version"] == pipeline.MANIFEST_VERSION == 3
    encoder = CTREncoder.load(out / "encoder.json.gz")
    # folders of manifest version 1 (no train_config.json, encoder.json) and 2 (encoder.json)
    # are still read
    old = tmp_path / "old"
    old.mkdir()
    for name in ("model.json", "model.safetensors"):
        (old / name).write_bytes((out / name).read_bytes())
    encoder.save(old / "encoder.json")
    (old / "ctr.json").write_text(json.dumps({**manifest, "version": 1}))
    loaded = pipeline.load(old)
    assert loaded.config is None and loaded.model_name == "lr"
    assert loaded.encoder.to_dict() == encoder.to_dict()
    (old / "train_config.json").write_bytes((out / "train_config.json").read_bytes())
    (old / "ctr.json").write_text(json.dumps({**manifest, "version": 2}))
    assert pipeline.load(old).config is not None
    (old / "ctr.json").write_text(json.dumps({**manifest, "version": 9}))
    with pytest.raises(CTRDataError, match="version 9 is not one this version reads"):
        pipeline.load(old)
    (old / "model.json").unlink()
    with pytest.raises(ModelDirError, match="model.json is missing"):
        pipeline.load(old)
    with pytest.raises(ModelDirError, match="no such folder"):
        pipeline.load(tmp_path / "nothing")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("")
    with pytest.raises(ModelDirError, match="holds no earlier model"):
        pipeline.train(_config(files), out_dir=tmp_path / "busy")
