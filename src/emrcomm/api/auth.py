"""SMART Backend Services: a client proves who it is with a JWT it signed (RS384 or ES384,
checked by PyJWT against the public keys registered for it), and gets a short-lived bearer
token carrying the system scopes it asked for and may have.

An assertion is good once: its ``jti`` is kept in the database until it would have expired, so
a replay, from any ``serve`` process, is refused. Tokens are random (256 bits) and stored only
as their SHA-256. Times are the host's clock (``EMRCOMM_CLOCK`` in tests), never PyJWT's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Mapping
from typing import Any

import jwt
from attrs import frozen

from emrcomm.api.clients import ALGORITHMS, Client, ClientRegistry
from emrcomm.api.scopes import parse_scopes
from emrcomm.storage.database import Database
from emrcomm.storage.times import iso, parse_iso

GRANT_TYPE = "client_credentials"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFE = dt.timedelta(minutes=5)  # SMART: exp no more than five minutes ahead
LEEWAY = dt.timedelta(seconds=60)  # clocks of two machines disagree a little
MAX_ASSERTION_CHARS = 16_384


class TokenError(Exception):
    """An OAuth 2.0 error (RFC 6749 §5.2): ``error`` is its code, the message says what to do."""

    def __init__(self, error: str, description: str, *, status: int = 400, client: str | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.client = client


@frozen
class Grant:
    """What a valid bearer token lets its holder do."""

    client_id: str
    scopes: frozenset[str]
    expires: dt.datetime

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


@frozen
class Issued:
    token: str
    client_id: str
    scopes: tuple[str, ...]
    expires_in: int


class Authority:
    """Checks assertions and issues tokens; checks tokens on every call."""

    def __init__(self, db: Database, clients: ClientRegistry, clock: Callable[[], dt.datetime],
                 token_seconds: int) -> None:
        self.db = db
        self.clients = clients
        self.clock = clock
        self.token_seconds = token_seconds

    # the token endpoint ---------------------------------------------------------------------------
    def issue(self, form: Mapping[str, str], *, audience: str) -> Issued:
        """A token for a client-credentials request whose assertion is good for ``audience``
        (the token endpoint's URL). Raises TokenError."""
        if form.get("grant_type") != GRANT_TYPE:
            raise TokenError("unsupported_grant_type", f"grant_type must be {GRANT_TYPE!r}")
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise TokenError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE!r}")
        assertion = form.get("client_assertion", "")
        if not assertion or len(assertion) > MAX_ASSERTION_CHARS:
            raise TokenError("invalid_request", "client_assertion is missing or longer than "
                             f"{MAX_ASSERTION_CHARS:,} characters: send the signed JWT")
        client, claims = self._verified(assertion, audience)
        requested = form.get("scope", "").strip()
        if not requested:
            raise TokenError("invalid_scope", "scope is missing: ask for system scopes, e.g. "
                             "'system/CommunicationRequest.write system/Communication.read'", client=client.id)
        granted = [s for s in parse_scopes(requested) if s in client.scopes]
        if not granted:
            raise TokenError("invalid_scope", f"none of the scopes asked for is allowed to this client "
                             f"(it may have: {' '.join(client.scopes)})", client=client.id)
        now = self.clock()
        expires = now + dt.timedelta(seconds=self.token_seconds)
        token = secrets.token_urlsafe(32)
        with self.db.transaction():
            self._remember_jti(client.id, claims, now)
            self.db.execute("DELETE FROM api_tokens WHERE expires < ?", (iso(now),))
            self.db.execute("INSERT INTO api_tokens (hash, client_id, scopes, expires) VALUES (?, ?, ?, ?)",
                            (_digest(token), client.id, " ".join(granted), iso(expires)))
        return Issued(token=token, client_id=client.id, scopes=tuple(granted), expires_in=self.token_seconds)

    def _verified(self, assertion: str, audience: str) -> tuple[Client, dict[str, Any]]:
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except (jwt.PyJWTError, ValueError, TypeError):
            raise TokenError("invalid_client", "client_assertion is not a JWT (header.claims.signature)",
                             status=401) from None
        alg, kid, iss = header.get("alg"), header.get("kid"), unverified.get("iss")
        if alg not in ALGORITHMS:
            raise TokenError("invalid_client", f"the assertion is signed with {str(alg)[:20]!r}: use RS384 or ES384",
                             status=401)
        if not isinstance(kid, str) or not isinstance(iss, str) or not iss:
            raise TokenError("invalid_client", "the assertion needs 'kid' in its header and 'iss' (the client id) "
                             "in its claims", status=401)
        client = self.clients.get(iss)
        if client is None or client.revoked is not None:
            raise TokenError("invalid_client", "no such client, or it was revoked: ask the clinic to register "
                             "it (emrcomm clients add)", status=401)
        jwk = client.key(kid)
        if jwk is None or jwk.get("alg") != alg:
            raise TokenError("invalid_client", f"the client has no {alg} key with kid {kid[:80]!r}: sign with a key "
                             "whose public half was registered", status=401, client=client.id)
        try:
            key = jwt.PyJWK(dict(jwk), algorithm=alg).key
            claims: dict[str, Any] = jwt.decode(
                assertion, key, algorithms=[alg], audience=audience,
                # Times are checked below against the host's clock, not the system's.
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                         "require": ["iss", "sub", "aud", "exp", "jti"]})
        except jwt.InvalidAudienceError:
            raise TokenError("invalid_client", f"the assertion's aud must be the token endpoint, {audience}",
                             status=401, client=client.id) from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError("invalid_client", f"the assertion has no {exc.claim!r} claim: it needs iss and sub (the "
                             "client id), aud, exp and jti", status=401, client=client.id) from None
        except jwt.InvalidSignatureError:
            raise TokenError("invalid_client", f"the assertion's signature does not verify with the key registered "
                             f"as kid {kid[:80]!r}: sign with its private half", status=401, client=client.id) from None
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise TokenError("invalid_client", f"the assertion does not verify: {type(exc).__name__}",
                             status=401, client=client.id) from None
        if claims["sub"] != client.id:
            raise TokenError("invalid_client", "the assertion's sub must be the client id, as iss is", status=401,
                             client=client.id)
        self._check_times(claims, client.id)
        return client, claims

    def _check_times(self, claims: Mapping[str, Any], client: str) -> None:
        now = self.clock()
        exp = _instant(claims.get("exp"))
        if exp is None:
            raise TokenError("invalid_client", "the assertion's exp is not a number of seconds", status=401,
                             client=client)
        if exp <= now - LEEWAY:
            raise TokenError("invalid_client", "the assertion has expired: make a new one for each token request",
                             status=401, client=client)
        if exp > now + MAX_ASSERTION_LIFE + LEEWAY:
            raise TokenError("invalid_client", "the assertion's exp is more than five minutes ahead", status=401,
                             client=client)
        for name in ("nbf", "iat"):
            if name in claims:
                when = _instant(claims[name])
                if when is None or when > now + LEEWAY:
                    raise TokenError("invalid_client", f"the assertion's {name} is in the future (or not a number)",
                                     status=401, client=client)
        jti = claims["jti"]
        if not isinstance(jti, str) or not 1 <= len(jti) <= 256:
            raise TokenError("invalid_client", "the assertion's jti must be a string of 1 to 256 characters",
                             status=401, client=client)

    def _remember_jti(self, client: str, claims: Mapping[str, Any], now: dt.datetime) -> None:
        """Inside the token's transaction: a jti seen before is a replay."""
        self.db.execute("DELETE FROM api_assertions WHERE expires < ?", (iso(now - LEEWAY),))
        exp = _instant(claims["exp"]) or now
        added = self.db.execute("INSERT INTO api_assertions (client_id, jti, expires) VALUES (?, ?, ?) "
                                "ON CONFLICT (client_id, jti) DO NOTHING", (client, claims["jti"], iso(exp)))
        if added != 1:
            # SMART Backend Services: every failure to authenticate the client, a replay too, is invalid_client.
            raise TokenError("invalid_client", "this assertion was used before (its jti): make a new one for each "
                             "token request", status=401, client=client)

    # every other call -----------------------------------------------------------------------------
    def grant(self, token: str) -> Grant | None:
        """What ``token`` allows now; None when it is unknown, expired, or its client was revoked."""
        if not token or len(token) > 512:
            return None
        rows = self.db.query(
            "SELECT t.client_id, t.scopes, t.expires FROM api_tokens t JOIN api_clients c ON c.id = t.client_id "
            "WHERE t.hash = ? AND c.revoked IS NULL", (_digest(token),))
        if not rows:
            return None
        expires = parse_iso(rows[0]["expires"])
        if expires <= self.clock():
            return None
        return Grant(client_id=rows[0]["client_id"], scopes=frozenset(rows[0]["scopes"].split()), expires=expires)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _instant(value: Any) -> dt.datetime | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None
