"""A judge's reply -> explanation, per-dimension scores and (pairwise) verdict, or a JudgeParseError.

Real judges do not write clean JSON: they wrap it in code fences, add a closing remark, write
AlignBench's Python-style `{'事实正确性': 8}`, type Chinese punctuation (`：`, `，`, curly quotes) and
full-width digits, or "8/10". The reader takes the last brace-balanced object that scores something,
undoes those habits, then insists on what matters: every dimension present, each score a whole
number on the scale. Anything else is a JudgeParseError naming the reason and quoting the offending
part, so a bad reply is shown and retried, never stored as a wrong score or raised as a KeyError.

Keys may be in either language: the stable key ("factuality"), the English name ("User
Satisfaction") or the Chinese one ("满足用户需求"); case, spaces, underscores and hyphens do not count.
The dimensions asked for are AlignBench keys or Dimension objects (a rubric's, each on its own scale:
"4/5" is read against that dimension's scale); the names of the ones asked for win over any other
meaning of the same word, so a rubric dimension called "Reasoning" is a score, not the explanation.
"""

import ast
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from app.judge.dimensions import DIMENSIONS, Dimension, Scale, resolve

Side = Literal["1", "2", "tie"]
EXCERPT_CHARS = 160
# Brace pairs tried, from the end of the reply; a reply of thousands of nested braces is refused quickly.
MAX_CANDIDATES = 64

# One character for one, so positions in the cleaned text are positions in the reply: full-width ASCII
# (U+FF01..FF5E: ｛ ｝ ： ， ＂ and digits) to ASCII, the ideographic space to a space, curly quotes to
# straight ones.
_WIDTH: dict[int, int | str] = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
_WIDTH |= {0x3000: " "} | {ord(c): '"' for c in "“”„«»「」"} | {ord(c): "'" for c in "‘’"}


def _key(text: object) -> str:
    return re.sub(r"[\s_\-]+", "", str(text).translate(_WIDTH).casefold())


_OVERALL_NAMES = ("overall", "overall score", "综合得分", "综合", "总分", "综合分数")
_VERDICT_NAMES = ("verdict", "winner", "better", "胜者", "结论", "判断", "更好的回答", "最终判断")
_EXPLANATION_NAMES = ("explanation", "reason", "reasoning", "解释", "评价", "理由", "分析")
# Some judges nest the scores: {"explanation": "...", "scores": {...}}.
_SCORES_NAMES = ("scores", "score", "ratings", "评分", "分数", "打分", "得分")
_SIDE_NAMES = {
    "1": ("answer_1", "answer 1", "answer1", "回答1", "回答一", "答案1", "assistant 1", "助手1"),
    "2": ("answer_2", "answer 2", "answer2", "回答2", "回答二", "答案2", "assistant 2", "助手2"),
}
_VERDICT_VALUES: dict[str, Side] = {
    **{_key(v): "1" for v in ("1", "answer_1", "answer 1", "回答1", "回答一", "assistant 1", "助手1")},
    **{_key(v): "2" for v in ("2", "answer_2", "answer 2", "回答2", "回答二", "assistant 2", "助手2")},
    **{_key(v): "tie" for v in ("tie", "draw", "equal", "平局", "平", "持平", "相当", "一样好", "两者相当")},
}

_ALIASES = {_key(name): d.key for d in DIMENSIONS.values() for name in (d.key, d.en, d.zh)}
_ALIASES |= {_key(n): "overall" for n in _OVERALL_NAMES}
_ALIASES |= {_key(n): "verdict" for n in _VERDICT_NAMES}
_ALIASES |= {_key(n): "explanation" for n in _EXPLANATION_NAMES}
_ALIASES |= {_key(n): "scores" for n in _SCORES_NAMES}
_ALIASES |= {_key(n): f"side{s}" for s, names in _SIDE_NAMES.items() for n in names}

# "8/10" or "8 / 10" outside quotes would not be JSON; quoting it lets _score read the denominator.
_BARE_FRACTION = re.compile(r"(?<=[:\s])(-?\d+(?:\.\d+)?\s*/\s*\d+)(?=\s*[,}\n])")
_SINGLE_QUOTED = re.compile(r"'([^'\"\\\n]*)'")
_TRAILING_COMMA = re.compile(r",\s*([}\]])")
_BARE_KEY = re.compile(r"([{,]\s*)([^\s\"'{}:,][^\"'{}:,\n]*?)\s*:")
_SCORE_TEXT = re.compile(
    r"\s*(-?\d+(?:\.\d+)?)\s*(?:分|points?|pts)?\s*(?:(?:/|out of|满分)\s*(\d+)\s*(?:分)?)?\s*", re.I
)


