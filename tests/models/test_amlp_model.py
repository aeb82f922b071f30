"""Tests of the NAR Transformer (`perceptrons.models.amlp`): shapes, CMLM step, mask-predict."""

from __future__ import annotations

import pytest
import torch

from perceptrons.config import ConfigError
from perceptrons.data import sequences
from perceptrons.data.loader import TensorLoader
from perceptrons.layers.attention import ATTENTION_KINDS
from perceptrons.models.amlp import (
    MASK_ID,
    PAD_ID,
    CMLMStep,
    NARInput,
    NARTransformer,
    NARTransformerConfig,
    exact_match,
    mask_predict,
    token_accuracy,
)
from perceptrons.registry import create_model
from perceptrons.testing import check_model
from perceptrons.train import FitConfig, OptimizerConfig, fit

TINY = {"num_tokens": 10, "max_length": 12, "embed_dim": 16, "num_heads": 2, "ffn_features": 32}


def tiny(kind: str = "amlp-pquery", seed: int = 0, **overrides) -> NARTransformer:
    return create_model(
        "nar_transformer", seed=seed, **{**TINY, "decoder_attention": kind, **overrides}
    )


def batch(n: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    data = sequences.sort_task(n, min_length=3, max_length=8, vocab_size=8, generator=seed)
    return data.source, data.target


def test_special_tokens_match_the_data_convention() -> None:
    assert PAD_ID == sequences.PAD and MASK_ID == sequences.MASK


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_shapes_and_contract_per_attention_kind(kind: str) -> None:
    model = tiny(kind)
    source, target = batch()
    out = model(NARInput(source, target[:, :5]))
    assert out["logits"].shape == (6, 5, 10)
    assert out["length_logits"].shape == (6, 13)
    check_model(model, factory=lambda seed: tiny(kind, seed))


def test_padding_does_not_change_real_positions() -> None:
    model = tiny("amlp-pquery").eval()
    source, target = batch()
    wide_source = torch.nn.functional.pad(source, (0, 3), value=PAD_ID)
    wide_target = torch.nn.functional.pad(target, (0, 2), value=PAD_ID)
    with torch.no_grad():
        a = model((source, target))
        b = model((wide_source, wide_target))
    real = target != PAD_ID
    assert torch.allclose(a["logits"][real], b["logits"][:, : target.shape[1]][real], atol=1e-5)
    assert torch.allclose(a["length_logits"], b["length_logits"], atol=1e-5)


def test_bad_inputs_name_the_expected_shape() -> None:
    model = tiny()
    source, target = batch()
    with pytest.raises(TypeError, match=r"\(batch, length\)"):
        model(source)
    with pytest.raises(ValueError, match="max_length=12"):
        model((torch.full((2, 13), 2), target[:2]))
    with pytest.raises(ValueError, match=r"in \[0, 10\)"):
        model((source + 10, target))
    with pytest.raises(ValueError, match="batch size"):
        model((source, target[:2]))
    with pytest.raises(TypeError, match="int64"):
        model((source.int(), target))


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="num_heads"):
        NARTransformerConfig(embed_dim=10, num_heads=4)
    with pytest.raises(ConfigError, match="decoder_attention"):
        NARTransformerConfig(decoder_attention="flash")
    with pytest.raises(ConfigError, match="num_tokens"):
        NARTransformerConfig(num_tokens=2)
    with pytest.raises(ConfigError, match="dropout"):
        NARTransformerConfig(dropout=1.0)
    with pytest.raises(ConfigError, match="position_std"):
        NARTransformerConfig(position_std=0.0)
    with pytest.raises(ValueError, match="length_loss_weight"):
        CMLMStep(length_loss_weight=-1.0)


def test_cmlm_step_masks_between_one_and_all_tokens() -> None:
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, inputs):
            seen.append(inputs.target.clone())
            return self.model(inputs)

    source, target = batch(64)
    torch.manual_seed(0)
    out = CMLMStep()(Spy(tiny()), (source, target))
    assert set(out) == {"loss", "token_loss", "length_loss", "masked_accuracy", "length_accuracy"}
    assert torch.isfinite(out["loss"]) and out["loss"].requires_grad
    decoder_input = seen[0]
    real = target != PAD_ID
    masked = (decoder_input == MASK_ID).sum(dim=1)
    assert bool((masked >= 1).all()) and bool((masked <= real.sum(dim=1)).all())
    assert masked.unique().numel() > 2  # a random number of masks per sample
    kept = decoder_input != MASK_ID
    assert torch.equal(decoder_input[kept], target[kept])  # unmasked tokens and pads kept


def test_cmlm_loss_decreases() -> None:
    model = tiny("amlp-pquery")
    data = sequences.sort_task(256, min_length=3, max_length=8, vocab_size=8, generator=0)
    loader = TensorLoader((data.source, data.target), 32, seed=0)
    config = FitConfig(
        max_steps=40, optimizer=OptimizerConfig(lr=3e-3), log_every=10, progress=False
    )
    result = fit(model, CMLMStep(), loader, config)
    losses = [r["loss"] for r in result.history if r["split"] == "train"]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.9 * losses[0] and losses[-1] < losses[1]


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_one_training_step_per_attention_kind(kind: str) -> None:
    model = tiny(kind)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    source, target = batch(8)
    result = fit(
        model,
        CMLMStep(),
        [(source, target)],
        FitConfig(max_steps=1, log_every=1, progress=False),
    )
    assert result.steps == 1 and torch.isfinite(torch.tensor(result.final["loss"]))
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert "token_embedding.weight" in changed
    assert any(k.startswith("decoder_layers.0.cross_attn") for k in changed)


@pytest.mark.parametrize("iterations", [0, 1, 3, 10])
def test_mask_predict_shapes(iterations: int) -> None:
    model = tiny().train()
    source, target = batch()
    lengths = (target != PAD_ID).sum(dim=1)
    tokens, out_lengths = mask_predict(model, source, iterations=iterations, lengths=lengths)
    assert model.training  # restored
    assert tokens.shape == target.shape and torch.equal(out_lengths, lengths)
    real = torch.arange(tokens.shape[1]) < lengths[:, None]
    assert torch.equal(tokens == PAD_ID, ~real)
    assert not bool((tokens == MASK_ID).any())
    predicted, predicted_lengths = mask_predict(model, source, iterations=iterations)
    assert predicted.shape == (6, int(predicted_lengths.max()))
    assert bool((predicted_lengths >= 1).all()) and bool((predicted_lengths <= 12).all())


def test_mask_predict_is_deterministic_and_checks_arguments() -> None:
    model = tiny()
    source, _ = batch()
    a, _ = mask_predict(model, source, iterations=2)
    b, _ = mask_predict(model, source, iterations=2)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="iterations"):
        mask_predict(model, source, iterations=-1)
    with pytest.raises(ValueError, match="lengths"):
        mask_predict(model, source, lengths=torch.zeros(6, dtype=torch.long))


def test_metrics() -> None:
    target = torch.tensor([[3, 4, 5, 0], [6, 7, 0, 0]])
    assert token_accuracy(target, target) == 1.0 and exact_match(target, target) == 1.0
    short = torch.tensor([[3, 4], [6, 9]])  # first sample one token short
    assert token_accuracy(short, target) == pytest.approx(3 / 5)
    assert exact_match(short, target) == 0.0
