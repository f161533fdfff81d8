"""The launch form: which trainer fields it shows, in which order, and how posted values become a LaunchRequest.

Why generated: every field, its type, default and one-line help come from trainer.config.describe_fields(),
so a new trainer option appears on the form without touching a template. The layout is the only thing
written here: the must-check list on top (what people get wrong most), the speed options under it, the
rest in collapsible groups. Fields the platform fills (paths, the mix table, resume) are never raw inputs.

`LaunchForm` holds what was typed, as text, so a form with errors re-renders exactly as posted and a run's
form_json re-fills the form for clone. `to_request` is the one place text becomes typed config; the JSON
API goes through the same place (`from_api`), so both reject the same inputs with the same messages.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.runs.launch import MAX_NODES, LaunchRequest, field_of
from trainer.config import ConfigError, RunConfig, describe_fields, embedded_default
from trainer.data import DataError, parse_weight

MUST_CHECK = ("train.epochs", "train.grad_accum", "train.lr", "train.scheduler", "train.dropout")
SPEED = (
    "deepspeed.enabled",
    "deepspeed.zero_stage",
    "data.max_seq_len",
    "deepspeed.offload_optimizer",
    "deepspeed.offload_params",
    "train.gradient_checkpointing",
    "model.compile",
)
# Filled by the platform (create_run) or by a widget of their own (base model picker, mix table).
PLATFORM = frozenset(
    {"output_dir", "data.train_file", "data.eval_file", "model.path", "data.mix", "checkpoint.resume"}
)
NEAR_DATASETS = ("data.eval_fraction",)  # shown beside the dataset pickers it belongs to
GROUPS = ("train", "data", "loss", "packing", "finetune", "checkpoint", "eval", "metrics", "model")
BASE_KINDS = ("embedded", "path", "checkpoint")
INPUTS = {"bool": "checkbox", "int": "number", "float": "number"}  # anything else is a text input


def _fields() -> dict[str, dict]:
    """describe_fields() by name, with the embedded_default preset's values as defaults and an input kind."""
    defaults = flat(embedded_default().to_dict())
    return {
        f["name"]: {
            **f,
            "default": defaults.get(f["name"], f["default"]),
            "input": "select" if f["choices"] else INPUTS.get(f["type"], "text"),
        }
        for f in describe_fields()
    }


def flat(tree: dict, prefix: str = "") -> dict[str, Any]:
    """A nested config dict -> {"train.lr": ...}; data.mix stays one value (its keys are task_types)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and f"{prefix}{key}" != "data.mix":
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


FIELDS = _fields()
SHOWN = [name for name in FIELDS if name not in PLATFORM]


def text_of(value: Any) -> str:
    """How a config value is written in an input (and stored in form_json)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


@dataclass
class Section:
    key: str  # i18n key suffix: launch.group.<key>
    fields: list[dict]
    open: bool


def sections() -> list[Section]:
    """The form's field groups in display order; the first two are always open."""
    placed = set(MUST_CHECK) | set(SPEED) | set(NEAR_DATASETS)
    out = [
        Section("must_check", [FIELDS[n] for n in MUST_CHECK], True),
        Section("speed", [FIELDS[n] for n in SPEED], True),
    ]
    for group in GROUPS:
        rest = [FIELDS[n] for n in SHOWN if n.split(".")[0] == group and n not in placed]
        if rest:
            out.append(Section(group, rest, False))
    return out


