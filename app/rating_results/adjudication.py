"""A researcher's adjudication of a case, from the API's JSON or the results page's form.

The form names its fields `score.<key>` (absolute) or `score.<side>.<key>` (pairwise) and
`preference`; they become the API's {"scores", "preference"} and go through the same checks as gold
(app.rating.overview), so both routes refuse the same things with the same words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

FIELD = re.compile(r"score\.(?:(a|b)\.)?([a-z][a-z0-9_]{0,39})")


def form_body(fields: Mapping[str, str], *, pairwise: bool) -> dict[str, Any]:
    """The form's fields in the API's shape; a value that is not a whole number is passed on as typed,
    so the check names it. An empty field is left out: the check then says it is missing.

    >>> form_body({"score.a.honesty": "4", "preference": "a"}, pairwise=True)
    {'scores': {'a': {'honesty': 4}, 'b': {}}, 'preference': 'a'}
    """
    scores: dict[str, Any] = {"a": {}, "b": {}} if pairwise else {}
    for name, raw in fields.items():
        found = FIELD.fullmatch(name)
        value = raw.strip()
        if found is None or not value:
            continue
        side, key = found.groups()
        number: Any = int(value) if re.fullmatch(r"[0-9]{1,3}", value) else value
        if pairwise and side:
            scores[side][key] = number
        elif not pairwise and not side:
            scores[key] = number
    body: dict[str, Any] = {"scores": scores}
    if pairwise:
        body["preference"] = (fields.get("preference") or "").strip() or None
    return body
