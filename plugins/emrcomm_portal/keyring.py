"""The portal's key ring: AES-256-GCM keys with ids, one current, older ones kept to decrypt;
and the link keys that sign magic links (HMAC-SHA256), with ids too.

Stored as JSON ``{"current": id, "keys": {id: base64}, "link_current": id, "link_keys": {id:
base64}, "superseded": {id: ISO time}}`` in a file readable by its owner only: ``superseded``
says when each old key stopped being current. A ring written before link keys existed gets one
on first load.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import threading
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from emrcomm import ConfigError

# The token's first character says how it was made, so a later format can be told apart; it is
# a digit so that the token is never a plain word a content inspector could mistake for a term.
TOKEN_VERSION = "1"

# How long a key that stopped being current stays in the ring even when no stored message uses
# it: a process that encrypted under it just before the rotation reached the file may commit
# that message a moment after ``keys rotate --retire`` counted the keys in use. A seal and its
# commit are seconds apart at most (the store's busy timeout is 30 s); this is far more.
RETIRE_AFTER = dt.timedelta(minutes=10)


def new_key_id() -> str:
    return secrets.token_hex(4)


class KeyRing:
    def __init__(
        self,
        keys: dict[str, bytes],
        current: str,
        link_keys: dict[str, bytes] | None = None,
        link_current: str | None = None,
        *,
        path: Path | None = None,
    ) -> None:
        if current not in keys:
            raise ConfigError(f"key ring: current key {current!r} is not in the ring")
        if link_keys is None or link_current is None:
            link_current = new_key_id()
            link_keys = {link_current: secrets.token_bytes(32)}
        if link_current not in link_keys:
            raise ConfigError(f"key ring: current link key {link_current!r} is not in the ring")
        self.keys = keys
        self.current = current
        self.link_keys = link_keys
        self.link_current = link_current
        self.superseded: dict[str, dt.datetime] = {}  # old key id -> when it stopped being current
        self.path = path
        self._lock = threading.Lock()
        self._seen = _stamp(path)  # the file as this ring last read or wrote it

    @classmethod
    def load_or_create(cls, path: Path, *, save: bool = True) -> KeyRing:
        """The ring in ``path``, created when absent; ``save=False`` keeps a new ring in memory."""
        if not path.exists():
            ring = cls.generate()
            ring.path = path
            if save:
                ring.save(path)
            return ring
        ring = cls.load(path)
        if ring.needs_saving and save:
            ring.save(path)
        return ring

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        mode = path.stat().st_mode & 0o077
        if mode:
            raise ConfigError(f"{path}: key ring is readable by others (mode {oct(path.stat().st_mode & 0o777)}); chmod 600 it")
        seen = _stamp(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            keys = {kid: base64.b64decode(v) for kid, v in data["keys"].items()}
            link_keys = {kid: base64.b64decode(v) for kid, v in data.get("link_keys", {}).items()} or None
            ring = cls(keys, data["current"], link_keys, data.get("link_current") if link_keys else None, path=path)
            ring.superseded = {kid: _utc(dt.datetime.fromisoformat(at))
                               for kid, at in data.get("superseded", {}).items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{path}: not a valid key ring: {type(exc).__name__}") from None
        ring.needs_saving = "link_keys" not in data
        ring._seen = seen
        return ring

    needs_saving = False

    @classmethod
    def generate(cls) -> KeyRing:
        kid = new_key_id()
        return cls({kid: AESGCM.generate_key(bit_length=256)}, kid)

    def save(self, path: Path | None = None) -> None:
        path = path or self.path
        if path is None:
            raise ValueError("this key ring has no file to save to")
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "current": self.current,
            "keys": {k: base64.b64encode(v).decode() for k, v in self.keys.items()},
            "link_current": self.link_current,
            "link_keys": {k: base64.b64encode(v).decode() for k, v in self.link_keys.items()},
            "superseded": {k: at.isoformat() for k, at in self.superseded.items()
                           if k in self.keys or k in self.link_keys},
        }
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
        self.needs_saving = False
        if path == self.path:
            self._seen = _stamp(path)

    # encryption --------------------------------------------------------------------------------
    def encrypt(self, plaintext: bytes, aad: bytes) -> tuple[str, bytes, bytes]:
        self._follow()
        nonce = os.urandom(12)
        return self.current, nonce, AESGCM(self.keys[self.current]).encrypt(nonce, plaintext, aad)

    def decrypt(self, key_id: str, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        return AESGCM(self._key(self.keys, key_id)).decrypt(nonce, ciphertext, aad)

    # magic links -------------------------------------------------------------------------------
    def link_token(self, message_id: str, link_key_id: str | None = None) -> tuple[str, str]:
        """The link key id and the token of a message's magic link: HMAC-SHA256 of its id.

        Deterministic, so the notice can carry the link before the message is stored, and a
        later re-send derives the same link; 256 bits, base32 (case-insensitive, no symbols).
        """
        if link_key_id is None:
            self._follow()
        lid = link_key_id or self.link_current
        mac = hmac.new(self._key(self.link_keys, lid), b"emrcomm-portal-link|" + message_id.encode(), hashlib.sha256)
        return lid, TOKEN_VERSION + base64.b32encode(mac.digest()).decode().rstrip("=").lower()

    # rotation ----------------------------------------------------------------------------------
    def rotate(self, now: dt.datetime) -> tuple[str, str]:
        """Add a new current encryption key and link key (old ones stay, to open old messages);
        ``now`` is kept as the time the old current ones were superseded."""
        kid = new_key_id()
        while kid in self.keys:
            kid = new_key_id()
        lid = new_key_id()
        while lid in self.link_keys:
            lid = new_key_id()
        self.keys[kid] = AESGCM.generate_key(bit_length=256)
        self.link_keys[lid] = secrets.token_bytes(32)
        self.superseded[self.current] = self.superseded[self.link_current] = _utc(now)
        self.current, self.link_current = kid, lid
        return kid, lid

    def retire(self, in_use: set[str], now: dt.datetime) -> tuple[list[str], list[str]]:
        """Drop the keys that are neither current nor used by a stored message, and stopped
        being current at least ``RETIRE_AFTER`` before ``now`` (a key superseded by an earlier
        release, with no time kept, counts as long ago). Returns the ids dropped and the ids
        kept only because they were superseded too recently."""
        old = [k for k in [*self.keys, *self.link_keys]
               if k not in (self.current, self.link_current) and k not in in_use]
        recent = [k for k in old if k in self.superseded and _utc(now) - self.superseded[k] < RETIRE_AFTER]
        dropped = [k for k in old if k not in recent]
        for k in dropped:
            self.keys.pop(k, None)
            self.link_keys.pop(k, None)
            self.superseded.pop(k, None)
        return dropped, recent

    def _key(self, table: dict[str, bytes], key_id: str) -> bytes:
        key = table.get(key_id)
        if key is None and self.path is not None:
            # Another process (``emrcomm keys rotate``) may have added it since this one loaded.
            self._reload()
            key = table.get(key_id)
        if key is None:
            raise KeyError(f"key id {key_id!r} is not in the key ring")
        return key

    def _follow(self) -> None:
        """Reload when the file changed since this ring read it: ``emrcomm keys rotate --retire``
        in another process drops the key this one still holds as current, and a message sealed
        under it would open in no other process (a stat per message: ~3 µs here)."""
        if self.path is not None and _stamp(self.path) not in (self._seen, None):
            self._reload()

    def _reload(self) -> None:
        assert self.path is not None
        with self._lock:
            fresh = KeyRing.load(self.path)
            self._seen = fresh._seen
            self.keys.update(fresh.keys)
            self.link_keys.update(fresh.link_keys)
            self.superseded.update(fresh.superseded)
            # The file is the authority: new messages go under its current keys from now on.
            self.current, self.link_current = fresh.current, fresh.link_current


def _utc(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None:
        raise ValueError("a key's superseded time has no offset")
    return at.astimezone(dt.UTC)


def _stamp(path: Path | None) -> tuple[int, int, int] | None:
    """What tells one version of the ring file from the next (it is replaced whole: a new inode)."""
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size
