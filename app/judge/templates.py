"""Editable judge prompts: plain text with `{{name}}` placeholders, checked, versioned by content.

A researcher edits these texts, so they are data, not code: `str.format` would let "{0.__class__}"
walk attributes and Jinja would run expressions. Here a placeholder is only `{{name}}` (spaces allowed
inside the braces), names come from a fixed list per kind, and substitution is one pass, so an answer
that itself contains "{{reference}}" stays literal text. Single braces are ordinary text, which the
JSON examples in the prompts need.

The version is a short hash of the text, so a stored judgement names exactly the prompt it came from,
and two installs with the same text agree on its version.
"""

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# What `{{...}}` may hold: an identifier. Anything else between double braces is refused, not
# left in the prompt, so a typo cannot reach the judge unnoticed.
_BRACES = re.compile(r"\{\{(.*?)\}\}", re.S)
_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*")

_COMMON = ("task_type", "dimensions", "scale", "json_example")
# Per kind: the placeholders a template may use, and those it must use (a template without the
# answer, or a reference-guided one without the reference, would judge something else).
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "single": ((*_COMMON, "question", "answer"), ("question", "answer")),
    "single_ref": ((*_COMMON, "question", "answer", "reference"), ("question", "answer", "reference")),
    "pairwise": ((*_COMMON, "question", "answer_1", "answer_2"), ("question", "answer_1", "answer_2")),
    "pairwise_ref": (
        (*_COMMON, "question", "answer_1", "answer_2", "reference"),
        ("question", "answer_1", "answer_2", "reference"),
    ),
}


class TemplateError(ValueError):
    """A template or a render call that cannot be used; the message names the placeholder."""


def placeholders(text: str) -> tuple[str, ...]:
    """The placeholder names of a text in order of first use; TemplateError on a malformed one."""
    names: list[str] = []
    for match in _BRACES.finditer(text):
        inner = _NAME.fullmatch(match.group(1))
        if inner is None:
            raise TemplateError(
                f"{match.group(0)!r} is not a placeholder: use {{{{name}}}} with a plain name"
            )
        if inner.group(1) not in names:
            names.append(inner.group(1))
    return tuple(names)


@dataclass(frozen=True)
class Template:
    """A checked prompt text of one kind (see KINDS). Construction refuses unknown and missing
    placeholders, so a bad edit fails when it is saved, not at the first judgement."""

    kind: str
    text: str
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise TemplateError(f"unknown template kind {self.kind!r}; known: {', '.join(KINDS)}")
        allowed, required = KINDS[self.kind]
        names = placeholders(self.text)
        unknown = [n for n in names if n not in allowed]
        if unknown:
            raise TemplateError(
                f"unknown placeholder {{{{{unknown[0]}}}}} in a {self.kind} template; "
                f"allowed: {', '.join(allowed)}"
            )
        missing = [n for n in required if n not in names]
        if missing:
            raise TemplateError(f"a {self.kind} template must contain {{{{{missing[0]}}}}}")
        object.__setattr__(self, "names", names)

    @property
    def version(self) -> str:
        """12 hex digits of the SHA-256 of kind and text: enough to tell edits apart, short to show."""
        return hashlib.sha256(f"{self.kind}\n{self.text}".encode()).hexdigest()[:12]

    def render(self, values: Mapping[str, str]) -> str:
        """The text with each placeholder replaced by its value, in one pass. TemplateError when a value
        is given for a name the kind does not know, or a placeholder of the text has no value."""
        allowed, _ = KINDS[self.kind]
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise TemplateError(f"unknown placeholder {unknown[0]!r} for a {self.kind} template")
        missing = [n for n in self.names if n not in values]
        if missing:
            raise TemplateError(f"no value for placeholder {{{{{missing[0]}}}}}")
        return _BRACES.sub(lambda m: str(values[m.group(1).strip()]), self.text)
