"""ALBERT in one file, leaf classes first.

References:
- Lan et al., "ALBERT: A Lite BERT for Self-supervised Learning of Language Representations" (2019),
  and google-research/albert ``modeling.py``.
- Hugging Face transformers ``models/albert/modeling_albert.py``: module names reproduce its
  state-dict keys, so its checkpoints load with ``strict=True`` and outputs match to fp32 rounding.

What makes it ALBERT: a factorized embedding (V x E tables, then one E -> H projection) and
cross-layer parameter sharing: ``num_hidden_groups`` groups of ``inner_group_num`` layers, and
layer step ``i`` of ``num_hidden_layers`` runs group ``i // (L / G)``.

Deliberate deviations from transformers:
- The forward is narrow and export-shaped: ``(input_ids, attention_mask, token_type_ids)`` in,
  plain tensors out (no output dataclasses, labels, losses, ``inputs_embeds`` or flags).
- Position embeddings are a slice of the table (``weight[:S]``) rather than a lookup of a
  position-id buffer; the outputs are identical and the exported graph has no gather for them.
- Attention is written out for the XNNPACK delegate: heads folded into the batch of 3-D ``bmm``s,
  reshapes with the sequence length left to ``-1``, and an additive mask built once per forward;
  transformers dispatches to SDPA with an equivalent mask.
- ``gelu_new`` is written ``x*sigmoid(x*(a + b*x*x))``, the same function as transformers'
  ``0.5*x*(1+tanh(c*(x + 0.044715*x^3)))`` in fewer ops: XNNPACK delegates it exactly, while it
  runs ``gelu(approximate="tanh")`` as exact GELU and rejects ``pow``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from albert_edge.config import ACTIVATIONS, AlbertConfig

# gelu_new(x) = 0.5 x (1 + tanh(c (x + 0.044715 x^3))) = x * sigmoid(2c x (1 + 0.044715 x^2)),
# since 0.5 (1 + tanh(z)) = sigmoid(2z). The sigmoid form is the same function in 6 elementwise
# ops instead of 9, all of which XNNPACK delegates (no pow); it matches transformers to 5e-7.
_GELU_A = 2.0 * math.sqrt(2.0 / math.pi)
_GELU_B = _GELU_A * 0.044715


def gelu_new(x: Tensor) -> Tensor:
    """Tanh-approximate GELU (Hendrycks & Gimpel), in a form XNNPACK takes whole."""
    return x * torch.sigmoid(x * (_GELU_A + _GELU_B * x * x))


_FORMS = {"gelu-erf": F.gelu, "gelu-tanh": gelu_new, "relu": F.relu, "silu": F.silu}
ACT_FNS = {name: _FORMS[form] for name, form in ACTIVATIONS.items()}  # hidden_act -> function


class AlbertEmbeddings(nn.Module):
    """Word + position + token-type embeddings of width E, then LayerNorm (no projection here)."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        E = config.embedding_size
        self.word_embeddings = nn.Embedding(config.vocab_size, E, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, E)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, E)
        self.LayerNorm = nn.LayerNorm(E, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None) -> Tensor:
        """input_ids, token_type_ids: int64 (B, S) -> float (B, S, E)."""
        S = input_ids.shape[1]
        x = self.word_embeddings(input_ids)  # (B, S, E)
        if token_type_ids is None:
            x = x + self.token_type_embeddings.weight[0]  # type 0 everywhere, (E,) broadcast
        else:
            x = x + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings.weight[:S]  # (S, E) broadcast over the batch
        return self.dropout(self.LayerNorm(x))


