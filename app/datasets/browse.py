"""The sample browser's queries: filters, keyset pages, page jumps, counts.

Every page is a keyset query (`id > after ORDER BY id LIMIT 51`) driven by the
most selective index available, so its cost does not grow with depth:
- a text query drives from the search index (app.datasets.search),
- else a tag drives from `sample_fts_tag_ix (tag, sample_id)`,
- else a task_type drives from `ix_sample_task (dataset_id, task_l1, task_l2, id)`
  (a level-1-only filter is a UNION of one index range per level-2 value),
- else the rowid (primary key) range.
"Jump to page N" reads the id that page starts after from `sample_fts_anchor`,
written by the statistics pass for the unfiltered list, each task_type and each
tag; other filter combinations fall back to OFFSET.
"""

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import text

from app.datasets.search import FIELDS, match_sql

PAGE_SIZE = 50
LENGTH_OF = ("prompt", "answer")
MAX_UNION = 60  # level-2 branches before a level-1 filter falls back to one sorted range


@dataclass
class BrowseFilters:
    q: str = ""
    field: str = "all"  # all|prompt|answer
    task: str = ""  # "l1" or "l1/l2"
    tag: str = ""
    min_chars: int | None = None
    max_chars: int | None = None
    length_of: str = "answer"  # prompt|answer

    def validate(self) -> None:
        """Raises ValueError with a message a user can act on."""
        if self.field not in FIELDS:
            raise ValueError(f"field must be one of {', '.join(FIELDS)}, not {self.field!r}")
        if self.length_of not in LENGTH_OF:
            raise ValueError(f"length_of must be prompt or answer, not {self.length_of!r}")
        for name in ("min_chars", "max_chars"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise ValueError(f"{name} must be 0 or more")
        if self.min_chars is not None and self.max_chars is not None and self.min_chars > self.max_chars:
            raise ValueError("min_chars is larger than max_chars")
        if len(self.q) > 500:
            raise ValueError("the search query is longer than 500 characters")

    def task_parts(self) -> tuple[str, str | None]:
        """("l1", None) for a level-1 filter, ("l1", "l2") for an exact one ("l1/" means l2 empty)."""
        if "/" in self.task:
            l1, l2 = self.task.split("/", 1)
            return l1.strip(), l2.strip()
        return self.task.strip(), None

    def anchor_key(self) -> str | None:
        """The key of precomputed page anchors that serve exactly these filters, if any."""
        if self.q or self.min_chars is not None or self.max_chars is not None:
            return None
        if self.task and self.tag:
            return None
        if self.tag:
            return "g:" + self.tag
        if self.task:
            l1, l2 = self.task_parts()
            return f"t:{l1}" if l2 is None else f"t:{l1}/{l2}"
        return ""

    def as_query(self) -> dict[str, Any]:
        """The non-default filters, for links that keep them."""
        d = {k: v for k, v in asdict(self).items() if v not in ("", None)}
        if d.get("field") == "all":
            d.pop("field")
        if d.get("length_of") == "answer" or (self.min_chars is None and self.max_chars is None):
            d.pop("length_of", None)
        return d

    def is_empty(self) -> bool:
        return not self.as_query()


@dataclass
class _Branch:
    from_sql: str
    where: list[str]
    id_col: str
    params: dict = field(default_factory=dict)


def _dialect(conn) -> str:  # noqa: ANN001  (Session or Connection)
    bind = conn.get_bind() if hasattr(conn, "get_bind") else conn
    return bind.dialect.name


def _visible(prefix: str = "") -> list[str]:
    """The visibility condition; `prefix` "+" keeps SQLite from driving by the dataset_id index."""
    return [
        f"{prefix}s.dataset_id = :dataset_id",
        "s.added_in <= :version",
        "(s.removed_in IS NULL OR s.removed_in > :version)",
    ]


# The first and last visible id of a version (its ranges are ascending), read inside the search statement:
# no round trip of its own, and NULL (no bound) for a version whose ranges are not written yet.
_ID_BOUNDS = (
    "BETWEEN COALESCE((SELECT CAST(CAST(ranges AS JSONB) -> 0 ->> 0 AS BIGINT) FROM sample_fts_state"
    " WHERE version_id = :bounds_v), 0)"
    " AND COALESCE((SELECT CAST(CAST(ranges AS JSONB) -> -1 ->> 1 AS BIGINT) FROM sample_fts_state"
    " WHERE version_id = :bounds_v), 9223372036854775807)"
)


def _branches(
    conn,
    *,
    dataset_id: int,
    version: int,
    filters: BrowseFilters,
    l2_values=None,
    version_id: int | None = None,
) -> list[_Branch]:  # noqa: ANN001
    filters.validate()
    dialect = _dialect(conn)
    sqlite = dialect == "sqlite"
    base = {"dataset_id": dataset_id, "version": version}
    extra: list[str] = []
    params: dict[str, Any] = {}
    col = "s.answer_chars" if filters.length_of == "answer" else "s.prompt_chars"
    if filters.min_chars is not None:
        extra.append(f"{col} >= :min_chars")
        params["min_chars"] = filters.min_chars
    if filters.max_chars is not None:
        extra.append(f"{col} <= :max_chars")
        params["max_chars"] = filters.max_chars
    l1, l2 = filters.task_parts()
    if filters.q:
        m = match_sql(dialect, filters.q, filters.field)
        where = [m.where_sql, *_visible(), *extra]
        if dialect == "postgresql" and version_id is not None:
            # The index holds every dataset's rows. Bounded by the version's ids, PostgreSQL reads only
            # that id range of it instead of every row holding the word (the planner then walked the
            # other datasets' matches too): beside four 30,000-sample datasets, a search page of the
            # 705-sample pCLUE took 3.0 ms instead of 4.8, one of the last large dataset 4.4 ms instead
            # of 850 (the database bench/load.py leaves after its levels, each page the same ids as unbounded).
            where.append(f"{m.id_col} {_ID_BOUNDS}")
            params["bounds_v"] = version_id
        if filters.task:
            where.append("s.task_l1 = :l1")
            params["l1"] = l1
            if l2 is not None:
                where.append("s.task_l2 = :l2")
                params["l2"] = l2
        if filters.tag:
            where.append("EXISTS (SELECT 1 FROM sampletag t WHERE t.sample_id = s.id AND t.tag = :tag)")
            params["tag"] = filters.tag
        return [_Branch(m.from_sql, where, m.id_col, {**base, **params, **m.params})]
    if filters.tag:
        idx = " INDEXED BY sample_fts_tag_ix" if sqlite else ""
        where = ["t.tag = :tag", *_visible(), *extra]
        params["tag"] = filters.tag
        if filters.task:
            where.append("s.task_l1 = :l1")
            params["l1"] = l1
            if l2 is not None:
                where.append("s.task_l2 = :l2")
                params["l2"] = l2
        join = (
            "CROSS JOIN" if sqlite else "JOIN"
        )  # CROSS JOIN fixes SQLite's loop order; PostgreSQL rejects ON there
        return [
            _Branch(
                f"sampletag t{idx} {join} sample s ON s.id = t.sample_id",
                where,
                "t.sample_id",
                {**base, **params},
            )
        ]
    if filters.task:
        idx = " INDEXED BY ix_sample_task" if sqlite else ""
        if l2 is None and l2_values is None:
            rows = conn.execute(
                text("SELECT DISTINCT task_l2 FROM sample WHERE dataset_id = :d AND task_l1 = :l1"),
                {"d": dataset_id, "l1": l1},
            )
            l2_values = sorted(r[0] for r in rows)
        if l2 is not None:
            l2_values = [l2]
        if l2_values is not None and len(l2_values) <= MAX_UNION:
            return [
                _Branch(
                    f"sample s{idx}",
                    ["s.task_l1 = :l1", f"s.task_l2 = :l2_{i}", *_visible(), *extra],
                    "s.id",
                    {**base, **params, "l1": l1, f"l2_{i}": v},
                )
                for i, v in enumerate(l2_values)
            ] or [_Branch("sample s", ["1 = 0"], "s.id", {})]
        return [
            _Branch(
                f"sample s{idx}",
                ["s.task_l1 = :l1", *_visible(), *extra],
                "s.id",
                {**base, **params, "l1": l1},
            )
        ]
    return [_Branch("sample s", [*_visible("+" if sqlite else ""), *extra], "s.id", {**base, **params})]


def _ids_sql(
    branches: list[_Branch], *, cond: str = "", desc: bool = False, limited: bool = True
) -> tuple[str, dict]:
    order = "DESC" if desc else "ASC"
    lim = " LIMIT :lim OFFSET :off" if limited else ""
    parts, params = [], {}
    for b in branches:
        where = " AND ".join(b.where + ([f"{b.id_col} {cond}"] if cond else []))
        inner_lim = " LIMIT :innerlim" if limited else ""
        parts.append(
            f"SELECT {b.id_col} AS id FROM {b.from_sql} WHERE {where} ORDER BY {b.id_col} {order}{inner_lim}"
        )
        params.update(b.params)
    if len(parts) == 1:
        return parts[0].replace(":innerlim", ":lim OFFSET :off") if limited else parts[0], params
    union = " UNION ALL ".join(f"SELECT id FROM ({p}) AS b{i}" for i, p in enumerate(parts))
    return f"SELECT id FROM ({union}) AS u ORDER BY id {order}{lim}", params


def all_matching_ids(session, *, dataset_id: int, version: int, filters: BrowseFilters) -> list[int]:  # noqa: ANN001
    """Every visible sample id matching the filters, ascending (the bulk edit's scope=query)."""
    branches = _branches(session, dataset_id=dataset_id, version=version, filters=filters)
    sql, params = _ids_sql(branches, limited=False)
    return [r[0] for r in session.execute(text(sql), params)]


@dataclass
class Page:
    rows: list[dict]
    has_next: bool
    has_prev: bool
    page: int | None  # 1-based, when known
    first_id: int | None
    last_id: int | None


ROW_COLS = (
    "id, prompt, answer, reference, task_l1, task_l2, tags, prompt_chars, answer_chars, n_turns, has_system"
)


def page_rows(session, sql: str, params: dict, *, desc: bool) -> list[dict]:  # noqa: ANN001
    """The rows of the ids that `sql` selects (at most a page and one), by id, in one statement.

    The ids query stays as it is, materialised, so that its plan (driven by the most selective index)
    is the one it has alone; the rows join it by primary key. One statement, not an ids query and then
    a rows query: on PostgreSQL each is a round trip, and on a loaded machine a round trip waits for
    the database server's process to be scheduled (bench/load.py)."""
    cols = ", ".join(f"r.{c.strip()}" for c in ROW_COLS.split(","))
    rows = [
        dict(row._mapping)
        for row in session.execute(
            text(
                f"WITH page_ids AS MATERIALIZED ({sql}) SELECT {cols} FROM page_ids p JOIN sample r ON r.id = p.id"
            ),
            params,
        )
    ]
    rows.sort(key=lambda row: row["id"], reverse=desc)
    return rows


def anchor(session, *, version_id: int, key: str, page: int) -> int | None:  # noqa: ANN001
    row = session.execute(
        text("SELECT after_id FROM sample_fts_anchor WHERE version_id = :v AND key = :k AND page = :p"),
        {"v": version_id, "k": key, "p": page},
    ).first()
    return None if row is None else row[0]


def browse_page(
    session,  # noqa: ANN001
    *,
    dataset_id: int,
    version: int,
    version_id: int | None = None,
    filters: BrowseFilters,
    after: int | None = None,
    before: int | None = None,
    page: int | None = None,
    l2_values: list[str] | None = None,
) -> Page:
    """One page of matching samples: after an id, before an id, or page N (1-based)."""
    branches = _branches(
        session,
        dataset_id=dataset_id,
        version=version,
        filters=filters,
        l2_values=l2_values,
        version_id=version_id,
    )
    n = PAGE_SIZE + 1
    if before is not None:
        sql, params = _ids_sql(branches, cond="< :before", desc=True)
        rows = page_rows(
            session, sql, {**params, "before": before, "lim": n, "off": 0, "innerlim": n}, desc=True
        )
        has_prev = len(rows) > PAGE_SIZE
        rows = rows[:PAGE_SIZE][::-1]
        return Page(rows, True, has_prev, page, *_ends(rows))
    offset = 0
    if page is not None and page > 1 and after is None:
        key = filters.anchor_key()
        found = (
            anchor(session, version_id=version_id, key=key, page=page)
            if key is not None and version_id
            else None
        )
        if found is not None:
            after = found
        else:
            offset = (page - 1) * PAGE_SIZE
    sql, params = _ids_sql(branches, cond="> :after")
    if len(branches) > 1 and offset:
        params["innerlim"] = offset + n
    else:
        params["innerlim"] = n
    rows = page_rows(session, sql, {**params, "after": after or 0, "lim": n, "off": offset}, desc=False)
    has_next = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    has_prev = bool(after) or offset > 0 or (page or 1) > 1
    return Page(rows, has_next, has_prev, page, *_ends(rows))


def _ends(rows: list[dict]) -> tuple[int | None, int | None]:
    """The first and last id of a page (None, None when it is empty)."""
    return (rows[0]["id"], rows[-1]["id"]) if rows else (None, None)


def visible_ranges(session, *, version_id: int) -> list[list[int]] | None:  # noqa: ANN001
    row = session.execute(
        text("SELECT ranges FROM sample_fts_state WHERE version_id = :v"), {"v": version_id}
    ).first()
    return json.loads(row[0]) if row and row[0] else None


MAX_RANGES = 64


def count_matching(
    session,  # noqa: ANN001
    *,
    dataset_id: int,
    version: int,
    version_id: int | None = None,
    filters: BrowseFilters,
) -> int:
    """The exact number of matching samples. A text-only query over a version whose
    visible ids form few ranges is counted on the index alone (no join), which is
    what keeps a count of a very common query fast."""
    filters.validate()
    only_q = filters.q and not (
        filters.task or filters.tag or filters.min_chars is not None or filters.max_chars is not None
    )
    if only_q and version_id is not None:
        ranges = visible_ranges(session, version_id=version_id)
        if ranges is not None and len(ranges) <= MAX_RANGES:
            m = match_sql(_dialect(session), filters.q, filters.field)
            total = 0
            for lo, hi in ranges:
                sql = f"SELECT count(*) FROM {m.index_from} WHERE {m.where_sql} AND {m.id_col} BETWEEN :lo AND :hi"
                total += session.execute(text(sql), {**m.params, "lo": lo, "hi": hi}).scalar_one()
            return total
    if filters.task and not filters.q and not filters.tag:
        l1, l2 = filters.task_parts()
        if l2 is None:  # one range of the task index, no union needed to count
            flt = BrowseFilters(**{**asdict(filters), "task": ""})
            b = _branches(session, dataset_id=dataset_id, version=version, filters=flt)[0]
            where = " AND ".join(["s.task_l1 = :l1", *[w.replace("+s.", "s.") for w in b.where]])
            return session.execute(
                text(f"SELECT count(*) FROM sample s WHERE {where}"), {**b.params, "l1": l1}
            ).scalar_one()
    total = 0
    for b in _branches(session, dataset_id=dataset_id, version=version, filters=filters):
        sql = f"SELECT count(*) FROM {b.from_sql} WHERE {' AND '.join(b.where)}"
        total += session.execute(text(sql), b.params).scalar_one()
    return total


def parse_int(name: str, value: str | None, *, minimum: int = 0) -> int | None:
    """Form and query values arrive as text; "" means unset. Raises ValueError naming the field."""
    if value is None or str(value).strip() == "":
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None
    if n < minimum:
        raise ValueError(f"{name} must be {minimum} or more")
    if n > 2**62:  # past what the databases store as an integer
        raise ValueError(f"{name} is too large")
    return n


def filters_from(params: dict[str, str]) -> BrowseFilters:
    """BrowseFilters from query or form values (unknown keys ignored); raises ValueError on bad input."""
    f = BrowseFilters(
        q=(params.get("q", "") or "").strip(),
        field=params.get("field", "") or "all",
        task=(params.get("task", "") or "").strip(),
        tag=(params.get("tag", "") or "").strip(),
        min_chars=parse_int("min_chars", params.get("min_chars")),
        max_chars=parse_int("max_chars", params.get("max_chars")),
        length_of=params.get("length_of", "") or "answer",
    )
    f.validate()
    return f


def get_version(session, *, dataset_id: int, number: int):  # noqa: ANN001, ANN201
    """(Dataset, DatasetVersion) or None, in one query: every browser, search, count and statistics
    request starts here, and on PostgreSQL each statement is a round trip and a parse in the server.
    The import report stays unloaded (deferred) since none of them shows it."""
    from sqlalchemy.orm import defer
    from sqlmodel import select

    from app.models import Dataset, DatasetVersion

    row = session.exec(
        select(Dataset, DatasetVersion)
        .join(DatasetVersion, DatasetVersion.dataset_id == Dataset.id)  # type: ignore[arg-type]
        .where(Dataset.id == dataset_id, DatasetVersion.number == number)
        .options(defer(DatasetVersion.import_report_json))  # type: ignore[arg-type]
    ).first()
    return None if row is None else (row[0], row[1])


def l2_values_from_stats(stats: dict | None, l1: str) -> list[str] | None:
    if not stats:
        return None
    for node in stats.get("task_tree", []):
        if node["l1"] == l1:
            return [c["l2"] for c in node["children"]]
    return []
