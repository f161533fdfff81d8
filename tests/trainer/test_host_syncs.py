"""A training step reads no tensor back to the host between its first forward and last backward, and once in all.

On a GPU every such read (``.item()``, ``.tolist()``, ``bool(t)``, a boolean-mask index, ``nonzero``)
makes the host wait for the device's queue to drain, and the device then idles while the host launches
what follows. On CPU nothing waits, so the reads are counted instead, by wrapping the Python entry points
that make them; the numbers the step computes must not change.
"""

import contextlib

import pytest
import torch
from tiny_run import make_tiny_model_dir, pclue_messages, tiny_config

import trainer.loss as loss_mod
import trainer.train as train_mod
from trainer import distributed as dist_
from trainer.channels import ChannelAccumulator
from trainer.collate import IGNORE, collate_packed, supervised_index, to_device
from trainer.loss import _head_ce, backbone_hidden_states, supervised_token_losses
from trainer.packing import pack_bfd
from trainer.plan import build_batch

READS = (
    "item",
    "tolist",
    "__bool__",
    "__int__",
    "__float__",
    "__index__",
    "nonzero",
    "numpy",
    "masked_select",
)
READING_FUNCTIONS = (
    "nonzero",
    "masked_select",
    "bincount",
    "unique",
)  # bincount/unique size output from data


class HostReads:
    """Event log of one step: forward starts, backward ends, and every host read of a tensor.

    Reads of tensors that live on the host in a GPU run are left out: those inside the batch building
    (``micro_batches`` collates on the host, then copies) and inside ``optimizer.step`` (on CPU, AdamW
    reads its step counters; on CUDA the fused AdamW of ``trainer.optim`` keeps them on the device).
    """

    def __init__(self, monkeypatch, optimizer):
        self.events: list[str] = []
        self._depth = 0  # a read inside a read (tolist -> __index__, ...) counts once
        self._on_host = False
        for name in READS:
            monkeypatch.setattr(torch.Tensor, name, self._reading(getattr(torch.Tensor, name), name))
        for name in READING_FUNCTIONS:
            monkeypatch.setattr(torch, name, self._reading(getattr(torch, name), f"torch.{name}"))
        getitem = torch.Tensor.__getitem__

        def indexed(t, index):
            keys = index if isinstance(index, tuple) else (index,)
            if any(isinstance(k, torch.Tensor) and k.dtype == torch.bool for k in keys):
                self._log("boolean mask index")
            return getitem(t, index)

        monkeypatch.setattr(torch.Tensor, "__getitem__", indexed)
        forward, backward = loss_mod.supervised_token_losses, torch.Tensor.backward

        def logged_forward(*a, **kw):
            self.events.append("forward")
            return forward(*a, **kw)

        def logged_backward(*a, **kw):
            out = backward(*a, **kw)
            self.events.append("backward")
            return out

        monkeypatch.setattr(loss_mod, "supervised_token_losses", logged_forward)
        monkeypatch.setattr(torch.Tensor, "backward", logged_backward)
        monkeypatch.setattr(optimizer, "step", self._host_work(optimizer.step))
        monkeypatch.setattr(train_mod, "micro_batches", self._host_work(train_mod.micro_batches))

    def _host_work(self, fn):
        def wrapper(*a, **kw):
            self._on_host = True
            try:
                return fn(*a, **kw)
            finally:
                self._on_host = False

        return wrapper

    def _log(self, what: str) -> None:
        if not self._on_host:
            self.events.append(f"read: {what}")

    def _reading(self, fn, name):
        def wrapper(*a, **kw):
            if self._depth == 0:
                self._log(name)
            self._depth += 1
            try:
                return fn(*a, **kw)
            finally:
                self._depth -= 1

        return wrapper

    def reads(self) -> list[str]:
        return [e for e in self.events if e.startswith("read")]

    def between_forward_and_backward(self) -> list[str]:
        first = self.events.index("forward")
        last = len(self.events) - 1 - self.events[::-1].index("backward")
        return [e for e in self.events[first:last] if e.startswith("read")]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("syncs")
    return make_tiny_model_dir(root / "model"), pclue_messages(root / "data.jsonl", 48)


