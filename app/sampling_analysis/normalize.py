"""Text normalisation shared by the exact-match scorer and repeated-answer detection.

Both ask "is this the same answer?", so they must agree on what counts as the same: one function.
"""

import re
import unicodedata

_SPACE = re.compile(r"\s+")


def _strip_punctuation(text: str) -> str:
    # Unicode category P* covers ASCII and CJK punctuation alike (，。！？「」《》…), so a model that
    # answers "北京。" matches the reference "北京" without a hand-kept list of symbols. Removed rather
    # than spaced so "don't" meets "dont" and "1,000" meets "1000".
    return "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))


def normalize_answer(text: str) -> str:
    """NFKC (full-width letters/digits become half-width), casefold, punctuation removed, whitespace
    collapsed. Example: " Ｂｅｉｊｉｎｇ， 北京！ " -> "beijing 北京"."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", _strip_punctuation(text)).strip()
