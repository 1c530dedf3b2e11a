"""An overall deadline for one exchange with a server.

Socket timeouts apply to each read: a server that answers one byte a second (a greeting line, a
header, a body that never ends) never trips them. A :class:`Deadline` shuts down the sockets it
watches when its time is up, so the read blocked on one returns at once and the exchange fails
as if the server had hung up. :func:`exchange` does one HTTP request (requests) under a deadline
and reads at most ``body_limit`` bytes of its answer; SMTP watches ``smtplib.SMTP.sock``.

Not covered: a TLS handshake in progress (the socket is not reachable until it completes); it is
bounded by the per-read timeout alone.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter

__all__ = ["AnswerTooLarge", "Deadline", "DeadlinePassed", "deadline_session", "exchange"]


class Deadline:
    """``with Deadline(seconds) as d: d.watch(lambda: conn.sock); ...``: when ``seconds`` pass
    before the block ends, every watched socket is shut down (``expired`` is then true)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._lock = threading.Lock()
        self._done = False
        self._watched: list[Callable[[], socket.socket | None]] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._timer.cancel()
        with self._lock:
            self._done = True
            self._watched.clear()

    def watch(self, socket_of: Callable[[], socket.socket | None]) -> None:
        """Shut down ``socket_of()`` (whatever socket it gives then) when the time is up."""
        with self._lock:
            if self._done:
                return
            if self.expired:
                _shut(socket_of())
            else:
                self._watched.append(socket_of)

    def _expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for socket_of in self._watched:
                _shut(socket_of())


def _shut(sock: socket.socket | None) -> None:
    if sock is None:
        return
    with contextlib.suppress(OSError):  # closed already
        sock.shutdown(socket.SHUT_RDWR)


class DeadlinePassed(requests.Timeout):
    """The whole exchange took longer than its deadline."""


class AnswerTooLarge(requests.RequestException):
    """The answer's body was longer than the caller reads."""


# The deadline of the exchange running on this thread: the pools below hand it each connection.
_current = threading.local()


def _watched(conn: Any) -> Any:
    deadline: Deadline | None = getattr(_current, "deadline", None)
    if deadline is not None:
        deadline.watch(lambda: getattr(conn, "sock", None))
    return conn


class _Pool(urllib3.HTTPConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        return _watched(super()._get_conn(timeout))


class _TlsPool(urllib3.HTTPSConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        return _watched(super()._get_conn(timeout))


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TlsPool}


def deadline_session() -> requests.Session:
    """A Session whose connections :func:`exchange` can cut when its deadline passes. (With
    another Session, or through a proxy, the deadline is checked between reads only.)"""
    session = requests.Session()
    session.mount("http://", _Adapter())
    session.mount("https://", _Adapter())
    return session


def exchange(session: requests.Session, method: str, url: str, *, seconds: float, body_limit: int = 0,
             **kwargs: Any) -> tuple[requests.Response, bytes]:
    """One request (``kwargs`` as for ``session.request``; give ``timeout`` and, as a rule,
    ``allow_redirects=False``), the whole of it within ``seconds``: the answer and at most
    ``body_limit`` bytes of its body (0: the body is not read and the connection is closed).
    Raises :class:`DeadlinePassed` (a ``requests.Timeout``), :class:`AnswerTooLarge`, or what
    ``requests`` raises."""
    with Deadline(seconds) as deadline:
        _current.deadline = deadline
        try:
            response = session.request(method, url, stream=True, **kwargs)
        except requests.RequestException:
            if deadline.expired:
                raise DeadlinePassed(f"no complete answer within {seconds:g} s") from None
            raise
        finally:
            _current.deadline = None
        if deadline.expired:  # cut mid-header: http.client reads what came as the whole head
            response.close()
            raise DeadlinePassed(f"no complete answer within {seconds:g} s")
        if body_limit <= 0:
            response.close()
            return response, b""
        try:
            chunks: list[bytes] = []
            size = 0
            while True:
                # What one read brings, not 64 KB: a body that ends with the connection (no length)
                # is no longer on a socket the deadline watches (http.client let go of it), so the
                # deadline is looked at after each read, each bounded by the read timeout.
                try:
                    chunk = response.raw.read1(64 * 1024, decode_content=True)
                except urllib3.exceptions.ReadTimeoutError:
                    raise requests.ReadTimeout("the answer stopped coming") from None
                except urllib3.exceptions.HTTPError as exc:
                    raise requests.ConnectionError(f"the answer broke off ({type(exc).__name__})") from None
                if deadline.expired:
                    raise DeadlinePassed(f"no complete answer within {seconds:g} s")
                if not chunk:
                    break
                size += len(chunk)
                if size > body_limit:
                    raise AnswerTooLarge(f"the answer is longer than {body_limit} bytes")
                chunks.append(chunk)
        except requests.RequestException as exc:
            response.close()
            if deadline.expired and not isinstance(exc, AnswerTooLarge | DeadlinePassed):
                raise DeadlinePassed(f"no complete answer within {seconds:g} s") from None
            raise
        return response, b"".join(chunks)
