"""A version's statistics with its indexing status."""

from typing import Any

from pydantic import BaseModel

from app.models import VersionStatus


class VersionStats(BaseModel):
    dataset_id: int
    version: int
    status: VersionStatus
    progress: float
    stage: str
    error: str | None
    # The document app.datasets.stats.compute_stats stores; null until indexing has finished.
    stats: dict[str, Any] | None
