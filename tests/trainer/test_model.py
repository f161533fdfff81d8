"""Freezing chosen parts: attention, MLP, embeddings, the first N layers (each alone touches only its part)."""

import pytest
from test_mfu import _llama

from trainer.config import FinetuneConfig
from trainer.model import freeze


@pytest.mark.parametrize(
    ("field", "value", "part"),
    [
        ("freeze_attention", True, ".self_attn."),
        ("freeze_mlp", True, ".mlp."),
        ("freeze_embeddings", True, "embed_tokens"),
        ("freeze_first_n_layers", 1, "layers.0."),
    ],
)
def test_freeze_touches_only_its_part(field, value, part):
    model = _llama(tied=False)
    frozen = set(freeze(model, FinetuneConfig(method="freeze", **{field: value})))
    for name, p in model.named_parameters():
        assert (name in frozen) == (part in name) == (not p.requires_grad), name
    assert frozen
