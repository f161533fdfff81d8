"""Sampling-analysis benchmark: every analysis function over a synthetic job of 100,000 generations.

    .venv/bin/python bench/sampling_analysis.py                                # 100,000 generations, ~1 minute
    .venv/bin/python bench/sampling_analysis.py --generations 20000 --repeats 1  # a quick run

The results page calls these functions on a whole job at once, so each must stay linear. For each
function this prints its time at N and at N/4 generations and the ratio of the two (about 4 when
linear, 16 when quadratic), and its time as a multiple of one `normalize_answer` pass over the same
texts measured in the same run (the cheapest per-text work there is), so figures compare across
machines. Texts mix Chinese and English prose with choice letters, numbers and, in 1%, an identity claim.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.sampling_analysis.accuracy import accuracy_by_task, pass_at_k_by_task  # noqa: E402
from app.sampling_analysis.flags import identity_summary  # noqa: E402
from app.sampling_analysis.latency import latency_fit  # noqa: E402
from app.sampling_analysis.normalize import normalize_answer  # noqa: E402
from app.sampling_analysis.scorers import score_generations  # noqa: E402
from app.sampling_analysis.stats import cut_share, distinct_answers, length_distribution, repeated_answers  # noqa: E402

WORDS = "the model answer is that we think because so therefore 我们 认为 答案 是 因为 所以 这个 问题".split()
TASKS = {
    "choice": ["A", "B", "C", "D"],
    "nli": ["蕴含", "中性", "矛盾"],
    "math": [str(i) for i in range(200)],
    "open": None,
}


def synthetic(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    gens = []
    for i in range(n):
        task = rng.choice(list(TASKS))
        labels = TASKS[task]
        reference = rng.choice(labels) if labels else " ".join(rng.choices(WORDS, k=8))
        prose = " ".join(rng.choices(WORDS, k=rng.randint(10, 60)))
        text = f"{prose} 答案是{rng.choice(labels)}" if labels else prose
        if rng.random() < 0.01:
            text = "我是由阿里云开发的通义千问。" + text
        tokens = rng.randint(5, 512)
        gens.append(
            {
                "prompt_id": i // 4,
                "task_type": task,
                "reference": reference,
                "text": text,
                "tokens": tokens,
                "prompt_tokens": rng.randint(20, 4000),
                "finish_reason": "length" if tokens == 512 else "stop",
                "time_s": 0.3 + 0.02 * tokens + rng.random() * 0.05,
            }
        )
    return gens


def timed(fn: Callable[[], object], repeats: int) -> float:
    """The best of `repeats` runs: the machine is shared, and the minimum is the least disturbed."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generations", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs per figure")
    args = parser.parse_args()
    full = synthetic(args.generations)
    quarter = full[: args.generations // 4]
    outcomes = {len(full): score_generations(full), len(quarter): score_generations(quarter)}
    cases: dict[str, Callable[[list[dict]], object]] = {
        "score_generations": score_generations,
        "accuracy_by_task": lambda g: accuracy_by_task([x["task_type"] for x in g], outcomes[len(g)]),
        "pass_at_k_by_task(k=2)": lambda g: pass_at_k_by_task(g, outcomes[len(g)], 2),
        "length_distribution": length_distribution,
        "cut_share": cut_share,
        "repeated_answers": repeated_answers,
        "distinct_answers": distinct_answers,
        "identity_summary": lambda g: identity_summary(x["text"] for x in g),
        "latency_fit": latency_fit,
    }
    base_full = timed(lambda: [normalize_answer(x["text"]) for x in full], args.repeats)
    print(
        f"{len(full):,} generations, best of {args.repeats}; baseline: one normalize_answer pass {base_full * 1000:.0f} ms"
    )
    for name, fn in cases.items():
        t_full = timed(lambda fn=fn: fn(full), args.repeats)
        t_quarter = timed(lambda fn=fn: fn(quarter), args.repeats)
        print(
            f"{name:28s} {t_full * 1000:8.0f} ms at N = {base_full and t_full / base_full:5.1f}x baseline; "
            f"N / (N/4) time ratio {t_full / t_quarter:4.1f} (4 = linear)"
        )


if __name__ == "__main__":
    main()
