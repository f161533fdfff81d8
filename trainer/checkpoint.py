"""Checkpoints: HF-format weights anyone can load, plus the training state that makes resume exact.

Layout of one checkpoint, `<run>/checkpoints/step-00000012/`:
- model.safetensors + config.json + generation_config.json: `AutoModelForCausalLM.from_pretrained(dir)`
  (and vLLM) load it directly. LoRA runs write the adapter here instead (transformers loads base + adapter
  through peft), or, with `merge_lora`, the merged full weights here and the adapter under `adapter/`.
- tokenizer.json, tokenizer_config.json, chat_template.jinja: the template travels with the weights.
- trainer_state/: state.json (step, epoch, data position, plan digest), optimizer.pt, rng_rank<r>.pt
  (python, numpy, torch and cuda generators of each rank); deepspeed/ with the engine's own
  partitioned optimizer state when DeepSpeed trains.

A checkpoint is written into a hidden temp directory, fsynced, and renamed into place by rank 0 once every
rank has finished, so `latest_checkpoint` never returns half a checkpoint, even when the process dies
mid-save. When a write fails (disk full, quota, I/O error) on any rank, the temp directory is removed, the
earlier checkpoints stay as they were, and every rank raises CheckpointWriteError with one line saying what
happened and what to do: the run ends and resumes later from the last complete checkpoint.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer.layout import checkpoints_dir, latest_checkpoint, list_checkpoints

__all__ = [
    "CheckpointWriteError",
    "checkpoints_dir",
    "latest_checkpoint",
    "list_checkpoints",
    "save_checkpoint",
    "load_weights",
]

# Where a checkpoint is written before its rename; a leftover one is what a crash mid-save leaves behind.
TMP_PREFIX = ".tmp-"
_SPACE_ERRORS = (errno.ENOSPC, errno.EDQUOT)


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written; nothing of it was kept and the earlier checkpoints are intact."""


class _RaisingWriter:
    """A file object for torch.save that writes everything or raises the OSError that stopped it.

    torch's own file writer reports a failed write as "RuntimeError: unexpected pos", which loses the
    reason (ENOSPC, EDQUOT, EIO); through this object the OSError is kept for the caller.
    """

    def __init__(self, fh: Any):
        self.fh = fh
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        done = 0
        try:
            while done < len(view):
                done += self.fh.write(view[done:])
        except OSError as e:
            self.error = e
            raise
        return done

    def flush(self) -> None:
        self.fh.flush()


def _torch_save(obj: Any, path: Path) -> None:
    with open(path, "wb", buffering=0) as fh:
        writer = _RaisingWriter(fh)
        try:
            torch.save(obj, writer)
        except RuntimeError:
            if writer.error is not None:
                raise writer.error from None
            raise


# safetensors (Rust) reports I/O failures as SafetensorError("... (os error 28)").
_OS_ERROR_RE = re.compile(r"\(os error (\d+)\)")


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError behind a failed write, also when a library wrapped it in its own exception type."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        if m := _OS_ERROR_RE.search(str(seen)):
            code = int(m.group(1))
            return OSError(code, os.strerror(code))
        seen = seen.__cause__ or seen.__context__
    return None


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _numpy_globals() -> list:
    try:
        from numpy._core.multiarray import _reconstruct  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return [_reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def _safe_load(path: Path) -> Any:
    """torch.load with weights_only=True: a checkpoint directory may come from elsewhere (a copied run,
    a shared disk), and a full unpickle would run whatever code it names. Only numpy's array
    reconstruction is allowed beyond tensors and plain containers: numpy's RNG state is an array."""
    with torch.serialization.safe_globals(_numpy_globals()):
        return torch.load(path, map_location="cpu", weights_only=True)


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "merge_and_unload")


