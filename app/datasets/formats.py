"""Reading uploaded files as a stream of records, whatever the container.

A reader yields `(line_no, obj, issue)` for each record: `obj` is the parsed value
(normally a dict) and `issue` is None, or `obj` is None and `issue` says why the
record could not be read. Readers never hold the whole file: JSONL is read line by
line with a length cap (so a 2 GiB line cannot exhaust memory), JSON arrays element
by element, CSV row by row, Parquet batch by batch. `position` tells how far the
reader has got, for progress bars.

Containers: jsonl, json (a top-level array), csv, parquet. Any of the text ones may come
gzip-compressed (zstd too where a zstd module is installed) and in UTF-16 (by BOM, or by
the NUL bytes of ASCII text): `open_data` undoes both as a stream, so readers always see
UTF-8 bytes. `diagnose` says what an unreadable file is and what to do. Shapes (what a record
looks like): openai-messages, sharegpt, alpaca, prompt-response, custom.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io
import itertools
import json
import re
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

BOM = b"\xef\xbb\xbf"
SNIFF_BYTES = 64 * 1024
# What is kept of a record nested deeper than this is refused (tool calls, app.datasets.validate) and the
# preview does not show it: orjson writes at most 255 levels and pydantic fewer. Readers refuse only what
# they cannot parse (orjson stops at 1024 levels, the JSON array decoder at the recursion limit), so
# reading costs no depth walk per record.
MAX_DEPTH = 100
PREVIEW_ISSUES = 50  # the preview stops after this many bad records
PREVIEW_BYTES = 32 << 20  # ... or after this many bytes of the file


@dataclass(frozen=True)
class Issue:
    """Why one record (or the whole file, line 0) was rejected."""

    line: int
    reason: str  # a code from REASONS
    detail: str = ""


REASONS = {
    "invalid_json": "invalid JSON",
    "invalid_utf8": "invalid UTF-8",
    "oversized_line": "line longer than the limit",
    "oversized_file": "file larger than the limit once read",
    "not_object": "not a JSON object",
    "empty_file": "empty file",
    "unsupported_format": "unsupported format",
    "unreadable_file": "file cannot be read",
    "wrong_column_count": "wrong number of CSV columns",
    "wrong_type": "wrong field type",
    "missing_prompt": "missing prompt",
    "missing_answer": "missing answer",
    "empty_turn": "empty turn",
    "unknown_role": "unknown role",
    "assistant_not_last": "assistant turn not last",
    "no_user_turn": "no user turn",
    "missing_task_type": "missing task_type",
    "task_type_too_long": "task_type too long",
    "tag_too_long": "tag too long",
    "nul_character": "NUL character",
    "too_deep": "nested too deeply",
}


def unit_of(container: str) -> str:
    """What a record number means for this container, for reports."""
    return {"csv": "row", "parquet": "row", "json": "element"}.get(container, "line")


# --- layers: compression and text encoding ----------------------------------------------------

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
OTHER_ARCHIVES = {
    b"PK\x03\x04": "a ZIP archive",
    b"BZh": "a bzip2-compressed file",
    b"\xfd7zXZ": "an xz-compressed file",
    b"7z\xbc\xaf": "a 7z archive",
}


class UnreadableFile(Exception):
    """A file whose layers cannot be undone here (zstd without a decoder)."""


def _zstd_reader(raw: BinaryIO) -> BinaryIO | None:
    """A decompressing stream over raw, or None when no zstd module is installed (none is required)."""
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        try:
            from compression import zstd  # type: ignore[import-not-found]  # Python 3.14
        except ImportError:
            return None
        return zstd.ZstdFile(raw)  # type: ignore[no-any-return]
    return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw))  # type: ignore[no-any-return]


def text_encoding(head: bytes) -> str:
    """utf-8, or utf-16 / utf-16-le / utf-16-be when the first bytes say so (BOM, or ASCII with NULs)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) and not head.startswith(b"\xff\xfe\x00\x00"):
        return "utf-16"
    if len(head) >= 4 and head[0] and not head[1] and head[2] and not head[3]:
        return "utf-16-le"
    if len(head) >= 4 and not head[0] and head[1] and not head[2] and head[3]:
        return "utf-16-be"
    return "utf-8"


