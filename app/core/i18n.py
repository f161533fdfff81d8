"""The English/Chinese message catalogue and the language switch.

Labels live in app/i18n/ only, so a missing translation is one grep away; templates
call `t("key")`. The language comes from the `lang` cookie, defaulting to
English; unknown keys fall back to the key itself so a gap is visible, not fatal.
"""

from app.i18n import (
    api,
    common,
    datasets,
    fields,
    jobs,
    judges,
    launch,
    rate,
    rating,
    rating_results,
    runs,
    samples,
    sampling,
)

LANGS = ("en", "zh")

MESSAGES: dict[str, dict[str, str]] = {
    **common.MESSAGES,
    **datasets.MESSAGES,
    **samples.MESSAGES,
    **launch.MESSAGES,
    **runs.MESSAGES,
    **jobs.MESSAGES,
    **sampling.MESSAGES,
    **rating_results.MESSAGES,
    **judges.MESSAGES,
    **fields.MESSAGES,
    **api.MESSAGES,
    **rate.MESSAGES,
    **rating.MESSAGES,
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
