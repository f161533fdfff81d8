"""The rater's pages: the queue, the rating page's shell and the history, in English and Chinese, blind, and
closed to tasks the rater is not on."""

import json
import re

import pytest

from app.models import Role
from tests.rate_page.conftest import assert_blind

ZH = {"Accept-Language": "zh-CN,zh;q=0.9"}


def script_labels(page: str) -> dict[str, str]:
    found = re.search(r'<script type="application/json" id="rate-i18n">(.*?)</script>', page, re.S)
    assert found, "no labels for the script"
    return json.loads(found.group(1))


def test_queue_lists_the_raters_task_with_progress(setup):
    rater, other, key = setup
    page = rater.get("/rate")
    assert page.status_code == 200
    assert f'href="/rate/{key}"' in page.text and "Pairwise check" in page.text
    assert re.search(r"0 / 4", page.text)
    assert "compare two answers" in page.text
    assert_blind(page.text)
    assert key not in other.get("/rate").text
    assert "Nothing to rate right now." in other.get("/rate").text


def test_queue_in_chinese(setup):
    rater, _, _ = setup
    page = rater.get("/rate", headers=ZH)
    assert (
        "我的评分任务" in page.text and "两个回答对比" in page.text and "Your rating tasks" not in page.text
    )


def test_rating_page_is_a_shell_with_the_scripts_labels(setup):
    rater, _, key = setup
    page = rater.get(f"/rate/{key}")
    assert page.status_code == 200
    assert f'data-task="{key}"' in page.text and 'data-mode="pairwise"' in page.text
    assert '<script src="/static/rate.js" defer></script>' in page.text
    assert script_labels(page.text)["rate.live.submitted"] == "Submitted; next case shown."
    assert "Which answer is better?" in page.text and "Rating shortcuts" in page.text
    assert_blind(page.text)


def test_rating_page_in_chinese(setup):
    rater, _, key = setup
    page = rater.get(f"/rate/{key}", headers=ZH)
    assert "哪个回答更好？" in page.text and "评分快捷键" in page.text
    assert script_labels(page.text)["rate.live.submitted"] == "已提交，已显示下一个案例。"
    assert "Which answer is better?" not in page.text


@pytest.mark.parametrize("who", ["other", "researcher", "unknown"])
def test_a_task_the_rater_is_not_on_is_not_found(setup, client_as, who):
    rater, other, key = setup
    if who == "other":
        assert other.get(f"/rate/{key}").status_code == 404
    elif who == "researcher":
        assert client_as(Role.researcher).get(f"/rate/{key}").status_code == 404
    else:
        assert rater.get("/rate/no-such-key").status_code == 404


def test_the_token_in_the_url_is_bounded_and_escaped(setup):
    rater, _, key = setup
    page = rater.get(f"/rate/{key}", params={"token": '"><script>x</script>' + "a" * 100})
    assert page.status_code == 200
    assert "<script>x</script>" not in page.text
    assert (
        'data-token="&#34;&gt;&lt;script&gt;' in page.text
        or 'data-token="&quot;&gt;&lt;script&gt;' in page.text
    )


def test_history_links_each_submission_back_to_its_case(setup):
    rater, _, key = setup
    assert "No ratings submitted yet." in rater.get("/rate/history").text
    view = rater.post(f"/api/rate/{key}/next", json={}).json()["case"]
    dims = {d["key"]: d["max"] for d in view["dimensions"]}
    done = rater.post(
        f"/api/rate/a/{view['token']}",
        json={"scores": {"left": dims, "right": dims}, "preference": "tie", "flag": True, "comment": "odd"},
    )
    assert done.status_code == 200, done.text
    page = rater.get("/rate/history")
    assert f'href="/rate/{key}?token={view["token"]}"' in page.text and "odd" in page.text
    assert_blind(page.text)
    assert "我的评分记录" in rater.get("/rate/history", headers=ZH).text


def test_the_rating_nav_item_leads_each_role_to_its_page(client_as):
    assert client_as(Role.rater).get("/rating", follow_redirects=False).headers["location"] == "/rate"
    researcher = client_as(Role.researcher)
    assert researcher.get("/rating", follow_redirects=False).headers["location"] == "/rating/tasks"


def test_rater_pages_in_chinese_show_no_english_ui_phrase(setup):
    """The scan of tests/test_i18n_pages.py over the three rater pages (the script's labels included)."""
    from tests.test_i18n_pages import english_phrases, leftovers, visible_text

    rater, _, key = setup
    phrases = english_phrases()
    found = {}
    for path in ("/rate", f"/rate/{key}", "/rate/history"):
        page = rater.get(path, headers=ZH).text
        labels = " | ".join(script_labels(page).values()) if path == f"/rate/{key}" else ""
        if left := leftovers(visible_text(page) + labels, phrases):
            found[path] = left
    assert found == {}
