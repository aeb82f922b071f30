"""BiViT: per-block binary parts, the binarisation schedule run through fit, and the
distillation step."""

from __future__ import annotations

import copy

import pytest
import torch

from perceptrons.data.loader import TensorLoader
from perceptrons.models.bivit import (
    BinarizationSchedule,
    BiViT,
    BiViTConfig,
    BiViTStep,
    CLBStage,
    clb_stages,
    one_shot_stages,
)
from perceptrons.registry import create_model
from perceptrons.train import Callback, FitConfig, OptimizerConfig, fit

SMALL = {"embed_dim": 16, "depth": 2, "num_heads": 2}


def test_images_in_logits_out_and_config_flags_decide_the_binary_parts():
    model = create_model("bivit", seed=0, **SMALL, binary_mlp=(True, False))
    x = model.example_input(3, generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 1, 8, 8) and model(x).shape == (3, 10)
    assert model.binarized_parts() == {"attention": [True, True], "mlp": [True, False]}
    model.set_binarized(attention=False, mlp=False)
    assert model.binarized_parts() == {"attention": [False, False], "mlp": [False, False]}
    model.set_binarized(mlp=True)  # block 1's MLP stays full precision (config)
    assert model.binarized_parts() == {"attention": [False, False], "mlp": [True, False]}
    maps = model.attention_maps(x)
    assert len(maps) == 2 and maps[0][0].shape == (3, 2, 17, 17) and maps[0][1] is None


def test_full_precision_and_binary_modes_share_the_weights():
    model = create_model("bivit", seed=0, **SMALL)
    x = model.example_input(4, generator=torch.Generator().manual_seed(1))
    binary = model(x)
    model.set_binarized(attention=False, mlp=False)
    full = model(x)
    assert not torch.allclose(binary, full)
    model.set_binarized(attention=True, mlp=True)
    torch.testing.assert_close(model(x), binary)


def test_config_is_validated():
    with pytest.raises(ValueError, match="patch_size"):
        BiViTConfig(image_size=8, patch_size=3)
    with pytest.raises(ValueError, match="binary_attention"):
        BiViTConfig(depth=4, binary_attention=(True, False))
    with pytest.raises(ValueError, match="num_heads"):
        BiViTConfig(embed_dim=10, num_heads=4)
    with pytest.raises(ValueError, match="binarize"):
        CLBStage(binarize=("attention", "head"))
    with pytest.raises(ValueError, match="steps"):
        CLBStage(steps=0)


def test_schedule_stages_and_boundaries():
    schedule = BinarizationSchedule(clb_stages(3, 2))
    assert schedule.total_steps == 5
    assert [schedule.stage_at(s).binarize for s in range(6)] == [("attention",)] * 3 + [
        ("attention", "mlp")
    ] * 3
    assert one_shot_stages(7)[0].binarize == ("attention", "mlp")
    with pytest.raises(ValueError, match="stages"):
        BinarizationSchedule([])


class _Record(Callback):
    def __init__(self) -> None:
        self.parts: list[dict[str, list[bool]]] = []

    def on_step_end(self, state) -> None:  # noqa: D102
        self.parts.append(state.model.binarized_parts())


def _digits_like(n: int = 64) -> TensorLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return TensorLoader((x, y), batch_size=16, seed=0)


def test_the_schedule_runs_through_fit_and_a_resumed_run_continues_in_its_stage(tmp_path):
    """Stage 1 (3 steps): attention binary, MLPs full precision; stage 2: all binary. The
    schedule is applied after each step for the next one, and at the start of a resumed run."""
    model = create_model("bivit", seed=0, **SMALL)
    schedule, record = BinarizationSchedule(clb_stages(3, 2)), _Record()
    config = FitConfig(max_steps=5, optimizer=OptimizerConfig(lr=1e-3), progress=False)
    result = fit(model, BiViTStep(), _digits_like(), config, [schedule, record])
    assert result.steps == 5
    # the record sees the stage set for the *next* step: steps 1-2 -> stage 1, 3.. -> stage 2
    mlp = [p["mlp"] for p in record.parts]
    assert mlp[:2] == [[False, False]] * 2 and mlp[2:] == [[True, True]] * 3
    assert all(p["attention"] == [True, True] for p in record.parts)
    # a run stopped after step 3 resumes in stage 2 (the start of the resumed run applies it)
    seen: list[list[bool]] = []

    class _First(Callback):
        def on_fit_start(self, state) -> None:  # noqa: D102
            seen.append(state.model.binarized_parts()["mlp"])

    out = tmp_path / "run"
    for steps in (3, 5):
        resumed = create_model("bivit", seed=0, **SMALL)
        callbacks = [BinarizationSchedule(clb_stages(3, 2)), _First()]
        cfg = config.replace(max_steps=steps, checkpoint_every=1)
        fit(resumed, BiViTStep(), _digits_like(), cfg, callbacks, out_dir=out)
    assert seen == [[False, False], [True, True]]


def test_distillation_step():
    student = create_model("bivit", seed=0, **SMALL)
    teacher = copy.deepcopy(student)
    teacher.set_binarized(attention=False, mlp=False)
    x = student.example_input(8, generator=torch.Generator().manual_seed(2))
    y = torch.arange(8) % 10
    plain = BiViTStep()(student, (x, y))
    assert set(plain) == {"loss", "ce", "accuracy"}
    torch.testing.assert_close(plain["loss"], torch.nn.functional.cross_entropy(student(x), y))
    same = copy.deepcopy(student)
    out = BiViTStep(same, kd_weight=1.0, temperature=2.0)(student, (x, y))
    assert abs(float(out["kd"])) < 1e-6  # a teacher identical to the student: KL = 0
    out = BiViTStep(teacher, kd_weight=0.5, temperature=2.0)(student, (x, y))
    assert float(out["kd"]) > 0
    torch.testing.assert_close(out["loss"], out["ce"] + 0.5 * out["kd"])
    out["loss"].backward()
    assert all(p.grad is None for p in teacher.parameters())
    with pytest.raises(ValueError, match="temperature"):
        BiViTStep(teacher, temperature=0.0)


def test_rejects_images_of_the_wrong_shape():
    model = BiViT(BiViTConfig(**SMALL))
    with pytest.raises(ValueError, match=r"\(batch, 1, 8, 8\)"):
        model(torch.randn(2, 1, 16, 16))
