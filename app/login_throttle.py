"""The login throttle: wrong passwords per (client address, user name), with exponential backoff.

Counting per user name alone let anyone lock `admin` out by guessing wrong from anywhere; counting
per client and name lets the owner, from their own machine, log in while someone elsewhere guesses.
The counts live in the database (LoginFailure), so every web process and worker sees the same
ones, and a refusal never lasts longer than MAX_WAIT: there is no permanent lock.

Five wrong passwords are free; then each one doubles the wait: 1 s, 2 s, 4 s, ... capped at 15 min.
"""

import ipaddress
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from app.models import LoginFailure, utcnow

FREE_FAILURES = 5
BASE_WAIT = timedelta(seconds=1)
MAX_WAIT = timedelta(minutes=15)
FORGET_AFTER = timedelta(days=1)  # a key with no failure for this long starts again from zero


def client_of(host: str | None) -> str:
    """The address a throttle counts by: an IPv6 client's /64, since one host usually holds a whole
    /64 and could otherwise step to a fresh address per guess."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _key(client: str, username: str) -> str:
    return f"{client}|{username.strip().lower()}"[:200]


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def wait_for(failures: int) -> timedelta:
    """How long a key is refused after its `failures`-th wrong password."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    return min(MAX_WAIT, BASE_WAIT * 2 ** min(failures - FREE_FAILURES, 20))


def refused_for(session: Session, *, client: str, username: str, now: datetime | None = None) -> float:
    """Seconds this client must still wait before trying this user name again (0: go ahead)."""
    now = now or utcnow()
    row = session.exec(select(LoginFailure).where(LoginFailure.key == _key(client, username))).first()
    if row is None or row.blocked_until is None:
        return 0.0
    return max(0.0, (_aware(row.blocked_until) - now).total_seconds())


def record_failure(session: Session, *, client: str, username: str, now: datetime | None = None) -> None:
    now = now or utcnow()
    key = _key(client, username)
    # Forget stale keys here, so guesses spread over many names and addresses cannot grow the table forever.
    session.execute(delete(LoginFailure).where(col(LoginFailure.last_failure_at) < now - FORGET_AFTER))
    for _ in range(2):  # a concurrent first failure may insert the row between our select and insert
        row = session.exec(select(LoginFailure).where(LoginFailure.key == key)).first()
        if row is None:
            row = LoginFailure(key=key, failures=0, last_failure_at=now)
        elif now - _aware(row.last_failure_at) > FORGET_AFTER:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        wait = wait_for(row.failures)
        row.blocked_until = now + wait if wait else None
        session.add(row)
        try:
            session.commit()
            return
        except IntegrityError:
            session.rollback()


def record_success(session: Session, *, client: str, username: str) -> None:
    row = session.exec(select(LoginFailure).where(LoginFailure.key == _key(client, username))).first()
    if row is not None:
        session.delete(row)
        session.commit()
