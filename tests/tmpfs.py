"""A real size-limited file system for disk-full tests: the one way to fill a disk for real."""

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(path: Path, size: int | str) -> Iterator[Path]:
    """A tmpfs of `size` (bytes, or "1m") mounted at `path` for the block, unmounted after it.

    Needs root; elsewhere the test is skipped, and the injected ENOSPC tests beside it cover the same code.
    """
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the injected ENOSPC tests cover the same code")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
