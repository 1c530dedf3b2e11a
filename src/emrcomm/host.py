"""The Host: owns the plugin manager and the store, and runs one request through the pipeline.

find recipient -> render -> inspect -> plan -> validate each candidate -> file in-progress
-> outbox -> deliver -> file outcome. Every step fails closed (docs/architecture.md).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import attrs
import pluggy
from attrs import frozen

from emrcomm import fhir
from emrcomm.audit import KINDS, AuditLog, Trail
from emrcomm.config import Config, load_config
from emrcomm.context import PluginContext, utcnow
from emrcomm.errors import PluginError, RenderError, RequestError
from emrcomm.limits import check_request, check_text
from emrcomm.loader import LoadedPlugin, load_plugins, new_plugin_manager
from emrcomm.model import (
    Candidate,
    Category,
    Channel,
    ConsentGrant,
    ContactPoint,
    DeliveryUpdate,
    Finding,
    LinkingTransport,
    Message,
    Outcome,
    Plan,
    Purpose,
    Receipt,
    Recipient,
    Record,
    Request,
    Route,
    Sensitivity,
    Severity,
    Status,
)
from emrcomm.rules import finding
from emrcomm.store import SQLiteStore

if TYPE_CHECKING:
    from emrcomm.parallel import SendPool

log = logging.getLogger("emrcomm.host")

RECORD_NS = uuid.UUID("5b6f2b8e-4d7e-4a53-9d55-6a2b1c9e7f10")

# Hooks the host calls one implementation at a time, so that one plugin's failure is caught,
# named, and turned into a closed door instead of an open one.
ISOLATED_HOOKS = ("emrcomm_inspect", "emrcomm_validate", "emrcomm_file_record")

# Codes that depend on the patient, not the words; `check` (text only) leaves them out.
RECIPIENT_CODES = frozenset({
    "CONSENT_MISSING", "CONSENT_REVOKED", "PREFERENCE_IGNORED", "RECIPIENT_INVALID",
    "RECIPIENT_UNVERIFIED", "QUIET_HOURS", "EXEMPTION_FREQUENCY", "MESSAGE_EXPIRED",
    "BILLING_BY_SMS", "UNENCRYPTED_EMAIL_NOT_ACCEPTED", "FRENCH_REQUIRED",
})


def record_id(request_id: str, channel: str | None, role: str) -> str:
    """Deterministic: the same request on the same channel is always the same record."""
    return uuid.uuid5(RECORD_NS, f"{request_id}|{channel or '-'}|{role}").hex


@frozen
class _Leg:
    route: Route
    channel: Channel
    message: Message
    findings: tuple[Finding, ...]
    # A notice's link to the message it announces, and that message's (channel, id): the link
    # opens the message, so the chart and the outbox keep it withheld and derive it again.
    link: str | None = None
    link_from: tuple[str, str] | None = None


@frozen
class _Verdict:
    candidate: Candidate
    legs: tuple[_Leg, ...]
    findings: tuple[Finding, ...]

    @property
    def blocks(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.blocks)

    @property
    def holdable(self) -> bool:
        """Blocked only by holds (quiet hours): the message waits instead of being refused."""
        blocks = self.blocks
        return bool(blocks) and all(f.hold_until is not None for f in blocks)

    @property
    def hold_until(self) -> dt.datetime | None:
        holds = [f.hold_until for f in self.blocks if f.hold_until is not None]
        return max(holds) if holds else None


class _Duplicate(Exception):
    """Another call committed the same request id between our check and our write."""


# How long an inline send owns its outbox rows before a worker may take them over.
INLINE_LEASE = dt.timedelta(minutes=5)


class _FilingFailed(Exception):
    def __init__(self, plugin: str, error: BaseException) -> None:
        super().__init__(f"{plugin}: {type(error).__name__}")
        self.plugin = plugin
        self.error = error


class Host:
    """The emrcomm host. Build it from a config; call :meth:`send`; :meth:`close` when done.

    ::

        with Host.from_config("emrcomm.toml") as host:
            outcome = host.send(Request("Patient/123", "appointment-reminder", template=...))
    """

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        entry_points: Mapping[str, metadata.EntryPoint] | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self._entry_points = entry_points
        self._closed = False
        self.store = SQLiteStore(config.store_path, synchronous=config.store_synchronous)
        self._pm: pluggy.PluginManager = new_plugin_manager()
        try:
            # Every decision is logged, signed (docs/audit.md); the key is checked before anything runs.
            self.audit = AuditLog.open(config, self.store, clock)
            self.plugins: list[LoadedPlugin] = load_plugins(
                self._pm, config, self._make_context, entry_points
            )
            self._check_isolated_hooks()
            self.channels: dict[str, Channel] = self._collect_channels()
        except BaseException:
            self.store.close()
            raise

    @classmethod
    def from_config(
        cls,
        path: str | Path | None = None,
        *,
        base_dir: Path | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> Host:
        """A Host for ``path`` (default ./emrcomm.toml, else the embedded defaults).

        ``base_dir`` places the embedded defaults' data folder somewhere other than the
        current directory.
        """
        return cls(load_config(path, base_dir=base_dir), clock=clock)

    def __enter__(self) -> Host:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for item in self.plugins:
            closer = getattr(item.plugin, "close", None)
            if callable(closer):
                closer()
        self.audit.seal()  # so that nothing appended since the last seal can be cut off unseen
        self.store.close()

    # start-up ----------------------------------------------------------------------------------
    def _make_context(self, name: str, settings: Mapping[str, Any]) -> PluginContext:
        return PluginContext(
            name=name,
            settings=settings,
            clinic=self.config.clinic,
            store=self.store,
            base_dir=self.config.base_dir,
            clock=self.clock,
        )

    def _check_isolated_hooks(self) -> None:
        for hook_name in ISOLATED_HOOKS:
            for impl in getattr(self._pm.hook, hook_name).get_hookimpls():
                if impl.wrapper or impl.hookwrapper:
                    raise PluginError(
                        f"plugin {impl.plugin_name!r}: {hook_name} cannot be a wrapper; the host calls "
                        "each implementation separately so that a failing check blocks the message"
                    )

    def _collect_channels(self) -> dict[str, Channel]:
        channels: dict[str, Channel] = {}
        hook = self._pm.hook.emrcomm_register_channels
        for impl in reversed(hook.get_hookimpls()):
            try:
                contributed = list(cast("Iterable[Channel] | None", impl.function()) or ())
            except Exception as exc:
                raise PluginError(f"plugin {impl.plugin_name!r} failed in emrcomm_register_channels: "
                                  f"{type(exc).__name__}: {exc}") from exc
            for channel in contributed:
                if not isinstance(channel, Channel):
                    raise PluginError(f"plugin {impl.plugin_name!r}: emrcomm_register_channels returned "
                                      f"{type(channel).__name__}, not emrcomm.Channel")
                if channel.name in channels:
                    raise PluginError(
                        f"channel {channel.name!r} is registered by both {channels[channel.name].plugin!r} "
                        f"and {impl.plugin_name!r}; disable one of them"
                    )
                channels[channel.name] = attrs.evolve(channel, plugin=impl.plugin_name)
        return channels

    def plugin_hooks(self) -> list[tuple[LoadedPlugin, list[str]]]:
        """Active plugins in call order, each with the hooks it implements."""
        out = []
        for item in self.plugins:
            callers = self._pm.get_hookcallers(item.plugin) or []
            out.append((item, sorted(c.name for c in callers)))
        return out

    # typed hook calls ----------------------------------------------------------------------------
    def _each(self, hook_name: str, **kwargs: Any) -> Iterator[tuple[str, Any, BaseException | None]]:
        hook = getattr(self._pm.hook, hook_name)
        for impl in reversed(hook.get_hookimpls()):
            try:
                result = impl.function(*[kwargs[a] for a in impl.argnames])
            except Exception as exc:
                log.error("plugin %s failed in %s: %s", impl.plugin_name, hook_name, type(exc).__name__)
                log.debug("plugin %s failed in %s", impl.plugin_name, hook_name, exc_info=True)
                yield impl.plugin_name, None, exc
            else:
                yield impl.plugin_name, result, None

    def find_recipient(self, request: Request) -> Recipient | None:
        result: Recipient | None = self._pm.hook.emrcomm_find_recipient(
            patient_ref=request.patient_ref, request=request
        )
        return result

    def render(self, request: Request, recipient: Recipient) -> Message:
        message: Message | None = self._pm.hook.emrcomm_render(request=request, recipient=recipient)
        if message is None:
            what = f"template {request.template!r}" if request.template else "free text"
            raise RenderError(f"no plugin renders {what} (is the templates plugin disabled?)")
        return message

    def inspect(self, message: Message) -> tuple[Finding, ...]:
        facts: list[Finding] = []
        for plugin, result, exc in self._each("emrcomm_inspect", message=message):
            if exc is not None:
                facts.append(finding("CHECK_FAILED", plugin=plugin, detail=f"{plugin}: {type(exc).__name__}"))
                continue
            facts.extend(_named(result, plugin))
        return tuple(facts)

    def plan(self, message: Message, recipient: Recipient, facts: tuple[Finding, ...]) -> Plan | None:
        result: Plan | None = self._pm.hook.emrcomm_plan(
            message=message, recipient=recipient, channels=self.channels, findings=facts
        )
        return result

    def validate(
        self,
        message: Message,
        recipient: Recipient,
        channel: Channel,
        route: Route,
        facts: tuple[Finding, ...],
        now: dt.datetime,
    ) -> tuple[Finding, ...]:
        found: list[Finding] = []
        for plugin, result, exc in self._each(
            "emrcomm_validate", message=message, recipient=recipient, channel=channel,
            route=route, findings=facts, now=now,
        ):
            if exc is not None:
                found.append(finding(
                    "CHECK_FAILED", plugin=plugin, channel=channel.name,
                    detail=f"{plugin}: {type(exc).__name__}",
                ))
                continue
            for f in _named(result, plugin):
                found.append(self._configured(attrs.evolve(f, channel=f.channel or channel.name), message))
        limit = self.config.limits.channel_text_chars.get(channel.name)
        if limit is not None and len(message.text) > limit:
            found.append(self._configured(finding("TEXT_TOO_LONG", plugin="host", channel=channel.name,
                                                  length=f"{len(message.text):,}", limit=f"{limit:,}"), message))
        return tuple(found)

    def _configured(self, f: Finding, message: Message) -> Finding:
        severity, override = self.config.rules.apply(f.code, f.severity)
        if severity is f.severity:
            return f
        if override:
            log.warning("request %s: %s lowered from %s to %s by override (%s)",
                        message.request.id, f.code, f.severity.value, severity.value, override)
        return attrs.evolve(f, severity=severity, override=override)

    def file(self, record: Record) -> None:
        """File a record with every filer; the first failure raises _FilingFailed."""
        for plugin, _result, exc in self._each("emrcomm_file_record", record=record):
            if exc is not None:
                raise _FilingFailed(plugin, exc)

    def _file_quietly(self, record: Record) -> None:
        for plugin, _result, exc in self._each("emrcomm_file_record", record=record):
            if exc is not None:
                log.error("record %s could not be filed by %s", record.id, plugin)

    def delivery_update(self, update: DeliveryUpdate) -> None:
        """Tell every plugin what happened after hand-off (delivery report, read, reply, STOP).

        A reply to a known record is first filed as its own Communication (``inResponseTo`` the
        record) through every filer; the update is then logged in the audit log (ids only).
        """
        reply = self._file_reply(update) if update.kind == "reply" else None
        # Every plugin hears the update even when one fails before it: an adapter listed first
        # must not keep a STOP from reaching the opt-out ledger. The first failure is raised after.
        failures = [(plugin, exc) for plugin, _result, exc in
                    self._each("emrcomm_delivery_update", update=update) if exc is not None]
        kind = update.kind if update.kind in KINDS else "update"
        patient = fhir.safe_ref(update.detail) if update.detail.startswith("Patient") else None
        self.audit.record(kind, record=reply or update.record_id, channel=update.channel,
                          records=[update.record_id] if reply and update.record_id else None,
                          provider_id=update.provider_id, patient=patient,
                          status=update.kind if kind == "update" else None)
        if failures:
            plugin, exc = failures[0]
            raise PluginError(f"plugin {plugin!r} failed on a {update.kind} update: {type(exc).__name__}") from exc

    def _file_reply(self, update: DeliveryUpdate) -> str | None:
        """File a patient's reply as a Communication from the patient, in response to the record
        it answers. The id derives from the provider's message id (else the time), so a callback
        delivered twice files one reply. Returns the reply's record id, or None when the update
        does not say which record it answers."""
        original = update.record_id
        if original is None and update.channel and update.provider_id:
            original = self.store.record_for_provider(update.channel, update.provider_id)
        if original is None:
            return None
        try:
            meta = self.store.record_meta(original)
        except KeyError:
            return None
        resource = self.store.get_record(original) or {}
        based_on = next((b["reference"] for b in resource.get("basedOn", ()) if b.get("reference")), None)
        req = Request(meta["patient"], meta["category"], id=meta["request_id"], based_on=based_on,
                      sender=(resource.get("sender") or {}).get("reference"))
        channel = self.channels.get(update.channel or meta["channel"] or "")
        channel_name = channel.name if channel else (update.channel or meta["channel"])
        key = update.provider_id or fhir.fhir_datetime(update.at)
        reference = None
        if channel is not None and channel.holds_content and update.provider_id:
            try:  # the channel keeps the reply itself (encrypted): the chart points at it
                reference = f"urn:uuid:{uuid.UUID(hex=update.provider_id)}"
            except ValueError:
                reference = None
        now = self.clock()
        record = Record(
            id=record_id(req.id, channel_name, f"reply:{key}"),
            request=req,
            status="completed",
            channel=channel_name,
            medium=channel.medium if channel else None,
            role="reply",
            text=None if channel is not None and channel.holds_content else update.text,
            payload_reference=reference,
            sent=update.at,
            received=max(now, update.at),
            recorded=now,
            provider_id=update.provider_id,
            in_response_to=f"Communication/{original}",
            sender_display=self.config.clinic.name,
        )
        try:
            with self.store.transaction():
                self.file(record)
        except _FilingFailed as failed:
            raise PluginError(f"the reply to record {original} could not be filed by plugin {failed.plugin!r} "
                              f"({type(failed.error).__name__}); nothing was lost: deliver the update again") from None
        return record.id

    # the pipeline --------------------------------------------------------------------------------
    def send(self, request: Request | Mapping[str, Any] | str | bytes) -> Outcome:
        """Run one request through the pipeline and return how it ended.

        Raises RequestError (nothing sent or filed) when the request itself is malformed.
        """
        return self._decide(request)[0]()

    def _decide(self, request: Request | Mapping[str, Any] | str | bytes) -> tuple[Callable[[], Outcome], set[str]]:
        """Everything ``send`` does before it writes: a function that writes the outcome (and
        delivers it, inline) and returns it, and what the decision read about (the request id,
        the patient, the addresses chosen), for ``_send_group``. Reads only; nothing is written
        until the function is called.

        Raises RequestError when the request is malformed (nothing to write).
        """
        limits = self.config.limits
        req = request if isinstance(request, Request) else fhir.parse_request(request, limits=limits)
        check_request(req, limits)
        about = {f"request:{req.id}"}
        now = self.clock()
        log.info("request %s received: %s for %s", req.id, req.category.value, fhir.safe_ref(req.patient_ref))
        # The request's audit entries are written with its records, in the same transaction.
        trail = self.audit.trail(request=req.id, patient=fhir.safe_ref(req.patient_ref))
        trail.add("request.received", category=req.category.value)
        duplicate = self._already_handled(req)
        if duplicate is not None:
            def repeated() -> Outcome:
                assert duplicate is not None
                trail.add("request.duplicate", records=list(duplicate.record_ids))
                trail.flush()
                return duplicate
            return repeated, about
        recipient = self.find_recipient(req)
        if recipient is None:
            unknown = [finding("RECIPIENT_UNKNOWN", plugin="host", detail=req.patient_ref)]
            return (lambda: self._refuse(req, unknown, now, ("no directory plugin knows this patient",),
                                         trail=trail)), about
        about.add(f"patient:{recipient.patient_ref}")
        try:
            message = self.render(req, recipient)
        except RequestError as exc:
            error = exc

            def refused() -> Outcome:
                trail.add("request.refused", error=type(error).__name__)
                trail.flush()
                raise error
            return refused, about
        facts = self.inspect(message)
        plan = self.plan(message, recipient, facts)
        explanation = [f"{channel}: not proposed ({why})" for channel, why in (plan.rejected if plan else ())]
        if plan is None or not plan.candidates:
            return (lambda: self._refuse(req, [finding("NO_ROUTE", plugin="host")], now, tuple(explanation),
                                         trail=trail)), about

        verdicts: list[_Verdict] = []
        for candidate in plan.candidates:
            verdict = self._judge(candidate, message, recipient, facts, now)
            verdicts.append(verdict)
            label = candidate.label
            if not verdict.blocks:
                explanation.append(f"{label}: chosen ({candidate.reason})" if candidate.reason else f"{label}: chosen")
                break
            codes = ", ".join(sorted({f.code for f in verdict.blocks}))
            if verdict.holdable:
                explanation.append(f"{label}: held ({codes})")
                break
            explanation.append(f"{label}: rejected ({codes})")
        chosen = verdicts[-1]
        rejected_blocks = tuple(f for v in verdicts if v is not chosen for f in v.blocks)
        trail.note(codes=sorted({f.code for f in facts} | {f.code for v in verdicts for f in v.findings}))
        if chosen.blocks and not chosen.holdable:
            return (lambda: self._refuse(req, [f for v in verdicts for f in v.findings], now, tuple(explanation),
                                         trail=trail)), about
        about |= {f"to:{leg.channel.name}:{leg.route.address}" for leg in chosen.legs if leg.route.address}
        return (lambda: self._dispatch(req, chosen, rejected_blocks, now, tuple(explanation), trail=trail)), about

    def send_many(
        self, requests: Iterable[Request | Mapping[str, Any] | str | bytes], *, group: int = 100
    ) -> Iterator[Outcome]:
        """Send a stream of requests, yielding one Outcome each, in order, in constant memory.

        A malformed request does not stop the batch: it yields a ``failed`` Outcome whose
        explanation is the error, and nothing is sent or filed for it.

        In ``queue`` delivery mode up to ``group`` requests share one commit (group commit:
        one fsync for all), and their outcomes are yielded only once that commit is done. Each
        request is still atomic on its own (a savepoint); an unexpected error rolls back the
        commit it was part of, none of whose outcomes was reported, and propagates (the
        outcomes of commits already done were yielded before). A request for a patient, an
        address or a request id already in the group starts a new commit. Inline delivery
        commits each request before its message leaves, so it is not grouped.
        """
        if self.config.delivery_mode != "queue" or group <= 1:
            for item in requests:
                yield self._send_or_fail(item)
            return
        chunk: list[Request | Mapping[str, Any] | str | bytes] = []
        for item in requests:
            chunk.append(item)
            if len(chunk) >= group:
                yield from self._send_group(chunk)
                chunk = []
        if chunk:
            yield from self._send_group(chunk)

    def send_pool(self, processes: int = 2, *, group: int = 100) -> SendPool:
        """Child processes that share out ``send_many``'s work (emrcomm.parallel): for batches
        larger than one process decides in time. Queue mode only; close it when done."""
        from emrcomm.parallel import SendPool

        return SendPool(self, processes, group=group, entry_points=self._entry_points)

    def _send_group(self, items: list[Request | Mapping[str, Any] | str | bytes]) -> Iterator[Outcome]:
        """Decide the requests (reads only, no lock held), then write them in one commit, so
        that the write lock is held for the writes alone and a worker process sharing the
        database is not kept out while the rules run. A decision may read what an earlier
        request of the group would write (a per-patient cap, an opt-out confirmation counted
        per address, the same request id): a request that shares its patient, an address or its
        id with one already decided commits those first, and is decided again afterwards.
        Each commit's outcomes are yielded as soon as it is done."""
        staged: list[tuple[Callable[[], Outcome], Request | Mapping[str, Any] | str | bytes]] = []
        seen: set[str] = set()

        def commit() -> list[Outcome]:
            with self.store.group_commit():
                done = [self._finish_or_fail(write, item) for write, item in staged]
            staged.clear()
            seen.clear()
            return done

        for item in items:
            write, about = self._decide_or_fail(item)
            if about & seen:
                yield from commit()
                write, about = self._decide_or_fail(item)
            staged.append((write, item))
            seen |= about
        if staged:
            yield from commit()

    def _decide_or_fail(self, item: Request | Mapping[str, Any] | str | bytes) -> tuple[Callable[[], Outcome], set[str]]:
        try:
            return self._decide(item)
        except RequestError as exc:
            failed = self._failed(item, exc)
            return (lambda: failed), set()

    def _finish_or_fail(self, write: Callable[[], Outcome], item: Request | Mapping[str, Any] | str | bytes) -> Outcome:
        try:
            return write()
        except RequestError as exc:
            return self._failed(item, exc)

    def _send_or_fail(self, item: Request | Mapping[str, Any] | str | bytes) -> Outcome:
        try:
            return self.send(item)
        except RequestError as exc:
            return self._failed(item, exc)

    @staticmethod
    def _failed(item: Request | Mapping[str, Any] | str | bytes, exc: RequestError) -> Outcome:
        request_id = item.id if isinstance(item, Request) else "(unparsed)"
        if isinstance(item, Mapping) and item.get("id"):
            request_id = str(item["id"])
        return Outcome(request_id=request_id, status=Status.FAILED, explanation=(str(exc),))

    def _already_handled(self, req: Request) -> Outcome | None:
        """A request id seen before is not sent again; its earlier outcome is reported instead."""
        rows = self.store.outbox_for_request(req.id)
        if not rows:
            return None
        states = {r["state"] for r in rows}
        status = Status.SENT if states == {"sent"} else Status.HELD if "held" in states else Status.QUEUED
        return Outcome(
            request_id=req.id,
            status=status,
            channels=tuple(r["channel"] for r in rows),
            record_ids=tuple(r["record_id"] for r in rows),
            explanation=("already handled: this request id was sent before; nothing sent again",),
            category=req.category,
            patient_ref=req.patient_ref,
        )

    def _judge(
        self,
        candidate: Candidate,
        message: Message,
        recipient: Recipient,
        facts: tuple[Finding, ...],
        now: dt.datetime,
    ) -> _Verdict:
        legs: list[_Leg] = []
        if not candidate.routes:  # a plan bug must not read as "nothing objected, sent"
            f = finding("CHECK_FAILED", plugin="host", detail="the plan proposed a candidate with no route")
            return _Verdict(candidate, (), (f,))
        for route in candidate.routes:
            channel = self.channels.get(route.channel)
            if channel is None:
                f = finding("CHECK_FAILED", plugin="host", channel=route.channel,
                            detail=f"the plan names channel {route.channel!r}, which no plugin registers")
                return _Verdict(candidate, tuple(legs), (f,))
            leg_message, leg_facts = message, facts
            link: str | None = None
            link_from = self._announced(candidate, message.request) if route.template is not None else None
            if route.template is not None:
                try:
                    if link_from is not None:
                        linker = cast("LinkingTransport", self.channels[link_from[0]].transport)
                        link = linker.link_for(link_from[1])
                    leg_message = self._render_notice(message, recipient, route.template, link=link)
                except RequestError as exc:
                    f = finding("CHECK_FAILED", plugin="host", channel=route.channel,
                                detail=f"notice template {route.template!r}: {exc}")
                    return _Verdict(candidate, tuple(legs), (f,))
                leg_facts = self.inspect(leg_message)
            found = tuple(f for f in leg_facts if f.code == "CHECK_FAILED")
            found += self.validate(leg_message, recipient, channel, route, leg_facts, now)
            legs.append(_Leg(route, channel, leg_message, found, link, link_from if link else None))
        return _Verdict(candidate, tuple(legs), tuple(f for leg in legs for f in leg.findings))

    def _announced(self, candidate: Candidate, req: Request) -> tuple[str, str] | None:
        """(channel, message id) of the message a notice in this candidate announces: the primary
        route on a channel that holds content and gives links (``transport.link_for``)."""
        for route in candidate.routes:
            channel = self.channels.get(route.channel)
            if (route.role == "primary" and channel is not None and channel.holds_content
                    and callable(getattr(channel.transport, "link_for", None))):
                return channel.name, record_id(req.id, channel.name, route.role)
        return None

    def _render_notice(
        self, message: Message, recipient: Recipient, template: str, link: str | None = None
    ) -> Message:
        # A notice carries nothing of the original request but its identity and category, and
        # the link to the message it announces.
        notice_request = attrs.evolve(
            message.request, template=template, text=None, variables={"link": link} if link else {},
            sensitivity=Sensitivity.NORMAL, subject=None, attachments=(),
        )
        return self.render(notice_request, recipient)

    def _refuse(
        self, req: Request, findings: list[Finding], now: dt.datetime, explanation: tuple[str, ...],
        *, trail: Trail | None = None,
    ) -> Outcome:
        """Blocked: file one not-done record carrying every blocking code."""
        trail = trail or self.audit.trail(request=req.id, patient=fhir.safe_ref(req.patient_ref))
        blocks = [f for f in findings if f.blocks]
        first_channel = next((f.channel for f in blocks if f.channel), None)
        channel = self.channels.get(first_channel) if first_channel else None
        record = Record(
            id=record_id(req.id, None, "blocked"),
            request=req,
            status="not-done",
            channel=channel.name if channel else None,
            medium=channel.medium if channel else None,
            reasons=tuple(dict.fromkeys(f.code for f in blocks)),
            findings=tuple(findings),
            recorded=now,
            sender_display=self.config.clinic.name,
        )
        try:
            with self.store.transaction():
                self.file(record)
                trail.add("blocked", record=record.id, reasons=list(record.reasons))
                trail.flush()
        except _FilingFailed as failed:
            log.error("request %s: blocked outcome could not be filed by %s", req.id, failed.plugin)
            findings = [*findings, finding("RECORD_NOT_FILED", plugin=failed.plugin, detail=str(failed))]
            with self.store.transaction():
                self._file_quietly(record)  # wherever filing still works
                trail.add("record.not_filed", record=record.id, plugin=failed.plugin,
                          reasons=[*record.reasons, "RECORD_NOT_FILED"])
                trail.flush()
            return self._outcome(req, Status.FAILED, (), findings, (), explanation)
        log.info("request %s blocked: %s", req.id, ",".join(record.reasons))
        return self._outcome(req, Status.BLOCKED, (), findings, (record.id,), explanation)

    def _dispatch(
        self,
        req: Request,
        chosen: _Verdict,
        rejected_blocks: tuple[Finding, ...],
        now: dt.datetime,
        explanation: tuple[str, ...],
        *,
        trail: Trail | None = None,
    ) -> Outcome:
        trail = trail or self.audit.trail(request=req.id, patient=fhir.safe_ref(req.patient_ref))
        hold_until = chosen.hold_until
        if req.not_before is not None and req.not_before > now:
            hold_until = max(filter(None, (hold_until, req.not_before)))
        held = hold_until is not None
        # Rejected candidates' blocks travel with the record as information: why not SMS.
        context = tuple(attrs.evolve(f, severity=Severity.INFO) for f in rejected_blocks)
        records = [
            self._record_for(req, leg, status="on-hold" if held else "in-progress", now=now,
                             hold_until=hold_until, reasons=("QUIET_HOURS",) if held and chosen.blocks else (),
                             context=context)
            for leg in chosen.legs
        ]
        outcome_findings = [f for f in chosen.findings if f.severity is not Severity.INFO] + list(rejected_blocks)
        channels = tuple(leg.channel.name for leg in chosen.legs)
        # Inline delivery leases its rows, so a worker polling the same outbox never sends them
        # too; if this process dies mid-send, a worker takes them over when the lease runs out.
        inline = not held and self.config.delivery_mode != "queue"
        lease_owner = f"inline:{uuid.uuid4().hex}" if inline else None
        lease_until = now + INLINE_LEASE if inline else None
        try:
            with self.store.transaction():
                for record in records:
                    self.file(record)
                for record, leg in zip(records, chosen.legs):
                    if leg.channel.holds_content:
                        # The channel is the encrypted store itself: keep the message there, in
                        # this transaction, so the outbox never holds its text in clear.
                        leg.channel.transport.send(leg.message, leg.route.address, record.id)
                    fresh = self.store.outbox_put(
                        key=record.id, record_id=record.id, request_id=req.id, channel=leg.channel.name,
                        state="sending" if inline else "held" if held else "pending", not_before=hold_until,
                        payload=_payload(leg, record), now=now, lease_owner=lease_owner, lease_until=lease_until,
                    )
                    if not fresh:
                        raise _Duplicate  # the same request id, racing: undo all this, send nothing
                decision = "held" if held else "queued" if self.config.delivery_mode == "queue" else "channel.chosen"
                trail.add(decision, channels=list(channels), records=[r.id for r in records],
                          until=hold_until.isoformat() if hold_until else None)
                trail.flush()
        except _Duplicate:
            duplicate = self._already_handled(req)
            assert duplicate is not None  # the row that stopped us is committed
            return duplicate
        except _FilingFailed as failed:
            f = finding("RECORD_NOT_FILED", plugin=failed.plugin, detail=f"{failed.plugin}: {type(failed.error).__name__}")
            with self.store.transaction():
                for record in records:
                    self._file_quietly(record.evolve(status="not-done", reasons=("RECORD_NOT_FILED",),
                                                     findings=(*record.findings, f)))
                trail.add("record.not_filed", records=[r.id for r in records], plugin=failed.plugin,
                          reasons=["RECORD_NOT_FILED"])
                trail.flush()
            return self._outcome(req, Status.FAILED, channels, [*outcome_findings, f],
                                 tuple(r.id for r in records), explanation)
        ids = tuple(r.id for r in records)
        if held:
            log.info("request %s held until %s", req.id, hold_until.isoformat() if hold_until else "?")
            return self._outcome(req, Status.HELD, channels, outcome_findings, ids, explanation)
        if self.config.delivery_mode == "queue":
            return self._outcome(req, Status.QUEUED, channels, outcome_findings, ids, explanation)
        assert lease_owner is not None
        return self._deliver(req, chosen.legs, records, outcome_findings, explanation, trail=trail,
                             owner=lease_owner)

    def _record_for(
        self,
        req: Request,
        leg: _Leg,
        *,
        status: str,
        now: dt.datetime,
        hold_until: dt.datetime | None,
        reasons: tuple[str, ...],
        context: tuple[Finding, ...],
    ) -> Record:
        rid = record_id(req.id, leg.channel.name, leg.route.role)
        keeps = leg.channel.holds_content  # the portal: the chart points at the encrypted message
        return Record(
            id=rid,
            request=req,
            status=status,
            channel=leg.channel.name,
            medium=leg.channel.medium,
            address=leg.route.address,
            role=leg.route.role,
            text=None if keeps else _withheld(leg.message.text, leg.link),
            subject=None if keeps else leg.message.subject,
            payload_reference=f"urn:uuid:{uuid.UUID(hex=rid)}" if keeps else None,
            language=leg.message.language,
            findings=tuple(f for f in leg.findings if f.severity is not Severity.INFO) + context,
            reasons=reasons,
            recorded=now,
            hold_until=hold_until,
            sender_display=self.config.clinic.name,
        )

    def _deliver(
        self,
        req: Request,
        legs: tuple[_Leg, ...],
        records: list[Record],
        findings: list[Finding],
        explanation: tuple[str, ...],
        *,
        owner: str,
        trail: Trail | None = None,
    ) -> Outcome:
        """Inline delivery, leg by leg: a notice never leaves before the message it announces.
        ``owner`` holds the lease on the rows (see _dispatch)."""
        trail = trail or self.audit.trail(request=req.id, patient=fhir.safe_ref(req.patient_ref))
        receipts: list[Receipt] = []
        channels = tuple(leg.channel.name for leg in legs)
        for index, (leg, record) in enumerate(zip(legs, records)):
            try:
                receipt = leg.channel.transport.send(leg.message, leg.route.address, record.id)
            except Exception as exc:
                now = self.clock()
                log.warning("request %s: %s delivery failed: %s", req.id, leg.channel.name, type(exc).__name__)
                # Only the error's kind and reason: a transport's message may quote an address.
                error = f"{type(exc).__name__}: {getattr(exc, 'reason', '') or 'see the logs'}"
                with self.store.transaction():
                    self.store.outbox_settle(record.id, owner=owner, state="retry", now=now, error=error)
                    for later in records[index + 1:]:
                        self.store.outbox_settle(later.id, owner=owner, state="waiting", now=now)
                    trail.add("delivery.failed", record=record.id, channel=leg.channel.name,
                              error=type(exc).__name__)
                    trail.flush()
                f = finding("DELIVERY_FAILED", plugin=leg.channel.plugin, channel=leg.channel.name,
                            severity=Severity.WARN, detail=type(exc).__name__)
                return self._outcome(req, Status.FAILED, channels, [*findings, f],
                                     tuple(r.id for r in records), explanation, tuple(receipts))
            receipts.append(receipt)
            now = self.clock()
            done = record.evolve(status="completed", sent=receipt.at or now, provider_id=receipt.provider_id)
            # "Sent" must survive a filer that fails now: the message has left, and a row still
            # pending would be sent again. The filing runs in a savepoint of the same commit.
            with self.store.transaction():
                if not self.store.outbox_settle(record.id, owner=owner, state="sent", now=now,
                                                provider_id=receipt.provider_id):
                    log.error("request %s: the outbox row of record %s was taken over during the send",
                              req.id, record.id)
                trail.add("sent", record=record.id, channel=leg.channel.name, provider_id=receipt.provider_id)
                try:
                    with self.store.savepoint():
                        self.file(done)
                except _FilingFailed as failed:
                    log.error("request %s: sent on %s but the outcome could not be filed by %s",
                              req.id, leg.channel.name, failed.plugin)
                    trail.add("record.not_filed", record=record.id, plugin=failed.plugin,
                              reasons=["RECORD_NOT_FILED"])
                    findings = [*findings, finding("RECORD_NOT_FILED", plugin=failed.plugin, severity=Severity.WARN,
                                                   detail="outcome after sending")]
                trail.flush()
        log.info("request %s sent on %s", req.id, "+".join(channels))
        return self._outcome(req, Status.SENT, channels, findings, tuple(r.id for r in records),
                             explanation, tuple(receipts))

    def _outcome(
        self,
        req: Request,
        status: Status,
        channels: tuple[str, ...],
        findings: Iterable[Finding],
        record_ids: tuple[str, ...],
        explanation: tuple[str, ...],
        receipts: tuple[Receipt, ...] = (),
    ) -> Outcome:
        return Outcome(
            request_id=req.id, status=status, channels=channels,
            findings=tuple(f for f in findings if f.severity is not Severity.INFO),
            record_ids=record_ids, receipts=receipts, explanation=explanation,
            category=req.category, patient_ref=req.patient_ref,
        )

    def preview(self, request: Request | Mapping[str, Any] | str | bytes) -> Outcome:
        """What :meth:`send` would decide for ``request``, with nothing filed, stored or sent.

        Unlike send, every candidate is judged, so the explanation says for each channel why it
        would be chosen, would serve as a fallback, or is rejected (``emrcomm check --patient``).
        """
        limits = self.config.limits
        req = request if isinstance(request, Request) else fhir.parse_request(request, limits=limits)
        check_request(req, limits)
        now = self.clock()
        recipient = self.find_recipient(req)
        if recipient is None:
            return self._outcome(req, Status.BLOCKED, (), [finding("RECIPIENT_UNKNOWN", plugin="host",
                                 detail=req.patient_ref)], (), ("no directory plugin knows this patient",))
        message = self.render(req, recipient)
        facts = self.inspect(message)
        plan = self.plan(message, recipient, facts)
        explanation = [f"{channel}: not proposed ({why})" for channel, why in (plan.rejected if plan else ())]
        chosen: _Verdict | None = None
        findings: list[Finding] = []
        for candidate in plan.candidates if plan else ():
            verdict = self._judge(candidate, message, recipient, facts, now)
            label = candidate.label
            why = f" ({candidate.reason})" if candidate.reason else ""
            codes = ", ".join(sorted({f.code for f in verdict.blocks}))
            if chosen is None and (not verdict.blocks or verdict.holdable):
                chosen = verdict
                findings += verdict.findings
                explanation.append(f"{label}: would be held ({codes})" if verdict.blocks
                                   else f"{label}: would be chosen{why}")
            elif verdict.blocks:
                findings += [f for f in verdict.blocks if chosen is None]
                explanation.append(f"{label}: rejected ({codes})")
            else:
                explanation.append(f"{label}: would pass, as a fallback{why}")
        if chosen is None:
            if not plan or not plan.candidates:
                findings.append(finding("NO_ROUTE", plugin="host"))
            return self._outcome(req, Status.BLOCKED, (), findings, (), tuple(explanation))
        status = Status.HELD if chosen.blocks else Status.SENT
        channels = tuple(leg.channel.name for leg in chosen.legs)
        return self._outcome(req, status, channels, findings, (), tuple(explanation))

    # reading back --------------------------------------------------------------------------------
    def records(self, **filters: Any) -> dict[str, Any]:
        """Filed Communications as a FHIR searchset Bundle (filters: patient, status, channel,
        category, since, until)."""
        return fhir.searchset(self.store.find_records(**filters))

    def check(
        self, text: str, *, channel: str, category: str = "appointment-reminder", language: str = "en"
    ) -> tuple[Finding, ...]:
        """Findings for a text on a channel, without a patient: what ``emrcomm check`` prints."""
        if channel not in self.channels:
            raise RequestError(f"unknown channel {channel!r}; choose one of: {', '.join(sorted(self.channels))}")
        check_text(text, "the text", self.config.limits)
        if category not in set(Category):
            raise RequestError(f"unknown category {category!r}; choose one of: {', '.join(c.value for c in Category)}")
        req = Request("Patient/check", category, id="check", text=text)
        message = Message(request=req, text=text, language=language)
        recipient = _CHECK_RECIPIENT
        route = Route(channel=channel, address=_CHECK_ADDRESSES.get(channel, ""))
        facts = self.inspect(message)
        found = tuple(f for f in facts if f.code == "CHECK_FAILED")
        found += self.validate(message, recipient, self.channels[channel], route, facts, self.clock())
        return tuple(f for f in found if f.code not in RECIPIENT_CODES and f.severity is not Severity.INFO)


