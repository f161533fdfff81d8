"""The run config: a tree of dataclasses, validated before anything heavy loads.

Why a dataclass tree: the web form is generated from it (`describe_fields()`), it is stored resolved in
the run directory (`to_json`), and every field carries its help text, so the form, the docs and the
validation messages come from one place. Presets are plain functions (`tiny_debug()`, `embedded_default()`).

This module imports nothing heavy (no torch): the web server may import it to build forms.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any


def _f(default: Any = MISSING, *, help: str, choices: tuple | None = None, factory: Any = MISSING) -> Any:
    meta = {"help": help}
    if choices is not None:
        meta["choices"] = choices
    if factory is not MISSING:
        return field(default_factory=factory, metadata=meta)
    if default is MISSING:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class ModelConfig:
    path: str = _f(
        "", help="Local Hugging Face model directory or hub id. Empty: the embedded SmolLM2-135M-Instruct."
    )
    tokenizer_path: str = _f(
        "", help="Tokenizer directory when it differs from the model's. Empty: same as model."
    )
    chat_template_file: str = _f(
        "",
        help="Jinja chat template file used instead of the tokenizer's own (loss masks and the saved"
        " checkpoints carry it). Empty: the tokenizer's template.",
    )
    attn_implementation: str = _f(
        "auto",
        help="Attention kernel. auto: on a GPU with bf16, flash_attention_2 if installed, else torch's varlen"
        " kernel, else sdpa; sdpa on CPU and with fp32. sdpa/eager: block-diagonal mask (O(L²) memory);"
        " flash_attention_2/varlen: GPU, bf16/fp16 only.",
        choices=("auto", "sdpa", "eager", "flash_attention_2", "varlen"),
    )
    compile: str = _f(
        "auto",
        help="torch.compile each decoder layer, fusing the norms, rotary and MLP element-wise work into few"
        " kernels (the first steps are slower while it compiles). auto: on CUDA GPUs, except under ZeRO-3;"
        " off on CPU, where compiling takes longer than short runs save.",
        choices=("auto", "on", "off"),
    )


@dataclass
class DataConfig:
    train_file: str = _f(help="Messages JSONL exported by the platform (messages, task_type, tags per line).")
    eval_file: str = _f("", help="Held-out messages JSONL. Empty: take eval_fraction of the training file.")
    eval_fraction: float = _f(0.0, help="Fraction of the training samples held out for eval (0 = no eval).")
    mix: dict[str, float] = _f(
        help="Weight per task_type, level 1 ('nli') or level 2 ('pclue/nli'): 2 repeats, 0.5 subsamples.",
        factory=dict,
    )
    max_seq_len: int = _f(1024, help="Longest packed sequence (bin) in tokens.")
    over_length: str = _f(
        "error",
        help="A sample longer than max_seq_len: error (refuse before training), truncate (cut its end), or drop it.",
        choices=("error", "truncate", "drop"),
    )


@dataclass
class LossConfig:
    scope: str = _f(
        "all", help="Which assistant turns carry loss: every one, or the last only.", choices=("all", "last")
    )
    prompt_loss: bool = _f(
        False, help="Also train on prompt (system/user) tokens. Tool results never carry loss."
    )
    eos_in_loss: bool = _f(True, help="Include the end-of-turn / EOS token of assistant turns in the loss.")
    normalisation: str = _f(
        "token",
        help="token: every supervised token weighs the same; sample: every sample; task: every task_type.",
        choices=("token", "sample", "task"),
    )
    task_level: int = _f(
        2, help="Level of task_type used by the 'task' normalisation (1 or 2).", choices=(1, 2)
    )


@dataclass
class PackingConfig:
    enabled: bool = _f(True, help="Best-fit-decreasing packing of samples into bins of max_seq_len.")
    chunk_size: int = _f(4096, help="Supervised positions per output-layer + cross-entropy chunk.")


@dataclass
class TrainConfig:
    epochs: float = _f(1.0, help="Passes over the data; fractional allowed (1.1 repeats the first 10%).")
    max_steps: int = _f(
        0, help="Stop after this many optimizer steps (0: all epochs); 2 makes a quick smoke test of a setup."
    )
    lr: float = _f(2e-5, help="Peak learning rate.")
    scheduler: str = _f(
        "cosine", help="Learning-rate schedule after warmup.", choices=("cosine", "linear", "constant")
    )
    warmup_steps: int = _f(0, help="Linear warmup in optimizer steps (takes precedence over warmup_ratio).")
    warmup_ratio: float = _f(
        0.0, help="Linear warmup as a fraction of total steps (used when warmup_steps is 0)."
    )
    min_lr_ratio: float = _f(0.0, help="Final learning rate as a fraction of lr (cosine, linear).")
    per_device_batch: int = _f(1, help="Packed bins per micro-batch on each device.")
    grad_accum: int = _f(1, help="Micro-batches accumulated per optimizer step.")
    weight_decay: float = _f(0.0, help="AdamW weight decay (not applied to biases and norms).")
    adam_beta1: float = _f(0.9, help="AdamW beta1.")
    adam_beta2: float = _f(0.95, help="AdamW beta2.")
    adam_eps: float = _f(1e-8, help="AdamW epsilon.")
    dropout: float = _f(0.0, help="Attention dropout of the model (0 keeps the model's own setting off).")
    grad_clip: float = _f(1.0, help="Clip the global gradient norm to this value (0 = off).")
    seed: int = _f(42, help="Seed for data order, mixing subsamples and initialisation.")
    precision: str = _f(
        "fp32",
        help="Training precision (fp16 only under DeepSpeed with ZeRO stage >= 1, which scales the loss).",
        choices=("bf16", "fp16", "fp32"),
    )
    gradient_checkpointing: bool = _f(False, help="Recompute activations in backward to save memory.")
    max_hours: float = _f(
        0.0,
        help="Stop after this many hours of training (from each start or resume), saving a checkpoint "
        "to resume from (0 = no limit).",
    )


@dataclass
class FinetuneConfig:
    method: str = _f(
        "full",
        help="full, LoRA adapters (peft), or freezing chosen parts.",
        choices=("full", "lora", "freeze"),
    )
    lora_rank: int = _f(16, help="LoRA rank r.")
    lora_alpha: int = _f(32, help="LoRA alpha (scale = alpha / r).")
    lora_dropout: float = _f(0.05, help="Dropout on the LoRA input.")
    lora_target_modules: list[str] = _f(
        help="Module names receiving LoRA adapters.",
        factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    )
    freeze_embeddings: bool = _f(
        False, help="method=freeze: freeze input embeddings (and tied output layer)."
    )
    freeze_attention: bool = _f(False, help="method=freeze: freeze every attention block.")
    freeze_mlp: bool = _f(False, help="method=freeze: freeze every MLP block.")
    freeze_first_n_layers: int = _f(0, help="method=freeze: freeze the first N decoder layers entirely.")


@dataclass
class DeepSpeedConfig:
    enabled: bool = _f(
        False, help="Train through a DeepSpeed engine (config generated and saved in the run dir)."
    )
    zero_stage: int = _f(
        2, help="ZeRO stage: 0 none, 1 optimizer, 2 +gradients, 3 +parameters.", choices=(0, 1, 2, 3)
    )
    offload_optimizer: bool = _f(False, help="Keep optimizer states in CPU memory (ZeRO 1-3).")
    offload_params: bool = _f(False, help="Keep parameters in CPU memory (ZeRO 3 only).")


@dataclass
class CheckpointConfig:
    every_n_steps: int = _f(0, help="Save a checkpoint every N optimizer steps (0 = only at epoch ends).")
    at_epoch_end: bool = _f(True, help="Save a checkpoint at the end of each epoch.")
    keep_last: int = _f(3, help="Keep only the last K checkpoints (0 = keep all).")
    merge_lora: bool = _f(False, help="LoRA: also write merged full weights, loadable without peft.")
    resume: bool = _f(
        True, help="Resume from the latest complete checkpoint in output_dir when there is one."
    )


@dataclass
class EvalConfig:
    every_n_steps: int = _f(0, help="Evaluate every N optimizer steps (0 = only at the end).")
    rising_k: int = _f(3, help="Warn when eval loss rises across K consecutive evals.")


@dataclass
class MetricsConfig:
    log_every: int = _f(1, help="Write a train event every N optimizer steps.")
    peak_flops: float = _f(0.0, help="Peak FLOP/s per device for MFU. 0: detect from the device.")
    step_drop_window: int = _f(5, help="Steps compared before/after an epoch boundary for step-shaped drops.")
    step_drop_ratio: float = _f(0.15, help="Relative loss drop at an epoch boundary that raises a warning.")


@dataclass
class RunConfig:
    data: DataConfig = _f(help="Training and evaluation data.")
    output_dir: str = _f(help="Run directory: metrics.jsonl, resolved config, checkpoints.")
    model: ModelConfig = _f(help="Base model.", factory=ModelConfig)
    loss: LossConfig = _f(help="Loss masks and normalisation.", factory=LossConfig)
    packing: PackingConfig = _f(help="Packing of samples into bins.", factory=PackingConfig)
    train: TrainConfig = _f(help="Optimisation hyperparameters.", factory=TrainConfig)
    finetune: FinetuneConfig = _f(help="Which parameters train.", factory=FinetuneConfig)
    deepspeed: DeepSpeedConfig = _f(help="DeepSpeed engine options.", factory=DeepSpeedConfig)
    checkpoint: CheckpointConfig = _f(help="Checkpointing and resume.", factory=CheckpointConfig)
    eval: EvalConfig = _f(help="Validation.", factory=EvalConfig)
    metrics: MetricsConfig = _f(help="Logging and warnings.", factory=MetricsConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_dict(cls, raw: dict) -> RunConfig:
        return _build(cls, _upgrade(raw), "")

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> RunConfig:
        p = Path(path_or_text) if not str(path_or_text).lstrip().startswith("{") else None
        if p is not None and not p.exists():
            raise ConfigError(f"config file {p} does not exist")
        text = p.read_text(encoding="utf-8") if p is not None else str(path_or_text)
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"config is not valid JSON: {e}") from e
        return cls.from_dict(raw)

    def validate(self, *, check_files: bool = True) -> RunConfig:
        """Raise ConfigError naming the field when the config cannot run; cheap checks only."""
        validate(self, check_files=check_files)
        return self


def _upgrade(raw: Any) -> Any:
    """A config written before data.over_length (runs stored then are resumed with it): its boolean
    data.truncation becomes the policy it meant."""
    data = raw.get("data") if isinstance(raw, dict) else None
    if isinstance(data, dict) and "truncation" in data and "over_length" not in data:
        data = {k: v for k, v in data.items() if k != "truncation"}
        data["over_length"] = "truncate" if raw["data"]["truncation"] is True else "error"
        return {**raw, "data": data}
    return raw


class ConfigError(ValueError):
    """A config that cannot run; the message names the field (e.g. `train.lr`)."""


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'config'}: expected an object, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"unknown key {prefix}{unknown[0]!s} (known: {', '.join(sorted(known))})")
    kwargs = {}
    for name, f in known.items():
        path = f"{prefix}{name}"
        if name not in raw:
            if f.default is MISSING and f.default_factory is MISSING:
                raise ConfigError(f"missing field {path}: {f.metadata.get('help', '')}")
            continue
        kwargs[name] = _coerce(hints[name], raw[name], path)
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, path: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path + ".")
    origin = typing.get_origin(tp)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected an object, got {value!r}")
        _, vt = typing.get_args(tp)
        return {str(k): _coerce(vt, v, f"{path}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    return value


def _walk(obj: Any, prefix: str = ""):
    for f in fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from _walk(value, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f, value


def _template_text(model_dir: Path) -> str | None:
    jinja = model_dir / "chat_template.jinja"
    if jinja.exists():
        return jinja.read_text(encoding="utf-8")
    cfg = model_dir / "tokenizer_config.json"
    if cfg.exists():
        tpl = json.loads(cfg.read_text(encoding="utf-8")).get("chat_template")
        if isinstance(tpl, list):  # named templates: [{"name": ..., "template": ...}]
            tpl = next((t.get("template") for t in tpl if t.get("name") == "default"), None)
        return tpl if isinstance(tpl, str) else None
    return None


# Attention kernels that take only fp16/bf16 inputs.
FLASH_ONLY = ("flash_attention_2", "varlen")

UPPER_BOUNDS = {
    "train.epochs": 100,
    "train.per_device_batch": 1024,
    "train.grad_accum": 1024,
    "data.max_seq_len": 131072,
    "train.max_hours": 24 * 30,
}


def validate(cfg: RunConfig, *, check_files: bool = True) -> None:
    """Every check that needs no model weights; raises on the first problem with the field path."""
    for path, f, value in _walk(cfg):
        choices = f.metadata.get("choices")
        if choices is not None and value not in choices:
            raise ConfigError(f"{path}={value!r} is not one of {list(choices)}")
    t, d = cfg.train, cfg.data
    positive = {
        "train.epochs": t.epochs,
        "train.lr": t.lr,
        "train.per_device_batch": t.per_device_batch,
        "train.grad_accum": t.grad_accum,
        "data.max_seq_len": d.max_seq_len,
        "packing.chunk_size": cfg.packing.chunk_size,
    }
    for path, value in positive.items():
        if not value > 0:
            raise ConfigError(f"{path} must be > 0, got {value!r}")
    for path, value in {
        "train.epochs": t.epochs,
        "train.per_device_batch": t.per_device_batch,
        "train.grad_accum": t.grad_accum,
        "data.max_seq_len": d.max_seq_len,
        "train.max_hours": t.max_hours,
    }.items():
        # Beyond these a typo (epochs=1000, max_seq_len=10**9) would hold a machine for days or
        # allocate until the process dies; nobody fine-tunes anywhere near them.
        if not value <= UPPER_BOUNDS[path]:  # NaN too
            raise ConfigError(f"{path} must be <= {UPPER_BOUNDS[path]:g}, got {value!r}")
    nonneg = {
        "train.warmup_steps": t.warmup_steps,
        "train.max_steps": t.max_steps,
        "train.weight_decay": t.weight_decay,
        "train.grad_clip": t.grad_clip,
        "train.max_hours": t.max_hours,
        "checkpoint.every_n_steps": cfg.checkpoint.every_n_steps,
        "checkpoint.keep_last": cfg.checkpoint.keep_last,
        "eval.every_n_steps": cfg.eval.every_n_steps,
        "metrics.peak_flops": cfg.metrics.peak_flops,
        "finetune.freeze_first_n_layers": cfg.finetune.freeze_first_n_layers,
    }
    for path, value in nonneg.items():
        if value < 0:
            raise ConfigError(f"{path} must be >= 0, got {value!r}")
    for path, value in {
        "train.warmup_ratio": t.warmup_ratio,
        "train.min_lr_ratio": t.min_lr_ratio,
        "train.dropout": t.dropout,
        "finetune.lora_dropout": cfg.finetune.lora_dropout,
    }.items():
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{path} must be in [0, 1], got {value!r}")
    if not 0.0 <= d.eval_fraction < 1.0:
        raise ConfigError(f"data.eval_fraction must be in [0, 1), got {d.eval_fraction!r}")
    if d.eval_file and d.eval_fraction > 0:
        raise ConfigError("data.eval_file and data.eval_fraction are exclusive: set one")
    for key, w in d.mix.items():
        if w < 0:
            raise ConfigError(f"data.mix[{key!r}] must be >= 0, got {w!r}")
    if cfg.metrics.log_every < 1:
        raise ConfigError(f"metrics.log_every must be >= 1, got {cfg.metrics.log_every!r}")
    if cfg.eval.rising_k < 2:
        raise ConfigError(f"eval.rising_k must be >= 2, got {cfg.eval.rising_k!r}")
    ft = cfg.finetune
    if ft.method == "lora":
        if ft.lora_rank < 1 or ft.lora_alpha < 1:
            raise ConfigError("finetune.lora_rank and finetune.lora_alpha must be >= 1")
        if not ft.lora_target_modules:
            raise ConfigError("finetune.lora_target_modules is empty: LoRA would train nothing")
    if ft.method == "freeze" and not (
        ft.freeze_embeddings or ft.freeze_attention or ft.freeze_mlp or ft.freeze_first_n_layers
    ):
        raise ConfigError("finetune.method=freeze but nothing is frozen: set a freeze_* field")
    if cfg.checkpoint.merge_lora and ft.method != "lora":
        raise ConfigError("checkpoint.merge_lora needs finetune.method=lora")
    ds = cfg.deepspeed
    if ds.offload_params and not (ds.enabled and ds.zero_stage == 3):
        raise ConfigError("deepspeed.offload_params needs deepspeed.enabled with zero_stage=3")
    if ds.offload_optimizer and not (ds.enabled and ds.zero_stage >= 1):
        raise ConfigError("deepspeed.offload_optimizer needs deepspeed.enabled with zero_stage>=1")
    if t.precision == "fp16" and not ds.enabled:
        raise ConfigError(
            "train.precision=fp16 needs deepspeed.enabled (dynamic loss scaling); use bf16 or fp32"
        )
    if t.precision == "fp16" and ds.zero_stage == 0:
        # without a ZeRO optimizer DeepSpeed may step with an unscaled fp16 loss (underflowing gradients)
        raise ConfigError("train.precision=fp16 needs deepspeed.zero_stage>=1; use bf16, or ZeRO stage 1-3")
    attn = cfg.model.attn_implementation
    if attn in FLASH_ONLY and t.precision == "fp32":
        raise ConfigError(
            f"model.attn_implementation={attn} needs train.precision bf16 or fp16 (flash kernels take no fp32)"
        )
    if attn == "varlen" and t.dropout > 0:
        raise ConfigError("model.attn_implementation=varlen has no attention dropout: set train.dropout=0")
    if cfg.model.compile == "on" and ds.enabled and ds.zero_stage == 3:
        # ZeRO-3 gathers each layer's parameters in module hooks that a compiled layer skips
        raise ConfigError(
            "model.compile=on does not work with deepspeed.zero_stage=3; use compile=auto or off"
        )
    if not cfg.output_dir:
        raise ConfigError("missing field output_dir: the run directory")
    if not check_files:
        return
    if not Path(d.train_file).is_file():
        raise ConfigError(f"data.train_file {d.train_file!r} does not exist")
    if d.eval_file and not Path(d.eval_file).is_file():
        raise ConfigError(f"data.eval_file {d.eval_file!r} does not exist")
    template_file = cfg.model.chat_template_file
    if template_file:
        _check_template_file(template_file)
    for key in ("path", "tokenizer_path"):
        value = getattr(cfg.model, key)
        if not value:
            continue
        p = Path(value)
        looks_local = value.startswith((".", "/", "~")) or p.exists() or value.count("/") != 1
        if looks_local and not p.expanduser().is_dir():
            raise ConfigError(
                f"model.{key} {value!r} does not exist (a local directory or an org/name hub id)"
            )
        if p.is_dir():
            tpl = _template_text(p)
            if template_file:
                continue  # the file replaces the directory's template
            if key == "path" and tpl is None and not cfg.model.tokenizer_path:
                raise ConfigError(
                    f"model.path {value!r} has no chat template (chat_template.jinja or tokenizer_config.json)"
                )
            if tpl is not None and "assistant" not in tpl:  # the full render check runs with the tokenizer
                raise ConfigError(f"model.{key} {value!r}: its chat template has no assistant role")


def _check_template_file(value: str) -> None:
    """model.chat_template_file: a readable Jinja file with an assistant role; a syntax error names its line."""
    p = Path(value).expanduser()
    if not p.is_file():
        raise ConfigError(f"model.chat_template_file {value!r} does not exist")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"model.chat_template_file {value!r} cannot be read as UTF-8 text: {e}") from e
    import jinja2  # light, and only when a file is given

    try:
        jinja2.Environment(extensions=["jinja2.ext.loopcontrols"]).parse(text)
    except jinja2.TemplateSyntaxError as e:
        if "generation" not in str(e.message):  # transformers' own {% generation %} tag
            raise ConfigError(
                f"model.chat_template_file {value!r}: syntax error at line {e.lineno}: {e.message}"
            ) from e
    if "assistant" not in text.lower():  # the full render check runs with the tokenizer
        raise ConfigError(f"model.chat_template_file {value!r}: the template has no assistant role")


def describe_fields(cls: type = RunConfig, prefix: str = "") -> list[dict]:
    """Flat list of fields for generated forms: name (dotted), type, default, help, choices."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        tp = hints[f.name]
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(tp):
            out.extend(describe_fields(tp, name + "."))
            continue
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = None
        out.append(
            {
                "name": name,
                "type": _type_name(tp),
                "default": default,
                "required": default is None,
                "help": f.metadata.get("help", ""),
                "choices": list(f.metadata["choices"]) if "choices" in f.metadata else None,
            }
        )
    return out


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is list:
        return f"list[{_type_name(typing.get_args(tp)[0])}]"
    if origin is dict:
        k, v = typing.get_args(tp)
        return f"dict[{_type_name(k)}, {_type_name(v)}]"
    return getattr(tp, "__name__", str(tp))


