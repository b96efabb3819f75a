"""Ed25519 signatures over the exact bytes of a record's value.

A signature travels in Kafka headers next to the bytes it covers:
``lr-signature`` (base64 of the 64-byte signature) and ``lr-key-id`` (the
signer's key id). Public keys are configured as base64 of the raw 32 bytes;
private keys are PKCS#8 PEM files, as ``openssl genpkey -algorithm ed25519`` writes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from launchrelay.contract.headers import (
    KEY_ID_HEADER,
    REDRIVE_BY,
    REDRIVE_HEADER,
    REDRIVE_KEY_ID,
    REDRIVE_SIGNATURE,
    SIGNATURE_HEADER,
    Headers,
    header,
)
from launchrelay.errors import SignatureError


@dataclass(frozen=True)
class Signer:
    """A private key and the id under which its public half is registered."""

    key_id: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, key_id: str) -> Signer:
        return cls(key_id, Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, key_id: str, pem: bytes) -> Signer:
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise SignatureError(f"key {key_id}: not a PEM private key ({exc})") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise SignatureError(f"key {key_id}: not an Ed25519 key")
        return cls(key_id, key)

    @classmethod
    def from_file(cls, key_id: str, path: Path) -> Signer:
        try:
            return cls.from_pem(key_id, path.read_bytes())
        except OSError as exc:
            raise SignatureError(f"key {key_id}: cannot read {path}: {exc.strerror}") from exc

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    @property
    def public_b64(self) -> str:
        raw = self.private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return base64.b64encode(raw).decode("ascii")

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)

    def headers(self, data: bytes) -> Headers:
        """The signature headers for a record whose value is ``data``."""
        return [
            (SIGNATURE_HEADER, base64.b64encode(self.sign(data))),
            (KEY_ID_HEADER, self.key_id.encode("ascii")),
        ]


def public_key_from_b64(value: str) -> Ed25519PublicKey:
    """Load a raw 32-byte Ed25519 public key given in base64."""
    try:
        raw = base64.b64decode(value, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("public key must be base64 of 32 raw Ed25519 bytes") from exc


def verify(public_key: Ed25519PublicKey, data: bytes, signature_b64: bytes) -> bool:
    """True when ``signature_b64`` is a valid signature of ``data``."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, data)
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


class Verdict(StrEnum):
    """What the signature headers of a record say about its bytes."""

    VALID = "valid"
    MISSING = "missing"  # no signature or no key id header (or a null value)
    UNKNOWN_KEY = "unknown_key"  # the key id is not among the keys given
    INVALID = "invalid"  # the signature does not verify over the exact bytes


@dataclass(frozen=True)
class Checked:
    verdict: Verdict
    key_id: str | None = None

    def __bool__(self) -> bool:
        return self.verdict is Verdict.VALID


def verify_headers(
    value: bytes, headers: Sequence[tuple[str, bytes | None]], keys: Mapping[str, Ed25519PublicKey]
) -> Checked:
    """Check ``lr-signature`` over ``value`` with the key ``lr-key-id`` names among ``keys``."""
    signature, key_id_raw = header(headers, SIGNATURE_HEADER), header(headers, KEY_ID_HEADER)
    if signature is None or key_id_raw is None:
        return Checked(Verdict.MISSING)
    key_id = key_id_raw.decode("utf-8", errors="replace")
    key = keys.get(key_id)
    if key is None:
        return Checked(Verdict.UNKNOWN_KEY, key_id)
    return Checked(Verdict.VALID if verify(key, value, signature) else Verdict.INVALID, key_id)


def _redrive_text(dead_letter: str, by: str, value: bytes) -> bytes:
    """What an operator's key signs: the mark bound to the exact bytes it travels with."""
    digest = hashlib.sha256(value).hexdigest()
    return "\x00".join(("launchrelay-redrive/1", dead_letter, by, digest)).encode("utf-8")


def redrive_headers(signer: Signer, dead_letter: str, by: str, value: bytes) -> Headers:
    """The headers that mark ``value`` as ``by``'s redrive of ``dead_letter``, signed with an operator key."""
    return [
        (REDRIVE_HEADER, dead_letter.encode("utf-8")),
        (REDRIVE_BY, by.encode("utf-8")),
        (REDRIVE_KEY_ID, signer.key_id.encode("utf-8")),
        (REDRIVE_SIGNATURE, base64.b64encode(signer.sign(_redrive_text(dead_letter, by, value)))),
    ]


@dataclass(frozen=True)
class RedriveMark:
    """A record's redrive mark as read from its headers, and whether an operator key vouches for it."""

    dead_letter: str
    by: str | None
    key_id: str | None
    verdict: Verdict

    @property
    def authentic(self) -> bool:
        return self.verdict is Verdict.VALID

    @property
    def operator(self) -> str | None:
        """Who made the redrive, as far as it is proven: ``by`` (key id), only for an authentic mark."""
        return f"{self.by} ({self.key_id})" if self.authentic else None


def read_redrive(
    value: bytes, headers: Sequence[tuple[str, bytes | None]], operator_keys: Mapping[str, Ed25519PublicKey]
) -> RedriveMark | None:
    """The redrive mark on a record, checked against the registered operator keys; None when it has none."""
    raw = header(headers, REDRIVE_HEADER)
    if raw is None:
        return None
    dead_letter = raw.decode("utf-8", errors="replace")
    by_raw, key_raw, signature = (header(headers, h) for h in (REDRIVE_BY, REDRIVE_KEY_ID, REDRIVE_SIGNATURE))
    by = by_raw.decode("utf-8", errors="replace") if by_raw is not None else None
    key_id = key_raw.decode("utf-8", errors="replace") if key_raw is not None else None
    if by is None or key_id is None or signature is None:
        return RedriveMark(dead_letter, by, key_id, Verdict.MISSING)
    key = operator_keys.get(key_id)
    if key is None:
        return RedriveMark(dead_letter, by, key_id, Verdict.UNKNOWN_KEY)
    valid = verify(key, _redrive_text(dead_letter, by, value), signature)
    return RedriveMark(dead_letter, by, key_id, Verdict.VALID if valid else Verdict.INVALID)
