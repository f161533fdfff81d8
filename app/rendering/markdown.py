"""Markdown from the data, rendered to HTML that cannot run, load or style anything in the rater's browser.

Prompts and answers are untrusted: a model (or whoever wrote the dataset) may emit `<script>`, an
`onerror` image, a `javascript:` link or LaTeX whose converter passes markup through. The rules:

- markdown-it with `html=False`: raw HTML in the text is shown as text, never parsed as markup;
- links only to http, https and mailto, opened in a new tab with no referrer and no opener;
- images become links: nothing is fetched because of the data, so a rater's IP and timing never
  reach a URL an answer chose;
- `$...$` and `$$...$$` become MathML (Chromium draws it natively; no script, no font download).
  latex2mathml copies `\\text{<b>}` and `\\href{javascript:...}` into its output, so its MathML is parsed
  and rebuilt from a list of known elements and attributes; anything else falls back to the escaped
  source;
- the text is cut at `MAX_CHARS` with a visible marker, so one huge answer cannot stall the page.

`render_case_html` adds the rendered fields to the rater API's CaseView (see the rating contract).
"""

import re
import xml.etree.ElementTree as ET
from functools import lru_cache
from html import escape
from typing import Any

from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

from app.core.i18n import translate
from app.rendering.diff import word_diff

# Longer than any answer a rater reads whole. markdown-it-py costs about 1 ms per 1,000 characters of
# ordinary text but up to 25 ms on hostile text ("[" repeated): at this cap one field stays under 1 s.
MAX_CHARS = 30_000
# One formula longer than this is more likely broken than math; shown as source, not converted.
MAX_FORMULA_CHARS = 4_000
# A text with more dollar signs than this is rendered without math: 30,000 tiny formulas (a model repeating
# "$x") took 1.5 s to convert, and no answer a rater reads holds that many.
MAX_DOLLARS = 400
SAFE_SCHEMES = ("http://", "https://", "mailto:")
LINK_ATTRS = 'rel="noopener noreferrer nofollow" target="_blank"'

_MATHML = "{http://www.w3.org/1998/Math/MathML}"
MATH_TAGS = frozenset(
    "math mrow mi mn mo ms mtext mspace msup msub msubsup mfrac msqrt mroot mstyle mtable mtr mtd "
    "munder mover munderover mpadded mphantom menclose mmultiscripts mprescripts none merror "
    "semantics annotation".split()
)
MATH_ATTRS = frozenset(
    "display mathvariant stretchy fence separator lspace rspace movablelimits accent accentunder "
    "columnalign rowalign columnspacing rowspacing columnlines rowlines frame linethickness width "
    "height depth mathsize mathcolor mathbackground notation scriptlevel displaystyle minsize maxsize "
    "symmetric largeop form align encoding".split()
)
# Attribute values are sizes, names, colours and alignments: no colon, parenthesis or quote, so no
# `javascript:` and no `url(...)`.
_SAFE_VALUE = re.compile(r"^[\w\s.#%+-]*$")
_LANG = re.compile(r"[^\w+#-]")


class UnsafeMath(ValueError):
    """The converter's output holds an element or attribute outside the lists."""


def _mathml_node(node: ET.Element, out: list[str]) -> None:
    tag = node.tag.removeprefix(_MATHML)
    if tag not in MATH_TAGS:
        raise UnsafeMath(tag)
    attrs = ""
    for name, value in node.attrib.items():
        if name not in MATH_ATTRS or not _SAFE_VALUE.match(value):
            continue  # dropping a style or href keeps the formula and loses only its decoration
        attrs += f' {name}="{escape(value)}"'
    if tag == "math":
        attrs = ' xmlns="http://www.w3.org/1998/Math/MathML"' + attrs
    out.append(f"<{tag}{attrs}>{escape(node.text or '', quote=False)}")
    for child in node:
        _mathml_node(child, out)
        out.append(escape(child.tail or "", quote=False))
    out.append(f"</{tag}>")


