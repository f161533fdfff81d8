"""Exporting a version as messages JSONL: the trainer's input format, and re-importable as it is.

One line per sample: {"messages": [...], "task_type": "l1/l2" (or "l1"), "tags": [...]},
plus "reference" for eval sets. As a run's validation data (`reference_turn`), an eval
set's reference becomes the final assistant turn, the turn whose loss is measured, and a
sample without a reference is left out. Rows are read by id ranges (keyset), so the export
streams in constant memory whatever the version's size.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import orjson
from sqlalchemy import text
from sqlalchemy.engine import Engine

from app.datasets.tasks import task_key
from app.datasets.visibility import VISIBLE_SQL

BATCH = 2000


def iter_export(
    engine: Engine,
    *,
    dataset_id: int,
    version: int,
    eval_set: bool = False,
    reference_turn: bool = False,
    source: str = "",
) -> Iterator[bytes]:
    """JSONL lines (with their newline) of every sample visible in the version, in id order.

    With `source` ("pclue v2"), each line gets an "id" ("pclue v2 #1234") by which the trainer names the
    sample in its messages instead of a line of a file the user never saw.
    """
    last = 0
    sql = text(
        f"SELECT s.id, s.messages, s.task_l1, s.task_l2, s.tags, s.reference FROM sample s "
        f"WHERE {VISIBLE_SQL} AND s.id > :last ORDER BY s.id LIMIT {BATCH}"
    )
    while True:
        with engine.connect() as conn:
            rows = conn.execute(sql, {"dataset_id": dataset_id, "version": version, "last": last}).all()
        if not rows:
            return
        out = []
        for sid, messages, l1, l2, tags, reference in rows:
            last = sid
            if reference_turn:
                if not reference:
                    continue
                messages = orjson.dumps(
                    [*orjson.loads(messages), {"role": "assistant", "content": reference}]
                )
            rec = {
                "messages": orjson.Fragment(messages),
                "task_type": task_key(l1, l2),
                "tags": [t for t in tags.split(",") if t],
            }
            if source:
                rec["id"] = f"{source} #{sid}"
            if eval_set:
                rec["reference"] = reference
            out.append(orjson.dumps(rec) + b"\n")
        yield b"".join(out)


def export_filename(name: str, version: int) -> str:
    """An ASCII-safe file name for Content-Disposition (the full name goes in filename*)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-") or "dataset"
    return f"{safe[:80]}-v{version}.jsonl"
