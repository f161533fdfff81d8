"""Administrative commands: migrate the database and create the first admin.

`python -m app.cli init` is what `make run` calls: it applies migrations and,
when no admin exists, creates one, printing a one-time password unless
SFTLAB_ADMIN_PASSWORD provides one.
"""

import argparse
import os
import secrets
import sys

from alembic import command
from alembic.config import Config
from sqlmodel import select

from app.core.config import get_settings
from app.core.db import session_scope
from app.core.security import hash_password
from app.models import Role, User
from app.web import ROOT


def migrate(url: str | None = None) -> None:
    cfg = Config(str(ROOT / "alembic.ini"))
    if url:
        cfg.attributes["url"] = url
    command.upgrade(cfg, "head")


def create_user(*, username: str, password: str, role: Role) -> User:
    with session_scope() as session:
        user = User(username=username, role=role, password_hash=hash_password(password))
        session.add(user)
        session.flush()
        session.refresh(user)
        session.expunge(user)
        return user


def ensure_admin() -> str | None:
    """Creates `admin` if no admin exists; returns the password when it was generated here."""
    with session_scope() as session:
        if session.exec(select(User).where(User.role == Role.admin)).first():
            return None
    given = os.environ.get("SFTLAB_ADMIN_PASSWORD")
    password = given or secrets.token_urlsafe(12)
    create_user(username=os.environ.get("SFTLAB_ADMIN_USER", "admin"), password=password, role=Role.admin)
    return None if given else password


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.cli")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("init", help="apply migrations and create the first admin")
    add = sub.add_parser("create-user", help="create a user")
    add.add_argument("username")
    add.add_argument("--role", choices=[r.value for r in Role], default="researcher")
    add.add_argument("--password", required=True)
    args = parser.parse_args(argv)
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if args.cmd == "init":
        migrate()
        generated = ensure_admin()
        if generated:
            sys.stdout.write(f"Created user 'admin' with one-time password: {generated}\n")
    else:
        create_user(username=args.username, password=args.password, role=Role(args.role))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
