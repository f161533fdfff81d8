"""Untrusted markdown renders to HTML with no script, event handler, unsafe link, loaded image or stray markup."""

from html.parser import HTMLParser

import pytest

from app.rendering.markdown import (
    MATH_TAGS,
    MAX_CHARS,
    MAX_DOLLARS,
    latex_to_mathml,
    render_case_html,
    render_markdown,
)

# What markdown itself produces; anything else (script, img, iframe, style, svg...) came from the data.
HTML_TAGS = set(
    "p a em strong code pre table thead tbody tr th td ul ol li blockquote h1 h2 h3 h4 h5 h6 hr br span div del s".split()
)
SAFE_ATTRS = {"href", "rel", "target", "class", "title", "style", "xmlns", "start", "data-truncated"}


class Inspector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        if tag not in HTML_TAGS | MATH_TAGS:
            self.problems.append(f"tag {tag}")
        for name, value in attrs:
            if name.startswith("on") or (name not in SAFE_ATTRS and tag not in MATH_TAGS):
                self.problems.append(f"attribute {name} on {tag}")
            if name == "href" and not (value or "").lower().startswith(("http://", "https://", "mailto:")):
                self.problems.append(f"href {value}")
            if name == "style" and tag not in ("th", "td"):
                self.problems.append(f"style on {tag}")


def assert_inert(html: str) -> None:
    """Parsed as a browser would: only markdown's own tags and MathML, no handler, no unsafe link."""
    inspector = Inspector()
    inspector.feed(html)
    assert not inspector.problems, (inspector.problems, html)


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](  javascript:alert(1))",
        "[data](data:text/html;base64,PHNjcmlwdD4=)",
        "<javascript:alert(1)>",
        '<div onclick="x()">\n\nblock\n\n</div>',
        "<iframe src=http://evil.example></iframe>",
        "```html\n<script>alert(1)</script>\n```",
        '```js" onmouseover="alert(1)\nx\n```',
        r"$\href{javascript:alert(1)}{x}$",
        r"$$\text{<img src=x onerror=alert(1)>}$$",
        r"$\text{<b>bold</b>}$",
        r"$\style{background:url(http://evil.example)}{x}$",
        "![tracker](http://evil.example/pixel.png)",
    ],
)
def test_hostile_input_is_inert(hostile):
    assert_inert(render_markdown(hostile))


def test_raw_html_is_shown_as_text():
    html = render_markdown("<script>alert(1)</script> and <b>bold</b>")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html


def test_safe_links_open_in_a_new_tab_without_referrer():
    html = render_markdown("[docs](https://example.org/a?b=1&c=2) and <mailto:a@b.org>")
    assert (
        '<a href="https://example.org/a?b=1&amp;c=2" rel="noopener noreferrer nofollow" target="_blank">docs</a>'
        in html
    )
    assert 'href="mailto:a@b.org"' in html


def test_unsafe_link_stays_text():
    html = render_markdown("[click](javascript:alert(1))")
    assert "<a" not in html and "[click]" in html


def test_images_become_links_and_are_never_loaded():
    html = render_markdown('![a cat](https://example.org/cat.png "t")')
    assert "<img" not in html
    assert '<a class="image-link" href="https://example.org/cat.png"' in html and "[a cat]" in html


def test_tables_and_fenced_code_with_a_language_class():
    html = render_markdown("| a | b |\n|---|---|\n| 1 | <2> |\n\n```python\nif x < 1:\n    pass\n```")
    assert "<table>" in html and "<td>&lt;2&gt;</td>" in html
    assert '<pre><code class="language-python">if x &lt; 1:\n    pass\n</code></pre>' in html


def test_dollar_math_becomes_mathml():
    html = render_markdown("Euler: $e^{i\\pi}+1=0$ and\n\n$$\\frac{a}{b}$$\n")
    assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline">' in html
    assert 'display="block"' in html and "<mfrac>" in html


def test_money_is_not_math():
    assert "<math" not in render_markdown("It costs $5 and $6.")


def test_broken_latex_falls_back_to_escaped_source():
    assert (
        latex_to_mathml(r"<a>\frac{", display=False) == '<code class="math-error">$&lt;a&gt;\\frac{$</code>'
    )


def test_latex_href_is_dropped_but_formula_kept():
    html = latex_to_mathml(r"\href{javascript:alert(1)}{x} + \color{red}{y}", display=False)
    assert "href" not in html and "<mi>x</mi>" in html
    assert 'mathcolor="red"' in html


def test_markup_inside_latex_text_falls_back_to_source():
    html = latex_to_mathml(r"\text{<b>hi</b>}", display=False)
    assert html.startswith('<code class="math-error">') and "&lt;b&gt;" in html


def test_huge_input_is_cut_with_a_marker_in_the_page_language():
    text = "x" * (MAX_CHARS + 500)
    en = render_markdown(text)
    assert en.count("x") < MAX_CHARS + 50
    assert f'data-truncated="{MAX_CHARS}/{MAX_CHARS + 500}"' in en and "cut here" in en
    assert "已截断" in render_markdown(text, lang="zh")


def test_short_input_has_no_marker():
    assert "truncated" not in render_markdown("short")


def test_cjk_passes_through():
    html = render_markdown("**你好**，世界！公式 $x^2$ 表格：\n\n| 名称 | 值 |\n|---|---|\n| 长度 | 三 |")
    assert "<strong>你好</strong>，世界！" in html and "<td>长度</td>" in html and "<msup>" in html


def test_render_case_html_adds_every_rendered_field_and_keeps_the_raw_text():
    view = {
        "token": "t1",
        "mode": "pairwise",
        "system": "be *brief*",
        "prompt": "<script>x</script>",
        "history": [{"role": "user", "content": "hi **there**"}],
        "reference": None,
        "answers": [{"side": "left", "text": "the cat sat"}, {"side": "right", "text": "the dog sat"}],
    }
    out = render_case_html(view)
    assert out["prompt"] == "<script>x</script>" and "&lt;script&gt;" in out["prompt_html"]
    assert out["system_html"] == "<p>be <em>brief</em></p>\n"
    assert out["reference_html"] == ""
    assert out["history"][0]["html"] == "<p>hi <strong>there</strong></p>\n"
    assert [a["html"] for a in out["answers"]] == ["<p>the cat sat</p>\n", "<p>the dog sat</p>\n"]
    assert out["diff_html"] == {"left": "the <del>cat</del> sat", "right": "the <ins>dog</ins> sat"}
    assert "prompt_html" not in view  # the caller's dict is not changed


def test_one_answer_has_no_diff():
    out = render_case_html({"prompt": "p", "answers": [{"side": "left", "text": "a"}]})
    assert "diff_html" not in out


def test_a_text_full_of_dollars_is_rendered_without_math():
    assert "<math" not in render_markdown("$x" * (MAX_DOLLARS + 1))
    assert "<math" in render_markdown("$x$ " * (MAX_DOLLARS // 2))
