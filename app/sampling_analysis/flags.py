"""Answers where the model names itself or another model's maker: "I am Qwen", "我是由阿里云开发的".

Such answers break blind rating (a rater who reads "As ChatGPT…" knows which side is which) and they
show what the base model's identity tuning leaks through SFT. Two strengths: `self` is the model
identifying as a name, matched by self-reference patterns for high precision; `mentions` is every other
occurrence of a known name, a weaker signal (an answer may be about ChatGPT without claiming to be it).
"""

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

# (canonical name, pattern, case-sensitive). Ordered specific before general so "通义千问" is not read
# as "通义" and "Meta AI" not as "Meta". Everyday words (Meta, Llama, Gemini, Mistral) match only as
# capitalised, and Latin names never inside longer words.
_NAMES: tuple[tuple[str, str, bool], ...] = (
    ("Qwen", r"通义千问|千问|通义|Qwen[\w.-]*", False),
    ("ChatGPT", r"ChatGPT", False),
    ("GPT", r"GPT-?\d[\w.-]*", False),
    ("OpenAI", r"OpenAI", False),
    ("Claude", r"Claude", True),
    ("Anthropic", r"Anthropic", False),
    ("LLaMA", r"LLaMA[\w.-]*|Llama[\w.-]*|LLAMA[\w.-]*", True),
    ("Meta", r"Meta AI|Meta|Facebook", True),
    ("Alibaba", r"阿里云|阿里巴巴|Alibaba Cloud|Alibaba", False),
    ("ERNIE", r"文心一言|文心|ERNIE(?: Bot)?", True),
    ("Baidu", r"百度|Baidu", False),
    ("ChatGLM", r"智谱清言|ChatGLM[\w.-]*|GLM-\d[\w.-]*", False),
    ("Zhipu", r"智谱(?:AI)?|Zhipu(?: AI)?", False),
    ("Kimi", r"Kimi", False),
    ("Moonshot", r"月之暗面|Moonshot AI", False),
    ("DeepSeek", r"DeepSeek[\w.-]*|深度求索", False),
    ("SmolLM", r"SmolLM[\w.-]*", False),
    ("Hugging Face", r"Hugging ?Face", False),
    ("Gemini", r"Gemini|Bard", True),
    ("Google", r"Google|谷歌", True),
    ("Mistral", r"Mistral(?: AI)?", True),
    ("Baichuan", r"百川|Baichuan[\w.-]*", False),
    ("Doubao", r"豆包|Doubao", False),
    ("ByteDance", r"字节跳动|ByteDance", False),
    ("Hunyuan", r"腾讯混元|混元|Hunyuan", False),
    ("Tencent", r"腾讯|Tencent", False),
    ("iFlytek", r"讯飞星火|科大讯飞|iFlytek", False),
    ("InternLM", r"书生·?浦语|InternLM[\w.-]*", False),
    ("01.AI", r"零一万物", False),
    ("Microsoft", r"Microsoft|微软", True),
)


def _name_alternation() -> str:
    parts = []
    for i, (_, pattern, case_sensitive) in enumerate(_NAMES):
        body = pattern if case_sensitive else f"(?i:{pattern})"
        parts.append(rf"(?P<n{i}>(?<![A-Za-z0-9]){body}(?![A-Za-z0-9]))")
    return "|".join(parts)


