"""Reading a job's log from its end: what a failed job shows, and the live tail on its page."""

from __future__ import annotations

from pathlib import Path


def read_tail(path: str | Path, lines: int = 100, max_bytes: int = 256 * 1024) -> str:
    """The last `lines` lines of a log (reading at most max_bytes from its end)."""
    path = Path(path)
    if not path.is_file():
        return ""
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(max(0, size - max_bytes))
        data = fh.read()
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])
