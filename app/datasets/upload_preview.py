"""What the mapping page and the API show of an upload before it is imported, and the form read back.

The first rows of the stored file (app.datasets.formats.preview), a guessed
mapping, kind and dataset name, the rows as a mapping would import them (the
importer's own builder, so the preview cannot disagree with the import), and the
mapping form or an API body turned into ImportOptions.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.core.config import Settings
from app.datasets.formats import (
    MAX_DEPTH,
    PREVIEW_ISSUES,
    REASONS,
    Issue,
    diagnose,
    preview,
    sniff_container,
    too_deep,
    unit_of,
)
from app.datasets.import_options import ImportOptions
from app.datasets.mapping import Mapping, guess_kind, guess_mapping, list_paths
from app.datasets.tasks import task_key
from app.datasets.uploads import human_bytes
from app.datasets.validate import Built, TaskNormaliser, make_builder
from app.models import Upload

Rows = list[tuple[int, Any]]  # (line or record number, parsed record)


class UploadError(Exception):
    """An upload that cannot be previewed or imported; `status_code` is what the API answers."""

    def __init__(self, detail: str, status_code: int) -> None:
        super().__init__(detail)
        self.detail, self.status_code = detail, status_code


def preview_upload(upload: Upload, *, settings: Settings) -> tuple[str, Rows, list]:
    """(container, first rows, issues among them) of the stored file; UploadError 410 when it is gone."""
    path = settings.uploads_dir / upload.stored_name
    if not path.exists():
        raise UploadError("The uploaded file is gone; upload it again.", 410)
    container = sniff_container(path, upload.filename)
    rows, issues = preview(path, container, max_line_bytes=settings.max_line_bytes)
    return container, rows, issues


def guess(upload: Upload, rows: Rows) -> tuple[Mapping, str, str]:
    """(mapping, kind, dataset name) guessed from the first rows and the file name."""
    objs = [o for _, o in rows]
    kind = guess_kind(objs, guess_mapping(objs), upload.filename)
    mapping = guess_mapping(objs, kind=kind)
    name = upload.filename.rsplit(".", 1)[0][:200]
    return mapping, kind, name


def upload_info(upload: Upload, *, settings: Settings) -> dict[str, Any]:
    """The upload, its first rows, the field paths found in them and the guessed import options."""
    container, rows, _ = preview_upload(upload, settings=settings)
    mapping, kind, name = guess(upload, rows)
    return {
        "upload_id": upload.id,
        "filename": upload.filename,
        "size": upload.size,
        "status": upload.status,
        "detected_format": upload.detected_format,
        "container": container,
        "preview": [{"line": n, "record": DEEP_RECORD if too_deep(o) else o} for n, o in rows],
        "paths": list_paths([o for _, o in rows]),
        "guess": {"mapping": mapping.to_dict(), "kind": kind, "name": name, "policy": "valid"},
    }


DEEP_RECORD = f"(nested more than {MAX_DEPTH} levels: not shown)"


def cell(value: Any) -> str:
    """A raw value as the preview table shows it: JSON unless it is text, cut at 300 characters."""
    if isinstance(value, (dict, list)) and too_deep(value):  # orjson writes at most 255 levels
        return DEEP_RECORD
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= 300 else text[:300] + "…"


def preview_table(rows: Rows) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The first rows as a table: the top-level keys (at most 30) as columns, one row per record."""
    objs = [o for _, o in rows]
    columns = list(dict.fromkeys(k for o in objs if isinstance(o, dict) for k in o))[:30]
    table = [(n, [cell(o.get(c)) if isinstance(o, dict) else "" for c in columns]) for n, o in rows]
    return columns, table


def mapped_preview(rows: Rows, *, mapping: Mapping, kind: str) -> list[dict[str, Any]]:
    """Each row as this mapping would import it, or the reason it would be refused."""
    build = make_builder(mapping, kind=kind, normaliser=TaskNormaliser())
    out = []
    for n, obj in rows:
        b = build(obj, n)
        if type(b) is Built:
            out.append(
                {
                    "line": n,
                    "ok": True,
                    "prompt": b.prompt,
                    "answer": b.answer,
                    "reference": b.reference,
                    "task": task_key(b.task_l1, b.task_l2),
                    "tags": b.tags,
                }
            )
        else:
            out.append({"line": n, "ok": False, "reason": b.reason, "detail": b.detail})  # type: ignore[union-attr]
    return out


