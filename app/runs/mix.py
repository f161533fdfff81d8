"""The per-task_type mix table: counts and shares before and after the weights, as the trainer will train.

Why it mirrors the trainer rather than approximating it: the point of the table is to see the effect of
"×2" before launch, so "after" must be exactly what trainer.data.prepare_data will produce. The counts
come from the database (app.datasets.tasks.version_task_counts of each chosen version), the group
keys go through the trainer's own parse_task_type (as the exported task_type string would), weights
through its own resolve_mix, and a group of n samples becomes round(w * (n - held_out)) samples, which
is what mix_samples keeps after split_heldout took round(eval_fraction * n) of each group.
tests/runs/test_mix.py checks this against mix_samples run on the real export.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from app.datasets.tasks import task_key, version_task_counts
from trainer.data import Sample, parse_task_type, resolve_mix

Group = tuple[str, str]


def group_counts(session: Session, datasets: list[tuple[int, int]] | list[list[int]]) -> dict[Group, int]:
    """Samples per (level 1, level 2) in the concatenation of the chosen versions, keyed as the trainer reads them."""
    counts: dict[Group, int] = {}
    for dataset_id, version in datasets:
        for task, n in version_task_counts(session, dataset_id=dataset_id, version=version).items():
            key = parse_task_type(task)
            counts[key] = counts.get(key, 0) + int(n)
    return dict(sorted(counts.items()))


def held_out(n: int, eval_fraction: float) -> int:
    """What split_heldout takes from a group of n (round half to even, as Python's round)."""
    return round(eval_fraction * n)


def weights(counts: dict[Group, int], mix: dict[str, float]) -> dict[Group, float]:
    """The trainer's weight per group (a level-2 key wins over its level-1 key); DataError on unknown keys."""
    return resolve_mix([Sample([], l1, l2) for l1, l2 in counts], mix)


def mixed_counts(
    counts: dict[Group, int], mix: dict[str, float], *, eval_fraction: float = 0.0
) -> dict[Group, int]:
    """Training samples per group after held-out split and weights: what mix_samples returns, counted."""
    w = weights(counts, mix)
    return {g: round(w[g] * (n - held_out(n, eval_fraction))) for g, n in counts.items()}


def level_key(group: Group, level: int) -> str:
    """The task_type name a table row shows, and the mix key its weight input sets."""
    l1, l2 = group
    return l1 if level == 1 else task_key(l1, l2)


@dataclass
class MixRow:
    key: str  # "nli" (level 1) or "pclue/nli" (level 2): also the mix key of its weight input
    count: int  # visible samples of the chosen versions
    share: float
    held: int  # held out for eval (eval_fraction)
    weight: str  # the weight as shown in the input ("" when its groups differ at this level)
    hidden: dict[str, str]  # level 1 with differing level-2 weights: those keys, posted as they are
    after: int  # samples the trainer will train on per epoch
    after_share: float


@dataclass
class MixTable:
    level: int
    rows: list[MixRow]
    total: int
    total_held: int
    total_after: int


def _fmt(w: float) -> str:
    return f"{w:g}"


def mix_table(
    counts: dict[Group, int], mix: dict[str, float], *, level: int = 1, eval_fraction: float = 0.0
) -> MixTable:
    """One row per task_type at `level`; "after" sums the trainer's per-group counts (exact, not re-rounded)."""
    w = weights(counts, mix)
    after = mixed_counts(counts, mix, eval_fraction=eval_fraction)
    rows: dict[str, dict] = {}
    for g, n in counts.items():
        key = level_key(g, level)
        row = rows.setdefault(key, {"count": 0, "held": 0, "after": 0, "weights": set(), "groups": {}})
        row["groups"][task_key(*g)] = w[g]
        row["count"] += n
        row["held"] += held_out(n, eval_fraction)
        row["after"] += after[g]
        row["weights"].add(w[g])
    total, total_after = sum(counts.values()), sum(after.values())
    out = []
    for key, r in rows.items():
        shown = mix.get(key)
        if shown is None:
            shown = next(iter(r["weights"])) if len(r["weights"]) == 1 else None
        out.append(
            MixRow(
                key=key,
                count=r["count"],
                share=r["count"] / total if total else 0.0,
                held=r["held"],
                weight="" if shown is None else _fmt(shown),
                hidden={} if shown is not None else {k: _fmt(v) for k, v in r["groups"].items()},
                after=r["after"],
                after_share=r["after"] / total_after if total_after else 0.0,
            )
        )
    return MixTable(level, out, total, sum(r.held for r in out), total_after)


def scale_task(counts: dict[Group, int], mix: dict[str, float], task: str, share: float) -> dict[str, float]:
    """The mix with one task_type's effective weight multiplied by `share` (a sweep's grid axis).

    A level-1 task scales each of its groups (so a level-2 weight under it is scaled too, not overridden);
    a level-2 task scales its own group. Other task_types keep their weights.
    """
    w = weights(counts, mix)
    l1, l2 = parse_task_type(task)
    hit = [g for g in counts if g[0] == l1 and ("/" not in task or g[1] == l2)]
    if not hit:
        raise ValueError(f"unknown task_type {task!r}")
    out = dict(mix)
    if "/" not in task:
        out[l1] = mix.get(l1, 1.0) * share
        for g in hit:
            key = task_key(*g)
            if g[1] and key in mix:
                out[key] = mix[key] * share
    else:
        out[f"{l1}/{l2}"] = w[(l1, l2)] * share
    return out
