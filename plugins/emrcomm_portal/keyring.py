"""The portal's key ring: AES-256-GCM keys with ids, one current, older ones kept to decrypt.

Stored as JSON ``{"current": id, "keys": {id: base64}}`` in a file readable by its owner only.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from emrcomm.errors import ConfigError


class KeyRing:
    def __init__(self, keys: dict[str, bytes], current: str) -> None:
        if current not in keys:
            raise ConfigError(f"key ring: current key {current!r} is not in the ring")
        self.keys = keys
        self.current = current

    @classmethod
    def load_or_create(cls, path: Path) -> KeyRing:
        if not path.exists():
            ring = cls.generate()
            ring.save(path)
            return ring
        mode = path.stat().st_mode & 0o077
        if mode:
            raise ConfigError(f"{path}: key ring is readable by others (mode {oct(path.stat().st_mode & 0o777)}); chmod 600 it")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            keys = {kid: base64.b64decode(v) for kid, v in data["keys"].items()}
            return cls(keys, data["current"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: not a valid key ring: {type(exc).__name__}") from None

    @classmethod
    def generate(cls) -> KeyRing:
        kid = secrets.token_hex(4)
        return cls({kid: AESGCM.generate_key(bit_length=256)}, kid)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"current": self.current, "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()}}
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)

    def encrypt(self, plaintext: bytes, aad: bytes) -> tuple[str, bytes, bytes]:
        nonce = os.urandom(12)
        return self.current, nonce, AESGCM(self.keys[self.current]).encrypt(nonce, plaintext, aad)

    def decrypt(self, key_id: str, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        return AESGCM(self.keys[key_id]).decrypt(nonce, ciphertext, aad)