def options_from_form(form: Any) -> ImportOptions:
    """The mapping form's fields as ImportOptions; ValueError names what is missing or wrong."""

    def s(key: str) -> str:
        v = form.get(key)
        return v.strip() if isinstance(v, str) else ""

    prompt = [p for p in (s("prompt"), s("prompt2")) if p]
    target = s("target_dataset_id")
    data = {
        "mapping": {
            "shape": s("shape") or "fields",
            "system": s("system"),
            "prompt": prompt,
            "answer": s("answer"),
            "reference": s("reference"),
            "task_l1": s("task_l1"),
            "task_l2": s("task_l2"),
            "task_prefix": s("task_prefix"),
            "default_task": s("default_task"),
            "tags": s("tags"),
            "extra_tags": s("extra_tags"),
        },
        "name": s("name"),
        "kind": s("kind") or "train",
        "policy": s("policy") or "valid",
        "target_dataset_id": int(target) if target.isdigit() and int(target) > 0 else None,
        "description": s("description"),
    }
    return ImportOptions.from_dict(data)


def options_from_body(upload: Upload, rows: Rows, body: dict[str, Any]) -> ImportOptions:
    """An API import request as ImportOptions: what the body leaves out is guessed from the first rows,
    and its mapping fields override the guessed ones one by one. ValueError or TypeError when invalid."""
    mapping, kind, name = guess(upload, rows)
    kind = body.get("kind") or kind
    guessed = guess_mapping([o for _, o in rows], kind=kind).to_dict()
    given = body.get("mapping") or {}
    if not isinstance(given, dict):
        raise ValueError("mapping must be an object")
    merged = {"name": name} | body | {"kind": kind, "mapping": guessed | given}
    return ImportOptions.from_dict(merged)


ADVICE = {
    "oversized_line": "split the record, or raise SFTLAB_MAX_LINE_BYTES",
    "too_deep": "flatten the record: SFT fields are text, lists of messages or small objects",
    "invalid_utf8": "save the file as UTF-8 (or UTF-16 with a BOM)",
    "invalid_json": "check that the file is JSON Lines (one object per line) or a JSON array",
}


def unreadable(
    container: str, rows: Rows, issues: list[Issue], *, filename: str, path: Any, settings: Settings
) -> str:
    """Why nothing in this file can be imported, with what was found and what to do; "" when some
    record is readable. The mapping page shows it instead of an Import button, the import answers it."""
    if container in ("empty", "unsupported"):
        return f"{filename}: {diagnose(path, filename)}"
    if rows or not issues or len(issues) > PREVIEW_ISSUES:
        return ""  # past that many the preview stopped reading; the import reads the rest
    first = issues[0]
    reason = REASONS.get(first.reason, first.reason)
    detail = first.detail
    if first.reason == "oversized_line":
        limit = human_bytes(settings.max_line_bytes)
        detail = f"{detail}; the limit is {limit} per line or record (SFTLAB_MAX_LINE_BYTES)"
    what = f"{unit_of(container)} {first.line}: {reason}" + (f" ({detail})" if detail else "")
    advice = ADVICE.get(first.reason, "")
    return f"{filename}: no record could be read; {what}" + (f". To import it: {advice}." if advice else ".")


def check_importable(upload: Upload, *, settings: Settings) -> None:
    """An empty, unrecognised or unreadable file gets its own reason, not a mapping error about a missing
    prompt."""
    container, rows, issues = preview_upload(upload, settings=settings)
    path = settings.uploads_dir / upload.stored_name
    message = unreadable(container, rows, issues, filename=upload.filename, path=path, settings=settings)
    if message:
        raise UploadError(message + " Nothing was imported.", 422)
