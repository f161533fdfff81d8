"""Files small on disk but huge once read (Parquet dictionaries, gzip) are refused row by row or cut off
at the expanded-size cap, with bounded memory."""

import gzip
import resource

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.datasets.formats import CsvReader, JsonArrayReader, JsonlReader, ParquetReader, preview
from app.models import Role

BIG = 5 << 20  # one row's string: over the 4 MiB default of max_line_bytes
ROWS = 2000  # 10 GB if every row were read as plain strings


def _repeated(value: str, n: int) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int32)), pa.array([value]))


def hostile_parquet(path, *, size: int = BIG, rows: int = ROWS) -> None:
    """One dictionary-encoded string of `size` bytes repeated over `rows` rows; the Arrow schema is not
    stored, so a reader that does not ask for dictionaries gets plain strings (as from pandas)."""
    table = pa.table({"prompt": _repeated("p" * size, rows), "response": pa.array(["ok"] * rows)})
    pq.write_table(table, path, use_dictionary=True, compression="zstd", store_schema=False)


def _max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_every_oversized_row_is_an_issue_with_its_number(tmp_path):
    path = tmp_path / "h.parquet"
    hostile_parquet(path)
    assert path.stat().st_size < 100_000
    before = _max_rss_mib()
    got = list(ParquetReader(path, max_line_bytes=4 << 20))
    assert _max_rss_mib() - before < 1000  # reading it as Python strings would take 10 GB
    assert [n for n, _, _ in got] == list(range(1, ROWS + 1))
    assert all(obj is None and issue.reason == "oversized_line" for _, obj, issue in got)
    assert got[0][2].line == 1 and got[0][2].detail == f"{BIG + 8 + 10} bytes > {4 << 20} once read"


def test_rows_under_the_limit_are_read_and_the_oversized_one_is_named(tmp_path):
    path = tmp_path / "mixed.parquet"
    prompts = ["a", "b", "x" * 5000, "c", None]
    messages = [[{"role": "user", "content": "hi"}], [], [{"role": "user", "content": "y" * 3000}], None, []]
    pq.write_table(pa.table({"prompt": prompts, "messages": messages}), path)
    got = list(ParquetReader(path, max_line_bytes=4000))
    assert [(n, issue.reason if issue else obj["prompt"]) for n, obj, issue in got] == [
        (1, "a"),
        (2, "b"),
        (3, "oversized_line"),
        (4, "c"),
        (5, None),
    ]
    assert got[0][1]["messages"] == [{"role": "user", "content": "hi"}]
    # the nested list counts too: 3000 bytes of content alone is over a 2000-byte limit
    assert [n for n, _, issue in ParquetReader(path, max_line_bytes=2000) if issue] == [3]


def test_the_file_stops_at_the_expanded_size_cap(tmp_path):
    path = tmp_path / "wide.parquet"
    hostile_parquet(path, size=100_000, rows=100)  # 10 MB once read, every row under the line limit
    got = list(ParquetReader(path, max_line_bytes=1 << 20, max_expanded_bytes=1_000_000))
    *ok, (n, obj, issue) = got
    assert all(issue is None for _, _, issue in ok) and len(ok) < 10
    assert obj is None and issue.reason == "oversized_file" and n == len(ok) + 1
    assert "SFTLAB_UPLOAD_MAX_EXPANDED_BYTES" in issue.detail


def test_the_preview_reads_a_bounded_prefix(tmp_path):
    path = tmp_path / "h.parquet"
    hostile_parquet(path)
    rows, issues = preview(path, "parquet", max_line_bytes=4 << 20)
    assert rows == [] and len(issues) == 51 and issues[0].line == 1


@pytest.fixture(autouse=True)
def no_indexing(monkeypatch):
    monkeypatch.setattr("app.datasets.jobs.enqueue_index", lambda _: None)


