"""Load benchmark: concurrent API clients browsing, searching, counting, reading stats and jobs while an import runs.

    .venv/bin/python bench/load.py                              # SQLite, 16/64/200 clients, 15 s each
    .venv/bin/python bench/load.py --db both --duration 10      # and PostgreSQL (SFTLAB_TEST_POSTGRES_URL or --pg)
    .venv/bin/python bench/load.py --app-root /tmp/old --levels 16  # another checkout's server, same load

On a fresh data dir (and, for PostgreSQL, a fresh database created in the server given by --pg, dropped
afterwards) a real uvicorn serves the app and a Celery worker runs imports and indexing, as `make run`
starts them. Setup, through the API with an API token: pCLUE (/work/shared/data/pclue_train_9.jsonl, 705
samples) and the BELLE seed tasks are imported and indexed; a larger file (pCLUE repeated, each copy
made distinct, --import-rows rows) is uploaded. Each level then starts an import of that file and runs N
clients on loopback for --duration seconds, each sending one request at a time from a fixed mix:

    browse 30%  a page of samples (first page, or filtered by task_type)
    search 25%  a page of samples matching a Chinese word (full-text search)
    count  15%  the count of samples matching a word
    stats  10%  a version's statistics
    jobs   10%  the jobs list
    list   10%  the datasets list

A prober GETs /healthz every 0.2 s. Printed per level: requests, throughput, p50/p95/max latency, errors
(any answer but 2xx), timeouts (--timeout, 30 s by default, the old pool timeout), the slowest /healthz,
the web server process's CPU time per answered request (the figure that other load on the machine moves
least: compare a change by it), the load generator's own CPU time and whether the import finished; per kind p50/p95. The baseline, measured in the same run, is one client
running the same mix for --duration seconds: each level's throughput is also printed as a multiple of
it, and its p50 and p95 as multiples of the baseline's p50. Targets (issue 10): zero errors and zero
timeouts at 200 clients; p95 under 1 s at 64 clients.

Everything is bounded: levels end after --duration seconds plus at most --timeout for requests in flight,
and the processes and the database are removed at the end. A level starts once the previous level's
import and the index build of its version have ended, so that each runs beside one import, not the
leftovers of the levels before it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = Path("/work/shared/data")
PASSWORD = "load bench password"
WORDS = [
    "北京",
    "中国",
    "学生",
    "电影",
    "问题",
    "公司",
    "时间",
    "的",
    "我",
    "经济",
    "老师",
    "手机",
    "写",
    "故事",
]
MIX = [("browse", 30), ("search", 25), ("count", 15), ("stats", 10), ("jobs", 10), ("list", 10)]


def progress(text: str) -> None:
    """As the bench goes, on stderr; the summary at the end goes to stdout (bench/RESULTS-load.txt)."""
    print(text, file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


# ---- processes ----


@dataclass
class Server:
    base: str
    procs: list[subprocess.Popen]
    tmp: Path

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name} ---\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.tmp.glob("*.log"))
        )

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(app_root: Path, tmp: Path, database_url: str, extra_env: dict[str, str]) -> Server:
    data = tmp / "data"
    data.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFTLAB_")}
    env.update(
        SFTLAB_DATA_DIR=str(data),
        SFTLAB_DATABASE_URL=database_url or f"sqlite:///{data / 'sftlab.db'}",
        SFTLAB_SECRET_KEY="load-bench-secret",
        SFTLAB_ADMIN_PASSWORD=PASSWORD,
        SFTLAB_REAPER_INTERVAL="0",
        PYTHONPATH=str(app_root),
    )
    env.update(extra_env)
    subprocess.run(
        [sys.executable, "-m", "app.cli", "init"], cwd=app_root, env=env, check=True, capture_output=True
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        cwd=app_root, env=env, stdout=(tmp / "server.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "-P", "threads", "-c", "2",
         "-Q", "default", "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
        cwd=app_root, env=env, stdout=(tmp / "worker.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    srv = Server(f"http://127.0.0.1:{port}", [server, worker], tmp)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(srv.base + "/healthz", timeout=1).status_code == 200:
                return srv
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            srv.stop()
            raise SystemExit("the server did not start:\n" + srv.logs())
        time.sleep(0.2)


# ---- setup through the API ----


def token_for(base: str) -> dict[str, str]:
    with httpx.Client(base_url=base, timeout=30) as c:
        r = c.post("/login", data={"username": "admin", "password": PASSWORD})
        assert r.status_code == 303, r.text
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', c.get("/tokens").text)
        assert csrf, "no CSRF token on /tokens"
        r = c.post("/api/tokens", json={"name": "load"}, headers={"X-CSRF-Token": csrf.group(1)})
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}


def upload(c: httpx.Client, name: str, body: bytes) -> int:
    r = c.post(f"/api/uploads?filename={name}", content=body)
    assert r.status_code == 201, r.text
    return r.json()["upload_id"]


def start_import(c: httpx.Client, upload_id: int, name: str) -> int:
    r = c.post(f"/api/uploads/{upload_id}/import", json={"policy": "valid", "name": name})
    assert r.status_code == 202, r.text
    return r.json()["job_id"]


def import_state(c: httpx.Client, job_id: int) -> tuple[str, int | None, str]:
    """(job status, dataset id, the version's indexing status or '')."""
    r = c.get(f"/api/imports/{job_id}")
    if r.status_code != 200:
        raise httpx.HTTPStatusError(f"answer {r.status_code}", request=r.request, response=r)
    job = r.json()
    ds = job.get("dataset_id")
    version = ""
    if job["status"] == "succeeded" and ds:
        version = c.get(f"/api/datasets/{ds}/versions/{job['version'] or 1}").json().get("status", "")
    return job["status"], ds, version


def import_and_index(c: httpx.Client, upload_id: int, name: str, limit: float = 300) -> int:
    job = start_import(c, upload_id, name)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status, ds, version = import_state(c, job)
        if status in ("failed", "cancelled", "lost"):
            raise SystemExit(f"import of {name} {status}: {c.get(f'/api/imports/{job}').text[:2000]}")
        if version == "ready":
            return ds  # type: ignore[return-value]
        time.sleep(0.5)
    raise SystemExit(f"import of {name} not indexed after {limit} s")


def big_file(rows: int) -> bytes:
    """pCLUE repeated up to `rows` lines, each copy made distinct so that nothing is a duplicate."""
    lines = (DATA / "pclue_train_9.jsonl").read_bytes().splitlines()
    out = []
    for i in range(rows):
        line = lines[i % len(lines)]
        out.append(line.replace(b'"input": "', f'"input": "[{i}] '.encode(), 1))
    return b"\n".join(out) + b"\n"


# ---- load ----


@dataclass
class Level:
    clients: int
    samples: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    timeouts: int = 0
    health: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    import_note: str = ""
    server_cpu: float = 0.0  # CPU seconds the web server process spent during the level
    client_cpu: float = 0.0  # and the load generator (this process), which shares the two cores with it

    @property
    def all(self) -> list[float]:
        return [s for v in self.samples.values() for s in v]

    @property
    def n_errors(self) -> int:
        return sum(self.errors.values())


def request_for(kind: str, rng: random.Random, datasets: list[int]) -> str:
    ds = rng.choice(datasets)
    base = f"/api/datasets/{ds}/versions/1"
    if kind == "browse":
        return f"{base}/samples" + (rng.choice(["", "?task=pclue", "?field=prompt&q=答案"]))
    if kind == "search":
        return f"{base}/samples?q={rng.choice(WORDS)}"
    if kind == "count":
        return f"{base}/samples/count?q={rng.choice(WORDS)}"
    if kind == "stats":
        return f"{base}/stats"
    if kind == "jobs":
        return "/api/jobs"
    return "/api/datasets"


async def run_level(
    base: str, headers: dict, datasets: list[int], clients: int, duration: float, timeout: float, seed: int
) -> Level:
    level = Level(clients)
    kinds = [k for k, w in MIX for _ in range(w)]
    # Each client has its own connection, as separate programs would: one shared httpx pool of 200
    # connections costs the load generator more CPU per request than the server spends. Idle connections
    # expire before uvicorn's 5 s keep-alive closes them; at httpx's default (also 5 s) a request may go
    # out on a connection the server is closing and end in a ReadError.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=2.0)
    # One TLS context for all: httpx builds one per client otherwise (26 ms of CPU each, loading the CA
    # bundle), 5 s of one of the two cores while the 200 clients of a level start, taken from the server.
    tls = ssl.create_default_context()
    stop_at = time.monotonic() + duration

    def new_client() -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=base, headers=headers, timeout=timeout, limits=limits, verify=tls)

    async with new_client() as http:

        async def client(i: int) -> None:
            async with new_client() as own:
                await drive(i, own)

        async def drive(i: int, http: httpx.AsyncClient) -> None:
            rng = random.Random(seed * 1000 + i)
            while time.monotonic() < stop_at:
                kind = rng.choice(kinds)
                t0 = time.monotonic()
                try:
                    r = await http.get(request_for(kind, rng, datasets))
                    if r.status_code >= 300:
                        key = f"{kind} {r.status_code}"
                        level.errors[key] = level.errors.get(key, 0) + 1
                        continue
                except httpx.TimeoutException:
                    level.timeouts += 1
                    continue
                except httpx.HTTPError as exc:
                    key = f"{kind} {type(exc).__name__}"
                    level.errors[key] = level.errors.get(key, 0) + 1
                    continue
                level.samples.setdefault(kind, []).append(time.monotonic() - t0)

        async def prober() -> None:
            while time.monotonic() < stop_at:
                t0 = time.monotonic()
                try:
                    ok = (await http.get("/healthz", headers={"Authorization": ""})).status_code == 200
                except httpx.HTTPError:
                    ok = False
                level.health.append(time.monotonic() - t0 if ok else float("inf"))
                await asyncio.sleep(0.2)

        t0 = time.monotonic()
        await asyncio.gather(prober(), *(client(i) for i in range(clients)))
        level.elapsed = time.monotonic() - t0
    return level


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(srv: Server, load) -> Level:  # noqa: ANN001  (a run_level coroutine)
    """Runs a level and records the CPU time the web server spent on it. Latency and throughput on a
    shared machine move with everything else running; the server's CPU time per answered request
    moves much less, and says what a change to the server costs or saves on each request."""
    before, own = cpu_seconds(srv.procs[0].pid), time.process_time()
    level = asyncio.run(load)
    level.server_cpu = cpu_seconds(srv.procs[0].pid) - before
    level.client_cpu = time.process_time() - own
    return level


