"""``fhir-records``: file every record on a FHIR R4 server, through a durable queue.

Filing only queues: ``emrcomm_file_record`` writes a row in the store's ``filing_queue`` table,
inside the host's transaction, next to the record and the outbox row, so a message never leaves
before its record is durably queued, and a record is never lost to a server that is down. A
pusher (a background thread, or ``emrcomm fhir-records flush``) then sends the queued Communications,
as the embedded chart holds them now, in transaction Bundles:

* a record the server has not seen: ``POST`` with ``ifNoneExist: identifier=<record id>``, so a
  retry after a lost answer finds the first copy (200) instead of making a second;
* a record the server has: ``PUT Communication/<the server's id>`` with its latest version, with
  ``If-Match`` on the server's version of what was filed last, so a process holding an older
  version never overwrites a newer one another process filed (409/412: it stays queued and is
  filed again, as the chart holds it then). A copy someone else edited there is read back and
  emrcomm's fields merged onto it (merge.py); one where a field emrcomm owns was changed too is
  set aside for a person, and ``emrcomm fhir-records overwrite`` files it over that change.

A row is done only when the version it filed is still the record's version (a delivery update
that changed the record meanwhile keeps it queued). Connection errors, timeouts, 429 and 5xx leave
everything queued and back off; a 4xx for one record rejects that record only, with the server's
reason, for ``emrcomm fhir-records queue`` to show and ``emrcomm fhir-records flush --retry-rejected`` to
retry once fixed.
"""

from __future__ import annotations

import copy
import json
import logging
import random
import sqlite3
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from attrs import frozen

import emrcomm
from emrcomm import ConfigError, EmrcommError, Migration, settings_schema
from emrcomm.fhir import RECORD_ID_SYSTEM, communication
from emrcomm.storage import RecordUnreadable, StoreClosed, schema_version
from emrcomm_fhirserver.client import (
    RETRY_STATUSES,
    Answer,
    BadAnswer,
    FhirClient,
    ServerRefused,
    ServerUnavailable,
    check_base_url,
    issue_line,
)
from emrcomm_fhirserver.merge import merge
from emrcomm_fhirserver.queue import MIGRATIONS, FilingQueue

log = logging.getLogger("emrcomm.plugin.fhir-records")
MAX_RETRY_AFTER = 3600.0  # the longest Retry-After the pusher waits for


@frozen
class FlushReport:
    """What one flush did: filed, rejected, still waiting, and why it stopped early (if it did)."""

    filed: int
    rejected: int
    pending: int
    error: str | None = None
    retry_after: float | None = None  # seconds the server asked us to wait (Retry-After), if it did

    def to_dict(self) -> dict[str, Any]:
        return {"filed": self.filed, "rejected": self.rejected, "pending": self.pending, "error": self.error}


@frozen
class _Item:
    record_id: str
    version: int
    server_id: str | None
    server_version: str | None
    resource: dict[str, Any]


def client_from(context: emrcomm.PluginContext) -> FhirClient:
    """A client for the server in this plugin's settings (token from the environment or a file)."""
    settings = context.settings
    base = check_base_url(settings["base_url"], f"plugins.{context.name}.base_url")
    ca_bundle = settings.get("ca_bundle")
    token = settings.get("token")
    source = None
    if isinstance(token, Mapping):
        source = f"the file {context.path(token['file'])}" if "file" in token else f"the variable {token.get('env')}"
    return FhirClient(
        base,
        token=context.secret_later("token"),
        renew=lambda: context.secret("token"),
        token_source=source,
        timeout=float(settings.get("timeout", 10)),
        retries=int(settings.get("retries", 2)),
        verify=str(context.path(ca_bundle)) if ca_bundle else True,
    )


def identifier_query(record_id: str) -> str:
    return urlencode({"identifier": f"{RECORD_ID_SYSTEM}|{record_id}"})