_CHECK_ADDRESSES = {"sms": "+15146712345", "email": "check@example.org", "portal": ""}
_CHECK_RECIPIENT = Recipient(
    patient_ref="Patient/check",
    contact_points=(ContactPoint("sms", _CHECK_ADDRESSES["sms"], verified=True),
                    ContactPoint("email", _CHECK_ADDRESSES["email"], verified=True)),
    consents=tuple(ConsentGrant(ch, p) for ch in ("sms", "email", "portal") for p in Purpose),
    time_zone="America/Toronto",
)


def _named(result: Iterable[Finding] | None, plugin: str) -> Iterator[Finding]:
    for f in result or ():
        yield f if f.plugin else attrs.evolve(f, plugin=plugin)


def _payload(leg: _Leg, record: Record) -> dict[str, Any]:
    """What the worker needs to deliver this leg later without re-rendering it, and to file its
    outcome like the record filed now (``filed``: what the CommunicationRequest copy does not say).

    For a channel that holds content (the portal) the text is already stored encrypted by the
    channel; the outbox keeps only what identifies it.
    """
    m = leg.message
    filed = {"based_on": record.request.based_on, "sender": record.request.sender,
             "findings": [[f.code, f.severity.value, f.message] for f in record.findings if not f.blocks]}
    if leg.channel.holds_content:
        bare = attrs.evolve(m.request, text=None, variables={}, attachments=())
        return {"address": leg.route.address, "role": leg.route.role, "sealed": True,
                "language": m.language, "request": fhir.request_to_fhir(bare), "filed": filed}
    request = m.request
    if leg.link:
        request = attrs.evolve(request, variables={k: LINK_SLOT if v == leg.link else v
                                                   for k, v in request.variables.items()})
    payload = {
        "address": leg.route.address,
        "role": leg.route.role,
        "text": _withheld(m.text, leg.link, LINK_SLOT),
        "subject": m.subject,
        "html": _withheld(m.html, leg.link, LINK_SLOT),
        "language": m.language,
        "template": m.template,
        "request": fhir.request_to_fhir(request),
        "filed": filed,
    }
    if leg.link_from is not None:
        payload["link_from"] = {"channel": leg.link_from[0], "id": leg.link_from[1]}
    return payload


# A notice's link opens the patient's message: the chart shows LINK_WITHHELD in its place, and
# the outbox LINK_SLOT, which payload_text() fills again from the channel when it is delivered.
LINK_WITHHELD = "[secure link]"
LINK_SLOT = "{{secure-link}}"


def _withheld(text: str | None, link: str | None, mark: str = LINK_WITHHELD) -> str | None:
    return text.replace(link, mark) if text and link else text


def payload_text(payload: Mapping[str, Any], channels: Mapping[str, Channel], field: str = "text") -> str | None:
    """The text (or ``html``) an outbox payload delivers, with a notice's link derived again.

    Whoever delivers from the outbox (the worker) uses this rather than ``payload["text"]``.
    """
    text = payload.get(field)
    source = payload.get("link_from")
    if not text or not source:
        return cast("str | None", text)
    linker = getattr(channels[source["channel"]].transport, "link_for", None)
    if linker is None:
        raise PluginError(f"channel {source['channel']!r} no longer gives links; the notice cannot be delivered")
    return cast(str, text).replace(LINK_SLOT, linker(source["id"]))
