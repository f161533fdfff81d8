"""Rating benchmark: next-case latency and submission throughput with 20 raters at once, over HTTP.

    .venv/bin/python bench/rating.py                         # SQLite, 20 raters, 1000 cases x overlap 2
    .venv/bin/python bench/rating.py --cases 300 --raters 10  # a quick run

A real uvicorn serves the app on a fresh SQLite data dir (as `make run` starts it; no worker is needed).
Two sampling jobs are written straight into its database (tests.rating.conftest.make_jobs), and through
the API the admin creates one absolute rating task per phase. Each rater logs in like a browser (cookie
and CSRF token) and loops as the rater page does: POST /api/rate/{key}/next, then POST the answer to
/api/rate/a/{token}, until the queue is empty or --duration seconds have passed. Two crowd phases: closed
loop (each rater asks again the moment an answer is stored: the worst case, far beyond any human), and
with --think seconds on average between a case arriving and its answer (still faster than a person
reads). People do not answer in step: each rater starts at a random moment of the first think time and
takes between 0.5x and 1.5x of it per case (seeded), so the phase does not turn into 20 simultaneous
requests once a second, a queue no real rating team produces.

The baseline, measured in the same run, is one rater alone on its own task of the same size: the 20-rater
phase's p50/p95 are also printed as multiples of the baseline's p50, and its throughput as a multiple of
the baseline's. The issue's target: next-case p95 under 100 ms with 20 raters (the page prefetches, so
the rater waits for this only when the prefetched case is missing). On a 2-core machine one uvicorn
process answers a request in a few ms of CPU, so the closed-loop phase measures queueing behind 19
other raters' requests more than the rating code.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "rating bench password"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc): on a shared machine the server's CPU time
    per request moves much less with other load than latency does (as bench/load.py reports it)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp: Path) -> tuple[subprocess.Popen, str, dict[str, str]]:
    data = tmp / "data"
    data.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFTLAB_")}
    env.update(
        SFTLAB_DATA_DIR=str(data),
        SFTLAB_DATABASE_URL=f"sqlite:///{data / 'sftlab.db'}",
        SFTLAB_SECRET_KEY="rating-bench-secret",
        SFTLAB_ADMIN_PASSWORD=PASSWORD,
        SFTLAB_REAPER_INTERVAL="0",
        PYTHONPATH=str(ROOT),
    )
    subprocess.run(
        [sys.executable, "-m", "app.cli", "init"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=(tmp / "server.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base, env
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.terminate()
            raise SystemExit("the server did not start:\n" + (tmp / "server.log").read_text()[-3000:])
        time.sleep(0.2)


def seed(env: dict[str, str], cases: int, raters: int) -> tuple[int, list[int]]:
    """Two sampling jobs of `cases` prompts and the rater accounts, written in the server's database."""
    os.environ.update({k: v for k, v in env.items() if k.startswith("SFTLAB_")})
    from app.cli import create_user
    from app.core.config import get_settings
    from app.core.db import get_engine
    from app.models import Role
    from tests.rating.conftest import make_jobs

    get_settings.cache_clear()
    jobs = make_jobs(get_engine(), n=cases)
    ids = [
        create_user(username=f"bench{i}", password=PASSWORD, role=Role.rater).id or 0 for i in range(raters)
    ]
    return jobs.a, ids


async def login(base: str, username: str) -> httpx.AsyncClient:
    c = httpx.AsyncClient(base_url=base, timeout=30)
    r = await c.post("/login", data={"username": username, "password": PASSWORD})
    assert r.status_code == 303, r.text
    page = await c.get("/rate" if username != "admin" else "/tokens")
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert csrf, "no CSRF token on the page"
    c.headers["X-CSRF-Token"] = csrf.group(1)
    return c


async def new_task(base: str, sampling_a: int, raters: list[int], overlap: int) -> str:
    admin = await login(base, "admin")
    body = {
        "name": "bench",
        "mode": "absolute",
        "sampling_a": sampling_a,
        "raters": raters,
        "overlap": overlap,
    }
    r = await admin.post("/api/rating/tasks", json=body)
    await admin.aclose()
    assert r.status_code == 201, r.text
    return r.json()["task_key"]


ANSWER = {"scores": {"helpfulness": 4, "honesty": 3, "harmlessness": 5}, "preference": None, "flag": False,
          "comment": "", "duration_ms": 1500}  # fmt: skip


