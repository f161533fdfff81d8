"""Render a chat sample with the tokenizer's own template and compute its loss mask, for any template.

Why not ``{% generation %}`` markers: almost no shipped template has them (SmolLM2's ChatML has none,
which is why TRL's ``assistant_only_loss`` refuses it). Instead each message is located by rendering the
whole conversation again with that one message changed and diffing the two strings:

- content: replaced by a sentinel of private-use characters absent from the rendering, so the edit's
  ends are exact; what differs is the message's text as the template writes it (after trim, strip, ...);
- tool calls the template writes itself: removed; what disappears is the calls' text (``<tool_call>``
  blocks, ``[TOOL_CALLS]``, JSON);
- the closing of an assistant turn (``<|im_end|>``, ``<|eot_id|>``, `` </s>``, a plain ``"\n"``): learnt
  once per template from a probe conversation, as the text between an answer and the next user turn.
  A template that writes it only before a next turn (some Llama-3 variants) gets it appended after the
  last assistant turn when EOS is in the loss, so the model still learns to stop.

Nothing depends on the generation prompt matching the in-conversation header, on prefix stability, or on
the template's syntax. The full conversation is tokenised once with character offsets, and each token
takes its flags from the characters it covers. Where a message cannot be located faithfully (changing it
changes other text too), ``RenderError`` names the template and the first differing text.

Supervised: each assistant message's content and tool calls, plus its closing when ``eos_in_loss``;
never headers, system, user or tool-result text (``prompt_loss`` adds everything but tool results).
Two flags per token: ``supervised`` (the token is a training target) and ``special`` (a special token
or template text such as role headers, the default system prompt and the end-of-turn marker, i.e.
anything outside the messages' own content and tool calls). Special targets get their own loss channel.

CLI, to see a sample as the model sees it::

    python -m trainer.render --model DIR [--chat-template FILE.jinja] --data file.jsonl --index N [--scope last]
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


def template_name(tokenizer) -> str:
    """How messages name the template: its file when the run gave one, else the tokenizer's directory."""
    return tokenizer.__dict__.get("_sftlab_template_name") or getattr(tokenizer, "name_or_path", "") or "?"


def _render(tokenizer, msgs: list[dict], *, gen: bool = False, tools=None) -> str:
    if not msgs:
        # Several templates index messages[0]; the empty conversation renders to nothing by definition.
        return ""
    try:
        return tokenizer.apply_chat_template(msgs, tools=tools, tokenize=False, add_generation_prompt=gen)
    except Exception as exc:  # jinja raise_exception(), TypeError on None content, ...
        name = template_name(tokenizer)
        if type(exc).__name__ == "TemplateSyntaxError":
            msg = getattr(exc, "message", None) or str(exc)
            raise RenderError(
                f"chat template {name}: syntax error at line {getattr(exc, 'lineno', '?')}: {msg}"
            ) from exc
        raise RenderError(f"chat template {name} failed on {len(msgs)} message(s): {exc}") from exc


_TOOL_PROBE = "__sftlab_probe_tool__"


def _cache(tokenizer, what: str) -> dict:
    # Per tokenizer and per template text: a run may swap the template (model.chat_template_file).
    return tokenizer.__dict__.setdefault(f"_sftlab_{what}", {})


def _template_renders_tool_calls(tokenizer) -> bool:
    """Whether the template writes ``tool_calls`` itself (cached per tokenizer/template)."""
    cache = _cache(tokenizer, "tool_calls")
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
            cache[key] = _TOOL_PROBE in _render(tokenizer, probe)
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


def _diff(full: str, other: str) -> tuple[int, int, int]:
    """``(a, b, b_other)``: ``full[a:b]`` is what ``other[a:b_other]`` replaces (one edit, the rest equal)."""
    a = _common_prefix(full, other)
    room = min(len(full), len(other)) - a
    s = min(_common_prefix(full[::-1], other[::-1]), room)
    return a, len(full) - s, len(other) - s


def _special_strings(tokenizer) -> list[str]:
    toks = set(tokenizer.all_special_tokens)
    for tok in getattr(tokenizer, "added_tokens_decoder", {}).values():
        if getattr(tok, "special", False):
            toks.add(tok.content)
    return sorted((t for t in toks if t), key=len, reverse=True)