def fmt_ms(s: float) -> str:
    return "  inf" if s == float("inf") else f"{s * 1000:5.0f}"


def report(level: Level, base_rate: float, base_p50: float, label: str) -> list[str]:
    lat = level.all or [float("inf")]  # nothing answered in time: shown as inf
    rate = len(level.all) / level.elapsed if level.elapsed else 0.0
    p50, p95 = pct(lat, 0.5), pct(lat, 0.95)
    lines = [
        f"{label:>9} {len(level.all):6d} req {rate:7.1f} req/s (x{rate / base_rate:4.2f})  "
        f"p50 {fmt_ms(p50)} ms (x{p50 / base_p50:5.1f})  p95 {fmt_ms(p95)} ms (x{p95 / base_p50:5.1f})  "
        f"max {fmt_ms(max(lat, default=0))} ms  errors {level.n_errors}  timeouts {level.timeouts}  "
        f"/healthz max {fmt_ms(max(level.health, default=0))} ms  "
        f"server CPU {level.server_cpu * 1000 / max(len(level.all), 1):.1f} ms/req  "
        f"client CPU {level.client_cpu:.1f} s  {level.import_note}"
    ]
    per = "  ".join(
        f"{k} {fmt_ms(pct(v, 0.5)).strip()}/{fmt_ms(pct(v, 0.95)).strip()}"
        for k, v in sorted(level.samples.items())
    )
    lines.append(f"{'':>9} p50/p95 ms by kind: {per}")
    if level.errors:
        lines.append(f"{'':>9} errors: {dict(sorted(level.errors.items()))}")
    return lines


