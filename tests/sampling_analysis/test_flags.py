"""Identity flags: self-identification caught in English and Chinese, mere mentions kept apart."""

import pytest

from app.sampling_analysis.flags import identity_flags, identity_summary


def _names(hits: list[dict]) -> list[str]:
    return [h["name"] for h in hits]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("I am Qwen, a large language model.", ["Qwen"]),
        ("I'm ChatGPT.", ["ChatGPT"]),
        ("I’m Claude, made by Anthropic.", ["Claude", "Anthropic"]),
        ("Sorry, as an AI developed by OpenAI, I cannot do that.", ["OpenAI"]),
        ("As ChatGPT, I think so.", ["ChatGPT"]),
        ("I am a large language model trained by Google.", ["Google"]),
        ("I am GPT-4.", ["GPT"]),
        ("I was developed by Meta.", ["Meta"]),
        ("My name is LLaMA.", ["LLaMA"]),
        ("I am SmolLM, trained by Hugging Face.", ["SmolLM", "Hugging Face"]),
        ("I am DeepSeek-V3.", ["DeepSeek"]),
        ("作为ChatGPT，我不能回答。", ["ChatGPT"]),
        ("我是通义千问。", ["Qwen"]),
        ("我是由阿里云开发的通义千问。", ["Alibaba", "Qwen"]),
        ("我是一个由OpenAI训练的语言模型。", ["OpenAI"]),
        ("我是文心一言，由百度开发。", ["ERNIE", "Baidu"]),
        ("我是智谱清言。", ["ChatGLM"]),
        ("我是ChatGLM。", ["ChatGLM"]),
        ("我是Kimi，由月之暗面开发。", ["Kimi", "Moonshot"]),
        ("我叫DeepSeek。", ["DeepSeek"]),
        # The chain after "I am Claude" and the later "as an AI" claim reach the same name: listed once.
        ("I am Claude, as an AI by Anthropic.", ["Claude", "Anthropic"]),
    ],
)
def test_self_identification(text: str, names: list[str]) -> None:
    flags = identity_flags(text)
    assert _names(flags["self"]) == names
    assert flags["mentions"] == []


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("ChatGPT is a model by OpenAI.", ["ChatGPT", "OpenAI"]),
        ("I am not sure whether ChatGPT is better.", ["ChatGPT"]),
        ("Tools such as ChatGPT and Claude help.", ["ChatGPT", "Claude"]),
        ("我是学生，我喜欢用百度搜索。", ["Baidu"]),
        ("作为一个学生，我常用ChatGPT。", ["ChatGPT"]),
        ("通义千问和文心一言都是大模型。", ["Qwen", "ERNIE"]),
    ],
)
def test_mentions_are_not_claims(text: str, mentions: list[str]) -> None:
    flags = identity_flags(text)
    assert flags["self"] == []
    assert _names(flags["mentions"]) == mentions


@pytest.mark.parametrize(
    "text",
    [
        "I am happy to help.",
        "I like the llama at the zoo.",
        "The meta-analysis showed a metaphor.",
        "Claudette went home.",
        "作为一个人工智能助手，我很乐意帮助你。",
        "我是一名老师。",
        "",
    ],
)
def test_no_flags(text: str) -> None:
    assert identity_flags(text) == {"self": [], "mentions": []}


def test_spans_point_at_the_name() -> None:
    text = "Hello! 我是由阿里云开发的通义千问，也听说过 ChatGPT。"
    flags = identity_flags(text)
    for hit in flags["self"] + flags["mentions"]:
        assert text[hit["start"] : hit["end"]] == hit["text"]
    assert [h["text"] for h in flags["self"]] == ["阿里云", "通义千问"]
    assert [h["text"] for h in flags["mentions"]] == ["ChatGPT"]


def test_identity_summary_over_a_job() -> None:
    texts = [
        "I am Qwen.",
        "The answer is 4.",
        "我是通义千问，不是ChatGPT。",
        "ChatGPT and Claude are models.",
        "I'm ChatGPT.",
    ]
    summary = identity_summary(texts)
    assert summary["self"] == {"answers": 3, "indices": [0, 2, 4], "names": {"Qwen": 2, "ChatGPT": 1}}
    assert summary["mentions"] == {"answers": 2, "indices": [2, 3], "names": {"ChatGPT": 2, "Claude": 1}}
