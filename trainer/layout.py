"""Where the trainer puts its checkpoints, and which of them are complete.

Kept free of torch so the web server (app/runs) lists checkpoints by exactly the trainer's rule without
loading torch: a `step-N` directory counts only once trainer_state/state.json exists, which
trainer.checkpoint writes last before renaming the directory into place.
"""

from __future__ import annotations

import re
from pathlib import Path

STEP_RE = re.compile(r"^step-(\d+)$")
# The run's model.chat_template_file, copied at start: the sample viewer renders with exactly this text.
CHAT_TEMPLATE_COPY = "chat_template.jinja"


def checkpoints_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = checkpoints_dir(run_dir)
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = STEP_RE.match(p.name)
        if m and (p / "trainer_state" / "state.json").is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    cks = list_checkpoints(run_dir)
    return cks[-1] if cks else None
