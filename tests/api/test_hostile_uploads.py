"""Compressed, UTF-16, HTML, empty, over-long and deeply nested uploads: read, or refused with what was found and what to do."""

import gzip
import json

import pytest
from sqlmodel import Session, select

from app.datasets.formats import open_data, read_head
from app.datasets.uploads import register_upload
from app.models import Upload
from tests.conftest import SHARED_DATA

PCLUE = SHARED_DATA / "pclue_train_9.jsonl"
GOOD = b'{"prompt": "p", "answer": "a", "task_type": "qa"}\n'


@pytest.fixture(autouse=True)
def no_indexing(monkeypatch):
    monkeypatch.setattr("app.datasets.jobs.enqueue_index", lambda version_id: None)


def upload(client, body: bytes, name: str) -> int:
    r = client.post(f"/api/uploads?filename={name}", content=body)
    assert r.status_code == 201, r.text
    return r.json()["upload_id"]


def refused(client, uid: int) -> str:
    """The mapping page shows the reason with Import disabled; both import routes answer 422 with it."""
    page = client.get(f"/uploads/{uid}/mapping")
    assert page.status_code == 200
    assert 'id="blocked"' in page.text and " disabled>" in page.text
    r = client.post(f"/api/uploads/{uid}/import", json={"policy": "valid"})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "map at least one field" not in detail
    r = client.post(f"/uploads/{uid}/import", data={"policy": "valid"}, follow_redirects=False)
    assert r.status_code == 422
    return detail


def imported(client, uid: int) -> dict:
    page = client.get(f"/uploads/{uid}/mapping")
    assert page.status_code == 200 and 'id="blocked"' not in page.text
    job = client.post(f"/api/uploads/{uid}/import", json={"policy": "valid"}).json()
    assert job["status"] == "succeeded", job
    return job


@pytest.mark.parametrize("name", ["pclue.jsonl.gz", "pclue.gz", "pclue.jsonl"])
def test_gzip_jsonl_is_read_transparently(researcher, name):
    job = imported(researcher, upload(researcher, gzip.compress(PCLUE.read_bytes()), name))
    assert job["n_ok"] == 705 and job["n_bad"] == 0


def test_gzip_json_array_and_csv(researcher):
    rows = [{"prompt": f"p{i}", "answer": f"a{i}", "task_type": "qa"} for i in range(30)]
    job = imported(researcher, upload(researcher, gzip.compress(json.dumps(rows).encode()), "x.json.gz"))
    assert job["n_ok"] == 30
    csv = "prompt,answer,task_type\n" + "".join(f"p{i},a{i},qa\n" for i in range(30))
    job = imported(researcher, upload(researcher, gzip.compress(csv.encode()), "x.csv.gz"))
    assert job["n_ok"] == 30


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_is_decoded(researcher, engine, encoding):
    text = PCLUE.read_text(encoding="utf-8")
    job = imported(researcher, upload(researcher, text.encode(encoding), "pclue.jsonl"))
    assert job["n_ok"] == 705 and job["n_bad"] == 0
    sample = researcher.get(f"/api/datasets/{job['dataset_id']}/versions/1/samples").json()
    assert any("答案" in json.dumps(s, ensure_ascii=False) for s in sample["items"])


def test_zstd_is_read_or_named(researcher, settings, engine):
    frame = bytes.fromhex("28b52ffd") + b"\x00" * 16  # a zstd frame header: enough to be recognised
    uid = upload(researcher, frame, "x.jsonl.zst")
    with Session(engine) as s:
        _, error = read_head(settings.uploads_dir / s.get(Upload, uid).stored_name)
    if error == "zstd":  # no zstd module installed (none is a dependency): say so and what to do
        detail = refused(researcher, uid)
        assert "zstd" in detail and "gzip" in detail


def test_html_page_is_named(researcher):
    page = b"<!DOCTYPE html>\n<html><head><title>pclue</title></head><body>dataset</body></html>\n"
    detail = refused(researcher, upload(researcher, page, "pclue.jsonl"))
    assert "HTML page" in detail and "raw file" in detail


@pytest.mark.parametrize("body", [b"", b"\n\n  \n", gzip.compress(b"")])
def test_empty_file_is_named(researcher, body):
    detail = refused(researcher, upload(researcher, body, "x.jsonl"))
    assert "empty file" in detail


def test_one_10mb_line_reports_the_line_limit(researcher):
    body = b'{"prompt": "' + b"x" * (10 * 1024 * 1024) + b'", "answer": "y"}\n'
    detail = refused(researcher, upload(researcher, body, "big.jsonl"))
    assert (
        "line longer than the limit" in detail and "4.0 MiB" in detail and "SFTLAB_MAX_LINE_BYTES" in detail
    )