def save_hf(
    model: Any, tokenizer: Any, out: Path, *, merge_lora: bool = False, state_dict: dict | None = None
) -> None:
    """Write HF-format weights + tokenizer + chat template into `out` (rank 0 only).

    `state_dict` replaces the model's own tensors (ZeRO-3: the model's parameters are partitioned).
    """
    out.mkdir(parents=True, exist_ok=True)
    weights = {} if state_dict is None else {"state_dict": state_dict}
    if _is_peft(model):
        if merge_lora:
            model.save_pretrained(str(out / "adapter"))
            merged = copy.deepcopy(model).merge_and_unload()
            merged.save_pretrained(str(out))
            del merged
        else:
            model.save_pretrained(str(out), **weights)
    else:
        model.save_pretrained(str(out), **weights)
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
        tpl = getattr(tokenizer, "chat_template", None)
        if tpl and not (out / "chat_template.jinja").is_file():
            (out / "chat_template.jinja").write_text(tpl, encoding="utf-8")


def _agree(error: OSError | None, dist_on: bool) -> int:
    """The errno of a failed write on any rank (0 when all succeeded), the same on every rank.

    Doubles as the barrier between save phases: no rank renames or moves on while another still writes.
    """
    code = (error.errno or errno.EIO) if error is not None else 0
    if not dist_on:
        return code
    device = torch.device("cpu")
    if torch.distributed.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    t = torch.tensor([code], dtype=torch.int64, device=device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return int(t.item())


def _fsync_tree(path: Path) -> None:
    """Flush every file and directory under `path` to disk before the rename makes it a checkpoint.

    Without it a power loss after the rename can leave a complete-looking checkpoint with empty files,
    and file systems with delayed allocation report ENOSPC only here, not at write().
    """
    for sub, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(sub, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(sub))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tree_bytes(path: Path) -> int:
    return sum(os.path.getsize(os.path.join(sub, f)) for sub, _d, files in os.walk(path) for f in files)


def _remove_stale_tmp(root: Path) -> None:
    """Temp directories of saves that crashed: never checkpoints, and on a full disk the space matters."""
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith(TMP_PREFIX) and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)


def _failure_message(code: int, *, final: Path, previous: Path | None, needed: int, exact: bool) -> str:
    """One line for the error event, the worker's failure reason and stderr."""
    root = final.parent
    what = os.strerror(code).lower()
    free = shutil.disk_usage(root).free if root.is_dir() else 0
    size = f"needs about {needed / 1e6:,.1f} MB" if exact else f"needs more than {needed / 1e6:,.1f} MB"
    todo = "free space and resume" if code in _SPACE_ERRORS else "fix the cause and resume"
    if previous is not None:
        kept = f"the last checkpoint ({previous.name}) is intact"
    else:
        kept = "no earlier checkpoint exists, so a resume starts from step 0"
    return (
        f"{what} while writing checkpoint {final.name} to {root} ({size}, {free / 1e6:,.1f} MB free); "
        f"{kept} — {todo}"
    )


