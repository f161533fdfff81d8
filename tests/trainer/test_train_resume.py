"""An interrupted-and-resumed run continues exactly: same losses as an uninterrupted run (dropout and warmup on)."""

import json

import pytest
from tiny_run import make_tiny_model_dir, pclue_messages, tiny_config

from trainer.checkpoint import latest_checkpoint, list_checkpoints
from trainer.train import run


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    return make_tiny_model_dir(root / "model"), pclue_messages(root / "data.jsonl", 40)


@pytest.fixture(scope="module")
def full(tmp_path_factory, setup):
    model, data = setup
    return run(_cfg(tmp_path_factory.mktemp("full"), model, data))["losses"]


def _cfg(d, model, data):
    # dropout > 0 makes the RNG state matter; cosine with warmup makes the schedule position matter;
    # 1.5 epochs puts the interruption mid-epoch (data position) and crosses an epoch boundary.
    cfg = tiny_config(
        d,
        model,
        data,
        per_device_batch=2,
        grad_accum=2,
        epochs=1.5,
        dropout=0.1,
        scheduler="cosine",
        warmup_steps=2,
        weight_decay=0.01,
    )
    cfg.checkpoint.every_n_steps = 2
    cfg.checkpoint.keep_last = 2
    return cfg


def test_resume_matches_uninterrupted(tmp_path, setup, full):
    model, data = setup
    total = len(full)
    assert total >= 6

    cut = _cfg(tmp_path / "cut", model, data)
    first = run(cut, stop_after=5)["losses"]  # dies after step 5: step 5 is lost, step 4 was checkpointed
    assert latest_checkpoint(cut.output_dir).name == "step-00000004"
    assert [p.name for p in list_checkpoints(cut.output_dir)] == [
        "step-00000002",
        "step-00000004",
    ]  # keep_last
    second = run(cut)["losses"]
    assert min(second) == 5 and max(second) == total
    kept = [p.name for p in list_checkpoints(cut.output_dir)]  # >= 3 saves so far: older ones deleted
    assert kept == [f"step-{s:08d}" for s in range(2, total + 1, 2)][-2:]
    for s in range(1, 6):
        assert first[s] == pytest.approx(full[s], abs=1e-6)
    for s in range(5, total + 1):
        assert second[s] == pytest.approx(full[s], abs=1e-6), (s, second[s], full[s])

    events = [json.loads(x) for x in open(cut.output_dir + "/metrics.jsonl")]
    resumed = [e for e in events if e["type"] == "checkpoint" and e.get("resumed")]
    assert len(resumed) == 1 and resumed[0]["step"] == 4
    assert events[-1]["type"] == "done" and events[-1]["step"] == total


def test_resume_without_state_differs(tmp_path, setup, full):
    """The comparison above can fail: resuming with fresh RNG and optimizer state changes the losses."""
    import torch

    import trainer.checkpoint as ck

    model, data = setup
    cut = _cfg(tmp_path / "cut", model, data)
    run(cut, stop_after=4)
    orig = ck.load_training_state

    def forgetful(path, *, rank, optimizer=None, engine=None):
        torch.manual_seed(123)
        return json.loads((path / "trainer_state" / "state.json").read_text())

    ck.load_training_state = forgetful
    try:
        second = run(cut)["losses"]
    finally:
        ck.load_training_state = orig
    assert max(abs(second[s] - full[s]) for s in second) > 1e-4


def test_a_run_over_its_time_limit_stops_with_a_checkpoint_and_resumes(tmp_path, setup, full):
    """train.max_hours: the loop saves where it stops and says so; the resume (whose checkpoint files
    load with weights_only=True) then matches the uninterrupted run."""
    model, data = setup
    cut = _cfg(tmp_path / "cut", model, data)
    cut.train.max_hours = 1e-12  # over after the first step
    first = run(cut)
    assert first["step"] == 1 and first["total_steps"] == len(full)
    assert latest_checkpoint(cut.output_dir).name == "step-00000001"
    events = [json.loads(x) for x in open(cut.output_dir + "/metrics.jsonl")]
    err = events[-1]
    assert err["type"] == "error" and err["kind"] == "time_limit"
    assert "train.max_hours=1e-12 at step 1 of" in err["message"] and "resume" in err["message"]
    cut.train.max_hours = 0.0
    second = run(cut)["losses"]
    assert min(second) == 2 and max(second) == len(full)
    for s in range(2, len(full) + 1):
        assert second[s] == pytest.approx(full[s], abs=1e-6), s


def test_resume_state_loads_without_full_unpickling(tmp_path, setup):
    """The optimizer and RNG files load with weights_only=True; a file that needs any other global is refused."""
    import pickle

    import torch

    import trainer.checkpoint as ck

    model, data = setup
    cut = _cfg(tmp_path / "cut", model, data)
    run(cut, stop_after=2)
    ts = latest_checkpoint(cut.output_dir) / "trainer_state"
    for name in ("optimizer.pt", "rng_rank0.pt"):
        assert ck._safe_load(ts / name)
    torch.save({"evil": pickle.loads}, ts / "rng_rank0.pt")  # what a planted checkpoint could carry
    with pytest.raises(pickle.UnpicklingError):
        ck._safe_load(ts / "rng_rank0.pt")
