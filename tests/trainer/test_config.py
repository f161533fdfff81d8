"""The run config round-trips through JSON, describes its fields for forms, and rejects bad configs by name."""

import json

import pytest

from trainer.config import ConfigError, RunConfig, describe_fields, embedded_default, tiny_debug


@pytest.fixture
def train_file(tmp_path):
    p = tmp_path / "train.jsonl"
    p.write_text(
        json.dumps(
            {
                "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
                "task_type": "a/b",
                "tags": [],
            }
        )
        + "\n"
    )
    return str(p)


def _raw(train_file, tmp_path, **over):
    raw = tiny_debug(train_file, str(tmp_path / "run")).to_dict()
    for dotted, value in over.items():
        node = raw
        *head, last = dotted.split(".")
        for h in head:
            node = node[h]
        node[last] = value
    return raw


def test_json_round_trip(tmp_path, train_file):
    cfg = tiny_debug(train_file, str(tmp_path / "run"))
    cfg.data.mix = {"pclue/nli": 2.0, "belle": 0.5}
    cfg.finetune.lora_target_modules = ["q_proj"]
    path = tmp_path / "run.json"
    cfg.to_json(path)
    back = RunConfig.from_json(path)
    assert back == cfg
    assert RunConfig.from_json(cfg.to_json()) == cfg
    back.validate()


def test_presets_are_valid(tmp_path, train_file):
    for preset in (tiny_debug, embedded_default):
        preset(train_file, str(tmp_path / "r")).validate()


def test_describe_fields_lists_every_leaf_with_help():
    rows = describe_fields()
    by_name = {r["name"]: r for r in rows}
    assert by_name["train.lr"]["type"] == "float" and by_name["train.lr"]["default"] == 2e-5
    assert by_name["train.scheduler"]["choices"] == ["cosine", "linear", "constant"]
    assert by_name["data.train_file"]["required"] is True
    assert by_name["deepspeed.zero_stage"]["choices"] == [0, 1, 2, 3]
    assert by_name["finetune.lora_target_modules"]["type"] == "list[str]"
    assert all(r["help"] for r in rows), [r["name"] for r in rows if not r["help"]]
    assert len(rows) > 50


@pytest.mark.parametrize(
    "over, message",
    [
        ({"train.lr": 0}, "train.lr must be > 0"),
        ({"train.scheduler": "step"}, "train.scheduler='step' is not one of"),
        ({"train.precision": "fp8"}, "train.precision='fp8'"),
        ({"train.epochs": -1.0}, "train.epochs must be > 0"),
        ({"train.per_device_batch": 1.5}, "train.per_device_batch: expected an integer"),
        ({"train.grad_clip": "1"}, "train.grad_clip: expected a number"),
        ({"data.eval_fraction": 1.0}, "data.eval_fraction must be in [0, 1)"),
        (
            {"data.train_file": "/nonexistent/x.jsonl"},
            "data.train_file '/nonexistent/x.jsonl' does not exist",
        ),
        ({"model.path": "/nonexistent/model"}, "model.path '/nonexistent/model' does not exist"),
        (
            {"deepspeed.offload_params": True},
            "deepspeed.offload_params needs deepspeed.enabled with zero_stage=3",
        ),
        ({"finetune.method": "freeze"}, "nothing is frozen"),
        ({"checkpoint.merge_lora": True}, "checkpoint.merge_lora needs finetune.method=lora"),
        ({"data.mix": {"nli": -1}}, "data.mix['nli'] must be >= 0"),
        ({"train.precision": "fp16"}, "train.precision=fp16 needs deepspeed.enabled"),
        # Upper bounds: a typo must not hold a machine for days or allocate until it dies.
        ({"data.max_seq_len": 10**9}, "data.max_seq_len must be <= 131072, got 1000000000"),
        ({"train.per_device_batch": 100000}, "train.per_device_batch must be <= 1024"),
        ({"train.grad_accum": 5000}, "train.grad_accum must be <= 1024"),
        ({"train.epochs": 1000.0}, "train.epochs must be <= 100"),
        ({"train.max_hours": -1.0}, "train.max_hours must be >= 0"),
        ({"train.max_hours": 1e6}, "train.max_hours must be <= 720"),
        ({"train.max_hours": float("nan")}, "train.max_hours must be <= 720"),
    ],
)
def test_validation_messages(tmp_path, train_file, over, message):
    with pytest.raises(ConfigError) as e:
        RunConfig.from_dict(_raw(train_file, tmp_path, **over)).validate()
    assert message in str(e.value)


def test_unknown_and_missing_keys(tmp_path, train_file):
    raw = _raw(train_file, tmp_path)
    raw["train"]["learning_rate"] = 1e-3
    with pytest.raises(ConfigError, match=r"unknown key train\.learning_rate"):
        RunConfig.from_dict(raw)
    raw = _raw(train_file, tmp_path)
    del raw["data"]["train_file"]
    with pytest.raises(ConfigError, match=r"missing field data\.train_file"):
        RunConfig.from_dict(raw)
    with pytest.raises(ConfigError, match="missing field output_dir"):
        RunConfig.from_dict({"data": {"train_file": train_file}})
    with pytest.raises(ConfigError, match="not valid JSON"):
        RunConfig.from_json("{nope")


def test_template_without_assistant_role(tmp_path, train_file):
    model = tmp_path / "m"
    model.mkdir()
    (model / "chat_template.jinja").write_text(
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{% endfor %}"
    )
    with pytest.raises(ConfigError, match="chat template has no assistant role"):
        RunConfig.from_dict(_raw(train_file, tmp_path, **{"model.path": str(model)})).validate()
    (model / "chat_template.jinja").unlink()
    with pytest.raises(ConfigError, match="has no chat template"):
        RunConfig.from_dict(_raw(train_file, tmp_path, **{"model.path": str(model)})).validate()
    (model / "chat_template.jinja").write_text("<|im_start|>{{ 'assistant' }}")
    RunConfig.from_dict(_raw(train_file, tmp_path, **{"model.path": str(model)})).validate()


def test_chat_template_file(tmp_path, train_file, tokenizer_dir):
    from trainer.model import load_tokenizer

    tpl = tmp_path / "t.jinja"
    over = {"model.chat_template_file": str(tpl)}
    with pytest.raises(ConfigError, match=r"model.chat_template_file '.*t\.jinja' does not exist"):
        RunConfig.from_dict(_raw(train_file, tmp_path, **over)).validate()
    tpl.write_text("{% for m in messages %}\n{{ m['role'] }}: {{ m['content'] }\n{% endfor %}")
    with pytest.raises(ConfigError, match=r"t\.jinja': syntax error at line 2"):
        RunConfig.from_dict(_raw(train_file, tmp_path, **over)).validate()
    tpl.write_text("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{% endfor %}")
    with pytest.raises(ConfigError, match="t.jinja': the template has no assistant role"):
        RunConfig.from_dict(_raw(train_file, tmp_path, **over)).validate()
    # a model directory without a template is fine when the file gives one; the file wins
    model = tmp_path / "m"
    model.mkdir()
    tpl.write_text(
        "{#- source: test -#}\n{% for m in messages %}{{ m['role'] | upper }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
    )
    cfg = RunConfig.from_dict(_raw(train_file, tmp_path, **over, **{"model.path": str(model)})).validate()
    tok = load_tokenizer(cfg, str(tokenizer_dir))
    text = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert text == "USER: hi\n"
    by_name = {r["name"]: r for r in describe_fields()}
    assert (
        by_name["model.chat_template_file"]["default"] == ""
        and "Jinja" in by_name["model.chat_template_file"]["help"]
    )
