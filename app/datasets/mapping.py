"""Which fields of an uploaded record become system, prompt, answer, reference, task_type and tags.

Paths are dotted with optional list indexes: `instances[0].input` (or `instances.0.input`).
A plain key met on a list applies to its first element, so `instances.input` works too.
`guess_mapping` proposes a mapping from the first rows; the user corrects it on the
mapping page or in the API call.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from app.datasets.formats import detect_shape, record_shape

_INDEX = re.compile(r"\[(\d+)\]")
_MISSING = object()


@dataclass
class Mapping:
    shape: str = "fields"  # messages | sharegpt | fields
    system: str = ""
    prompt: list[str] = field(default_factory=list)  # joined with "\n", empty values skipped
    answer: str = ""
    reference: str = ""
    task_l1: str = ""  # a value "l1/l2" is split when task_l2 is not mapped
    task_l2: str = ""
    task_prefix: str = ""  # constant level 1; the task_l1 field then becomes level 2
    default_task: str = ""  # "l1/l2" used when a record has none
    tags: str = ""  # a list, or a comma-separated string
    extra_tags: list[str] = field(default_factory=list)  # added to every sample

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Mapping:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known and v is not None}
        for key in ("prompt", "extra_tags"):
            if isinstance(values.get(key), str):
                values[key] = [p.strip() for p in values[key].split(",") if p.strip()]
        for key, value in values.items():  # a wrong type must fail here, not as a TypeError inside the job
            if key in ("prompt", "extra_tags"):
                if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
                    raise ValueError(
                        f"mapping.{key} must be a list of field names or a comma-separated string"
                    )
            elif not isinstance(value, str):
                raise ValueError(f"mapping.{key} must be a string")
        if values.get("shape") not in (None, "messages", "sharegpt", "fields"):
            raise ValueError(f"unknown shape {values['shape']!r}: use messages, sharegpt or fields")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def split_path(path: str) -> list[str]:
    return [p for p in _INDEX.sub(r".\1", path.strip()).split(".") if p != ""]


def get_path(obj: Any, path: str | list[str]) -> Any:
    """The value at a dotted path, or None when any step is missing."""
    parts = split_path(path) if isinstance(path, str) else path
    cur = obj
    for part in parts:
        if isinstance(cur, list):
            if part.isdigit():
                i = int(part)
                cur = cur[i] if i < len(cur) else _MISSING
            else:
                cur = cur[0].get(part, _MISSING) if cur and isinstance(cur[0], dict) else _MISSING
        elif isinstance(cur, dict):
            cur = cur.get(part, _MISSING)
        else:
            return None
        if cur is _MISSING:
            return None
    return cur


def list_paths(rows: list[Any], limit: int = 200) -> list[str]:
    """Every leaf path found in the preview rows, in first-seen order (lists through their first element)."""
    seen: dict[str, None] = {}

    def walk(value: Any, prefix: str, depth: int) -> None:
        if len(seen) >= limit or depth > 4:
            return
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{prefix}.{k}" if prefix else str(k), depth + 1)
            if prefix:
                seen.setdefault(prefix, None)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            seen.setdefault(prefix, None)
            walk(value[0], f"{prefix}[0]", depth + 1)
        elif prefix:
            seen.setdefault(prefix, None)

    for row in rows:
        walk(row, "", 0)
    return list(seen)


PROMPT_KEYS = ("prompt", "question", "query", "input", "text", "content", "inputs", "source")
ANSWER_KEYS = (
    "response",
    "answer",
    "output",
    "target",
    "completion",
    "std_answer",
    "chosen",
    "targets",
    "label",
)
SYSTEM_KEYS = ("system", "system_prompt")
TASK_KEYS = ("task_type", "task_l1", "task", "type", "class", "category", "task_name")
TASK_L2_KEYS = ("task_l2", "subcategory", "sub_category", "subtype", "sub_type", "subclass", "subtask")
TAG_KEYS = ("tags", "tag", "labels")
NAMED_REFERENCE_KEYS = ("reference", "references", "ref", "gold", "gold_answer", "std_answer")
REFERENCE_KEYS = (*NAMED_REFERENCE_KEYS, "answer")


def _first(keys: tuple[str, ...], available: dict[str, str], exclude: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    for key in keys:
        if key in available and available[key] not in exclude:
            return available[key]
    return ""


def guess_mapping(rows: list[Any], *, kind: str = "train") -> Mapping:
    """A first mapping from the preview rows; good for messages, ShareGPT, Alpaca, pCLUE and BELLE as they come."""
    shape = record_shape(detect_shape(rows))
    dicts = [r for r in rows if isinstance(r, dict)]
    available: dict[str, str] = {}  # lower-case key -> real key
    for r in dicts:
        for k in r:
            available.setdefault(str(k).lower(), str(k))
    m = Mapping(shape=shape)
    m.task_l1 = _first(TASK_KEYS, available)
    if m.task_l1:  # a second level only under a first: category + subcategory, type + subtype
        m.task_l2 = _first(TASK_L2_KEYS, available, exclude={m.task_l1})
    m.tags = _first(TAG_KEYS, available)
    # a field named as a reference is one whatever the kind (a train import ignores it)
    m.reference = _first(NAMED_REFERENCE_KEYS, available)
    if shape != "fields":
        return m
    m.system = _first(SYSTEM_KEYS, available)
    if "instruction" in available:
        m.prompt = [available["instruction"]]
        if "input" in available:
            m.prompt.append(available["input"])
        elif "instances" in available:
            m.prompt.append(f"{available['instances']}[0].input")
            m.answer = f"{available['instances']}[0].output"
        if "output" in available:
            m.answer = available["output"]
        if not m.task_l1 and "name" in available:
            m.task_l1 = available["name"]  # BELLE seed tasks: the task name is the fine-grained type
    else:
        p = _first(PROMPT_KEYS, available)
        m.prompt = [p] if p else []
    if not m.answer:
        # std_answer is both: BELLE's eval set imported as training data takes it as the answer
        ref_only = {m.reference} if m.reference.lower() not in ANSWER_KEYS else set()
        m.answer = _first(ANSWER_KEYS, available, exclude=set(m.prompt) | ref_only)
    if kind == "eval":
        m.reference = m.reference or _first(REFERENCE_KEYS, available, exclude=set(m.prompt)) or m.answer
    return m


def guess_kind(rows: list[Any], mapping: Mapping, filename: str) -> str:
    """eval when the file says so by name, it has a reference but no answer, or many preview rows lack
    an answer."""
    name = filename.lower()
    if "eval" in name or "test" in name or "bench" in name:
        return "eval"
    if mapping.shape == "fields" and mapping.reference and not mapping.answer:
        return "eval"
    if mapping.shape == "fields" and mapping.answer and rows:
        empty = sum(1 for r in rows if not str(get_path(r, mapping.answer) or "").strip())
        if empty > len(rows) // 4:
            return "eval"
    return "train"
