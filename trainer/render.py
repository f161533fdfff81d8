"""Render a chat sample with the tokenizer's own template and compute its loss mask, for any template.

Why not ``{% generation %}`` markers: almost no shipped template has them (SmolLM2's ChatML has none,
which is why TRL's ``assistant_only_loss`` refuses it). Instead each turn is located by rendering
prefixes of the conversation and diffing the strings:

- ``render(msgs[:k])`` is the text before turn k, ``render(msgs[:k+1])`` the text through it, and
  ``render(msgs[:k], add_generation_prompt=True)`` ends where the model starts writing an assistant
  turn. The assistant *body* (what the model must produce: content, tool calls, end-of-turn token) is
  what lies between the generation prompt and the end of the turn.
- The full conversation is tokenised once with character offsets, and each token takes its flags
  from the characters it covers. Nothing depends on the template's syntax, only on the property that
  rendering is (mostly) prefix-stable; where a template rewrites earlier text, the turn's text is
  searched for in the full rendering, and a template that defeats both fails loudly (``RenderError``).

Two flags per token: ``supervised`` (the token is a training target) and ``special`` (a special token
or template text such as role headers, the default system prompt and the end-of-turn marker, i.e.
anything outside the messages' own content). Special targets get their own loss channel.

CLI, to see a sample as the model sees it::

    python -m trainer.render --model DIR --data file.jsonl --index N [--scope last] [--prompt-loss]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Literal

TOOL_ROLES = ("tool", "ipython", "function")
ROLES = ("system", "user", "assistant", *TOOL_ROLES)


class RenderError(ValueError):
    """The sample cannot be rendered, or its turns cannot be located, with this template."""


@dataclass(frozen=True)
class RenderOptions:
    """Which tokens carry loss."""

    scope: Literal["all", "last"] = "all"  # every assistant turn, or only the last one
    prompt_loss: bool = False  # also train on system/user text and headers (never on tool results)
    eos_in_loss: bool = True  # the end-of-turn token that closes an assistant turn is a target


@dataclass
class RenderedSample:
    """One rendered conversation: token ids and per-token flags (all lists have the same length)."""

    input_ids: list[int]
    supervised: list[bool]  # token i is a training target (predicted from tokens < i)
    special: list[bool]  # token i is a special token or template text
    text: str = ""
    offsets: list[tuple[int, int]] = field(default_factory=list)

    @property
    def n_supervised(self) -> int:
        # token 0 has no predecessor, so it can never be predicted
        return sum(self.supervised[1:])


def _render(tokenizer, msgs: list[dict], *, gen: bool, tools) -> str:
    if not msgs:
        # Several templates index messages[0]; the empty conversation renders to nothing by definition.
        return ""
    try:
        return tokenizer.apply_chat_template(msgs, tools=tools, tokenize=False, add_generation_prompt=gen)
    except Exception as exc:  # jinja raise_exception(), TypeError on None content, ...
        raise RenderError(f"chat template failed on {len(msgs)} message(s): {exc}") from exc


_TOOL_PROBE = "__sftlab_probe_tool__"


def _template_renders_tool_calls(tokenizer) -> bool:
    """Whether the template writes ``tool_calls`` itself (cached per tokenizer/template)."""
    cache = tokenizer.__dict__.setdefault("_sftlab_tool_calls", {})
    key = tokenizer.chat_template
    if key not in cache:
        probe = [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"type": "function", "function": {"name": _TOOL_PROBE, "arguments": {}}}],
            },
        ]
        try:
            cache[key] = _TOOL_PROBE in _render(tokenizer, probe, gen=False, tools=None)
        except RenderError:
            cache[key] = False
    return cache[key]


def _tool_calls_text(calls: list) -> str:
    """Hermes/Qwen-style ``<tool_call>`` blocks, for templates that ignore ``tool_calls``.

    Silently dropping the calls would train the model to answer without ever calling the tool.
    """
    parts = []
    for call in calls:
        fn = call.get("function", call)
        args = fn.get("arguments", {})
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                pass
        body = json.dumps({"name": fn.get("name"), "arguments": args}, ensure_ascii=False)
        parts.append(f"<tool_call>\n{body}\n</tool_call>")
    return "\n".join(parts)


def normalise_messages(tokenizer, messages: list[dict]) -> list[dict]:
    """Copy messages into what the template expects: string content; tool calls folded in if needed."""
    native = _template_renders_tool_calls(tokenizer)
    out = []
    for m in messages:
        m = dict(m)
        if m.get("content") is None:
            m["content"] = ""
        if m.get("tool_calls") and not native:
            calls = _tool_calls_text(m.pop("tool_calls"))
            m["content"] = f"{m['content']}\n{calls}" if m["content"] else calls
        out.append(m)
    return out


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # binary search on the longest equal prefix
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _special_strings(tokenizer) -> list[str]:
    toks = set(tokenizer.all_special_tokens)
    for tok in getattr(tokenizer, "added_tokens_decoder", {}).values():
        if getattr(tok, "special", False):
            toks.add(tok.content)
    return sorted((t for t in toks if t), key=len, reverse=True)


@dataclass
class _Turn:
    role: str
    start: int  # turn start in the full text (header included)
    body: int  # where the assistant starts writing (== start for non-assistant turns)
    end: int  # turn end
    content: tuple[int, int] | None  # the message's own content inside the turn, if found


def _locate_turns(tokenizer, msgs: list[dict], full: str, tools) -> list[_Turn]:
    turns: list[_Turn] = []
    cursor = 0
    before = ""
    for k, m in enumerate(msgs):
        after = _render(tokenizer, msgs[: k + 1], gen=False, tools=tools)
        seg_from = _common_prefix(before, after)  # == len(before) for prefix-stable templates
        body_from = seg_from
        if m["role"] == "assistant":
            head = _render(tokenizer, msgs[:k], gen=True, tools=tools) if k else ""
            # The generation prompt may differ from the in-context header (e.g. an empty think block),
            # so the body starts where both renderings stop agreeing, never before the turn itself.
            body_from = max(seg_from, _common_prefix(head, after))
        if full.startswith(after):
            shift = 0
        else:
            # The template rewrites earlier text when more turns follow: find this turn's own text.
            pos = full.find(after[seg_from:], cursor) if after[seg_from:] else -1
            if pos < 0 and m["role"] in ("system", "user"):
                # Prompt turns only matter for the special flags (and prompt loss): fall back to their
                # content alone, without moving the cursor (e.g. Mistral v3 moves the system prompt
                # into the last user turn, so it is found later in the text).
                text = m.get("content") or ""
                pos = full.find(text, cursor) if text else -1
                span = (pos, pos + len(text)) if pos >= 0 else None
                a, b = span or (cursor, cursor)
                turns.append(_Turn(m["role"], a, a, b, span))
                before = after
                continue
            if pos < 0:
                raise RenderError(
                    f"message {k} ({m['role']}): the chat template renders this turn differently in the"
                    " full conversation, so its tokens cannot be located"
                )
            shift = pos - seg_from
        start, body, end = seg_from + shift, body_from + shift, len(after) + shift
        content = None
        text = m.get("content") or ""
        for needle in (text, text.strip()):
            if needle:
                pos = full.find(needle, body, end)
                if pos >= 0:
                    content = (pos, pos + len(needle))
                    break
        if k == 0 and m["role"] == "assistant" and content:
            # No generation prompt exists before the first message: the body starts at its content.
            body = content[0]
        turns.append(_Turn(m["role"], start, body, end, content))
        cursor = end
        before = after
    return turns


def render_sample(
    tokenizer, messages: list[dict], options: RenderOptions | None = None, *, tools=None
) -> RenderedSample:
    """Render ``messages`` with the tokenizer's chat template; flag supervised and special tokens.

    >>> r = render_sample(tok, [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}])
    >>> [tok.decode(i) for i, s in zip(r.input_ids, r.supervised) if s]  # doctest: +SKIP
    ['2', '<|im_end|>']
    """
    options = options or RenderOptions()
    msgs = normalise_messages(tokenizer, messages)
    roles = [m.get("role") for m in msgs]
    if "assistant" not in roles:
        raise RenderError("no assistant turn")
    full = _render(tokenizer, msgs, gen=False, tools=tools)
    turns = _locate_turns(tokenizer, msgs, full, tools)
    specials = _special_strings(tokenizer)

    n = len(full)
    sup = bytearray(n)
    content = bytearray(n)
    for t in turns:
        if t.content:
            content[t.content[0] : t.content[1]] = b"\x01" * (t.content[1] - t.content[0])
    if options.prompt_loss:
        sup[:] = b"\x01" * n
    last_asst = max(i for i, r in enumerate(roles) if r == "assistant")
    for i, t in enumerate(turns):
        if t.role in TOOL_ROLES:
            sup[t.start : t.end] = bytes(t.end - t.start)  # tool results never carry loss
            continue
        if t.role != "assistant" or (options.scope == "last" and i != last_asst):
            continue
        content_end = t.content[1] if t.content else t.body
        # End of turn: through the first special token after the content (ChatML "<|im_end|>", Llama-3
        # "<|eot_id|>"), leaving out template filler after it (the "\n" ChatML writes after <|im_end|>
        # is never generated). Templates with plain-text terminators keep the whole turn.
        eot = t.end
        hits = [(full.find(s, content_end, t.end), s) for s in specials]
        hits = [(p, s) for p, s in hits if p >= 0]
        if hits:
            p, s = min(hits)
            eot = p + len(s)
        if options.eos_in_loss:
            sup[t.body : eot] = b"\x01" * (eot - t.body)
        else:
            sup[t.body : content_end] = b"\x01" * (content_end - t.body)
            sup[content_end:eot] = bytes(eot - content_end)

    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    special_ids = set(tokenizer.all_special_ids)
    for tok in getattr(tokenizer, "added_tokens_decoder", {}).items():
        if getattr(tok[1], "special", False):
            special_ids.add(tok[0])
    supervised, special = [], []
    for tid, (s, e) in zip(ids, offsets, strict=True):
        e = max(e, s + 1)
        supervised.append(1 in sup[s:e])
        special.append(tid in special_ids or 1 not in content[s:e])
    return RenderedSample(ids, supervised, special, full, offsets)


def check_template(tokenizer) -> None:
    """Fail before training when the chat template cannot carry an assistant turn.

    Renders a probe conversation and checks that the assistant's text appears and is supervised;
    a template without an assistant role either raises, drops the turn or hides it in the prompt.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise RenderError("the tokenizer has no chat template")
    probe = "sftlab probe answer 42"
    msgs = [{"role": "user", "content": "sftlab probe question"}, {"role": "assistant", "content": probe}]
    r = render_sample(tokenizer, msgs)
    if probe not in r.text:
        raise RenderError(
            "the chat template has no assistant role: an assistant message does not appear in its output"
        )
    if r.n_supervised == 0:
        raise RenderError("the chat template has no assistant role: no assistant token could be located")


