"""A full disk during a checkpoint write: one clear error, nothing partial, the previous checkpoint intact, resumable."""

import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_run import REPO, make_tiny_model_dir, pclue_messages, tiny_config, torchrun

import trainer.checkpoint as ck
from tests.tmpfs import tmpfs
from trainer.checkpoint import CheckpointWriteError, latest_checkpoint, list_checkpoints
from trainer.train import main, run
from worker.runner import failure_reason

PAGE = 4096


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("diskfull")
    return make_tiny_model_dir(root / "model"), pclue_messages(root / "data.jsonl", 24)


def _cfg(d: Path, model: Path, data: Path):
    cfg = tiny_config(d, model, data, per_device_batch=2, grad_accum=2, epochs=1.0, dropout=0.1)
    cfg.checkpoint.every_n_steps = 2
    cfg.checkpoint.keep_last = 2
    return cfg


@pytest.fixture(scope="module")
def full(tmp_path_factory, setup):
    """The uninterrupted run: its losses, and the disk pages one checkpoint and the rest of the run take."""
    model, data = setup
    cfg = _cfg(tmp_path_factory.mktemp("full"), model, data)
    losses = run(cfg)["losses"]
    assert len(losses) >= 4  # a checkpoint at step 2 and another at step 4
    out = Path(cfg.output_dir)
    first = ck.checkpoints_dir(out) / "step-00000002"
    rest = [p for p in out.rglob("*") if p.is_file() and ck.checkpoints_dir(out) not in p.parents]
    return {"losses": losses, "ckpt_bytes": _pages(first.rglob("*")), "rest_bytes": _pages(rest)}