# Converting costs about 0.3 ms a formula; the same formulas recur (both answers to one prompt, a case
# served again by `next`), so conversions are kept.
@lru_cache(maxsize=4096)
def latex_to_mathml(source: str, *, display: bool) -> str:
    """MathML for one formula, rebuilt from the allowed elements, or its escaped source in
    `<code class="math-error">` when it does not convert (or converts to anything unexpected)."""
    from latex2mathml.converter import convert

    try:
        if len(source) > MAX_FORMULA_CHARS:
            raise UnsafeMath("too long")
        tree = ET.fromstring(convert(source, display="block" if display else "inline"))
        out: list[str] = []
        _mathml_node(tree, out)
        return "".join(out)
    except Exception:  # noqa: BLE001 - latex2mathml raises many kinds on bad input; all mean "show the source"
        delim = "$$" if display else "$"
        return f'<code class="math-error">{escape(delim + source + delim)}</code>'


def _validate_link(url: str) -> bool:
    return url.strip().lower().startswith(SAFE_SCHEMES)


def _build(*, math: bool) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable("table")
    md.validateLink = _validate_link  # type: ignore[method-assign]
    if math:
        dollarmath_plugin(
            md,
            allow_space=True,
            allow_digits=False,  # "$5 and $6" is money, not math
            renderer=lambda content, opts: latex_to_mathml(content, display=bool(opts.get("display_mode"))),
        )
    rules = md.add_render_rule

    def link_open(self, tokens, idx, options, env):  # noqa: ANN001
        token = tokens[idx]
        return f'<a href="{escape(str(token.attrGet("href") or ""))}" {LINK_ATTRS}>'

    def image(self, tokens, idx, options, env):  # noqa: ANN001
        token = tokens[idx]
        src = escape(str(token.attrGet("src") or ""))
        alt = escape(self.renderInlineAsText(token.children or [], options, env)) or src
        return f'<a class="image-link" href="{src}" {LINK_ATTRS}>[{alt}]</a>'

    def fence(self, tokens, idx, options, env):  # noqa: ANN001
        token = tokens[idx]
        lang = _LANG.sub("", token.info.strip().split(" ")[0])[:40] if token.info else ""
        cls = f' class="language-{lang}"' if lang else ""
        return f"<pre><code{cls}>{escape(token.content, quote=False)}</code></pre>\n"

    rules("link_open", link_open)
    rules("image", image)
    rules("fence", fence)
    return md


_MD = _build(math=True)
_MD_NO_MATH = _build(math=False)


def render_markdown(text: str | None, *, lang: str = "en", limit: int = MAX_CHARS) -> str:
    """Safe HTML for untrusted markdown; a text longer than `limit` is cut and ends with a marker."""
    if not text:
        return ""
    cut = len(text) > limit
    shown = text[:limit] if cut else text
    html = (_MD if shown.count("$") <= MAX_DOLLARS else _MD_NO_MATH).render(shown)
    if cut:
        note = translate("rate.truncated", lang).format(shown=limit, total=len(text))
        html += f'<p class="truncated" data-truncated="{limit}/{len(text)}">{escape(note)}</p>'
    return html


def render_case_html(case_view: dict[str, Any], *, lang: str = "en") -> dict[str, Any]:
    """The CaseView with rendered HTML beside each raw text: `system_html`, `prompt_html`,
    `reference_html`, `history[i].html`, `answers[i].html`, and for two answers `diff_html`
    (`{"left": ..., "right": ...}`, the word diff of the raw texts). The raw fields stay as they are."""
    view = dict(case_view)
    view["system_html"] = render_markdown(view.get("system"), lang=lang)
    view["prompt_html"] = render_markdown(view.get("prompt"), lang=lang)
    view["reference_html"] = render_markdown(view.get("reference"), lang=lang)
    view["history"] = [
        {**turn, "html": render_markdown(turn.get("content"), lang=lang)}
        for turn in view.get("history") or []
    ]
    answers = [{**a, "html": render_markdown(a.get("text"), lang=lang)} for a in view.get("answers") or []]
    view["answers"] = answers
    if len(answers) == 2:
        left, right = word_diff(answers[0].get("text") or "", answers[1].get("text") or "")
        view["diff_html"] = {"left": left, "right": right}
    return view
