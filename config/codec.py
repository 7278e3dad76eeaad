"""Encryption of Temporal payloads (AES-GCM), so names and emails never sit in clear in its database.

Keys come from PAYLOAD_ENCRYPTION_KEYS ("id1:base64key,id2:base64key", 256-bit keys) and new payloads
are sealed with PAYLOAD_ENCRYPTION_KEY_ID. Each payload records its key id, so keys rotate by adding
a new one, making it active, and keeping the old ones for as long as histories written with them live.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"


def parse_keys(spec: str) -> dict[str, bytes]:
    """`id:base64key` pairs, comma separated; each key must be 16, 24 or 32 bytes."""
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key_id, _, encoded = item.partition(":")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"PAYLOAD_ENCRYPTION_KEYS: key {key_id!r} is not base64") from None
        if not key_id or len(key) not in (16, 24, 32):
            raise ValueError(f"PAYLOAD_ENCRYPTION_KEYS: key {key_id!r} must be 16, 24 or 32 bytes")
        keys[key_id] = key
    return keys


def new_key() -> str:
    return base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Mapping[str, bytes], active_key_id: str) -> None:
        if active_key_id not in keys:
            raise ValueError(f"PAYLOAD_ENCRYPTION_KEY_ID {active_key_id!r} is not among the keys")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._active = active_key_id

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._seal(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._open(p) for p in payloads]

    def _seal(self, payload: Payload) -> Payload:
        nonce = os.urandom(12)
        sealed = self._ciphers[self._active].encrypt(nonce, payload.SerializeToString(), None)
        return Payload(metadata={"encoding": ENCODING, KEY_ID: self._active.encode()}, data=nonce + sealed)

    def _open(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before encryption was switched on: left as it is
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise ValueError(f"payload sealed with unknown key id {key_id!r}")
        try:
            return Payload.FromString(cipher.decrypt(payload.data[:12], payload.data[12:], None))
        except (InvalidTag, DecodeError, ValueError):  # tampered, truncated, not ours
            raise ValueError(f"payload does not decrypt with key id {key_id!r}") from None