def save_checkpoint(
    run_dir: str | Path,
    *,
    step: int,
    state: dict,
    model: Any,
    tokenizer: Any,
    optimizer: Any = None,
    engine: Any = None,
    rank: int = 0,
    keep_last: int = 0,
    merge_lora: bool = False,
    gather_params: Any = None,
    state_dict: dict | None = None,
) -> Path:
    """Collective when torch.distributed is initialised: every rank must call it.

    `model` is the unwrapped module; with DeepSpeed, `engine` writes its partitioned state and
    `gather_params` is a context manager factory that materialises ZeRO-3 parameters for the HF save, or
    `state_dict` holds rank 0's already gathered full weights (``distributed.zero3_state_dict``).
    Raises CheckpointWriteError on every rank when a write failed on any rank.
    """
    dist_on = torch.distributed.is_available() and torch.distributed.is_initialized()
    root = checkpoints_dir(run_dir)
    final = root / f"step-{step:08d}"
    tmp = root / f"{TMP_PREFIX}{final.name}"
    previous = latest_checkpoint(run_dir)
    error: OSError | None = None
    try:
        if rank == 0:
            _remove_stale_tmp(root)
            (tmp / "trainer_state").mkdir(parents=True)
    except OSError as e:
        error = e
    code = _agree(error, dist_on)
    if not code:
        try:
            _write_parts(
                tmp,
                model=model,
                tokenizer=tokenizer,
                optimizer=optimizer,
                engine=engine,
                rank=rank,
                merge_lora=merge_lora,
                gather_params=gather_params,
                state_dict=state_dict,
            )
        except Exception as e:
            error = _os_error(e)
            if error is None:
                raise
        code = _agree(error, dist_on)
    if not code and rank == 0:
        try:
            # state.json last: its presence is what marks the checkpoint complete
            (tmp / "trainer_state" / "state.json").write_text(
                json.dumps({**state, "step": step}, indent=2), encoding="utf-8"
            )
            _fsync_tree(tmp)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except OSError as e:
            error = e
        else:
            # The checkpoint is complete and in place: failing the run because the directory entry could not
            # be flushed would report as lost a checkpoint that is there.
            with contextlib.suppress(OSError):
                _fsync_dir(root)
    code = _agree(error if rank == 0 else None, dist_on) or code
    if code:
        message = f"{os.strerror(code).lower()} while writing checkpoint {final.name} to {root}; see rank 0"
        if rank == 0:
            written = _tree_bytes(tmp) if tmp.is_dir() else 0
            shutil.rmtree(tmp, ignore_errors=True)
            needed = _tree_bytes(previous) if previous is not None else written
            message = _failure_message(
                code, final=final, previous=previous, needed=needed, exact=previous is not None
            )
        raise CheckpointWriteError(message) from error
    if rank == 0 and keep_last > 0:
        for old in list_checkpoints(run_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    _agree(None, dist_on)
    return final


def _write_parts(
    tmp: Path,
    *,
    model: Any,
    tokenizer: Any,
    optimizer: Any,
    engine: Any,
    rank: int,
    merge_lora: bool,
    gather_params: Any,
    state_dict: dict | None = None,
) -> None:
    """Every rank's share of one checkpoint, written into the temp directory."""
    if gather_params is not None:
        with gather_params():
            if rank == 0:
                save_hf(model, tokenizer, tmp, merge_lora=merge_lora)
    elif rank == 0:
        save_hf(model, tokenizer, tmp, merge_lora=merge_lora, state_dict=state_dict)
    ts = tmp / "trainer_state"
    _torch_save(rng_state(), ts / f"rng_rank{rank}.pt")
    if engine is not None:
        engine.save_checkpoint(str(ts / "deepspeed"), tag="state", save_latest=False)
    elif rank == 0 and optimizer is not None:
        # Plain path: gradients are all-reduced before the step, so every rank holds the same optimizer state.
        _torch_save(optimizer.state_dict(), ts / "optimizer.pt")


def _load_safetensors_dir(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    index = path / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        out: dict[str, torch.Tensor] = {}
        for f in files:
            out.update(load_file(str(path / f)))
        return out
    return load_file(str(path / "model.safetensors"))


def load_weights(model: Any, ckpt: Path) -> None:
    """Load a checkpoint's weights into an already built (and already peft-wrapped) model, in place."""
    if _is_peft(model):
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        adapter = ckpt / "adapter" if (ckpt / "adapter").is_dir() else ckpt
        set_peft_model_state_dict(model, load_file(str(adapter / "adapter_model.safetensors")))
        return
    sd = _load_safetensors_dir(ckpt)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    tied = (
        {k for k in missing if k.endswith("lm_head.weight")}
        if getattr(model.config, "tie_word_embeddings", False)
        else set()
    )
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise RuntimeError(f"checkpoint {ckpt}: missing {missing[:5]}, unexpected {unexpected[:5]}")


def load_training_state(ckpt: Path, *, rank: int, optimizer: Any = None, engine: Any = None) -> dict:
    """Restore optimizer (or DeepSpeed engine) and RNG state; returns state.json's content."""
    ts = ckpt / "trainer_state"
    state = json.loads((ts / "state.json").read_text(encoding="utf-8"))
    if engine is not None:
        engine.load_checkpoint(
            str(ts / "deepspeed"), tag="state", load_module_strict=False, load_lr_scheduler_states=False
        )
    elif optimizer is not None:
        optimizer.load_state_dict(_safe_load(ts / "optimizer.pt"))
    rng_file = ts / f"rng_rank{rank}.pt"
    if not rng_file.is_file():  # resumed with more ranks than saved: fall back to rank 0's generators
        rng_file = ts / "rng_rank0.pt"
    set_rng_state(_safe_load(rng_file))
    return state