DEEP_ARRAY = b'[{"prompt": "p", "answer": "a", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]"
DEEP_LINE = b'{"prompt": "p", "answer": "a", "x": ' + b"[" * 2000 + b"]" * 2000 + b"}\n"
DEEP_UNMAPPED = b'{"prompt": "p", "answer": "a", "task_type": "qa", "x": ' + b"[" * 600 + b"]" * 600 + b"}\n"
MSGS = (
    '{"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "", "tool_calls": %s}, '
)
MSGS += '{"role": "tool", "content": "r"}, {"role": "assistant", "content": "ok"}], "task_type": "tools"}\n'
GOOD_TOOL = (MSGS % '[{"function": {"name": "f", "arguments": "{}"}}]').encode()
DEEP_TOOL = (MSGS % ("[" * 300 + "]" * 300)).encode()


@pytest.mark.parametrize(("body", "name"), [(DEEP_ARRAY, "a.json"), (DEEP_LINE, "b.jsonl")])
def test_json_nested_past_the_parsers_is_refused_not_a_500(researcher, settings, engine, body, name):
    uid = upload(researcher, body, name)
    assert researcher.get(f"/api/uploads/{uid}").status_code == 200
    assert researcher.post(f"/uploads/{uid}/preview", data={"prompt": "prompt"}).status_code == 200
    assert "nested too deeply" in refused(researcher, uid)
    with Session(engine) as s:
        stored = {u.stored_name for u in s.exec(select(Upload)).all()}
    assert {p.name for p in settings.uploads_dir.iterdir()} == stored  # no orphan file


def test_a_deep_field_that_is_not_imported_is_harmless(researcher):
    uid = upload(researcher, DEEP_UNMAPPED + GOOD, "deep.jsonl")
    info = researcher.get(f"/api/uploads/{uid}")
    assert info.status_code == 200 and "not shown" in info.json()["preview"][0]["record"]
    page = researcher.get(f"/uploads/{uid}/mapping")
    assert page.status_code == 200 and "not shown" in page.text
    assert imported(researcher, uid)["n_ok"] == 2


def test_a_deep_tool_call_is_a_reported_bad_line(researcher):
    uid = upload(researcher, GOOD_TOOL + DEEP_TOOL + GOOD_TOOL, "tools.jsonl")
    assert researcher.get(f"/api/uploads/{uid}").status_code == 200
    assert researcher.get(f"/uploads/{uid}/mapping").status_code == 200
    job = imported(researcher, uid)
    assert job["n_ok"] == 2 and job["report"]["by_reason"] == {"too_deep": 1}, job["report"]
    array = (
        b"[" + GOOD + b"," + DEEP_LINE + b"," + GOOD + b"]"
    )  # the array's decoder gives up at the recursion
    job = imported(researcher, upload(researcher, array, "mixed.json"))  # limit: what follows is lost
    assert job["n_ok"] == 1 and job["report"]["by_reason"] == {"too_deep": 1}


def test_a_failing_registration_leaves_no_file(settings, engine, make_user, monkeypatch):
    user = make_user()
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    (settings.uploads_dir / "f.upload").write_bytes(GOOD)

    def boom(*a, **k):  # noqa: ANN002, ANN003
        raise RecursionError("deep")

    monkeypatch.setattr("app.datasets.uploads.describe", boom)
    with Session(engine) as s, pytest.raises(RecursionError):
        register_upload(s, settings=settings, owner_id=user.id, filename="x", stored="f.upload", size=1)
    assert list(settings.uploads_dir.iterdir()) == []


def test_open_data_undoes_gzip_and_utf16(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(gzip.compress('{"q": "中文"}\n'.encode("utf-16")))
    with open_data(p) as (f, _):
        assert f.read() == '{"q": "中文"}\n'.encode()


def test_many_bad_lines_before_good_ones_do_not_block_the_import(researcher):
    uid = upload(researcher, b"{not json\n" * 60 + GOOD, "late.jsonl")
    assert 'id="blocked"' not in researcher.get(f"/uploads/{uid}/mapping").text
    mapping = {"prompt": "prompt", "answer": "answer", "task_l1": "task_type"}  # nothing to guess from
    job = researcher.post(f"/api/uploads/{uid}/import", json={"mapping": mapping}).json()
    assert job["n_ok"] == 1 and job["report"]["by_reason"] == {"invalid_json": 60}


def test_a_cut_gzip_file_keeps_what_it_could_read(researcher):
    data = gzip.compress(PCLUE.read_bytes())
    uid = upload(researcher, data[: len(data) // 2], "cut.jsonl.gz")
    assert researcher.get(f"/api/uploads/{uid}").status_code == 200
    job = imported(researcher, uid)
    assert 0 < job["n_ok"] < 705 and job["report"]["by_reason"] == {"unreadable_file": 1}, job["report"]
    array = gzip.compress(json.dumps([{"prompt": "p", "answer": "a", "task_type": "qa"}] * 3000).encode())
    detail = refused(researcher, upload(researcher, array[: len(array) // 2], "cut.json.gz"))
    assert "ends early or is corrupt" in detail  # the array's first read already fails


def test_excel_unicode_text_utf16_tsv(researcher):
    tsv = "prompt\tanswer\ttask_type\r\n" + "".join(f"问题{i}\t回答{i}\tqa\r\n" for i in range(10))
    job = imported(researcher, upload(researcher, tsv.encode("utf-16"), "sheet.txt"))
    assert job["n_ok"] == 10 and job["n_bad"] == 0 and job["report"]["container"] == "csv"