async def phase(
    base: str, pid: int, key: str, usernames: list[str], duration: float, think: float
) -> dict[str, object]:
    """Raters loop next -> submit at once; latencies of each kind, submissions, errors, wall and server CPU time."""
    clients = [await login(base, u) for u in usernames]
    cpu = cpu_seconds(pid)
    nexts: list[float] = []
    submits: list[float] = []
    errors = 0
    start = time.perf_counter()

    async def rater(c: httpx.AsyncClient, rng: random.Random) -> None:
        nonlocal errors
        if think:
            await asyncio.sleep(rng.uniform(0, think))
        while time.perf_counter() - start < duration:
            t0 = time.perf_counter()
            r = await c.post(f"/api/rate/{key}/next")
            nexts.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors += 1
                continue
            case = r.json()["case"]
            if case is None:
                return
            if think:
                await asyncio.sleep(think * rng.uniform(0.5, 1.5))
            t0 = time.perf_counter()
            s = await c.post(f"/api/rate/a/{case['token']}", json=ANSWER)
            submits.append(time.perf_counter() - t0)
            errors += s.status_code != 200

    await asyncio.gather(*(rater(c, random.Random(i)) for i, c in enumerate(clients)))
    wall = time.perf_counter() - start
    cpu = cpu_seconds(pid) - cpu
    for c in clients:
        await c.aclose()
    return {"next": nexts, "submit": submits, "errors": errors, "wall": wall, "cpu": cpu}


def ms(s: float) -> str:
    return f"{s * 1000:7.1f} ms"


def report(label: str, r: dict, base_p50: float, base_rate: float) -> list[str]:
    nexts, submits = r["next"], r["submit"]
    rate = len(submits) / r["wall"]
    return [
        f"{label}: {len(submits)} submissions in {r['wall']:.1f} s = {rate:.1f}/s ({rate / base_rate:.2f}x baseline), "
        f"errors {r['errors']}, server CPU {r['cpu'] / (len(nexts) + len(submits)) * 1000:.1f} ms per request",
        f"  next   p50 {ms(pct(nexts, 0.5))} ({pct(nexts, 0.5) / base_p50:.1f}x base p50)  "
        f"p95 {ms(pct(nexts, 0.95))} ({pct(nexts, 0.95) / base_p50:.1f}x)  max {ms(max(nexts))}",
        f"  submit p50 {ms(pct(submits, 0.5))}  p95 {ms(pct(submits, 0.95))}  max {ms(max(submits))}",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=1000, help="cases per task")
    ap.add_argument("--raters", type=int, default=20)
    ap.add_argument("--overlap", type=int, default=2)
    ap.add_argument("--duration", type=float, default=30.0, help="seconds per phase at most")
    ap.add_argument("--think", type=float, default=1.0, help="seconds a rater spends on a case (third phase)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rating-bench-") as tmp_name:
        tmp = Path(tmp_name)
        proc, base, env = start_server(tmp)
        try:
            sampling_a, raters = seed(env, args.cases, args.raters + 1)
            names = [f"bench{i}" for i in range(args.raters + 1)]
            solo_key = asyncio.run(new_task(base, sampling_a, raters[:1], 1))
            crowd_key = asyncio.run(new_task(base, sampling_a, raters[1:], args.overlap))
            paced_key = asyncio.run(new_task(base, sampling_a, raters[1:], args.overlap))
            solo = asyncio.run(phase(base, proc.pid, solo_key, names[:1], args.duration, 0.0))
            crowd = asyncio.run(phase(base, proc.pid, crowd_key, names[1:], args.duration, 0.0))
            paced = asyncio.run(phase(base, proc.pid, paced_key, names[1:], args.duration, args.think))
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    base_p50 = pct(solo["next"], 0.5)  # type: ignore[arg-type]
    base_rate = len(solo["submit"]) / solo["wall"]  # type: ignore[arg-type, operator]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"rating bench, SQLite, {args.cases} cases per task, overlap {args.overlap}, cpus {os.cpu_count()}, load {load}"
    )
    lines = report("baseline (1 rater, closed loop)", solo, base_p50, base_rate)
    lines += report(f"{args.raters} raters, closed loop", crowd, base_p50, base_rate)
    lines += report(f"{args.raters} raters, {args.think:g} s per case", paced, base_p50, base_rate)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