def _first_special(text: str, specials: list[str]) -> int | None:
    """End of the first special token in ``text`` (the longest one where several start together)."""
    hits = [(p, -len(s)) for s in specials if (p := text.find(s)) >= 0]
    if not hits:
        return None
    p, neg = min(hits)
    return p - neg


def _snippet(text: str, at: int, width: int = 40) -> str:
    return repr(text[max(0, at - width) : at + width])


def _sentinel(full: str) -> str:
    # Private-use characters that occur nowhere in the rendering: the edit's ends are then exact even when
    # the content is empty or starts/ends like the template text around it.
    used = set(full)
    free = (c for c in map(chr, range(0xE000, 0xF900)) if c not in used)
    return f"{next(free)}sftlab{next(free)}"


def _closing_text(tokenizer) -> str | None:
    """What the template writes to close an assistant turn, learnt once from a probe conversation.

    The text between an answer and the next user turn, cut through its first special token (ChatML
    ``<|im_end|>``, Llama-3 ``<|eot_id|>``, Llama-2 `` </s>``); without a special token, that text less the
    header the template writes before a user message (``"\\nUser: "`` -> ``"\\n"``). ``None`` when the
    probe cannot be rendered. Found this way, the closing is known even for templates that write it only
    when a next turn follows (and never after the last one).
    """
    cache = _cache(tokenizer, "closing")
    key = tokenizer.chat_template
    if key not in cache:
        q, a, q2 = "sftlab probe question", "sftlab probe answer", "sftlab probe next"
        cache[key] = None
        try:
            two = _render(
                tokenizer,
                [
                    {"role": "user", "content": q},
                    {"role": "assistant", "content": a},
                    {"role": "user", "content": q2},
                ],
            )
            one = _render(tokenizer, [{"role": "user", "content": q}])
            last = _render(tokenizer, [{"role": "user", "content": q}, {"role": "assistant", "content": a}])
        except RenderError:
            return None
        i, j = two.find(a), two.find(q2)
        if 0 <= i < j:
            gap = two[i + len(a) : j]
            end = _first_special(gap, _special_strings(tokenizer))
            tail = last[last.find(a) + len(a) :] if a in last else ""
            if end is None and tail:
                # What follows the answer whether or not a turn comes next ("\n", "</s>"), but not the
                # start of the next header the two share ("\n\n### " before "User:" and "Assistant:").
                end = _common_prefix(gap, tail)
                if end < min(len(gap), len(tail)):
                    end = next(
                        (i for i in range(1, end) if gap[i - 1].isspace() and not gap[i].isspace()), end
                    )
            elif end is None:
                # Written only before a next turn: the gap less the header of a user message.
                opening = one[: one.find(q)] if q in one else ""
                end = len(gap) - min(_common_prefix(gap[::-1], opening[::-1]), len(gap))
            cache[key] = gap[:end]
    return cache[key]


@dataclass
class _Span:
    role: str
    content: tuple[int, int] | None  # the message's own text (an assistant's payload) in the rendering
    end: int = -1  # where the message's turn ends (after its closing); -1 until known
    payload: tuple[int, int] | None = None  # assistant: content and tool calls, what the model writes
    closing: tuple[int, int] | None = None  # assistant: the end-of-turn text after the payload


def _locate(tokenizer, msgs: list[dict], full: str, tools) -> list[_Span]:
    """Find each message in ``full`` by rendering the conversation again with that message changed.

    Whatever differs is the message's text as the template writes it (after trim, strip, ...), whatever
    the template does around it: nothing depends on headers, generation prompts or prefix stability.
    """
    sentinel = _sentinel(full)
    spans = []
    for k, m in enumerate(msgs):
        variant = [*msgs[:k], {**m, "content": sentinel}, *msgs[k + 1 :]]
        other = _render(tokenizer, variant, tools=tools)
        content = None
        if other != full:
            a, b, b_other = _diff(full, other)
            if other[a:b_other].count(sentinel) != 1 or (m["role"] == "assistant" and sentinel not in other):
                if m["role"] == "assistant":
                    raise RenderError(
                        f"chat template {template_name(tokenizer)}: message {k} (assistant) cannot be located:"
                        f" changing its content also changes other text, first at char {a}:"
                        f" {_snippet(full, a)} becomes {_snippet(other, a)}"
                    )
            else:
                content = (a, b)
        span = _Span(m["role"], content)
        if m["role"] == "assistant":
            span.payload = content
            if m.get("tool_calls"):  # the template writes them itself: they are the payload too
                bare = [*msgs[:k], {kk: v for kk, v in m.items() if kk != "tool_calls"}, *msgs[k + 1 :]]
                a, b, b_bare = _diff(full, _render(tokenizer, bare, tools=tools))
                while a == b_bare and a > 0 and full[a - 1] == full[b - 1]:
                    # An insertion's place is ambiguous where it starts like the text after it ("<" of
                    # "<tool_call>" before "<|im_end|>"): take the leftmost, where the calls begin.
                    a, b, b_bare = a - 1, b - 1, b_bare - 1
                if a < b:
                    if content is None or content[0] == content[1]:
                        while a < b and full[a].isspace():  # the separator after the header, not the call
                            a += 1
                        span.payload = (a, b)
                    else:
                        span.payload = (min(a, content[0]), max(b, content[1]))
            if span.payload is None and (m["content"] or m.get("tool_calls")):
                raise RenderError(
                    f"chat template {template_name(tokenizer)}: message {k} (assistant) does not appear in"
                    " the rendering: the template drops it"
                )
        spans.append(span)
    return spans


