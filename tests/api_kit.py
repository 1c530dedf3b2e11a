"""Building blocks for the FHIR API tests: client keys and signed assertions (PyJWT, as a
client library signs them), a registered client, tokens, and the API called in-process."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from emrcomm.api.auth import ASSERTION_TYPE
from emrcomm.api.clients import ClientRegistry
from emrcomm.api.scopes import ALL
from emrcomm.host import Host
from hostile_kit import InProcess

AUD = "http://portal.test/fhir/auth/token"  # what InProcess calls: host portal.test, scheme http
FHIR = (b"content-type", b"application/fhir+json")


class ClientKey:
    """A client's key pair: the private half signs assertions, the public half is registered."""

    def __init__(self, alg: str = "ES384", kid: str | None = None) -> None:
        self.alg = alg
        self.kid = kid or f"{alg.lower()}-{uuid.uuid4().hex[:8]}"
        self.private: Any = (ec.generate_private_key(ec.SECP384R1()) if alg == "ES384"
                             else rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def public_jwk(self) -> dict[str, Any]:
        algorithm = ECAlgorithm if self.alg == "ES384" else RSAAlgorithm
        jwk = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "alg": self.alg}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}

    def assertion(self, client_id: str, now: dt.datetime, *, aud: str = AUD, jti: str | None = None,
                  life: dt.timedelta = dt.timedelta(minutes=4), **claims: Any) -> str:
        body = {"iss": client_id, "sub": client_id, "aud": aud, "jti": jti or uuid.uuid4().hex,
                "exp": int((now + life).timestamp()), "iat": int(now.timestamp()), **claims}
        return jwt.encode(body, self.private, algorithm=self.alg, headers={"kid": self.kid})


def register(host: Host, key: ClientKey, scopes: Iterable[str] = ALL, name: str = "Test EMR") -> str:
    return ClientRegistry(host.storage.db, host.clock).add(name, key.jwks(), " ".join(scopes)).id


def token_form(client_id: str, assertion: str, scope: str) -> bytes:
    return urlencode({"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                      "client_assertion": assertion, "scope": scope}).encode()


class ApiClient:
    """The API in-process, as one registered client with a token for ``scopes``."""

    def __init__(self, host: Host, app: Any, scopes: Iterable[str] = ALL) -> None:
        self.host = host
        self.http = InProcess(app)
        self.key = ClientKey()
        self.client_id = register(host, self.key)
        answer = self.http.request("POST", "/fhir/auth/token", body=token_form(
            self.client_id, self.key.assertion(self.client_id, host.clock()), " ".join(scopes)),
            headers=[(b"content-type", b"application/x-www-form-urlencoded")])
        assert answer.status_code == 200, answer.text
        self.token = json.loads(answer.content)["access_token"]

    def auth(self) -> list[tuple[bytes, bytes]]:
        return [(b"authorization", f"Bearer {self.token}".encode())]

    def call(self, method: str, path: str, body: Any = None, *, query: str = "",
             headers: Iterable[tuple[bytes, bytes]] = (), raw: bytes | None = None) -> Any:
        data = raw if raw is not None else json.dumps(body).encode() if body is not None else b""
        extra = [FHIR] if body is not None and raw is None else []
        return self.http.request(method, path, query=query, body=data, headers=[*self.auth(), *extra, *headers])

    def close(self) -> None:
        self.http.close()
