"""Mail servers for the SMTP tests, on 127.0.0.1: aiosmtpd (STARTTLS required, AUTH, scripted
refusals) in this process, and Debian postfix as a real MTA in a private configuration folder.
Certificates come from a throw-away CA made with trustme.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from servers import free_port, port_open, start_retrying, wait_until

USERNAME = "clinic-relay"


def through_relay(config: str, relay: SmtpServer, ca: CertificateAuthority, password_file: Path) -> str:
    """``config`` (tests/support.py's BASE_CONFIG or one made from it) with its email written to
    ``relay`` over STARTTLS as the clinic's relay account, instead of to a folder."""
    return config.replace('[plugins.email]\ndirectory = "out/email"\n', f"""[plugins.email]
transport = "smtp"
from = "Riverside Family Health <noreply@riverside.example>"
[plugins.email.smtp]
host = "localhost"
port = {relay.port}
username = "{USERNAME}"
password = {{file = "{password_file}"}}
ca_file = "{ca.ca_file}"
timeout = 10
""")


@attrs.frozen
class Received:
    """One message as the server got it: envelope, raw content and how the session was secured."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    tls: bool
    authenticated_as: str | None


class RecordingHandler:
    """Keeps what arrives; refuses the recipients and messages a test scripts, by local part."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.rcpt_replies: dict[str, str] = {}  # by local part; "*" for every recipient
        self.data_replies: dict[str, str] = {}
        self.data_delay = 0.0  # seconds to sit on a message, once kept, before answering
        self._lock = threading.Lock()

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        reply = self.rcpt_replies.get(address.split("@")[0]) or self.rcpt_replies.get("*")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        local = envelope.rcpt_tos[0].split("@")[0] if envelope.rcpt_tos else ""
        if local in self.data_replies:
            return self.data_replies[local]
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        content = envelope.original_content or envelope.content or b""  # bytes: decode_data is off
        raw = content if isinstance(content, bytes) else content.encode("utf-8")
        with self._lock:
            self.received.append(Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), raw,
                                          self._encrypted(server, session), login if session.authenticated else None))
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        return "250 2.0.0 Ok: queued as TEST1"

    @staticmethod
    def _encrypted(server: SMTP, session: Session) -> bool:
        # session.ssl is set by STARTTLS; with implicit TLS the transport itself is the TLS one
        transport = server.transport
        return session.ssl is not None or (transport is not None and transport.get_extra_info("ssl_object") is not None)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        wait_until(lambda: len(self.received) >= count, timeout, f"{count} message(s) at the SMTP server", 0.05)
        return list(self.received)


class CertificateAuthority:
    """A private CA and a server certificate for localhost / 127.0.0.1."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.ca = trustme.CA()
        self.cert = self.ca.issue_cert("localhost", "127.0.0.1")
        self.ca_file = folder / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_file))
        self.cert_file = folder / "server.pem"
        self.key_file = folder / "server.key"
        self.cert.cert_chain_pems[0].write_to_path(str(self.cert_file))
        self.cert.private_key_pem.write_to_path(str(self.key_file))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.cert.configure_cert(context)
        return context


class SmtpServer:
    """An aiosmtpd Controller on 127.0.0.1.

    ``starttls``: offer STARTTLS and require it before anything else; ``implicit_tls``: TLS from
    the first byte; ``password``: offer AUTH (only over TLS) and require it.
    """

    def __init__(self, ca: CertificateAuthority | None = None, *, starttls: bool = True, implicit_tls: bool = False,
                 password: str | None = None) -> None:
        self.handler = RecordingHandler()
        self.password = password
        kwargs: dict[str, Any] = {}
        if password is not None:
            # aiosmtpd does not count implicit TLS as TLS when it decides to offer AUTH, so there
            # AUTH is offered without that check (and not enforced: the test checks it was used).
            kwargs.update(authenticator=self._authenticate, auth_required=not implicit_tls,
                          auth_require_tls=not implicit_tls)
        if ca is not None and starttls and not implicit_tls:
            kwargs.update(tls_context=ca.server_context(), require_starttls=True)
        if ca is not None and implicit_tls:
            kwargs.update(ssl_context=ca.server_context())

        def start() -> None:
            self.port = free_port()  # aiosmtpd checks it is up by connecting to the port it was given
            self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                         server_hostname="localhost", **kwargs)
            self.controller.start()

        start_retrying(start, "smtp server")

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == USERNAME
              and auth_data.password.decode() == self.password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def stop(self) -> None:
        self.controller.stop()


# -- relays that misbehave ---------------------------------------------------------------------

@contextlib.contextmanager
def _relay(converse: Callable[[socket.socket, threading.Event], None]) -> Iterator[int]:
    """A one-connection relay on 127.0.0.1: the port; ``converse`` speaks with the client until
    it hangs up or the ``Event`` (set as the block ends) says to stop."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                converse(conn, stop)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        thread.join(5)