# ---- presets: plain functions the tests, the bench and the run form start from ----


def tiny_debug(train_file: str = "", output_dir: str = "", model_path: str = "") -> RunConfig:
    """A run that finishes in seconds on CPU: tiny model dir given by the caller, short bins, fp32."""
    return RunConfig(
        data=DataConfig(train_file=train_file, max_seq_len=256),
        output_dir=output_dir,
        model=ModelConfig(path=model_path),
        train=TrainConfig(
            epochs=1.0,
            lr=1e-3,
            scheduler="constant",
            per_device_batch=2,
            grad_accum=1,
            grad_clip=1.0,
            seed=0,
            precision="fp32",
            adam_beta2=0.999,
        ),
        checkpoint=CheckpointConfig(every_n_steps=0, at_epoch_end=False, keep_last=2),
    )


def embedded_default(train_file: str = "", output_dir: str = "") -> RunConfig:
    """Full fine-tuning of the embedded SmolLM2-135M-Instruct with usual SFT settings."""
    return RunConfig(
        data=DataConfig(train_file=train_file, max_seq_len=1024, eval_fraction=0.0),
        output_dir=output_dir,
        model=ModelConfig(path=""),
        train=TrainConfig(
            epochs=2.0,
            lr=2e-5,
            scheduler="cosine",
            warmup_ratio=0.03,
            per_device_batch=4,
            grad_accum=4,
            weight_decay=0.0,
            grad_clip=1.0,
            precision="fp32",
        ),
        checkpoint=CheckpointConfig(every_n_steps=0, at_epoch_end=True, keep_last=2),
    )


PRESETS = {"tiny_debug": tiny_debug, "embedded_default": embedded_default}


def main(argv: list[str] | None = None) -> int:
    """`python -m trainer.config --preset tiny_debug --train-file X --output-dir Y > run.json`; --fields lists fields."""
    import argparse

    ap = argparse.ArgumentParser(
        description="Print a preset run config as JSON, or the field list for forms."
    )
    ap.add_argument("--preset", choices=sorted(PRESETS), default="embedded_default")
    ap.add_argument("--train-file", default="")
    ap.add_argument("--output-dir", default="")
    ap.add_argument("--fields", action="store_true", help="print describe_fields() as JSON instead")
    a = ap.parse_args(argv)
    if a.fields:
        print(json.dumps(describe_fields(), indent=2, ensure_ascii=False))
    else:
        print(PRESETS[a.preset](a.train_file, a.output_dir).to_json())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