@contextlib.contextmanager
def one_run(tmp_path, setup, mode):
    model, data = setup
    cfg = tiny_config(tmp_path, model, data, per_device_batch=2, grad_accum=3)
    cfg.loss.normalisation = mode
    info = dist_.init(cfg)
    run = train_mod.Run(cfg, info)
    try:
        run.setup()
        yield run
    finally:
        run.close()
        dist_.teardown(info)


@pytest.mark.parametrize("mode", ["token", "sample", "task"])
def test_one_host_read_per_step_and_none_inside_the_micro_batches(tmp_path, setup, mode, monkeypatch):
    with one_run(tmp_path, setup, mode) as run:
        run.train_step(0, ChannelAccumulator())  # warm: the first step may set things up lazily
        acc = ChannelAccumulator()
        log = HostReads(monkeypatch, run.optimizer)
        metrics = run.train_step(1, acc)
        monkeypatch.undo()
        assert log.events.count("forward") == 3 and log.events.count("backward") == 3
        assert log.between_forward_and_backward() == [], log.events
        assert len(log.reads()) <= 1, log.reads()
        channels = acc.reduce()  # the channel sums are read here, once per logging step
    assert channels["overall"]["tokens"] == metrics["supervised_tokens"] > 0
    assert metrics["loss"] > 0 and metrics["grad_norm"] > 0


def test_the_log_sees_the_reads_it_is_meant_to_catch(monkeypatch):
    """The check above can fail: a boolean mask, .tolist() and float() between forward and backward show."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.ones(2))], lr=0.1)
    log = HostReads(monkeypatch, opt)
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    log.events.append("forward")
    y = x[x > 0].sum()
    y.detach().tolist()
    float(y.detach())
    y.backward()
    monkeypatch.undo()
    assert log.between_forward_and_backward() == [
        "read: boolean mask index",
        "read: tolist",
        "read: __float__",
    ]


def _old_supervised_token_losses(model, batch):
    """The boolean-mask gather this module replaced, kept as the reference the indexed one must equal."""
    hidden = backbone_hidden_states(model, batch)
    where = batch["shift_labels"] != IGNORE
    hf = loss_mod.unwrap_model(model)
    loss = _head_ce(hf.get_output_embeddings(), None, hidden[where], batch["shift_labels"][where])
    return loss, batch["sample_idx"][where], batch["target_is_special"][where]


def _old_channels(parts) -> dict[str, list[float]]:
    """ChannelAccumulator's sums as it computed them before, reading at every micro-batch."""
    sums: dict[str, list[float]] = {}

    def add(name, loss, count):
        acc = sums.setdefault(name, [0.0, 0.0])
        acc[0] += loss
        acc[1] += count

    for loss, sample_idx, special, samples in parts:
        loss = loss.detach().double()
        per_loss = torch.zeros(len(samples), dtype=torch.float64).index_add_(0, sample_idx, loss)
        per_count = torch.bincount(sample_idx, minlength=len(samples))
        s = torch.stack([loss.sum(), loss[special].sum(), special.sum().double()]).tolist()
        add("overall", s[0], float(loss.numel()))
        if s[2]:
            add("special", s[1], s[2])
        for smp, lsum, cnt in zip(samples, per_loss.tolist(), per_count.tolist(), strict=True):
            if cnt:
                add(f"l1/{smp['task_l1']}", lsum, cnt)
                add(f"l2/{smp['task_l1']}/{smp['task_l2']}", lsum, cnt)
    return sums


def test_indexed_gather_gives_the_same_losses_gradients_and_channels(tiny, pclue_tokenized):
    samples = pclue_tokenized[:12]
    batches = []
    for part in (samples[:7], samples[7:]):
        bins = pack_bfd([len(s) for s in part], 256)
        batches.append(collate_packed([[part[i] for i in b] for b in bins], pad_id=2))

    def grads():
        out = {n: p.grad.clone() for n, p in tiny.named_parameters() if p.grad is not None}
        tiny.zero_grad(set_to_none=True)
        return out

    old_parts = []
    for batch in batches:
        loss, sample_idx, special = _old_supervised_token_losses(tiny, batch)
        loss.sum().backward()
        old_parts.append((loss.detach(), sample_idx, special, batch["samples"]))
    old_grads = grads()
    acc = ChannelAccumulator()
    for batch, (old_loss, old_idx, old_special, _) in zip(batches, old_parts, strict=True):
        indexed = {**batch, **supervised_index(batch)}
        tl = supervised_token_losses(tiny, indexed)
        assert torch.equal(tl.loss.detach(), old_loss)  # bitwise: the same rows reach the same head
        assert torch.equal(tl.sample_idx, old_idx) and torch.equal(tl.is_special, old_special)
        tl.loss.sum().backward()
        acc.add(tl, indexed)
    new_grads = grads()
    assert new_grads.keys() == old_grads.keys() and new_grads
    assert all(torch.equal(new_grads[k], old_grads[k]) for k in new_grads)
    old = _old_channels(old_parts)
    assert acc.sums.keys() == old.keys() and "special" in old and len(old) > 4
    for name, (loss, tokens) in old.items():
        assert acc.sums[name][1] == tokens, name
        assert acc.sums[name][0] == pytest.approx(loss, rel=1e-12, abs=0), name


