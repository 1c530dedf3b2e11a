"""Real servers for the delivery tests, each on 127.0.0.1 and a free port, stopped by PID.

Ports: a server in this process binds port 0 itself (:func:`listening_socket`); a server process
that must be told its port (Kannel, Prism, Postfix) starts through :func:`start_retrying`, which
tries fresh ports when another process took one between choosing it and binding it.

- ``Kannel``: bearerbox + smsbox + fakesmsc (Debian ``kannel``, ``kannel-extras``); what
  fakesmsc received is read back from its log. bearerbox can be killed and started again on
  the same ports (its message store keeps what it had queued).
- ``Prism``: ``prism mock`` of Twilio's OpenAPI description (npm ``@stoplight/prism-cli``).
- ``ScriptedHTTPServer``: a small HTTP/1.1 server that answers what a test scripts (429 with
  Retry-After, 5xx, slow answers) and records what it was sent.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import os
import re
import signal
import socket
import ssl
import string
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import attrs
import requests

from listening import listens
from support import DATA, REPO

FAKESMSC = Path("/usr/lib/kannel/test/fakesmsc")
PRISM = REPO / "tests" / "node" / "node_modules" / ".bin" / "prism"
TWILIO_SPEC = DATA / "twilio" / "twilio_api_v2010.json"
KANNEL_CONF = REPO / "tests" / "kannel" / "kannel.conf"


T = TypeVar("T")
START_ATTEMPTS = 3
# How often a test's HTTP server looks for its stop: close() waits up to this long (the default
# 0.5 s, once per test, was ~30 s of every run of the suite).
POLL = 0.02


def free_port() -> int:
    """A port nobody listens on now. Another process may take it before the caller binds it:
    start servers that are given ports through :func:`start_retrying`."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_retrying(start: Callable[[], T], what: str, attempts: int = START_ATTEMPTS) -> T:
    """``start()`` a server that chooses its ports with :func:`free_port`, again with new ports
    when it fails (a port taken meanwhile); the last failure is raised. ``start`` cleans up after
    itself when it fails."""
    for attempt in range(1, attempts + 1):
        try:
            return start()
        except Exception as exc:
            if attempt == attempts:
                raise
            print(f"{what} did not start ({type(exc).__name__}: {exc}); again on other ports")
    raise AssertionError("unreachable")


