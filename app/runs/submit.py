"""Submitting a launch: the page's form or the API's JSON, validated against the data, then launched
(app.runs.launch.launch).

The JSON API builds the same LaunchForm the page posts (`from_api`), so both paths refuse the same
inputs with the same field -> message errors, and an API-launched run can be cloned on the page too.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.runs import launch as launching
from app.runs.form import FIELDS, PLATFORM, FormError, LaunchForm, flat, text_of, to_request
from app.runs.launch import MAX_ID, LaunchError, LaunchRequest
from app.runs.mix import group_counts, mixed_counts
from trainer.data import DataError


def _pair(raw: Any, what: str) -> list[int]:
    if isinstance(raw, dict):
        raw = [raw.get("dataset_id"), raw.get("version")]
    if (
        isinstance(raw, list | tuple)
        and len(raw) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_ID for v in raw)
    ):
        return [raw[0], raw[1]]
    raise FormError({what: 'expected {"dataset_id": <int>, "version": <int>} or [dataset_id, version]'})


def from_api(body: Any, *, queue: str) -> LaunchForm:
    """A JSON launch body -> the same LaunchForm the page posts (so both validate identically).

    {"name", "datasets": [{"dataset_id", "version"}], "eval_dataset"?, "base_model"?, "config"?: a partial
    nested trainer config over the embedded_default preset, "mix"? (or config.data.mix), "queue"?,
    "n_gpus"?, "n_procs"?, "num_nodes"?, "hostfile"?, "parent_run_id"?}
    """
    if not isinstance(body, dict):
        raise FormError({"form": "expected a JSON object"})
    config = body.get("config") or {}
    if not isinstance(config, dict):
        raise FormError({"config": "expected an object (a partial trainer config)"})
    given = flat(config)
    unknown = [k for k in given if k not in FIELDS]
    if unknown:
        raise FormError({unknown[0]: f"unknown config field {unknown[0]!r}"})
    platform = [k for k in given if k in PLATFORM and k != "data.mix"]
    if platform:
        raise FormError({platform[0]: f"{platform[0]} is set by the platform"})
    mix = body.get("mix", given.get("data.mix")) or {}
    if not isinstance(mix, dict):
        raise FormError({"mix": "expected an object task_type -> weight"})
    datasets = body.get("datasets") or []
    if not isinstance(datasets, list):
        raise FormError({"datasets": "expected a list"})
    base = body.get("base_model") or ""
    if not isinstance(base, str):
        raise FormError({"base_model": "expected a string"})
    kind = "embedded" if not base else "checkpoint" if base.startswith("run:") else "path"
    parent = body.get("parent_run_id")
    return LaunchForm(
        name=str(body.get("name") or ""),
        values={k: text_of(v) for k, v in given.items() if k not in PLATFORM},
        base_kind=kind,
        base_path=base if kind == "path" else "",
        base_checkpoint=base if kind == "checkpoint" else "",
        train=[_pair(d, "datasets") for d in datasets],
        eval_dataset=_pair(body["eval_dataset"], "eval_dataset") if body.get("eval_dataset") else None,
        mix_level=2 if any("/" in str(k) for k in mix) else 1,
        mix={str(k): text_of(v) for k, v in mix.items()},
        queue=str(body.get("queue") or queue),
        n_gpus=text_of(body.get("n_gpus", 0)),
        n_procs=text_of(body.get("n_procs", 1)),
        num_nodes=text_of(body.get("num_nodes", 1)),
        hostfile=text_of(body.get("hostfile") or ""),
        parent_run_id=parent if isinstance(parent, int) and not isinstance(parent, bool) else None,
    )


def check_mix(session: Session, req: LaunchRequest) -> None:
    """The mix against the chosen data, as the trainer will read it: unknown keys, or nothing left to train."""
    data = req.config["data"]
    counts = group_counts(session, req.datasets)
    if not counts:  # unknown versions: create_run names them
        return
    try:
        after = mixed_counts(
            counts, data["mix"], eval_fraction=0.0 if req.eval_dataset else data["eval_fraction"]
        )
    except DataError as exc:
        raise FormError({"mix": str(exc)}) from None
    if not sum(after.values()):
        raise FormError({"mix": "the mix leaves no training sample"})


def submit(session: Session, form: LaunchForm, *, owner_id: int, queues: list[str]) -> int:
    """Validate the form, create and enqueue the run; FormError (field -> message) when anything is wrong."""
    req = to_request(form, owner_id=owner_id, queues=queues)
    check_mix(session, req)
    try:
        return launching.launch(req)
    except LaunchError as exc:
        raise FormError({exc.field: exc.message}) from None
