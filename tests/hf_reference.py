"""Helpers that build transformers reference models for parity tests (test-time only)."""

from __future__ import annotations

import torch

from albert_edge.config import AlbertConfig

transformers = __import__("pytest").importorskip("transformers")

HEAD_CLASSES = (
    "AlbertModel",
    "AlbertForPreTraining",
    "AlbertForMaskedLM",
    "AlbertForSequenceClassification",
    "AlbertForTokenClassification",
    "AlbertForQuestionAnswering",
)


def hf_config(config: AlbertConfig) -> "transformers.AlbertConfig":
    """transformers' own config object with our field values (independent of our config.json writer)."""
    return transformers.AlbertConfig(
        vocab_size=config.vocab_size,
        embedding_size=config.embedding_size,
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_hidden_groups=config.num_hidden_groups,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        inner_group_num=config.inner_group_num,
        hidden_act=config.hidden_act,
        hidden_dropout_prob=config.hidden_dropout_prob,
        attention_probs_dropout_prob=config.attention_probs_dropout_prob,
        max_position_embeddings=config.max_position_embeddings,
        type_vocab_size=config.type_vocab_size,
        initializer_range=config.initializer_range,
        layer_norm_eps=config.layer_norm_eps,
        classifier_dropout_prob=config.classifier_dropout_prob,
        pad_token_id=config.pad_token_id,
        num_labels=config.num_labels,
    )


def random_hf_model(config: AlbertConfig, head: str, seed: int = 0):
    """A transformers model whose every tensor (LayerNorm and biases too) is random, in eval mode."""
    torch.manual_seed(seed)
    model = getattr(transformers, head)(hf_config(config)).eval()
    with torch.no_grad():
        for p in model.parameters():  # tied tensors are visited once
            p.add_(torch.randn_like(p) * 0.05)
    return model


def hf_outputs(model, input_ids, attention_mask, token_type_ids) -> tuple[torch.Tensor, ...]:
    """The tensors our narrow forward returns, taken from transformers' output object."""
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
    name = type(model).__name__
    if name == "AlbertModel":
        return out.last_hidden_state, out.pooler_output
    if name == "AlbertForPreTraining":
        return out.prediction_logits, out.sop_logits
    if name == "AlbertForQuestionAnswering":
        return out.start_logits, out.end_logits
    return (out.logits,)


def as_tuple(x) -> tuple[torch.Tensor, ...]:
    return x if isinstance(x, tuple) else (x,)


def batch_inputs(config: AlbertConfig, seq_len: int = 12, seed: int = 1):
    """Two sequences: the second padded after 2/3 of its length; random token types."""
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, config.vocab_size, (2, seq_len), generator=g)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, (2 * seq_len) // 3 :] = 0
    input_ids[1, (2 * seq_len) // 3 :] = config.pad_token_id
    token_type_ids = torch.randint(0, config.type_vocab_size, (2, seq_len), generator=g)
    return input_ids, attention_mask, token_type_ids
