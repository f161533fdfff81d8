"""The sampling program's input: spec.json and the prompts file, validated before any model loads.

Both backends receive the same `Prompt`s: the text is rendered and tokenized here, once, by the model's own
tokenizer, so `prompt_text` is exactly what was sent and vLLM gets token ids rather than re-tokenizing
(its default would add special tokens the chat template already wrote).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BACKENDS = ("vllm", "transformers")
MODES = ("chat", "continuation")
DTYPES = ("float32", "bfloat16", "float16", "auto")


class SpecError(ValueError):
    """Bad input (spec, model directory or prompts): the program exits 2 with this one-line message."""


@dataclass
class SampleParams:
    """Sampling parameters, with vLLM's meaning (temperature 0 is greedy; top_k -1 is off)."""

    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = -1
    max_new_tokens: int = 256
    n: int = 1
    seed: int = 0
    stop: list[str] = field(default_factory=list)


@dataclass
class SampleSpec:
    """spec.json (trainer/sample.py's docstring and the worker contract describe each field)."""

    backend: str
    model_dir: str
    mode: str
    prompts_file: str
    output: str
    params: SampleParams
    chat_template_file: str = ""
    system_prompt: str | None = None
    skip_ids: list[str] = field(default_factory=list)
    max_model_len: int = 2048
    dtype: str = "float32"
    # vLLM's KV-cache reservation (on CPU: a fraction of host RAM); None picks 0.3 on CPU, 0.85 on GPU.
    gpu_memory_utilization: float | None = None
    # transformers only: prompts per generate() call, whose answers are written when its longest row ends;
    # small, so that the first answers come early (trainer/sampling_hf.py weighs it). vLLM streams each.
    batch_size: int = 8

    def params_dict(self) -> dict[str, Any]:
        return asdict(self.params)


@dataclass
class Prompt:
    """One prompt as sent: rendered text, its token ids and the seed its completions sample with."""

    id: str
    text: str
    token_ids: list[int]
    seed: int


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise SpecError(message)


