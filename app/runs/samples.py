"""One training sample of a run, rendered as the model saw it: the trainer's own render and loss mask.

Sample number i is the i-th sample of the trained (mixed) set: data_samples.jsonl, written by the
trainer, maps it to its source `file:line`; before the trainer wrote it (queued run) i is simply
line i + 1 of the run's train.jsonl. Only files inside the run directory are read.

The tokenizer is the run's (model.tokenizer_path, else the model dir the trainer reported in its
start event, else model.path, else the embedded model), loaded with AutoTokenizer exactly as the
trainer loads it: the rendering is a short job on the interactive worker (worker.kinds.render), which
keeps the tokenizer loaded, so the web process never imports transformers or torch and the page shows
the very tokens the trainer saw rather than a look-alike tokenizer's.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from app.core.db import get_engine
from app.jobs import interactive
from app.models import JobKind, Run
from app.runs.views import section
from trainer.layout import CHAT_TEMPLATE_COPY

RENDER_TIMEOUT = 60.0
# trainer.render.RenderOptions' defaults, which a test keeps equal to the trainer's.
RENDER_DEFAULTS: dict[str, Any] = {"scope": "all", "prompt_loss": False, "eos_in_loss": True}


class SampleError(ValueError):
    """The sample cannot be shown (no such index, file gone, template failure); the message says why."""


@dataclass
class ShownSample:
    index: int
    total: int
    where: str  # file:line
    task_type: str
    tokens: list[dict] = field(default_factory=list)  # render_for_display rows
    messages: list[dict] = field(default_factory=list)
    n_supervised: int = 0
    n_tokens: int = 0
    error: str = ""


@lru_cache(maxsize=8)
def _line_offsets(path: str, mtime_ns: int, size: int) -> array:
    """Byte offset of each line start, cached per file version so paging through samples is cheap
    (an int64 array: 8 MB for a million lines)."""
    offsets = array("q", [0])
    with open(path, "rb") as fh:
        pos = 0
        for line in fh:
            pos += len(line)
            offsets.append(pos)
    if offsets[-1] == size:
        offsets.pop()  # no line starts at end of file
    return offsets


def read_line(path: Path, lineno: int) -> str:
    """Line `lineno` (1-based) of a file, through the cached offsets."""
    st = path.stat()
    offsets = _line_offsets(str(path), st.st_mtime_ns, st.st_size)
    if not 1 <= lineno <= len(offsets):
        raise SampleError(f"{path.name} has no line {lineno}")
    with open(path, "rb") as fh:
        fh.seek(offsets[lineno - 1])
        return fh.readline().decode("utf-8", errors="replace")


def count_lines(path: Path) -> int:
    st = path.stat()
    return len(_line_offsets(str(path), st.st_mtime_ns, st.st_size))


def locate(run: Run, index: int) -> tuple[Path, int, str, int]:
    """(file, 1-based line, task_type, total samples) of training sample `index`."""
    if not run.run_dir:
        raise SampleError("this run has no run directory yet")
    root = Path(run.run_dir).resolve()
    mapping = root / "data_samples.jsonl"
    try:
        if mapping.is_file():
            total = count_lines(mapping)
            if not 0 <= index < total:
                raise SampleError(f"the run trained {total} samples; there is no sample {index}")
            entry = orjson.loads(read_line(mapping, index + 1))
            source, _, line = str(entry.get("where", "")).rpartition(":")
            path = Path(source).resolve()
            if not path.is_relative_to(root) or not line.isdigit():
                raise SampleError(f"sample {index} comes from outside the run directory")
            return path, int(line), str(entry.get("task_type", "")), total
        train = root / "train.jsonl"
        total = count_lines(train)
    except OSError as exc:
        raise SampleError(f"the run's data files are not readable: {exc.strerror or exc}") from exc
    except orjson.JSONDecodeError as exc:
        raise SampleError(f"data_samples.jsonl line {index + 1} is not valid JSON") from exc
    if not 0 <= index < total:
        raise SampleError(f"train.jsonl has {total} samples; there is no sample {index}")
    return train, index + 1, "", total


def tokenizer_source(run: Run, config: dict, start: dict | None, default_dir: Path) -> str:
    model = section(config, "model")
    for candidate in (
        model.get("tokenizer_path"),
        (start or {}).get("model_dir"),
        model.get("path"),
    ):
        if isinstance(candidate, str) and candidate:
            return candidate
    return str(default_dir)


def chat_template(run: Run, config: dict) -> str:
    """The run's model.chat_template_file as the trainer copied it into the run directory (before the
    trainer starts: the file the config names); empty when the run uses the tokenizer's own template."""
    name = section(config, "model").get("chat_template_file")
    if not isinstance(name, str) or not name:
        return ""
    for path in (Path(run.run_dir) / CHAT_TEMPLATE_COPY if run.run_dir else None, Path(name).expanduser()):
        if path is not None and path.is_file():
            try:
                return path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
    return ""


def render_options(config: dict) -> dict[str, Any]:
    """trainer.render.RenderOptions' fields from the run's loss section (the trainer's defaults otherwise)."""
    loss = section(config, "loss")
    scope = loss.get("scope") if loss.get("scope") in ("all", "last") else RENDER_DEFAULTS["scope"]
    return {
        "scope": scope,
        "prompt_loss": bool(loss.get("prompt_loss", RENDER_DEFAULTS["prompt_loss"])),
        "eos_in_loss": bool(loss.get("eos_in_loss", RENDER_DEFAULTS["eos_in_loss"])),
    }


def show_sample(
    run: Run, index: int, *, config: dict, tokenizer: str, owner_id: int | None = None
) -> ShownSample:
    """Sample `index` rendered with the run's tokenizer and loss options; errors become `.error`."""
    path, line, task_type, total = locate(run, index)
    shown = ShownSample(index=index, total=total, where=f"{path.name}:{line}", task_type=task_type)
    try:
        record = orjson.loads(read_line(path, line))
    except (OSError, orjson.JSONDecodeError) as exc:
        shown.error = f"{shown.where} cannot be read as JSON: {exc}"
        return shown
    if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
        shown.error = f"{shown.where} has no messages list"
        return shown
    shown.messages = record["messages"]
    shown.task_type = shown.task_type or str(record.get("task_type", ""))
    params = {"record": record, "tokenizer": tokenizer, "options": render_options(config)}
    template = chat_template(run, config)
    if template:
        params["chat_template"] = template
    engine = get_engine()
    title = f"run {run.id} sample {index}"
    try:
        job = interactive.run(
            engine, kind=JobKind.render, owner_id=owner_id, params=params, title=title, timeout=RENDER_TIMEOUT
        )
        out = interactive.result_of(job)
    except interactive.Unavailable as exc:
        out = {"error": f"the sample could not be rendered: {exc}"}
    shown.tokens = out.get("tokens", [])
    shown.error = out.get("error", "") or ("" if "tokens" in out else "the rendering job failed")
    shown.n_tokens = len(shown.tokens)
    shown.n_supervised = sum(1 for t in shown.tokens[1:] if t["supervised"])
    return shown
