"""A rubric as plain frozen data: dimensions (key, scale, weight, guidance) and a usability threshold.

The model layer stores a rubric version as JSON and rebuilds it with `Rubric.from_json`; everything in
this package takes the rebuilt object, so a rubric is validated once, where it enters, and never again.
Validation errors are `RubricError`s naming the field (`dimensions[2].weight`) and carrying a stable
`code`, so a form can put a translated message beside the right input instead of a 500.
"""

import math
from dataclasses import dataclass
from typing import Any

from app.rating_stats.scales import Scale

DIMENSION_FIELDS = ("key", "scale", "weight", "guidance")
RUBRIC_FIELDS = ("dimensions", "threshold")


class RubricError(ValueError):
    """A rubric that cannot be used: `field` is the JSON path of the bad value, `code` what is wrong."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.code = field, code


@dataclass(frozen=True)
class Dimension:
    """One scored dimension. Weight 0 keeps it on the page and in agreement, out of usability."""

    key: str
    scale: Scale
    weight: float
    guidance: str = ""


@dataclass(frozen=True)
class Rubric:
    """Dimensions in display order and the usability at or above which a case is "usable"."""

    dimensions: tuple[Dimension, ...]
    threshold: float

    def dimension(self, key: str) -> Dimension:
        for dim in self.dimensions:
            if dim.key == key:
                return dim
        raise KeyError(key)

    @classmethod
    def from_json(cls, data: Any) -> "Rubric":
        """Validate and build from the stored JSON object (the shape `to_json` writes)."""
        if not isinstance(data, dict):
            raise RubricError("rubric", "not_an_object", "must be a JSON object")
        _no_unknown(data, RUBRIC_FIELDS, "")
        threshold = _number(data.get("threshold"), "threshold")
        if not 0 <= threshold <= 1:
            raise RubricError("threshold", "out_of_range", f"must be between 0 and 1, got {threshold}")
        raw_dims = data.get("dimensions")
        if not isinstance(raw_dims, list) or not raw_dims:
            raise RubricError("dimensions", "empty", "must be a non-empty list")
        dims = tuple(_dimension(raw, f"dimensions[{i}]") for i, raw in enumerate(raw_dims))
        seen: set[str] = set()
        for i, dim in enumerate(dims):
            if dim.key in seen:
                raise RubricError(f"dimensions[{i}].key", "duplicate", f"{dim.key!r} appears more than once")
            seen.add(dim.key)
        if all(dim.weight == 0 for dim in dims):
            raise RubricError("dimensions", "all_weights_zero", "at least one weight must be above 0")
        return cls(dimensions=dims, threshold=threshold)

    def to_json(self) -> dict[str, Any]:
        return {
            "dimensions": [
                {"key": d.key, "scale": d.scale.value, "weight": d.weight, "guidance": d.guidance}
                for d in self.dimensions
            ],
            "threshold": self.threshold,
        }


def _dimension(raw: Any, path: str) -> Dimension:
    if not isinstance(raw, dict):
        raise RubricError(path, "not_an_object", "must be a JSON object")
    _no_unknown(raw, DIMENSION_FIELDS, path + ".")
    key = raw.get("key")
    if not isinstance(key, str) or not key.strip():
        raise RubricError(f"{path}.key", "empty", "must be a non-empty string")
    if key != key.strip():
        raise RubricError(f"{path}.key", "whitespace", f"{key!r} has leading or trailing spaces")
    scale_name = raw.get("scale")
    if not isinstance(scale_name, str) or scale_name not in {s.value for s in Scale}:
        known = ", ".join(s.value for s in Scale)
        raise RubricError(f"{path}.scale", "unknown_scale", f"{scale_name!r} is not one of {known}")
    scale = Scale(scale_name)
    weight = _number(raw.get("weight"), f"{path}.weight")
    if weight < 0:
        raise RubricError(f"{path}.weight", "negative", f"must be 0 or more, got {weight}")
    guidance = raw.get("guidance", "")
    if not isinstance(guidance, str):
        raise RubricError(f"{path}.guidance", "not_text", "must be a string")
    return Dimension(key=key, scale=scale, weight=weight, guidance=guidance)


def _number(value: Any, path: str) -> float:
    # bool is an int in Python; `"weight": true` is a mistake, not a 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RubricError(path, "not_a_number", f"must be a number, got {value!r}")
    if not math.isfinite(value):
        raise RubricError(path, "not_finite", f"must be finite, got {value!r}")
    return float(value)


def _no_unknown(data: dict, known: tuple[str, ...], prefix: str) -> None:
    # A misspelt "wieght" must not silently fall back to something.
    for name in data:
        if name not in known:
            raise RubricError(
                f"{prefix}{name}", "unknown_field", f"is not a field (known: {', '.join(known)})"
            )
