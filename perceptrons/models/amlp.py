"""A non-autoregressive (NAR) encoder-decoder Transformer with a configurable decoder attention.

Paper: Shuyang Jiang, Jun Zhang, Jiangtao Feng, Lin Zheng & Lingpeng Kong, *Attentive
Multi-Layer Perceptron for Non-autoregressive Generation*, ECML-PKDD 2023, arXiv:2310.09512;
official code ``github.com/Shark-NLP/AttentiveMLP`` (its README gives the MT setup).

Dimension legend: ``b`` batch, ``S`` source length, ``T`` target length, ``e`` = ``embed_dim``,
``V`` = ``num_tokens``, ``L`` = ``max_length``.

Implemented (``"nar_transformer"``, `NARTransformer`): a CMLM ("Mask-Predict", Ghazvininejad
et al. 2019) encoder-decoder. The encoder's self-attention is softmax attention (the encoder
stays softmax in the official MT setup); the decoder's self- and cross-attention are any kind of
`perceptrons.layers.attention.ATTENTION_KINDS` (``"amlp-pquery"`` by default, the paper's MT
placement). Both are non-causal: the decoder reads a partially masked target in one pass.

* tokens: ``PAD = 0``, ``MASK = 1`` (the convention of `perceptrons.data.sequences`), one
  embedding table shared by encoder, decoder and the output projection (tied), plus learned
  positions (one table for the encoder, one for the decoder);
* pre-LayerNorm blocks: ``x + Attn(LN(x))``, ``x + FFN(LN(x))`` (FFN: Linear-GELU-Linear), a
  final LayerNorm on each stack;
* length prediction: the encoder states mean-pooled over real positions, then a linear
  classifier over target lengths ``0..L`` (our choice, see below);
* training: `CMLMStep` masks a uniform random number ``k ~ U{1..T}`` of each target's tokens and
  minimises the cross-entropy on the masked tokens plus ``length_loss_weight`` (0.1, our choice)
  times the length cross-entropy; it is a `perceptrons.train.Step` for `fit`;
* decoding: `mask_predict` (``iterations = 0`` is the single pass of the paper's validation;
  each further iteration re-masks the ``T (K - t) / K`` least confident tokens,
  ``K = iterations + 1``), with the predicted or a given (gold) length, vectorised over the batch.

Reconstruction and deviations (ours): the toy-task sizes (d = 128, 2 + 2 layers, 4 heads,
c = 16, small enough for a CPU); pre-LN blocks by default instead of fairseq's post-LN
(``norm_first``); learned positions initialised N(0, 1), larger than the token embeddings
(``position_std``: with small positions AMLP's slots took over 1,200 steps to lock onto
positions); no label smoothing, length beam, correction loss or self-attention insertion of
CMLMC; the length classifier reads mean-pooled states rather than a special length token;
decoding never emits ``PAD`` or ``MASK``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from perceptrons.checks import check_tensor, format_shape
from perceptrons.config import Config, require
from perceptrons.layers import DenseLinear
from perceptrons.layers.attention import ATTENTION_KINDS, AttentionKind, make_attention
from perceptrons.registry import MODELS

__all__ = [
    "MASK_ID",
    "PAD_ID",
    "CMLMStep",
    "NARInput",
    "NARTransformer",
    "NARTransformerConfig",
    "exact_match",
    "mask_predict",
    "token_accuracy",
]

PAD_ID = 0  # perceptrons.data.sequences.PAD
MASK_ID = 1  # perceptrons.data.sequences.MASK
PAPER = (
    "Jiang, Zhang, Feng, Zheng & Kong 2023, Attentive Multi-Layer Perceptron for "
    "Non-autoregressive Generation, arXiv:2310.09512"
)
MODULES = ("perceptrons.layers.attention", "perceptrons.data.sequences")
"""Library modules these models are built from (shown by ``perceptrons info``)."""
DOCS = "docs/amlp.md"

_INPUT_SHAPE: tuple[str, str] = ("batch", "length")


class NARInput(NamedTuple):
    """The input of `NARTransformer`: source and (partially masked) target token ids.

    Attributes:
        source: ``(b, S)`` int64 source tokens, ``PAD`` after each length.
        target: ``(b, T)`` int64 decoder input: target tokens, some replaced by ``MASK``;
            ``PAD`` after each length.
    """

    source: Tensor
    target: Tensor


@dataclass(frozen=True, kw_only=True)
class NARTransformerConfig(Config):
    """Configuration of `NARTransformer`.

    Attributes:
        num_tokens: Size V of the token id space, PAD (0) and MASK (1) included.
        max_length: Largest source and target length L (positions and length classes 0..L).
        embed_dim: Model width e.
        num_heads: Attention heads (must divide embed_dim).
        num_encoder_layers: Encoder blocks (self-attention + FFN).
        num_decoder_layers: Decoder blocks (self-attention + cross-attention + FFN).
        ffn_features: Hidden width of each block's feed-forward network.
        dropout: Dropout on attention weights (where the kind has them) and after each residual
            branch, in [0, 1).
        encoder_attention: Attention kind of the encoder's self-attention (see ATTENTION_KINDS).
        decoder_attention: Attention kind of the decoder's self- and cross-attention.
        num_landmarks: AMLP hidden width c (number of landmarks / pseudo-queries).
        position_std: Standard deviation of the initial learned positions (token embeddings
            start at N(0, 1/e)). Positions larger than tokens at initialisation let AMLP's
            slots lock onto positions quickly: with N(0, 1/e) positions, cross-AMLP had not
            learned to copy 8 tokens after 1,200 steps (measured), with 1.0 it did in ~200.
        norm_first: Pre-LN blocks ``x + f(LN(x))`` with a final LayerNorm per stack (True),
            or post-LN blocks ``LN(x + f(x))`` as fairseq's Transformer (False).
    """

    num_tokens: int = 20
    max_length: int = 32
    embed_dim: int = 128  # toy size, our choice (official MT setup: 512)
    num_heads: int = 4  # toy size, our choice (official MT setup: 8)
    num_encoder_layers: int = 2  # toy size, our choice: 2-3 layers each
    num_decoder_layers: int = 2
    ffn_features: int = 512
    dropout: float = 0.0
    encoder_attention: AttentionKind = "softmax"  # the encoder stays softmax (official MT setup)
    decoder_attention: AttentionKind = "amlp-pquery"  # amlpquery in the official MT decoder
    num_landmarks: int = 16  # c = 16, as the official MT setup
    position_std: float = 1.0  # library choice (nn.Embedding's default init), see above
    norm_first: bool = True  # library choice; fairseq (the paper's code) uses post-LN

    def validate(self) -> None:
        require(
            self.num_tokens >= 3,
            "num_tokens",
            "must be >= 3 (PAD, MASK, a symbol)",
            self.num_tokens,
        )
        for name in (
            "max_length",
            "embed_dim",
            "num_heads",
            "num_encoder_layers",
            "num_decoder_layers",
            "ffn_features",
            "num_landmarks",
        ):
            value = getattr(self, name)
            require(value >= 1, name, "must be >= 1", value)
        require(
            self.embed_dim % self.num_heads == 0,
            "num_heads",
            f"must divide embed_dim={self.embed_dim}",
            self.num_heads,
        )
        require(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)", self.dropout)
        require(
            0.0 < self.position_std < math.inf,
            "position_std",
            "must be finite and > 0",
            self.position_std,
        )
        for name in ("encoder_attention", "decoder_attention"):
            value = getattr(self, name)
            require(value in ATTENTION_KINDS, name, f"must be one of {ATTENTION_KINDS}", value)


# ------------------------------------------------------------------------------ blocks
class _FeedForward(nn.Module):
    def __init__(self, e: int, hidden: int, dropout: float, generator: torch.Generator | None):
        super().__init__()
        self.fc1 = DenseLinear(e, hidden, generator=generator)
        self.fc2 = DenseLinear(hidden, e, generator=generator)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.dropout(F.gelu(self.fc1(x))))


class _EncoderLayer(nn.Module):
    """Pre-LN self-attention block ``(b, S, e) -> (b, S, e)``."""

    def __init__(self, config: NARTransformerConfig, generator: torch.Generator | None):
        super().__init__()
        e = config.embed_dim
        self.norm1, self.norm2 = nn.LayerNorm(e), nn.LayerNorm(e)
        self.self_attn = _attention(config, config.encoder_attention, generator)
        self.ffn = _FeedForward(e, config.ffn_features, config.dropout, generator)
        self.dropout = nn.Dropout(config.dropout)
        self.norm_first = config.norm_first

    def forward(self, x: Tensor, pad: Tensor) -> Tensor:
        def attend(h: Tensor) -> Tensor:
            return self.self_attn(h, h, h, key_padding_mask=pad, query_padding_mask=pad)[0]

        if self.norm_first:
            x = x + self.dropout(attend(self.norm1(x)))
            return x + self.dropout(self.ffn(self.norm2(x)))
        x = self.norm1(x + self.dropout(attend(x)))
        return self.norm2(x + self.dropout(self.ffn(x)))


class _DecoderLayer(nn.Module):
    """Pre-LN self-attention, cross-attention and FFN block ``(b, T, e) -> (b, T, e)``."""

    def __init__(self, config: NARTransformerConfig, generator: torch.Generator | None):
        super().__init__()
        e = config.embed_dim
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(e), nn.LayerNorm(e), nn.LayerNorm(e)
        self.self_attn = _attention(config, config.decoder_attention, generator)
        self.cross_attn = _attention(config, config.decoder_attention, generator)
        self.ffn = _FeedForward(e, config.ffn_features, config.dropout, generator)
        self.dropout = nn.Dropout(config.dropout)
        self.norm_first = config.norm_first

    def forward(self, y: Tensor, y_pad: Tensor, memory: Tensor, x_pad: Tensor) -> Tensor:
        def attend(h: Tensor) -> Tensor:
            return self.self_attn(h, h, h, key_padding_mask=y_pad, query_padding_mask=y_pad)[0]

        def cross(h: Tensor) -> Tensor:
            return self.cross_attn(
                h, memory, memory, key_padding_mask=x_pad, query_padding_mask=y_pad
            )[0]

        if self.norm_first:
            y = y + self.dropout(attend(self.norm1(y)))
            y = y + self.dropout(cross(self.norm2(y)))
            return y + self.dropout(self.ffn(self.norm3(y)))
        y = self.norm1(y + self.dropout(attend(y)))
        y = self.norm2(y + self.dropout(cross(y)))
        return self.norm3(y + self.dropout(self.ffn(y)))


def _attention(
    config: NARTransformerConfig, kind: str, generator: torch.Generator | None
) -> nn.Module:
    return make_attention(
        kind,
        config.embed_dim,
        config.num_heads,
        num_landmarks=config.num_landmarks,
        dropout=config.dropout,
        generator=generator,
    )


# ------------------------------------------------------------------------------ the model
@MODELS.register(
    "nar_transformer",
    config=NARTransformerConfig,
    paper=PAPER,
    summary="Non-autoregressive CMLM Transformer with AMLP decoder attention (Jiang et al. 2023)",
    modules=MODULES,
    docs=DOCS,
)
class NARTransformer(nn.Module):
    """CMLM encoder-decoder: ``(source (b, S), target (b, T))`` -> token and length logits.

    Args:
        config: The architecture.
        generator: Generator the initial weights are drawn from (``None``: global generator).

    Attributes:
        token_embedding: Shared ``(V, e)`` embedding, also the (tied) output projection.
        encoder_positions: ``(L, e)`` learned source positions.
        decoder_positions: ``(L, e)`` learned target positions.
        length_head: Mean-pooled encoder states ``(b, e)`` -> length logits ``(b, L + 1)``.
    """

    config: NARTransformerConfig

    def __init__(
        self, config: NARTransformerConfig, *, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.input_shape: tuple[str | int, ...] = _INPUT_SHAPE
        e, std = config.embed_dim, config.embed_dim**-0.5
        self.token_embedding = nn.Embedding(config.num_tokens, e)
        self.encoder_positions = nn.Embedding(config.max_length, e)
        self.decoder_positions = nn.Embedding(config.max_length, e)
        nn.init.normal_(self.token_embedding.weight, std=std, generator=generator)
        for table in (self.encoder_positions, self.decoder_positions):
            nn.init.normal_(table.weight, std=config.position_std, generator=generator)
        self.encoder_layers = nn.ModuleList(
            _EncoderLayer(config, generator) for _ in range(config.num_encoder_layers)
        )
        self.decoder_layers = nn.ModuleList(
            _DecoderLayer(config, generator) for _ in range(config.num_decoder_layers)
        )
        # pre-LN stacks end with a LayerNorm; post-LN blocks already end with one
        final = nn.LayerNorm if config.norm_first else nn.Identity
        self.encoder_norm, self.decoder_norm = final(e), final(e)
        self.output_bias = nn.Parameter(torch.zeros(config.num_tokens))
        self.length_head = DenseLinear(e, config.max_length + 1, generator=generator)
        self.dropout = nn.Dropout(config.dropout)

    # -------------------------------------------------------------- model protocol
    def example_input(
        self, batch_size: int, *, generator: torch.Generator | None = None
    ) -> NARInput:
        """Random source ``(batch_size, S)`` and half-masked target ``(batch_size, T)``.

        Lengths are uniform in ``[1, min(L, 8)]``; tokens are uniform symbols (ids >= 2),
        ``PAD`` after each length; about half of the target tokens are ``MASK``.
        """
        device = self.token_embedding.weight.device
        top = min(self.config.max_length, 8)
        tensors = []
        for _ in range(2):
            lengths = torch.randint(1, top + 1, (batch_size,), generator=generator)
            tokens = torch.randint(
                2, self.config.num_tokens, (batch_size, top), generator=generator
            )
            tokens = tokens.masked_fill(torch.arange(top) >= lengths[:, None], PAD_ID)
            tensors.append(tokens)
        source, target = tensors
        masked = (torch.rand(target.shape, generator=generator) < 0.5) & (target != PAD_ID)
        target = target.masked_fill(masked, MASK_ID)
        return NARInput(source.to(device), target.to(device))

    def invalid_inputs(self) -> list[tuple[str, Any]]:
        """Inputs that must be rejected with an error naming ``(batch, length)``."""
        source, target = self.example_input(2, generator=torch.Generator().manual_seed(0))
        too_long = torch.full((2, self.config.max_length + 1), 2, dtype=torch.long)
        out_of_range = source.clone()
        out_of_range[0, 0] = self.config.num_tokens
        negative = source.clone()
        negative[0, 0] = -1
        all_pad = source.clone()
        all_pad[1] = PAD_ID
        return [
            ("a single tensor instead of (source, target)", source),
            ("three tensors", (source, target, target)),
            ("a floating source", (source.float(), target)),
            ("a source with an extra dimension", (source[None], target)),
            ("a target without batch dimension", (source, target[0])),
            ("different batch sizes", (source, target[:1])),
            ("a source longer than max_length", (too_long.to(source.device), target)),
            ("a token id >= num_tokens", (out_of_range, target)),
            ("a negative token id", (source, negative)),
            ("a source row of padding only", (all_pad, target)),
            ("a nested list instead of a tensor", (source.tolist(), target)),
        ]

    def forward(self, inputs: NARInput | tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        """Token logits of every target position and length logits.

        Args:
            inputs: ``(source (b, S), target (b, T))`` int64 token ids (`NARInput` or a
                tuple); ``PAD`` marks padding, ``MASK`` the target tokens to predict.

        Returns:
            ``{"logits": (b, T, V), "length_logits": (b, L + 1)}``.

        Raises:
            TypeError: not a pair of integer tensors.
            ValueError: wrong ranks, different batch sizes, a length above ``max_length``, ids
                outside ``[0, V)``, or a sequence of padding only.
        """
        source, target = self._check_inputs(inputs)
        memory, length_logits = self.encode(source)
        return {
            "logits": self.decode(target, memory, source == PAD_ID),
            "length_logits": length_logits,
        }

    # -------------------------------------------------------------- parts
    def encode(self, source: Tensor) -> tuple[Tensor, Tensor]:
        """Encoder states ``(b, S, e)`` and length logits ``(b, L + 1)`` of checked tokens."""
        pad = source == PAD_ID
        positions = torch.arange(source.shape[1], device=source.device)
        x = self.dropout(self.token_embedding(source) + self.encoder_positions(positions))
        for layer in self.encoder_layers:
            x = layer(x, pad)
        x = self.encoder_norm(x)
        real = (~pad).unsqueeze(-1).to(x.dtype)
        pooled = (x * real).sum(dim=1) / real.sum(dim=1).clamp_min(1.0)
        return x, self.length_head(pooled)

    def decode(self, target: Tensor, memory: Tensor, source_pad: Tensor) -> Tensor:
        """Token logits ``(b, T, V)`` of decoder input ``target`` given encoder states."""
        pad = target == PAD_ID
        positions = torch.arange(target.shape[1], device=target.device)
        y = self.dropout(self.token_embedding(target) + self.decoder_positions(positions))
        for layer in self.decoder_layers:
            y = layer(y, pad, memory, source_pad)
        y = self.decoder_norm(y)
        return y @ self.token_embedding.weight.T + self.output_bias

    def _check_inputs(self, inputs: Any) -> tuple[Tensor, Tensor]:
        shape = format_shape(_INPUT_SHAPE)
        if not isinstance(inputs, tuple | list) or len(inputs) != 2:
            raise TypeError(
                f"inputs: expected a pair (source, target) of int64 token tensors of shape "
                f"{shape} each, got {type(inputs).__name__}"
                + (f" of length {len(inputs)}" if isinstance(inputs, tuple | list) else "")
            )
        source, target = inputs
        for name, tokens in (("source", source), ("target", target)):
            check_tensor(tokens, name, _INPUT_SHAPE, floating=False)
            if tokens.dtype != torch.long:
                raise TypeError(
                    f"{name}: expected int64 token ids of shape {shape}, got dtype {tokens.dtype}"
                )
            if tokens.shape[1] > self.config.max_length:
                raise ValueError(
                    f"{name}: expected shape {shape} with length <= max_length="
                    f"{self.config.max_length}, got {tuple(tokens.shape)}"
                )
            if tokens.numel() and not bool(
                ((tokens >= 0) & (tokens < self.config.num_tokens)).all()
            ):
                raise ValueError(
                    f"{name}: token ids of a {shape} tensor must be in [0, "
                    f"{self.config.num_tokens}), got min {int(tokens.min())}, "
                    f"max {int(tokens.max())}"
                )
            if not bool((tokens != PAD_ID).any(dim=1).all()):
                raise ValueError(
                    f"{name}: every row of a {shape} tensor needs at least one non-PAD token"
                )
        if source.shape[0] != target.shape[0]:
            raise ValueError(
                f"target: expected shape {shape} with the batch size of source "
                f"({source.shape[0]}), got {tuple(target.shape)}"
            )
        return source, target


# ------------------------------------------------------------------------------ training
class CMLMStep:
    """CMLM training step for `fit`: masked-token cross-entropy plus a length loss.

    For each target of length ``T_i`` it draws ``k_i ~ U{1..T_i}`` and masks ``k_i`` positions
    chosen uniformly without replacement (torch's global generator, which `fit` seeds), then

    .. math::

        \\mathcal L = \\frac{1}{\\sum_i k_i} \\sum_{i, t \\in M_i} -\\log p(y_{it} \\mid
        \\tilde y_i, x_i) + \\lambda\\, \\frac1b \\sum_i -\\log p(T_i \\mid x_i).

    Args:
        length_loss_weight: :math:`\\lambda` (our choice: 0.1).
        label_smoothing: Label smoothing of the token cross-entropy (fairseq CMLM: 0.1).

    Returns (on call with ``(model, (source (b, S), target (b, T)))``):
        ``{"loss", "token_loss", "length_loss", "masked_accuracy", "length_accuracy"}``.
    """

    def __init__(self, *, length_loss_weight: float = 0.1, label_smoothing: float = 0.0) -> None:
        if not (math.isfinite(length_loss_weight) and length_loss_weight >= 0):
            raise ValueError(
                f"length_loss_weight: expected a finite number >= 0, got {length_loss_weight!r}"
            )
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(
                f"label_smoothing: expected a number in [0, 1), got {label_smoothing!r}"
            )
        self.length_loss_weight = float(length_loss_weight)
        self.label_smoothing = float(label_smoothing)

    def __call__(self, model: nn.Module, batch: Any) -> dict[str, Tensor]:
        source, target = batch
        source, target = _trim(source), _trim(target)
        real = target != PAD_ID
        lengths = real.sum(dim=1)
        num_masked = (torch.rand(lengths.shape, device=target.device) * lengths).long() + 1
        num_masked = torch.minimum(num_masked, lengths)
        scores = torch.rand(target.shape, device=target.device).masked_fill(~real, 2.0)
        rank = scores.argsort(dim=1).argsort(dim=1)
        masked = rank < num_masked[:, None]
        out = model(NARInput(source, target.masked_fill(masked, MASK_ID)))
        logits = out["logits"][masked]
        gold = target[masked]
        token_loss = F.cross_entropy(logits, gold, label_smoothing=self.label_smoothing)
        length_loss = F.cross_entropy(out["length_logits"], lengths)
        with torch.no_grad():
            masked_accuracy = (logits.argmax(dim=-1) == gold).float().mean()
            length_accuracy = (out["length_logits"].argmax(dim=-1) == lengths).float().mean()
        return {
            "loss": token_loss + self.length_loss_weight * length_loss,
            "token_loss": token_loss.detach(),
            "length_loss": length_loss.detach(),
            "masked_accuracy": masked_accuracy,
            "length_accuracy": length_accuracy,
        }


def _trim(tokens: Tensor) -> Tensor:
    """Drop trailing columns that are padding in every row."""
    width = int((tokens != PAD_ID).any(dim=0).nonzero().max()) + 1 if tokens.numel() else 0
    return tokens[:, :width]


# ------------------------------------------------------------------------------ decoding
@torch.no_grad()
def mask_predict(
    model: NARTransformer,
    source: Tensor,
    *,
    iterations: int = 0,
    lengths: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Mask-predict decoding (Ghazvininejad et al. 2019), vectorised over the batch.

    Pass 0 predicts every position of an all-``MASK`` target of length ``T_i`` (predicted:
    argmax of the length logits over ``1..L``, or given). Each of the ``iterations`` further
    passes ``t = 1..iterations`` re-masks the ``floor(T_i (K - t) / K)`` least confident
    tokens (``K = iterations + 1``) and re-predicts them, keeping the others and their
    probabilities. ``PAD`` and ``MASK`` are never predicted. The model runs in eval mode.

    Args:
        model: A `NARTransformer`.
        source: ``(b, S)`` int64 source tokens.
        iterations: Refinement passes after the first (0: single pass).
        lengths: ``(b,)`` target lengths in ``[1, L]`` (e.g. the gold ones); ``None`` predicts.

    Returns:
        ``tokens`` ``(b, T)`` int64 (``T = max lengths``, ``PAD`` after each length) and
        ``lengths`` ``(b,)`` int64.

    Raises:
        ValueError: bad ``source`` (as in `NARTransformer.forward`), ``iterations < 0`` or bad
            ``lengths``.
    """
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 0:
        raise ValueError(f"iterations: expected an int >= 0, got {iterations!r}")
    max_length = model.config.max_length
    source, _ = model._check_inputs((source, source))
    was_training = model.training
    model.eval()
    try:
        memory, length_logits = model.encode(source)
        if lengths is None:
            lengths = length_logits[:, 1:].argmax(dim=-1) + 1
        else:
            check_tensor(lengths, "lengths", (source.shape[0],), floating=False)
            if not bool(((lengths >= 1) & (lengths <= max_length)).all()):
                raise ValueError(f"lengths: expected values in [1, {max_length}]")
            lengths = lengths.to(device=source.device, dtype=torch.long)
        width = int(lengths.max())
        real = torch.arange(width, device=source.device) < lengths[:, None]
        source_pad = source == PAD_ID
        tokens = torch.full_like(real, MASK_ID, dtype=torch.long).masked_fill(~real, PAD_ID)
        scores, tokens = _predict(model, tokens, memory, source_pad, real)
        passes = iterations + 1
        for t in range(1, passes):
            count = lengths * (passes - t) // passes
            rank = scores.argsort(dim=1).argsort(dim=1)
            remask = (rank < count[:, None]) & real
            new_scores, new_tokens = _predict(
                model, tokens.masked_fill(remask, MASK_ID), memory, source_pad, real
            )
            tokens = torch.where(remask, new_tokens, tokens)
            scores = torch.where(remask, new_scores, scores)
    finally:
        model.train(was_training)
    return tokens, lengths


def _predict(
    model: NARTransformer, tokens: Tensor, memory: Tensor, source_pad: Tensor, real: Tensor
) -> tuple[Tensor, Tensor]:
    """Log-probabilities (``+inf`` at padding) and argmax tokens (``PAD`` at padding)."""
    logits = model.decode(tokens, memory, source_pad)
    logits[..., PAD_ID] = -math.inf
    logits[..., MASK_ID] = -math.inf
    log_probs, best = logits.log_softmax(dim=-1).max(dim=-1)
    return log_probs.masked_fill(~real, math.inf), best.masked_fill(~real, PAD_ID)


# ------------------------------------------------------------------------------ metrics
def _aligned(prediction: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    width = max(prediction.shape[1], target.shape[1])
    return (
        F.pad(prediction, (0, width - prediction.shape[1]), value=PAD_ID),
        F.pad(target, (0, width - target.shape[1]), value=PAD_ID),
    )


def token_accuracy(prediction: Tensor, target: Tensor) -> float:
    """Fraction of the target's real tokens predicted at their position.

    Args:
        prediction: ``(b, T')`` predicted tokens (``PAD`` after the predicted length).
        target: ``(b, T)`` gold tokens (``PAD`` after the gold length).
    """
    prediction, target = _aligned(prediction, target)
    real = target != PAD_ID
    return float(((prediction == target) & real).sum() / real.sum().clamp_min(1))


def exact_match(prediction: Tensor, target: Tensor) -> float:
    """Fraction of sequences predicted exactly (every token and the length)."""
    prediction, target = _aligned(prediction, target)
    return float((prediction == target).all(dim=1).float().mean())
