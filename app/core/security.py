"""Passwords, session cookies, CSRF tokens and API tokens.

Passwords use scrypt from the standard library (memory-hard, no extra
dependency). Sessions are itsdangerous-signed cookies carrying the user id and
a per-login CSRF secret; the CSRF token that forms and HTMX send is an HMAC of
that secret, so a token stolen from one login is useless in another.
"""

import base64
import hashlib
import hmac
import secrets

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
SESSION_COOKIE = "sftlab_session"
API_TOKEN_PREFIX = "sft_"


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), dklen=32, **_SCRYPT)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="sftlab-session")


def password_stamp(secret_key: str, password_hash: str) -> str:
    """A short keyed fingerprint of the stored hash: a session carries it, so changing or
    resetting a password ends every other login of that account (cookies are stateless)."""
    return hmac.new(secret_key.encode(), password_hash.encode(), hashlib.sha256).hexdigest()[:16]


def make_session(secret_key: str, user_id: int, password_hash: str = "", epoch: int = 0) -> str:
    return _serializer(secret_key).dumps(
        {
            "uid": user_id,
            "csrf": secrets.token_urlsafe(16),
            "pw": password_stamp(secret_key, password_hash),
            "ep": epoch,
        }
    )


def read_session(secret_key: str, cookie: str | None, max_age: int) -> dict | None:
    if not cookie:
        return None
    try:
        data = _serializer(secret_key).loads(cookie, max_age=max_age)
    except (BadSignature, SignatureExpired):
        return None
    return data if isinstance(data, dict) and "uid" in data and "csrf" in data else None


def session_matches(secret_key: str, session: dict, password_hash: str, epoch: int = 0) -> bool:
    """Whether a signed session is still valid for the account: same password, and issued since
    the account's last logout (User.session_epoch), so a copied cookie dies with the logout."""
    if session.get("ep", 0) != epoch:
        return False
    return hmac.compare_digest(str(session.get("pw", "")), password_stamp(secret_key, password_hash))


def csrf_token(secret_key: str, session: dict) -> str:
    return hmac.new(secret_key.encode(), session["csrf"].encode(), hashlib.sha256).hexdigest()


def check_csrf(secret_key: str, session: dict, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(csrf_token(secret_key, session), token or "")


def same_origin(*, origin: str | None, fetch_site: str | None, host: str | None) -> bool:
    """Whether a browser request comes from our own pages.

    Browsers set `Sec-Fetch-Site` and `Origin` themselves (scripts cannot forge them), so
    a cross-site form posting to /login is refused even though no session (and so no
    CSRF token) exists yet: that stops login CSRF, where an attacker logs the victim into
    the attacker's account. Clients that send neither header (curl, scripts) pass.
    """
    if fetch_site and fetch_site not in ("same-origin", "none"):
        return False
    if origin and origin != "null" and host:
        return origin.split("://", 1)[-1].lower() == host.lower()
    return origin != "null"


def new_api_token() -> tuple[str, str]:
    """Returns (the token shown once to the user, its stored SHA-256).

    A SHA-256 (not scrypt) suffices: the token has 256 random bits, so there is
    nothing to brute-force, and a fast hash keeps every API call cheap.
    """
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_api_token(token)


def hash_api_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
