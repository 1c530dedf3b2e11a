"""What ``emrcomm doctor`` tries for the SMS channel: the gateway's sendsms URL with the
configured user (Kannel), the account with its auth token (Twilio), or the sink's folder. No
message is sent: Kannel is asked to send to nobody, which it refuses after checking the user;
Twilio is asked for the account itself.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from emrcomm import Probe, ProbeFailed

from .filesink import FileSink
from .http import Answer, Prepared, ProviderClient, first_line
from .kannel import KannelTransport
from .twilio import TwilioTransport


def probe(transport: object, plugin: str) -> Probe | None:
    """The probe of the SMS channel's transport (None for a transport of another kind)."""
    if isinstance(transport, KannelTransport):
        return Probe(f"SMS gateway (Kannel) {_origin(transport.url, path=True)}", lambda: kannel(transport, plugin))
    if isinstance(transport, TwilioTransport):
        return Probe(f"SMS provider (Twilio) {_origin(transport.url)}, account {transport.account_sid}",
                     lambda: twilio(transport, plugin))
    if isinstance(transport, FileSink):
        return Probe(f"SMS file sink {transport.path}", lambda: sink(transport.path, plugin))
    return None


def kannel(transport: KannelTransport, plugin: str) -> Iterator[str]:
    # The user's headers, without a receiver: smsbox checks the user first, then refuses to send.
    headers = transport.headers("", "probe", "GSM-7")
    headers.pop("X-Kannel-To")
    answer = exchange(transport.client, transport.client.prepare("POST", transport.url, headers=headers, data=b""),
                      f"plugins.{plugin}.kannel.url")
    yield "connected"
    said = first_line(answer)
    if answer.status_code in (401, 403) and "authori" in said.lower():
        raise ProbeFailed(f"user refused (HTTP {answer.status_code} {said}): check plugins.{plugin}.kannel.username "
                          "and password, and the sendsms-user group's user-allow-ip in kannel.conf")
    if answer.status_code == 400 and "receiver" in said.lower():
        yield "user accepted (nothing sent)"
        return
    if answer.status_code == 404:
        raise ProbeFailed(f"no sendsms there (HTTP 404 {said}): plugins.{plugin}.kannel.url should be smsbox's "
                          "sendsms-port and path, e.g. http://127.0.0.1:13013/cgi-bin/sendsms")
    raise ProbeFailed(f"unexpected answer (HTTP {answer.status_code} {said}): is plugins.{plugin}.kannel.url "
                      "a Kannel smsbox?")


def twilio(transport: TwilioTransport, plugin: str) -> Iterator[str]:
    transport.authenticate()
    account = transport.url.removesuffix("/Messages.json") + ".json"
    answer = exchange(transport.client, transport.client.prepare("GET", account),
                      f"plugins.{plugin}.twilio.base_url")
    yield "connected"
    try:
        body = answer.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    code = f", Twilio error {body['code']}" if "code" in body else ""
    if answer.status_code in (401, 403):
        raise ProbeFailed(f"credentials refused (HTTP {answer.status_code}{code}): check "
                          f"plugins.{plugin}.twilio.account_sid and auth_token")
    if answer.status_code == 404:
        raise ProbeFailed(f"no such account (HTTP 404{code}): check plugins.{plugin}.twilio.account_sid")
    if answer.status_code != 200:
        raise ProbeFailed(f"unexpected answer (HTTP {answer.status_code}{code}): is plugins.{plugin}.twilio.base_url "
                          "Twilio's API?")
    yield "credentials accepted"
    status = body.get("status")
    if status not in (None, "active"):
        raise ProbeFailed(f"the account is {status}: it cannot send; see the Twilio console")
    if status == "active":
        yield "account active"


def sink(path: Path, plugin: str) -> Iterator[str]:
    yield "nothing leaves this machine (messages are written to this file)"
    folder = next(p for p in (path.parent, *path.parent.parents) if p.exists())
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ProbeFailed(f"{folder} is not writable by this user: check plugins.{plugin}.path")
    yield "writable"


def exchange(client: ProviderClient, prepared: Prepared, setting: str) -> Answer:
    """One request to the provider, its failures in words (the same pool, proxy and CAs as sending)."""
    where = _origin(prepared.url)
    try:
        return client.exchange(prepared)
    except ProxyError:
        raise ProbeFailed(f"the proxy would not connect to {where}: check HTTPS_PROXY / HTTP_PROXY / NO_PROXY") \
            from None
    except NewConnectionError as exc:
        reason = "connection refused" if "refused" in str(exc).lower() else "cannot reach it"
        raise ProbeFailed(f"cannot connect to {where} ({reason}): is the service running, and is {setting} right?") \
            from None
    except SSLError as exc:
        cause = exc.args[0] if exc.args else None
        if isinstance(cause, ssl.SSLCertVerificationError | ssl.CertificateError):
            raise ProbeFailed(f"TLS: the certificate of {where} is not trusted here ({cause}): set REQUESTS_CA_BUNDLE "
                              "to the CA that signed it") from None
        raise ProbeFailed(f"TLS with {where} failed ({type(cause).__name__ if cause else 'SSLError'})") from None
    except ConnectTimeoutError:
        raise ProbeFailed(f"no connection to {where} within {client.timeouts[0]:g} s: a firewall, or the wrong "
                          f"address in {setting}?") from None
    except ReadTimeoutError:
        raise ProbeFailed(f"connected to {where}, but no answer within {client.timeouts[1]:g} s") from None
    except (HTTPError, OSError) as exc:
        raise ProbeFailed(f"the connection to {where} broke ({type(exc).__name__})") from None


def _origin(url: str, *, path: bool = False) -> str:
    """Where a URL points, as people read it: no credentials, no query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    shown = f"{parts.scheme}://{f'[{host}]' if ':' in host else host}" + (f":{parts.port}" if parts.port else "")
    return shown + (parts.path if path else "")
