"""The pre-launch estimate equals the trainer's own plan on the same data and tokenizer, is scaled honestly above the cap, brings the trainer's data errors back to the form, and caches under a lock."""

import copy
import math
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import pytest
from transformers import AutoTokenizer

from app.core.config import get_settings
from app.datasets.export import iter_export
from app.runs import estimate as estimating
from app.runs.estimate import EstimateError, estimate
from trainer.config import RunConfig, embedded_default
from trainer.plan import build_plan, load_data
from worker.kinds.estimate import scaled

# each estimate is a job (run inline here) that starts a Python importing torch and transformers
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("inline_worker")]


def small_config() -> dict:
    cfg = embedded_default().to_dict()
    cfg["data"].update(
        max_seq_len=256, over_length="truncate", eval_fraction=0.1, mix={"nli": 2.0, "classify": 0.5}
    )
    cfg["train"].update(epochs=1.5, per_device_batch=2, grad_accum=2)
    return cfg


def trainer_plan(engine, ds, tiny_model_dir, config: dict, tmp_path, world: int):
    """Independent: export as a run does, then the trainer's load_data + build_plan in this process."""
    path = tmp_path / "independent.jsonl"
    with open(path, "wb") as fh:
        for chunk in iter_export(engine, dataset_id=ds.dataset_id, version=ds.version):
            fh.write(chunk)
    cfg = copy.deepcopy(config)
    cfg["data"]["train_file"] = str(path)
    cfg["output_dir"] = str(tmp_path / "run")
    cfg["model"]["path"] = str(tiny_model_dir)
    run_cfg = RunConfig.from_dict(cfg)
    data = load_data(run_cfg, AutoTokenizer.from_pretrained(str(tiny_model_dir)))
    return data, build_plan(run_cfg, data, world=world)


def run_estimate(engine, ds, tiny_model_dir, config, **kw):
    estimating._CACHE.clear()
    return estimate(
        engine,
        config=config,
        datasets=[(ds.dataset_id, ds.version)],
        eval_dataset=None,
        model_path=str(tiny_model_dir),
        tokenizer_dir=tiny_model_dir,
        world=kw.pop("world", 2),
        **kw,
    )


def test_estimate_equals_the_trainers_plan(engine, pclue_dataset, tiny_model_dir, tmp_path):
    config = small_config()
    est = run_estimate(engine, pclue_dataset, tiny_model_dir, config)
    data, plan = trainer_plan(engine, pclue_dataset, tiny_model_dir, config, tmp_path, world=2)
    lengths = [len(t) for t in data.train]
    assert not est.sampled and est.samples == est.used == 705
    assert est.steps == plan.total_steps == math.ceil(len(plan.bins) / 8)
    assert est.bins == len(plan.bins) and est.bins_per_step == 8
    assert est.tokens == sum(lengths[i] for b in plan.bins for i in b)
    assert est.supervised_tokens == sum(data.train[i].n_supervised for b in plan.bins for i in b)
    assert est.packing_efficiency == pytest.approx(plan.packing_efficiency)
    assert (est.train_samples, est.eval_samples) == (len(data.train), len(data.eval))
    assert 0.3 < est.packing_efficiency <= 1.0
    # The job keeps its spec, result and log, not its copy of the data.
    (job_dir,) = list((get_settings().data_dir / "jobs").iterdir())
    assert (job_dir / "result.json").is_file() and not (job_dir / "train.jsonl").exists()


def test_above_the_cap_a_uniform_sample_is_scaled(engine, pclue_dataset, tiny_model_dir, tmp_path):
    config = small_config()
    config["data"]["eval_fraction"] = 0.0
    exact = run_estimate(engine, pclue_dataset, tiny_model_dir, config, world=1)
    sampled = run_estimate(engine, pclue_dataset, tiny_model_dir, config, world=1, cap=400)
    assert sampled.sampled and sampled.used == 400 and sampled.samples == 705
    for field in ("tokens", "supervised_tokens", "train_samples", "bins", "steps"):
        assert getattr(sampled, field) == pytest.approx(getattr(exact, field), rel=0.12), field
    assert sampled.packing_efficiency == pytest.approx(exact.packing_efficiency, abs=0.05)


