"""A real uvicorn under 24 concurrent authenticated API clients keeps answering: /healthz within 2 s, no timeout.

Before the fix, 16 clients were enough to freeze the server for 30 s: the user lookup ran on the event
loop and waited there for a pooled connection held by requests that needed the loop to finish.
Runs on SQLite and, where SFTLAB_TEST_POSTGRES_URL is set, on a fresh PostgreSQL database.
"""

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.real_server import real_server

PASSWORD = "concurrency admin password"
CLIENTS = 24
REQUESTS_PER_CLIENT = 12
TIMEOUT = 10.0  # per request; the old freeze lasted the pool's 30 s
HEALTH_LIMIT = 2.0
PATHS = ["/api/me", "/api/datasets", "/api/jobs", "/api/tokens", "/api/uploads", "/api/runs"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request, tmp_path) -> Iterator[tuple[str, Path]]:
    with real_server(tmp_path, request.param, PASSWORD) as srv:
        yield srv.base, srv.log


def _credentials(base: str) -> tuple[dict[str, str], dict[str, str]]:
    """(cookies of a login, headers with an API token made through the tokens API)."""
    with httpx.Client(base_url=base, timeout=TIMEOUT) as c:
        r = c.post("/login", data={"username": "admin", "password": PASSWORD})
        assert r.status_code == 303, r.text
        page = c.get("/tokens").text
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        r = c.post("/api/tokens", json={"name": "load"}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 201, r.text
        return dict(c.cookies), {"Authorization": f"Bearer {r.json()['token']}"}


async def _burst(base: str, cookies: dict, headers: dict) -> tuple[list, list[float]]:
    results: list[tuple[str, float, str]] = []  # (path, seconds, status or error)
    health: list[float] = []
    done = asyncio.Event()
    limits = httpx.Limits(max_connections=CLIENTS + 4)
    async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT, limits=limits) as http:

        async def client(i: int) -> None:
            # half the clients use the API token, half the login cookie: both lookups hit the database
            kw = {"headers": headers} if i % 2 else {"cookies": cookies}
            for k in range(REQUESTS_PER_CLIENT):
                path = PATHS[(i + k) % len(PATHS)]
                t0 = time.monotonic()
                try:
                    r = await http.get(path, **kw)  # type: ignore[arg-type]
                    outcome = str(r.status_code)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                results.append((path, time.monotonic() - t0, outcome))

        async def prober() -> None:
            while not done.is_set():
                t0 = time.monotonic()
                try:
                    r = await http.get("/healthz", timeout=HEALTH_LIMIT * 5)
                    health.append(time.monotonic() - t0 if r.status_code == 200 else float("inf"))
                except httpx.HTTPError:
                    health.append(float("inf"))
                await asyncio.sleep(0.1)

        probe = asyncio.create_task(prober())
        await asyncio.gather(*(client(i) for i in range(CLIENTS)))
        done.set()
        await probe
    return results, health


@pytest.mark.slow
def test_concurrent_clients_never_freeze_the_server(server):
    base, log = server
    cookies, headers = _credentials(base)
    results, health = asyncio.run(_burst(base, cookies, headers))
    failed = [r for r in results if r[2] != "200"]
    slowest = max(s for _, s, _ in results)
    assert len(results) == CLIENTS * REQUESTS_PER_CLIENT
    assert not failed, (
        f"{len(failed)} of {len(results)} requests failed, e.g. {failed[:5]}\n" + log.read_text()[-2000:]
    )
    assert health, "no /healthz probe completed"
    assert max(health) < HEALTH_LIMIT, (
        f"/healthz took {max(health):.2f} s during the burst (slowest request {slowest:.2f} s)"
    )
