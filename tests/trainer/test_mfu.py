"""The MFU numerator: 6·N·tokens (N without embeddings and output layer) + the output layer at supervised
positions + attention per sample; an untied lm_head must not be counted twice."""

from types import SimpleNamespace

import pytest
from transformers import LlamaConfig, LlamaForCausalLM

from trainer.model import count_params
from trainer.train import flops_per_step


def _llama(tied: bool) -> LlamaForCausalLM:
    cfg = LlamaConfig(
        vocab_size=100,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        tie_word_embeddings=tied,
    )
    return LlamaForCausalLM(cfg)


@pytest.mark.parametrize("tied", [True, False])
def test_non_embedding_params_exclude_input_and_output_layers(tied):
    model = _llama(tied)
    counts = count_params(model)
    by_hand = sum(p.numel() for p in model.model.layers.parameters()) + model.model.norm.weight.numel()
    assert counts["non_embedding"] == by_hand
    assert counts["total"] == by_hand + 100 * 16 * (1 if tied else 2)


def test_flops_per_step_formula():
    cfg = SimpleNamespace(hidden_size=4, vocab_size=10, num_hidden_layers=2)
    # two samples of 3 and 5 tokens (attention within each sample only), 2 supervised targets
    got = flops_per_step({"non_embedding": 1000}, cfg, real_tokens=8, sup_tokens=2, sum_sq_len=9 + 25)
    assert got == 6 * 1000 * 8 + 6 * 10 * 4 * 2 + 12 * 2 * 4 * 34
