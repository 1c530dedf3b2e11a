"""What a plugin provides, as typed protocols: a channel's transport (and, for a channel that
keeps messages itself, its links), what it does at start and close, the commands it adds to
``emrcomm``. The host never probes for attributes: a plugin object is what these say.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from attrs import frozen

from emrcomm.model import Message, Receipt, Recipient


@frozen
class Delivery:
    """One message for a transport to hand over.

    ``key`` is the idempotency key of this (request, channel, role): a transport that can pass
    it to its provider must, so that a retry after a crash is not a second message.
    ``recipient`` is the patient as the directory knew them when the request was decided: given
    when the message leaves while the request is decided (an inline send, a message a channel
    keeps), None for a later delivery from the outbox, which needs only ``address``.
    ``attempt`` counts the tries of this delivery (1 the first time).
    """

    message: Message
    address: str
    key: str
    recipient: Recipient | None = None
    attempt: int = 1


class Transport(Protocol):
    """What carries a message over a channel. One method; raise to report a failure:
    :class:`emrcomm.PermanentDeliveryError` when trying again cannot help (a refused address,
    refused credentials), :class:`emrcomm.TransientDeliveryError` when it may (the provider is
    away, a timeout, 429, 5xx; ``ambiguous=True`` when the request may have reached it)."""

    def send(self, delivery: Delivery) -> Receipt:
        """Hand ``delivery.message`` to the provider for ``delivery.address``."""
        ...


@runtime_checkable
class LinkingTransport(Transport, Protocol):
    """The transport of a channel that keeps the message itself (a portal): it also gives each
    message the link its notice carries. The host calls ``link_for`` before the message is
    stored, so the link must be derivable from the id alone (the built-in portal signs it; an
    EMR's own portal may return its deep link)."""

    def link_for(self, message_id: str) -> str:
        """The link that opens message ``message_id`` (the record id of its portal leg)."""
        ...


@runtime_checkable
class KeepingTransport(LinkingTransport, Protocol):
    """The transport of a channel that keeps messages and the patient's replies itself (the
    built-in portal): staff read a reply's words through it (``emrcomm inbox --text``)."""

    def read(self, message_id: str) -> Mapping[str, Any]:
        """The kept message or reply ``message_id``: at least ``text`` (and ``language``)."""
        ...


@runtime_checkable
class TemplateCatalog(Protocol):
    """A plugin that renders named templates: the host lists their names when a request names
    one no plugin renders."""

    def template_names(self) -> list[str]: ...


@runtime_checkable
class Startable(Protocol):
    """A plugin with work to start once its tables exist (a background pusher, say)."""

    def start(self) -> None: ...


@runtime_checkable
class Preparable(Protocol):
    """A plugin that puts off costly preparation (loading a dictionary, compiling templates)
    until its first use, so that a command that never uses it starts without it.
    ``load_deferred()`` does it now: commands that will use it (``send``, ``check``, ``serve``, ``demo``) and the ones that
    check that everything works (``check-config``, ``doctor``) call it at start, where what it
    raises stops start-up naming the plugin, as if the plugin had failed to start. (Not named
    ``prepare``: a plugin written before may have a method of its own by that name.)"""

    def load_deferred(self) -> None: ...


@runtime_checkable
class Closable(Protocol):
    """A plugin with something to release when the host closes (connections, threads)."""

    def close(self) -> None: ...


@frozen
class Probe:
    """A server a plugin talks to, and a check that connects to it from here (``emrcomm doctor``).

    ``server`` names it as a clinic would: ``SMTP relay smtp.riverside.example:587``. ``check()``
    connects and yields, in order, a few words for each step that worked (``"connected"``,
    ``"STARTTLS ok"``, ``"AUTH ok"``); at the first step that does not work it raises
    :class:`emrcomm.ProbeFailed` saying what happened and which setting to check. A check sends
    no message and writes nothing; it resolves the credentials it needs (a missing one is
    reported as the ConfigError that names it) and keeps to its own timeouts.
    """

    server: str
    check: Callable[[], Iterable[str]]


@frozen
class Command:
    """A subcommand a plugin adds to ``emrcomm``: ``emrcomm NAME …``.

    ``arguments(parser)`` declares its arguments (argparse; ``--config``, ``--json`` and ``-v``
    are already there). ``run(args, plugin)`` does the work with ``plugin``, the plugin's own
    object in a host built from ``--config`` (one that writes nothing and needs no credential
    when ``read_only``: True, or a function of the parsed arguments for a command whose
    actions differ, such as ``keys list`` and ``keys rotate``), and
    returns the exit code: 0 done, 2 bad input, 3 blocked, 4 not done. Raise
    :class:`emrcomm.EmrcommError` for a clear one-line error (exit 2); print results with
    :func:`print_result` so that ``--json`` works the same everywhere.
    """

    name: str
    help: str
    run: Callable[[argparse.Namespace, Any], int]
    arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    read_only: bool | Callable[[argparse.Namespace], bool] = False


def print_result(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print a command's result: ``data`` as JSON with ``--json``, else ``text`` for people."""
    import json

    print(json.dumps(data, indent=2, ensure_ascii=False) if getattr(args, "json", False) else text)


def settings_schema(package: str, name: str = "schema.json") -> Mapping[str, Any]:
    """A plugin's settings schema (JSON Schema) from a file shipped in its own package:
    ``settings_schema = settings_schema(__name__)`` in the plugin's module."""
    import json
    from importlib import resources

    loaded: Mapping[str, Any] = json.loads(resources.files(package).joinpath(name).read_text(encoding="utf-8"))
    return loaded
