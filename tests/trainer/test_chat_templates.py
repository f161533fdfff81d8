"""Masks on a corpus of public chat templates: decoded supervised tokens are each assistant message and its closing, nothing else.

The expected text is written here from the messages and what each template is known to write (its
end-of-turn text, how it renders tool calls); nothing is taken from trainer.render's own splitting.
"""

from pathlib import Path

import pytest

from trainer.render import RenderOptions, render_sample

CORPUS = Path(__file__).resolve().parents[1] / "assets" / "chat_templates"

# How the trainer folds tool calls into content for templates that ignore ``tool_calls`` (Hermes style),
# and how Qwen2.5 writes them itself: the same text.
CALL = '<tool_call>\n{"name": "weather", "arguments": {"city": "Paris"}}\n</tool_call>'

# name: special tokens to add, the closing each assistant turn must end with (as the template writes it),
# whether a system message is rendered, whether tool messages can be rendered (and tool calls are trained).
# Koala's closing is a plain " " that the tokenizer merges into the next " USER"/" GPT" token: nothing to train.
TEMPLATES = {
    "qwen2_5_tools": dict(specials={}, closing="<|im_end|>", system=True, tools=True),
    "llama3": dict(
        specials={
            "bos_token": "<|begin_of_text|>",
            "extra": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
        },
        closing="<|eot_id|>",
        system=True,
        tools=True,
    ),
    "llama3_2_tools": dict(
        specials={
            "bos_token": "<|begin_of_text|>",
            "extra": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
        },
        closing="<|eot_id|>",
        system=True,
        tools=True,
        call='{"name": "weather", "parameters": {"city": "Paris"}}',
    ),
    "llama2": dict(
        specials={"bos_token": "<s>", "eos_token": "</s>"}, closing=" </s>", system=True, tools=False
    ),
    "mistral_v0_1": dict(
        specials={"bos_token": "<s>", "eos_token": "</s>"}, closing="</s>", system=False, tools=False
    ),
    "gemma": dict(
        specials={"bos_token": "<bos>", "extra": ["<start_of_turn>", "<end_of_turn>"]},
        closing="<end_of_turn>",
        system=False,
        tools=False,
    ),
    "phi3": dict(
        specials={"extra": ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]},
        closing="<|end|>",
        system=True,
        tools=True,
    ),
    "zephyr": dict(
        specials={"eos_token": "</s>", "extra": ["<|system|>", "<|user|>", "<|assistant|>"]},
        closing="</s>",
        system=True,
        tools=True,
    ),
    "vicuna_llava": dict(specials={"eos_token": "</s>"}, closing="</s>", system=False, tools=False),
    "vicuna_1_1": dict(specials={"extra": ["</s>"]}, closing="</s>", system=True, tools=True),
    "koala": dict(specials={}, closing="", system=True, tools=True),
    "orca_hashes": dict(specials={}, closing="\n\n", system=True, tools=True),
    "openchat_3_5": dict(
        specials={"bos_token": "<s>", "extra": ["<|end_of_turn|>"]},
        closing="<|end_of_turn|>",
        system=True,
        tools=True,
    ),
    "deepseek_llm": dict(
        specials={"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"},
        closing="<｜end▁of▁sentence｜>",
        system=True,
        tools=True,
    ),
    "alpaca": dict(specials={"eos_token": "</s>"}, closing="</s>", system=True, tools=False),
    "trl_simple": dict(specials={}, closing="\n\n", system=True, tools=True),
}

ONE = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "It is 4."}]
MULTI = [
    {"role": "user", "content": "你好 world"},
    {"role": "assistant", "content": "不是"},
    {"role": "user", "content": "why?"},
    {"role": "assistant", "content": "Because."},
]
SYSTEM = [{"role": "system", "content": "Answer briefly."}, *MULTI]
TOOLS = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"type": "function", "function": {"name": "weather", "arguments": {"city": "Paris"}}}],
    },
    {"role": "tool", "content": "sunny, 21C"},
    {"role": "assistant", "content": "It is sunny."},
]


