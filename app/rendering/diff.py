"""Word-level diff of two answers, as HTML for the two sides of the pairwise rating page.

Tokens are latin words and numbers, runs of whitespace, single CJK characters and single other
characters (punctuation): Chinese has no spaces, so a character is its smallest unit a rater would
compare, and keeping whitespace as tokens lets each side be rebuilt exactly from its tokens.
"""

import re
from difflib import SequenceMatcher
from html import escape

# Past this many tokens a side, SequenceMatcher's quadratic worst case takes seconds: the page shows the
# texts without marks instead.
MAX_TOKENS = 20_000

_TOKEN = re.compile(
    r"[A-Za-z0-9\u00C0-\u024F]+(?:['’.,][A-Za-z0-9\u00C0-\u024F]+)*"  # words, 3.14, 1,000, don't
    r"|\s+"
    r"|.",
    re.S,
)


def tokenize(text: str) -> list[str]:
    """'价格是 3.5 元.' -> ['价', '格', '是', ' ', '3.5', ' ', '元', '.']; ''.join(tokens) == text."""
    return _TOKEN.findall(text)


def _wrap(tag: str, tokens: list[str]) -> str:
    text = "".join(tokens)
    return f"<{tag}>{escape(text, quote=False)}</{tag}>" if text else ""


def word_diff(left: str, right: str) -> tuple[str, str]:
    """(left HTML, right HTML): text only in the left answer in `<del>`, only in the right in `<ins>`,
    shared text plain; everything escaped."""
    a, b = tokenize(left), tokenize(right)
    if len(a) > MAX_TOKENS or len(b) > MAX_TOKENS:
        return escape(left, quote=False), escape(right, quote=False)
    out_a: list[str] = []
    out_b: list[str] = []
    for op, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            out_a.append(escape("".join(a[i1:i2]), quote=False))
            out_b.append(escape("".join(b[j1:j2]), quote=False))
        else:
            out_a.append(_wrap("del", a[i1:i2]))
            out_b.append(_wrap("ins", b[j1:j2]))
    return "".join(out_a), "".join(out_b)
