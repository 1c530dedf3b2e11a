"""Building blocks for the portal tests: a clinician's result note, the notice's link, an EMR's own
portal, and a real server on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from emrcomm import Channel, Delivery, Receipt, hookimpl
from emrcomm.host import Host
from emrcomm.model import Category, Message, Outcome, Request
from emrcomm_portal.storage import PortalStore
from servers import listening_socket

# What a clinician writes, and the patient's date of birth as the directory has it (support.patient).
NOTE = "Your HbA1c is 8.1%. Increase metformin to 1000 mg twice daily and repeat the test in 3 months."
NOTE_WORDS = ("HbA1c", "metformin", "1000 mg")
BIRTH_DATE = dt.date(1980, 4, 12)
WRONG_DATE = dt.date(1981, 4, 12)
PORTAL_URL = "https://portal.riverside.example"
LINK = re.compile(r"https://\S+/m/(\S+)")


def send_note(host: Host, rid: str = "note-1", patient: str = "Patient/on-en", text: str = NOTE,
              category: Category = Category.RESULTS_AVAILABLE, **extra: Any) -> Outcome:
    return host.send(Request(patient, category, id=rid, text=text, **extra))


def sms_lines(host: Host) -> list[dict[str, str]]:
    path = host.config.base_dir / "out" / "sms.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def notice_for(host: Host, outcome: Outcome) -> dict[str, str]:
    """The SMS notice the sink received for this outcome (its record id is the SMS key)."""
    [line] = [x for x in sms_lines(host) if x["id"] in outcome.record_ids]
    return line


def link_in(text: str) -> str:
    match = LINK.search(text)
    assert match, "the notice carries no portal link"
    return match.group(0)


def token_in(text: str) -> str:
    return LINK.search(text).group(1)  # type: ignore[union-attr]


def messages(host: Host) -> PortalStore:
    """The portal plugin's tables in the host's database."""
    return PortalStore(host.storage.db)


def database_bytes(host: Host) -> bytes:
    """The SQLite file and its write-ahead log, as bytes on disk (on PostgreSQL: every row)."""
    from support import STORE_URL, store_bytes, unpacked

    path = host.config.store_path
    if STORE_URL is not None:
        return store_bytes(path)
    files = b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    return files + unpacked(path)  # record facts and audit entries are kept packed


# An EMR that keeps messages in its own portal --------------------------------------------------
class EmrPortalTransport:
    """The EMR's portal: it keeps the message (here, in memory) and links to its own page."""

    def __init__(self) -> None:
        self.messages: dict[str, Message] = {}

    def send(self, delivery: Delivery) -> Receipt:
        message, address, key = delivery.message, delivery.address, delivery.key
        self.messages[key] = message
        return Receipt(channel="portal", address=address, provider_id=key, status="stored")

    def link_for(self, message_id: str) -> str:
        return f"{PORTAL_URL}/emr/inbox/{message_id}"


class EmrPortal:
    """An EMR's adapter plugin contributing its own secure portal as the ``portal`` channel."""

    transport = EmrPortalTransport()

    def __init__(self, context: Any) -> None:
        type(self).transport = EmrPortalTransport()

    @hookimpl
    def emrcomm_register_channels(self) -> list[Channel]:
        return [Channel(name="portal", secure=True, medium="ONLINEWRIT", transport=self.transport,
                        holds_content=True)]


# A real server ------------------------------------------------------------------------------------
@contextmanager
def running_server(host: Host) -> Iterator[str]:
    """``emrcomm serve``'s app under uvicorn on 127.0.0.1, in a thread; yields its base URL."""
    import uvicorn

    from emrcomm.web import create_app

    sock = listening_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(host), access_log=False, log_config=None, server_header=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="emrcomm-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()
