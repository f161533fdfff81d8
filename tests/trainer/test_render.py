"""Rendering uses each tokenizer's own template and masks exactly the assistant tokens, for ChatML, Llama-3 and Mistral."""

from pathlib import Path

import pytest

from trainer.render import (
    RenderError,
    RenderOptions,
    check_template,
    format_for_terminal,
    main,
    render_for_display,
    render_sample,
    set_chat_template,
)

CHAT = [
    {"role": "user", "content": "你好 world"},
    {"role": "assistant", "content": "不是"},
    {"role": "user", "content": "why?"},
    {"role": "assistant", "content": "Because."},
]

TOOLS = [
    {"role": "system", "content": "You can call tools."},
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"type": "function", "function": {"name": "weather", "arguments": {"city": "Paris"}}}],
    },
    {"role": "tool", "content": "sunny, 21C"},
    {"role": "assistant", "content": "It is sunny."},
]


def supervised_text(tok, r) -> list[str]:
    """Consecutive supervised tokens joined into strings (one string per supervised span)."""
    spans, cur = [], []
    for i, s in zip(r.input_ids, r.supervised, strict=True):
        if s:
            cur.append(i)
        elif cur:
            spans.append(tok.decode(cur))
            cur = []
    if cur:
        spans.append(tok.decode(cur))
    return spans


def test_chatml_ids_match_apply_chat_template(tokenizer):
    r = render_sample(tokenizer, CHAT)
    assert r.input_ids == list(tokenizer.apply_chat_template(CHAT)["input_ids"])
    assert len(r.supervised) == len(r.special) == len(r.input_ids)


def test_chatml_default_masks_every_assistant_turn_with_im_end(tokenizer):
    r = render_sample(tokenizer, CHAT)
    assert supervised_text(tokenizer, r) == ["不是<|im_end|>", "Because.<|im_end|>"]
    # the default system prompt the template inserts is template text: special, never supervised
    a = r.text.index("You are a helpful")
    b = r.text.index("<|im_end|>", a)
    sys_tokens = [i for i, (s, e) in enumerate(r.offsets) if a <= s < b]
    assert sys_tokens and all(r.special[i] and not r.supervised[i] for i in sys_tokens)


def test_special_flags(tokenizer):
    r = render_sample(tokenizer, CHAT)
    by_token = {}
    for i, sp in zip(r.input_ids, r.special, strict=True):
        by_token.setdefault(tokenizer.decode([i]), set()).add(sp)
    assert by_token["<|im_end|>"] == {True}
    assert by_token["<|im_start|>"] == {True}
    # content tokens are not special
    content_ids = tokenizer("Because", add_special_tokens=False)["input_ids"]
    pos = r.input_ids.index(content_ids[0])
    assert not r.special[pos] and r.supervised[pos]


def test_scope_last_and_no_eos(tokenizer):
    r = render_sample(tokenizer, CHAT, RenderOptions(scope="last"))
    assert supervised_text(tokenizer, r) == ["Because.<|im_end|>"]
    r = render_sample(tokenizer, CHAT, RenderOptions(eos_in_loss=False))
    assert supervised_text(tokenizer, r) == ["不是", "Because."]


