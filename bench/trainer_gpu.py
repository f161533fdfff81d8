"""`python bench/trainer.py --gpu`: sftlab's trainer against TRL's SFTTrainer on one CUDA GPU, bf16.

    python bench/trainer.py --gpu                                  # random Qwen2.5-0.5B-shaped model, ~2 min on an H100
    python bench/trainer.py --gpu --model-dir PATH --data-dir DIR  # a real model; pCLUE/BELLE files from DIR

Same messages (pCLUE + BELLE with a reference answer), max_seq_len 2048, bf16 autocast over fp32 master
weights for both, the same rows per optimizer step (sftlab: packed bins; TRL: bfd packing, padding-free,
completion-only loss), and the same attention kernel (trainer.attention's "auto" on this device: TRL's
padding-free batches carry cu_seq_lens too). The first --warmup steps of each are excluded. Prints real and
supervised tokens/s, MFU (the model FLOPs of trainer.train.flops_per_step for both, against the peak of
trainer.peaks), peak GPU memory, and the ratios.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch

# Qwen2.5-0.5B's shapes with the SmolLM2 tokenizer's vocabulary (49152): a 0.5B-class model built from a
# config, random weights (throughput does not depend on the values).
QWEN05B = {
    "hidden_size": 896,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "intermediate_size": 4864,
    "tie_word_embeddings": True,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1_000_000.0,
    "max_position_embeddings": 32768,
}
# Qwen2.5-1.5B's: wider matrices keep the tensor cores busier than 0.5B's hidden 896 can.
QWEN15B = {
    **QWEN05B,
    "hidden_size": 1536,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "intermediate_size": 8960,
}
SHAPES = {"0.5b": QWEN05B, "1.5b": QWEN15B}


def qwen_config(vocab_size: int, shape: str = "0.5b") -> Any:
    from transformers import Qwen2Config

    return Qwen2Config(vocab_size=vocab_size, **SHAPES[shape])


def build_model_dir(out: Path, tok_dir: Path, shape: str = "0.5b") -> Path:
    """A random Qwen2.5-shaped model with the tokenizer beside it (weights written in bf16: half the disk)."""
    from transformers import AutoTokenizer, Qwen2ForCausalLM

    if (out / "config.json").is_file():
        return out
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    config = qwen_config(len(tok), shape)
    config.bos_token_id, config.eos_token_id, config.pad_token_id = (
        tok.bos_token_id,
        tok.eos_token_id,
        tok.pad_token_id,
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(config)
    model.to(torch.bfloat16).save_pretrained(str(out))
    tok.save_pretrained(str(out))
    del model
    return out


def packed_stats(position_ids: torch.Tensor, labels: torch.Tensor) -> tuple[int, int, int]:
    """(real tokens, supervised targets, sum of squared sample lengths) of a padding-free TRL batch.

    Samples start where ``position_ids`` is 0; labels are unshifted (the model shifts them).

    >>> packed_stats(torch.tensor([[0, 1, 2, 0, 1]]), torch.tensor([[-100, -100, 7, -100, 8]]))
    (5, 2, 13)
    """
    pos = position_ids.reshape(-1)
    starts = (pos == 0).nonzero().flatten().tolist() + [pos.numel()]
    lens = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    return pos.numel(), int((labels.reshape(-1) != -100).sum()), sum(n * n for n in lens)


def weighted_mfu(flops: list[float], secs: list[float], peak: float) -> float | None:
    """Model FLOPs over the measured time against the peak (None when the peak is unknown).

    >>> weighted_mfu([4e12, 6e12], [1.0, 1.0], 10e12)
    0.5
    """
    return sum(flops) / sum(secs) / peak if peak > 0 and sum(secs) > 0 else None


def _sync_clock() -> float:
    torch.cuda.synchronize()
    return time.perf_counter()


def bench_sftlab(
    data_file: Path, model_dir: Path, out: Path, args, *, checkpointing: bool, compiled: bool
) -> dict:
    from trainer.config import CheckpointConfig, DataConfig, ModelConfig, RunConfig, TrainConfig
    from trainer.metrics import read_events
    from trainer.train import run

    cfg = RunConfig(
        data=DataConfig(train_file=str(data_file), max_seq_len=args.max_seq_len, over_length="truncate"),
        output_dir=str(out),
        model=ModelConfig(
            path=str(model_dir), attn_implementation="auto", compile="on" if compiled else "off"
        ),
        train=TrainConfig(
            epochs=3.0,  # max_steps ends it: one epoch of these rows is ~31 steps of 8 bins at 2048
            lr=1e-5,
            scheduler="constant",
            per_device_batch=args.batch,
            grad_accum=args.grad_accum,
            seed=0,
            precision="bf16",
            max_steps=args.warmup + args.steps,
            gradient_checkpointing=checkpointing,
        ),
        checkpoint=CheckpointConfig(at_epoch_end=False, resume=False),
    )
    shutil.rmtree(out, ignore_errors=True)  # the run log appends: an earlier bench's steps would count
    torch.cuda.reset_peak_memory_stats()
    run(cfg)
    events = read_events(out / "metrics.jsonl")
    start = events[0]
    ev = [e for e in events if e["type"] == "train"][args.warmup :]
    secs = [e["step_time"] for e in ev]
    return {
        "real_tps": sum(e["tokens_per_s"] * e["step_time"] for e in ev) / sum(secs),
        "sup_tps": sum(e["supervised_tokens_per_s"] * e["step_time"] for e in ev) / sum(secs),
        "step_s": sum(secs) / len(secs),
        "steps": len(ev),
        # the loop logs each step's MFU; weigh them by step time
        "mfu": sum(e["mfu"] * e["step_time"] for e in ev) / sum(secs) if start["peak_flops"] else None,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30,
        "peak": start["peak_flops"],
        "peak_source": start["peak_flops_source"],
        "warnings": [e["message"] for e in events if e["type"] == "warning"],
    }


def bench_trl(
    rows: list[dict], model_dir: Path, out: Path, attn: str, peak: float, args, *, checkpointing: bool
) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from trainer.model import count_params
    from trainer.train import flops_per_step

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(
        str(model_dir), dtype=torch.float32, attn_implementation=attn
    )
    params = count_params(model)
    conf = SFTConfig(
        output_dir=str(out),
        max_length=args.max_seq_len,
        per_device_train_batch_size=args.batch,
        gradient_accumulation_steps=1,
        max_steps=args.warmup + args.steps,
        learning_rate=1e-5,
        lr_scheduler_type="constant",
        logging_steps=10**6,
        save_strategy="no",
        report_to=[],
        bf16=True,
        completion_only_loss=True,
        packing=True,
        packing_strategy="bfd",
        padding_free=True,
        gradient_checkpointing=checkpointing,
        dataloader_num_workers=0,
        seed=0,
        disable_tqdm=True,
    )
    dataset = Dataset.from_list(
        [{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in rows]
    )
    trainer = SFTTrainer(model=model, args=conf, train_dataset=dataset, processing_class=tok)
    stats: list[tuple[int, int, int]] = []
    collator = trainer.data_collator

    def counting(features):
        batch = collator(features)
        stats.append(packed_stats(batch["position_ids"], batch["labels"]))
        return batch

    trainer.data_collator = counting
    ends: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *a, **k):
            ends.append(_sync_clock())

    trainer.add_callback(Clock())
    torch.cuda.reset_peak_memory_stats()
    t0 = _sync_clock()
    trainer.train()
    secs = [ends[0] - t0] + [b - a for a, b in zip(ends, ends[1:], strict=False)]
    secs, steps = secs[args.warmup :], stats[args.warmup : len(secs)]
    flops = [flops_per_step(params, model.config, real, sup, sq) for real, sup, sq in steps]
    result = {
        "real_tps": sum(s[0] for s in steps) / sum(secs),
        "sup_tps": sum(s[1] for s in steps) / sum(secs),
        "step_s": sum(secs) / len(secs),
        "steps": len(secs),
        "mfu": weighted_mfu(flops, secs, peak),
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30,
    }
    del trainer, model
    return result


def main(args, rows: list[dict], source_counts: dict, out_dir: Path) -> int:
    """The --gpu mode of bench/trainer.py (arguments parsed there)."""
    from transformers import AutoTokenizer

    from trainer.attention import register, resolve_attention
    from trainer.embedded import ensure_tokenizer

    device = torch.device("cuda")
    name = torch.cuda.get_device_name(device)
    data_file = out_dir / "bench_messages.jsonl"
    data_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    if args.model_dir:
        model_dir = Path(args.model_dir)
    else:
        model_dir = build_model_dir(
            out_dir / f"model_qwen{args.shape}_shapes", ensure_tokenizer(), args.shape
        )
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    register()
    attn, attn_warnings = resolve_attention("auto", device=device, precision="bf16")
    print(f"device: {name}; torch {torch.__version__}; attention: {attn}")
    print(f"data: {source_counts}; max_seq_len {args.max_seq_len}; {args.batch} rows per step")
    print(
        f"model: {f'random Qwen2.5-{args.shape.upper()} shapes' if not args.model_dir else model_dir}, vocab {len(tok)}; bf16 "
        f"autocast, fp32 master weights; {args.warmup} warm-up + {args.steps} measured steps each\n"
    )
    for w in attn_warnings:
        print(f"attention warning: {w}")
    # Each in both activation modes: TRL ships with gradient checkpointing on, sftlab's trainer with it off.
    # and each eager and with compiled decoder layers (model.compile), the eager one the same-run baseline.
    results: dict[str, dict] = {}
    modes = {"off": (False,), "on": (True,), "both": (False, True)}[args.checkpointing]
    compiles = {"off": (False,), "on": (True,), "both": (False, True)}[args.compile]
    for ckpt in modes:
        for compiled in compiles:
            t = time.perf_counter()
            label = (
                f"sftlab trainer ({'compiled layers' if compiled else 'eager'}), "
                f"grad ckpt {'on' if ckpt else 'off'}"
            )
            results[label] = bench_sftlab(
                data_file,
                model_dir,
                out_dir / f"sftlab_gpu_run_{ckpt}_{compiled}",
                args,
                checkpointing=ckpt,
                compiled=compiled,
            )
            print(f"[{label}: {time.perf_counter() - t:.0f} s]")
            gc.collect()
            torch.cuda.empty_cache()
    ours = next(iter(results.values()))
    for ckpt in () if args.skip_trl else modes[::-1]:
        t = time.perf_counter()
        trl_attn = attn
        try:
            trl = bench_trl(
                rows, model_dir, out_dir / "trl_gpu", attn, ours["peak"], args, checkpointing=ckpt
            )
        except Exception as e:  # noqa: BLE001 - report it, then give TRL its own default kernel
            print(f"TRL with {attn} failed ({type(e).__name__}: {str(e)[:200]}); retrying with sdpa")
            gc.collect()
            torch.cuda.empty_cache()
            trl_attn = "sdpa"
            trl = bench_trl(
                rows, model_dir, out_dir / "trl_gpu", "sdpa", ours["peak"], args, checkpointing=ckpt
            )
        label = f"TRL SFTTrainer (bfd, padding-free, {trl_attn}), grad ckpt {'on' if ckpt else 'off'}"
        results[label] = trl
        print(f"[{label}: {time.perf_counter() - t:.0f} s]")
        gc.collect()
        torch.cuda.empty_cache()
    print(f"\nMFU peak: {ours['peak'] / 1e12:.1f} TFLOP/s ({ours['peak_source']})")
    print(
        f"  {'contender':75s} {'real tok/s':>11s} {'sup tok/s':>10s} {'s/step':>7s} {'MFU':>6s} {'peak GiB':>9s}"
    )
    for label, r in results.items():
        mfu = f"{r['mfu']:.3f}" if r["mfu"] is not None else "n/a"
        print(
            f"  {label:75s} {r['real_tps']:11.0f} {r['sup_tps']:10.0f} {r['step_s']:7.3f} {mfu:>6s} "
            f"{r['peak_mem_gib']:9.1f}"
        )
    for mode in ("off", "on"):
        same = {label: r for label, r in results.items() if label.endswith(f"grad ckpt {mode}")}
        trl = next((r for label, r in same.items() if label.startswith("TRL")), None)
        eager = next((r for label, r in same.items() if "(eager)" in label), None)
        for label, r in same.items():
            if not label.startswith("sftlab"):
                continue
            if trl is not None:
                print(
                    f"\n  ratio {label} / TRL: real {r['real_tps'] / trl['real_tps']:.2f}x, "
                    f"supervised {r['sup_tps'] / trl['sup_tps']:.2f}x, "
                    f"peak memory {r['peak_mem_gib'] / trl['peak_mem_gib']:.2f}x"
                )
            if eager is not None and r is not eager:
                print(
                    f"\n  ratio compiled / eager sftlab, grad ckpt {mode}: real {r['real_tps'] / eager['real_tps']:.2f}x, "
                    f"peak memory {r['peak_mem_gib'] / eager['peak_mem_gib']:.2f}x"
                )
    for w in ours["warnings"]:
        print(f"sftlab warning: {w}")
    if args.profile:
        profile_sftlab(data_file, model_dir, out_dir / "sftlab_gpu_profile", args)
    return 0


def profile_sftlab(data_file: Path, model_dir: Path, out: Path, args) -> None:
    """Where a step's time goes: the busiest kernels, and how much of the steps' time the GPU was busy.

    A GPU busy far less than the steps' wall time means the step waits on the host (Python, data, syncs);
    a busy GPU with low MFU means small or memory-bound kernels.
    """
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    from trainer.metrics import read_events

    quick = argparse.Namespace(**{**vars(args), "steps": 5})
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        bench_sftlab(data_file, model_dir, out, quick, checkpointing=False, compiled=args.compile != "off")
    steps = [e for e in read_events(out / "metrics.jsonl") if e["type"] == "train"]
    step_wall = sum(e["step_time"] for e in steps)
    events = prof.key_averages()
    # kernel rows only (operator rows repeat their kernels' time); the weights' upload at load is left out
    kernels = [e for e in events if e.device_type == DeviceType.CUDA and not e.key.startswith("Memcpy HtoD")]
    busy = sum(e.self_device_time_total for e in kernels) / 1e6
    print(
        f"\nprofile of sftlab, grad ckpt off, compile {args.compile != 'off'}: {len(steps)} steps (warm-up included) took {step_wall:.2f} s; "
        f"GPU kernels ran {busy:.2f} s ({busy / step_wall:.0%})"
    )
    print(events.table(sort_by="self_device_time_total", row_limit=18, max_name_column_width=70))
