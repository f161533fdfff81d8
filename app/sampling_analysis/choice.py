"""Which label of a closed set an answer picks: "答案是B" -> "B", "这两句话意思不同。" -> "不同".

Models rarely answer with the bare label, so a rule has to find it in prose, and must say "no idea"
(None) rather than guess when the answer names two labels: a wrong guess would count as a wrong answer
and a lucky one as right, both silently.
"""

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from app.sampling_analysis.normalize import normalize_answer

# Tiers for single-letter labels, most explicit first: an answer that says "答案是B" after listing
# "(A) … (B) …" picked B, although the listing names every letter.
_LETTER_TIERS = (
    # Keywords in any case, the letter itself a capital: "the answer is a cat" picks nothing.
    re.compile(
        r"(?i:答案|选项|answer|option|choice)\s*(?:(?i:应该|应|是|为|is|should be|would be)\s*)*:?\s*[(\[]?\s*([A-Z])(?![A-Za-z])"
    ),
    re.compile(r"选(?:择)?\s*[(\[]?([A-Z])(?![A-Za-z])"),
    re.compile(r"[(\[]([A-Z])[)\]]"),
    re.compile(r"(?:^|\n)\s*([A-Z])(?:[.)、:]|\s*$)"),
    re.compile(r"(?<![A-Za-z'])([A-Z])(?![A-Za-z'])"),
)
# "不相同" must not read as the label 相同, nor "不是" as 是.
_NEGATIONS = ("不", "没", "非", "无")


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


class _LabelSet(NamedTuple):
    by_norm: dict[str, str]  # normalised label -> label as given
    letters: dict[str, str]  # single capital letter -> label as given
    words: dict[str, str]  # casefolded other label -> label as given
    regex: re.Pattern[str] | None  # finds `words`, leftmost-longest


@lru_cache(maxsize=256)
def label_set(labels: tuple[str, ...]) -> _LabelSet:
    """Everything choice_extract needs about a label set, built once per set rather than per answer."""
    letters = {}
    words = {}
    for label in labels:
        form = _nfkc(label)
        if len(form) == 1 and "A" <= form <= "Z":
            letters[form] = label
        elif form:
            words[form.casefold()] = label
    # Longest first: at one position the alternation takes the first branch that matches, so
    # "不可能" wins over "可能" and finditer's leftmost scan gives "不是的" to 不是, not 是的.
    parts = []
    for word in sorted(words, key=len, reverse=True):
        body = re.escape(word)
        parts.append(rf"(?<![a-z0-9]){body}(?![a-z0-9])" if word.isascii() else body)
    regex = re.compile("|".join(parts)) if parts else None
    return _LabelSet({normalize_answer(x): x for x in labels}, letters, words, regex)


def _pick_letter(text: str, letters: set[str]) -> str | None:
    for tier in _LETTER_TIERS:
        hits = {m.group(1) for m in tier.finditer(text)} & letters
        if len(hits) == 1:
            return hits.pop()
        if hits:
            return None
    return None


def choice_extract(answer: str, labels: Sequence[str]) -> str | None:
    """The one label of `labels` the answer names, or None when it names none or several.

    Single uppercase letters (A/B/C/D, full-width Ａ too) are found by answer patterns ("选A",
    "答案是B", "(C)", a line starting "D.") and then as standalone capitals, never inside words or
    as the article "a". Other labels are found leftmost-longest in the casefolded answer; one right
    after a negation (不/没/非/无), unless the negated form is itself a label, does not count, and in a
    two-label set it counts as the other label.
    """
    prepared = label_set(tuple(labels))
    text = _nfkc(answer)
    exact = prepared.by_norm.get(normalize_answer(text))
    if exact is not None:
        return exact
    found: set[str] = set()
    if prepared.letters:
        letter = _pick_letter(text, set(prepared.letters))
        if letter is not None:
            found.add(prepared.letters[letter])
    if prepared.regex is not None:
        folded = text.casefold()
        for m in prepared.regex.finditer(folded):
            label = prepared.words[m.group(0)]
            if m.start() > 0 and folded[m.start() - 1] in _NEGATIONS:
                # In a two-label set the negation of one names the other: 不是 -> 否, 不相同 -> 不同.
                if len(prepared.by_norm) == 2:
                    found.update(x for x in prepared.by_norm.values() if x != label)
                continue
            found.add(label)
    return found.pop() if len(found) == 1 else None