def test_mapping_page_and_import_refuse_it_with_the_row_number(client_as, tmp_path):
    researcher = client_as(Role.researcher)
    path = tmp_path / "h.parquet"
    hostile_parquet(path)
    before = _max_rss_mib()
    up = researcher.post("/api/uploads?filename=h.parquet", content=path.read_bytes())
    assert up.status_code == 201, up.text
    page = researcher.get(up.json()["mapping_url"])
    assert page.status_code == 200
    assert "#1 line too long; #2 line too long" in page.text
    mapping = {"prompt": ["prompt"], "answer": "response"}
    r = researcher.post(f"/api/uploads/{up.json()['upload_id']}/import", json={"mapping": mapping})
    assert r.status_code == 202, r.text
    job = researcher.get(r.json()["status_url"]).json()
    assert (job["status"], job["n_ok"], job["n_bad"]) == ("rejected", 0, ROWS)
    assert job["report"]["by_reason"] == {"oversized_line": ROWS}
    assert job["report"]["issues"][0][:2] == [1, "oversized_line"]
    assert _max_rss_mib() - before < 1000


def test_import_job_reports_every_oversized_row(settings, make_user, tmp_path):
    from app.datasets.import_options import ImportOptions
    from app.datasets.importer import import_file
    from app.datasets.mapping import Mapping

    path = tmp_path / "h.parquet"
    hostile_parquet(path, rows=300)
    before = _max_rss_mib()
    result = import_file(
        path=path,
        options=ImportOptions(mapping=Mapping(prompt=["prompt"], answer="response"), name="h"),
        owner_id=make_user().id,
        filename="h.parquet",
    )
    assert _max_rss_mib() - before < 1000
    assert (result.status, result.n_ok, result.n_bad) == ("rejected", 0, 300)
    assert result.report["by_reason"] == {"oversized_line": 300}
    assert result.report["unit"] == "row" and result.report["issues"][0][0] == 1


def test_a_csv_row_over_the_line_limit_is_named(settings, make_user, tmp_path):
    from app.datasets.import_options import ImportOptions
    from app.datasets.importer import import_file
    from app.datasets.mapping import Mapping

    path = tmp_path / "big.csv"
    path.write_text("prompt,response\nhello,world\n" + "x" * 5000 + ",y\nlast,row\n")
    small = settings.model_copy(update={"max_line_bytes": 1000})
    result = import_file(
        path=path,
        options=ImportOptions(
            mapping=Mapping(prompt=["prompt"], answer="response", default_task="qa"), name="c"
        ),
        owner_id=make_user().id,
        settings=small,
        filename="big.csv",
    )
    assert (result.status, result.n_ok) == ("succeeded", 1)
    (line, reason, detail), *_ = result.report["issues"]
    assert (line, reason) == (3, "oversized_line") and "field larger than field limit (1000)" in detail


@pytest.mark.parametrize(
    ("reader", "name", "head", "row", "sep"),
    [
        (JsonlReader, "b.jsonl.gz", b"", b'{"prompt": "' + b"p" * 1000 + b'"}', b"\n"),
        (CsvReader, "b.csv.gz", b"prompt\n", b"p" * 1000, b"\n"),
        (JsonArrayReader, "b.json.gz", b"[", b'{"prompt": "' + b"p" * 1000 + b'"}', b","),
    ],
)
def test_a_compressed_file_stops_at_the_expanded_size_cap(tmp_path, reader, name, head, row, sep):
    path = tmp_path / name
    tail = b"]" if head == b"[" else b""
    path.write_bytes(gzip.compress(head + sep.join([row] * 20_000) + tail))  # 20 MB once decompressed
    assert path.stat().st_size < 200_000
    got = list(reader(path, max_line_bytes=1 << 20, max_expanded_bytes=3_000_000))
    *ok, (n, obj, issue) = got
    assert all(issue is None for _, _, issue in ok) and 1000 < len(ok) < 3000
    assert obj is None and issue.reason == "oversized_file" and n == ok[-1][0] + 1
    assert len(list(reader(path, max_line_bytes=1 << 20))) == 20_000  # no cap: everything is read
