"""Containers and record shapes are detected from the first bytes/rows, and readers number records correctly."""

import json

import pyarrow as pa
import pyarrow.parquet as pq

from app.datasets.formats import JsonArrayReader, JsonlReader, describe, detect_shape, sniff_container
from tests.conftest import SHARED_DATA

MSG = {"messages": [{"role": "user", "content": "你好"}, {"role": "assistant", "content": "好"}]}


def test_real_files_are_detected():
    for name in ("pclue_train_9.jsonl", "belle_eval_set.json", "belle_zh_seed_tasks.jsonl"):
        assert (
            describe(SHARED_DATA / name, name, max_line_bytes=1 << 20) == "custom/jsonl"
        )  # BELLE's .json is JSONL


def test_shapes():
    assert detect_shape([MSG]) == "openai-messages"
    assert detect_shape([{"conversations": [{"from": "human", "value": "x"}]}]) == "sharegpt"
    assert detect_shape([{"instruction": "a", "input": "", "output": "b"}]) == "alpaca"
    assert detect_shape([{"prompt": "a", "response": "b"}]) == "prompt-response"
    assert detect_shape([{"input": "a", "target": "b"}]) == "custom"
    assert detect_shape([]) == "custom"


def test_containers(tmp_path):
    cases = {
        "a.jsonl": json.dumps(MSG).encode() + b"\n",
        "b.json": b"\xef\xbb\xbf  [" + json.dumps(MSG).encode() + b"]",
        "c.csv": "prompt,response\n问,答\n".encode(),
        "d.txt": b"prompt\tresponse\nq\ta\n",
        "e.jsonl": b"   \n\n",
        "f.bin": b"\x00\x01\x02",
        "g.parquet": b"not parquet",
    }
    want = {
        "a.jsonl": "jsonl",
        "b.json": "json",
        "c.csv": "csv",
        "d.txt": "csv",
        "e.jsonl": "empty",
        "f.bin": "unsupported",
        "g.parquet": "unsupported",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        assert sniff_container(tmp_path / name, name) == want[name], name
    pq.write_table(pa.table({"prompt": ["q"], "response": ["a"]}), tmp_path / "h.parquet")
    assert describe(tmp_path / "h.parquet", "h.parquet", max_line_bytes=1000) == "prompt-response/parquet"


def test_jsonl_line_numbers_skip_blank_lines(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf" + json.dumps(MSG).encode() + b"\n\n  \n" + json.dumps(MSG).encode() + b"\r\n"
    )
    got = [(n, obj is not None, issue) for n, obj, issue in JsonlReader(path, max_line_bytes=1000)]
    assert got == [(1, True, None), (4, True, None)]


def test_json_array_streams_elements_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(JsonArrayReader, "chunk", 64)  # force many partial reads
    items = [{"instruction": f"第{i}题" * (i % 7), "output": "答" * i} for i in range(200)]
    path = tmp_path / "x.json"
    path.write_text(json.dumps(items, ensure_ascii=False, indent=1), encoding="utf-8")
    got = list(JsonArrayReader(path, max_line_bytes=10_000))
    assert [n for n, _, _ in got] == list(range(1, 201))
    assert [obj for _, obj, _ in got] == items
    (tmp_path / "e.json").write_text("[]")
    assert list(JsonArrayReader(tmp_path / "e.json", max_line_bytes=100)) == []


def test_oversized_line_is_skipped_without_losing_the_next(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(json.dumps({"a": "x" * 5000}).encode() + b"\n" + json.dumps(MSG).encode() + b"\n")
    got = list(JsonlReader(path, max_line_bytes=200))
    assert got[0][2].reason == "oversized_line" and got[0][0] == 1
    assert got[1][0] == 2 and got[1][1] == MSG