def _close_turns(tokenizer, spans: list[_Span], full: str, *, append: bool) -> str:
    """Set each turn's end and each assistant's closing; returns ``full``, with (``append``) a closing
    appended when the template writes it only before a next turn and the conversation ends with an
    assistant turn."""
    specials = _special_strings(tokenizer)
    closing = _closing_text(tokenizer)
    starts = [s.content[0] if s.content else None for s in spans]
    prev_end = 0
    for k, s in enumerate(spans):
        anchor = s.payload if s.role == "assistant" else s.content
        if anchor is None:
            s.end = prev_end
            continue
        at = anchor[1]
        nxt = next((p for p in starts[k + 1 :] if p is not None and p >= at), len(full))
        gap = full[at:nxt]
        if s.role == "assistant" and closing is not None and gap.startswith(closing):
            stop = at + len(closing)
        elif append and s.role == "assistant" and closing and k == len(spans) - 1 and closing not in gap:
            full = full + closing  # e.g. Llama-3 variants write <|eot_id|> before the next header only
            stop = len(full)
        else:
            first = _first_special(gap, specials)
            stop = at + (first if first is not None else 0)
        if s.role == "assistant":
            s.closing = (at, stop)
        while stop < len(full) and stop < nxt and full[stop].isspace():
            stop += 1  # filler between turns ("\n" after <|im_end|>) belongs to the turn it follows
        s.end = stop
        prev_end = stop
    return full


def render_sample(
    tokenizer, messages: list[dict], options: RenderOptions | None = None, *, tools=None
) -> RenderedSample:
    """Render ``messages`` with the tokenizer's chat template; flag supervised and special tokens.

    Supervised: each assistant turn's content and tool calls, plus (``eos_in_loss``) the text that closes
    it as the template writes it; never headers, system, user or tool-result text (``prompt_loss`` adds
    system, user and headers, never tool results).

    >>> r = render_sample(tok, [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}])
    >>> [tok.decode(i) for i, s in zip(r.input_ids, r.supervised) if s]  # doctest: +SKIP
    ['2', '<|im_end|>']
    """
    options = options or RenderOptions()
    msgs = normalise_messages(tokenizer, messages)
    roles = [m.get("role") for m in msgs]
    if "assistant" not in roles:
        raise RenderError("no assistant turn")
    full = _render(tokenizer, msgs, tools=tools)
    spans = _locate(tokenizer, msgs, full, tools)
    # Appending a closing the rendering lacks only makes sense when it is a target.
    full = _close_turns(tokenizer, spans, full, append=options.eos_in_loss)

    n = len(full)
    sup = bytearray(n)
    content = bytearray(n)
    for s in spans:
        for region in (s.content, s.payload):
            if region:
                content[region[0] : region[1]] = b"\x01" * (region[1] - region[0])
    if options.prompt_loss:
        sup[:] = b"\x01" * n
    last_asst = max(i for i, r in enumerate(roles) if r == "assistant")
    start = 0
    for i, s in enumerate(spans):
        turn_start, start = start, max(start, s.end)
        if s.role in TOOL_ROLES:
            sup[turn_start : s.end] = bytes(max(0, s.end - turn_start))  # tool results never carry loss
            continue
        if s.role != "assistant" or (options.scope == "last" and i != last_asst) or s.closing is None:
            continue
        a, b = s.payload if s.payload else (s.closing[0], s.closing[0])
        c0, c1 = s.closing
        sup[a:b] = b"\x01" * (b - a)
        sup[c0:c1] = (b"\x01" if options.eos_in_loss else b"\x00") * (c1 - c0)

    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    offsets = [tuple(o) for o in enc["offset_mapping"]]
    special_ids = set(tokenizer.all_special_ids)
    for tok in getattr(tokenizer, "added_tokens_decoder", {}).items():
        if getattr(tok[1], "special", False):
            special_ids.add(tok[0])
    # A token running from a closing into the next header (" USER" after a plain " " closing) would
    # train the header: the header's first character stops supervision of the token covering it.
    stop = bytearray(n + 1)
    for sp in spans:
        c0, c1 = sp.closing or (0, 0)
        if c0 < c1 < n and not sup[c1] and not full[c1].isspace():
            stop[sp.closing[1]] = 1
    supervised, special = [], []
    for tid, (s, e) in zip(ids, offsets, strict=True):
        e = max(e, s + 1)
        supervised.append(1 in sup[s:e] and 1 not in stop[s + 1 : e])
        special.append(tid in special_ids or 1 not in content[s:e])
    return RenderedSample(ids, supervised, special, full, offsets)


