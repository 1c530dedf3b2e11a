"""The systems allowed to call the API (SMART Backend Services clients): each has an id, a
name, its public keys (a JWKS: it signs its assertions with the private halves, which never
leave it) and the system scopes it may be granted. ``emrcomm clients add/list/revoke``.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from attrs import frozen

from emrcomm.api.scopes import parse_scopes
from emrcomm.errors import RequestError
from emrcomm.storage.database import Database, Row
from emrcomm.storage.times import iso, parse_iso

# The signing algorithms SMART Backend Services names (RS384, ES384), with the key type each needs.
ALGORITHMS = {"RS384": "RSA", "ES384": "EC"}
MIN_RSA_BITS = 2048
_PRIVATE = ("d", "p", "q", "dp", "dq", "qi", "k")


@frozen
class Client:
    id: str
    name: str
    jwks: Mapping[str, Any]
    scopes: tuple[str, ...]
    created: dt.datetime
    revoked: dt.datetime | None = None

    def key(self, kid: str) -> Mapping[str, Any] | None:
        """The client's public key named ``kid``."""
        return next((k for k in self.jwks.get("keys", ()) if k.get("kid") == kid), None)


def check_jwks(data: Any) -> dict[str, Any]:
    """A JWKS fit for a client: public keys only, each with a ``kid``, usable for RS384
    (RSA, 2048 bits or more) or ES384 (EC P-384). A single JWK is taken as a set of one.
    Raises RequestError saying what is wrong with which key."""
    import jwt

    if isinstance(data, Mapping) and "keys" not in data and "kty" in data:
        data = {"keys": [data]}
    if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list) or not data["keys"]:
        raise RequestError('the key set must be a JWKS: {"keys": [ {public JWK}, ... ]} with at least one key')
    keys = []
    for i, key in enumerate(data["keys"]):
        where = f"keys[{i}]"
        if not isinstance(key, Mapping):
            raise RequestError(f"{where} is not a JSON object (a JWK)")
        if any(part in key for part in _PRIVATE):
            raise RequestError(f"{where} holds a private key: register the public key only (the client keeps "
                               "the private key and signs with it)")
        if not isinstance(key.get("kid"), str) or not key["kid"]:
            raise RequestError(f"{where} has no 'kid': every key needs one (the assertion's header names it)")
        alg = key.get("alg") or ("RS384" if key.get("kty") == "RSA" else "ES384" if key.get("kty") == "EC" else None)
        if alg not in ALGORITHMS or key.get("kty") != ALGORITHMS[alg]:
            raise RequestError(f"{where} ({key.get('kid')}): a {key.get('kty')!r} key for {key.get('alg')!r}; "
                               "use an RSA key for RS384 or an EC P-384 key for ES384")
        try:
            parsed = jwt.PyJWK(dict(key), algorithm=alg)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
            raise RequestError(f"{where} ({key['kid']}) is not a usable {alg} key: {exc}") from None
        size = getattr(parsed.key, "key_size", 0)
        if alg == "RS384" and size < MIN_RSA_BITS:
            raise RequestError(f"{where} ({key['kid']}): an RSA key of {size} bits; use {MIN_RSA_BITS} or more")
        if alg == "ES384" and key.get("crv") != "P-384":
            raise RequestError(f"{where} ({key['kid']}): ES384 needs the curve P-384, not {key.get('crv')!r}")
        keys.append({**key, "alg": alg})
    kids = [k["kid"] for k in keys]
    if len(set(kids)) != len(kids):
        raise RequestError("two keys share a 'kid': each key needs its own")
    return {"keys": keys}


class ClientRegistry:
    """The ``api_clients`` table."""

    def __init__(self, db: Database, clock: Callable[[], dt.datetime]) -> None:
        self.db = db
        self.clock = clock

    def add(self, name: str, jwks: Any, scopes: Sequence[str] | str) -> Client:
        name = name.strip()
        if not name or len(name) > 200:
            raise RequestError("the client's name must be 1 to 200 characters (the EMR it is, for the audit log)")
        allowed = parse_scopes(" ".join(scopes) if not isinstance(scopes, str) else scopes, strict=True)
        checked = check_jwks(jwks)
        # Hex, not URL-safe base64: an id that began with '-' (one in 64) read as an option on the command
        # line, and `emrcomm clients revoke <id>` refused it.
        client = Client(id=secrets.token_hex(16), name=name, jwks=checked, scopes=tuple(allowed),
                        created=self.clock())
        with self.db.transaction():
            self.db.execute("INSERT INTO api_clients (id, name, jwks, scopes, created) VALUES (?, ?, ?, ?, ?)",
                            (client.id, name, json.dumps(checked), " ".join(client.scopes), iso(client.created)))
        return client

    def get(self, client_id: str) -> Client | None:
        rows = self.db.query("SELECT * FROM api_clients WHERE id = ?", (client_id,))
        return _client(rows[0]) if rows else None

    def all(self) -> list[Client]:
        return [_client(r) for r in self.db.query("SELECT * FROM api_clients ORDER BY created, id")]

    def revoke(self, client_id: str) -> bool:
        """Revoke a client and every token it holds; False when there is no such client."""
        with self.db.transaction():
            changed = self.db.execute("UPDATE api_clients SET revoked = ? WHERE id = ? AND revoked IS NULL",
                                      (iso(self.clock()), client_id))
            self.db.execute("DELETE FROM api_tokens WHERE client_id = ?", (client_id,))
        return changed == 1 or self.get(client_id) is not None


def _client(row: Row) -> Client:
    return Client(id=row["id"], name=row["name"], jwks=json.loads(row["jwks"]), scopes=tuple(row["scopes"].split()),
                  created=parse_iso(row["created"]), revoked=parse_iso(row["revoked"]) if row["revoked"] else None)
