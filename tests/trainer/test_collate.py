"""Collation turns plain token lists into the batch contract: pre-shifted labels that never cross samples."""

import pytest
import torch

from trainer.collate import collate_packed, collate_padded, to_device

A = {
    "input_ids": [1, 2, 3, 4],
    "supervised": [False, False, True, True],
    "special": [True, False, False, True],
    "task_l1": "a",
    "task_l2": "x",
    "index": 7,
}
B = {"input_ids": [5, 6], "supervised": [False, True], "task_l1": "b", "task_l2": "", "index": 8}
C = {"input_ids": [9, 10, 11], "supervised": [False, True, False], "task_l1": "a", "task_l2": "y", "index": 9}


def test_packed_two_rows():
    batch = collate_packed([[A, B], [C]], pad_id=0)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 4, 5, 6], [9, 10, 11, 0, 0, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 0, 1], [0, 1, 2, 0, 0, 0]]
    # position 3 is A's last token: it must NOT predict B's first token 5
    assert batch["shift_labels"].tolist() == [[-100, 3, 4, -100, 6, -100], [10, -100, -100, -100, -100, -100]]
    assert batch["sample_idx"].tolist() == [[0, 0, 0, 0, 1, 1], [2, 2, 2, -1, -1, -1]]
    assert batch["target_is_special"].tolist() == [
        [False, False, True, False, False, False],
        [False, False, False, False, False, False],
    ]
    assert batch["seq_lens"] == [[4, 2], [3]]
    assert batch["samples"] == [
        {"task_l1": "a", "task_l2": "x", "n_supervised": 2, "index": 7},
        {"task_l1": "b", "task_l2": "", "n_supervised": 1, "index": 8},
        {"task_l1": "a", "task_l2": "y", "n_supervised": 1, "index": 9},
    ]
    assert batch["stats"] == {"real_tokens": 9, "slots": 12, "supervised_tokens": 4}
    for key in ("input_ids", "position_ids", "shift_labels", "sample_idx"):
        assert batch[key].dtype == torch.long
    assert batch["target_is_special"].dtype == torch.bool


def test_padded_is_one_sample_per_row():
    batch = collate_padded([A, B, C], pad_id=99)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 4], [5, 6, 99, 99], [9, 10, 11, 99]]
    assert batch["shift_labels"].tolist() == [
        [-100, 3, 4, -100],
        [6, -100, -100, -100],
        [10, -100, -100, -100],
    ]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3], [0, 1, 0, 0], [0, 1, 2, 0]]
    assert batch["seq_lens"] == [[4], [2], [3]]
    assert batch["stats"] == {"real_tokens": 9, "slots": 12, "supervised_tokens": 4}


def test_packed_and_padded_agree_on_targets():
    packed, padded = collate_packed([[A, B, C]], pad_id=0), collate_padded([A, B, C], pad_id=0)

    def targets(batch):
        m = batch["shift_labels"] != -100
        return sorted(zip(batch["sample_idx"][m].tolist(), batch["shift_labels"][m].tolist(), strict=True))

    assert targets(packed) == targets(padded)


def test_first_token_is_never_a_target():
    s = {"input_ids": [1, 2], "supervised": [True, True]}
    batch = collate_packed([[s, s]], pad_id=0)
    assert batch["shift_labels"].tolist() == [[2, -100, 2, -100]]
    assert batch["samples"][0]["n_supervised"] == 1


def test_errors_and_to_device():
    with pytest.raises(ValueError):
        collate_packed([[{"input_ids": [1, 2], "supervised": [True]}]], pad_id=0)
    with pytest.raises(ValueError):
        collate_packed([[]], pad_id=0)
    batch = to_device(collate_padded([A], pad_id=0), "cpu")
    assert batch["input_ids"].device.type == "cpu" and batch["seq_lens"] == [[4]]
