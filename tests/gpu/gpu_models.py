"""Models for the GPU tests (a module of its own: ``conftest`` names collide across test folders)."""

import random

import torch

from trainer.data import TokenizedSample

VOCAB = 1024  # the small models' vocabulary


def small_model(arch: str, *, vocab: int, hidden: int = 256, layers: int = 2, seed: int = 0):
    """A random fp32 Qwen2 or Llama with GQA (8 query heads, 2 key/value heads)."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    config_cls, model_cls = {
        "qwen2": (Qwen2Config, Qwen2ForCausalLM),
        "llama": (LlamaConfig, LlamaForCausalLM),
    }[arch]
    config = config_cls(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=8,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model_cls(config).float()


def random_samples(n: int, seed: int = 0) -> list[TokenizedSample]:
    """Random token samples of 16-400 tokens, the answer a random tail of each."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        length = rng.randint(16, 400)
        prompt = rng.randint(4, length - 2)
        ids = [rng.randrange(3, VOCAB) for _ in range(length)]
        sup = [False] * prompt + [True] * (length - prompt)
        out.append(TokenizedSample(ids, sup, [False] * length, "t", "", i))
    return out
