"""Turning one parsed record into a sample row, or into a specific reason why not.

`make_builder` compiles a mapping into one function that the importer calls per
record, on the hot path of a million-sample import: it returns a `Built` tuple or an
`Issue`. Rules: a sample has a user turn; a training sample ends with an assistant
turn that is not empty; an eval sample is a prompt with an optional reference; every
sample has a task_type "l1/l2" (l2 may be empty), whitespace-normalised.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, NamedTuple

import orjson

from app.datasets.formats import MAX_DEPTH, Issue, too_deep
from app.datasets.mapping import Mapping, get_path, split_path

ROLES = {"system", "user", "assistant", "tool"}
ROLE_ALIASES = {"function": "tool", "developer": "system", "human": "user", "bot": "assistant"}
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "model": "assistant",
    "system": "system",
    "function_call": "assistant",
    "observation": "tool",
    "tool": "tool",
    "function": "tool",
}
MAX_TASK = 200
MAX_TAG = 100


class Built(NamedTuple):
    line_no: int
    messages: str
    prompt: str
    answer: str
    reference: str | None
    task_l1: str
    task_l2: str
    tags: tuple[str, ...]
    has_system: bool
    n_turns: int
    prompt_chars: int
    answer_chars: int
    content_hash: str


class Bad(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason, self.detail = reason, detail


def normalise_ws(value: str) -> str:
    """NBSP, tabs, newlines and runs of spaces -> one ASCII space; stripped."""
    return " ".join(value.split())


class TaskNormaliser:
    """Splits "l1/l2" values and remembers which raw values whitespace normalisation changed (for the report)."""

    def __init__(self) -> None:
        self.changed: dict[str, list[Any]] = {}  # raw -> [normalised, count]
        self.n_changed = 0

    def norm(self, raw: str) -> str:
        clean = "/".join(normalise_ws(part) for part in raw.split("/"))
        if clean != raw:
            self.n_changed += 1
            entry = self.changed.get(raw)
            if entry is not None:
                entry[1] += 1
            elif len(self.changed) < 1000:
                self.changed[raw] = [clean, 1]
        return clean

    def report(self) -> dict[str, Any]:
        examples = sorted(self.changed.items(), key=lambda kv: -kv[1][1])[:20]
        return {
            "count": self.n_changed,
            "examples": [{"from": raw, "to": v[0], "count": v[1]} for raw, v in examples],
        }


def _text(value: Any, what: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise Bad("wrong_type", f"{what} is a boolean, not text")
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list) and all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in value):
        return "".join(p["text"] for p in value)  # OpenAI content parts
    raise Bad("wrong_type", f"{what} is {type(value).__name__}, not text")


def _tags(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list) and all(isinstance(t, str) for t in value):
        items = [p for t in value for p in t.split(",")]
    else:
        raise Bad("wrong_type", f"tags is {type(value).__name__}, not a list of strings")
    out = []
    for t in items:
        t = normalise_ws(t)
        if len(t) > MAX_TAG:
            raise Bad("tag_too_long", f"tag of {len(t)} characters > {MAX_TAG}")
        if t:
            out.append(t)
    return out


def _messages_turns(obj: dict, line_no: int) -> list[dict]:
    msgs = obj.get("messages")
    if msgs is None:
        raise Bad("wrong_type", "no 'messages' field")
    if not isinstance(msgs, list):
        raise Bad("wrong_type", f"messages is {type(msgs).__name__}, not a list")
    turns = []
    for i, m in enumerate(msgs, 1):
        # The common case, a {"role", "content"} turn with a known role and text, is kept as it is (hot path).
        if type(m) is dict and len(m) == 2 and m.get("role") in ROLES and type(m.get("content")) is str:
            turns.append(m)
            continue
        if not isinstance(m, dict):
            raise Bad("wrong_type", f"turn {i} is not an object")
        role = m.get("role")
        if not isinstance(role, str):
            raise Bad("wrong_type", f"turn {i} has no role")
        role = ROLE_ALIASES.get(role, role)
        if role not in ROLES:
            raise Bad("unknown_role", f"turn {i}: role {role!r}")
        content = _text(m.get("content"), f"turn {i} content")
        turn: dict[str, Any] = {"role": role, "content": content}
        for extra in ("name", "tool_calls", "tool_call_id"):
            if m.get(extra) is not None:
                if too_deep(m[extra]):  # kept as it is, so it must be writable (orjson: 255 levels)
                    raise Bad("too_deep", f"turn {i} {extra}: more than {MAX_DEPTH} levels of nesting")
                turn[extra] = m[extra]
        turns.append(turn)
    return turns


def _sharegpt_turns(obj: dict, line_no: int) -> list[dict]:
    conv = obj.get("conversations", obj.get("conversation"))
    if conv is None:
        raise Bad("wrong_type", "no 'conversations' field")
    if not isinstance(conv, list):
        raise Bad("wrong_type", f"conversations is {type(conv).__name__}, not a list")
    turns = []
    system = obj.get("system")
    if isinstance(system, str) and system.strip():
        turns.append({"role": "system", "content": system})
    for i, m in enumerate(conv, 1):
        if not isinstance(m, dict):
            raise Bad("wrong_type", f"turn {i} is not an object")
        who = m.get("from", m.get("role"))
        role = SHAREGPT_ROLES.get(who) if isinstance(who, str) else None
        if role is None:
            raise Bad("unknown_role", f"turn {i}: from {who!r}")
        turns.append({"role": role, "content": _text(m.get("value", m.get("content")), f"turn {i} value")})
    return turns


def make_builder(
    mapping: Mapping, *, kind: str, normaliser: TaskNormaliser
) -> Callable[[Any, int], Built | Issue]:
    """One function record -> Built | Issue for this mapping and dataset kind."""
    is_eval = kind == "eval"
    sys_p = split_path(mapping.system) if mapping.system else None
    prompt_ps = [split_path(p) for p in mapping.prompt if p]
    answer_p = split_path(mapping.answer) if mapping.answer else None
    ref_p = split_path(mapping.reference) if mapping.reference else None
    l1_p = split_path(mapping.task_l1) if mapping.task_l1 else None
    l2_p = split_path(mapping.task_l2) if mapping.task_l2 else None
    tags_p = split_path(mapping.tags) if mapping.tags else None
    prefix = normalise_ws(mapping.task_prefix)
    extra_tags = _tags(list(mapping.extra_tags))
    default = mapping.default_task.strip()
    turns_of = {"messages": _messages_turns, "sharegpt": _sharegpt_turns}.get(mapping.shape)
    dumps, blake = orjson.dumps, hashlib.blake2b

    cache: dict[tuple[str, str], tuple[str, str, str]] = {}  # task values repeat: split/normalise once

    def task_of(obj: dict) -> tuple[str, str]:
        raw1 = _text(get_path(obj, l1_p), "task_type") if l1_p else ""
        raw2 = _text(get_path(obj, l2_p), "task_type level 2") if l2_p else ""
        hit = cache.get((raw1, raw2))
        if hit is not None:
            if hit[2]:
                normaliser.norm(hit[2])  # a value that normalisation changed is counted each time
            return hit[0], hit[1]
        key = (raw1, raw2)
        if prefix:
            raw1, raw2 = prefix, (raw1 + ("/" + raw2 if raw2 else "")) if raw1 else raw2
        if not raw1.strip() and not raw2.strip():
            if not default:
                raise Bad(
                    "missing_task_type",
                    f"field {mapping.task_l1!r} is empty" if l1_p else "no task_type field mapped",
                )
            raw1 = default
        raw = raw1 + ("/" + raw2 if raw2 else "")
        value = normaliser.norm(raw)
        l1, _, l2 = value.partition("/")
        if not l1:
            raise Bad("missing_task_type", "level 1 of task_type is empty")
        if len(l1) > MAX_TASK or len(l2) > MAX_TASK:
            raise Bad("task_type_too_long", f"over {MAX_TASK} characters")
        if len(cache) < 100_000:
            cache[key] = (l1, l2, raw if value != raw else "")
        return l1, l2

    def build(obj: Any, line_no: int) -> Built | Issue:
        if not isinstance(obj, dict):
            return Issue(line_no, "not_object", f"a JSON {type(obj).__name__}, not an object")
        try:
            reference: str | None = None
            if turns_of is not None:
                turns = turns_of(obj, line_no)
                if ref_p:
                    reference = _text(get_path(obj, ref_p), "reference") or None
            else:
                turns = []
                if sys_p:
                    s = _text(get_path(obj, sys_p), "system")
                    if s.strip():
                        turns.append({"role": "system", "content": s})
                parts = [_text(get_path(obj, p), "prompt") for p in prompt_ps]
                prompt = "\n".join(p for p in parts if p.strip())
                if not prompt.strip():
                    raise Bad(
                        "missing_prompt", f"{'+'.join(mapping.prompt) or 'no prompt field mapped'} is empty"
                    )
                turns.append({"role": "user", "content": prompt})
                if is_eval:
                    rp = ref_p or answer_p
                    reference = (_text(get_path(obj, rp), "reference") if rp else "") or None
                else:
                    answer = _text(get_path(obj, answer_p), "answer") if answer_p else ""
                    if not answer.strip():
                        raise Bad("missing_answer", f"{mapping.answer or 'no answer field mapped'} is empty")
                    turns.append({"role": "assistant", "content": answer})
            if not turns:
                raise Bad("empty_turn", "no turns")
            n_user = 0
            for i, t in enumerate(turns, 1):
                if t["role"] == "user":
                    n_user += 1
                if not t["content"].strip() and not t.get("tool_calls"):
                    if i == len(turns) and t["role"] == "assistant" and not is_eval:
                        raise Bad("missing_answer", "the final assistant turn is empty")
                    raise Bad("empty_turn", f"turn {i} ({t['role']}) is empty")
            if n_user == 0:
                raise Bad("no_user_turn", "no user turn")
            last = turns[-1]["role"]
            if is_eval:
                if last == "assistant":  # an eval prompt's final answer is its reference
                    if reference is None:
                        reference = turns[-1]["content"] or None
                    turns.pop()
            elif last != "assistant":
                if not any(t["role"] == "assistant" for t in turns):
                    raise Bad("missing_answer", "no assistant turn")
                raise Bad("assistant_not_last", f"the last turn is {last}")
            l1, l2 = task_of(obj)
            tags = _tags(get_path(obj, tags_p)) if tags_p else []
            if extra_tags:
                tags += extra_tags
            tags_t = tuple(sorted(set(tags)))
        except Bad as bad:
            return Issue(line_no, bad.reason, bad.detail)
        prompt_s = "\n".join(t["content"] for t in turns if t["role"] != "assistant" and t["content"])
        answer_s = "\n".join(t["content"] for t in turns if t["role"] == "assistant" and t["content"])
        # PostgreSQL text cannot hold U+0000: one rule for both databases keeps a file importable everywhere.
        for what, value in (
            ("prompt", prompt_s),
            ("answer", answer_s),
            ("reference", reference or ""),
            ("task_type", l1 + l2),
            ("tags", "".join(tags_t)),
        ):
            if "\x00" in value:
                return Issue(line_no, "nul_character", f"{what} contains a NUL character (U+0000)")
        blob = dumps(turns, option=orjson.OPT_SORT_KEYS)
        return Built(
            line_no,
            blob.decode(),
            prompt_s,
            answer_s,
            reference,
            l1,
            l2,
            tags_t,
            turns[0]["role"] == "system",
            n_user,
            len(prompt_s),
            len(answer_s),
            blake(blob, digest_size=16).hexdigest(),
        )

    return build
