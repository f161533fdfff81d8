"""Receiving an upload: stream it to disk under our own name, enforcing the size limit as bytes arrive.

The user's file name is kept for display only (reduced to its last path component);
the file on disk is `<uuid>.upload` under settings.uploads_dir, so no name can reach
outside it. A raw body is written as it arrives; a multipart body is parsed as it
arrives and only its `file` part is written, so neither is ever held or spooled whole.
A body past the limit is cut off with UploadTooLarge, a full disk gives DiskFull, and
either way the partial file is deleted. `recent_uploads` lists a user's uploads for
the upload page.
"""

from __future__ import annotations

import errno
import uuid
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath
from typing import Any

import anyio.to_thread
from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header
from sqlmodel import Session, select

from app.core.config import Settings
from app.datasets.formats import describe
from app.models import ImportJob, Upload, User, utcnow

WRITE_BATCH = 1 << 20
MULTIPART_OVERHEAD = 64 * 1024  # what a multipart body may carry beyond its file: boundaries, headers, fields


class UploadTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"The file is larger than the upload limit of {human_bytes(limit)}.")
        self.limit = limit


class DiskFull(Exception):
    """The server's disk (or the user's quota on it) ran out while writing; nothing partial was kept."""


class BadMultipart(ValueError):
    """A multipart body that cannot be parsed or holds no `file` part; the message says which."""


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error is the disk running out: ENOSPC/EDQUOT from a write, or SQLite saying so."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "database or disk is full" in str(exc) or "No space left on device" in str(exc)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def display_name(filename: str | None) -> str:
    """The last component of what the browser sent, without control characters; never used as a path."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return (name or "upload")[:200]


def _new_path(settings: Settings) -> tuple[str, Path]:
    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    stored = f"{uuid.uuid4().hex}.upload"
    return stored, settings.uploads_dir / stored


class _Sink:
    """A new upload file written chunk by chunk under a temporary name: renamed into place when complete,
    removed when the size limit is passed or anything else goes wrong, so no partial upload is ever seen."""

    def __init__(self, settings: Settings) -> None:
        self.stored, self.path = _new_path(settings)
        self.part = self.path.with_suffix(".part")
        self.limit = settings.upload_max_bytes
        self.size = 0

    def __enter__(self) -> _Sink:
        self.file = open(self.part, "wb")  # noqa: SIM115 - closed in __exit__
        return self

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise UploadTooLarge(self.limit)
        try:
            self.file.write(chunk)
        except OSError as exc:
            if is_disk_full(exc):
                raise DiskFull() from exc
            raise

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        try:
            self.file.close()  # flushes the last buffered bytes: the disk may fill here too
            if exc_type is None:
                self.part.rename(self.path)
        except OSError as error:
            self.part.unlink(missing_ok=True)
            if is_disk_full(error):
                raise DiskFull() from error
            raise
        if exc_type is not None:
            self.part.unlink(missing_ok=True)


async def save_stream(chunks: AsyncIterator[bytes], *, settings: Settings) -> tuple[str, int]:
    """Writes the chunks to a new file; returns (stored name, size). Raises UploadTooLarge or DiskFull
    (file removed).

    The bytes are written in batches of about 1 MiB in a worker thread: this runs on the event loop,
    where a write to a slow disk would stop every other request."""
    with _Sink(settings) as sink:
        batch = bytearray()
        async for chunk in chunks:
            batch += chunk
            if len(batch) >= WRITE_BATCH:
                await anyio.to_thread.run_sync(sink.write, bytes(batch))
                batch.clear()
        if batch:
            await anyio.to_thread.run_sync(sink.write, bytes(batch))
    return sink.stored, sink.size


class _FilePart:
    """python-multipart's callbacks: the first part named `file` goes to the sink as it is parsed; the
    other parts are dropped (the body's byte count still limits them)."""

    def __init__(self, sink: _Sink, boundary: bytes) -> None:
        self.sink = sink
        self.filename: str | None = None
        self.found = self.writing = False
        self.field = self.value = b""
        self.disposition = b""
        self.parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._begin,
                "on_header_field": self._field,
                "on_header_value": self._value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_done,
                "on_part_data": self._data,
                "on_part_end": self._end,
            },
        )

    def _begin(self) -> None:
        self.disposition = b""

    def _field(self, data: bytes, start: int, end: int) -> None:
        self.field += data[start:end]

    def _value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def _header_end(self) -> None:
        if self.field.lower() == b"content-disposition":
            self.disposition = self.value
        self.field = self.value = b""

    def _headers_done(self) -> None:
        _, params = parse_options_header(self.disposition)
        self.writing = params.get(b"name") == b"file" and not self.found
        if self.writing:
            self.filename = params.get(b"filename", b"").decode("utf-8", "replace")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.writing:
            self.sink.write(data[start:end])

    def _end(self) -> None:
        if self.writing:
            self.found, self.writing = True, False

    def feed(self, data: bytes) -> None:
        try:
            self.parser.write(data)
        except MultipartParseError as exc:
            raise BadMultipart(f"The multipart body cannot be parsed: {exc}.") from None

    def finish(self) -> None:
        self.parser.finalize()
        if not self.found:
            raise BadMultipart("Send the file in a multipart field named 'file'.")


