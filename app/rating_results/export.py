"""Exports: a CSV row per case (and side), and every rating as JSONL in A/B terms.

The CSV is for a spreadsheet: one column per rater and dimension, so a case's raters sit side by side
next to the case's mean, usability and whether it was adjudicated. A cell that a spreadsheet would run
as a formula (rater names and task types are typed by people) is prefixed with a quote.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from sqlmodel import Session

from app.models import RatingTask
from app.rating.overview import ratings
from app.rating_results.data import TaskData
from app.rating_results.summary import case_result

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return "" if value is None else value


def export_csv(data: TaskData, *, use_adjudicated: bool) -> str:
    raters = sorted({r.rater for c in data.cases for r in c.ratings})
    keys = [d.key for d in data.rubric.dimensions]
    header = ["task_type", "case_id", "sample_id"]
    if data.pairwise:
        header += ["side", *(f"{r}.preference" for r in raters)]
    header += [f"{r}.{k}" for r in raters for k in keys]
    header += [f"mean.{k}" for k in keys] + ["usability", "usable", "adjudicated"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([_cell(h) for h in header])
    for case in data.cases:
        by_rater = {r.rater: r for r in case.ratings}
        for side in data.sides or ("",):  # a preference-only task: one row per case, no scores
            result = case_result(data, case, side, use_adjudicated=use_adjudicated)
            row: list[object] = [case.task_type, case.id, case.sample_id]
            if data.pairwise:
                row += [side, *(by_rater[r].preference if r in by_rater else None for r in raters)]
            row += [
                by_rater[r].scores.get(side, {}).get(k) if r in by_rater else None
                for r in raters
                for k in keys
            ]
            row += [result.scores.get(k) for k in keys]
            row += [result.usability, result.usable, result.adjudicated]
            writer.writerow([_cell(v) for v in row])
    return out.getvalue()


def export_jsonl(session: Session, task: RatingTask) -> Iterator[str]:
    """Every stored rating, one JSON object a line, with A/B as the sampling jobs (never screen sides)."""
    for row in ratings(session, task):
        yield json.dumps(row, ensure_ascii=False) + "\n"
