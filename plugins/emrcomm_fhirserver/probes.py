"""What ``emrcomm doctor`` tries for a FHIR server: its CapabilityStatement (``/metadata``: is it
there, is it R4), then one search with the token, of what the plugin reads or writes. Nothing is
written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import requests

from emrcomm import Probe, ProbeFailed
from emrcomm_fhirserver.client import FhirClient, outcome_text


def probe(client: FhirClient, plugin: str, resource_type: str, use: str) -> Probe:
    """``use`` says what the plugin does there, for the report: ``records``, ``patients``."""
    return Probe(f"FHIR server ({use}) {client.base_url}", lambda: check(client, plugin, resource_type))


def check(client: FhirClient, plugin: str, resource_type: str) -> Iterator[str]:
    client.authorize()
    metadata = _get(client, "metadata", plugin)
    yield "connected"
    _refused(metadata, client, plugin)
    body = _json(metadata)
    if metadata.status_code != 200 or body.get("resourceType") != "CapabilityStatement":
        raise ProbeFailed(f"/metadata answered HTTP {metadata.status_code} without a CapabilityStatement: is "
                          f"plugins.{plugin}.base_url the server's FHIR base (it usually ends in /fhir or /r4)?")
    version = str(body.get("fhirVersion") or "unknown")
    if not version.startswith("4.0"):
        raise ProbeFailed(f"the server speaks FHIR {version}; emrcomm needs R4 (4.0.x): check "
                          f"plugins.{plugin}.base_url")
    software = (body.get("software") or {}).get("name")
    yield f"FHIR {version}" + (f" ({software})" if software else "")
    search = _get(client, f"{resource_type}?_count=1", plugin)
    _refused(search, client, plugin)
    if search.status_code != 200:
        raise ProbeFailed(f"a {resource_type} search answered HTTP {search.status_code} "
                          f"({outcome_text(_json(search))})")
    yield f"token accepted ({resource_type} search)" if "Authorization" in client.session.headers \
        else f"{resource_type} search answered (no token set)"


def _get(client: FhirClient, path: str, plugin: str) -> requests.Response:
    response = _once(client, path, plugin)
    if response.status_code == 401 and client.renewed():  # renewed in its file or variable, as filing does
        return _once(client, path, plugin)
    return response


def _once(client: FhirClient, path: str, plugin: str) -> requests.Response:
    try:
        return client.session.get(f"{client.base_url}/{path}", timeout=client.timeout, allow_redirects=False)
    except requests.exceptions.SSLError:
        raise ProbeFailed(f"TLS: the server's certificate is not trusted here: set plugins.{plugin}.ca_bundle "
                          "to the CA that signed it") from None
    except requests.Timeout:
        raise ProbeFailed(f"no answer within {client.timeout:g} s: check plugins.{plugin}.base_url") from None
    except requests.ConnectionError as exc:
        reason = "connection refused" if "refused" in str(exc).lower() else "cannot reach it"
        raise ProbeFailed(f"cannot connect ({reason}): is the server running, and is plugins.{plugin}.base_url "
                          "right?") from None


def _refused(response: requests.Response, client: FhirClient, plugin: str) -> None:
    if 300 <= response.status_code < 400:
        raise ProbeFailed(f"HTTP {response.status_code}: the server redirects, and emrcomm never follows a redirect: "
                          f"set plugins.{plugin}.base_url to the address the server answers at itself")
    if response.status_code in (401, 403):
        said = f"token refused (HTTP {response.status_code}): check plugins.{plugin}.token"
        source = client.token_source or ""
        if response.status_code == 401 and source.startswith("the file "):
            raise ProbeFailed(f"{said}: the token in {source} was read again and is refused too; renew it there")
        raise ProbeFailed(f"{said} ({source})" if source else said)


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
