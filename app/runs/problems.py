"""Problem samples of a refused estimate or a failed run: the first ones on the page, all of them as a CSV.

The trainer names at most 20 samples of each kind in its message (trainer.data.SHOWN) and writes every one
(up to trainer.data.MAX_PROBLEMS) to PROBLEMS_FILE beside its other outputs: the estimate job's directory,
or the run directory. The page keeps the message's list and replaces its "... and N more" line with a
link to the whole list; the CSV names each sample by dataset, version and sample id, as the message does.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import orjson
from fastapi.responses import Response

from trainer.data import PROBLEMS_FILE

COLUMNS = ("dataset", "version", "sample_id", "task_type", "problem", "tokens", "limit", "detail")
# How export names a line ("pclue v2 #1234", app.datasets.export); a line without an id is "file:line".
_WHERE = re.compile(r"^(?P<dataset>.+) v(?P<version>\d+) #(?P<sample>\d+)$")
_MORE = re.compile(r"^\s*\.\.\. and [\d,]+ more\s*$")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Listing:
    """A refusal's text without its "... and N more" lines, and how many samples it leaves unnamed."""

    text: str
    more: int  # problem samples the text does not name (0: it names all of them)
    csv_url: str


def problems_path(directory: str | Path) -> Path:
    return Path(directory) / PROBLEMS_FILE


def count(directory: str | Path) -> int:
    """Problem samples recorded in `directory`, 0 when there is no record (or no directory)."""
    if not directory:
        return 0
    try:
        with open(problems_path(directory), "rb") as fh:
            return sum(1 for line in fh if line.strip())
    except OSError:
        return 0


def listing(text: str, *, total: int, csv_url: str) -> Listing:
    """The page's view of a refusal that names the first samples of `total` problem samples."""
    kept = [line for line in text.splitlines() if not _MORE.match(line)]
    # The message names each sample on an indented line under its kind's summary.
    named = sum(1 for line in kept if line.startswith("  "))
    return Listing("\n".join(kept), max(0, total - named), csv_url)


def split_where(where: str) -> tuple[str, str, str]:
    """(dataset, version, sample id) of a sample as the trainer names it; ("", "", where) for file:line."""
    m = _WHERE.match(where)
    if m is None:
        return "", "", where
    return m["dataset"], m["version"], m["sample"]


def safe_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def read(directory: str | Path) -> list[dict]:
    """Every recorded problem; a line that is not a JSON object (a file cut short) is skipped."""
    out = []
    with open(problems_path(directory), "rb") as fh:
        for line in fh:
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict):
                out.append(record)
    return out


def to_csv(problems: list[dict]) -> str:
    """The CSV of every problem sample, a header first; tokens and limit empty where they do not apply."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    for p in problems:
        dataset, version, sample = split_where(str(p.get("where", "")))
        row = (
            dataset,
            version,
            sample,
            p.get("task_type", ""),
            p.get("problem", ""),
            p.get("tokens") or "",
            p.get("limit") or "",
            p.get("detail", ""),
        )
        writer.writerow([safe_cell(v) for v in row])
    return buf.getvalue()


def csv_response(problems: list[dict], *, filename: str) -> Response:
    """The CSV as a download: UTF-8 with a BOM, so a spreadsheet shows Chinese task_types as written."""
    return Response(
        content="\ufeff" + to_csv(problems),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
