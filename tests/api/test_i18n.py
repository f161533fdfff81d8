"""Every label a template asks for exists in the catalogue in English and Chinese, and the shell renders in both."""

import re

from app.core.i18n import MESSAGES, pick_lang, translate
from app.models import Role
from app.web import ROOT

KEY_CALL = re.compile(r"""\bt\(\s*['"]([a-z0-9_.]+)['"]\s*\)""")


def test_every_literal_key_in_the_templates_is_translated():
    missing = []
    templates = sorted((ROOT / "templates").rglob("*.html"))
    assert templates
    for path in templates:
        for key in KEY_CALL.findall(path.read_text()):
            entry = MESSAGES.get(key)
            if entry is None or not entry.get("en") or not entry.get("zh"):
                missing.append(f"{path.relative_to(ROOT)}: {key}")
    missing = list(dict.fromkeys(missing))
    assert not missing, "labels missing from app/i18n (or without en and zh):\n" + "\n".join(missing)


def test_every_catalogue_entry_has_both_languages():
    incomplete = [key for key, entry in MESSAGES.items() if not entry.get("en") or not entry.get("zh")]
    assert not incomplete


def test_language_choice():
    assert pick_lang("zh", "en-US") == "zh"
    assert pick_lang(None, "zh-CN,zh;q=0.9") == "zh"
    assert pick_lang("klingon", "en") == "en"
    assert translate("nav.datasets", "zh") == "数据集"
    assert translate("no.such.key", "zh") == "no.such.key"  # a gap shows, it does not crash


def test_shell_pages_render_in_chinese(client_as):
    admin = client_as(Role.admin, "boss")
    admin.cookies.set("lang", "zh")
    expected = {
        "/tokens": ["API 令牌", "创建令牌", "接口列表"],
        "/account": ["修改密码", "当前密码"],
        "/users": ["新建用户"],
        "/evaluations": ["此功能将在后续版本中提供。"],
        "/no-such-page": ["未找到。", "数据集"],  # a 404 keeps the header of the logged-in user
    }
    rater = client_as(Role.rater, "rita")
    rater.cookies.set("lang", "zh")
    assert "此操作需要研究员角色。" in rater.get("/runs").text
    for url, labels in expected.items():
        page = admin.get(url).text
        for label in labels:
            assert label in page, (url, label)


def test_english_pages_carry_no_untranslated_keys(client_as):
    admin = client_as(Role.admin, "boss")
    for url in ("/tokens", "/account", "/users", "/runs"):
        text = admin.get(url).text
        leaked = re.findall(r">\s*((?:nav|tokens|users|account|keys|common|login|error)\.[a-z_]+)\s*<", text)
        assert not leaked, (url, leaked)