class AlbertAttention(nn.Module):
    """Multi-head self-attention with the residual add and post-LayerNorm."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        H = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.scale = self.head_dim**-0.5
        self.query = nn.Linear(H, H)
        self.key = nn.Linear(H, H)
        self.value = nn.Linear(H, H)
        self.dense = nn.Linear(H, H)
        self.LayerNorm = nn.LayerNorm(H, eps=config.layer_norm_eps)
        self.attention_dropout = nn.Dropout(config.attention_probs_dropout_prob)
        self.output_dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x: (B, S, H); mask: additive float (B * nh, 1, S), or (1, 1, S) when B == 1 -> (B, S, H).

        Written for the XNNPACK delegate: heads are folded into the batch of 3-D ``bmm``s (a 4-D
        ``matmul`` adds ``expand`` copies the delegate does not take), keys are laid out as
        K^T by one permute (not a transpose of a transpose), and every reshape leaves the
        sequence length to ``-1`` so that it stays a single inferred dimension.
        """
        B, H = x.shape[0], x.shape[2]
        nh, hd = self.num_heads, self.head_dim
        q = self.query(x).reshape(B, -1, nh, hd).transpose(1, 2).reshape(B * nh, -1, hd)  # (B*nh, S, hd)
        k_t = self.key(x).reshape(B, -1, nh, hd).permute(0, 2, 3, 1).reshape(B * nh, hd, -1)  # (B*nh, hd, S)
        v = self.value(x).reshape(B, -1, nh, hd).transpose(1, 2).reshape(B * nh, -1, hd)  # (B*nh, S, hd)
        scores = torch.bmm(q, k_t)  # (B*nh, S, S)
        if self.scale != 1.0:  # 1.0 once the export folds it into the query projection
            scores = scores * self.scale
        scores = scores + mask
        probs = self.attention_dropout(torch.softmax(scores, dim=-1))
        context = torch.bmm(probs, v)  # (B*nh, S, hd)
        context = context.reshape(B, nh, -1, hd).transpose(1, 2).reshape(B, -1, H)  # (B, S, H)
        return self.LayerNorm(x + self.output_dropout(self.dense(context)))


class AlbertLayer(nn.Module):
    """Attention block, then the position-wise FFN with its residual add and post-LayerNorm."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.attention = AlbertAttention(config)
        self.ffn = nn.Linear(config.hidden_size, config.intermediate_size)
        self.ffn_output = nn.Linear(config.intermediate_size, config.hidden_size)
        self.full_layer_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.activation = ACT_FNS[config.hidden_act]
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x: (B, S, H) -> (B, S, H)."""
        a = self.attention(x, mask)
        h = self.dropout(self.ffn_output(self.activation(self.ffn(a))))  # (B, S, I) -> (B, S, H)
        return self.full_layer_layer_norm(h + a)


