"""Accounts and personal API tokens."""

from datetime import UTC, datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Role(StrEnum):
    admin = "admin"  # manages users; can do everything a researcher can
    researcher = "researcher"  # datasets, runs, evaluations
    rater = "rater"  # rating only


# Fields a user shares with every view of them.
class UserBase(SQLModel):
    username: str = Field(index=True, unique=True, max_length=64)
    role: Role = Field(default=Role.researcher)
    is_active: bool = True


# What the admin form posts.
class UserCreate(UserBase):
    password: str = Field(min_length=8, max_length=256)


# What the API returns: never the hash.
class UserPublic(UserBase):
    id: int
    created_at: datetime


# The stored account.
class User(UserBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    password_hash: str
    created_at: datetime = Field(default_factory=utcnow)
    # Bumped on logout: a session cookie carries the epoch it was issued in, so logging out
    # ends that cookie (and any copy of it) although cookies are otherwise stateless.
    session_epoch: int = 0


# A personal token for scripts; only its SHA-256 is stored.
class ApiToken(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=12)
    token_hash: str = Field(index=True, unique=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    expires_at: datetime | None = None  # None: valid until revoked or the password changes


# Wrong passwords per (client address, user name), shared by every web process through the
# database; a key is refused until `blocked_until`, which doubles with each further failure.
class LoginFailure(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True, unique=True, max_length=200)
    failures: int = 0
    last_failure_at: datetime = Field(default_factory=utcnow)
    blocked_until: datetime | None = None