@dataclass
class LaunchForm:
    """What the form holds, as typed: re-rendered on errors, stored as a run's form_json for clone."""

    name: str = ""
    values: dict[str, str] = field(default_factory=dict)  # config field -> text
    base_kind: str = "embedded"
    base_path: str = ""  # local directory or hub id
    base_checkpoint: str = ""  # "run:<id>/<checkpoint dir name>"
    train: list[list[int]] = field(default_factory=list)  # [[dataset_id, version], ...]
    eval_dataset: list[int] | None = None  # [dataset_id, version]
    mix_level: int = 1
    mix: dict[str, str] = field(default_factory=dict)  # task_type key -> weight text
    queue: str = "cpu"
    n_gpus: str = "0"
    n_procs: str = "1"
    num_nodes: str = "1"
    hostfile: str = ""  # a DeepSpeed hostfile's path on the worker (several nodes)
    parent_run_id: int | None = None

    def value(self, name: str) -> str:
        return self.values.get(name, text_of(FIELDS[name]["default"]))

    @property
    def base_model(self) -> str:
        if self.base_kind == "path":
            return self.base_path.strip()
        if self.base_kind == "checkpoint":
            return self.base_checkpoint.strip()
        return ""

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: Any) -> LaunchForm:
        """A stored form_json back into a form; unknown or malformed keys are dropped, not fatal."""
        if not isinstance(raw, dict):
            return cls()

        def pair(v: Any) -> list[int] | None:
            ok = isinstance(v, list) and len(v) == 2 and all(str(x).isdigit() for x in v)
            return [int(v[0]), int(v[1])] if ok else None

        def texts(v: Any) -> dict[str, str]:
            return {str(k): str(x) for k, x in v.items()} if isinstance(v, dict) else {}

        parent, train = raw.get("parent_run_id"), raw.get("train")
        return cls(
            name=str(raw.get("name") or ""),
            values={k: v for k, v in texts(raw.get("values")).items() if k in FIELDS},
            base_kind=str(raw.get("base_kind")) if raw.get("base_kind") in BASE_KINDS else "embedded",
            base_path=str(raw.get("base_path") or ""),
            base_checkpoint=str(raw.get("base_checkpoint") or ""),
            train=[p for p in map(pair, train if isinstance(train, list) else []) if p],
            eval_dataset=pair(raw.get("eval_dataset")),
            mix_level=2 if str(raw.get("mix_level")) == "2" else 1,
            mix=texts(raw.get("mix")),
            queue=str(raw.get("queue") or "cpu"),
            n_gpus=str(raw.get("n_gpus", "0")),
            n_procs=str(raw.get("n_procs", "1")),
            num_nodes=str(raw.get("num_nodes", "1")),
            hostfile=str(raw.get("hostfile") or ""),
            parent_run_id=parent if isinstance(parent, int) and not isinstance(parent, bool) else None,
        )


def default_form(queue: str) -> LaunchForm:
    return LaunchForm(name=f"run {datetime.now(UTC):%Y-%m-%d %H:%M}", queue=queue)


def clone_form(form_json: str | dict, *, name: str, run_id: int) -> LaunchForm:
    raw = json.loads(form_json) if isinstance(form_json, str) else form_json
    form = LaunchForm.from_json(raw)
    form.name = f"{name} (clone)"
    form.parent_run_id = run_id
    return form


def _ints(text: str) -> int | None:
    text = text.strip()
    return int(text) if re.fullmatch(r"\d{1,9}", text) else None


def parse_form(data: Mapping[str, Any], getlist: Any = None) -> LaunchForm:
    """Posted form fields -> LaunchForm (text only, nothing validated yet).

    Checkboxes post a hidden "false" then the box's "true", so the last value wins and an unchecked box
    still says false. Train datasets: checkboxes `train_ds` = dataset id, with the version in `v.<id>`.
    """

    def get(key: str) -> str:
        value = data.get(key)
        return value.strip() if isinstance(value, str) else ""

    def all_of(key: str) -> list[str]:
        return [v for v in (getlist(key) if getlist else [data.get(key)]) if isinstance(v, str)]

    values = {}
    for name in SHOWN:
        got = all_of(f"f.{name}")
        if got:
            values[name] = got[-1].strip()
    train = []
    for raw in all_of("train_ds"):
        dataset_id, version = _ints(raw), _ints(get(f"v.{raw.strip()}"))
        if dataset_id is not None and version is not None and [dataset_id, version] not in train:
            train.append([dataset_id, version])
    ev = get("eval_ds").split(":")
    eval_pair = [_ints(ev[0]), _ints(ev[1])] if len(ev) == 2 else None
    mix = {str(k)[4:]: v.strip() for k, v in data.items() if str(k).startswith("mix.") and isinstance(v, str)}
    parent = _ints(get("parent_run_id"))
    return LaunchForm(
        name=get("name"),
        values=values,
        base_kind=get("base_kind") if get("base_kind") in BASE_KINDS else "embedded",
        base_path=get("base_path"),
        base_checkpoint=get("base_checkpoint"),
        train=train,
        eval_dataset=eval_pair if eval_pair and None not in eval_pair else None,  # type: ignore[arg-type]
        mix_level=2 if get("mix_level") == "2" else 1,
        mix={k: v for k, v in mix.items() if v},
        queue=get("queue"),
        n_gpus=get("n_gpus") or "0",
        n_procs=get("n_procs") or "1",
        num_nodes=get("num_nodes") or "1",
        hostfile=get("hostfile"),
        parent_run_id=parent,
    )


