"""Receiving an upload: stream it to disk under our own name, enforcing the size limit as bytes arrive.

The user's file name is kept for display only (reduced to its last path component);
the file on disk is `<uuid>.upload` under settings.uploads_dir, so no name can reach
outside it. A body past the limit is cut off with UploadTooLarge and its partial
file deleted. `recent_uploads` lists a user's uploads for the upload page.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import anyio.to_thread
from sqlmodel import Session, select

from app.core.config import Settings
from app.datasets.formats import describe
from app.models import ImportJob, Upload, User, utcnow

WRITE_BATCH = 1 << 20


class UploadTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"The file is larger than the upload limit of {human_bytes(limit)}.")
        self.limit = limit


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
        self.file.write(chunk)

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        self.file.close()
        if exc_type is None:
            self.part.rename(self.path)
        else:
            self.part.unlink(missing_ok=True)


async def save_stream(chunks: AsyncIterator[bytes], *, settings: Settings) -> tuple[str, int]:
    """Writes the chunks to a new file; returns (stored name, size). Raises UploadTooLarge (file removed).

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


def save_file(src: BinaryIO, *, settings: Settings) -> tuple[str, int]:
    """The same from a file object (a multipart part Starlette spooled to disk), copied in 1 MiB chunks."""
    with _Sink(settings) as sink:
        while chunk := src.read(1 << 20):
            sink.write(chunk)
    return sink.stored, sink.size


def register_upload(
    session: Session, *, settings: Settings, owner_id: int, filename: str, stored: str, size: int
) -> Upload:
    """The Upload row for a saved file, with its detected format. The file is removed when this fails,
    so an error never leaves a file that no Upload row points to."""
    name = display_name(filename)
    path = settings.uploads_dir / stored
    try:
        fmt = describe(path, name, max_line_bytes=settings.max_line_bytes)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    upload = Upload(
        owner_id=owner_id,
        filename=name,
        stored_name=stored,
        size=size,
        detected_format=fmt,
        created_at=utcnow(),
    )
    session.add(upload)
    session.commit()
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
