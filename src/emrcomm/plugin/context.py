"""What a plugin receives when the host creates it (``Plugin(context)``): its checked settings,
the clinic, the clock, its folder and secrets, and what it may ask of the host — report what
happened to a message, send a message of its own, raise a task for staff, read the chart and
the consent ledger, keep tables of its own.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from attrs import field, frozen

from emrcomm.clock import utcnow
from emrcomm.errors import ConfigError, PluginError

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from emrcomm.model import Channel, DeliveryUpdate, Outcome, Request
    from emrcomm.storage import ConsentLedger, Database, Records, Storage


@frozen
class Clinic:
    """Who the messages come from, from the ``[clinic]`` table of the config."""

    name: str
    phone: str = ""
    email: str = ""
    signature: str = ""
    address: str = ""
    time_zones: tuple[str, ...] = ("America/Toronto",)
    link_domains: tuple[str, ...] = ()
    portal_url: str = ""
    jurisdiction: str = "CA-ON"
    turnaround: str = ""
    turnaround_fr: str = ""
    us_healthcare_exemption: bool = False

    @property
    def zone(self) -> ZoneInfo:
        """The clinic's own time zone, the first of ``time_zones``: where a day a request gives
        without a time (``occurrenceDateTime: 2026-12-08``) begins and ends."""
        return ZoneInfo(self.time_zones[0])

    def turnaround_in(self, language: str) -> str:
        """How soon staff answer, in ``language`` (en, fr): only when the clinic said it in both,
        so that a patient is promised the same whichever language they read."""
        if not (self.turnaround and self.turnaround_fr):
            return ""
        return self.turnaround_fr if language.lower().startswith("fr") else self.turnaround


class HostServices(Protocol):
    """What the host does for a plugin (``emrcomm.Host`` is one)."""

    @property
    def channels(self) -> Mapping[str, Channel]: ...

    def delivery_update(self, update: DeliveryUpdate) -> None: ...

    def send(self, request: Request) -> Outcome: ...


class _Binding:
    """The host a context serves, set once the host is built (plugins are created before)."""

    host: HostServices | None = None


@frozen
class PluginContext:
    """Everything a plugin may use from the host. Keep a reference; do not reach further."""

    name: str
    settings: Mapping[str, Any]
    clinic: Clinic
    storage: Storage = field(repr=False)
    base_dir: Path
    clock: Callable[[], dt.datetime] = utcnow
    rule_config: Mapping[str, Any] = field(factory=dict)
    # The host only answers questions (``emrcomm check``): create no file, write nothing.
    read_only: bool = False
    _binding: _Binding = field(factory=_Binding, repr=False, alias="_binding")

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger(f"emrcomm.plugin.{self.name}")

    # what the plugin may read and keep -----------------------------------------------------------
    @property
    def records(self) -> Records:
        """The chart: each record as projected now (``get``), the last message to an address
        (``last_to``), counts. Read it; the host alone writes it (report what happened instead)."""
        return self.storage.records

    @property
    def consent(self) -> ConsentLedger:
        """The consent ledger (grants and revocations by channel and address, in order)."""
        return self.storage.consent

    @property
    def db(self) -> Database:
        """The host's database, for the tables this plugin owns (``emrcomm_migrations``)."""
        return self.storage.db

    def transaction(self) -> AbstractContextManager[None]:
        """One transaction of the host's database: what the plugin writes to its tables in it
        commits together with what it reports to the host in it (or not at all)."""
        return self.storage.transaction()

    @property
    def channels(self) -> Mapping[str, Channel]:
        """The host's channels by name, as the clinic configured them."""
        return self._host().channels

    # what the plugin may ask of the host -----------------------------------------------------------
    def bind(self, host: HostServices) -> None:
        """Called by the host once it is built."""
        self._binding.host = host

    def _host(self) -> HostServices:
        if self._binding.host is None:
            raise PluginError(f"plugin {self.name!r}: the host is not ready yet (do this in start() or a hook, "
                              "not in the constructor)")
        return self._binding.host

    def report(self, update: DeliveryUpdate) -> None:
        """Tell the host what happened after hand-off: a delivery report (``delivered``, ``failed``,
        ``progress``), a read, a message from the patient (``reply``, with ``channel``,
        ``address``, ``text``), an opt-out. Give ``key``: the same key twice is one report."""
        self._host().delivery_update(update)

    def send(self, request: Request) -> Outcome:
        """Send a message of the plugin's own (a confirmation, an answer) through the whole
        pipeline, like any request: its id makes it once."""
        return self._host().send(request)

    def raise_item(self, *, kind: str, key: str, patient: str, description: str, now: dt.datetime | None = None,
                   **more: Any) -> str:
        """Put a task for staff in the practice inbox (once per kind and key); returns its id.
        ``kind`` is one of ``reply``, ``follow-up``, ``unannounced``, ``link-locked``,
        ``expired-unread``; ``more``: ``request_id``, ``record_id``, ``message_id``,
        ``priority`` (routine, urgent), ``reasons`` (rule codes), ``keywords``."""
        from emrcomm.inbox import raise_item

        return raise_item(self.storage, kind=kind, key=key, patient=patient, now=now or self.clock(),
                          description=description, **more)

    # settings ------------------------------------------------------------------------------------
    def path(self, value: str) -> Path:
        """A path from the settings, relative to the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def secret(self, key: str) -> str | None:
        """Resolve the secret reference in ``settings[key]`` (``{env = ...}`` or ``{file = ...}``).

        Returns None when the setting is absent; raises ConfigError when the reference points
        at nothing, naming the setting and the variable or file.
        """
        ref = self.settings.get(key)
        if ref is None:
            return None
        return self._resolve(ref, f"plugins.{self.name}.{key}")

    def secret_later(self, key: str) -> Callable[[], str | None]:
        """:meth:`secret`, resolved when first called and then kept: give it to what needs the
        credential only to send or to probe (a transport), so that a host that only reads
        (``emrcomm records``, ``emrcomm outbox``) starts without it. A host that may send checks
        every reference at start-up all the same (:meth:`secret_problems`)."""
        kept: list[str | None] = []

        def value() -> str | None:
            if not kept:
                kept.append(self.secret(key))
            return kept[0]

        return value

    def secret_problems(self) -> list[str]:
        """What is wrong with each secret reference in the settings (a variable that is not set,
        a file that cannot be read), in order: [] when every one resolves. The values are
        never in the messages."""
        problems = []
        for where, ref in references(self.settings, f"plugins.{self.name}"):
            try:
                self._resolve(ref, where)
            except ConfigError as exc:
                problems.append(str(exc))
        return problems

    def _resolve(self, ref: Mapping[str, str], where: str) -> str:
        if "env" in ref:
            value = os.environ.get(ref["env"])
            if value is None:
                raise ConfigError(f"{where}: environment variable {ref['env']} is not set")
            return value
        path = self.path(ref["file"])
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read secret file {path}: {exc.strerror}") from None


def references(settings: Mapping[str, Any], where: str) -> Iterator[tuple[str, Mapping[str, str]]]:
    """Every secret reference (``{env = ...}`` or ``{file = ...}``) in a plugin's settings, with its path."""
    for key, value in settings.items():
        if isinstance(value, Mapping) and len(value) == 1 and isinstance(value.get("env", value.get("file")), str):
            yield f"{where}.{key}", value
        elif isinstance(value, Mapping):
            yield from references(value, f"{where}.{key}")
