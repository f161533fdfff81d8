"""Endpoint keys are stored Fernet-encrypted under a key derived from secret_key, never shown back, and a changed secret_key asks for the key again."""

import base64

import pytest
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.judge.keys import HKDF_INFO, EndpointKeyError, decrypt_key, describe, encrypt_key

SECRET = "test-secret"
KEY = "sk-proj-abcdefghijklmnop1234WXYZ"


def test_round_trip_and_ciphertext_hides_the_key():
    token = encrypt_key(f"  {KEY}\n", secret_key=SECRET)
    assert KEY not in token and "WXYZ" not in token
    assert token.isascii()
    assert decrypt_key(token, secret_key=SECRET) == KEY
    # Fresh IV each time: two stores of one key do not reveal that they are equal.
    assert encrypt_key(KEY, secret_key=SECRET) != encrypt_key(KEY, secret_key=SECRET)


def _hkdf_fernet(info: bytes) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(SECRET.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def test_fernet_key_is_hkdf_sha256_of_the_secret_under_the_fixed_info():
    token = encrypt_key(KEY, secret_key=SECRET).encode()
    assert _hkdf_fernet(HKDF_INFO).decrypt(token).decode() == KEY
    # Another purpose (another info string) derives an unrelated key from the same secret.
    with pytest.raises(InvalidToken):
        _hkdf_fernet(b"sftlab session cookies").decrypt(token)


def test_changed_secret_key_asks_to_reenter():
    token = encrypt_key(KEY, secret_key=SECRET)
    with pytest.raises(EndpointKeyError, match="re-enter the endpoint key") as info:
        decrypt_key(token, secret_key="another-secret")
    assert KEY not in str(info.value)
    with pytest.raises(EndpointKeyError, match="re-enter the endpoint key"):
        decrypt_key("not a token at all ✗", secret_key=SECRET)


def test_describe_shows_only_that_a_key_is_set_and_its_tail():
    token = encrypt_key(KEY, secret_key=SECRET)
    info = describe(token, secret_key=SECRET)
    assert (info.is_set, info.last4, info.needs_reentry) == (True, "WXYZ", False)
    assert KEY not in repr(info)
    assert describe(None, secret_key=SECRET).is_set is False
    assert describe("", secret_key=SECRET).is_set is False
    assert describe(token, secret_key="changed") == type(info)(is_set=True, last4="", needs_reentry=True)
    # A short key shows nothing: four characters of eight would be half of it.
    assert describe(encrypt_key("abcd1234", secret_key=SECRET), secret_key=SECRET).last4 == ""


def test_empty_key_or_secret_is_refused():
    with pytest.raises(EndpointKeyError, match="the endpoint key is empty"):
        encrypt_key("   ", secret_key=SECRET)
    with pytest.raises(EndpointKeyError, match="no secret_key"):
        encrypt_key(KEY, secret_key="")