def _answer(conn: socket.socket, answered: int) -> None:
    """Greet, then answer the first ``answered`` commands (the last is read, not answered)."""
    conn.sendall(b"220 relay ready\r\n")
    reader = conn.makefile("rb")
    for _ in range(answered):
        reader.readline()
        conn.sendall(b"250 relay\r\n")
    reader.readline()


def dripping_relay(answered: int) -> contextlib.AbstractContextManager[int]:
    """A relay that answers its greeting and first ``answered`` commands at once (none when 0:
    the greeting itself drips), then writes its next reply a byte every 50 ms until the client
    hangs up: no single read ever waits long enough to time out."""

    def converse(conn: socket.socket, stop: threading.Event) -> None:
        if answered:
            _answer(conn, answered)
        conn.sendall(b"250-" if answered else b"220-")
        while not stop.wait(0.05):
            conn.sendall(b"x")

    return _relay(converse)


def flooding_relay(answered: int, flood: int = 4 * 1024 * 1024) -> contextlib.AbstractContextManager[int]:
    """A relay that greets and answers its first ``answered`` commands, then answers the next
    with ``flood`` bytes of "250-…" lines (a reply that never says it is over) and waits for the
    client to hang up."""

    def converse(conn: socket.socket, stop: threading.Event) -> None:
        _answer(conn, answered)
        line = b"250-" + b"x" * 996 + b"\r\n"
        for _ in range(flood // len(line)):
            conn.sendall(line)
        stop.wait(30)

    return _relay(converse)


def refusing_relay(greeting: bytes) -> contextlib.AbstractContextManager[int]:
    """A relay that greets with ``greeting`` (a 421 or 554 line) and then, as RFC 5321 section
    3.1 asks of a server that refuses service, answers 503 to all but QUIT."""

    def converse(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(greeting)
        for line in conn.makefile("rb"):
            conn.sendall(b"221 bye\r\n" if line.upper().startswith(b"QUIT") else b"503 5.5.1 no service\r\n")

    return _relay(converse)


# -- postfix --------------------------------------------------------------------------------------

MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    """A postfix instance of its own (``postfix -c DIR``): smtpd on 127.0.0.1:PORT with STARTTLS
    required (our CA's certificate), relaying everything to ``relay_port`` on 127.0.0.1."""

    def __init__(self, ca: CertificateAuthority, relay_port: int) -> None:
        # Postfix's daemons run as user postfix and must reach the queue: pytest's temporary
        # folders are private to root, so the instance gets a folder of its own, removed at stop.
        folder = Path(tempfile.mkdtemp(prefix="emrcomm-postfix-"))
        folder.chmod(0o755)
        self.dir = folder
        self.config = folder / "etc"
        self.queue = folder / "spool"
        self.data = folder / "lib"
        for d in (self.config, self.queue, self.data):
            d.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.data, "postfix")  # the master's lock file and the TLS caches live here
        shutil.copy(ca.cert_file, self.config / "server.pem")
        shutil.copy(ca.key_file, self.config / "server.key")
        (self.config / "server.key").chmod(0o600)
        self.log = folder / "maillog"
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": self.data,
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "localhost",
            "mydomain": "localdomain",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "relayhost": f"[127.0.0.1]:{relay_port}",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "smtpd_tls_security_level": "encrypt",
            "smtpd_tls_cert_file": self.config / "server.pem",
            "smtpd_tls_key_file": self.config / "server.key",
            "smtp_tls_security_level": "none",
            "maillog_file": self.log,
            "maillog_file_prefixes": folder,
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "smtputf8_enable": "no",
            "biff": "no",
            "default_process_limit": "10",
        }
        (self.config / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()), encoding="utf-8")

        def start() -> None:
            self.port = free_port()
            (self.config / "master.cf").write_text(MASTER_CF.format(port=self.port), encoding="utf-8")
            try:
                self._postfix("check")
                self._postfix("start")
                wait_until(lambda: port_open(self.port), 30, "postfix smtpd")
            except BaseException:
                self._stop_master()
                raise

        try:
            start_retrying(start, "postfix")
        except BaseException:
            self.stop()
            raise

    def _postfix(self, command: str) -> None:
        done = subprocess.run(["postfix", "-c", str(self.config), command], capture_output=True, text=True,
                              timeout=60, check=False)
        if done.returncode != 0:
            log = self.log.read_text(encoding="utf-8", errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"postfix {command} failed: {done.stderr.strip()}\n{log}")

    def master_pid(self) -> int | None:
        pid_file = self.queue / "pid" / "master.pid"
        try:
            return int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _stop_master(self) -> None:
        """``postfix stop`` signals the master of this instance only (its PID file), which ends its children."""
        pid = self.master_pid()
        if pid is not None:
            subprocess.run(["postfix", "-c", str(self.config), "stop"], capture_output=True, timeout=60, check=False)
            wait_until(lambda: not Path(f"/proc/{pid}").exists(), 20, "the postfix master to exit")

    def stop(self) -> None:
        self._stop_master()
        shutil.rmtree(self.dir, ignore_errors=True)