def set_chat_template(tokenizer, text: str, name: str) -> None:
    """Replace the tokenizer's chat template (``model.chat_template_file``); a syntax error names its line.

    ``name`` (the file) is how later errors and warnings refer to the template.
    """
    tokenizer.chat_template = text
    tokenizer.__dict__["_sftlab_template_name"] = name
    try:
        _render(tokenizer, [{"role": "user", "content": "x"}])
    except RenderError as exc:
        if "syntax error" in str(exc):
            raise
        # other failures (a template that wants a system message first, ...) surface per sample


def check_template(tokenizer) -> list[str]:
    """Fail before training when the chat template cannot carry an assistant turn; return warnings.

    Renders a probe conversation and checks that the assistant's text appears and is supervised;
    a template without an assistant role either raises, drops the turn or hides it in the prompt.
    The warnings name what the template silently leaves out (system prompts, tool results).
    """
    if not getattr(tokenizer, "chat_template", None):
        raise RenderError("the tokenizer has no chat template")
    name = template_name(tokenizer)
    probe = "sftlab probe answer 42"
    msgs = [{"role": "user", "content": "sftlab probe question"}, {"role": "assistant", "content": probe}]
    try:
        r = render_sample(tokenizer, msgs)
    except RenderError as exc:
        if "syntax error" in str(exc):
            raise
        raise RenderError(
            f"chat template {name} has no assistant role (or one that cannot be located): {exc}"
        ) from exc
    if probe not in r.text:
        raise RenderError(
            f"chat template {name} has no assistant role: an assistant message does not appear in its output"
        )
    if r.n_supervised == 0:
        raise RenderError(f"chat template {name} has no assistant role: no assistant token could be located")
    warnings = []
    system = "sftlab probe system prompt"
    try:
        text = _render(tokenizer, [{"role": "system", "content": system}, *msgs])
        if system not in text:
            warnings.append(f"chat template {name} drops system messages: their text is not in the rendering")
    except RenderError as exc:
        warnings.append(f"chat template {name} cannot render a system message: {exc}")
    result = "sftlab probe tool result"
    call = {"type": "function", "function": {"name": "probe", "arguments": {}}}
    tool_msgs = [
        msgs[0],
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "content": result},
        msgs[1],
    ]
    try:
        text = _render(tokenizer, normalise_messages(tokenizer, tool_msgs))
        if result not in text:
            warnings.append(
                f"chat template {name} drops tool messages: tool results are not in the rendering"
            )
    except RenderError as exc:
        warnings.append(f"chat template {name} cannot render tool messages: {exc}")
    return warnings


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
    parser.add_argument(
        "--chat-template", default=None, help="Jinja chat template file replacing the tokenizer's own"
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
    try:
        if args.chat_template:
            with open(args.chat_template, encoding="utf-8") as fh:
                set_chat_template(tokenizer, fh.read(), args.chat_template)
        tokens = render_for_display(tokenizer, {"messages": sample.messages, "tools": sample.tools}, options)
    except (RenderError, OSError) as exc:  # one line, never a traceback
        print(f"{args.data}:{sample.line}: {exc}", file=sys.stderr)
        return 2
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
