"""Word-level diff of two answers, as HTML for the two sides of the pairwise rating page.

Tokens are latin words and numbers, runs of whitespace, single CJK characters and single other
characters (punctuation): Chinese has no spaces, so a character is its smallest unit a rater would
compare, and keeping whitespace as tokens lets each side be rebuilt exactly from its tokens.

The diff runs in two levels because SequenceMatcher is quadratic in its input: lines first, then words
inside each pair of changed line blocks. A changed block longer than `BLOCK_TOKENS` a side is marked
whole rather than word by word (a word diff of two 10,000-token answers that differ everywhere took
seconds; the rating page asks for it with every pairwise case). Sides longer than `MAX_CHARS` are shown
unmarked: even line by line, thousands of scattered changes cost seconds, and no rater reads such a diff.
"""

import re
from difflib import SequenceMatcher
from html import escape

BLOCK_TOKENS = 1500
MAX_CHARS = 20_000

_TOKEN = re.compile(
    r"[A-Za-z0-9\u00C0-\u024F]+(?:['’.,][A-Za-z0-9\u00C0-\u024F]+)*"  # words, 3.14, 1,000, don't
    r"|\s+"
    r"|.",
    re.S,
)


def tokenize(text: str) -> list[str]:
    """'价格是 3.5 元.' -> ['价', '格', '是', ' ', '3.5', ' ', '元', '.']; ''.join(tokens) == text."""
    return _TOKEN.findall(text)


def _wrap(tag: str, text: str) -> str:
    return f"<{tag}>{escape(text, quote=False)}</{tag}>" if text else ""


def _words(left: str, right: str, out_a: list[str], out_b: list[str]) -> None:
    a, b = tokenize(left), tokenize(right)
    if len(a) > BLOCK_TOKENS or len(b) > BLOCK_TOKENS:
        out_a.append(_wrap("del", left))
        out_b.append(_wrap("ins", right))
        return
    # autojunk: a token in more than 1% of a long side (a space, "的") anchors no match, which keeps
    # long similar blocks fast; matches still extend across it.
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b).get_opcodes():
        if op == "equal":
            out_a.append(escape("".join(a[i1:i2]), quote=False))
            out_b.append(escape("".join(b[j1:j2]), quote=False))
        else:
            out_a.append(_wrap("del", "".join(a[i1:i2])))
            out_b.append(_wrap("ins", "".join(b[j1:j2])))


def word_diff(left: str, right: str) -> tuple[str, str]:
    """(left HTML, right HTML): text only in the left answer in `<del>`, only in the right in `<ins>`,
    shared text plain; everything escaped."""
    if len(left) > MAX_CHARS or len(right) > MAX_CHARS:
        return escape(left, quote=False), escape(right, quote=False)
    la, lb = left.splitlines(keepends=True), right.splitlines(keepends=True)
    out_a: list[str] = []
    out_b: list[str] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, la, lb).get_opcodes():
        if op == "equal":
            out_a.append(escape("".join(la[i1:i2]), quote=False))
            out_b.append(escape("".join(lb[j1:j2]), quote=False))
        else:
            _words("".join(la[i1:i2]), "".join(lb[j1:j2]), out_a, out_b)
    return "".join(out_a), "".join(out_b)
