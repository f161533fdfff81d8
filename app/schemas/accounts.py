"""Accounts: API tokens, an admin's change to a user, and one's own password change.

The user bodies themselves (UserCreate, UserPublic) live with the User model in app.models.users.
"""

from datetime import datetime

from pydantic import BaseModel, Field

from app.models import Role


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    expires_in_days: int | None = Field(
        default=None, ge=0, le=3650, description="Days until the token stops working; none or 0: never."
    )


# A token as listed: never the secret.
class TokenPublic(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None = None


# The answer to a create: the one time the secret is returned.
class TokenCreated(TokenPublic):
    token: str


class UserUpdate(BaseModel):
    """Fields an admin may change; any left out stay as they are."""

    role: Role | None = None
    is_active: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=256)


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=256)
    new_password: str = Field(min_length=8, max_length=256)
