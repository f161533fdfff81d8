"""Rubric JSON: a valid rubric round-trips, and each kind of bad input is a RubricError naming its field."""

import copy
from typing import Any

import pytest

from app.rating_stats.rubric import Dimension, Rubric, RubricError
from app.rating_stats.scales import Scale

GOOD: dict[str, Any] = {
    "dimensions": [
        {"key": "helpfulness", "scale": "1-5", "weight": 2, "guidance": "是否解决了问题"},
        {"key": "system_leak", "scale": "binary", "weight": 1.5, "guidance": ""},
        {"key": "writing", "scale": "1-10", "weight": 0, "guidance": "文采"},
    ],
    "threshold": 0.6,
}


def test_round_trip() -> None:
    rubric = Rubric.from_json(GOOD)
    assert rubric.dimensions[0] == Dimension("helpfulness", Scale.one_to_five, 2.0, "是否解决了问题")
    assert rubric.dimensions[1].scale is Scale.binary
    assert rubric.threshold == 0.6
    assert rubric.dimension("writing").weight == 0.0
    assert Rubric.from_json(rubric.to_json()) == rubric
    assert rubric.to_json()["dimensions"][0]["scale"] == "1-5"


def test_guidance_is_optional_and_the_stored_3h_round_trips() -> None:
    from app.rating.rubrics import DEFAULT_DIMENSIONS, parse_dimensions
    from app.rating_results.data import stats_rubric

    rubric = Rubric.from_json({"dimensions": [{"key": "h", "scale": "1-5", "weight": 1}], "threshold": 1})
    assert rubric.dimensions[0].guidance == ""
    default = stats_rubric(parse_dimensions(DEFAULT_DIMENSIONS), 0.6)
    assert [d.key for d in default.dimensions] == ["helpfulness", "honesty", "harmlessness"]
    assert {d.scale for d in default.dimensions} == {Scale.one_to_five}
    assert Rubric.from_json(default.to_json()) == default


def _with(path: tuple, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    target = data
    for part in path[:-1]:
        target = target[part]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "field", "code"),
    [
        (("dimensions", 1, "scale"), "1-7", "dimensions[1].scale", "unknown_scale"),
        (("dimensions", 1, "scale"), None, "dimensions[1].scale", "unknown_scale"),
        (("dimensions", 1, "scale"), ["1-5"], "dimensions[1].scale", "unknown_scale"),
        (("dimensions", 0, "weight"), -0.5, "dimensions[0].weight", "negative"),
        (("dimensions", 0, "weight"), "2", "dimensions[0].weight", "not_a_number"),
        (("dimensions", 0, "weight"), True, "dimensions[0].weight", "not_a_number"),
        (("dimensions", 0, "weight"), float("nan"), "dimensions[0].weight", "not_finite"),
        (("dimensions", 0, "weight"), _DELETE, "dimensions[0].weight", "not_a_number"),
        (("dimensions", 2, "key"), "helpfulness", "dimensions[2].key", "duplicate"),
        (("dimensions", 2, "key"), "", "dimensions[2].key", "empty"),
        (("dimensions", 2, "key"), "   ", "dimensions[2].key", "empty"),
        (("dimensions", 2, "key"), " writing", "dimensions[2].key", "whitespace"),
        (("dimensions", 2, "key"), 3, "dimensions[2].key", "empty"),
        (("dimensions", 2, "guidance"), 3, "dimensions[2].guidance", "not_text"),
        (("dimensions", 1, "wieght"), 1, "dimensions[1].wieght", "unknown_field"),
        (("dimensions", 1), "helpfulness", "dimensions[1]", "not_an_object"),
        (("threshold",), 1.2, "threshold", "out_of_range"),
        (("threshold",), -0.1, "threshold", "out_of_range"),
        (("threshold",), _DELETE, "threshold", "not_a_number"),
        (("dimensions",), [], "dimensions", "empty"),
        (("dimensions",), {"key": "h"}, "dimensions", "empty"),
        (("version",), 2, "version", "unknown_field"),
    ],
)
def test_bad_input_names_the_field(path: tuple, value: Any, field: str, code: str) -> None:
    with pytest.raises(RubricError) as err:
        Rubric.from_json(_with(path, value))
    assert (err.value.field, err.value.code) == (field, code)
    assert str(err.value).startswith(field + ": ")
    assert isinstance(err.value, ValueError)


def test_all_weights_zero_and_not_an_object() -> None:
    data = copy.deepcopy(GOOD)
    for dim in data["dimensions"]:
        dim["weight"] = 0
    with pytest.raises(RubricError, match="at least one weight") as err:
        Rubric.from_json(data)
    assert err.value.code == "all_weights_zero"
    with pytest.raises(RubricError) as err:
        Rubric.from_json([GOOD])
    assert err.value.code == "not_an_object"