class AlbertLayerGroup(nn.Module):
    """``inner_group_num`` distinct layers applied in sequence; one group is one sharing unit."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.albert_layers = nn.ModuleList(AlbertLayer(config) for _ in range(config.inner_group_num))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        for layer in self.albert_layers:
            x = layer(x, mask)
        return x


class AlbertTransformer(nn.Module):
    """The E -> H projection, then ``num_hidden_layers`` steps over the shared groups."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.num_hidden_layers = config.num_hidden_layers
        self.layers_per_group = config.layers_per_group
        self.embedding_hidden_mapping_in = nn.Linear(config.embedding_size, config.hidden_size)
        self.albert_layer_groups = nn.ModuleList(
            AlbertLayerGroup(config) for _ in range(config.num_hidden_groups)
        )

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x: (B, S, E) -> (B, S, H)."""
        x = self.embedding_hidden_mapping_in(x)
        for i in range(self.num_hidden_layers):
            x = self.albert_layer_groups[i // self.layers_per_group](x, mask)
        return x


def _init_weights(module: nn.Module, std: float) -> None:
    """transformers' initialisation: N(0, std) weights, zero biases, unit LayerNorm."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=std)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class AlbertPreTrainedModel(nn.Module):
    """Common base: holds the config and initialises weights like transformers."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.config = config

    def post_init(self) -> None:
        self.apply(lambda m: _init_weights(m, self.config.initializer_range))
        for m in self.modules():
            if isinstance(m, AlbertMLMHead):
                nn.init.zeros_(m.bias)

    def num_parameters(self) -> int:
        """Distinct parameters (tied and shared tensors counted once)."""
        return sum(p.numel() for p in self.parameters())


class AlbertModel(AlbertPreTrainedModel):
    """The ALBERT encoder, optionally with the tanh pooler over the [CLS] position."""

    def __init__(self, config: AlbertConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        self.embeddings = AlbertEmbeddings(config)
        self.encoder = AlbertTransformer(config)
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size) if add_pooling_layer else None
        self.pooler_activation = nn.Tanh()
        self.post_init()

    def encode(self, input_ids: Tensor, attention_mask: Tensor | None, token_type_ids: Tensor | None) -> Tensor:
        """int64 (B, S) inputs (mask: 1 = token, 0 = padding) -> last hidden state, float (B, S, H)."""
        x = self.embeddings(input_ids, token_type_ids)  # (B, S, E)
        return self.encoder(x, self.additive_mask(attention_mask, x.dtype))

    def additive_mask(self, attention_mask: Tensor | None, dtype: torch.dtype) -> Tensor:
        """The attention mask every layer step adds to its scores: 0 where attended, dtype-min on padding.

        Built once per forward and shared by every layer step: (1, 1, S) for one sequence,
        (B*nh, 1, S) for a batch (one row per (sequence, head), matching the attention's folded
        batch), a scalar 0 when ``attention_mask`` is None (nothing masked).
        """
        if attention_mask is None:
            return torch.zeros((), dtype=dtype)  # broadcasts to (B*nh, S, S)
        B, nh = attention_mask.shape[0], self.config.num_attention_heads
        keep = attention_mask[:, None, :].to(dtype)  # (B, 1, S)
        if B > 1:
            keep = keep.repeat_interleave(nh, dim=0)  # (B*nh, 1, S)
        return (1.0 - keep) * torch.finfo(dtype).min

    def embed(self, input_ids: Tensor, token_type_ids: Tensor | None) -> Tensor:
        """The first hidden state (B, S, H): the factorized embedding and its E -> H projection."""
        return self.encoder.embedding_hidden_mapping_in(self.embeddings(input_ids, token_type_ids))

    def layer_step(self, hidden: Tensor, mask: Tensor, step: int) -> Tensor:
        """Layer step ``step`` (0-based) on ``hidden`` under the additive ``mask``; ``encode`` is
        ``embed`` then every step in order, the same operations in the same order."""
        return self.encoder.albert_layer_groups[step // self.encoder.layers_per_group](hidden, mask)

    def encode_steps(
        self, input_ids: Tensor, attention_mask: Tensor | None, token_type_ids: Tensor | None
    ) -> list[Tensor]:
        """The hidden state after every layer step, (B, S, H) each; the last is ``encode``'s output."""
        x = self.embed(input_ids, token_type_ids)
        mask = self.additive_mask(attention_mask, x.dtype)
        states = []
        for i in range(self.config.num_hidden_layers):
            x = self.layer_step(x, mask, i)
            states.append(x)
        return states

    def pool(self, sequence_output: Tensor) -> Tensor:
        """(B, S, H) -> tanh(W h_[CLS] + b), (B, H)."""
        if self.pooler is None:
            raise RuntimeError("this AlbertModel was built with add_pooling_layer=False")
        return self.pooler_activation(self.pooler(sequence_output[:, 0]))

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """-> (last hidden state (B, S, H), pooled output (B, H))."""
        seq = self.encode(input_ids, attention_mask, token_type_ids)
        return seq, self.pool(seq)


