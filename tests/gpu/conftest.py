"""GPU tests: marked ``gpu``, collected everywhere and skipped where torch sees no CUDA device.

Self-contained (no fixtures from tests/trainer), so the suite runs on a GPU machine without the web app's
dependencies: ``pytest --confcutdir tests/gpu tests/gpu``. Set ``SFTLAB_MODEL_DIR`` to a folder holding
the SmolLM2 tokenizer and ``SFTLAB_SHARED`` to the shared folder where those are not in their usual place.
"""

import json
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("SFTLAB_SHARED", REPO.parent / "shared"))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device: torch.cuda.is_available() is False")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tokenizer_dir() -> Path:
    from trainer.embedded import ensure_tokenizer

    return ensure_tokenizer()


@pytest.fixture
def pclue_file(tmp_path) -> Path:
    """400 pCLUE rows as messages JSONL (task_type pclue/<type>): enough bins for 3 steps of 4 at 2048."""
    rows = []
    with open(SHARED / "data" / "pclue_train_9.jsonl", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            rows.append(
                {
                    "messages": [
                        {"role": "user", "content": r["input"]},
                        {"role": "assistant", "content": r["target"]},
                    ],
                    "task_type": f"pclue/{r['type']}",
                    "tags": [],
                }
            )
            if len(rows) == 400:
                break
    out = tmp_path / "pclue.jsonl"
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return out