def _pages(paths) -> int:
    """Bytes a tmpfs charges for these files: whole pages per file."""
    return sum(-(-p.stat().st_size // PAGE) * PAGE for p in paths if p.is_file())


def _digest(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def _events(cfg) -> list[dict]:
    return [json.loads(x) for x in open(Path(cfg.output_dir) / "metrics.jsonl", encoding="utf-8")]


def _leftovers(cfg) -> list[str]:
    return sorted(p.name for p in ck.checkpoints_dir(cfg.output_dir).iterdir() if p.name.startswith("."))


def _assert_resumes_to_the_same_loss(cfg, full) -> None:
    second = run(cfg)
    assert second["step"] == second["total_steps"] == len(full["losses"])
    assert min(second["losses"]) == 3  # resumed from step 2, not from scratch
    for s, loss in second["losses"].items():
        assert loss == pytest.approx(full["losses"][s], abs=1e-6), s


def test_injected_enospc_keeps_the_previous_checkpoint_and_resumes(
    tmp_path, setup, full, monkeypatch, capsys
):
    """ENOSPC from the second checkpoint's optimizer file, after part of it was written."""
    model, data = setup
    cfg = _cfg(tmp_path, model, data)
    cfg_path = tmp_path / "run.json"
    cfg.to_json(cfg_path)
    real_save = torch.save
    before: dict[str, str] = {}

    def fill_the_disk(obj, f, *args, **kwargs):
        name = getattr(getattr(f, "fh", None), "name", "")
        if ".tmp-step-00000004" in name and name.endswith("optimizer.pt"):
            before.update(_digest(ck.checkpoints_dir(cfg.output_dir) / "step-00000002"))
            f.write(b"\0" * 10_000)  # a partial file the failed save must not leave behind
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", fill_the_disk)
    assert main(["--config", str(cfg_path)]) == 1
    monkeypatch.setattr(torch, "save", real_save)

    line = capsys.readouterr().err.strip().splitlines()[-1]
    root = ck.checkpoints_dir(cfg.output_dir)
    assert line.startswith(
        f"no space left on device while writing checkpoint step-00000004 to {root} (needs about "
    )
    assert line.endswith("MB free); the last checkpoint (step-00000002) is intact — free space and resume")
    error = _events(cfg)[-1]
    assert error == {**error, "type": "error", "kind": "checkpoint_write", "message": line}
    assert failure_reason(1, error["message"], line) == f"trainer exited with code 1: {line}"

    assert [p.name for p in list_checkpoints(cfg.output_dir)] == ["step-00000002"]
    assert _leftovers(cfg) == []
    assert before and _digest(root / "step-00000002") == before
    _assert_resumes_to_the_same_loss(cfg, full)


def test_a_real_full_tmpfs(tmp_path, setup, full):
    """A tmpfs with room for the first checkpoint and half of the second: the real file system says ENOSPC."""
    model, data = setup
    disk = tmp_path / "disk"
    size = full["rest_bytes"] + full["ckpt_bytes"] + full["ckpt_bytes"] // 2
    with tmpfs(disk, size):
        cfg = _cfg(disk, model, data)
        run(cfg, stop_after=2)
        kept = latest_checkpoint(cfg.output_dir)
        assert kept is not None and kept.name == "step-00000002"
        before = _digest(kept)

        with pytest.raises(CheckpointWriteError) as info:
            run(cfg)
        message = str(info.value)
        assert message.startswith("no space left on device while writing checkpoint step-00000004 to ")
        assert message.endswith("the last checkpoint (step-00000002) is intact — free space and resume")
        assert _events(cfg)[-1]["message"] == message
        assert [p.name for p in list_checkpoints(cfg.output_dir)] == ["step-00000002"]
        assert _leftovers(cfg) == []
        assert _digest(kept) == before

        subprocess.run(["mount", "-o", f"remount,size={4 * size}", str(disk)], check=True)
        _assert_resumes_to_the_same_loss(cfg, full)


def test_a_first_checkpoint_that_does_not_fit_says_so(tmp_path, setup, monkeypatch):
    """No earlier checkpoint: the message says a resume starts over, and how much was written before the failure."""
    model, data = setup
    cfg = _cfg(tmp_path, model, data)
    real_save = torch.save

    def quota(obj, f, *args, **kwargs):
        f.write(b"\0" * 2_000_000)
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    monkeypatch.setattr(torch, "save", quota)
    with pytest.raises(CheckpointWriteError) as info:
        run(cfg)
    monkeypatch.setattr(torch, "save", real_save)
    assert str(info.value).startswith("disk quota exceeded while writing checkpoint step-00000002 to ")
    assert "(needs more than " in str(info.value)
    assert str(info.value).endswith(
        "no earlier checkpoint exists, so a resume starts from step 0 — free space and resume"
    )
    assert list_checkpoints(cfg.output_dir) == [] and _leftovers(cfg) == []


def test_a_stale_temp_dir_from_a_crash_is_ignored_and_swept(tmp_path, setup):
    """A crash mid-save leaves `.tmp-step-N` (state.json and all): resume skips it, the next save removes it."""
    model, data = setup
    cfg = _cfg(tmp_path, model, data)
    run(cfg, stop_after=2)
    root = ck.checkpoints_dir(cfg.output_dir)
    stale = root / ".tmp-step-00000006"
    shutil.copytree(root / "step-00000002", stale)
    state = stale / "trainer_state" / "state.json"
    state.write_text(json.dumps({**json.loads(state.read_text()), "step": 6}))
    (stale / "model.safetensors").write_bytes(b"half a file")
    assert latest_checkpoint(cfg.output_dir).name == "step-00000002"

    run(cfg, stop_after=4)
    resumed = [e for e in _events(cfg) if e["type"] == "checkpoint" and e.get("resumed")]
    assert [e["step"] for e in resumed] == [2]
    assert [p.name for p in list_checkpoints(cfg.output_dir)] == ["step-00000002", "step-00000004"]
    assert _leftovers(cfg) == []


@pytest.mark.parametrize(
    "exc, code",
    [
        (OSError(errno.ENOSPC, "No space left on device"), errno.ENOSPC),
        (RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)"), 28),
        (RuntimeError("unexpected pos 704 vs 598"), None),
        (ValueError("bad tensor"), None),
    ],
)
def test_the_os_error_behind_a_library_error(exc, code):
    """safetensors wraps the errno in its message and torch in the exception's context; a bug stays a bug."""
    found = ck._os_error(exc)
    assert (found.errno if found is not None else None) == code


def test_torch_save_on_a_full_tmpfs_raises_the_os_error(tmp_path):
    """torch alone says "unexpected pos"; written through _torch_save the caller sees ENOSPC."""
    disk = tmp_path / "disk"
    with tmpfs(disk, 64 * PAGE), pytest.raises(OSError) as info:
        ck._torch_save({"t": torch.zeros(1_000_000)}, disk / "x.pt")
    assert info.value.errno == errno.ENOSPC


FAIL_ON_RANK_1 = """
import errno, os, runpy, sys
import torch

real_save = torch.save


def fill_the_disk(obj, f, *args, **kwargs):
    name = getattr(getattr(f, "fh", None), "name", "")
    if os.environ["RANK"] == "1" and ".tmp-step-00000004" in name:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return real_save(obj, f, *args, **kwargs)


torch.save = fill_the_disk
sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.slow
def test_a_write_failing_on_one_rank_stops_every_rank(tmp_path, setup):
    """Only rank 1's write fails: rank 0 must not rename its half-checkpoint into place, and no rank hangs."""
    model, data = setup
    cfg = tiny_config(tmp_path, model, data, per_device_batch=1, grad_accum=1)
    cfg.checkpoint.every_n_steps = 2
    cfg.to_json(tmp_path / "run.json")
    wrapper = tmp_path / "fail_on_rank_1.py"
    wrapper.write_text(FAIL_ON_RANK_1)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(wrapper),
    ]
    cmd += [
        str(Path(__file__).with_name("dist_worker.py")),
        str(tmp_path / "run.json"),
        str(tmp_path / "out.json"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode != 0
    error = _events(cfg)[-1]
    assert error["type"] == "error" and error["kind"] == "checkpoint_write"
    assert error["message"].startswith("no space left on device while writing checkpoint step-00000004 to ")
    assert error["message"].endswith("the last checkpoint (step-00000002) is intact — free space and resume")
    assert [p.name for p in list_checkpoints(cfg.output_dir)] == ["step-00000002"]
    assert _leftovers(cfg) == []

    second = torchrun(cfg, tmp_path, nproc=2, timeout=300)
    assert min(int(s) for s in second["losses"]) == 3 and second["step"] == second["total_steps"]