_NAME = _name_alternation()
_EN_TRIGGER = (
    r"(?i:\bI\s*(?:am|'m|’m|was|have\s+been)\b|\bmy\s+name\s+is\b|\bcall\s+me\b"
    r"|\bas\s+an?\s+(?:AI|artificial\s+intelligence|(?:large\s+)?language\s+model|assistant|chatbot|model)\b)"
)
# Only words that describe what the speaker is may sit between "I am" and the name: "I am a language
# model trained by Google" is a claim, "I am not sure whether ChatGPT…" is not.
_EN_FILLER = (
    r"(?i:[\s,]+(?:a|an|the|just|AI|artificial|intelligence|large|language|model|assistant|chatbot|called"
    r"|named|known|as|by|trained|developed|created|made|built|designed|from|helpful|virtual"
    r"|conversational|version|of|based|on|powered|system|team|company|at)\b){0,8}[\s,]*"
)
# "As ChatGPT, I…" at the start of a sentence or clause; "such as ChatGPT" is a mention.
_EN_AS = r"(?:^|(?<=[.!?\n,;:]))\s*(?i:as)\s+"
_ZH_TRIGGER = r"(?:我(?:是|叫|名叫|的名字是|的名字叫|来自|由)|作为|本(?:模型|助手)是?)"
_ZH_FILLER = (
    r"(?:一个|一款|一种|由|名为|叫做|被称为|人工智能|AI|智能|超大规模|大规模|大型|语言|大|模型|助手|对话|聊天"
    r"|机器人|公司|团队|开发|训练|研发|打造|推出|创建|创造|的|\s|，|,)*"
)
_SELF = re.compile(rf"(?:{_EN_TRIGGER}{_EN_FILLER}|{_EN_AS}|{_ZH_TRIGGER}{_ZH_FILLER})(?:{_NAME})")
# After a claim, a further name in the same descriptive run is part of it: "我是由阿里云开发的通义千问".
_CHAIN = re.compile(rf"(?:{_EN_FILLER}|{_ZH_FILLER})(?:{_NAME})")
_ANY_NAME = re.compile(_NAME)


def _literal_keys() -> tuple[str, ...]:
    """The literal start of every name alternative, casefolded ("Qwen[\\w.-]*" -> "qwen", "Hugging ?Face"
    -> "hugging"): a text containing none of them cannot match, and `in` over a few dozen short keys is
    ~50 times faster than the regex scan, which matters when most of 100,000 answers name nobody."""
    keys = set()
    for _, pattern, _ in _NAMES:
        for alternative in pattern.split("|"):
            literal = re.match(r"[^\\\[\](){}?*+|.^$]*", alternative)
            assert literal is not None  # a starred class always matches, if only the empty string
            key = literal.group(0)
            if alternative[len(key) : len(key) + 1] in ("?", "*", "{"):
                key = key[:-1]  # the last character is optional
            assert key, f"name alternative {alternative!r} has no literal start"
            keys.add(key.casefold())
    return tuple(sorted(keys))


_KEYS = _literal_keys()


def _hit(m: re.Match[str]) -> dict[str, Any]:
    group = m.lastgroup
    assert group is not None  # every alternative of _NAME ends in a named group
    return {
        "name": _NAMES[int(group[1:])][0],
        "text": m.group(group),
        "start": m.start(group),
        "end": m.end(group),
    }


def identity_flags(text: str) -> dict[str, list[dict[str, Any]]]:
    """Names in the answer: `self` where the model claims to be or come from them, `mentions` for the
    rest. Each hit: canonical name, the text as written, and its [start, end) span in `text`."""
    folded = text.casefold()
    if not any(key in folded for key in _KEYS):
        return {"self": [], "mentions": []}
    # Keyed by span: a chain can reach a name that a later claim ("…, as an AI by Anthropic") finds again.
    claims: dict[tuple[int, int], dict[str, Any]] = {}
    for m in _SELF.finditer(text):
        hit = _hit(m)
        claims.setdefault((hit["start"], hit["end"]), hit)
        end = m.end()
        while (chained := _CHAIN.match(text, end)) is not None:
            hit = _hit(chained)
            claims.setdefault((hit["start"], hit["end"]), hit)
            end = chained.end()
    mentions = [h for h in map(_hit, _ANY_NAME.finditer(text)) if (h["start"], h["end"]) not in claims]
    return {"self": sorted(claims.values(), key=lambda h: h["start"]), "mentions": mentions}


def identity_summary(texts: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Over a job's answers, per strength (`self`, `mentions`): how many answers carry it, which ones
    (indices into `texts`, for the results page to list) and how often each name occurs. An answer with a
    claim is not also counted under `mentions` unless it mentions a further name."""
    summary: dict[str, dict[str, Any]] = {
        strength: {"answers": 0, "indices": [], "names": Counter()} for strength in ("self", "mentions")
    }
    for index, text in enumerate(texts):
        for strength, hits in identity_flags(text).items():
            if hits:
                row = summary[strength]
                row["answers"] += 1
                row["indices"].append(index)
                row["names"].update(h["name"] for h in hits)
    for row in summary.values():
        row["names"] = dict(row["names"].most_common())
    return summary
