"""Uploads: the list of a user's uploads, the answer to an upload, and an upload's preview."""

from typing import Annotated, Any

from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, PlainSerializer

from app.models import UploadStatus

# A record as read from the file. Parquet rows can hold dates, decimals, durations and bytes: they are
# encoded as FastAPI encodes a plain dict (decimals as numbers, durations as seconds), not as pydantic would.
Record = Annotated[Any, PlainSerializer(jsonable_encoder)]


# An upload in the user's list, with its latest import job.
class UploadRow(BaseModel):
    upload_id: int
    filename: str
    size: int
    detected_format: str
    status: str
    created: str
    mapping_url: str
    job_id: int | None
    job_status: str | None


class UploadList(BaseModel):
    uploads: list[UploadRow]


# The answer to an upload: where to map it next.
class UploadCreated(BaseModel):
    upload_id: int
    filename: str
    size: int
    detected_format: str
    mapping_url: str


class PreviewRow(BaseModel):
    line: int  # line, row or element number, as the import report counts them
    record: Record


# What an import of this upload would use if the request left everything out.
class ImportGuess(BaseModel):
    mapping: dict[str, Any]
    kind: str
    name: str
    policy: str


class UploadInfo(BaseModel):
    upload_id: int
    filename: str
    size: int
    status: UploadStatus
    detected_format: str
    container: str
    preview: list[PreviewRow]
    paths: list[str]  # every field path in the preview rows, for the mapping
    guess: ImportGuess