class RecordsPlugin:
    """Files every record of the embedded chart on a FHIR server (see the module docstring)."""

    settings_schema = settings_schema("emrcomm_fhirserver", "records.schema.json")

    def __init__(self, context: emrcomm.PluginContext) -> None:
        self.context = context
        self.name = context.name
        settings = context.settings
        self.client = client_from(context)
        self.base_url = self.client.base_url
        self.batch_size = int(settings.get("batch_size", 8))
        self.bundle_kind = str(settings.get("bundle", "transaction"))
        self.validate = bool(settings.get("validate", True))
        self.max_backoff = float(settings.get("max_backoff", 60))
        self.drain_seconds = float(settings.get("drain_seconds", 5))
        self.last_error: str | None = None
        self._reader: FhirClient | None = None
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._retry_at = 0.0  # monotonic time before which the pusher leaves the server alone
        self._failures = 0  # flushes in a row that found the server unavailable
        self._conflicts = 0  # records answered 409/412 in this flush
        self._thread: threading.Thread | None = None
        self._background = settings.get("push", "background") == "background"
        self.queue = FilingQueue(context.storage.db)

    def start(self) -> None:
        """Called by the host once the queue's table exists: the pusher starts, and files what an
        earlier run left queued. A host that only reads (``emrcomm records``) files nothing."""
        if self._background and not self.context.read_only:
            self._thread = threading.Thread(target=self._run, name=f"emrcomm-{self.name}", daemon=True)
            self._thread.start()
            self._wake.set()

    # ------------------------------------------------------------------ hooks
    @emrcomm.hookimpl
    def emrcomm_migrations(self) -> tuple[Migration, ...]:
        return MIGRATIONS

    @emrcomm.hookimpl
    def emrcomm_probe(self) -> list[emrcomm.Probe]:
        """``emrcomm doctor``: the server answers R4 and takes the token (a Communication search)."""
        from emrcomm_fhirserver.probes import probe

        return [probe(self.client, self.name, "Communication", "records")]

    @emrcomm.hookimpl
    def emrcomm_cli_commands(self) -> list[emrcomm.Command]:
        from emrcomm_fhirserver.commands import COMMANDS

        return COMMANDS

    @emrcomm.hookimpl
    def emrcomm_file_record(self, record: emrcomm.Record) -> None:
        # Inside the host's transaction: durable together with the record and the outbox row.
        self.queue.put(target=self.name, record_id=record.id, version=record.version, now=self.context.clock())
        self._wake.set()

    # ------------------------------------------------------------------ the pusher
    def _run(self) -> None:
        delay: float | None = None
        while True:
            self._wake.wait(delay)
            if self._stop.is_set():
                return
            wait = self._retry_at - time.monotonic()
            if wait > 0:  # backing off: new records wait with the others
                self._wake.clear()
                delay = wait
                continue
            self._wake.clear()
            try:
                report = self.flush()
            except (sqlite3.ProgrammingError, StoreClosed):
                return  # the store was closed under us: the host is gone
            except Exception as exc:  # never let the thread die; the queue keeps everything
                log.error("%s: filing stopped by %s; records stay queued", self.name, type(exc).__name__)
                log.debug("%s: filing stopped", self.name, exc_info=True)
                report = FlushReport(0, 0, 1, type(exc).__name__)
            if report.pending:  # the server is away, or records kept changing: try again after a pause
                delay = self._back_off(report.retry_after)
            else:
                self._retry_at = 0.0
                self._failures = 0
                delay = None

    def _back_off(self, retry_after: float | None = None) -> float:
        """The pause before the next flush: exponential up to ``max_backoff``, never shorter than
        the server's Retry-After (honoured up to an hour)."""
        self._failures += 1
        delay = min(self.max_backoff, 0.5 * 2 ** (self._failures - 1)) * (0.5 + random.random() / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        self._retry_at = time.monotonic() + delay
        return delay

    def flush(self, *, retry_rejected: bool = False) -> FlushReport:
        """Push everything queued now, batch by batch, until the queue is empty or the server
        stops answering. Safe to call from any thread (one flush at a time)."""
        with self._flush_lock:
            if retry_rejected:
                self.queue.retry(target=self.name, now=self.context.clock())
            filed = rejected = 0
            self._conflicts = 0
            error: str | None = None
            wait: float | None = None
            seen: Counter[str] = Counter()
            while True:
                rows = self.queue.due(target=self.name, limit=self.batch_size)
                if not rows or any(seen[r["record_id"]] >= 3 for r in rows):
                    break  # empty, or a record that keeps coming back: leave it for the next flush
                seen.update(r["record_id"] for r in rows)
                try:
                    done, refused, progress = self._push(rows)
                except BadAnswer as exc:
                    error = f"the FHIR server {self.base_url}'s answer could not be read: {exc}"
                    break
                except ServerUnavailable as exc:
                    error = f"the FHIR server {self.base_url} is unavailable: {exc}"
                    wait = exc.retry_after
                    break
                except ServerRefused as exc:
                    error = self._refusal(exc)
                    break
                filed += done
                rejected += refused
                if not progress:
                    break
            pending = self.queue.counts(target=self.name).get("pending", 0)
            if error is None and self._conflicts and pending:
                error = (f"{self._conflicts} record(s) changed on the FHIR server {self.base_url} since emrcomm "
                         "last filed them (HTTP 409/412: another process filing them?); nothing was "
                         "overwritten and they stay queued")
            self.last_error = error
            if error:
                log.warning("%s: %s; records stay queued", self.name, error)
            return FlushReport(filed, rejected, pending, error, wait)

    def _refusal(self, exc: ServerRefused) -> str:
        if 300 <= exc.status < 400:
            return (f"the FHIR server {self.base_url} answered HTTP {exc.status}: {exc.detail}; set "
                    f"plugins.{self.name}.base_url to the address the server answers at itself")
        if exc.status in (401, 403):
            return (f"the FHIR server {self.base_url} refused our credentials (HTTP {exc.status}): check "
                    f"plugins.{self.name}.token and the variable or file it names")
        return f"the FHIR server {self.base_url} refused the {self.bundle_kind}: HTTP {exc.status}: {exc.detail}"

    def _push(self, rows: Sequence[Mapping[str, Any]]) -> tuple[int, int, int]:
        """File one batch. Returns (filed, rejected, rows whose state moved)."""
        store, now = self.context.storage, self.context.clock()
        items: list[_Item] = []
        refusals: list[tuple[str, str]] = []
        unchanged: list[tuple[Mapping[str, Any], int]] = []
        merged: list[tuple[_Item, str | None]] = []  # filed over others' additions: read, merge, update
        for row in rows:  # checked outside any transaction: the send path never waits for it
            try:
                record = store.records.get(row["record_id"])
            except RecordUnreadable as exc:  # set aside, not filed: the rest of the queue goes on
                log.error("%s: record %s cannot be read by this release and is not filed", self.name, row["record_id"])
                refusals.append((row["record_id"], f"{exc}: file it again with a release that reads it "
                                 "(emrcomm fhir-records flush --retry-rejected)"))
                continue
            if record is None:
                refusals.append((row["record_id"], "the record is not in the embedded store"))
                continue
            if row["server_id"] is not None and row["pushed_version"] == record.version:
                unchanged.append((row, record.version))  # the server has this very version already
                continue
            item = _Item(row["record_id"], record.version, row["server_id"], row["server_version"],
                         _for_server(communication(record), row["server_id"]))
            problem = _invalid(item.resource) if self.validate else None
            if problem is not None:
                log.error("%s: record %s is not valid FHIR R4 and is not filed", self.name, item.record_id)
                refusals.append((item.record_id, f"not valid FHIR R4: {problem}"))
                continue
            if row["filed_resource"] is not None and item.server_id is not None:
                merged.append((item, row["filed_resource"]))
            else:
                items.append(item)
        if refusals or unchanged:
            with store.transaction():
                for record_id, error in refusals:
                    self.queue.mark(target=self.name, record_id=record_id, state="rejected", now=now,
                                            error=error)
                for row, version in unchanged:
                    self.queue.mark(target=self.name, record_id=row["record_id"], state="done", now=now,
                                    version=version)
        rejected = len(refusals)
        filed, moved, later, unproven = 0, rejected + len(unchanged), 0, 0
        if items:
            answers = self._bundle(items)
            with store.transaction():  # one commit (one fsync) for the whole batch
                for item, answer in zip(items, answers):
                    state = self._settle(item, answer)
                    if state == "conflict":  # changed on the server since emrcomm filed it
                        merged.append((item, None))
                        continue
                    filed += state == "done"
                    rejected += state == "rejected"
                    later += state == "later"
                    unproven += state == "unproven"
                    moved += state not in ("later", "unproven")
        for item, filed_before in merged:  # outside any transaction: each is a read and an update
            state = self._reconcile(item, filed_before)
            filed += state == "done"
            rejected += state == "rejected"
            self._conflicts += state == "conflict"
            moved += state != "conflict"
        if unproven:  # stays queued: the conditional create finds the copy, if there is one, next time
            raise BadAnswer(f"{unproven} of {len(items)} records were answered without a Location or id "
                            "(or with a status that is not 2xx), so nothing shows they were filed")
        if later:  # a batch Bundle's entries may each say "come back later" (429, 5xx)
            raise ServerUnavailable(f"{later} of {len(items)} records were answered with 429 or 5xx")
        return filed, rejected, moved

    def _bundle(self, items: Sequence[_Item]) -> list[Answer | ServerRefused]:
        """The server's answer for each item, filed in one Bundle (one by one if it is refused)."""
        entries = [self._entry(item) for item in items]
        answers: list[Answer | ServerRefused]
        try:
            answers = list(self.client.bundle(entries, self.bundle_kind))
        except ServerRefused as exc:
            if exc.about_settings:
                raise
            # One bad resource spoils a transaction: file them one at a time to find it.
            log.info("%s: the %s was refused (HTTP %d); filing its %d records one by one",
                     self.name, self.bundle_kind, exc.status, len(items))
            answers = [self._one(item) for item in items]
        return answers

    def _entry(self, item: _Item) -> dict[str, Any]:
        if item.server_id is None:
            return {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": item.resource,
                    "request": {"method": "POST", "url": "Communication", "ifNoneExist": identifier_query(item.record_id)}}
        request = {"method": "PUT", "url": f"Communication/{item.server_id}"}
        if item.server_version:
            request["ifMatch"] = f'W/"{item.server_version}"'
        return {"fullUrl": f"{self.base_url}/Communication/{item.server_id}", "resource": item.resource,
                "request": request}

    def _one(self, item: _Item) -> Answer | ServerRefused:
        try:
            if item.server_id is None:
                return self.client.create(item.resource, if_none_exist=identifier_query(item.record_id))
            return self.client.update(item.resource, if_match=item.server_version)
        except ServerRefused as exc:
            if exc.about_settings:
                raise
            return exc

    def _settle(self, item: _Item, answer: Answer | ServerRefused) -> str:
        """Record what the server said about one record: done, rejected, pending, later (try
        again after a pause) or unproven (an answer that does not show the server has it: a
        create without a Location or id, a status other than 2xx; it stays queued)."""
        now = self.context.clock()
        if not isinstance(answer, ServerRefused) and (answer.status in RETRY_STATUSES or answer.status == 0):
            return "later"
        if isinstance(answer, ServerRefused) or answer.status >= 400:
            status = answer.status
            issue = issue_line(answer.outcome, list(_words(item.resource)))
            detail = issue or (answer.detail if isinstance(answer, ServerRefused) else
                               f"refused in the {self.bundle_kind}, without an OperationOutcome")
            if item.server_id is not None and status in (404, 410):
                self.queue.forget_server_id(target=self.name, record_id=item.record_id)
                return "pending"  # the server lost it: file it again by identifier
            if item.server_id is not None and status in (409, 412):
                # The server's copy is no longer the version this process last saw filed: another
                # process filed it meanwhile, or someone edited it there. _reconcile tells them apart.
                log.info("%s: record %s changed on the server since it was filed (HTTP %d)",
                         self.name, item.record_id, status)
                return "conflict"
            log.error("%s: record %s refused by the server (HTTP %d, %s)", self.name, item.record_id, status,
                      issue.split(":", 1)[0] if issue else "no OperationOutcome")
            self.queue.mark(target=self.name, record_id=item.record_id, state="rejected", now=now,
                                    error=f"HTTP {status}: {detail}")
            return "rejected"
        if not 200 <= answer.status < 300 or (item.server_id is None and answer.id is None):
            log.warning("%s: record %s answered HTTP %d without a Location or id; it stays queued",
                        self.name, item.record_id, answer.status)
            return "unproven"
        server_id = answer.id or item.server_id
        if item.server_id is None and answer.status == 200 and not _same(answer.resource, item.resource):
            # A copy was already there (an earlier attempt whose answer was lost), perhaps an older
            # version: keep the server's id and file the latest version over it next round.
            self.queue.mark(target=self.name, record_id=item.record_id, state="pending", now=now,
                            server_id=server_id, server_version=answer.version)
            return "pending"
        self.queue.mark(target=self.name, record_id=item.record_id, state="done", now=now,
                        version=item.version, server_id=server_id, server_version=answer.version)
        return "done"

    def _reconcile(self, item: _Item, filed: str | None, *, overwrite: bool = False) -> str:
        """File ``item`` over a server copy that may hold others' changes: read the copy, merge
        emrcomm's fields onto it (merge.py) and update it once, with If-Match on the version read.
        ``filed`` is what emrcomm filed last when it was kept (JSON), else it is read back from
        the server's history (the version emrcomm filed). Returns done, rejected (a field emrcomm
        owns was changed there too: set aside for a person, nothing overwritten), pending (the
        server lost it) or conflict (another emrcomm process filed it meanwhile, or the copy
        changed again while merging: it stays queued)."""
        row = self.queue.get(target=self.name, record_id=item.record_id)
        if row is None or (row["server_id"], row["server_version"]) != (item.server_id, item.server_version):
            return "conflict"  # another process filed it: it goes again, as the chart and the queue hold it then
        assert item.server_id is not None
        theirs = self.client.read("Communication", item.server_id)
        if theirs is None:
            with self.context.storage.transaction():
                self.queue.forget_server_id(target=self.name, record_id=item.record_id)
            return "pending"
        before = json.loads(filed) if filed else self._filed_version(item)
        if before is None and not overwrite:
            return self._set_aside(item, "the version emrcomm filed there last cannot be read back to tell "
                                         "emrcomm's fields from the others'")
        result = merge(theirs, item.resource, before or {}, overwrite=overwrite)
        if result.clashes:
            return self._set_aside(item, f"{', '.join(result.clashes)} changed there by someone else, and "
                                         "emrcomm's differs")
        try:
            answer = self.client.update(result.resource, if_match=Answer(200, None, theirs).version)
        except ServerRefused as exc:
            if exc.about_settings:
                raise
            if exc.status in (409, 412):
                log.info("%s: record %s changed on the server again while merging; it stays queued",
                         self.name, item.record_id)
                return "conflict"
            with self.context.storage.transaction():  # refused (4xx), or gone (404: filed again by identifier)
                return self._settle(item, exc)
        ours = {k: v for k, v in item.resource.items() if k != "id"}
        others = {k: v for k, v in result.resource.items() if k != "id"} != ours
        with self.context.storage.transaction():
            self.queue.mark(target=self.name, record_id=item.record_id, state="done", now=self.context.clock(),
                            version=item.version, server_id=item.server_id, server_version=answer.version)
            self.queue.keep_filed(target=self.name, record_id=item.record_id,
                                  resource=json.dumps(item.resource, sort_keys=True) if others else None)
        if others:
            log.info("%s: record %s filed onto Communication/%s, keeping what others added there",
                     self.name, item.record_id, item.server_id)
        return "done"

    def _filed_version(self, item: _Item) -> dict[str, Any] | None:
        """The server's copy of the version emrcomm filed last (its history), or None."""
        if not item.server_version:
            return None
        try:
            return self.client.request("GET", f"Communication/{item.server_id}/_history/{item.server_version}").resource
        except ServerRefused as exc:
            if exc.about_settings:
                raise
            return None

    def _set_aside(self, item: _Item, why: str) -> str:
        """A record the server holds changed in a way only a person can settle: rejected, with
        what to do. The log names ids and fields, never their values."""
        log.warning("%s: record %s (Communication/%s on the server): %s; set aside, nothing overwritten",
                    self.name, item.record_id, item.server_id, why)
        with self.context.storage.transaction():
            self.queue.mark(target=self.name, record_id=item.record_id, state="rejected", now=self.context.clock(),
                            error=f"HTTP 412: Communication/{item.server_id} was changed on the server: {why}; "
                                  "nothing was overwritten. Check it there, then `emrcomm fhir-records overwrite "
                                  f"{item.record_id}` files emrcomm's fields over it (what others added is kept)")
        return "rejected"

    # ------------------------------------------------------------------ for the CLI and the EMR
    def backfill(self) -> int:
        """Queue the records the embedded chart held before this plugin was switched on (the
        ones made since are queued as they are filed); ``flush`` or the pusher files them."""
        with self.context.storage.transaction():
            queued = self.queue.backfill(target=self.name, now=self.context.clock())
        self._wake.set()
        return queued

    def overwrite(self, record_id: str) -> str:
        """File a record set aside because a field emrcomm owns was changed on the server, with
        emrcomm's fields over that change (what others added that emrcomm does not own is kept).
        Returns ``done``, or the state it was left in."""
        with self._flush_lock:
            row = self.queue.get(target=self.name, record_id=record_id)
            record = self.context.storage.records.get(record_id)
            if row is None or row["server_id"] is None or record is None:
                raise EmrcommError(f"{self.name}: record {record_id} is not filed on {self.base_url}, so there is "
                                   "nothing to overwrite; `emrcomm fhir-records queue` lists the records set aside")
            item = _Item(record_id, record.version, row["server_id"], row["server_version"],
                         _for_server(communication(record), row["server_id"]))
            problem = _invalid(item.resource) if self.validate else None
            if problem is not None:
                raise EmrcommError(f"{self.name}: record {record_id} is not valid FHIR R4 ({problem}); not filed")
            with self.context.storage.transaction():
                self.queue.retry(target=self.name, now=self.context.clock(), record_id=record_id)
            try:
                state = self._reconcile(item, row["filed_resource"], overwrite=True)
            except ServerUnavailable as exc:
                raise EmrcommError(f"{self.name}: the FHIR server {self.base_url} is unavailable: {exc}; "
                                   "the record stays queued") from None
            except ServerRefused as exc:
                raise EmrcommError(f"{self.name}: {self._refusal(exc)}") from None
            log.warning("%s: record %s filed over the changes made on the server (fhir-records overwrite): %s",
                        self.name, record_id, state)
            return state

    def queue_status(self) -> dict[str, Any]:
        # A store this plugin has not started on yet (it was switched on since, and only read
        # since: `fhir-records queue`) has no queue: nothing waits, nothing was filed.
        made = schema_version(self.queue.db, MIGRATIONS[0].owner) > 0
        counts = self.queue.counts(target=self.name) if made else {}
        return {
            "target": self.name,
            "server": self.base_url,
            "pending": counts.get("pending", 0),
            "done": counts.get("done", 0),
            "rejected": self.queue.rejected(target=self.name) if made else [],
            "last_error": self.last_error,
        }

    def search(self, params: Mapping[str, str] | Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """Communications on the server matching FHIR search ``params`` (all pages)."""
        if self._reader is None:
            self._reader = client_from(self.context)
        try:
            return list(self._reader.search("Communication", params))
        except ServerUnavailable as exc:
            raise ConfigError(f"plugins.{self.name}: the FHIR server {self.base_url} is unavailable: {exc}") from None
        except ServerRefused as exc:
            raise ConfigError(f"plugins.{self.name}: {self._refusal(exc)}") from None

    def close(self) -> None:
        """Give the pusher a moment to file what is queued (not when the server is known to be
        down), then stop it. Whatever is left stays queued for the next start."""
        if self._thread is not None and self._thread.is_alive():
            deadline = time.monotonic() + self.drain_seconds
            while time.monotonic() < deadline and self._retry_at == 0.0 and self._pending() > 0:
                self._wake.set()
                time.sleep(0.02)
            self._stop.set()
            self._wake.set()
            self._thread.join(timeout=self.client.timeout * (self.client.retries + 1) + 5)
        self.client.close()
        if self._reader is not None:
            self._reader.close()

    def _pending(self) -> int:
        try:
            return self.queue.counts(target=self.name).get("pending", 0)
        except (sqlite3.ProgrammingError, StoreClosed):
            return 0


def _for_server(resource: Mapping[str, Any], server_id: str | None) -> dict[str, Any]:
    """The Communication as the server gets it: its own id (none for a create), no local meta."""
    out = copy.deepcopy(dict(resource))
    out.pop("meta", None)
    if server_id is None:
        out.pop("id", None)
    else:
        out["id"] = server_id
    return out


_WORDS = frozenset({"contentString", "text", "display"})


def _words(value: Any) -> Iterator[str]:
    """The words a resource carries (its payload, notes, names shown): what a server's
    diagnostics must not repeat. Codes, systems and references are ids, and stay readable."""
    if isinstance(value, Mapping):
        for key, v in value.items():
            if key in _WORDS and isinstance(v, str):
                yield v
            else:
                yield from _words(v)
    elif isinstance(value, list):
        for v in value:
            yield from _words(v)


def _same(server: Mapping[str, Any] | None, ours: Mapping[str, Any]) -> bool:
    if not server:
        return False
    theirs = {k: v for k, v in server.items() if k not in ("id", "meta")}
    return theirs == {k: v for k, v in ours.items() if k not in ("id", "meta")}


def _invalid(resource: Mapping[str, Any]) -> str | None:
    """Why ``resource`` is not valid R4 (fhir.resources R4B model), or None. The server checks
    nothing itself, so this is the check."""
    from pydantic import ValidationError

    from emrcomm.fhir import validate_resource

    try:
        validate_resource(resource)
    except ValidationError as exc:
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(resource)'}: {e['msg']}"
                         for e in exc.errors()[:3])
    return None
