"""The rater API's CaseView carries the safe HTML of every text and the word diff of the two answers."""

from tests.rate_page.conftest import assert_blind


def test_the_api_case_carries_rendered_html(setup):
    rater, _, key = setup
    view = rater.post(f"/api/rate/{key}/next", json={}).json()["case"]
    assert "prompt_html" in view and "system_html" in view
    assert all("html" in a for a in view["answers"])
    assert set(view["diff_html"]) == {"left", "right"}
    assert "<script>" not in repr(view["diff_html"]) + "".join(a["html"] for a in view["answers"])
    assert_blind(repr(view))
