"""Channel losses (per task_type level 1 and 2, special tokens, overall) equal an independent per-task recomputation."""

import pytest
import torch

from trainer.channels import ChannelAccumulator, all_reduce_sum
from trainer.collate import collate_packed
from trainer.loss import TokenLosses, supervised_token_losses
from trainer.packing import pack_bfd


def reference_channels(model, samples) -> dict[str, tuple[float, int]]:
    """Each sample alone through the plain HF forward; token losses bucketed by hand."""
    buckets: dict[str, list[float]] = {}
    with torch.no_grad():
        for s in samples:
            ids = torch.tensor([s.input_ids])
            logp = torch.log_softmax(model(ids).logits[0].float(), -1)
            for t in range(len(s) - 1):
                if not s.supervised[t + 1]:
                    continue
                loss = -logp[t, s.input_ids[t + 1]].item()
                names = ["overall", f"l1/{s.task_l1}", f"l2/{s.task_l1}/{s.task_l2}"]
                if s.special[t + 1]:
                    names.append("special")
                for n in names:
                    buckets.setdefault(n, []).append(loss)
    return {n: (sum(v) / len(v), len(v)) for n, v in buckets.items()}


def test_channels_match_reference(tiny, pclue_tokenized):
    samples = pclue_tokenized[:16]
    acc = ChannelAccumulator()
    with torch.no_grad():
        for part in (samples[:9], samples[9:]):  # two micro-batches, accumulated
            bins = pack_bfd([len(s) for s in part], 512)
            batch = collate_packed([[part[i] for i in b] for b in bins], pad_id=2)
            acc.add(supervised_token_losses(tiny, batch), batch)
    got = acc.reduce()
    ref = reference_channels(tiny, samples)
    assert set(got) == set(ref)
    assert len([n for n in got if n.startswith("l2/")]) > 1 and "special" in got
    for name, (loss, tokens) in ref.items():
        assert got[name]["tokens"] == tokens
        assert got[name]["loss"] == pytest.approx(loss, abs=1e-5)
    acc.reset()
    assert acc.reduce() == {}


def fake_tl(losses, sample_idx, special):
    return TokenLosses(torch.tensor(losses), torch.tensor(sample_idx), torch.tensor(special))


def test_reduce_across_ranks_with_different_channels():
    """Two ranks that saw different tasks: names are unioned, sums added, losses token-weighted."""
    r0, r1 = ChannelAccumulator(), ChannelAccumulator()
    r0.add(fake_tl([1.0, 3.0], [0, 0], [False, True]), {"samples": [{"task_l1": "a", "task_l2": "x"}]})
    r1.add(fake_tl([2.0], [0], [False]), {"samples": [{"task_l1": "b", "task_l2": ""}]})
    ranks = [r0, r1]
    names = [sorted(r.sums) for r in ranks]

    def gather(_obj):
        return names

    def all_reduce(t):  # what a SUM all_reduce over both ranks returns; names are aligned by reduce()
        union = sorted(set().union(*names))
        return sum(
            torch.tensor([v for n in union for v in r.sums.get(n, [0.0, 0.0])], dtype=torch.float64)
            for r in ranks
        )

    out = r0.reduce(all_reduce, all_gather_object=gather)
    assert out == {
        "overall": {"loss": pytest.approx(2.0), "tokens": 3},
        "l1/a": {"loss": pytest.approx(2.0), "tokens": 2},
        "l2/a/x": {"loss": pytest.approx(2.0), "tokens": 2},
        "l1/b": {"loss": pytest.approx(2.0), "tokens": 1},
        "l2/b/": {"loss": pytest.approx(2.0), "tokens": 1},
        "special": {"loss": pytest.approx(3.0), "tokens": 1},
    }
    assert all_reduce_sum(torch.tensor([1.0])).item() == 1.0  # not distributed: identity


def test_empty_batch_is_ignored():
    acc = ChannelAccumulator()
    acc.add(fake_tl([], [], []), {"samples": []})
    assert acc.reduce() == {}


RANK_SCRIPT = """
import json, sys, torch, torch.distributed as dist
from trainer.channels import ChannelAccumulator, all_reduce_sum
from trainer.loss import TokenLosses, count_terms, global_counts
rank, init, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
try:
    task = [("a", "x"), ("b", "")][rank]
    batch = {"samples": [{"task_l1": task[0], "task_l2": task[1], "n_supervised": rank + 1}]}
    acc = ChannelAccumulator()
    acc.add(TokenLosses(torch.tensor([1.0, 3.0][: rank + 1]), torch.zeros(rank + 1, dtype=torch.long),
                        torch.tensor([False, True][: rank + 1])), batch)
    result = {"channels": acc.reduce(all_reduce_sum), "counts": global_counts(count_terms(batch, "task"))}
    json.dump(result, open(out + str(rank), "w"))
finally:
    dist.destroy_process_group()
"""


def test_two_gloo_ranks(tmp_path):
    """The default torch.distributed paths (all_gather_object of names, one SUM all_reduce) on 2 real ranks."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    init, out = f"file://{tmp_path / 'init'}", str(tmp_path / "out")
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(r), init, out],
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        for r in range(2)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    results = [json.loads(Path(out + str(r)).read_text()) for r in range(2)]
    assert results[0] == results[1]
    ch = results[0]["channels"]
    assert ch["overall"] == {"loss": pytest.approx(5.0 / 3), "tokens": 3}
    assert ch["l1/a"]["tokens"] == 1 and ch["l1/b"]["tokens"] == 2 and ch["special"]["tokens"] == 1
    assert results[0]["counts"] == {"task:a/x": 1.0, "task:b": 2.0, "tasks": 2.0}
