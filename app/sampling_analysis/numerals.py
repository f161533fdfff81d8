"""The last number in a text, for numeric scorers: "…so the answer is 1,250.5" -> 1250.5.

Models reason before they answer, so the final number is the answer far more often than the first.
"""

import re
import unicodedata
from typing import NamedTuple

# The lookbehind keeps "3-5" from reading as minus five and stops a match inside "1.2.3"'s tail.
_ARABIC = re.compile(
    r"(?<![\d.])(?P<sign>-?)(?P<int>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.(?P<frac>\d+))?"
    r"(?:\s*/\s*(?P<den>\d+))?(?P<pct>\s*%)?"
)
_CHINESE = re.compile(
    r"(?P<neg>负)?(?P<pct>百分之)?(?P<int>[零〇一二两三四五六七八九十百千万亿]+)(?:点(?P<frac>[零〇一二三四五六七八九]+))?"
)
_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}


class Number(NamedTuple):
    """A parsed number; `percent` keeps "50%" comparable to both 0.5 and 50 (see `values`)."""

    value: float
    percent: bool = False

    def values(self) -> tuple[float, ...]:
        """The readings a scorer should accept: 50% is 0.5, but also 50 when the reference says "50"."""
        return (self.value, self.value * 100) if self.percent else (self.value,)


def parse_chinese_numeral(text: str) -> int:
    """ "三十五" -> 35, "一百零五" -> 105, "两万三千" -> 23000, "十二" -> 12 (a bare 十 means ten)."""
    total = section = digit = 0
    for ch in text:
        if ch in _CN_DIGITS:
            digit = _CN_DIGITS[ch]
        elif ch in _CN_UNITS:
            section += (digit or (1 if ch == "十" else 0)) * _CN_UNITS[ch]
            digit = 0
        elif ch == "万":
            total += (section + digit) * 10_000
            section = digit = 0
        else:  # 亿 scales everything read so far
            total = (total + section + digit) * 100_000_000
            section = digit = 0
    return total + section + digit


def _arabic(m: re.Match[str]) -> Number | None:
    value = float(m["int"].replace(",", "") + ("." + m["frac"] if m["frac"] else ""))
    if m["den"] is not None:
        if int(m["den"]) == 0:
            return None
        value /= int(m["den"])
    if m["sign"]:
        value = -value
    return Number(value / 100, True) if m["pct"] else Number(value)


def _chinese(m: re.Match[str]) -> Number:
    """ "三点一四" -> 3.14, "负五" -> -5, "百分之五十" -> 50% (0.5)."""
    value = float(parse_chinese_numeral(m["int"]))
    if m["frac"]:
        value += float("0." + "".join(str(_CN_DIGITS[ch]) for ch in m["frac"]))
    if m["neg"]:
        value = -value
    return Number(value / 100, True) if m["pct"] else Number(value)


def is_number(text: str) -> bool:
    """The whole text (stripped, NFKC) is one Arabic number, as in a numeric task's references."""
    return _ARABIC.fullmatch(unicodedata.normalize("NFKC", text).strip().replace("\u2212", "-")) is not None


def last_number(text: str) -> Number | None:
    """The last Arabic number (commas, decimals, a/b fractions, %, sign; full-width digits too), or,
    when there is none, the last Chinese numeral (负, 点 and 百分之 too): "一个" in Arabic-numbered prose
    must not win."""
    text = unicodedata.normalize("NFKC", text).replace("\u2212", "-")
    found = None
    for m in _ARABIC.finditer(text):
        found = _arabic(m) or found
    if found is not None:
        return found
    chinese = list(_CHINESE.finditer(text))
    return _chinese(chinese[-1]) if chinese else None
