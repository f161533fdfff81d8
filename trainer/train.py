"""The SFT training loop: `python -m trainer.train --config run.json`.

    python -m trainer.train --config run.json                              # one process (CPU or one GPU)
    torchrun --nproc_per_node 2 -m trainer.train --config run.json         # data parallel, gloo on CPU
    deepspeed --num_gpus 2 --module trainer.train --config run.json        # with deepspeed.enabled: true
    DS_ACCELERATOR=cpu torchrun --nproc_per_node 2 -m trainer.train --config run.json   # DeepSpeed on CPU

One optimizer step consumes G = world x per_device_batch x grad_accum packed bins of the run's bin stream
(trainer.plan), whatever the split: so batch 8 x accumulation 1, batch 2 x accumulation 4 and 2 ranks x
batch 4 see the same bins per step and, because the loss is normalised by counts gathered over the whole
accumulation window and all ranks BEFORE backward, compute the same gradient. (The transformers
accumulation bug of 2024 averaged per micro-batch instead, which weighs short micro-batches up.)

Events go to <output_dir>/metrics.jsonl (trainer.metrics); checkpoints to <output_dir>/checkpoints.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from trainer import checkpoint as ckpt
from trainer import distributed as dist_
from trainer.attention import resolve_attention
from trainer.compiling import (
    COMPILE_FAILED,
    compile_layers,
    compiled_nothing,
    no_layers_warning,
    resolve_compile,
)
from trainer.config import ConfigError, RunConfig
from trainer.data import PROBLEMS_FILE, write_problems
from trainer.evaluate import evaluate
from trainer.layout import CHAT_TEMPLATE_COPY
from trainer.metrics import MetricsWriter, NonFiniteLoss, RisingEvalLoss, StepDropDetector, check_finite
from trainer.model import autocast, build_model, count_params, load_tokenizer, resolve_model_dir
from trainer.optim import LRSchedule, build_optimizer, param_groups
from trainer.peaks import peak_flops
from trainer.plan import BinPlan, build_plan, load_data, micro_batches
from trainer.render import check_template


def flops_per_step(params: dict, model_cfg: Any, real_tokens: int, sup_tokens: int, sum_sq_len: int) -> float:
    """6·N·tokens for the backbone + 6·V·d per supervised token for the output layer + attention.

    Attention follows PaLM's 12·layers·d·T per token, with T the sample's own length (packed samples never
    attend across each other), i.e. 12·layers·d·sum(len²) per step.
    """
    d = model_cfg.hidden_size
    n = params["non_embedding"]
    head = 6 * model_cfg.vocab_size * d * sup_tokens
    return 6 * n * real_tokens + head + 12 * model_cfg.num_hidden_layers * d * sum_sq_len


class Run:
    """State of one training run; `run()` drives it."""

    def __init__(self, cfg: RunConfig, info: dist_.DistInfo):
        self.cfg, self.info = cfg, info
        self.out = Path(cfg.output_dir)
        self.rank0 = info.rank == 0
        self.log = MetricsWriter(self.out, rank=info.rank, echo=True)
        self.engine = None
        self.optimizer = None

    # ---- setup ----
    def setup(self) -> None:
        cfg, info = self.cfg, self.info
        torch.manual_seed(cfg.train.seed)
        self.model_dir = resolve_model_dir(cfg)
        self.tok = load_tokenizer(cfg, self.model_dir)
        self.template_warnings = check_template(self.tok)  # what the template leaves out of every sample
        if cfg.model.chat_template_file and self.rank0:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / CHAT_TEMPLATE_COPY).write_text(self.tok.chat_template, encoding="utf-8")
        # data before the weights: bad data fails in seconds, with file:line reasons
        self.data = load_data(cfg, self.tok)
        self.plan: BinPlan = build_plan(cfg, self.data, world=info.world)
        attn, self.attn_warnings = resolve_attention(
            cfg.model.attn_implementation,
            device=info.device,
            precision=cfg.train.precision,
            dropout=cfg.train.dropout,
        )
        # kept alive on self: transformers reads it through a weak reference whenever it loads a model
        self.zero3_load = dist_.zero3_load_context(cfg, info.world)
        self.model = build_model(cfg, self.model_dir, attn_implementation=attn)
        self.eval_plan = self.plan.eval_bins
        self.params = count_params(self.model)
        if self.zero3_load is None:
            self.model.to(info.device)  # ZeRO-3 already placed each rank's partition
        zero_stage = cfg.deepspeed.zero_stage if cfg.deepspeed.enabled else None
        self.compiled_layers, self.compile_warnings = 0, []
        if resolve_compile(cfg.model.compile, device=info.device, zero_stage=zero_stage):
            self.compiled_layers = compile_layers(self.model)
            if not self.compiled_layers:
                self.compile_warnings.append(no_layers_warning(self.model))
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        if cfg.deepspeed.enabled:
            ds_conf = dist_.deepspeed_config(cfg, info.world)
            if self.rank0:
                self.out.mkdir(parents=True, exist_ok=True)
                (self.out / "deepspeed_config.json").write_text(json.dumps(ds_conf, indent=2))
            self.engine, self.optimizer = dist_.build_engine(
                cfg, self.model, param_groups(self.model, cfg.train.weight_decay), info.world
            )
        else:
            self.optimizer = build_optimizer(self.model, cfg.train)
        self.schedule = LRSchedule(cfg.train, self.plan.total_steps)
        self.start_step = 0
        latest = ckpt.latest_checkpoint(self.out) if cfg.checkpoint.resume else None
        if latest is not None:
            self._resume(latest)
        self.peak, self.peak_source = peak_flops(cfg, info.device)
        if self.rank0:
            self.out.mkdir(parents=True, exist_ok=True)
            cfg.to_json(self.out / "config.json")
            self.plan.write(self.out)

    def _resume(self, path: Path) -> None:
        # weights first (the engine holds the same tensors), then optimizer/engine state and RNG
        model = self.engine.module if self.engine is not None else self.model
        if self.engine is None:
            ckpt.load_weights(model, path)
        state = ckpt.load_training_state(
            path, rank=self.info.rank, optimizer=self.optimizer, engine=self.engine
        )
        if state.get("plan_digest") != self.plan.digest:
            raise RuntimeError(f"cannot resume from {path}: the data plan changed (config or data differ)")
        self.start_step = int(state["step"])
        self.log.write("checkpoint", step=self.start_step, path=str(path), resumed=True)

    # ---- one optimizer step ----
    def train_step(self, step: int, acc: Any, grad_dump: str | None = None) -> dict:
        from trainer.loss import count_terms, merge_counts, normalised_loss, supervised_token_losses

        cfg, info = self.cfg, self.info
        t0 = time.perf_counter()
        micro = micro_batches(self.plan, self.data, step, rank=info.rank, device=info.device)
        mode = cfg.loss.normalisation
        local: dict[str, float] = {}
        for mb in micro:
            for k, v in count_terms(mb, mode, task_level=cfg.loss.task_level).items():
                local[k] = local.get(k, 0.0) + float(v)
        stats = {
            k: float(sum(mb["stats"][k] for mb in micro))
            for k in ("real_tokens", "slots", "supervised_tokens")
        }
        stats["sum_sq_len"] = float(
            sum(n * n for mb in micro if not mb.get("dummy") for row in mb["seq_lens"] for n in row)
        )
        # global counts BEFORE any backward: every micro-batch on every rank divides by the same numbers;
        # in one process the local counts are the global ones, and a round trip through the device would
        # make the host wait for the previous step's update
        counts = {**local, **{f"_stat:{k}": v for k, v in stats.items()}}
        if dist_.is_on():
            counts = dist_.all_reduce_dict(counts, info.device)
        gstats = {k[6:]: v for k, v in counts.items() if k.startswith("_stat:")}
        gcounts = merge_counts([{k: v for k, v in counts.items() if not k.startswith("_stat:")}])
        lr = self.schedule.apply(self.optimizer, step)
        module = self.engine.module if self.engine is not None else self.model
        module.train()
        amp = autocast(cfg.train.precision, info.device, engine=self.engine is not None)
        total = torch.zeros((), dtype=torch.float64, device=info.device)
        for mb in micro:
            with amp:
                if self.engine is not None:
                    tl = self.engine(mb)  # through the engine: its ZeRO-3 prefetch and backward hooks run
                else:
                    tl = supervised_token_losses(module, mb, chunk_size=cfg.packing.chunk_size)
                loss = normalised_loss(
                    tl, mb, mode=mode, global_counts=gcounts, task_level=cfg.loss.task_level
                )
            acc.add(tl, mb)
            total += loss.detach().double()
            if self.engine is not None:
                # DeepSpeed averages gradients over ranks and divides by GAS; our loss is already a share of
                # the global sum, so undo both.
                self.engine.backward(loss * info.world, scale_wrt_gas=False)
                if mb is not micro[-1]:
                    self.engine.step()
            else:
                loss.backward()
        if self.engine is not None:
            objective = float(dist_.all_reduce_sum(total).item())
            check_finite(objective, step + 1)  # same value on every rank, so all stop; before the update
            self.engine.step()
            gn = self.engine.get_global_grad_norm()
            grad_norm = float(gn) if gn is not None else float("nan")
        else:
            dist_.all_reduce_grads(self.trainable)
            if grad_dump is not None:
                torch.save(
                    {
                        n: p.grad.detach().clone()
                        for n, p in self.model.named_parameters()
                        if p.grad is not None
                    },
                    grad_dump,
                )
            clip = cfg.train.grad_clip if cfg.train.grad_clip > 0 else float("inf")
            norm = torch.nn.utils.clip_grad_norm_(self.trainable, clip)  # clips on the device, no read
            # the step's one host read, loss and norm together; a non-finite loss stops every rank (same
            # value everywhere) before the update
            objective, grad_norm = torch.stack(
                [dist_.all_reduce_sum(total), norm.to(total.device, torch.float64)]
            ).tolist()
            check_finite(objective, step + 1)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return {
            "loss": objective,
            "lr": lr,
            "grad_norm": grad_norm,
            "time": time.perf_counter() - t0,
            **gstats,
        }

    # ---- checkpoints and eval ----
    def save(self, step: int) -> None:
        gather, state_dict = None, None
        if self.engine is not None and self.cfg.deepspeed.zero_stage == 3:
            if self.cfg.checkpoint.merge_lora:
                # merging LoRA needs the whole base model materialised at once (peft merges in place)
                import deepspeed

                params = list(self.engine.module.parameters())
                gather = lambda: deepspeed.zero.GatheredParameters(params, modifier_rank=None)  # noqa: E731
            else:
                state_dict = dist_.zero3_state_dict(self.engine)
        model = self.model
        path = ckpt.save_checkpoint(
            self.out,
            step=step,
            state={
                "epoch": self.plan.epoch_at(step),
                "bins_done": self.plan.bins_done(step),
                "plan_digest": self.plan.digest,
                "seed": self.cfg.train.seed,
            },
            model=model,
            tokenizer=self.tok,
            optimizer=self.optimizer,
            engine=self.engine,
            rank=self.info.rank,
            keep_last=self.cfg.checkpoint.keep_last,
            merge_lora=self.cfg.checkpoint.merge_lora,
            gather_params=gather,
            state_dict=state_dict,
        )
        self.log.write("checkpoint", step=step, path=str(path))

    def run_eval(self, step: int) -> dict | None:
        if not self.eval_plan:
            return None
        module = self.engine.module if self.engine is not None else self.model
        result = evaluate(
            module,
            self.plan,
            self.data,
            rank=self.info.rank,
            device=self.info.device,
            chunk_size=self.cfg.packing.chunk_size,
            amp=autocast(self.cfg.train.precision, self.info.device, engine=self.engine is not None),
        )
        self.log.write("eval", step=step, loss=result["loss"], channels=result["channels"])
        return result

    # ---- the loop ----
    def run(self, *, stop_after: int | None = None, grad_dump: str | None = None) -> dict:
        from trainer.channels import ChannelAccumulator

        cfg, plan = self.cfg, self.plan
        total = plan.total_steps
        if self.start_step == 0:
            self.log.write(
                "start",
                config=cfg.to_dict(),
                counts_per_task=plan.counts_per_task,
                total_steps=total,
                world_size=self.info.world,
                params=self.params,
                peak_flops=self.peak,
                peak_flops_source=self.peak_source,
                compiled_layers=self.compiled_layers,
                packing_efficiency=plan.packing_efficiency,
                model_dir=self.model_dir,
                counts=plan.counts,
            )
            for msg in self.template_warnings:
                self.log.write("warning", step=0, kind="chat_template", message=msg)
            for msg in self.attn_warnings:
                self.log.write("warning", step=0, kind="attention", message=msg)
            for msg in self.compile_warnings:
                self.log.write("warning", step=0, kind="compile", message=msg)
        rising = RisingEvalLoss(cfg.eval.rising_k)
        drops = StepDropDetector(cfg.metrics.step_drop_window, cfg.metrics.step_drop_ratio)
        acc = ChannelAccumulator()
        window: list[dict] = []
        losses: dict[int, float] = {}
        evals: dict[int, float] = {}
        step = self.start_step
        hours = cfg.train.max_hours
        deadline = time.monotonic() + hours * 3600 if hours else None
        while step < total:
            m = self.train_step(step, acc, grad_dump if step == self.start_step else None)
            if step == self.start_step and self.compiled_layers and compiled_nothing():
                self.log.write("warning", step=step + 1, kind="compile", message=COMPILE_FAILED)
            step += 1
            losses[step] = m["loss"]
            window.append(m)
            epoch = plan.epoch_at(step)
            if (msg := drops.observe(step, epoch, m["loss"])) is not None:
                self.log.write("warning", step=step, kind="step_drop", message=msg)
            if step % cfg.metrics.log_every == 0 or step == total:
                self._log_train(step, epoch, window, acc)
                window = []
            if cfg.eval.every_n_steps and step % cfg.eval.every_n_steps == 0 or step == total:
                result = self.run_eval(step)
                if result is not None:
                    evals[step] = result["loss"]
                    if (msg := rising.observe(result["loss"])) is not None:
                        self.log.write("warning", step=step, kind="rising_eval_loss", message=msg)
            every = cfg.checkpoint.every_n_steps
            saved = (every and step % every == 0) or (cfg.checkpoint.at_epoch_end and plan.ends_epoch(step))
            if saved:
                self.save(step)
            if stop_after is not None and step >= stop_after:
                break
            if deadline is not None and step < total and self._out_of_time(deadline):
                if not saved:
                    self.save(step)  # so the run resumes from here, not from the last periodic save
                self.log.write(
                    "error",
                    kind="time_limit",
                    message=f"stopped by train.max_hours={hours:g} at step {step} of {total}; "
                    "a checkpoint was saved there: resume the run to continue",
                )
                break
        if step == total:
            self.log.write("done", step=step)
        return {"losses": losses, "evals": evals, "step": step, "total_steps": total}

    def _out_of_time(self, deadline: float) -> bool:
        # Every rank must stop at the same step (save() and the steps are collective): any rank
        # past the deadline stops them all.
        over = time.monotonic() >= deadline
        if not dist_.is_on():
            return over
        flag = dist_.all_reduce_sum(torch.tensor([1.0 if over else 0.0]))
        return bool(flag.item() > 0)

    def _log_train(self, step: int, epoch: float, window: list[dict], acc: Any) -> None:
        all_reduce = dist_.all_reduce_sum if dist_.is_on() else None
        channels = acc.reduce(all_reduce)
        acc.reset()
        secs = sum(w["time"] for w in window)
        real = sum(w["real_tokens"] for w in window)
        sup = sum(w["supervised_tokens"] for w in window)
        slots = sum(w["slots"] for w in window)
        flops = sum(
            flops_per_step(
                self.params, self._model_config(), w["real_tokens"], w["supervised_tokens"], w["sum_sq_len"]
            )
            for w in window
        )
        self.log.write(
            "train",
            step=step,
            epoch=round(epoch, 6),
            loss=sum(w["loss"] for w in window) / len(window),
            channels=channels,
            lr=window[-1]["lr"],
            grad_norm=window[-1]["grad_norm"],
            tokens_per_s=real / secs,
            supervised_tokens_per_s=sup / secs,
            packing_efficiency=real / slots if slots else 0.0,
            mfu=flops / secs / (self.peak * self.info.world) if self.peak > 0 else None,
            step_time=secs / len(window),
        )

    def _model_config(self) -> Any:
        cfg = self.model.config
        return getattr(cfg, "text_config", None) or cfg

    def close(self) -> None:
        self.log.close()
        if getattr(self, "zero3_load", None) is not None:
            dist_.end_zero3_load()


def run(cfg: RunConfig, *, stop_after: int | None = None, grad_dump: str | None = None) -> dict:
    """Train one run in this process (collective under torchrun/deepspeed). Returns losses per step."""
    cfg.validate()
    info = dist_.init(cfg)
    r = None
    try:
        r = Run(cfg, info)
        try:
            r.setup()
            return r.run(stop_after=stop_after, grad_dump=grad_dump)
        except NonFiniteLoss as e:
            r.log.write("error", message=str(e), kind="non_finite_loss")
            raise
        except ckpt.CheckpointWriteError as e:
            # the temp directory is gone by now, so on a full disk there is room again for this line
            r.log.write("error", message=str(e), kind="checkpoint_write")
            raise
        except Exception as e:
            r.log.write("error", message=f"{type(e).__name__}: {e}")
            if getattr(e, "problems", None) and r.rank0:  # every problem sample, for the run page
                r.out.mkdir(parents=True, exist_ok=True)
                write_problems(r.out / PROBLEMS_FILE, e.problems)  # type: ignore[attr-defined]
            raise
    finally:
        if r is not None:
            r.close()
        dist_.teardown(info)


def main(argv: list[str] | None = None) -> int:
    """Entry point; see the module docstring for the single-process, torchrun and deepspeed commands."""
    parser = argparse.ArgumentParser(description="sftlab SFT trainer")
    parser.add_argument("--config", required=True, help="run config JSON (trainer.config.RunConfig)")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        cfg = RunConfig.from_json(args.config).validate()
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    from trainer.data import DataError
    from trainer.render import RenderError

    try:
        result = run(cfg)
    except (DataError, RenderError, ConfigError, FileNotFoundError) as e:
        # bad data or template: the run never started; the error event is already in metrics.jsonl
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except ckpt.CheckpointWriteError as e:
        # one line, not a traceback: the log's last line is the reason the worker reports
        print(str(e), file=sys.stderr)
        return 1
    return 0 if result["step"] == result["total_steps"] else 1


if __name__ == "__main__":
    sys.exit(main())
