"""Who may change a dataset: its owner or an admin. Every researcher may read and use any dataset
(browse, search, export, train on it); edits (drop, tags, task type) and imports merged into it as a
new version are the owner's, so one researcher cannot rewrite another's data under them."""

from sqlmodel import Session

from app.models import Dataset, Role, User


class NotOwner(PermissionError):
    """Refused edit; the message names the dataset and its owner."""


def can_edit(user: User, ds: Dataset) -> bool:
    return user.role == Role.admin or ds.owner_id == user.id


def check_can_edit(session: Session, *, user: User, ds: Dataset) -> None:
    if can_edit(user, ds):
        return
    owner = session.get(User, ds.owner_id)
    who = owner.username if owner is not None else f"user {ds.owner_id}"
    raise NotOwner(
        f"Dataset {ds.name!r} belongs to {who}: only its owner or an admin can change it "
        "(you can still read, export and train on it)."
    )