def bench_database(args: argparse.Namespace, label: str, database_url: str) -> list[str]:
    out = [
        f"== {label} (app from {args.app_root}{' ' + ' '.join(args.server_env) if args.server_env else ''}) =="
    ]
    tmp = Path(tempfile.mkdtemp(prefix="sftlab-load-"))
    srv = start(args.app_root, tmp, database_url, dict(kv.split("=", 1) for kv in args.server_env))
    try:
        headers = token_for(srv.base)
        with httpx.Client(base_url=srv.base, headers=headers, timeout=60) as c:
            t0 = time.monotonic()
            pclue = import_and_index(
                c, upload(c, "pclue_train_9.jsonl", (DATA / "pclue_train_9.jsonl").read_bytes()), "pclue"
            )
            belle = import_and_index(
                c,
                upload(c, "belle_zh_seed_tasks.jsonl", (DATA / "belle_zh_seed_tasks.jsonl").read_bytes()),
                "belle",
            )
            big = upload(c, "pclue_big.jsonl", big_file(args.import_rows))
            out.append(
                f"setup: pCLUE (705) and BELLE seeds (175) imported and indexed, a {args.import_rows:,}-row "
                f"upload for the imports during the load, in {time.monotonic() - t0:.1f} s"
            )
            datasets = [pclue, belle]
            progress(out[-1])
            base = measured(srv, run_level(srv.base, headers, datasets, 1, args.duration, args.timeout, 0))
            base_rate = len(base.all) / base.elapsed
            base_p50 = pct(base.all, 0.5)
            out += report(base, base_rate, base_p50, "1 (base)")
            progress("\n".join(out[-2:]))
            for i, n in enumerate(args.levels, start=1):
                try:  # a frozen server (the code before the fix) answers nothing: note it and go on
                    job: int | None = start_import(c, big, f"import during {n}")
                except httpx.HTTPError as exc:
                    job, note = None, f"import: not started ({type(exc).__name__})"
                level = measured(
                    srv, run_level(srv.base, headers, datasets, n, args.duration, args.timeout, i)
                )
                if job is not None:
                    try:
                        status, _, version = import_state(c, job)
                        note = f"import: {status}" + (f", index {version}" if version else "")
                    except httpx.HTTPError as exc:
                        note = f"import: state unknown ({str(exc)[:40] or type(exc).__name__})"
                level.import_note = note
                lines = report(level, base_rate, base_p50, str(n))
                out += lines
                progress("\n".join(lines))
                # The next level starts on an idle server, so that each level runs beside one import
                # only: wait (bounded) for this import and the index build of its version to end.
                deadline = time.monotonic() + 300
                while job is not None and time.monotonic() < deadline:
                    try:
                        status, _, version = import_state(c, job)
                    except httpx.HTTPError:
                        break  # a server that does not answer now will not be idle soon either
                    if status not in ("queued", "running") and version != "indexing":
                        break
                    time.sleep(1)
    finally:
        srv.stop()
        if args.keep_logs:
            progress(srv.logs())
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def fresh_pg_database(url: str) -> tuple[str, object]:
    from sqlalchemy import create_engine, make_url, text

    name = "sftlab_load_" + uuid.uuid4().hex[:10]
    admin = create_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    return make_url(url).set(database=name).render_as_string(hide_password=False), (admin, name)