def _params(raw: Any) -> SampleParams:
    _need(isinstance(raw, dict), "params must be an object")
    known = set(SampleParams.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    _need(not unknown, f"unknown params: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    p = SampleParams(**raw)
    _need(
        isinstance(p.temperature, int | float) and p.temperature >= 0,
        f"params.temperature must be >= 0, got {p.temperature!r}",
    )
    _need(
        isinstance(p.top_p, int | float) and 0 < p.top_p <= 1,
        f"params.top_p must be in (0, 1], got {p.top_p!r}",
    )
    _need(
        isinstance(p.top_k, int) and (p.top_k == -1 or p.top_k >= 1),
        f"params.top_k must be -1 (off) or >= 1, got {p.top_k!r}",
    )
    _need(
        isinstance(p.max_new_tokens, int) and p.max_new_tokens >= 1,
        f"params.max_new_tokens must be an integer >= 1, got {p.max_new_tokens!r}",
    )
    _need(isinstance(p.n, int) and p.n >= 1, f"params.n must be an integer >= 1, got {p.n!r}")
    _need(isinstance(p.seed, int), f"params.seed must be an integer, got {p.seed!r}")
    _need(
        isinstance(p.stop, list) and all(isinstance(s, str) and s for s in p.stop),
        "params.stop must be a list of non-empty strings",
    )
    return p


def parse_spec(raw: Any, *, base: Path) -> SampleSpec:
    """Validate spec.json's content; relative paths are taken from `base` (the job's directory)."""
    _need(isinstance(raw, dict), "spec must be a JSON object")
    required = ("backend", "model_dir", "mode", "prompts_file", "output")
    missing = [k for k in required if not raw.get(k)]
    _need(not missing, f"spec is missing {', '.join(missing)}")
    # fields this version does not know are ignored: the worker may send newer ones
    fields = {k: v for k, v in raw.items() if k in SampleSpec.__dataclass_fields__}
    fields["params"] = _params(raw.get("params", {}))
    spec = SampleSpec(**fields)
    _need(spec.backend in BACKENDS, f"backend must be one of {', '.join(BACKENDS)}, got {spec.backend!r}")
    _need(spec.mode in MODES, f"mode must be one of {', '.join(MODES)}, got {spec.mode!r}")
    _need(spec.dtype in DTYPES, f"dtype must be one of {', '.join(DTYPES)}, got {spec.dtype!r}")
    _need(
        isinstance(spec.max_model_len, int) and spec.max_model_len >= 2,
        f"max_model_len must be an integer >= 2, got {spec.max_model_len!r}",
    )
    _need(
        isinstance(spec.batch_size, int) and spec.batch_size >= 1,
        f"batch_size must be an integer >= 1, got {spec.batch_size!r}",
    )
    gmu = spec.gpu_memory_utilization
    _need(
        gmu is None or (isinstance(gmu, int | float) and 0 < gmu <= 1),
        "gpu_memory_utilization must be in (0, 1]",
    )
    _need(
        isinstance(spec.skip_ids, list) and all(isinstance(i, str) for i in spec.skip_ids),
        "skip_ids must be a list of strings",
    )
    _need(
        spec.system_prompt is None or isinstance(spec.system_prompt, str),
        "system_prompt must be a string or null",
    )
    spec.prompts_file = str(base / spec.prompts_file)
    spec.output = str(base / spec.output)
    if spec.chat_template_file:
        spec.chat_template_file = str(base / spec.chat_template_file)
        _need(
            Path(spec.chat_template_file).is_file(),
            f"chat_template_file not found: {spec.chat_template_file}",
        )
    model = Path(spec.model_dir)
    _need(model.is_absolute(), f"model_dir must be an absolute path, got {spec.model_dir!r}")
    _need(
        (model / "config.json").is_file() or (model / "adapter_config.json").is_file(),
        f"model_dir {spec.model_dir} has neither config.json nor adapter_config.json",
    )
    return spec


def read_prompts(spec: SampleSpec) -> list[dict]:
    """The prompts file's rows, checked against the mode: {"id", "messages"} (chat) or {"id", "text"}."""
    path = Path(spec.prompts_file)
    _need(path.is_file(), f"prompts_file not found: {path}")
    rows, seen = [], set()
    key = "messages" if spec.mode == "chat" else "text"
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SpecError(f"{path.name} line {lineno}: not JSON ({exc.msg})") from None
            _need(isinstance(row, dict), f"{path.name} line {lineno}: expected an object")
            pid = row.get("id")
            _need(
                isinstance(pid, str) and pid != "",
                f"{path.name} line {lineno}: id must be a non-empty string",
            )
            _need(pid not in seen, f"{path.name} line {lineno}: duplicate id {pid!r}")
            seen.add(pid)
            value = row.get(key)
            if spec.mode == "chat":
                _need(
                    isinstance(value, list)
                    and value
                    and all(
                        isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role")
                        for m in value
                    ),
                    f"{path.name} line {lineno}: chat mode needs messages, a list of {{role, content}}",
                )
            else:
                _need(
                    isinstance(value, str),
                    f"{path.name} line {lineno}: continuation mode needs text, a string",
                )
            rows.append(row)
    return rows


def with_system_prompt(messages: list[dict], system_prompt: str | None) -> list[dict]:
    """Replace the first message when it is a system message, else insert one; None leaves them as they are."""
    if system_prompt is None:
        return messages
    rest = messages[1:] if messages and messages[0].get("role") == "system" else messages
    return [{"role": "system", "content": system_prompt}, *rest]


def prompt_seed(seed: int, prompt_id: str) -> int:
    """A per-prompt seed: each prompt's samples stay the same whatever else is in the batch or was skipped."""
    digest = hashlib.sha256(f"{seed}\0{prompt_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def render_prompts(spec: SampleSpec, rows: list[dict], tokenizer: Any) -> list[Prompt]:
    """Render (chat template or raw text) and tokenize each row; a prompt with no room to answer is bad input."""
    template = Path(spec.chat_template_file).read_text(encoding="utf-8") if spec.chat_template_file else None
    if spec.mode == "chat":
        _need(
            template is not None or getattr(tokenizer, "chat_template", None),
            "chat mode: the model has no chat template and no chat_template_file was given",
        )
    out = []
    for row in rows:
        if spec.mode == "chat":
            messages = with_system_prompt(row["messages"], spec.system_prompt)
            try:
                text = tokenizer.apply_chat_template(
                    messages, chat_template=template, add_generation_prompt=True, tokenize=False
                )
            except Exception as exc:  # jinja errors and raise_exception() from templates
                raise SpecError(
                    f"prompt {row['id']}: chat template failed: {' '.join(str(exc).split())}"
                ) from None
            # the template wrote the special tokens itself
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        else:
            text = row["text"]
            ids = tokenizer(text)["input_ids"]
        _need(
            len(ids) < spec.max_model_len,
            f"prompt {row['id']} has {len(ids)} tokens, no room to answer within max_model_len {spec.max_model_len}",
        )
        out.append(
            Prompt(
                id=row["id"], text=text, token_ids=list(ids), seed=prompt_seed(spec.params.seed, row["id"])
            )
        )
    return out


def max_tokens_for(spec: SampleSpec, prompt: Prompt) -> int:
    """max_new_tokens, cut so prompt + answer fit in max_model_len (the answer then ends with "length")."""
    return min(spec.params.max_new_tokens, spec.max_model_len - len(prompt.token_ids))
