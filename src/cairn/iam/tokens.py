"""Secrets, service-account keys and the JWT assertions google-auth signs with them.

Every secret Cairn hands out (access token, refresh token, login code) is random, shown
once, and kept only as its SHA-256 hash. A service-account key is an RSA pair whose private
half goes to the caller inside a Google-format key file and is never stored.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cairn.domain.errors import ApiError, Code

ACCESS_TOKEN_PREFIX = "cairn1."  # lets a log scrubber, or a person, recognise one
ACCESS_TOKEN_SECONDS = 3600
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth signs a key's grant assertion for Google's token endpoint whatever the key
# file's token_uri says; the key (Cairn's own) is what makes the assertion good here.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
# google-auth signs assertions valid for one hour; allow a little clock skew.
_MAX_ASSERTION_SECONDS = 3600 + 300


def new_secret(prefix: str = "") -> str:
    return prefix + secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class KeyPair:
    key_id: str
    private_pem: str
    public_pem: str


def new_key_pair() -> KeyPair:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return KeyPair(secrets.token_hex(20), private_pem, public_pem)


def _invalid_grant(detail: str) -> ApiError:
    return ApiError(Code.UNAUTHENTICATED, f"invalid_grant: {detail}")


def unverified_assertion(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a JWT before its signature is checked (to find its key)."""
    try:
        return jwt.get_unverified_header(assertion), jwt.decode(
            assertion, options={"verify_signature": False}
        )
    except jwt.PyJWTError as exc:
        raise _invalid_grant(f"The assertion is not a JWT ({exc}).") from None


def verify_assertion(assertion: str, public_pem: str, audiences: list[str]) -> dict[str, Any]:
    """Claims of a service account's RS256 assertion, checked against its public key."""
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            public_pem,
            algorithms=["RS256"],
            audience=[*audiences, GOOGLE_TOKEN_AUDIENCE],
            options={"require": ["iss", "aud", "iat", "exp"]},
            leeway=60,
        )
    except jwt.PyJWTError as exc:
        raise _invalid_grant(f"The assertion was refused: {exc}.") from None
    if int(claims["exp"]) - int(claims["iat"]) > _MAX_ASSERTION_SECONDS:
        raise _invalid_grant("The assertion is valid for more than an hour.")
    return claims