class JudgeParseError(ValueError):
    """The reply cannot be read as a judgement: `reason` says why, `excerpt` quotes where."""

    def __init__(self, reason: str, excerpt: str) -> None:
        self.reason = reason
        self.excerpt = _shorten(excerpt)
        super().__init__(f"{reason}: «{self.excerpt}»")


@dataclass(frozen=True)
class Judgement:
    """One answer's scores by dimension key, the judge's overall score when it gave one, its reasons."""

    explanation: str
    scores: dict[str, int]
    overall: int | None


@dataclass(frozen=True)
class PairJudgement:
    """One pairwise reply: verdict in the order shown ("1" = the answer shown first), each side's scores."""

    explanation: str
    verdict: Side
    scores_1: dict[str, int]
    scores_2: dict[str, int]


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def _objects(text: str) -> list[tuple[int, int]]:
    """Spans of brace-matched {...} in text, the last-ending first (outer before inner), at most
    MAX_CANDIDATES: the scores close the reply. A stray "{" or "}" in the prose ("the set {1, 2")
    may pair with a brace of the scores, but the scores' own span is still among the candidates.
    Braces inside double-quoted strings do not count."""
    opened: list[int] = []
    matched: list[tuple[int, int]] = []
    in_string = escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"' or ch == "\n":
                in_string = False
        elif ch == '"' and opened:
            in_string = True
        elif ch == "{":
            opened.append(i)
        elif ch == "}" and opened:
            matched.append((opened.pop(), i + 1))
    return sorted(matched, key=lambda span: (-span[1], span[0]))[:MAX_CANDIDATES]


def _decode(raw: str, candidate: str) -> Any:
    """The object a candidate most plausibly means: the reply's own text as JSON (curly quotes inside a
    Chinese string stay intact), the width-normalised text as JSON, then after fixing the usual slips,
    then as a Python literal (AlignBench's single quotes; `ast.literal_eval` evaluates nothing), then
    with single quotes or bare keys made JSON; else None."""
    fixed = _TRAILING_COMMA.sub(r"\1", _BARE_FRACTION.sub(r'"\1"', candidate))
    attempts = (
        lambda: json.loads(raw),
        lambda: json.loads(candidate),
        lambda: json.loads(fixed),
        lambda: ast.literal_eval(fixed),
        lambda: json.loads(_SINGLE_QUOTED.sub(r'"\1"', fixed)),
        lambda: json.loads(_BARE_KEY.sub(r'\1"\2":', fixed)),
    )
    for attempt in attempts:
        try:
            return attempt()
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
    return None


def _aliases(dims: Sequence[Dimension]) -> dict[str, str]:
    return _ALIASES | {_key(name): d.key for d in dims for name in (d.key, d.en, d.zh)}


