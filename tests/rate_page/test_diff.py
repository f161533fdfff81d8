"""The word diff splits latin words and single CJK characters, marks only what differs, and escapes everything."""

from app.rendering.diff import BLOCK_TOKENS, MAX_CHARS, tokenize, word_diff


def test_tokens_rebuild_the_text():
    text = "价格是 3.5 元. Don't panic, 1,000 cats!\n\tend"
    tokens = tokenize(text)
    assert "".join(tokens) == text
    assert tokens[:8] == ["价", "格", "是", " ", "3.5", " ", "元", "."]
    assert "Don't" in tokens and "1,000" in tokens and "panic" in tokens


def test_english_words_are_marked_whole():
    left, right = word_diff("The quick brown fox jumps.", "The slow brown fox jumped.")
    assert left == "The <del>quick</del> brown fox <del>jumps</del>."
    assert right == "The <ins>slow</ins> brown fox <ins>jumped</ins>."


def test_chinese_differs_by_character():
    left, right = word_diff("北京是中国的首都。", "上海是中国的城市。")
    assert left == "<del>北京</del>是中国的<del>首都</del>。"
    assert right == "<ins>上海</ins>是中国的<ins>城市</ins>。"


def test_mixed_language_and_insertions_only():
    left, right = word_diff("答案是 42", "答案是 42 (the answer)")
    assert left == "答案是 42"
    assert right == "答案是 42<ins> (the answer)</ins>"


def test_everything_is_escaped():
    left, right = word_diff("<b>a</b> & x", '<script>alert("a")</script> & x')
    assert "<b>" not in left and "<script>" not in right
    assert (
        left.startswith("&lt;<del>b</del>&gt;a")
        and "&lt;<ins>script</ins>&gt;" in right
        and right.endswith("&amp; x")
    )


def test_changed_lines_are_diffed_word_by_word_and_equal_lines_left_alone():
    left, right = word_diff("same line\nthe cat sat\nend", "same line\nthe dog sat\nend")
    assert left == "same line\nthe <del>cat</del> sat\nend"
    assert right == "same line\nthe <ins>dog</ins> sat\nend"


def test_a_long_changed_block_is_marked_whole():
    a = " ".join(f"w{i}" for i in range(BLOCK_TOKENS))
    b = a.replace("w7 ", "x ")
    left, right = word_diff(a, b)
    assert left == f"<del>{a}</del>" and right == f"<ins>{b}</ins>"


def test_huge_answers_are_shown_without_marks():
    big = "word " * (MAX_CHARS // 5 + 10)
    left, right = word_diff(big, big + "<x>")
    assert "<del>" not in left and "<ins>" not in right and right.endswith("&lt;x&gt;")
