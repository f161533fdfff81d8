"""Model directories for sampling: plain HF checkpoints, or LoRA adapters merged into their base first.

vLLM serves LoRA only through its own adapter machinery (and per-request LoRARequests); merging gives one
plain checkpoint that both backends load the same way, so their answers stay comparable.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from trainer.sampling_spec import SpecError

TORCH_DTYPES = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "auto": "auto",
}


def adapter_base(model_dir: Path) -> Path | None:
    """The base model of a LoRA adapter directory; None for a plain checkpoint."""
    cfg_path = model_dir / "adapter_config.json"
    if not cfg_path.is_file():
        return None
    base = json.loads(cfg_path.read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base or not (Path(base) / "config.json").is_file():
        raise SpecError(f"adapter {model_dir}: base model {base!r} is not a local model directory")
    return Path(base)


def load_tokenizer(model_dir: Path) -> Any:
    """The tokenizer saved beside the weights (an adapter's own copy first, else its base's)."""
    from transformers import AutoTokenizer

    base = adapter_base(model_dir)
    source = model_dir if base is None or (model_dir / "tokenizer_config.json").is_file() else base
    try:
        return AutoTokenizer.from_pretrained(str(source))
    except Exception as exc:
        raise SpecError(f"cannot load a tokenizer from {source}: {' '.join(str(exc).split())}") from None


def load_model(model_dir: Path, dtype: str) -> Any:
    """An eval-mode causal LM on CPU or the first GPU; adapters are merged in memory."""
    from transformers import AutoModelForCausalLM

    base = adapter_base(model_dir)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(base or model_dir), dtype=TORCH_DTYPES[dtype])
    except Exception as exc:
        raise SpecError(f"cannot load {base or model_dir}: {' '.join(str(exc).split())}") from None
    if base is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(model_dir)).merge_and_unload()
    if torch.cuda.is_available():
        model = model.to("cuda")
    return model.eval()


def merged_dir(model_dir: Path, dtype: str, tokenizer: Any) -> tuple[Path, Path | None]:
    """(directory vLLM loads, temporary directory to remove afterwards or None)."""
    if adapter_base(model_dir) is None:
        return model_dir, None
    tmp = Path(tempfile.mkdtemp(prefix="sftlab-merged-"))
    try:
        model = load_model(model_dir, dtype).to("cpu")
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp, tmp