class _Utf8Recoder(io.RawIOBase):
    """A byte stream of another encoding's text, re-encoded as UTF-8 (for readers that parse bytes)."""

    def __init__(self, stream: BinaryIO, encoding: str) -> None:
        self.text = io.TextIOWrapper(stream, encoding=encoding, errors="surrogateescape", newline="")
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self.pending:
            chunk = self.text.read(1 << 16)
            if not chunk:
                return 0
            self.pending = chunk.encode("utf-8", "surrogateescape")
        n = min(len(b), len(self.pending))
        b[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


class ExpandedTooLarge(Exception):
    """A decompressed stream went past the file's expanded-size cap."""


class _Capped(io.RawIOBase):
    """A decompressed stream that raises ExpandedTooLarge past `limit` bytes (a gzip bomb stops there)."""

    def __init__(self, stream: BinaryIO, limit: int) -> None:
        self.stream, self.limit, self.count = stream, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.stream.readinto(b)  # type: ignore[attr-defined]
        self.count += n
        if self.count > self.limit:
            raise ExpandedTooLarge(self.limit)
        return n  # type: ignore[no-any-return]


@contextlib.contextmanager
def open_data(path: Path, *, max_expanded_bytes: int | None = None) -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """(UTF-8 byte stream, the raw file): decompressed and re-encoded as needed; a plain UTF-8 file is
    the raw file itself, so the common case costs nothing. raw.tell() is the progress in file bytes.
    A compressed stream is cut off with ExpandedTooLarge past `max_expanded_bytes` (a plain file is no
    larger than the upload limit). Raises UnreadableFile when a layer cannot be undone."""
    with open(path, "rb") as raw:
        magic = raw.read(4)
        raw.seek(0)
        stream: BinaryIO = raw
        if magic.startswith(GZIP_MAGIC):
            stream = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
        elif magic.startswith(ZSTD_MAGIC):
            z = _zstd_reader(raw)
            if z is None:
                raise UnreadableFile("zstd")
            stream = z
        if stream is not raw and max_expanded_bytes is not None:
            stream = io.BufferedReader(_Capped(stream, max_expanded_bytes), 1 << 16)  # type: ignore[assignment]
        try:
            head = stream.peek(4)[:4] if hasattr(stream, "peek") else b""
        except (OSError, EOFError) as exc:
            raise UnreadableFile(f"broken compressed data: {exc}") from None
        encoding = text_encoding(head)
        if encoding != "utf-8":
            stream = io.BufferedReader(_Utf8Recoder(stream, encoding), 1 << 16)  # type: ignore[assignment]
        yield stream, raw


def read_head(path: Path, n: int = SNIFF_BYTES) -> tuple[bytes, str]:
    """The first n bytes as the readers see them, and "" or why they cannot be read."""
    try:
        with open_data(path) as (f, _):
            return f.read(n), ""
    except UnreadableFile as exc:
        return b"", str(exc)
    except (OSError, EOFError, UnicodeError) as exc:  # a broken gzip stream, a cut UTF-16 file
        return b"", f"broken data: {exc}"


def diagnose(path: Path, filename: str = "") -> str:
    """What an empty or unsupported file is, and what to do about it (for the upload and mapping pages)."""
    with open(path, "rb") as f:
        raw = f.read(SNIFF_BYTES)
    head, error = read_head(path)
    if error == "zstd":
        return (
            "unsupported format: a zstd-compressed file, and this server has no zstd decoder;"
            " decompress it (zstd -d) or compress it with gzip, then upload it again"
        )
    if error:
        return f"unsupported format: {error}; upload the file again, uncompressed if need be"
    if not raw.strip() or not head.strip(b" \t\r\n\xef\xbb\xbf"):
        return (
            f"empty file: it holds no records ({len(raw)} bytes{', after decompression' if raw else ''});"
            " check that the export wrote any rows"
        )
    for magic, what in OTHER_ARCHIVES.items():
        if raw.startswith(magic):
            return (
                f"unsupported format: {what}; unpack it and upload the JSONL, JSON, CSV or Parquet file"
                " inside (gzip is read directly)"
            )
    lower = head.lstrip()[:1024].lower()
    if lower.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml")) or b"<html" in lower:
        return (
            "unsupported format: an HTML page, not data (a link to the page that shows the file was"
            " saved instead of the file); download the raw file (on Hugging Face the /resolve/ link)"
        )
    if b"\x00" in head:
        return "unsupported format: binary data that is not Parquet, JSONL, JSON or CSV"
    try:
        head.split(b"\n", 1)[0].decode("utf-8")
    except UnicodeDecodeError:
        return (
            "unsupported format: text that is neither UTF-8 nor UTF-16 (GBK or Latin-1?);"
            " save it as UTF-8 and upload it again"
        )
    first = head.lstrip()[:40].decode("utf-8", "replace")
    return (
        f"unsupported format: not JSONL, a JSON array, CSV or Parquet (it starts with {first!r});"
        " use one of those, or name a CSV/TSV file .csv or .tsv"
    )


# --- detection -------------------------------------------------------------------------------


def sniff_container(path: Path, filename: str = "") -> str:
    """jsonl | json | csv | parquet | empty | unsupported, from the first bytes (and the name as a hint)."""
    with open(path, "rb") as f:
        if f.read(4) == b"PAR1":
            return "parquet"
    head, error = read_head(path)
    if error:
        return "unsupported"
    text = head[3:] if head.startswith(BOM) else head
    stripped = text.lstrip()
    if not stripped:
        return "empty"
    ext = Path(filename.lower().removesuffix(".gz").removesuffix(".zst")).suffix
    if ext == ".parquet":
        return "unsupported"  # named parquet but no magic bytes: a broken file
    first = stripped[:1]
    if first == b"[":
        return "json"
    if first == b"{":
        return "jsonl"
    if ext in (".csv", ".tsv"):
        return "csv"
    if b"\x00" in head:
        return "unsupported"
    try:
        line = stripped.split(b"\n", 1)[0].decode("utf-8")
    except UnicodeDecodeError:
        return "unsupported"
    if ext in ("", ".txt") and ("," in line or "\t" in line) and len(line) < 4096:
        return "csv"
    return "unsupported"


def detect_shape(rows: list[Any]) -> str:
    """openai-messages | sharegpt | alpaca | prompt-response | custom, from the first parsed records."""
    dicts = [r for r in rows if isinstance(r, dict)]
    if not dicts:
        return "custom"
    keys: set[str] = set()
    for r in dicts:
        keys.update(r)
    if "messages" in keys and any(isinstance(r.get("messages"), list) for r in dicts):
        return "openai-messages"
    if ("conversations" in keys or "conversation" in keys) and any(
        isinstance(r.get("conversations", r.get("conversation")), list) for r in dicts
    ):
        return "sharegpt"
    if "instruction" in keys and "output" in keys:
        return "alpaca"
    lower = {k.lower() for k in keys}
    if lower & {"prompt", "question", "query"} and lower & {"response", "answer", "completion", "chosen"}:
        return "prompt-response"
    return "custom"


def record_shape(shape: str) -> str:
    """The builder a detected shape uses: messages, sharegpt, or fields (everything mapped by field)."""
    return {"openai-messages": "messages", "sharegpt": "sharegpt"}.get(shape, "fields")


# --- readers ---------------------------------------------------------------------------------


class Reader:
    """Base: iterate for (line_no, obj, issue); `position` / `total` give progress.

    `max_expanded_bytes` caps what the whole file may expand to once read (a Parquet file's strings, a
    compressed file's text): past it the reader ends with one `oversized_file` issue instead of filling
    memory or the database.
    `stop_after` ends the records once that many file bytes were read: the web process previews a
    bounded prefix, never the whole file."""

    container = ""

    def __init__(
        self,
        path: Path,
        *,
        max_line_bytes: int,
        max_expanded_bytes: int | None = None,
        stop_after: int | None = None,
    ) -> None:
        self.path = path
        self.max_line_bytes = max_line_bytes
        self.max_expanded_bytes = max_expanded_bytes
        self.stop_after = stop_after
        self.total = max(path.stat().st_size, 1)
        self.position = 0

    def __iter__(self) -> Iterator[tuple[int, Any, Issue | None]]:
        """The records; a compressed stream that is cut or corrupt ends them with one issue."""
        last = 0
        try:
            for item in self._records():
                last = item[0]
                yield item
                if self.stop_after is not None and self.position > self.stop_after:
                    return
        except ExpandedTooLarge:
            yield last + 1, None, Issue(last + 1, "oversized_file", expanded_detail(self.max_expanded_bytes))
        except (EOFError, OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            detail = f"the data ends early or is corrupt ({exc}); the rest of the file cannot be read"
            yield last + 1, None, Issue(last + 1, "unreadable_file", detail[:300])

    def _records(self) -> Iterator[tuple[int, Any, Issue | None]]:  # pragma: no cover - abstract
        raise NotImplementedError


def expanded_detail(limit: Any) -> str:
    return (
        f"the file expands to more than {limit} bytes when read (SFTLAB_UPLOAD_MAX_EXPANDED_BYTES);"
        " the rest of the file cannot be read"
    )


def too_deep(obj: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether a parsed value nests lists and objects more than `limit` levels deep (no recursion)."""
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list):
            continue
        if depth > limit:
            return True
        stack.extend((v, depth + 1) for v in value if isinstance(v, (dict, list)))
    return False


def _deep_issue(line_no: int, levels: int = 1024) -> Issue:
    return Issue(line_no, "too_deep", f"more than {levels} levels of nested lists or objects")


def parse_json_line(line: bytes, line_no: int) -> tuple[Any, Issue | None]:
    try:
        return orjson.loads(line), None
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):  # orjson itself stops at 1024 levels
            return None, _deep_issue(line_no)
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as uexc:
            return None, Issue(line_no, "invalid_utf8", f"bad byte at offset {uexc.start}")
        return None, Issue(line_no, "invalid_json", str(exc)[:200])


class JsonlReader(Reader):
    container = "jsonl"

    def _records(self) -> Iterator[tuple[int, Any, Issue | None]]:
        limit = self.max_line_bytes
        with open_data(self.path, max_expanded_bytes=self.max_expanded_bytes) as (f, raw):
            line_no = 0
            while True:
                line = f.readline(limit + 1)
                if not line:
                    break
                line_no += 1
                if line_no == 1 and line.startswith(BOM):
                    line = line[3:]
                if len(line) > limit and not line.endswith(b"\n"):
                    size = len(line)
                    while line and not line.endswith(b"\n"):  # skip the rest without holding it
                        if self.stop_after is not None and size > self.stop_after:
                            break  # a preview: the line is too long, however long it is
                        line = f.readline(1 << 20)
                        size += len(line)
                    self.position = raw.tell()
                    yield line_no, None, Issue(line_no, "oversized_line", f"{size} bytes > {limit}")
                    continue
                self.position = raw.tell()
                line = line.strip()
                if not line:
                    continue
                obj, issue = parse_json_line(line, line_no)
                yield line_no, obj, issue


class JsonArrayReader(Reader):
    """A top-level JSON array read element by element with the C decoder on a sliding window.

    The window is consumed by moving an index (not by slicing), so each byte is copied once per refill."""

    container = "json"
    chunk = 1 << 20
    _ws = re.compile(r"[ \t\n\r]*")

    def _records(self) -> Iterator[tuple[int, Any, Issue | None]]:
        decoder = json.JSONDecoder()
        utf8 = codecs.getincrementaldecoder("utf-8-sig")()
        skip = self._ws.match
        with open_data(self.path, max_expanded_bytes=self.max_expanded_bytes) as (f, raw):
            buf, pos, eof = "", 0, False

            def refill() -> None:
                nonlocal buf, pos, eof
                data = f.read(self.chunk)
                self.position = raw.tell()
                eof = not data
                buf = buf[pos:] + utf8.decode(data, final=eof)
                pos = 0

            def next_char() -> str:
                nonlocal pos
                while True:
                    pos = skip(buf, pos).end()  # type: ignore[union-attr]  # "[ \t\n\r]*" always matches
                    if pos < len(buf) or eof:
                        return buf[pos] if pos < len(buf) else ""
                    refill()

            index = 0
            try:
                refill()
                if next_char() != "[":
                    yield 1, None, Issue(1, "invalid_json", "a JSON file must hold an array of records")
                    return
                pos += 1
                while True:
                    ch = next_char()
                    if ch == "]":
                        return
                    if ch == ",":
                        pos += 1
                        continue
                    if not ch:
                        yield index + 1, None, Issue(index + 1, "invalid_json", "the array is not closed")
                        return
                    try:
                        obj, end = decoder.raw_decode(buf, pos)
                    except RecursionError:  # the C scanner recurses once per level of nesting
                        index += 1
                        detail = "an element nests deeper than Python's recursion limit"
                        yield (
                            index,
                            None,
                            Issue(index, "too_deep", detail + "; the rest of the array cannot be read"),
                        )
                        return
                    except json.JSONDecodeError as exc:
                        if not eof and len(buf) - pos <= self.max_line_bytes:
                            refill()
                            continue
                        index += 1
                        if len(buf) - pos > self.max_line_bytes:
                            reason, detail = "oversized_line", f"element over {self.max_line_bytes} bytes"
                        else:
                            reason, detail = "invalid_json", str(exc)[:200]
                        yield (
                            index,
                            None,
                            Issue(index, reason, detail + "; the rest of the array cannot be read"),
                        )
                        return
                    if end == len(buf) and not eof:  # a number may continue in the next chunk
                        refill()
                        continue
                    index += 1
                    pos = end
                    yield index, obj, None
            except UnicodeDecodeError as exc:
                yield (
                    index + 1,
                    None,
                    Issue(
                        index + 1,
                        "invalid_utf8",
                        f"bad byte {exc.object[exc.start : exc.start + 1]!r}"
                        "; the rest of the array cannot be read",
                    ),
                )


class CsvReader(Reader):
    """CSV (or TSV) with a header row; row numbers count the header as row 1, as a spreadsheet does."""

    container = "csv"

    def _records(self) -> Iterator[tuple[int, Any, Issue | None]]:
        csv.field_size_limit(min(self.max_line_bytes, sys.maxsize))
        sample, _ = read_head(self.path)
        with open_data(self.path, max_expanded_bytes=self.max_expanded_bytes) as (data, raw):
            delimiter = (
                "\t"
                if sample.split(b"\n", 1)[0].count(b"\t") > sample.split(b"\n", 1)[0].count(b",")
                else ","
            )
            text = io.TextIOWrapper(data, encoding="utf-8-sig", errors="surrogateescape", newline="")
            reader = csv.reader(text, delimiter=delimiter)
            try:
                header = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield 1, None, Issue(1, "unreadable_file", str(exc))
                return
            header = [h.strip() for h in header]
            row_no = 1
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    row_no += 1
                    reason = "oversized_line" if "field larger" in str(exc) else "unreadable_file"
                    yield (
                        row_no,
                        None,
                        Issue(row_no, reason, str(exc) + "; the rest of the file cannot be read"),
                    )
                    return
                row_no += 1
                self.position = raw.tell()
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if any(_has_surrogate(v) for v in row):
                    yield (
                        row_no,
                        None,
                        Issue(row_no, "invalid_utf8", "a field holds bytes that are not UTF-8"),
                    )
                    continue
                if len(row) != len(header):
                    yield (
                        row_no,
                        None,
                        Issue(row_no, "wrong_column_count", f"{len(row)} fields, header has {len(header)}"),
                    )
                    continue
                yield row_no, dict(zip(header, row, strict=True)), None


def _has_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class ParquetReader(Reader):
    """Parquet, in batches of about PARQUET_BATCH_BYTES expanded, each row measured before it becomes Python.

    A few kilobytes of Parquet can hold one dictionary-encoded megabyte string repeated over thousands of
    rows: read as plain strings (or turned into Python objects) that is gigabytes. So every byte-array
    column is read as a DictionaryArray (compact as stored), each row's expanded size is computed from the
    Arrow arrays (string lengths, 8 bytes per other value), and a row over `max_line_bytes` is reported
    as oversized without being built; past `max_expanded_bytes` for the file, reading stops with one issue."""

    container = "parquet"

    def _records(self) -> Iterator[tuple[int, Any, Issue | None]]:
        import numpy as np
        import pyarrow.parquet as pq

        try:
            plain = pq.ParquetFile(self.path)
            schema, plain_schema = plain.schema, plain.schema_arrow
            byte_arrays = [
                schema.column(i).path
                for i in range(len(schema))
                if schema.column(i).physical_type == "BYTE_ARRAY"
            ]
            pf = pq.ParquetFile(self.path, read_dictionary=byte_arrays)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a broken file
            yield 0, None, Issue(0, "unreadable_file", f"not a readable Parquet file: {exc}"[:300])
            return
        n = max(pf.metadata.num_rows, 1)
        row_no = expanded = 0
        limit, total_limit = self.max_line_bytes, self.max_expanded_bytes
        for batch in pf.iter_batches(batch_size=_parquet_batch_rows(pf.metadata)):
            if not batch.num_rows:
                continue
            sizes = parquet_row_bytes(batch)
            over = sizes > limit
            kept = np.where(over, 0, sizes)
            # runs of rows under the limit, cut about every PARQUET_BATCH_BYTES; each oversized row alone
            group = np.cumsum(kept) // PARQUET_BATCH_BYTES
            cuts = np.flatnonzero(over[1:] | over[:-1] | (group[1:] != group[:-1])) + 1
            bounds = [0, *cuts.tolist(), batch.num_rows]
            for start, end in itertools.pairwise(bounds):
                if over[start]:
                    row_no += 1
                    detail = f"{int(sizes[start])} bytes > {limit} once read"
                    yield row_no, None, Issue(row_no, "oversized_line", detail)
                    continue
                expanded += int(kept[start:end].sum())
                if total_limit is not None and expanded > total_limit:
                    issue = Issue(row_no + 1, "oversized_file", expanded_detail(total_limit))
                    yield row_no + 1, None, issue
                    return
                # decoded back to plain strings first: to_pylist() on a DictionaryArray is 3x slower
                for obj in batch.slice(start, end - start).cast(plain_schema).to_pylist():
                    row_no += 1
                    yield row_no, obj, None
            self.position = int(self.total * row_no / n)


PARQUET_BATCH_BYTES = 16 << 20


def _parquet_batch_rows(metadata: Any) -> int:
    """Rows per Arrow batch, so that a batch of plain (not dictionary-encoded) values stays near
    PARQUET_BATCH_BYTES: from the largest uncompressed row-group size per row in the file's footer."""
    per_row = max(
        (
            metadata.row_group(i).total_byte_size / max(metadata.row_group(i).num_rows, 1)
            for i in range(metadata.num_row_groups)
        ),
        default=1.0,
    )
    return int(min(max(PARQUET_BATCH_BYTES // max(per_row, 1.0), 1), 10_000))


def parquet_row_bytes(batch: Any) -> Any:
    """Each row's size once read (a numpy int64 array): string and binary lengths plus 8 bytes a value."""
    import numpy as np

    sizes = np.zeros(batch.num_rows, np.int64)
    for column in batch.columns:
        sizes += _array_bytes(column)
    return sizes


def _array_bytes(array: Any) -> Any:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n, t = len(array), array.type
    if pa.types.is_dictionary(t):
        values = _array_bytes(array.dictionary)
        if not len(values):
            return np.zeros(n, np.int64)
        out = values[array.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)]
        if array.null_count:
            out = np.where(array.is_valid().to_numpy(zero_copy_only=False), out, 0)
        return out
    if (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
    ):
        return pc.binary_length(array).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64) + 8
    if pa.types.is_struct(t):
        out = np.zeros(n, np.int64)
        for child in array.flatten():
            out += _array_bytes(child)
        return out
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        parents = pc.list_parent_indices(array).to_numpy(zero_copy_only=False)
        children = _array_bytes(array.flatten())
        return np.bincount(parents, weights=children, minlength=n).astype(np.int64) + 8
    return np.full(n, 8, np.int64)


READERS: dict[str, type[Reader]] = {
    "jsonl": JsonlReader,
    "json": JsonArrayReader,
    "csv": CsvReader,
    "parquet": ParquetReader,
}


def open_reader(
    path: Path,
    container: str,
    *,
    max_line_bytes: int,
    max_expanded_bytes: int | None = None,
    stop_after: int | None = None,
) -> Reader:
    return READERS[container](
        path, max_line_bytes=max_line_bytes, max_expanded_bytes=max_expanded_bytes, stop_after=stop_after
    )


def preview(
    path: Path, container: str, *, max_line_bytes: int, n: int = 20
) -> tuple[list[tuple[int, Any]], list[Issue]]:
    """The first n readable records (with their numbers) and the issues met on the way.

    This is all the web process ever reads of an upload (upload registration, the mapping page, the
    import's own checks): at most n records, PREVIEW_ISSUES issues and about PREVIEW_BYTES of the file.
    The whole file is read only by the import job, in the worker (app.datasets.import_job)."""
    rows: list[tuple[int, Any]] = []
    issues: list[Issue] = []
    if container not in READERS:
        return rows, issues
    reader = open_reader(path, container, max_line_bytes=max_line_bytes, stop_after=PREVIEW_BYTES)
    for line_no, obj, issue in reader:
        if issue is not None:
            issues.append(issue)
            if len(issues) > PREVIEW_ISSUES:
                break
        else:
            rows.append((line_no, obj))
            if len(rows) >= n:
                break
    return rows, issues


def describe(path: Path, filename: str, *, max_line_bytes: int) -> str:
    """The detected format as shown to users: "<shape>/<container>", or "empty" / "unsupported"."""
    container = sniff_container(path, filename)
    if container in ("empty", "unsupported"):
        return container
    rows, _ = preview(path, container, max_line_bytes=max_line_bytes)
    return f"{detect_shape([obj for _, obj in rows])}/{container}"
