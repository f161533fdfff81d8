"""HTTP tests of the sample browser, the hit count, the sample page and their JSON twins."""

import re

from app.models import Role
from tests.conftest import SHARED_DATA
from tests.datasets.test_search import PCLUE, load


def setup(engine, client):
    ds, v, vid = load(engine, client.user.id, SHARED_DATA / "pclue_train_9.jsonl", PCLUE, name="pclue")
    return ds, v


def test_browser_page_search_highlight_and_pages(engine, researcher):
    ds, v = setup(engine, researcher)
    r = researcher.get(f"/datasets/{ds}/v/{v}/samples")
    assert r.status_code == 200
    assert r.text.count('class="hit"') == 50
    assert 'class="tt">nli' in r.text or 'class="tt">classify' in r.text
    assert f'action="/datasets/{ds}/v/{v}/edit"' in r.text and 'name="csrf_token"' in r.text
    assert "<b>705</b>" in r.text  # known count from the statistics
    nxt = re.search(r'class="next" href="([^"]+)"', r.text).group(1).replace("&amp;", "&")
    r2 = researcher.get(nxt)
    assert r2.status_code == 200 and "page 2 of 15" in r2.text
    r15 = researcher.get(f"/datasets/{ds}/v/{v}/samples?page=15")
    assert r15.text.count('class="hit"') == 5
    # search: highlighted, escaped, counted by a second request
    r = researcher.get(f"/datasets/{ds}/v/{v}/samples", params={"q": "答案"})
    assert "<mark>答案</mark>" in r.text
    count_url = re.search(r'hx-get="([^"]+/count[^"]*)"', r.text).group(1).replace("&amp;", "&")
    c = researcher.get(count_url)
    assert c.status_code == 200 and c.text.strip() == "673"
    # HTMX asks for the results fragment only
    frag = researcher.get(
        f"/datasets/{ds}/v/{v}/samples", params={"q": "答案", "task": "nli"}, headers={"HX-Request": "true"}
    )
    assert "<html" not in frag.text and "<mark>答案</mark>" in frag.text


def test_user_text_is_escaped(engine, researcher, tmp_path):
    import json

    from app.datasets.mapping import Mapping

    path = tmp_path / "x.jsonl"
    path.write_text(
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "<script>alert(1)</script> 北京"},
                    {"role": "assistant", "content": "<b>ok</b>"},
                ],
                "task_type": "qa",
                "tags": ["robustness"],
            }
        ),
        encoding="utf-8",
    )
    ds, v, _ = load(
        engine,
        researcher.user.id,
        path,
        Mapping(shape="messages", task_l1="task_type", tags="tags"),
        name="x",
    )
    r = researcher.get(f"/datasets/{ds}/v/{v}/samples", params={"q": "script"})
    assert "<script>alert" not in r.text and "&lt;<mark>script</mark>&gt;alert(1)" in r.text
    assert 'class="tag robustness"' in r.text
    sid = re.search(r'href="/samples/(\d+)', r.text).group(1)
    page = researcher.get(f"/samples/{sid}?q=北京")
    assert page.status_code == 200
    assert "<mark>北京</mark>" in page.text and "&lt;b&gt;ok&lt;/b&gt;" in page.text
    assert 'name="action" value="remove_tag"' in page.text and 'class="tag robustness"' in page.text


def test_bulk_and_sample_forms_reach_the_edit_endpoint(engine, researcher):
    ds, v = setup(engine, researcher)
    r = researcher.post(
        f"/datasets/{ds}/v/{v}/edit",
        data={
            "action": "add_tag",
            "value": "robustness",
            "scope": "query",
            "q": "答案",
            "field": "all",
            "task": "nli",
            "tag": "",
            "min_chars": "",
            "max_chars": "",
            "length_of": "answer",
            "next": f"/datasets/{ds}/v/{v}/samples?q=答案",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"].startswith(f"/datasets/{ds}/v/{v + 1}/samples")
    api = researcher.get(f"/api/datasets/{ds}/versions/{v + 1}/samples/count", params={"tag": "robustness"})
    nli_hits = researcher.get(
        f"/api/datasets/{ds}/versions/{v}/samples/count", params={"q": "答案", "task": "nli"}
    )
    assert api.json()["count"] == nli_hits.json()["count"] > 0
    page = researcher.get(f"/datasets/{ds}/v/{v + 1}/samples", params={"tag": "robustness"})
    assert page.text.count('class="tag robustness"') >= 50


def test_json_api_and_errors(engine, researcher, client_as):
    ds, v = setup(engine, researcher)
    r = researcher.get(f"/api/datasets/{ds}/versions/{v}/samples", params={"q": "是的", "field": "answer"})
    body = r.json()
    assert r.status_code == 200 and len(body["items"]) == 50 and body["next_after"]
    assert all("是的" in it["answer"] for it in body["items"])
    r2 = researcher.get(
        f"/api/datasets/{ds}/versions/{v}/samples",
        params={"q": "是的", "field": "answer", "after": body["next_after"]},
    )
    assert r2.json()["items"][0]["id"] > body["items"][-1]["id"]
    one = researcher.get(f"/api/samples/{body['items'][0]['id']}").json()
    assert one["messages"][-1]["role"] == "assistant"
    assert (
        researcher.get(f"/api/datasets/{ds}/versions/{v}/samples", params={"min_chars": "x"}).status_code
        == 400
    )
    assert (
        researcher.get(f"/api/datasets/{ds}/versions/{v}/samples", params={"field": "y"}).status_code == 400
    )
    assert researcher.get(f"/datasets/{ds}/v/{v}/samples", params={"page": "0"}).status_code == 400
    assert researcher.get(f"/datasets/{ds}/v/99/samples").status_code == 404
    assert researcher.get("/samples/999999").status_code == 404
    assert researcher.get("/api/samples/999999").status_code == 404
    # empty numeric form fields mean "unset"
    assert researcher.get(f"/datasets/{ds}/v/{v}/samples?min_chars=&max_chars=&q=").status_code == 200
    rater = client_as(Role.rater, "rater9")
    assert rater.get(f"/api/datasets/{ds}/versions/{v}/samples").status_code == 403
