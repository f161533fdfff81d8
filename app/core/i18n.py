"""The English/Chinese message catalogue and the language switch.

Labels live here only, so a missing translation is one grep away; templates
call `t("key")`. The language comes from the `lang` cookie, defaulting to
English; unknown keys fall back to the key itself so a gap is visible, not fatal.
"""

LANGS = ("en", "zh")

MESSAGES: dict[str, dict[str, str]] = {
    "app.name": {"en": "sftlab", "zh": "sftlab"},
    "nav.datasets": {"en": "Datasets", "zh": "数据集"},
    "nav.runs": {"en": "Runs", "zh": "训练"},
    "nav.evaluations": {"en": "Evaluations", "zh": "评测"},
    "nav.rating": {"en": "Rating", "zh": "标注"},
    "nav.compare": {"en": "Compare", "zh": "对比"},
    "nav.users": {"en": "Users", "zh": "用户"},
    "nav.tokens": {"en": "API tokens", "zh": "API 令牌"},
    "nav.logout": {"en": "Log out", "zh": "退出"},
    "login.title": {"en": "Log in", "zh": "登录"},
    "login.username": {"en": "Username", "zh": "用户名"},
    "login.password": {"en": "Password", "zh": "密码"},
    "login.submit": {"en": "Log in", "zh": "登录"},
    "login.failed": {"en": "Wrong username or password.", "zh": "用户名或密码错误。"},
    "common.save": {"en": "Save", "zh": "保存"},
    "common.cancel": {"en": "Cancel", "zh": "取消"},
    "common.delete": {"en": "Delete", "zh": "删除"},
    "common.create": {"en": "Create", "zh": "创建"},
    "common.name": {"en": "Name", "zh": "名称"},
    "common.role": {"en": "Role", "zh": "角色"},
    "common.created": {"en": "Created", "zh": "创建时间"},
    "common.owner": {"en": "Owner", "zh": "所有者"},
    "common.status": {"en": "Status", "zh": "状态"},
    "common.actions": {"en": "Actions", "zh": "操作"},
    "common.next": {"en": "Next", "zh": "下一页"},
    "common.prev": {"en": "Previous", "zh": "上一页"},
    "common.none": {"en": "Nothing here yet.", "zh": "暂无内容。"},
    "placeholder.soon": {
        "en": "This part of sftlab arrives with its own issue.",
        "zh": "此功能将在后续版本中提供。",
    },
    "error.forbidden": {"en": "Your role cannot do this.", "zh": "您的角色无权执行此操作。"},
    "error.not_found": {"en": "Not found.", "zh": "未找到。"},
    "error.csrf": {"en": "The form expired; reload the page.", "zh": "表单已过期，请刷新页面。"},
}


def translate(key: str, lang: str) -> str:
    entry = MESSAGES.get(key)
    if entry is None:
        return key
    return entry.get(lang) or entry["en"]


def pick_lang(cookie_value: str | None, accept_language: str | None = None) -> str:
    if cookie_value in LANGS:
        return cookie_value
    if accept_language and accept_language.lower().startswith("zh"):
        return "zh"
    return "en"