def test_batches_carry_their_index_and_travel_in_one_copy_per_dtype(pclue_tokenized, monkeypatch):
    class Data:
        pad_id = 2

    samples = pclue_tokenized[:6]
    host = build_batch(Data, samples, [[0, 1], [2]], torch.device("cpu"))
    labels = host["shift_labels"].reshape(-1)
    where = labels != IGNORE
    assert torch.equal(host["sup_pos"], torch.arange(labels.numel())[where])
    assert torch.equal(host["sup_targets"], labels[where])
    assert torch.equal(host["sup_sample_idx"], host["sample_idx"].reshape(-1)[where])
    assert host["cu_seq_lens"].tolist()[-1] == host["input_ids"].numel() and host["max_seq_len"] > 0
    dummy = build_batch(Data, samples, [], torch.device("cpu"))
    assert dummy["sup_pos"].numel() == 0 and dummy["dummy"]
    copies = []
    to = torch.Tensor.to

    def counted(t, *a, **kw):
        copies.append((t.dtype, kw.get("non_blocking", False)))
        return to(t, *a, **kw)

    monkeypatch.setattr(torch.Tensor, "to", counted)
    moved = to_device(host, torch.device("meta"))
    monkeypatch.undo()
    tensors = {k: v for k, v in host.items() if isinstance(v, torch.Tensor)}
    assert sorted(copies, key=str) == sorted({(v.dtype, True) for v in tensors.values()}, key=str)
    for k, v in tensors.items():
        assert moved[k].device.type == "meta" and moved[k].shape == v.shape and moved[k].dtype == v.dtype
    assert moved["samples"] is host["samples"] and moved["max_seq_len"] == host["max_seq_len"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA; the CPU tests above count host reads")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])  # bf16: varlen attention where the GPU has it
def test_cuda_step_synchronises_once_after_the_last_backward(tmp_path, setup, precision, monkeypatch):
    """On CUDA, torch itself reports every synchronising call (``set_sync_debug_mode``), library code included."""
    import warnings

    model, data = setup
    cfg = tiny_config(tmp_path, model, data, per_device_batch=2, grad_accum=3, precision=precision)
    info = dist_.init(cfg)
    run = train_mod.Run(cfg, info)
    try:
        run.setup()
        run.train_step(0, ChannelAccumulator())
        events: list[tuple[str, int]] = []
        forward, backward = loss_mod.supervised_token_losses, torch.Tensor.backward
        with warnings.catch_warnings(record=True) as syncs:
            warnings.simplefilter("always")

            def logged_forward(*a, **kw):
                events.append(("forward", len(syncs)))
                return forward(*a, **kw)

            def logged_backward(*a, **kw):
                out = backward(*a, **kw)
                events.append(("backward", len(syncs)))
                return out

            monkeypatch.setattr(loss_mod, "supervised_token_losses", logged_forward)
            monkeypatch.setattr(torch.Tensor, "backward", logged_backward)
            torch.cuda.set_sync_debug_mode("warn")
            try:
                run.train_step(1, ChannelAccumulator())
            finally:
                torch.cuda.set_sync_debug_mode("default")
                monkeypatch.undo()
        messages = [str(w.message) for w in syncs if "synchroniz" in str(w.message)]
        first = next(n for e, n in events if e == "forward")
        last = [n for e, n in events if e == "backward"][-1]
        inside = [str(w.message) for w in syncs[first:last] if "synchroniz" in str(w.message)]
        assert inside == [] and len(messages) <= 1, messages
    finally:
        run.close()
        dist_.teardown(info)
