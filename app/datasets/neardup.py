"""Near-duplicate samples: numpy-vectorised MinHash over character 5-shingles, with LSH banding.

Why not datasketch: it hashes one sample at a time in Python (about 1,900
samples/s here, 9 minutes for 1M). Here a batch of samples is one array of code
points; each 5-shingle gets a 32-bit hash from a polynomial over its code points,
and the 128 "permutations" are `a_k * h + b_k mod 2**32` (a_k odd, so each is a
bijection), reduced per sample with np.minimum.reduceat in cache-sized chunks.
LSH: 16 bands of 8 rows; samples sharing a band bucket are candidates, linked to
the bucket's first member (a star, so a bucket of 1,000 copies costs 999 checks,
not 500,000), and kept only when the estimated Jaccard (share of equal signature
values) reaches the threshold. Clusters are the connected components.
"""

from collections.abc import Iterable

import numpy as np

NUM_PERM = 128
BANDS = 16
ROWS = NUM_PERM // BANDS
SHINGLE = 5
THRESHOLD = 0.8
_rng = np.random.default_rng(20261123)
_A = (_rng.integers(0, 2**31, NUM_PERM, dtype=np.uint64) * 2 + 1).astype(np.uint32)
_B = _rng.integers(0, 2**32, NUM_PERM, dtype=np.uint64).astype(np.uint32)
_BAND_MUL = _rng.integers(1, 2**63, ROWS, dtype=np.uint64) | np.uint64(1)
_P = np.uint32(1000003)


def _shingle_hashes(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of every 5-shingle of each text (a shorter text is one shingle), and each text's count."""
    n = len(texts)
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=n)
    codes = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    counts = np.maximum(lengths - SHINGLE + 1, 1)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    # position of each shingle's first character
    first = np.repeat(starts, counts) + (
        np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    )
    end = np.repeat(starts + lengths, counts)
    padded = np.concatenate((codes, np.zeros(SHINGLE, dtype=np.uint32)))
    h = np.zeros(first.shape[0], dtype=np.uint32)
    for k in range(SHINGLE):
        pos = first + k
        c = np.where(pos < end, padded[pos], np.uint32(0))
        h = h * _P + c + np.uint32(k + 1)
    # finalise (murmur3 fmix32) so the permutations see well-spread bits
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h, counts


def signatures(texts: list[str], *, chunk: int = 1024) -> np.ndarray:
    """(len(texts), 128) uint32 MinHash signatures."""
    n = len(texts)
    sig = np.empty((n, NUM_PERM), dtype=np.uint32)
    if n == 0:
        return sig
    h, counts = _shingle_hashes(texts)
    seg = np.concatenate(([0], np.cumsum(counts)))
    # process whole samples per chunk so every reduceat segment lies inside one chunk
    i = 0
    while i < n:
        j = int(np.searchsorted(seg, seg[i] + chunk, side="right")) - 1
        j = max(j, i + 1)
        j = min(j, n)
        block = h[seg[i] : seg[j], None] * _A[None, :]
        block += _B[None, :]
        sig[i:j] = np.minimum.reduceat(block, seg[i:j] - seg[i], axis=0)
        i = j
    return sig


def band_keys(sig: np.ndarray) -> np.ndarray:
    """(n, BANDS) uint64 bucket keys: each band's 8 values folded into one 64-bit number.

    One band at a time: widening the whole (n, 128) signature to uint64 at once cost 2 GB at 1M samples."""
    keys = np.empty((sig.shape[0], BANDS), dtype=np.uint64)
    for b in range(BANDS):
        band = sig[:, b * ROWS : (b + 1) * ROWS].astype(np.uint64)
        band *= _BAND_MUL[None, :]
        keys[:, b] = band.sum(axis=1, dtype=np.uint64)
    return keys


def _find(parent: dict[int, int], x: int) -> int:
    root = x
    while parent.get(root, root) != root:
        root = parent[root]
    while parent.get(x, x) != root:
        parent[x], x = root, parent[x]
    return root


def clusters(sig: np.ndarray, *, threshold: float = THRESHOLD) -> list[list[int]]:
    """Groups of row indices whose estimated Jaccard with a bucket-mate reaches the threshold."""
    n = sig.shape[0]
    if n < 2:
        return []
    keys = band_keys(sig)
    heads, members = [], []
    for b in range(BANDS):
        k = keys[:, b]
        order = np.argsort(k, kind="stable")
        ks = k[order]
        new = np.concatenate(([True], ks[1:] != ks[:-1]))
        group_head = order[np.maximum.accumulate(np.where(new, np.arange(n), 0))]
        dup = ~new
        heads.append(group_head[dup])
        members.append(order[dup])
    if not heads:
        return []
    u = np.concatenate(heads)
    v = np.concatenate(members)
    if u.size == 0:
        return []
    pairs = np.unique(np.stack([u, v], axis=1), axis=0)
    u, v = pairs[:, 0], pairs[:, 1]
    est = np.empty(u.shape[0], dtype=np.float32)
    for s in range(0, u.shape[0], 65536):
        est[s : s + 65536] = (sig[u[s : s + 65536]] == sig[v[s : s + 65536]]).mean(axis=1)
    keep = est >= threshold
    parent: dict[int, int] = {}
    for a, b in zip(u[keep].tolist(), v[keep].tolist(), strict=False):
        ra, rb = _find(parent, a), _find(parent, b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for x in list(parent):
        groups.setdefault(_find(parent, x), []).append(x)
    out = []
    for root, rest in groups.items():
        out.append(sorted({root, *rest}))
    out.sort(key=lambda g: (-len(g), g[0]))
    return out


def near_duplicate_groups(
    texts: Iterable[str], *, batch: int = 20000, threshold: float = THRESHOLD
) -> list[list[int]]:
    """Clusters (as positions in `texts`) of near-duplicate texts."""
    sigs = []
    buf: list[str] = []
    for t in texts:
        buf.append(t)
        if len(buf) >= batch:
            sigs.append(signatures(buf))
            buf = []
    if buf:
        sigs.append(signatures(buf))
    if not sigs:
        return []
    return clusters(np.concatenate(sigs), threshold=threshold)


def jaccard(a: str, b: str) -> float:
    """Exact Jaccard similarity of two texts' 5-shingle sets (tests compare the estimate with it)."""

    def sh(t: str) -> set[str]:
        return {t[i : i + SHINGLE] for i in range(max(len(t) - SHINGLE + 1, 1))}

    sa, sb = sh(a), sh(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0