def test_the_trainers_data_errors_come_back_named(engine, pclue_dataset, tiny_model_dir):
    config = small_config()
    config["data"].update(max_seq_len=24, over_length="error")
    with pytest.raises(EstimateError) as err:
        run_estimate(engine, pclue_dataset, tiny_model_dir, config)
    head = err.value.message.splitlines()[0]
    assert (
        err.value.field == "data.max_seq_len" and "samples are longer than data.max_seq_len 24 tokens" in head
    )
    assert "pclue v1 #" in err.value.message  # samples named by dataset, version and id, not temp-file lines
    longest = int(head.split("(longest ")[1].split(")")[0].replace(",", ""))
    fit = -(-longest // 256) * 256
    assert [(f.name, f.value) for f in err.value.fixes] == [
        ("data.max_seq_len", str(fit)),
        ("data.over_length", "truncate"),
        ("data.over_length", "drop"),
    ]


def test_a_problem_the_estimate_found_blocks_the_launch_and_a_fix_clears_it(
    researcher, pclue_dataset, tiny_model_dir, engine, sent_runs
):
    estimating._CACHE.clear()
    estimating._PROBLEMS.clear()
    d = pclue_dataset.dataset_id
    form = {
        "name": "too long",
        "train_ds": str(d),
        f"v.{d}": "1",
        "queue": "cpu",
        "n_procs": "1",
        "base_kind": "path",
        "base_path": str(tiny_model_dir),
        "f.data.max_seq_len": "200",
        "f.data.over_length": "error",
    }
    est = researcher.post("/runs/new/estimate", data=form, headers={"HX-Request": "true"}).text
    assert 'id="estimate-problem"' in est and "samples are longer than data.max_seq_len 200 tokens" in est
    assert 'data-fix-field="f.data.over_length" data-fix-value="drop"' in est
    refused = researcher.post("/runs/new", data=form, follow_redirects=False)
    assert refused.status_code == 422 and "samples are longer than data.max_seq_len 200" in refused.text
    assert sent_runs == []
    fixed = {**form, "f.data.over_length": "drop"}
    assert (
        "est-steps" in researcher.post("/runs/new/estimate", data=fixed, headers={"HX-Request": "true"}).text
    )
    launched = researcher.post("/runs/new", data=fixed, follow_redirects=False)
    assert launched.status_code == 303 and len(sent_runs) == 1


def test_estimate_partial_from_the_form(researcher, pclue_dataset, tiny_model_dir, engine):
    estimating._CACHE.clear()
    d = pclue_dataset.dataset_id
    form = {
        "name": "e",
        "train_ds": str(d),
        f"v.{d}": "1",
        "queue": "cpu",
        "n_procs": "2",
        "base_kind": "path",
        "base_path": str(tiny_model_dir),
        "f.data.max_seq_len": "256",
        "f.data.over_length": "truncate",
        "f.data.eval_fraction": "0.1",
        "mix.nli": "2",
        "mix.classify": "0.5",
        "f.train.epochs": "1.5",
        "f.train.per_device_batch": "2",
        "f.train.grad_accum": "2",
    }
    response = researcher.post("/runs/new/estimate", data=form, headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.text
    assert html.lstrip().startswith('<div id="estimate"')
    expected = run_estimate(engine, pclue_dataset, tiny_model_dir, small_config())  # same config as the form
    assert f'id="est-steps">{expected.steps:,}<' in html
    assert f'id="est-tokens">{expected.tokens:,}<' in html
    response = researcher.post(
        "/runs/new/estimate", data={**form, "f.train.lr": "nope"}, headers={"HX-Request": "true"}
    )
    assert "train.lr" in response.text and "est-steps" not in response.text


class Guarded(OrderedDict):
    """The cache, refusing any use while its lock is free (routes call estimate() from many threads)."""

    def _check(self) -> None:
        assert estimating._CACHE_LOCK.locked(), "the estimate cache was used without its lock"

    def __contains__(self, key):
        self._check()
        return super().__contains__(key)

    def __getitem__(self, key):
        self._check()
        return super().__getitem__(key)

    def __setitem__(self, key, value):
        self._check()
        super().__setitem__(key, value)

    def __len__(self):
        self._check()
        return super().__len__()

    def move_to_end(self, key, last=True):
        self._check()
        super().move_to_end(key, last)

    def popitem(self, last=True):
        self._check()
        return super().popitem(last)


def test_the_cache_is_shared_by_threads_under_its_lock(engine, pclue_dataset, monkeypatch, tmp_path):
    plan = {
        "train_samples": 10,
        "eval_samples": 0,
        "tokens": 100,
        "supervised_tokens": 50,
        "bins": 4,
        "steps": 2,
        "bins_per_step": 2,
        "packing_efficiency": 0.5,
        "dropped": 0,
    }
    children: list[int] = []

    def job(engine, params, owner_id, timeout):  # noqa: ANN001
        children.append(1)
        return scaled(plan, params, {"used": params["total"], "sampled": False})

    monkeypatch.setattr(estimating, "_plan", job)
    monkeypatch.setattr(estimating, "_CACHE", Guarded())
    config = small_config()

    def one(world: int):
        return estimate(
            engine,
            config=config,
            datasets=[(pclue_dataset.dataset_id, pclue_dataset.version)],
            eval_dataset=None,
            model_path="",
            tokenizer_dir=tmp_path,
            world=world,
        )

    worlds = [*range(1, 71), *range(70, 0, -1)]  # 70 keys asked twice: evictions past 64 entries, then hits
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, worlds))
    assert all(r.steps == 2 and r.samples == 705 for r in results)
    with estimating._CACHE_LOCK:
        assert len(estimating._CACHE) == 64
    assert 70 <= len(children) < 100  # the repeats mostly come from the cache
