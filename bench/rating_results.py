"""Rating-results benchmark: how long a results page takes to compute, section by section.

    .venv/bin/python bench/rating_results.py                 # pairwise, 1,000 cases, 20 raters, overlap 3
    .venv/bin/python bench/rating_results.py --cases 200     # a quick run

The page recomputes everything on each load (another rubric version or the adjudication toggle is a
reload), so it must stay interactive on a full task. Each section is timed against reading the task's
ratings from the database as the JSONL export does (`app.rating.overview.ratings`), measured in the same
run on the same SQLite file: the ratio (section / read) is what carries across machines.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlmodel import Session, select  # noqa: E402

from app.cli import migrate  # noqa: E402
from app.core.db import make_engine  # noqa: E402
from app.models import Rating, RatingAssignment, RatingCase, RatingTask, Role, User  # noqa: E402
from app.rating.overview import ratings  # noqa: E402
from app.rating_results import agreement, data, review, summary  # noqa: E402
from app.rating_results.results import task_results  # noqa: E402
from tests.rating.conftest import make_jobs, new_task  # noqa: E402

DIMS = ("helpfulness", "honesty", "harmlessness")


def build(url: str, cases: int, raters: int, overlap: int) -> int:
    """A pairwise task with every case rated by `overlap` random raters, noisy around a true score."""
    engine = make_engine(url)
    jobs = make_jobs(engine, n=cases)
    rng = random.Random(0)
    with Session(engine) as s:
        users = []
        for i in range(raters):
            user = User(username=f"bench-rater-{i}", password_hash="x", role=Role.rater)
            s.add(user)
            s.flush()
            users.append(user.id or 0)
        s.commit()
    task = new_task(engine, jobs, users, overlap=overlap)
    with Session(engine) as s:
        for case in s.exec(select(RatingCase).where(RatingCase.task_id == task.id)).all():
            truth = {side: {k: rng.randint(1, 5) for k in DIMS} for side in "ab"}
            for slot, rater in enumerate(rng.sample(users, overlap)):
                a = RatingAssignment(token=secrets.token_hex(8), task_id=task.id or 0, case_id=case.id or 0,
                                     rater_id=rater, slot=slot, status="submitted")  # fmt: skip
                s.add(a)
                s.flush()
                scores = {
                    side: {k: min(5, max(1, v + rng.choice((-1, 0, 0, 1)))) for k, v in truth[side].items()}
                    for side in "ab"
                }
                s.add(Rating(assignment_id=a.id or 0, task_id=task.id or 0, case_id=case.id or 0, rater_id=rater,
                             rubric_version_id=task.rubric_version_id, scores_json=json.dumps(scores),
                             preference=rng.choice(("a", "b", "tie"))))  # fmt: skip
        s.commit()
    engine.dispose()
    return task.id or 0


def best(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--raters", type=int, default=20)
    parser.add_argument("--overlap", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        migrate(url)
        task_id = build(url, args.cases, args.raters, args.overlap)
        engine = make_engine(url)
        with Session(engine) as s:
            task = s.get(RatingTask, task_id)
            assert task is not None
            loaded = data.load(s, task)
            read = best(lambda: ratings(s, task), args.repeats)
            timed = {
                "load": best(lambda: data.load(s, task), args.repeats),
                "scores": best(lambda: summary.scores_table(loaded, use_adjudicated=False), args.repeats),
                "pairwise": best(lambda: summary.pairwise_table(loaded, use_adjudicated=False), args.repeats),
                "agreement": best(lambda: agreement.agreement_table(loaded), args.repeats),
                "disputes": best(lambda: review.disputes(loaded), args.repeats),
                "gold": best(lambda: review.raters_vs_gold(loaded), args.repeats),
                "whole page": best(lambda: task_results(s, task), args.repeats),
            }
        engine.dispose()
    n = args.cases * args.overlap
    print(
        f"pairwise, {args.cases:,} cases x {args.overlap} of {args.raters} raters ({n:,} ratings), best of {args.repeats}"
    )
    print(f"{'read ratings':<12} {read * 1000:8.1f} ms   (baseline)")
    for name, seconds in timed.items():
        print(f"{name:<12} {seconds * 1000:8.1f} ms   {seconds / read:5.1f}x the read")


if __name__ == "__main__":
    main()
