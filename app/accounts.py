"""Accounts and personal API tokens: the rules, apart from the routes that call them.

The one invariant that needs care: at least one active admin must remain, or
nobody could manage users any more; demoting or deactivating the last one is
refused. Errors carry a catalogue key so pages can show them in either language.
"""

import re
from datetime import timedelta

from sqlmodel import Session, func, select

from app.core.security import API_TOKEN_PREFIX, hash_password, new_api_token, verify_password
from app.models import ApiToken, Role, User, utcnow

USERNAME_RE = re.compile(r"^[\w.\-]{2,64}$")  # \w admits Chinese names too
MIN_PASSWORD = 8
MAX_TOKEN_DAYS = 3650


class AccountError(ValueError):
    """A refused account change; `key` names the message in app/i18n/common.py."""

    def __init__(self, key: str, status_code: int = 400):
        super().__init__(key)
        self.key = key
        self.status_code = status_code


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError("account.password_short")
    if len(password) > 256:
        raise AccountError("account.password_long")


def _active_admins(session: Session) -> int:
    query = select(func.count()).select_from(User).where(User.role == Role.admin, User.is_active)
    return int(session.exec(query).one())


def _is_last_admin(session: Session, user: User) -> bool:
    return user.role == Role.admin and user.is_active and _active_admins(session) <= 1


def get_user(session: Session, *, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise AccountError("account.no_such_user", 404)
    return user


def create_user(session: Session, *, username: str, password: str, role: Role) -> User:
    username = username.strip()
    if not USERNAME_RE.match(username):
        raise AccountError("account.bad_username")
    _check_password(password)
    if session.exec(select(User).where(User.username == username)).first():
        raise AccountError("account.username_taken", 409)
    user = User(username=username, role=role, password_hash=hash_password(password))
    session.add(user)
    session.commit()
    session.refresh(user)
    return user


def set_role(session: Session, *, user_id: int, role: Role) -> User:
    user = get_user(session, user_id=user_id)
    if role != Role.admin and _is_last_admin(session, user):
        raise AccountError("account.last_admin", 409)
    user.role = role
    session.add(user)
    session.commit()
    session.refresh(user)
    return user


def set_active(session: Session, *, user_id: int, active: bool) -> User:
    user = get_user(session, user_id=user_id)
    if not active and _is_last_admin(session, user):
        raise AccountError("account.last_admin", 409)
    user.is_active = active
    session.add(user)
    session.commit()
    session.refresh(user)
    return user


def _revoke_all_tokens(session: Session, *, user: User) -> None:
    # A new password means the old one may have leaked, and with it whatever tokens were made.
    for token in session.exec(select(ApiToken).where(ApiToken.user_id == user.id)):
        session.delete(token)


def reset_password(session: Session, *, user_id: int, password: str) -> User:
    """An admin sets a new password; the user's open sessions end (see security.password_stamp)
    and the user's API tokens are revoked."""
    _check_password(password)
    user = get_user(session, user_id=user_id)
    user.password_hash = hash_password(password)
    session.add(user)
    _revoke_all_tokens(session, user=user)
    session.commit()
    session.refresh(user)
    return user


def change_own_password(session: Session, *, user: User, current: str, new: str) -> User:
    if not verify_password(current, user.password_hash):
        raise AccountError("account.wrong_password", 400)
    _check_password(new)
    user.password_hash = hash_password(new)
    session.add(user)
    _revoke_all_tokens(session, user=user)
    session.commit()
    session.refresh(user)
    return user


def list_users(session: Session) -> list[User]:
    return list(session.exec(select(User).order_by(User.username)))


def create_token(
    session: Session, *, user: User, name: str, expires_in_days: int | None = None
) -> tuple[ApiToken, str]:
    """Returns the stored row and the token itself, which is never retrievable again.

    `expires_in_days` None (or 0) makes a token that lasts until revoked or the password changes.
    """
    name = name.strip()
    if not name or len(name) > 100:
        raise AccountError("tokens.bad_name")
    if expires_in_days is not None and not 0 <= expires_in_days <= MAX_TOKEN_DAYS:
        raise AccountError("tokens.bad_expiry")
    assert user.id is not None
    token, digest = new_api_token()
    expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    row = ApiToken(
        user_id=user.id,
        name=name,
        prefix=token[: len(API_TOKEN_PREFIX) + 6],
        token_hash=digest,
        expires_at=expires,
    )
    session.add(row)
    session.commit()
    session.refresh(row)
    return row, token


def list_tokens(session: Session, *, user: User) -> list[ApiToken]:
    query = select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc())  # type: ignore[attr-defined]
    return list(session.exec(query))


def revoke_token(session: Session, *, user: User, token_id: int) -> None:
    """Deletes one of the user's own tokens; someone else's token is reported as not found."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise AccountError("tokens.not_found", 404)
    session.delete(row)
    session.commit()