class AlbertMLMHead(nn.Module):
    """H -> E dense, activation, LayerNorm, then the E -> V decoder tied to the word embeddings."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.embedding_size)
        self.activation = ACT_FNS[config.hidden_act]
        self.LayerNorm = nn.LayerNorm(config.embedding_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.embedding_size, config.vocab_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.decoder.bias = self.bias  # one tensor under both names, as in transformers

    def forward(self, x: Tensor) -> Tensor:
        """(B, S, H) -> vocabulary logits (B, S, V)."""
        return self.decoder(self.LayerNorm(self.activation(self.dense(x))))


class AlbertSOPHead(nn.Module):
    """Sentence-order prediction: pooled output -> 2 logits (0 = in order, 1 = swapped)."""

    def __init__(self, config: AlbertConfig):
        super().__init__()
        self.dropout = nn.Dropout(_classifier_dropout(config))
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, pooled: Tensor) -> Tensor:
        return self.classifier(self.dropout(pooled))


def _classifier_dropout(config: AlbertConfig) -> float:
    p = config.classifier_dropout_prob
    return config.hidden_dropout_prob if p is None else p


def _tie_mlm_decoder(model: nn.Module) -> None:
    model.predictions.decoder.weight = model.albert.embeddings.word_embeddings.weight


class AlbertForPreTraining(AlbertPreTrainedModel):
    """MLM + SOP heads. forward -> (MLM logits (B, S, V), SOP logits (B, num_labels))."""

    def __init__(self, config: AlbertConfig):
        super().__init__(config)
        self.albert = AlbertModel(config)
        self.predictions = AlbertMLMHead(config)
        self.sop_classifier = AlbertSOPHead(config)
        self.post_init()
        _tie_mlm_decoder(self)

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        seq, pooled = self.albert(input_ids, attention_mask, token_type_ids)
        return self.predictions(seq), self.sop_classifier(pooled)


class AlbertForMaskedLM(AlbertPreTrainedModel):
    """MLM head. forward -> vocabulary logits (B, S, V)."""

    def __init__(self, config: AlbertConfig):
        super().__init__(config)
        self.albert = AlbertModel(config, add_pooling_layer=False)
        self.predictions = AlbertMLMHead(config)
        self.post_init()
        _tie_mlm_decoder(self)

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None
    ) -> Tensor:
        return self.predictions(self.albert.encode(input_ids, attention_mask, token_type_ids))


class AlbertForSequenceClassification(AlbertPreTrainedModel):
    """Pooled [CLS] -> num_labels logits (B, num_labels); num_labels == 1 is regression."""

    def __init__(self, config: AlbertConfig):
        super().__init__(config)
        self.albert = AlbertModel(config)
        self.dropout = nn.Dropout(_classifier_dropout(config))
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None
    ) -> Tensor:
        _, pooled = self.albert(input_ids, attention_mask, token_type_ids)
        return self.classifier(self.dropout(pooled))


class AlbertForTokenClassification(AlbertPreTrainedModel):
    """Per-token logits (B, S, num_labels)."""

    def __init__(self, config: AlbertConfig):
        super().__init__(config)
        self.albert = AlbertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(_classifier_dropout(config))
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None
    ) -> Tensor:
        seq = self.albert.encode(input_ids, attention_mask, token_type_ids)
        return self.classifier(self.dropout(seq))


class AlbertForQuestionAnswering(AlbertPreTrainedModel):
    """Extractive QA. forward -> (start logits (B, S), end logits (B, S))."""

    def __init__(self, config: AlbertConfig):
        super().__init__(config)
        if config.num_labels != 2:
            raise ValueError(
                f"AlbertForQuestionAnswering needs num_labels == 2 (start, end), got labels {config.labels}"
            )
        self.albert = AlbertModel(config, add_pooling_layer=False)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.post_init()

    def forward(
        self, input_ids: Tensor, attention_mask: Tensor | None = None, token_type_ids: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        logits = self.qa_outputs(self.albert.encode(input_ids, attention_mask, token_type_ids))  # (B, S, 2)
        return logits[..., 0], logits[..., 1]


# Class names as transformers writes them in config.json "architectures".
ARCHITECTURES: dict[str, type[AlbertPreTrainedModel]] = {
    cls.__name__: cls
    for cls in (
        AlbertModel,
        AlbertForPreTraining,
        AlbertForMaskedLM,
        AlbertForSequenceClassification,
        AlbertForTokenClassification,
        AlbertForQuestionAnswering,
    )
}


def example_inputs(config: AlbertConfig, seq_len: int = 128, batch: int = 1) -> tuple[Tensor, Tensor, Tensor]:
    """(input_ids, attention_mask, token_type_ids), int64 (batch, seq_len), for export and tests."""
    if not 1 <= seq_len <= config.max_position_embeddings:
        raise ValueError(
            f"seq_len must be in [1, max_position_embeddings={config.max_position_embeddings}], got {seq_len}"
        )
    g = torch.Generator().manual_seed(0)
    input_ids = torch.randint(min(5, config.vocab_size - 1), config.vocab_size, (batch, seq_len), generator=g)
    return input_ids, torch.ones_like(input_ids), torch.zeros_like(input_ids)
