"""A sampling request, checked before anything is queued: what the form and the API both produce.

Every refusal is a SamplingError naming the field it is about, so the form can show it beside the field
and the API can answer 422 with the same words.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from app.models import SamplingBackend, SamplingMode
from trainer.sampling_spec import SampleParams as Params  # the program's own: one set of defaults

MAX_N = 16
MAX_NEW_TOKENS = 32768
MAX_STOP = 8
MAX_STOP_CHARS = 200
MAX_SYSTEM_CHARS = 20000


class SamplingError(ValueError):
    """A request that cannot be run; `field` is the form field (or API key) at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class Filter:
    """Which samples of the version become prompts (the dataset browser's filters)."""

    task: str = ""  # "l1" or "l1/l2"
    tag: str = ""
    q: str = ""  # text search over prompt and answer


@dataclass
class SamplingRequest:
    model: str
    dataset_id: int
    version: int
    filter: Filter = field(default_factory=Filter)
    params: Params = field(default_factory=Params)
    mode: str = SamplingMode.chat.value
    backend: str = SamplingBackend.vllm.value
    system_prompt: str | None = None  # replaces or inserts the system message
    chat_template_file: str = ""  # "": the model's own
    max_model_len: int = 2048

    def spec_params(self) -> dict[str, Any]:
        return asdict(self.params)


def _number(raw: dict, key: str, default: float, *, lo: float, hi: float, integer: bool) -> Any:
    value = raw.get(key, default)
    if value is None or value == "":
        return default
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        raise SamplingError(key, f"{key} must be a number, not {value!r}") from None
    if not math.isfinite(number) or not lo <= number <= hi:
        raise SamplingError(key, f"{key} must be between {lo:g} and {hi:g}, not {value!r}")
    if integer:
        if number != int(number):
            raise SamplingError(key, f"{key} must be a whole number, not {value!r}")
        return int(number)
    return number


def _stop(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        # The form's textarea: one stop string a line, written with \n escapes for newlines themselves.
        value = [line.replace("\\n", "\n") for line in value.splitlines() if line]
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        raise SamplingError("stop", "stop must be a list of non-empty strings")
    if len(value) > MAX_STOP or any(len(s) > MAX_STOP_CHARS for s in value):
        raise SamplingError("stop", f"at most {MAX_STOP} stop strings of at most {MAX_STOP_CHARS} characters")
    return value


def _text(raw: dict, key: str, *, limit: int = 1000) -> str:
    value = raw.get(key) or ""
    if not isinstance(value, str):
        raise SamplingError(key, f"{key} must be a string")
    if len(value) > limit:
        raise SamplingError(key, f"{key} is longer than {limit} characters")
    return value.strip()


def _choice(raw: dict, key: str, choices: type[SamplingMode] | type[SamplingBackend], default: str) -> str:
    value = raw.get(key) or default
    allowed = [c.value for c in choices]
    if value not in allowed:
        raise SamplingError(key, f"{key} must be one of {', '.join(allowed)}, not {value!r}")
    return str(value)


def parse_request(raw: Any) -> SamplingRequest:
    """A SamplingRequest from the API's JSON or the form's flat values; SamplingError on bad input.

    The form is flat (temperature=..., task=...); the API may nest `params` and `filter`.
    """
    if not isinstance(raw, dict):
        raise SamplingError("body", "expected a JSON object")
    params = raw.get("params") or {}
    flt = raw.get("filter") or {}
    if not isinstance(params, dict) or not isinstance(flt, dict):
        raise SamplingError("body", "params and filter must be objects")
    p = {**{k: v for k, v in raw.items() if k in Params.__dataclass_fields__}, **params}
    f = {**{k: v for k, v in raw.items() if k in Filter.__dataclass_fields__}, **flt}
    model = _text(raw, "model")
    if not model:
        raise SamplingError("model", "give a model: run:<id>/step-N, run:<id>, embedded or a local path")
    dataset_id = _number(raw, "dataset_id", 0, lo=0, hi=2**31 - 1, integer=True)
    version = _number(raw, "version", 0, lo=0, hi=2**31 - 1, integer=True)
    if not dataset_id or not version:
        raise SamplingError("dataset_id", "give a dataset and a version number")
    system = raw.get("system_prompt")
    if system is not None and (not isinstance(system, str) or len(system) > MAX_SYSTEM_CHARS):
        raise SamplingError(
            "system_prompt", f"system_prompt must be a string of at most {MAX_SYSTEM_CHARS} characters"
        )
    return SamplingRequest(
        model=model,
        dataset_id=dataset_id,
        version=version,
        filter=Filter(
            task=_text(f, "task", limit=401), tag=_text(f, "tag", limit=100), q=_text(f, "q", limit=200)
        ),
        params=Params(
            temperature=_number(p, "temperature", 0.7, lo=0, hi=5, integer=False),
            top_p=_number(p, "top_p", 1.0, lo=0.01, hi=1, integer=False),
            top_k=_number(p, "top_k", -1, lo=-1, hi=100000, integer=True),
            max_new_tokens=_number(p, "max_new_tokens", 256, lo=1, hi=MAX_NEW_TOKENS, integer=True),
            n=_number(p, "n", 1, lo=1, hi=MAX_N, integer=True),
            seed=_number(p, "seed", 0, lo=0, hi=2**31 - 1, integer=True),
            stop=_stop(p.get("stop")),
        ),
        mode=_choice(raw, "mode", SamplingMode, SamplingMode.chat.value),
        backend=_choice(raw, "backend", SamplingBackend, SamplingBackend.vllm.value),
        system_prompt=(system or None) if isinstance(system, str) else None,
        chat_template_file=_text(raw, "chat_template_file"),
        max_model_len=_number(raw, "max_model_len", 2048, lo=16, hi=1 << 20, integer=True),
    )
