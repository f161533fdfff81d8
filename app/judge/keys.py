"""Judge endpoint keys at rest: Fernet-encrypted under a key derived from `settings.secret_key`.

A database dump or backup then holds no usable key, while the server, which has secret_key, can
still call the endpoint. The Fernet key is derived with HKDF-SHA256 under a fixed `info` string rather
than being secret_key itself, so the same secret signing cookies and encrypting keys gives two
unrelated keys, and neither use can be turned against the other. Changing secret_key makes stored
keys unreadable: that is reported as "re-enter the endpoint key", never as a traceback.

Nothing here returns a stored key to be shown: `describe` says only whether one is set and its last
four characters, enough for a researcher to tell which key it is.
"""

import base64
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# Versioned so a future change of derivation can tell old tokens apart instead of failing them all.
HKDF_INFO = b"sftlab judge endpoint key v1"
# Keys shorter than this are shown with no characters at all: four of eight would be half the key.
MIN_SHOWN_LENGTH = 12


class EndpointKeyError(ValueError):
    """A key that cannot be stored or read; the message says what the researcher should do."""


def _fernet(secret_key: str) -> Fernet:
    if not secret_key:
        raise EndpointKeyError("the server has no secret_key to encrypt endpoint keys with")
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_key(plain: str, *, secret_key: str) -> str:
    """The token to store for an endpoint key (ASCII, for a text column); surrounding spaces, which a
    paste often brings, are dropped."""
    plain = plain.strip()
    if not plain:
        raise EndpointKeyError("the endpoint key is empty")
    return _fernet(secret_key).encrypt(plain.encode()).decode("ascii")


def decrypt_key(token: str, *, secret_key: str) -> str:
    """The endpoint key for a call; EndpointKeyError when the token was made under another secret_key or is
    damaged."""
    try:
        return _fernet(secret_key).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise EndpointKeyError(
            "the stored endpoint key cannot be decrypted (the server's secret_key has changed since it "
            "was saved): re-enter the endpoint key"
        ) from None


@dataclass(frozen=True)
class KeyInfo:
    """What a page may show of a stored key: whether one is set, its last four characters (empty for a
    short key), and whether it must be entered again because it can no longer be decrypted."""

    is_set: bool
    last4: str = ""
    needs_reentry: bool = False


def describe(token: str | None, *, secret_key: str) -> KeyInfo:
    """What to show for a stored token; decrypts only to read the tail, and never returns the key."""
    if not token:
        return KeyInfo(is_set=False)
    try:
        plain = decrypt_key(token, secret_key=secret_key)
    except EndpointKeyError:
        return KeyInfo(is_set=True, needs_reentry=True)
    return KeyInfo(is_set=True, last4=plain[-4:] if len(plain) >= MIN_SHOWN_LENGTH else "")
