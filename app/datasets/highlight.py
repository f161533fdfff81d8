"""Highlighted snippets of search hits: escaped text with <mark> around each match.

Matching is done on folded text (app.datasets.search.fold), which is
length-preserving, so offsets found there cut the original text. Every piece of
user text goes through markupsafe.escape; only our own <mark> tags are raw.
"""

from markupsafe import Markup, escape

from app.datasets.search import fold


def spans(text: str, q: str) -> list[tuple[int, int]]:
    """Non-overlapping (start, end) offsets of the folded query in the folded text."""
    qf, tf = fold(q), fold(text)
    out: list[tuple[int, int]] = []
    if not qf:
        return out
    i = tf.find(qf)
    while i >= 0:
        out.append((i, i + len(qf)))
        i = tf.find(qf, i + len(qf))
    return out


def snippet(text: str, q: str = "", *, width: int = 240, context: int = 60) -> Markup:
    """The start of `text` (no query) or a window around the first matches, marked and escaped."""
    found = spans(text, q) if q else []
    if not found:
        cut = text[:width]
        return escape(cut) + (Markup("…") if len(text) > width else Markup(""))
    start = max(0, found[0][0] - context)
    end = min(len(text), max(start + width, found[0][1] + context))
    parts: list[Markup] = [Markup("…")] if start > 0 else []
    pos = start
    for a, b in found:
        if a >= end:
            break
        b = min(b, end)
        parts.append(escape(text[pos:a]))
        parts.append(Markup("<mark>") + escape(text[a:b]) + Markup("</mark>"))
        pos = b
    parts.append(escape(text[pos:end]))
    if end < len(text):
        parts.append(Markup("…"))
    return Markup("").join(parts)


def mark_all(text: str, q: str) -> Markup:
    """The whole text with every match marked (the sample detail page)."""
    if not q:
        return escape(text)
    parts: list[Markup] = []
    pos = 0
    for a, b in spans(text, q):
        parts.append(escape(text[pos:a]))
        parts.append(Markup("<mark>") + escape(text[a:b]) + Markup("</mark>"))
        pos = b
    parts.append(escape(text[pos:]))
    return Markup("").join(parts)
