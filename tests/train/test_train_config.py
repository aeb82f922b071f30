"""FitConfig, OptimizerConfig and ScheduleConfig: validation messages, docs, JSON round-trip."""

from __future__ import annotations

import dataclasses

import pytest

from perceptrons.config import ConfigError, field_docs
from perceptrons.train import FitConfig, OptimizerConfig, ScheduleConfig

CONFIGS = [FitConfig, OptimizerConfig, ScheduleConfig]


@pytest.mark.parametrize("cls", CONFIGS)
def test_every_field_is_documented(cls):
    docs = field_docs(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    assert set(names) <= set(docs), set(names) - set(docs)
    assert all(docs[name] for name in names)


@pytest.mark.parametrize("cls", CONFIGS)
def test_json_round_trip(cls):
    config = cls()
    assert cls.from_json(config.to_json()) == config


def test_nested_round_trip_keeps_values():
    config = FitConfig(
        max_steps=None,
        max_epochs=3,
        optimizer=OptimizerConfig(name="sgd", lr=0.1, momentum=0.9),
        schedule=ScheduleConfig(name="step", step_size=10, gamma=0.5),
        grad_clip_norm=1.0,
        checkpoint_every=5,
    )
    again = FitConfig.from_json(config.to_json())
    assert again == config
    assert again.optimizer.betas == (0.9, 0.999)


def test_exactly_one_of_steps_and_epochs():
    for kwargs in ({"max_steps": None}, {"max_steps": 10, "max_epochs": 2}):
        with pytest.raises(ConfigError) as err:
            FitConfig(**kwargs)
        assert "max_steps" in str(err.value) and "max_epochs" in str(err.value)
    assert FitConfig(max_steps=None, max_epochs=2).max_epochs == 2


@pytest.mark.parametrize(
    ("cls", "kwargs", "field"),
    [
        (FitConfig, {"max_steps": 0}, "max_steps"),
        (FitConfig, {"max_steps": None, "max_epochs": 0}, "max_epochs"),
        (FitConfig, {"grad_clip_norm": 0.0}, "grad_clip_norm"),
        (FitConfig, {"grad_clip_norm": float("inf")}, "grad_clip_norm"),
        (FitConfig, {"log_every": 0}, "log_every"),
        (FitConfig, {"checkpoint_every": 0}, "checkpoint_every"),
        (FitConfig, {"keep_checkpoints": 0}, "keep_checkpoints"),
        (FitConfig, {"device": "not-a-device"}, "device"),
        (FitConfig, {"seed": 1.5}, "seed"),
        (OptimizerConfig, {"lr": 0.0}, "lr"),
        (OptimizerConfig, {"lr": -1.0}, "lr"),
        (OptimizerConfig, {"weight_decay": -0.1}, "weight_decay"),
        (OptimizerConfig, {"name": "sgd", "momentum": 1.0}, "momentum"),
        (OptimizerConfig, {"name": "adamw", "momentum": 0.9}, "momentum"),
        (OptimizerConfig, {"betas": (0.9, 1.0)}, "betas[1]"),
        (OptimizerConfig, {"eps": 0.0}, "eps"),
        (OptimizerConfig, {"name": "rmsprop"}, "name"),
        (ScheduleConfig, {"warmup_steps": -1}, "warmup_steps"),
        (ScheduleConfig, {"min_lr_ratio": 1.5}, "min_lr_ratio"),
        (ScheduleConfig, {"step_size": 0}, "step_size"),
        (ScheduleConfig, {"gamma": 0.0}, "gamma"),
        (ScheduleConfig, {"name": "exponential"}, "name"),
    ],
)
def test_invalid_values_name_the_field(cls, kwargs, field):
    with pytest.raises(ConfigError) as err:
        cls(**kwargs)
    assert str(err.value).startswith(field), str(err.value)


def test_nested_error_names_the_path():
    with pytest.raises(ConfigError, match=r"^optimizer\.lr"):
        FitConfig.from_dict({"optimizer": {"lr": -1.0}})
    with pytest.raises(ConfigError, match=r"^schedule\.gamma"):
        FitConfig().replace_path("schedule.gamma", 2.0)
