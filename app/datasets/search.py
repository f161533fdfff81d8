"""Case-insensitive substring search over prompts and answers, on SQLite and PostgreSQL.

Semantics, defined once so every backend and the brute force agree: a sample
matches query q in field F when `fold(q)` is a substring of `fold(F)`, where F is
the prompt, the answer, or either (field "all"; a match never spans the two). The
answer field covers the reference too (an eval sample's expected answer): the answer
and the reference are searched as separate texts, and a match spans neither.
`fold` is Python's `str.lower()` made context-free and length-preserving (see
below), so a match found in folded text is at the same offsets in the original,
which is what the highlighter relies on.

The indexes hold folded text written by `write_index` (not the database's own case
folding, which differs from Python's outside ASCII):
- SQLite, 3+ characters: contentless FTS5 `trigram case_sensitive 1` table
  `sample_fts(prompt, answer)`, queried as a phrase, which for trigrams is exactly
  "is a substring".
- SQLite, 1-2 characters: contentless FTS5 `detail=none` table `sample_grams`
  whose document is the set of the sample's unigrams and bigrams, each encoded as
  an ASCII token (field letter + base-36 code points), so a 1-2 character query
  is one token lookup. (A LIKE against the trigram table returns 0 rows for 1-2
  CJK characters on SQLite 3.40, silently.)
- PostgreSQL: `sample_fts(id, prompt_f, answer_f, grams text[])`, LIKE through
  pg_trgm GIN indexes for 3+ characters and `grams &&` through a GIN index for 1-2.

A reference shares the answer's column (no migration needed): the indexed answer text
is `answer + U+FFFF + reference`, and its grams are the union of both texts' grams, so
only a query holding U+FFFF (a noncharacter, and already the stand-in for NUL) could
match across the two.
"""

from dataclasses import dataclass

import numpy as np
import orjson
from sqlalchemy import text
from sqlalchemy.engine import Connection

