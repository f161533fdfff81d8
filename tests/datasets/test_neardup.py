"""Vectorised MinHash finds planted near duplicates, estimates Jaccard closely, and leaves unrelated texts alone."""

import random

import numpy as np

from app.datasets import neardup


def rand_text(rng: random.Random, n: int) -> str:
    return "".join(chr(0x4E00 + rng.randrange(3000)) for _ in range(n))


def mutate(rng: random.Random, t: str, k: int) -> str:
    chars = list(t)
    for _ in range(k):
        chars[rng.randrange(len(chars))] = chr(0x4E00 + rng.randrange(3000))
    return "".join(chars)


def test_planted_near_duplicates_are_found():
    rng = random.Random(5)
    base = [rand_text(rng, rng.randint(200, 400)) for _ in range(50)]
    texts = [rand_text(rng, rng.randint(20, 400)) for _ in range(2000)]
    planted = []
    for b in base:
        i, j = len(texts), len(texts) + 1
        texts += [b, mutate(rng, b, 2)]
        planted.append((i, j))
    groups = neardup.near_duplicate_groups(texts, batch=700)
    found = {tuple(g) for g in groups}
    for pair in planted:
        assert pair in found
    assert len(groups) == len(planted)  # nothing unrelated is grouped


def test_estimate_tracks_exact_jaccard():
    rng = random.Random(9)
    b = rand_text(rng, 600)
    for k in (0, 5, 20, 60):
        m = mutate(rng, b, k)
        sig = neardup.signatures([b, m])
        est = float((sig[0] == sig[1]).mean())
        assert abs(est - neardup.jaccard(b, m)) < 0.12, (k, est, neardup.jaccard(b, m))


def test_short_and_empty_texts():
    sig = neardup.signatures(["", "ab", "ab", "abcdefgh"])
    assert sig.shape == (4, neardup.NUM_PERM)
    assert np.array_equal(sig[1], sig[2])
    assert neardup.clusters(sig) == [[1, 2]]


def test_a_large_bucket_stays_linear():
    """1,000 copies of one text form one cluster through star links, not 500,000 pairs."""
    texts = ["同一个回答" * 10] * 1000 + ["别的" * 30]
    groups = neardup.near_duplicate_groups(texts)
    assert groups == [list(range(1000))]