def listening_socket() -> socket.socket:
    """A listening socket on 127.0.0.1 and a port of the kernel's choosing (no race), for a
    server in this process: ``uvicorn.Server.run(sockets=[sock])``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A port that refuses connections for as long as the block runs: bound and never listening,
    so no other process can start listening there meanwhile."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def healthy(port: int, pid: int | None = None) -> bool:
    """Whether `emrcomm serve` on 127.0.0.1:``port`` answers its health check; with ``pid``, the
    one that process runs (not another server that took the port first)."""
    if pid is not None and not listens(pid, port):
        return False
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def wait_until(check: Any, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"gave up after {timeout} s waiting for {what}")


class Process:
    """A server process we started, with its output in a log file; stopped by its PID only."""

    def __init__(self, argv: Sequence[str | Path], log: Path, cwd: Path | None = None) -> None:
        self.name = Path(argv[0]).name
        self.log = log
        self._out: IO[bytes] = log.open("wb")
        self.popen = subprocess.Popen([str(a) for a in argv], stdout=self._out, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, cwd=cwd, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int = signal.SIGTERM) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def wait(self, timeout: float = 10.0) -> None:
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.popen.wait(5)
        self._out.close()

    def stop(self, timeout: float = 10.0) -> None:
        self.signal(signal.SIGTERM)
        self.wait(timeout)


def stop_all(processes: Sequence[Process], timeout: float = 10.0) -> None:
    """SIGTERM every process first, then wait for each: their shutdowns overlap."""
    for p in processes:
        p.signal(signal.SIGTERM)
    for p in processes:
        p.wait(timeout)


# -- Kannel -------------------------------------------------------------------------------------

@attrs.frozen
class FakeSmscMessage:
    """One message as fakesmsc logged it: ``kind`` is ``text``, ``ucs-2`` or ``udh``; ``data``
    holds the octets (url-decoded for the encoded kinds)."""

    number: int
    sender: str
    receiver: str
    kind: str
    udh: bytes
    data: bytes


_GOT = re.compile(rb"Got message (\d+): <(.*)>\s*$")


def parse_fakesmsc_line(line: bytes) -> FakeSmscMessage | None:
    m = _GOT.search(line)
    if not m:
        return None
    fields = m.group(2).split(b" ", 3)
    sender, receiver, kind, rest = fields + [b""] * (4 - len(fields))
    udh = b""
    if kind == b"udh":
        udh_enc, _, data_enc = rest.partition(b" data ")
        udh = urllib.parse.unquote_to_bytes(udh_enc.replace(b"+", b" "))
        data = urllib.parse.unquote_to_bytes(data_enc.replace(b"+", b" "))
    elif kind in (b"ucs-2", b"data"):
        data = urllib.parse.unquote_to_bytes(rest.replace(b"+", b" "))
    else:
        data = rest
    return FakeSmscMessage(int(m.group(1)), sender.decode(), receiver.decode(), kind.decode(), udh, data)


def assemble(parts: Sequence[FakeSmscMessage]) -> bytes:
    """The octets of one message from its concatenated parts (UDH IEI 0: ref, total, sequence)."""
    if len(parts) == 1 and not parts[0].udh:
        return parts[0].data
    def seq(p: FakeSmscMessage) -> int:
        return p.udh[5]  # 05 00 03 ref total seq
    return b"".join(p.data for p in sorted(parts, key=seq))


KANNEL_LIMITS = "max-messages = 10\nconcatenation = true"  # the sendsms-user's, as docs/transports.md asks


class Kannel:
    """bearerbox, smsbox and (unless ``smsc=False``) fakesmsc, configured from tests/kannel.

    ``sendsms_limits``: the sendsms-user's max-messages and concatenation lines ("" for Kannel's
    defaults, which cut a long message); ``smsbox_options``: more lines for the smsbox group
    (``immediate-sendsms-reply = true`` makes smsbox say how many parts it made).
    """

    def __init__(self, directory: Path, *, password: str, username: str = "emrcomm", smsc: bool = True,
                 queue_limit: int = -1, sendsms_limits: str = KANNEL_LIMITS, smsbox_options: str = "") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.dir = directory
        self.username = username
        self.admin_password = os.urandom(8).hex()
        self.conf = directory / "kannel.conf"
        self.processes: list[Process] = []
        self.fakesmsc: Process | None = None
        self.generation = 1  # how many times the boxes were started; each start logs to files of its own
        self.handset_logs: list[Path] = []  # every fakesmsc's log, oldest first

        def start() -> None:
            self.ports = {name: free_port() for name in ("admin_port", "smsbox_port", "fake_port", "sendsms_port")}
            conf = string.Template(KANNEL_CONF.read_text(encoding="utf-8")).substitute(
                dir=directory, username=username, password=password, admin_password=self.admin_password,
                queue_limit=queue_limit, sendsms_limits=sendsms_limits, smsbox_options=smsbox_options, **self.ports)
            self.conf.write_text(conf, encoding="utf-8")
            try:
                self._start(smsc)
            except BaseException:
                self.stop()
                self.processes, self.fakesmsc = [], None
                raise

        start_retrying(start, "kannel")

    def _start(self, smsc: bool) -> None:
        suffix = "" if self.generation == 1 else f"-{self.generation}"
        bearerbox = Process(["bearerbox", self.conf], self.dir / f"bearerbox{suffix}.out")
        self.processes.append(bearerbox)
        wait_until(lambda: port_open(self.ports["smsbox_port"]) or not bearerbox.alive(), 15, "bearerbox")
        if smsc:
            # fakesmsc needs a message even with -m 0, or it waits for typed input (DESIGN.md).
            self.fakesmsc = Process([FAKESMSC, "-H", "127.0.0.1", "-r", str(self.ports["fake_port"]),
                                     "-i", "0", "-m", "0", "100 200 text unused"], self.dir / f"fakesmsc{suffix}.log")
            self.processes.append(self.fakesmsc)
            self.handset_logs.append(self.fakesmsc.log)
        smsbox = Process(["smsbox", self.conf], self.dir / f"smsbox{suffix}.out")
        self.processes.append(smsbox)
        wait_until(lambda: port_open(self.ports["sendsms_port"]) or not smsbox.alive(), 15, "smsbox")
        for p in self.processes:
            if not p.alive():
                said = p.log.read_bytes()[-600:].decode("utf-8", "replace") if p.log.exists() else ""
                raise RuntimeError(f"{p.name} exited at start; see {p.log}: ...{said}")
        if smsc:
            wait_until(self._smsc_online, 15, "the fake SMSC to connect")

    def _smsc_online(self) -> bool:
        try:
            status = requests.get(f"http://127.0.0.1:{self.ports['admin_port']}/status.txt",
                                  params={"password": self.admin_password}, timeout=2).text
        except requests.RequestException:
            return False
        return bool(re.search(r"fake\W.*online", status))

    @property
    def sendsms_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['sendsms_port']}/cgi-bin/sendsms"

    def received(self) -> list[FakeSmscMessage]:
        """Every message fakesmsc has received so far, in order (across restarts)."""
        return [m for log in self.handset_logs for m in self.received_by(log)]

    @staticmethod
    def received_by(log: Path) -> list[FakeSmscMessage]:
        """What the fakesmsc writing ``log`` received, in order."""
        lines = log.read_bytes().splitlines() if log.exists() else []
        return [m for m in map(parse_fakesmsc_line, lines) if m is not None]

    def crash(self) -> None:
        """SIGKILL bearerbox. The fake SMSC's link goes down with it (fakesmsc exits), and smsbox,
        which restarts itself when bearerbox goes, is stopped as a supervisor would before
        starting the boxes again (in that restart it sometimes leaves SIGTERM unanswered and is
        killed after 10 s: bearerbox is then down that long, else about a second); each is
        stopped by its PID."""
        bearerbox, *others = self.processes
        bearerbox.signal(signal.SIGKILL)
        bearerbox.wait()
        stop_all(others)
        self.processes = []

    def restart(self, attempts: int = 3) -> None:
        """Start the boxes again on the same ports (the clients were told them), after :meth:`crash`.
        A box that exits as it starts (rarely smsbox, a moment after its predecessor was killed)
        is started again with the others, as a supervisor would, a second later; what it said is
        printed first."""
        smsc = self.fakesmsc is not None
        for attempt in range(1, attempts + 1):
            self.generation += 1
            try:
                self._start(smsc)
                return
            except Exception as exc:
                stop_all(self.processes)
                self.processes = []
                if attempt == attempts:
                    self.stop()
                    raise
                print(f"kannel restart {attempt}: {exc}; again")
                time.sleep(1.0)

    def wait_for(self, receiver: str, count: int = 1, timeout: float = 10.0) -> list[FakeSmscMessage]:
        """The first ``count`` messages (segments) fakesmsc received for ``receiver``."""
        found: list[FakeSmscMessage] = []

        def enough() -> bool:
            found[:] = [m for m in self.received() if m.receiver == receiver]
            return len(found) >= count

        wait_until(enough, timeout, f"{count} message(s) for the test number at fakesmsc", interval=0.1)
        return found[:count]

    def stop(self) -> None:
        stop_all(self.processes[::-1])


# -- Prism --------------------------------------------------------------------------------------

class Prism:
    """``prism mock`` of an OpenAPI description on 127.0.0.1."""

    def __init__(self, directory: Path, spec: Path = TWILIO_SPEC) -> None:
        directory.mkdir(parents=True, exist_ok=True)

        def start() -> None:
            self.port = free_port()
            self.process = Process([PRISM, "mock", "-h", "127.0.0.1", "-p", str(self.port), spec],
                                   directory / "prism.log")
            try:
                wait_until(lambda: port_open(self.port) or not self.process.alive(), 90, "prism mock")
                if not self.process.alive():
                    raise RuntimeError(f"prism exited at start; see {self.process.log}")
            except BaseException:
                self.process.stop()
                raise

        start_retrying(start, "prism")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.stop()


# -- a scripted HTTP server -----------------------------------------------------------------------

@attrs.frozen
class Reply:
    """``trickle``: answer one byte every that many seconds, for as long as the client reads (up
    to a minute): of a body that never ends (``trickle_in="body"``) or of a header line that
    never ends (``"headers"``), or of a body with no length that ends with the connection
    (``"close"``). Each read is quick, so only an overall deadline stops it."""

    status: int = 200
    body: bytes = b"ok"
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    trickle: float = 0.0
    trickle_in: str = "body"


@attrs.frozen
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int = 0

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)

    @property
    def form(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(self.body.decode("utf-8"))


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1  # one buffered write per response, flushed once (DESIGN.md field notes)
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        owner = self.server.owner
        reply = owner.record(Seen(self.command, self.path, dict(self.headers.items()), body,
                                  self.client_address[1]))
        if reply.delay:
            time.sleep(reply.delay)
        if reply.trickle:
            self._trickle(reply)
            return
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def _trickle(self, reply: Reply) -> None:
        self.close_connection = True
        if reply.trickle_in == "headers":
            head = f"HTTP/1.1 {reply.status} OK\r\nX-Slow: ".encode()
        elif reply.trickle_in == "close":  # a body that ends when the connection does (no length)
            head = f"HTTP/1.1 {reply.status} OK\r\nConnection: close\r\n\r\n".encode()
        else:
            head = f"HTTP/1.1 {reply.status} OK\r\nContent-Length: 100000000\r\n\r\n".encode()
        stop = time.monotonic() + 60
        try:
            self.wfile.write(head)
            self.wfile.flush()
            while time.monotonic() < stop and not self.server.owner.closing.is_set():
                time.sleep(reply.trickle)
                self.wfile.write(b"x")
                self.wfile.flush()
        except OSError:
            return  # the client gave up

    do_GET = do_POST = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: ScriptedHTTPServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client gone mid-request (the fault tests kill workers on purpose) is no error of
        the server's; anything else is printed as usual."""
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class ScriptedHTTPServer:
    """Answers the scripted replies in order, then ``default``; records every request. With
    ``tls`` (a server-side SSLContext) it speaks HTTPS, as ``https://localhost:port``."""

    def __init__(self, default: Reply = Reply(), *, tls: ssl.SSLContext | None = None) -> None:
        self.default = default
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self._script: deque[Reply] = deque()
        self.seen: list[Seen] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._tls = tls
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(POLL,), daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        if self._tls is not None:
            return f"https://localhost:{self._server.server_address[1]}"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script = deque(replies)
            self.seen = []

    def record(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            return self._script.popleft() if self._script else self.default

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Seen]:
        wait_until(lambda: len(self.seen) >= count, timeout, f"{count} request(s) at the scripted server")
        return list(self.seen)

    def close(self) -> None:
        self.closing.set()
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def scripted(default: Reply = Reply()) -> Iterator[ScriptedHTTPServer]:
    server = ScriptedHTTPServer(default)
    try:
        yield server
    finally:
        server.close()


def serve_ready(port: int, process: subprocess.Popen[bytes], seconds: float = 60) -> bool:
    """Whether ``emrcomm serve`` (``process``) answers /healthz on ``port`` within ``seconds``;
    False at once when it has ended (most likely: the port was taken meanwhile)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    return True
            finally:
                connection.close()
        time.sleep(0.1)
    return False