class FormError(ValueError):
    """Field -> message for every problem found; the form shows each message next to its field."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _coerce(name: str, text: str) -> Any:
    f = FIELDS[name]
    tp, text = f["type"], text.strip()
    if tp == "bool":
        if text.lower() in ("true", "on", "1", "yes"):
            return True
        if text.lower() in ("false", "off", "0", "no", ""):
            return False
        raise ValueError(f"expected true or false, got {text[:40]!r}")
    if tp == "int":
        if not re.fullmatch(r"[+-]?\d{1,15}", text):
            raise ValueError(f"expected a whole number, got {text[:40]!r}")
        value: Any = int(text)
    elif tp == "float":
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text[:40]!r}") from None
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {text[:40]!r}")
    elif tp == "list[str]":
        value = [part for part in re.split(r"[,\s]+", text) if part]
    else:
        value = text
    if f["choices"] and value not in f["choices"]:
        raise ValueError(f"{text[:40]!r} is not one of {', '.join(map(str, f['choices']))}")
    return value


def _set(tree: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[leaf] = value


def config_of(form: LaunchForm, errors: dict[str, str]) -> dict:
    """The trainer config dict the form asks for (platform paths left empty for create_run to fill)."""
    config = embedded_default().to_dict()
    for name in SHOWN:
        try:
            _set(config, name, _coerce(name, form.value(name)))
        except ValueError as exc:
            errors[name] = str(exc)
    mix = {}
    for key, text in form.mix.items():
        try:
            weight = parse_weight(text)
        except DataError as exc:
            errors["mix"] = str(exc)
            continue
        mix[key] = weight
    config["data"]["mix"] = mix
    config["checkpoint"]["resume"] = False
    return config


def check_config(config: dict, *, has_eval_dataset: bool) -> tuple[str, str] | None:
    """(field, message) of the trainer's first objection to this config, with placeholder paths."""
    trial = {**config, "output_dir": config.get("output_dir") or "<run dir>"}
    trial["data"] = {
        **config["data"],
        "train_file": "<run dir>/train.jsonl",
        "eval_file": "<run dir>/eval.jsonl" if has_eval_dataset else "",
    }
    try:
        RunConfig.from_dict(trial).validate(check_files=False)
    except ConfigError as exc:
        return field_of(str(exc)), str(exc)
    return None


def to_request(
    form: LaunchForm, *, owner_id: int, queues: list[str], sweep_id: int | None = None
) -> LaunchRequest:
    """Validate every input and build the LaunchRequest; FormError lists all problems at once."""
    errors: dict[str, str] = {}
    if not form.name.strip():
        errors["name"] = "give the run a name"
    elif len(form.name) > 200:
        errors["name"] = "at most 200 characters"
    config = config_of(form, errors)
    if not form.train:
        errors["datasets"] = "choose at least one training dataset version"
    if form.base_kind != "embedded" and not form.base_model:
        errors["base_model"] = (
            "choose a checkpoint" if form.base_kind == "checkpoint" else "enter a local path or hub id"
        )
    if form.queue not in queues:
        errors["queue"] = f"unknown queue {form.queue[:50]!r} (known: {', '.join(queues)})"
    n_gpus, n_procs = _ints(form.n_gpus), _ints(form.n_procs)
    if n_gpus is None or n_gpus > 64:
        errors["n_gpus"] = "a whole number of GPUs from 0 (CPU) to 64"
    if n_procs is None or not 1 <= n_procs <= 64:
        errors["n_procs"] = "a whole number of CPU ranks from 1 to 64"
    num_nodes = _ints(form.num_nodes)
    if num_nodes is None or not 1 <= num_nodes <= MAX_NODES:
        errors["num_nodes"] = f"a whole number of nodes from 1 to {MAX_NODES}"
    if len(form.hostfile) > 1000:
        errors["hostfile"] = "at most 1000 characters"
    if not errors.keys() & FIELDS.keys() and "mix" not in errors:  # a typing error first, then the trainer's
        problem = check_config(config, has_eval_dataset=form.eval_dataset is not None)
        if problem is not None:
            errors.setdefault(*problem)
    if errors:
        raise FormError(errors)
    return LaunchRequest(
        name=form.name.strip(),
        owner_id=owner_id,
        config=config,
        datasets=[(a, b) for a, b in form.train],
        eval_dataset=(form.eval_dataset[0], form.eval_dataset[1]) if form.eval_dataset else None,
        base_model=form.base_model,
        queue=form.queue,
        n_gpus=n_gpus or 0,
        n_procs=(n_gpus or n_procs or 1),
        num_nodes=num_nodes or 1,
        hostfile=form.hostfile.strip(),
        form=form.to_json(),
        parent_run_id=form.parent_run_id,
        sweep_id=sweep_id,
    )