def _canonical(obj: Mapping[Any, Any], aliases: Mapping[str, str]) -> dict[str, Any]:
    """Known keys under their stable names (first spelling wins); a nested "scores" object is lifted
    to the top, where its keys do not clash with the object's own."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = aliases.get(_key(key))
        if name is not None and name not in out:
            out[name] = value
    nested = out.pop("scores", None)
    if isinstance(nested, Mapping):
        for name, value in _canonical(nested, aliases).items():
            out.setdefault(name, value)
    return out


def _find(
    reply: str, wanted: str, dims: Sequence[Dimension], aliases: Mapping[str, str]
) -> tuple[dict[str, Any], int, str]:
    """The last object of the reply holding a `wanted` key ("dimension" or "verdict"), canonicalised
    with `aliases`, with where it starts and its text."""
    scored = set(DIMENSIONS) | {d.key for d in dims} | {"overall"}
    cleaned = reply.translate(_WIDTH)
    for start, end in _objects(cleaned):
        decoded = _decode(reply[start:end], cleaned[start:end])
        if not isinstance(decoded, dict):
            continue
        obj = _canonical(decoded, aliases)
        if wanted == "verdict" and ("verdict" in obj or "side1" in obj):
            return obj, start, reply[start:end]
        if wanted == "dimension" and ("verdict" in obj or "side1" in obj):
            raise JudgeParseError(
                "a pairwise verdict where one answer's scores were expected", reply[start:end]
            )
        if wanted == "dimension" and any(k in scored for k in obj):
            return obj, start, reply[start:end]
    raise JudgeParseError("no JSON object with scores at the end of the reply", reply[-EXCERPT_CHARS:])


def _score(value: Any, where: str, scale: Scale, excerpt: str) -> int:
    """A score as an int on the scale. Decimal, not float: a 400-digit integer from the judge must be
    "outside the scale", not an OverflowError."""
    out_of = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    elif isinstance(value, float) and math.isfinite(value):
        number = Decimal(value)
    elif isinstance(value, str) and (m := _SCORE_TEXT.fullmatch(value.translate(_WIDTH))):
        number, out_of = Decimal(m.group(1)), int(m.group(2)) if m.group(2) else None
    else:
        raise JudgeParseError(f"{where}: {value!r} is not a score", excerpt)
    if out_of is not None and out_of != scale.high:
        raise JudgeParseError(f"{where}: {value!r} is out of {out_of}, the scale is {scale}", excerpt)
    if number != number.to_integral_value():
        raise JudgeParseError(f"{where}: {value!r} is not a whole number", excerpt)
    if not scale.low <= number <= scale.high:
        raise JudgeParseError(f"{where}: {value!r} is outside the scale {scale}", excerpt)
    return int(number)


def _scores(
    obj: Mapping[str, Any], dims: Sequence[Dimension], excerpt: str, side: str = ""
) -> dict[str, int]:
    scores = {}
    for dim in dims:
        if dim.key not in obj:
            raise JudgeParseError(f"{side}missing dimension {dim.en} ({dim.zh})", excerpt)
        scores[dim.key] = _score(obj[dim.key], f"{side}{dim.en}", dim.scale or Scale(), excerpt)
    return scores


def _explanation(reply: str, start: int, obj: Mapping[str, Any], excerpt: str) -> str:
    """The text before the object, without the code fence that opened it; or the object's own
    explanation field. None at all breaks the protocol (reasons first), so it is an error."""
    before = re.sub(r"`{3,}[\w-]*\s*$", "", reply[:start].rstrip()).strip()
    inside = obj.get("explanation")
    text = before or (inside.strip() if isinstance(inside, str) else "")
    if not text:
        raise JudgeParseError("no explanation before the scores", excerpt)
    return text


def parse_single(reply: str, *, dimensions: Sequence[str | Dimension], scale: Scale = Scale()) -> Judgement:
    """A single-answer reply: every one of `dimensions` scored on its own scale (else on `scale`), and
    the overall score on `scale` if present. A ValueError (not a JudgeParseError: the caller's
    mistake, not the judge's) names an unknown or repeated dimension.

    Example: 'The answer is right but terse.\\n```json\\n{"事实正确性"：９, "清晰度": "7/10"}\\n```'
    with dimensions ("factuality", "clarity") -> Judgement(explanation="The answer is right but terse.",
    scores={"factuality": 9, "clarity": 7}, overall=None).
    """
    dims = resolve(dimensions, scale)
    obj, start, excerpt = _find(reply, "dimension", dims, _aliases(dims))
    scores = _scores(obj, dims, excerpt)
    overall = _score(obj["overall"], "Overall", scale, excerpt) if "overall" in obj else None
    return Judgement(_explanation(reply, start, obj, excerpt), scores, overall)


def _verdict(value: Any, excerpt: str) -> Side:
    verdict = _VERDICT_VALUES.get(_key(value)) if isinstance(value, str | int) else None
    if verdict is None or isinstance(value, bool):
        raise JudgeParseError(f"verdict {value!r} is not 1, 2 or tie", excerpt)
    return verdict


def parse_pairwise(
    reply: str, *, dimensions: Sequence[str | Dimension], scale: Scale = Scale()
) -> PairJudgement:
    """A pairwise reply: the verdict ("1", "2" or "tie", in the order shown) and each side's scores,
    each dimension on its own scale (else on `scale`)."""
    dims = resolve(dimensions, scale)
    aliases = _aliases(dims)
    obj, start, excerpt = _find(reply, "verdict", dims, aliases)
    if "verdict" not in obj:
        raise JudgeParseError("no verdict in the scores", excerpt)
    sides = []
    for side in ("1", "2"):
        part = obj.get(f"side{side}")
        if not isinstance(part, Mapping):
            raise JudgeParseError(f"no scores for answer {side}", excerpt)
        sides.append(_scores(_canonical(part, aliases), dims, excerpt, f"answer {side}: "))
    return PairJudgement(_explanation(reply, start, obj, excerpt), _verdict(obj["verdict"], excerpt), *sides)
