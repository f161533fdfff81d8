"""Shared trainer fixtures: the SmolLM2 tokenizer (loaded once), tiny random Llamas, real pCLUE samples."""

import json
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
PCLUE = SHARED_DATA / "pclue_train_9.jsonl"

LLAMA3_TEMPLATE = (
    "{{ '<|begin_of_text|>' }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}"
    "{% if message.get('tool_calls') %}"
    "{% for call in message['tool_calls'] %}"
    "{{ '{\"name\": \"' + call['function']['name'] + '\", \"parameters\": ' + call['function']['arguments'] | tojson + '}' }}"
    "{% endfor %}"
    "{% else %}{{ message['content'] | trim }}{% endif %}"
    "{{ '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
LLAMA3_SPECIALS = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]

# Mistral v3 style: no generation header, the system prompt goes into the LAST user message, so
# rendering is not prefix-stable (earlier turns' text changes as the conversation grows).
MISTRAL_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] %}"
    "{% set loop_messages = messages[1:] %}{% else %}{% set system = '' %}{% set loop_messages = messages %}{% endif %}"
    "{% set last_user = namespace(i=-1) %}"
    "{% for m in loop_messages %}{% if m['role'] == 'user' %}{% set last_user.i = loop.index0 %}{% endif %}{% endfor %}"
    "{{ '<s>' }}"
    "{% for m in loop_messages %}"
    "{% if m['role'] == 'user' %}"
    "{% if loop.index0 == last_user.i and system %}{{ '[INST] ' + system + '\n\n' + m['content'] + ' [/INST]' }}"
    "{% else %}{{ '[INST] ' + m['content'] + ' [/INST]' }}{% endif %}"
    "{% elif m['role'] == 'assistant' %}{{ ' ' + m['content'] + '</s>' }}"
    "{% else %}{{ raise_exception('roles must be system/user/assistant') }}{% endif %}"
    "{% endfor %}"
)

# No assistant role at all: assistant messages are silently dropped.
NO_ASSISTANT_TEMPLATE = "{% for m in messages %}{% if m['role'] != 'assistant' %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endif %}{% endfor %}"


@pytest.fixture(scope="session")
def tokenizer_dir() -> Path:
    from trainer.embedded import ensure_tokenizer

    return ensure_tokenizer()


@pytest.fixture(scope="session")
def tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tokenizer_dir))


def _template_tokenizer(tokenizer_dir, template: str, specials: list[str] | None = None):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    if specials:
        tok.add_special_tokens({"additional_special_tokens": specials})
    tok.chat_template = template
    return tok


@pytest.fixture(scope="session")
def llama3_tokenizer(tokenizer_dir, tmp_path_factory):
    """A copy of the SmolLM2 tokenizer directory with a Llama-3 style template and its special tokens."""
    from transformers import AutoTokenizer

    out = tmp_path_factory.mktemp("llama3_tok")
    _template_tokenizer(tokenizer_dir, LLAMA3_TEMPLATE, LLAMA3_SPECIALS).save_pretrained(str(out))
    return AutoTokenizer.from_pretrained(str(out))


@pytest.fixture(scope="session")
def mistral_tokenizer(tokenizer_dir):
    return _template_tokenizer(tokenizer_dir, MISTRAL_TEMPLATE)


@pytest.fixture(scope="session")
def no_assistant_tokenizer(tokenizer_dir):
    return _template_tokenizer(tokenizer_dir, NO_ASSISTANT_TEMPLATE)


@pytest.fixture
def tiny(tokenizer_dir):
    """A fresh 2-layer random fp32 Llama with the SmolLM2 vocabulary (seed 0)."""
    from trainer.embedded import tiny_model

    return tiny_model(tokenizer_dir)


def pclue_rows(n: int | None = None) -> list[dict]:
    rows = [json.loads(line) for line in PCLUE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:n] if n else rows


def pclue_message_samples(n: int | None = None) -> list[dict]:
    """pCLUE rows as messages samples: input -> user, target -> assistant, task_type pclue/<type>."""
    return [
        {
            "messages": [
                {"role": "user", "content": r["input"]},
                {"role": "assistant", "content": r["target"]},
            ],
            "task_type": f"pclue/{r['type']}",
            "tags": [],
        }
        for r in pclue_rows(n)
    ]


@pytest.fixture(scope="session")
def pclue_tokenized(tokenizer):
    """The first 40 pCLUE samples that fit in 256 tokens, rendered (several task types, short answers)."""
    from trainer.data import TokenizedSample, parse_task_type
    from trainer.render import render_sample

    out = []
    for s in pclue_message_samples(200):
        r = render_sample(tokenizer, s["messages"])
        if len(r.input_ids) <= 256:
            l1, l2 = parse_task_type(s["task_type"])
            out.append(TokenizedSample(r.input_ids, r.supervised, r.special, l1, l2, len(out)))
        if len(out) == 40:
            break
    return out


@pytest.fixture(scope="session")
def pclue_messages() -> list[dict]:
    """All 705 pCLUE rows as messages samples."""
    return pclue_message_samples()


@pytest.fixture
def write_jsonl():
    """``write_jsonl(path, rows)``: rows are dicts (dumped) or raw strings (written as they are)."""

    def write(path: Path, rows: list) -> Path:
        text = "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def packed(pclue_tokenized):
    """The first 16 of those, packed into 512-token bins (several samples share a row)."""
    from trainer.collate import collate_packed
    from trainer.packing import pack_bfd

    samples = pclue_tokenized[:16]
    bins = pack_bfd([len(s) for s in samples], 512)
    batch = collate_packed([[samples[i] for i in b] for b in bins], pad_id=2)
    assert any(len(row) > 1 for row in batch["seq_lens"])
    return batch
