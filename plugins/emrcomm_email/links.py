"""The one-click unsubscribe link each email carries: ``<unsubscribe_url>/<record id>.<signature>``,
signed under this plugin's own key (the endpoint that answers it: emrcomm_email.unsubscribe)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path

from emrcomm import ConfigError

PREFIX = "/unsubscribe"
_LABEL = b"emrcomm-email-unsubscribe|"


class Signer:
    """Signs and checks unsubscribe tokens with a key read from ``path`` (created when absent,
    mode 0600; refused when others can read it). The key is read when first needed, so a
    read-only command never creates it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def key(self) -> bytes:
        with self._lock:
            if self._key is None:
                self._key = _load_or_create(self.path)
            return self._key

    def token(self, record_id: str) -> str:
        return f"{record_id}.{self._mac(record_id)}"

    def record_of(self, token: str) -> str | None:
        """The record id a token was made for; None when the signature does not match."""
        record_id, _, mac = token.partition(".")
        if not record_id or len(token) > 200 or not hmac.compare_digest(mac.encode(), self._mac(record_id).encode()):
            return None
        return record_id

    def _mac(self, record_id: str) -> str:
        digest = hmac.new(self.key(), _LABEL + record_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _load_or_create(path: Path) -> bytes:
    if not path.exists():
        # Written whole under another name, then linked in place: a process reading the key at
        # the same moment finds either no file or the whole key, and two creators agree on one.
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(base64.b64encode(secrets.token_bytes(32)))
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # another process made it first: theirs stands
                os.link(tmp, path)
        finally:
            tmp.unlink()
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"{path}: the unsubscribe key is readable by others (mode "
                          f"{oct(path.stat().st_mode & 0o777)}); chmod 600 it")
    key = base64.b64decode(path.read_bytes().strip() or b"")
    if len(key) < 32:
        raise ConfigError(f"{path}: not an unsubscribe key (a new one is made when the file is absent)")
    return key


def link_maker(signer: Signer, base: str) -> Callable[[str], str]:
    """The unsubscribe link for the email filed as ``record_id``."""
    return lambda record_id: f"{base.rstrip('/')}/{signer.token(record_id)}"
