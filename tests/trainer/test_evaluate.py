"""Validation reports the same per-task_type channels as training, equal to an independent recomputation,
and every eval bin is scored exactly once whatever the number of ranks."""

from types import SimpleNamespace

import pytest
import torch
from test_channels import reference_channels

from trainer.evaluate import eval_rows, evaluate
from trainer.packing import pack_bfd


def test_eval_channels_match_reference(tiny, pclue_tokenized):
    samples = pclue_tokenized[:12]
    plan = SimpleNamespace(world=1, batch=2, eval_bins=pack_bfd([len(s) for s in samples], 256))
    data = SimpleNamespace(eval=samples, pad_id=2)
    tiny.train()
    got = evaluate(tiny, plan, data, rank=0, device=torch.device("cpu"))
    assert tiny.training  # the mode is restored
    ref = reference_channels(tiny.eval(), samples)
    assert set(got["channels"]) == set(ref)
    assert len([n for n in ref if n.startswith("l2/")]) > 1
    for name, (loss, tokens) in ref.items():
        assert got["channels"][name]["tokens"] == tokens, name
        assert got["channels"][name]["loss"] == pytest.approx(loss, abs=1e-5), name
    assert got["loss"] == pytest.approx(ref["overall"][0], abs=1e-5)
    assert got["tokens"] == ref["overall"][1]


@pytest.mark.parametrize("world", [1, 2, 3])
def test_eval_rows_cover_every_bin_once(world):
    bins = [[i] for i in range(7)]
    plan = SimpleNamespace(eval_bins=bins, batch=2)
    per_rank = [eval_rows(plan, r, world) for r in range(world)]
    assert len({len(rows) for rows in per_rank}) == 1  # same number of forwards on every rank
    seen = sorted(i for rows in per_rank for mb in rows for b in mb for i in b)
    assert seen == list(range(7))