def render_for_display(tokenizer, sample: dict, options: RenderOptions | None = None) -> list[dict]:
    """Tokens of a sample as the model sees them, for the web UI.

    Returns one dict per token: ``text`` (the characters it covers; a CJK character split over several
    byte tokens is given to the first of them, so the texts concatenate to the rendering),
    ``token_id``, ``supervised`` (a training target) and ``special`` (template/special token).
    """
    r = render_sample(tokenizer, sample["messages"], options, tools=sample.get("tools"))
    out = []
    covered = 0
    for tid, (s, e), sv, sp in zip(r.input_ids, r.offsets, r.supervised, r.special, strict=True):
        text = r.text[max(s, covered) : e] if e > covered else ""
        covered = max(covered, e)
        out.append({"text": text, "token_id": tid, "supervised": sv, "special": sp})
    return out


_GREEN, _MAGENTA, _DIM, _RESET = "\033[32;1m", "\033[35m", "\033[2m", "\033[0m"


def format_for_terminal(tokens: list[dict], *, color: bool = True, show_ids: bool = False) -> str:
    """Supervised text in green (or ``[[...]]`` without colour), special tokens magenta, masked dim."""
    out = []
    prev_style = None
    prev_sup = False
    for t in tokens:
        text = f"{t['text']}({t['token_id']})" if show_ids else t["text"]
        if color:
            if t["supervised"]:
                style = _GREEN + _MAGENTA if t["special"] else _GREEN
            else:
                style = _MAGENTA + _DIM if t["special"] else _DIM
            if style != prev_style:  # one escape sequence per run of same-styled tokens
                out.append(_RESET + style)
                prev_style = style
            out.append(text)
        else:
            if t["supervised"] and not prev_sup:
                out.append("[[")
            if not t["supervised"] and prev_sup:
                out.append("]]")
            out.append(text)
            prev_sup = t["supervised"]
    if color:
        out.append(_RESET)
    elif prev_sup:
        out.append("]]")
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Show a sample as the model sees it (loss-masked tokens marked)."
    )
    parser.add_argument(
        "--model", default=None, help="model or tokenizer directory (default: the embedded model)"
    )
    parser.add_argument("--data", required=True, help="messages JSONL")
    parser.add_argument("--index", type=int, default=0, help="0-based sample (line) index")
    parser.add_argument("--scope", choices=["all", "last"], default="all")
    parser.add_argument("--prompt-loss", action="store_true")
    parser.add_argument("--no-eos-loss", action="store_true")
    parser.add_argument("--ids", action="store_true", help="print token ids after each token")
    parser.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer

    from trainer.data import read_samples
    from trainer.embedded import ensure_tokenizer

    model = args.model or str(ensure_tokenizer())
    tokenizer = AutoTokenizer.from_pretrained(model)
    samples = read_samples(args.data)
    if not 0 <= args.index < len(samples):
        parser.error(f"--index {args.index} out of range (the file has {len(samples)} samples)")
    sample = samples[args.index]
    options = RenderOptions(scope=args.scope, prompt_loss=args.prompt_loss, eos_in_loss=not args.no_eos_loss)
    tokens = render_for_display(tokenizer, {"messages": sample.messages, "tools": sample.tools}, options)
    color = args.color == "always" or (
        args.color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    )
    n_sup = sum(t["supervised"] for t in tokens[1:])
    print(
        f"# {args.data}:{sample.line}  task_type={sample.task_type!r}  tokens={len(tokens)}  supervised={n_sup}"
    )
    legend = (
        "green = supervised, magenta = special/template (bold if supervised), dim = masked"
        if color
        else "[[ ]] = supervised"
    )
    print(f"# {legend}")
    print(format_for_terminal(tokens, color=color, show_ids=args.ids))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
