"""Building blocks for the hostile-input tests: a clinic with every callback configured, the
``emrcomm serve`` app called in-process (the whole app and its middleware, without a socket),
and what the logs must never hold."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from support import BASE_CONFIG

SECRET = "callback-secret-5d1e"
TOKEN = "twilio-test-token-7f3a"
BASE = "https://emrcomm.clinic.example/callbacks"
NUMBER = "+16135550123"  # Patient/on-en
FORM = (b"content-type", b"application/x-www-form-urlencoded")


def kannel_config(tmp_path: Path, extra: str = "") -> str:
    """The test clinic with Kannel callbacks signed by SECRET (the SMS sink stays a file)."""
    (tmp_path / "callback-secret").write_text(SECRET, encoding="utf-8")
    return BASE_CONFIG.replace('[plugins.sms]\npath = "out/sms.jsonl"\n', f"""[plugins.sms]
path = "out/sms.jsonl"
callback_url = "{BASE}"
callback_secret = {{file = "{tmp_path / 'callback-secret'}"}}
{extra}""")


def twilio_config(tmp_path: Path) -> str:
    """The test clinic sending through Twilio (queue mode: nothing leaves), callbacks checked
    against TOKEN."""
    (tmp_path / "twilio-token").write_text(TOKEN, encoding="utf-8")
    return BASE_CONFIG.replace('[plugins.sms]\npath = "out/sms.jsonl"\n', f"""[plugins.sms]
transport = "twilio"
from = "+16135550100"
callback_url = "{BASE}"
[plugins.sms.twilio]
account_sid = "AC0123456789abcdef0123456789abcdef"
auth_token = {{file = "{tmp_path / 'twilio-token'}"}}
base_url = "http://127.0.0.1:9"
""") + '\n[delivery]\nmode = "queue"\n'


class Answer:
    """One response: status, headers (lower-case names), body."""

    def __init__(self, status: int, headers: Sequence[tuple[bytes, bytes]], body: bytes) -> None:
        self.status_code = status
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers}
        self.content = body

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class InProcess:
    """Calls an ASGI app the way uvicorn does (one request, one body), from a given client
    address, without a socket: fast enough for thousands of generated requests."""

    def __init__(self, app: Any, client: str = "127.0.0.1") -> None:
        self.app = app
        self.client = client
        self.loop = asyncio.new_event_loop()

    def close(self) -> None:
        self.loop.close()

    def request(self, method: str, path: str, *, query: bytes | str = b"", body: bytes = b"",
                headers: Iterable[tuple[bytes, bytes]] = (), client: str | None = None,
                timeout: float = 30) -> Answer:
        query = query.encode("utf-8") if isinstance(query, str) else query
        # What uvicorn hands on: the path percent-decoded as UTF-8, undecodable bytes replaced.
        path = path.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path,
            "raw_path": path.encode("utf-8"), "query_string": query, "root_path": "",
            "headers": [(b"host", b"portal.test"), *headers, (b"content-length", str(len(body)).encode())],
            "client": (client or self.client, 50000), "server": ("127.0.0.1", 8000),
        }
        delivered = False
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)  # the client never disconnects while a handler waits
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        self.loop.run_until_complete(asyncio.wait_for(self.app(scope, receive, send), timeout))
        return Answer(start["status"], start.get("headers", []), b"".join(chunks))

    def get(self, path: str, params: dict[str, str] | None = None, **kw: Any) -> Answer:
        return self.request("GET", path, query=urlencode(params or {}), **kw)

    def post(self, path: str, form: dict[str, str], headers: Iterable[tuple[bytes, bytes]] = (),
             **kw: Any) -> Answer:
        return self.request("POST", path, body=urlencode(form).encode("utf-8"), headers=[FORM, *headers], **kw)


def server_log(records: Iterable[logging.LogRecord]) -> str:
    """What the server side logged: messages and any traceback text."""
    out = []
    for r in records:
        if r.name.startswith(("emrcomm", "uvicorn")):
            out.append(r.getMessage())
            if r.exc_info or r.exc_text:
                out.append("Traceback " + str(r.exc_text or r.exc_info))
    return "\n".join(out)