def test_corpus_is_complete():
    files = sorted(p.stem for p in CORPUS.glob("*.jinja"))
    assert files == sorted(TEMPLATES) and len(files) >= 10
    for p in CORPUS.glob("*.jinja"):
        assert p.read_text(encoding="utf-8").startswith("{#- source: "), p.name


@pytest.fixture(scope="module", params=sorted(TEMPLATES))
def template(request, tokenizer_dir):
    from transformers import AutoTokenizer

    name = request.param
    spec = TEMPLATES[name]
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    specials = dict(spec["specials"])
    extra = specials.pop("extra", [])
    if extra:
        specials["additional_special_tokens"] = extra
    if specials:
        tok.add_special_tokens(specials)
    tok.chat_template = (CORPUS / f"{name}.jinja").read_text(encoding="utf-8")
    return name, spec, tok


def supervised_runs(tok, r) -> list[str]:
    """Each maximal run of supervised tokens, decoded; a leading space merged into the first token is dropped."""
    runs, cur = [], []
    for i, s in zip(r.input_ids, r.supervised, strict=True):
        if s:
            cur.append(i)
        elif cur:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    return [tok.decode(ids, clean_up_tokenization_spaces=False).lstrip(" ") for ids in runs]


def expected(messages, closing: str, *, last_only=False, call: str = CALL) -> list[str]:
    out = []
    for m in messages:
        if m["role"] != "assistant":
            continue
        text = m["content"] or ""
        if m.get("tool_calls"):
            text = f"{text}\n{call}" if text else call
        out.append(text + closing)
    return out[-1:] if last_only else out


def conversations(spec):
    convs = [ONE, MULTI]
    if spec["system"]:
        convs.append(SYSTEM)
    if spec["tools"]:
        convs.append(TOOLS)
    return convs


def test_mask_is_each_answer_and_its_closing(template):
    name, spec, tok = template
    for msgs in conversations(spec):
        r = render_sample(tok, msgs)
        if msgs is not TOOLS:  # the template's own rendering, a closing appended where it writes none last
            plain = tok.apply_chat_template(msgs, tokenize=False)
            assert r.text in (plain, plain + spec["closing"]), name
        assert supervised_runs(tok, r) == expected(msgs, spec["closing"], call=spec.get("call", CALL)), (
            name,
            msgs,
        )


def test_without_eos_and_last_only(template):
    name, spec, tok = template
    for msgs in conversations(spec):
        r = render_sample(tok, msgs, RenderOptions(eos_in_loss=False))
        assert supervised_runs(tok, r) == expected(msgs, "", call=spec.get("call", CALL)), (name, msgs)
        r = render_sample(tok, msgs, RenderOptions(scope="last"))
        assert supervised_runs(tok, r) == expected(
            msgs, spec["closing"], last_only=True, call=spec.get("call", CALL)
        ), (name, msgs)


def test_system_user_and_tool_text_never_supervised(template):
    name, spec, tok = template
    for msgs in conversations(spec):
        r = render_sample(tok, msgs)
        sup = "".join(supervised_runs(tok, r))
        for m in msgs:
            if m["role"] != "assistant" and m["content"]:
                assert m["content"] not in sup, (name, m)
        # with prompt loss, tool results still carry none
        if any(m["role"] == "tool" for m in msgs) and "sunny, 21C" in r.text:
            r = render_sample(tok, msgs, RenderOptions(prompt_loss=True))
            assert "sunny, 21C" not in "".join(supervised_runs(tok, r)), name


SCHEMA = [
    {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "Weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


@pytest.mark.parametrize("name", ["qwen2_5_tools", "llama3_2_tools"])
def test_tool_definitions_stay_out_of_the_mask(name, tokenizer_dir):
    from transformers import AutoTokenizer

    spec = TEMPLATES[name]
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    specials = dict(spec["specials"])
    extra = specials.pop("extra", [])
    tok.add_special_tokens({**specials, **({"additional_special_tokens": extra} if extra else {})})
    tok.chat_template = (CORPUS / f"{name}.jinja").read_text(encoding="utf-8")
    r = render_sample(tok, TOOLS, tools=SCHEMA)
    assert "Weather in a city" in r.text  # the template wrote the tool definitions
    assert supervised_runs(tok, r) == expected(TOOLS, spec["closing"], call=spec.get("call", CALL))