async def save_multipart(
    chunks: AsyncIterator[bytes], *, content_type: str, settings: Settings
) -> tuple[str, int, str | None]:
    """A multipart/form-data body's `file` part written to a new file as the body arrives: (stored name,
    size, the part's file name). Raises UploadTooLarge, DiskFull or BadMultipart (file removed).

    Starlette's `request.form()` would spool the whole body to a temporary file first, so a body past
    the limit would fill the disk before being refused; here the body is counted and parsed in batches of
    about 1 MiB in a worker thread, and the file part goes straight to the upload file."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadMultipart("The multipart Content-Type has no boundary.")
    limit = settings.upload_max_bytes + MULTIPART_OVERHEAD
    with _Sink(settings) as sink:
        form = _FilePart(sink, boundary)
        received = 0
        batch = bytearray()
        async for chunk in chunks:
            received += len(chunk)
            if received > limit:
                raise UploadTooLarge(settings.upload_max_bytes)
            batch += chunk
            if len(batch) >= WRITE_BATCH:
                await anyio.to_thread.run_sync(form.feed, bytes(batch))
                batch.clear()
        await anyio.to_thread.run_sync(form.feed, bytes(batch))
        form.finish()
    return sink.stored, sink.size, form.filename


def register_upload(
    session: Session, *, settings: Settings, owner_id: int, filename: str, stored: str, size: int
) -> Upload:
    """The Upload row for a saved file, with its detected format. The file is removed when this fails,
    so an error never leaves a file that no Upload row points to; a database on a full disk gives
    DiskFull."""
    name = display_name(filename)
    path = settings.uploads_dir / stored
    try:
        upload = Upload(
            owner_id=owner_id,
            filename=name,
            stored_name=stored,
            size=size,
            detected_format=describe(path, name, max_line_bytes=settings.max_line_bytes),
            created_at=utcnow(),
        )
        session.add(upload)
        session.commit()
    except BaseException as exc:
        path.unlink(missing_ok=True)
        if is_disk_full(exc):
            session.rollback()
            raise DiskFull() from exc
        raise
    session.refresh(upload)
    return upload


def recent_uploads(session: Session, *, user: User, limit: int = 20) -> list[dict[str, Any]]:
    """The user's latest uploads with their latest import job, to resume a mapping or reopen a report."""
    uploads = session.exec(
        select(Upload).where(Upload.owner_id == user.id).order_by(Upload.id.desc()).limit(limit)  # type: ignore[union-attr]
    ).all()
    out = []
    for up in uploads:
        job = session.exec(
            select(ImportJob).where(ImportJob.upload_id == up.id).order_by(ImportJob.id.desc())  # type: ignore[union-attr]
        ).first()
        out.append(
            {
                "upload_id": up.id,
                "filename": up.filename,
                "size": up.size,
                "detected_format": up.detected_format,
                "status": str(up.status.value if hasattr(up.status, "value") else up.status),
                "created": up.created_at.isoformat(timespec="seconds") if up.created_at else "",
                "mapping_url": f"/uploads/{up.id}/mapping",
                "job_id": job.id if job else None,
                "job_status": job.status if job else None,
            }
        )
    return out
