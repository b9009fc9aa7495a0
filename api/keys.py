"""API keys: how they are made, stored and checked.

A key is ``acad_<prefix>_<secret>``: the prefix (8 random characters) is stored as it
is, to find the key's row and to tell keys apart in lists; the secret is 32 random bytes
(256 bits). Only a SHA-256 of the whole key is stored. A keyed or slow hash buys
nothing for a 256-bit random secret (no dictionary to guess from, 2**256 to search), and
plain SHA-256 keeps keys valid across a SECRET_KEY rotation with no second secret to
keep. The digest is compared in constant time.
"""

import hashlib
import hmac
import secrets
import string

KEY_PREFIX = "acad_"
PREFIX_LENGTH = 8
_ALPHABET = string.ascii_lowercase + string.digits


def new_key() -> tuple[str, str, str]:
    """A fresh key: (the whole key, its visible prefix, its digest)."""
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(PREFIX_LENGTH))
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    return key, prefix, digest(key)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def prefix_of(key: str) -> str | None:
    """The prefix a presented key claims, or None when it is not shaped like a key."""
    if not key.startswith(KEY_PREFIX):
        return None
    prefix, sep, secret = key[len(KEY_PREFIX) :].partition("_")
    if len(prefix) != PREFIX_LENGTH or not sep or not secret:
        return None
    return prefix


def matches(key: str, stored_digest: str) -> bool:
    return hmac.compare_digest(digest(key), stored_digest)