def test_answer_repeated_in_prompt_and_assistant_first(tokenizer):
    msgs = [{"role": "user", "content": "不是 or 是? 答案：不是"}, {"role": "assistant", "content": "不是"}]
    assert supervised_text(tokenizer, render_sample(tokenizer, msgs)) == ["不是<|im_end|>"]
    # a conversation opening with the assistant: its header and the default system prompt stay prompt
    msgs = [{"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "hi"}]
    r = render_sample(tokenizer, msgs)
    assert supervised_text(tokenizer, r) == ["Hello!<|im_end|>"]


def test_prompt_loss_supervises_prompt(tokenizer):
    r = render_sample(tokenizer, CHAT, RenderOptions(prompt_loss=True))
    assert all(r.supervised)


def test_tool_calls_folded_for_chatml_and_tool_results_never_supervised(tokenizer):
    for opts in (RenderOptions(), RenderOptions(prompt_loss=True)):
        r = render_sample(tokenizer, TOOLS, opts)
        sup = "".join(supervised_text(tokenizer, r))
        # ChatML's template ignores tool_calls: they are written as <tool_call> blocks and trained on
        assert (
            '<tool_call>\n{"name": "weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>' in sup
        )
        assert "It is sunny.<|im_end|>" in sup
        assert "sunny, 21C" not in sup and "<|im_start|>tool" not in sup
    assert "Weather in Paris" not in "".join(supervised_text(tokenizer, render_sample(tokenizer, TOOLS)))


def test_llama3_template(llama3_tokenizer):
    tok = llama3_tokenizer
    r = render_sample(tok, CHAT)
    assert r.input_ids == list(tok.apply_chat_template(CHAT)["input_ids"])
    assert r.text.startswith("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n")
    assert supervised_text(tok, r) == ["不是<|eot_id|>", "Because.<|eot_id|>"]
    eot = tok.convert_tokens_to_ids("<|eot_id|>")
    assert all(sp for i, sp in zip(r.input_ids, r.special, strict=True) if i == eot)
    r = render_sample(tok, CHAT, RenderOptions(scope="last", eos_in_loss=False))
    assert supervised_text(tok, r) == ["Because."]


def test_llama3_native_tool_calls(llama3_tokenizer):
    r = render_sample(llama3_tokenizer, TOOLS)
    sup = supervised_text(llama3_tokenizer, r)
    assert sup == ['{"name": "weather", "parameters": {"city": "Paris"}}<|eot_id|>', "It is sunny.<|eot_id|>"]


def test_mistral_template_not_prefix_stable(mistral_tokenizer):
    tok = mistral_tokenizer
    msgs = [{"role": "system", "content": "Be brief."}, *CHAT]
    r = render_sample(tok, msgs)
    # the system prompt moved into the last user turn; the turns are still found in the full text
    assert "[INST] Be brief.\n\nwhy? [/INST]" in r.text
    assert r.input_ids == list(tok.apply_chat_template(msgs)["input_ids"])
    spans = supervised_text(tok, r)
    assert [s.strip() for s in spans] == ["不是</s>", "Because.</s>"]


def test_errors(tokenizer, no_assistant_tokenizer):
    with pytest.raises(RenderError, match="no assistant turn"):
        render_sample(tokenizer, [{"role": "user", "content": "hi"}])
    with pytest.raises(RenderError, match="no assistant role"):
        check_template(no_assistant_tokenizer)
    check_template(tokenizer)


def test_render_for_display(tokenizer):
    toks = render_for_display(tokenizer, {"messages": CHAT})
    r = render_sample(tokenizer, CHAT)
    assert "".join(t["text"] for t in toks) == r.text
    assert [t["token_id"] for t in toks] == r.input_ids
    assert set(toks[0]) == {"text", "token_id", "supervised", "special"}
    plain = format_for_terminal(toks, color=False)
    assert "[[不是<|im_end|>]]" in plain and "[[Because.<|im_end|>]]" in plain
    colored = format_for_terminal(toks, color=True)
    assert "\033[" in colored and "<|im_start|>" in colored


def test_cli(tokenizer_dir, tmp_path, write_jsonl, capsys):
    data = write_jsonl(
        tmp_path / "d.jsonl",
        [{"messages": CHAT, "task_type": "chat/x"}, {"messages": TOOLS, "task_type": "t"}],
    )
    assert main(["--model", str(tokenizer_dir), "--data", str(data), "--index", "1", "--color", "never"]) == 0
    out = capsys.readouterr().out
    assert (
        "d.jsonl:2" in out
        and "[[It is sunny.<|im_end|>]]" in out
        and "<|im_start|>tool\nsunny, 21C<|im_end|>" in out
    )


# ---- issue 10: masks that were silently wrong on other families' templates ----

CORPUS = Path(__file__).resolve().parents[1] / "assets" / "chat_templates"


def _with_template(tokenizer_dir, text: str, name: str, **specials):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    if specials:
        tok.add_special_tokens(specials)
    set_chat_template(tok, text, name)
    return tok


def runs(tok, r) -> list[str]:
    return [s.lstrip(" ") for s in supervised_text(tok, r)]


def test_generation_prompt_unlike_the_conversation_header_is_not_trained(tokenizer_dir):
    # Vicuna (LLaVA): ' ASSISTANT: ' inside the conversation, 'ASSISTANT:' as generation prompt; the
    # prefix-diff mask used to train ' ASSISTANT: ' with every answer.
    tok = _with_template(
        tokenizer_dir, (CORPUS / "vicuna_llava.jinja").read_text(), "vicuna", eos_token="</s>"
    )
    r = render_sample(tok, CHAT)
    assert runs(tok, r) == ["不是</s>", "Because.</s>"]
    assert not any("ASSISTANT" in s for s in supervised_text(tok, r))


def test_tool_call_only_turn_is_trained_without_eos(tokenizer_dir):
    # Qwen2.5 writes <tool_call> blocks itself; the call used to get no target once EOS left the loss.
    tok = _with_template(tokenizer_dir, (CORPUS / "qwen2_5_tools.jinja").read_text(), "qwen2.5")
    call = '<tool_call>\n{"name": "weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    assert runs(tok, render_sample(tok, TOOLS, RenderOptions(eos_in_loss=False))) == [call, "It is sunny."]
    assert runs(tok, render_sample(tok, TOOLS)) == [call + "<|im_end|>", "It is sunny.<|im_end|>"]


LLAMA3_EOT_BEFORE_HEADER = (
    "{{ bos_token }}{% for m in messages %}{% if not loop.first %}{{ '<|eot_id|>' }}{% endif %}"
    "{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' + m['content'] | trim }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|eot_id|><|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)


def test_end_of_turn_written_before_the_next_header_is_trained(tokenizer_dir):
    tok = _with_template(
        tokenizer_dir,
        LLAMA3_EOT_BEFORE_HEADER,
        "llama3-eot-before",
        bos_token="<|begin_of_text|>",
        additional_special_tokens=["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    )
    r = render_sample(tok, CHAT)
    # the last turn gets the <|eot_id|> the template would write before a next turn: the model learns to stop
    assert r.text == tok.apply_chat_template(CHAT, tokenize=False) + "<|eot_id|>"
    assert supervised_text(tok, r) == ["不是<|eot_id|>", "Because.<|eot_id|>"]
    r = render_sample(tok, CHAT, RenderOptions(eos_in_loss=False))
    assert supervised_text(tok, r) == ["不是", "Because."]
    assert r.text == tok.apply_chat_template(CHAT, tokenize=False)


ALWAYS_GENERATION_HEADER = "{% for m in messages %}{{ m['role'].capitalize() + ': ' + m['content'] + '\\n' }}{% endfor %}{{ 'Assistant:' }}"


def test_generation_header_appended_to_every_rendering_is_not_trained(tokenizer_dir):
    tok = _with_template(tokenizer_dir, ALWAYS_GENERATION_HEADER, "always-header")
    one = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4."}]
    r = render_sample(tok, one)
    assert r.text == "User: 2+2?\nAssistant: 4.\nAssistant:"
    assert runs(tok, r) == ["4.\n"]  # was "4.\nAssistant:"
    r = render_sample(tok, CHAT)  # was refused: earlier turns do not end with "Assistant:" in the full text
    assert r.text.endswith("Because.\nAssistant:")
    assert runs(tok, r) == ["不是\n", "Because.\n"]


LAST_TURN_WIDER = (
    "{% for m in messages %}{{ m['role'] + ': ' + m['content'] }}"
    "{% if loop.last %}{{ '\\n\\n' }}{% else %}{{ '\\n' }}{% endif %}{% endfor %}"
)


def test_turns_differing_by_trailing_whitespace_are_not_refused(tokenizer_dir):
    # The last turn ends with "\n\n", earlier ones with "\n": rendering is not prefix-stable, which the
    # prefix-diff mask refused without naming the template or the difference.
    tok = _with_template(tokenizer_dir, LAST_TURN_WIDER, "last-wider")
    r = render_sample(tok, CHAT)
    assert runs(tok, r) == ["不是\n", "Because.\n\n"]


def test_refusal_names_the_template_and_the_first_differing_text(tokenizer_dir):
    echo = "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}{{ 'Summary: ' + messages[-1]['content'] }}"
    tok = _with_template(tokenizer_dir, echo, "echo.jinja")
    with pytest.raises(
        RenderError,
        match=r"chat template echo\.jinja: message 3 \(assistant\) cannot be located.*Summary: Because",
    ) as e:
        render_sample(tok, CHAT)
    assert "first at char" in str(e.value)


def test_template_syntax_error_names_its_line(tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    bad = "{% for m in messages %}\n{{ m['content'] }\n{% endfor %}"
    with pytest.raises(RenderError, match=r"chat template bad\.jinja: syntax error at line 2"):
        set_chat_template(tok, bad, "bad.jinja")


def test_warns_when_a_template_drops_system_or_tool_messages(tokenizer, tokenizer_dir):
    assert check_template(tokenizer) == []  # SmolLM2's ChatML renders both
    tok = _with_template(tokenizer_dir, (CORPUS / "vicuna_1_1.jinja").read_text(), "vicuna_1_1.jinja")
    warnings = check_template(tok)
    assert len(warnings) == 2
    assert "vicuna_1_1.jinja drops system messages" in warnings[0]
    assert "vicuna_1_1.jinja drops tool messages" in warnings[1]
    tok = _with_template(tokenizer_dir, (CORPUS / "gemma.jinja").read_text(), "gemma.jinja")
    assert any(
        "cannot render a system message" in w and "System role not supported" in w
        for w in check_template(tok)
    )


def test_cli_with_a_chat_template_file(tokenizer_dir, tmp_path, write_jsonl, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", [{"messages": CHAT, "task_type": "chat/x"}])
    tpl = str(CORPUS / "orca_hashes.jinja")
    argv = ["--model", str(tokenizer_dir), "--chat-template", tpl, "--data", str(data), "--color", "never"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "### User:\n你好 world\n\n### Assistant:\n[[不是\n\n]]### User:" in out


def test_cli_refusal_is_one_line(tokenizer_dir, tmp_path, write_jsonl, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", [{"messages": CHAT, "task_type": "chat/x"}])
    bad = tmp_path / "bad.jinja"
    bad.write_text("{% for m in messages %}\n{{ m['content'] }\n{% endfor %}")
    assert main(["--model", str(tokenizer_dir), "--chat-template", str(bad), "--data", str(data)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "d.jsonl:1: chat template" in err and "syntax error at line 2" in err