FIELDS = ("all", "prompt", "answer")
SEP = "\uffff"  # between an answer and its reference in the answer column of the indexes
_PRE = str.maketrans({"\u0130": "i", "\u03a3": "\u03c3"})
_B36 = np.frombuffer(b"0123456789abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)


def fold(s: str) -> str:
    """`str.lower()` without its two surprises: U+0130 (İ) lowers to two characters,
    and capital sigma lowers to a final or non-final sigma depending on its
    neighbours. Mapping both first keeps folding per character and length-preserving."""
    if "\u0130" in s or "\u03a3" in s:  # two C-speed scans; translate() is slow per character
        s = s.translate(_PRE)
    return s.lower()


def _uniq(a: np.ndarray) -> np.ndarray:
    """Sorted unique values (np.unique's hash path in numpy 2 is several times slower on these keys)."""
    a = np.sort(a)
    return a[np.concatenate(([True], a[1:] != a[:-1]))] if a.size else a


def _digits(codes: np.ndarray) -> np.ndarray:
    """Four base-36 digits (ASCII bytes) per code point: 36**4 > 0x10FFFF."""
    out = np.empty((codes.shape[0], 4), dtype=np.uint8)
    c = codes.astype(np.uint32)
    for k in range(3, -1, -1):
        out[:, k] = _B36[c % 36]
        c //= 36
    return out


def _codes(s: str) -> np.ndarray:
    return np.frombuffer(s.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def _indexable(folded: str) -> str:
    """FTS5 stops reading a text at a NUL character (and SQLite 3.40's JSON functions cut a string there),
    so indexes and queries both see U+FFFF, a Unicode noncharacter, in its place. Length-preserving."""
    return folded.replace("\x00", "\uffff") if "\x00" in folded else folded


def gram_token(gram: str, prefix: str) -> str:
    """The token of one folded unigram or bigram in field `prefix` ('p' or 'a')."""
    return prefix + _digits(_codes(gram)).tobytes().decode("ascii")


def gram_docs(texts: list[str], prefix: str) -> list[list[bytes]]:
    """Per folded text, its distinct unigram and bigram tokens as space-terminated ASCII byte strings.

    Vectorised over the batch: per-sample unique grams come from one np.unique over
    (sample index, code point[, next code point]) keys, then tokens are formatted
    as fixed-width byte rows so each sample's tokens are one contiguous slice."""
    n = len(texts)
    if n == 0:
        return []
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=n)
    codes = _codes("".join(texts)).astype(np.uint64)
    idx = np.repeat(np.arange(n, dtype=np.uint64), lengths)
    uni = _uniq((idx << np.uint64(21)) | codes)
    same = idx[:-1] == idx[1:]
    bi = _uniq((idx[:-1][same] << np.uint64(42)) | (codes[:-1][same] << np.uint64(21)) | codes[1:][same])
    mask21 = np.uint64((1 << 21) - 1)
    p = ord(prefix)
    urows = np.empty((uni.shape[0], 6), dtype=np.uint8)
    urows[:, 0] = p
    urows[:, 1:5] = _digits(uni & mask21)
    urows[:, 5] = 32
    brows = np.empty((bi.shape[0], 10), dtype=np.uint8)
    brows[:, 0] = p
    brows[:, 1:5] = _digits((bi >> np.uint64(21)) & mask21)
    brows[:, 5:9] = _digits(bi & mask21)
    brows[:, 9] = 32
    ucount = np.bincount((uni >> np.uint64(21)).astype(np.int64), minlength=n)
    bcount = (
        np.bincount((bi >> np.uint64(42)).astype(np.int64), minlength=n) if bi.size else np.zeros(n, np.int64)
    )
    uoff = np.concatenate(([0], np.cumsum(ucount))) * 6
    boff = np.concatenate(([0], np.cumsum(bcount))) * 10
    ub, bb = urows.tobytes(), brows.tobytes()
    return [[ub[uoff[i] : uoff[i + 1]], bb[boff[i] : boff[i + 1]]] for i in range(n)]


@dataclass
class IndexBatch:
    """One batch of (id, prompt, answer) rows folded and tokenised for the search indexes.

    Preparing (Python and numpy work) is separate from writing so the indexer can prepare the next batch
    in one thread while another writes this one. On SQLite each table's rows travel as ONE JSON text
    that a single `INSERT ... SELECT FROM json_each(?)` unpacks: the whole FTS5 insert is then one
    sqlite3_step, which runs without the GIL, instead of executemany's per-row step that must take the
    GIL back after every row (and waits up to the 5 ms switch interval for it while the preparing thread
    runs Python, which serialised the two threads)."""

    ids: list[int]
    prompts: list[str]
    answers: list[str]
    grams: list[str]
    fts_json: str | None  # SQLite: [[id, prompt, answer], ...]
    grams_json: str | None  # SQLite: [[id, grams], ...]


def prepare_rows(rows: list[tuple], dialect: str) -> IndexBatch:
    """Folds the texts and builds each row's gram document (the part of indexing that is Python's).

    Rows are (id, prompt, answer) or (id, prompt, answer, reference); a reference is searched as part
    of the answer field (see the module docstring)."""
    ids = [r[0] for r in rows]
    prompts = [_indexable(fold(r[1])) for r in rows]
    answers = [_indexable(fold(r[2])) for r in rows]
    refs = [_indexable(fold(r[3])) if len(r) > 3 and r[3] else "" for r in rows]
    pg = gram_docs(prompts, "p")
    ag = gram_docs(answers, "a")
    if any(refs):  # grams per text, so no gram spans answer and reference
        rg = gram_docs(refs, "a")
        ag = [a + r if ref else a for a, r, ref in zip(ag, rg, refs, strict=True)]
        answers = [a + SEP + ref if ref else a for a, ref in zip(answers, refs, strict=True)]
    grams = [b"".join(p + a).decode("ascii") for p, a in zip(pg, ag, strict=True)]
    if dialect != "sqlite":
        return IndexBatch(ids, prompts, answers, grams, None, None)
    fts_json = orjson.dumps(list(zip(ids, prompts, answers, strict=True))).decode()
    grams_json = orjson.dumps(list(zip(ids, grams, strict=True))).decode()
    return IndexBatch(ids, prompts, answers, grams, fts_json, grams_json)


# FTS5 flushes its in-memory pending terms to a new on-disk segment whenever they pass `hashsize` (1 MiB by
# default), and merging those small segments again and again was half of the build time. 256 MiB lets a
# batch's terms reach disk as one segment: the build takes half the time (measured at 60k-200k rows).
# The value is stored in the table's config; it only bounds memory per transaction.
FTS_HASHSIZE = 256 * 2**20


def configure_index(conn: Connection) -> None:
    """Sets the FTS5 build settings above (SQLite; PostgreSQL's GIN indexes need none)."""
    if conn.dialect.name == "sqlite":
        for table in ("sample_fts", "sample_grams"):
            conn.exec_driver_sql(f"INSERT INTO {table}({table}, rank) VALUES ('hashsize', {FTS_HASHSIZE})")


def write_index(conn: Connection, batch: IndexBatch) -> None:
    """Adds a prepared batch to the search indexes of conn's database (in conn's transaction)."""
    if not batch.ids:
        return
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(
            "INSERT INTO sample_fts(rowid, prompt, answer) SELECT value->>0, value->>1, value->>2 FROM json_each(?)",
            (batch.fts_json,),
        )
        conn.exec_driver_sql(
            "INSERT INTO sample_grams(rowid, g) SELECT value->>0, value->>1 FROM json_each(?)",
            (batch.grams_json,),
        )
    else:
        params = [
            {"id": i, "p": p, "a": a, "g": g.split()}
            for i, p, a, g in zip(batch.ids, batch.prompts, batch.answers, batch.grams, strict=True)
        ]
        conn.execute(
            text("INSERT INTO sample_fts (id, prompt_f, answer_f, grams) VALUES (:id, :p, :a, :g)"), params
        )


@dataclass
class Match:
    """SQL pieces that restrict `sample s` to rows matching a query: FROM, WHERE, the id column, params."""

    from_sql: str
    where_sql: str
    id_col: str
    params: dict
    index_from: str  # the index table alone, for counts that need no join


def match_sql(dialect: str, q: str, field: str = "all") -> Match:
    """The index lookup for a non-empty query; see the module docstring for which index serves which length."""
    if field not in FIELDS:
        raise ValueError(f"field must be one of {', '.join(FIELDS)}, not {field!r}")
    qf = _indexable(fold(q))
    prefixes = {"all": "pa", "prompt": "p", "answer": "a"}[field]
    short = len(qf) <= 2
    if dialect == "sqlite":
        if short:
            toks = [gram_token(qf, p) for p in prefixes]
            return Match(
                "sample_grams g CROSS JOIN sample s ON s.id = g.rowid",
                "sample_grams MATCH :m",
                "g.rowid",
                {"m": " OR ".join(f'"{t}"' for t in toks)},
                "sample_grams g",
            )
        phrase = '"' + qf.replace('"', '""') + '"'
        m = phrase if field == "all" else f"{{{field}}} : {phrase}"
        return Match(
            "sample_fts f CROSS JOIN sample s ON s.id = f.rowid",
            "sample_fts MATCH :m",
            "f.rowid",
            {"m": m},
            "sample_fts f",
        )
    if short:
        toks = [gram_token(qf, p) for p in prefixes]
        return Match(
            "sample_fts f JOIN sample s ON s.id = f.id",
            "f.grams && CAST(:toks AS TEXT[])",
            "f.id",
            {"toks": toks},
            "sample_fts f",
        )
    pat = "%" + qf.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
    cols = {"all": ["prompt_f", "answer_f"], "prompt": ["prompt_f"], "answer": ["answer_f"]}[field]
    where = "(" + " OR ".join(f"f.{c} LIKE :pat ESCAPE '!'" for c in cols) + ")"
    return Match("sample_fts f JOIN sample s ON s.id = f.id", where, "f.id", {"pat": pat}, "sample_fts f")


def brute_force_ids(
    conn: Connection, *, dataset_id: int, version: int, q: str, field: str = "all"
) -> list[int]:
    """The reference the indexes are tested against: a Python scan of every visible row."""
    from app.datasets.visibility import VISIBLE_SQL

    qf = fold(q)
    rows = conn.execute(
        text(f"SELECT s.id, s.prompt, s.answer, s.reference FROM sample s WHERE {VISIBLE_SQL} ORDER BY s.id"),
        {"dataset_id": dataset_id, "version": version},
    )
    out = []
    for sid, prompt, answer, reference in rows:
        hit_p = field in ("all", "prompt") and qf in fold(prompt)
        hit_a = field in ("all", "answer") and (qf in fold(answer) or qf in fold(reference or ""))
        if hit_p or hit_a:
            out.append(sid)
    return out