def drop_pg_database(handle) -> None:  # noqa: ANN001
    from sqlalchemy import text

    admin, name = handle
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", choices=["sqlite", "pg", "both"], default="sqlite")
    ap.add_argument(
        "--pg", default=os.environ.get("SFTLAB_TEST_POSTGRES_URL", ""), help="a PostgreSQL server URL"
    )
    ap.add_argument("--levels", default="16,64,200", help="client counts, comma-separated")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per level (and for the baseline)")
    ap.add_argument(
        "--timeout", type=float, default=30.0, help="seconds before a request counts as a timeout"
    )
    ap.add_argument(
        "--import-rows", type=int, default=30_000, help="rows of the file imported during each level"
    )
    ap.add_argument("--app-root", type=Path, default=ROOT, help="the checkout whose server is measured")
    ap.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="SFTLAB_X=V",
        help="a setting for the server (repeatable)",
    )
    ap.add_argument("--keep-logs", action="store_true", help="print the server and worker logs at the end")
    args = ap.parse_args()
    args.levels = [int(x) for x in args.levels.split(",")]
    args.app_root = args.app_root.resolve()
    lines = [
        f"bench/load.py  {time.strftime('%Y-%m-%d %H:%M')}  {os.cpu_count()} CPUs  levels {args.levels}  "
        f"{args.duration:.0f} s each, timeout {args.timeout:.0f} s; the load generator shares the machine",
    ]
    progress(lines[0])
    if args.db in ("sqlite", "both"):
        lines += bench_database(args, "SQLite", "")
    if args.db in ("pg", "both"):
        if not args.pg:
            raise SystemExit("--pg URL or SFTLAB_TEST_POSTGRES_URL is needed for PostgreSQL")
        url, handle = fresh_pg_database(args.pg)
        try:
            lines += bench_database(args, "PostgreSQL", url)
        finally:
            drop_pg_database(handle)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
