"""The API's routes under ``/fhir``: each handler reads its input within a size limit, checks the
bearer token's scope, does its one thing through the host (in a worker thread: the host is
synchronous), answers FHIR JSON, and leaves one audit entry naming the client.

Whatever comes in, the answer is FHIR: a refusal is an OperationOutcome with a 4xx; an error of
ours is a 500 OperationOutcome and one log line with the exception's type, never its values.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from email.utils import format_datetime
from functools import partial
from importlib import metadata
from importlib import resources as package_files
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import attrs
import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from emrcomm import fhir
from emrcomm.api import answers, capability, search
from emrcomm.api import consent as consents
from emrcomm.api.auth import Authority, Grant, TokenError
from emrcomm.api.clients import ClientRegistry
from emrcomm.api.outcome import RENDER_TEXT, SUBJECT_TEXT, ApiError, fhir_response
from emrcomm.api.settings import ApiSettings
from emrcomm.api.subscriptions import Subscriptions
from emrcomm.errors import PluginUnavailable, RenderError, RequestConflict, RequestError, SubjectMismatch
from emrcomm.lifecycle.projection import request_status
from emrcomm.limits import escape_controls, loads_json
from emrcomm.model import Category, Identifier, Outcome, Status
from emrcomm.model import Request as EmrRequest
from emrcomm.pipeline.decide import same_patient
from emrcomm.pipeline.digest import check_retry, conflict_text, content_digest, is_conflict
from emrcomm.pipeline.write import ALREADY_HANDLED, is_unreadable_repeat
from emrcomm.storage import StoreUnavailable
from emrcomm.storage.records import RETRYABLE, RecordUnreadable, RequestRow, Unreadable

if TYPE_CHECKING:
    from emrcomm.host import Host

log = logging.getLogger("emrcomm.api")
# The database server cannot be reached (a restart, a failover): 503 with Retry-After, and words
# that tell the EMR what a repeat does (docs/api.md, docs/operations.md).
RETRY_AFTER = "10"
UNAVAILABLE = ("the database cannot be reached now (it is restarting or failing over); send the same request again "
               "(the same id) in a few seconds: it is answered as it stands, and a message is never sent twice for it")


def unavailable() -> ApiError:
    return ApiError(503, "transient", UNAVAILABLE, headers={"retry-after": RETRY_AFTER})


# A plugin's server cannot answer now (the patient directory's, a validator's consent service):
# its check could not run, so nothing was decided. Its words name neither the server nor the
# patient; the log names the plugin and the server.
NOT_DECIDED = ("the request could not be checked now (a server the clinic's checks need, such as its patient "
               "directory, cannot be reached, or answered what it cannot be read as); nothing was sent or filed: "
               "send the same request again (the same id) in a few seconds")


def unreadable_record(ident: str, exc: RecordUnreadable) -> ApiError:
    """A read of a Communication this release cannot read (or of a request, or a repeat of one,
    whose state is read from it): 503, not a 404 or 410 (it is on file:
    a client that syncs the chart must not drop it) nor a 500 (nothing failed unforeseen, and a GET
    did nothing that "may or may not have been done"). The server cannot serve it; another can:
    one of the newer release that wrote it (a replica already upgraded, or this one once it is;
    Retry-After 60), or, damaged, none until the clinic restores it from a backup (no Retry-After)."""
    if exc.newer:
        return ApiError(503, "transient", f"Communication {ident} is on file, {exc}: a server of that release "
                        "answers it; try again once this one is upgraded", headers={"retry-after": "60"},
                        text="This message was filed by a newer version of emrcomm than this server runs; it can be "
                             "shown once the server is upgraded.")
    return ApiError(503, "exception", f"Communication {ident} is on file but {exc}: its stored record is damaged; "
                    "the clinic's administrator can restore it from a backup",
                    text="This message is on file but its stored record is damaged; ask the clinic's administrator "
                         "to restore it from a backup.")


def unreadable_entry(index: int, exc: RecordUnreadable) -> dict[str, Any]:
    """A batch entry repeating a request whose record this release cannot read: the 503 a
    create of it answers, for that entry alone."""
    log.warning("POST batch: entry %d repeats a request whose record %s cannot be read by this release%s; "
                "answered 503", index, exc.record, " (a newer release wrote it)" if exc.newer else "")
    error = unreadable_record(exc.record or "?", exc)
    return answers.error_entry(error.status, error.code, error.diagnostics, error.expression, error.text)


# The longest wait a directory's own Retry-After is passed on as (seconds): a server (or a proxy
# before it) asking for more, or for a date years ahead, would have the EMR hold its messages.
LONGEST_RETRY_AFTER = 300


def not_decided(exc: PluginUnavailable) -> ApiError:
    asked = exc.retry_after
    wait = (RETRY_AFTER if asked is None or not math.isfinite(asked)
            else str(min(LONGEST_RETRY_AFTER, max(1, math.ceil(asked)))))
    return ApiError(503, "transient", NOT_DECIDED, headers={"retry-after": wait})


JSON_TYPES = ("application/fhir+json", "application/json")
NDJSON_TYPES = ("application/fhir+ndjson", "application/x-ndjson", "application/ndjson")
FORM = "application/x-www-form-urlencoded"
TOKEN_FORM_BYTES = 32_768
_DIGITS = re.compile(r"[0-9]{1,18}")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_PREFER = re.compile(r"return=(minimal|representation|OperationOutcome)")
CONFLICT_FIELD = "CommunicationRequest.identifier"  # what a 409 points at: the id used again

Handler = Callable[[Request, Grant | None], Awaitable[Response]]


def definitions() -> dict[str, dict[str, Any]]:
    """The StructureDefinitions shipped in the wheel, by id."""
    out = {}
    for item in package_files.files("emrcomm.api").joinpath("definitions").iterdir():
        if item.name.endswith(".json"):
            data = orjson.loads(item.read_bytes())
            out[data["id"]] = data
    return out


class Api:
    """The handlers, over one host."""

    def __init__(self, host: Host, settings: ApiSettings) -> None:
        self.host = host
        self.settings = settings
        self.limits = host.config.limits
        self.clients = ClientRegistry(host.storage.db, host.clock)
        self.authority = Authority(host.storage.db, self.clients, host.clock, settings.token_seconds)
        self.subscriptions = Subscriptions(host.storage.db, host.clock)
        self.definitions = definitions()
        self.batch_endpoint: Callable[[Request], Awaitable[Response]] | None = None
        self.required_scopes: set[str] = set()  # every scope an operation needs (scopes.ALL says the same)
        try:
            self.version = metadata.version("emrcomm")
        except metadata.PackageNotFoundError:
            self.version = "0"

    # plumbing ------------------------------------------------------------------------------------
    def root(self) -> ASGIApp:
        """``/fhir`` itself (every method): POST is FHIR's batch; anything else an OperationOutcome."""
        batch = self.batch_endpoint
        assert batch is not None

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            request = Request(scope, receive)
            if request.method == "POST":
                response = await batch(request)
            else:
                response = ApiError(405, "not-supported", "the base takes POST (a batch Bundle); GET /fhir/metadata "
                                    "lists what else there is").response()
            await response(scope, receive, send)

        return _Asgi(app)

    def base(self, request: Request) -> str:
        if self.settings.base_url:
            return self.settings.base_url
        return f"{request.url.scheme}://{request.url.netloc}/fhir"

    def operation(self, scope: str | None, name: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` behind the token check (``scope``: the one it needs; None: any valid
        token), with refusals as OperationOutcomes and one audit entry per authenticated call."""
        if scope is not None:
            self.required_scopes.add(scope)

        async def endpoint(request: Request) -> Response:
            grant: Grant | None = None
            request.state.audit = {}
            try:
                grant = await run_in_threadpool(self._grant, request, scope)
                _check_wants_json(request)
                response = await handler(request, grant)
            except ApiError as exc:
                response = exc.response()
            except RequestConflict as exc:
                response = ApiError(409, "conflict", str(exc), expression=exc.expression).response()
            except RenderError as exc:
                response = ApiError(422, "processing", str(exc), expression=exc.expression,
                                    text=RENDER_TEXT).response()
            except SubjectMismatch as exc:
                response = ApiError(422, "business-rule", str(exc), expression=exc.expression,
                                    text=SUBJECT_TEXT).response()
            except RequestError as exc:
                response = ApiError(400, exc.issue_code, str(exc), expression=exc.expression).response()
            except StoreUnavailable:  # the store logs it once, not once a request
                response = unavailable().response()
            except PluginUnavailable as exc:
                log.warning("%s %s not decided: %s", request.method, name, exc)
                response = not_decided(exc).response()
            except RecordUnreadable as exc:  # a request read or repeated whose record this release cannot read
                log.warning("%s %s: record %s cannot be read by this release%s; answered 503", request.method, name,
                            exc.record, " (a newer release wrote it)" if exc.newer else "")
                response = unreadable_record(exc.record or "?", exc).response()
            except Exception as exc:
                log.error("%s %s failed: %s", request.method, name, type(exc).__name__)
                response = ApiError(500, "exception", "the server failed on this request; nothing more is known "
                                    "here (the server's log names the error); try again or tell the clinic").response()
            if grant is not None:
                fields = {k: v for k, v in request.state.audit.items() if v}
                try:
                    await run_in_threadpool(self.host.audit.record, "api.call", client=grant.client_id,
                                            operation=name, http_status=response.status_code, **fields)
                except StoreUnavailable:
                    # Done, perhaps, but its audit entry not written: the same request again is
                    # answered as it stands (a create is not sent twice), with its entry.
                    response = unavailable().response()
            return response

        return endpoint

    def _grant(self, request: Request, scope: str | None) -> Grant:
        header = request.headers.get("authorization", "")
        kind, _, token = header.partition(" ")
        grant = self.authority.grant(token.strip()) if kind.lower() == "bearer" else None
        if grant is None:
            raise ApiError(401, "login", "a valid bearer token is needed: get one at the token endpoint "
                           "(/.well-known/smart-configuration says where) and send 'Authorization: Bearer <token>'",
                           headers={"www-authenticate": 'Bearer realm="emrcomm"'})
        if scope is not None and not grant.allows(scope):
            raise ApiError(403, "forbidden", f"this token does not carry the scope {scope}: ask for it at the token "
                           "endpoint (the client must be allowed it: emrcomm clients add --scope)",
                           headers={"www-authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'})
        return grant

    async def read_body(self, request: Request, limit: int, types: Sequence[str] = JSON_TYPES) -> bytes:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in types:
            raise ApiError(415, "not-supported", f"Content-Type {media[:60] or '(none)'!r}: send {' or '.join(types)}")
        length = request.headers.get("content-length")
        if length is not None and (not _DIGITS.fullmatch(length) or int(length) > limit):
            raise ApiError(413, "too-long", f"the body is larger than {limit:,} bytes, the most this operation reads "
                           "([limits] request_bytes, http_batch_bytes): split it")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "too-long", f"the body is larger than {limit:,} bytes, the most this operation "
                               "reads ([limits] request_bytes, http_batch_bytes): split it")
            chunks.append(chunk)
        return b"".join(chunks)

    async def resource(self, request: Request, kind: str) -> dict[str, Any]:
        raw = await self.read_body(request, self.limits.request_bytes)
        data = loads_json(raw, what="the body", limits=self.limits)
        if not isinstance(data, dict):
            raise ApiError(400, "structure", f"the body must be a JSON object (a {kind})")
        if data.get("resourceType") != kind:
            raise ApiError(400, "invalid", f"resourceType is {str(data.get('resourceType'))[:40]!r}; this endpoint "
                           f"takes a {kind}", expression=f"{kind}.resourceType")
        return data

    # public ----------------------------------------------------------------------------------------
    async def metadata(self, request: Request) -> Response:
        try:
            _check_wants_json(request)
        except ApiError as exc:
            return exc.response()
        return fhir_response(capability.capability_statement(self.base(request), self.version, self.host.clock()))

    async def smart_configuration(self, request: Request) -> Response:
        return JSONResponse(capability.smart_configuration(self.base(request)))

    async def token(self, request: Request) -> Response:
        client: str | None = None
        try:
            try:
                raw = await self.read_body(request, TOKEN_FORM_BYTES, (FORM,))
                fields = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
            except ApiError as exc:
                # Not a form is an error of the request, which RFC 6749 5.2 answers 400, not 415.
                status = 400 if exc.status == 415 else exc.status
                raise TokenError("invalid_request", exc.diagnostics, status=status) from None
            except (UnicodeDecodeError, ValueError):
                raise TokenError("invalid_request", "the body must be a URL-encoded form (UTF-8)") from None
            form = dict(fields)
            if len(form) != len(fields):
                raise TokenError("invalid_request", "a form field is given twice")
            issued = await run_in_threadpool(self.authority.issue, form, audience=f"{self.base(request)}/auth/token")
            await run_in_threadpool(self.host.audit.record, "api.token", client=issued.client_id,
                                    scopes=list(issued.scopes))
        except StoreUnavailable:
            return JSONResponse({"error": "temporarily_unavailable", "error_description": UNAVAILABLE},
                                status_code=503, headers={"retry-after": RETRY_AFTER})
        except TokenError as exc:
            client = exc.client
            if client is not None:
                await run_in_threadpool(self.host.audit.record, "api.refused", client=client, error=exc.error)
            log.info("token refused: %s", exc.error)
            return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=exc.status)
        return JSONResponse({"access_token": issued.token, "token_type": "bearer", "expires_in": issued.expires_in,
                             "scope": " ".join(issued.scopes)})

    # conformance -----------------------------------------------------------------------------------
    async def structure_definitions(self, request: Request, grant: Grant | None) -> Response:
        wanted = search.definition_url(list(request.query_params.multi_items()))
        found = [d for d in self.definitions.values() if wanted is None or d["url"] == wanted]
        base = self.base(request)
        return fhir_response({"resourceType": "Bundle", "type": "searchset", "total": len(found),
                              "entry": [{"fullUrl": f"{base}/StructureDefinition/{d['id']}", "resource": d,
                                         "search": {"mode": "match"}} for d in found]})

    async def structure_definition(self, request: Request, grant: Grant | None) -> Response:
        found = self.definitions.get(request.path_params["id"])
        if found is None:
            raise ApiError(404, "not-found", f"no StructureDefinition {_shown(request.path_params['id'])}; these are "
                           f"served: {', '.join(sorted(self.definitions))}")
        return fhir_response(found)

    # CommunicationRequest --------------------------------------------------------------------------
    async def create(self, request: Request, grant: Grant | None) -> Response:
        data = await self.resource(request, "CommunicationRequest")
        prefer = _prefer(request)
        condition = request.headers.get("if-none-exist")
        return await run_in_threadpool(self._create, request, data, condition, prefer)

    def parse(self, data: dict[str, Any]) -> EmrRequest:
        """A CommunicationRequest as the host reads it: within its limits, a day given without a
        time read in the clinic's zone, a patient named by reference and identifier checked in the
        directory to be one (RequestError names what is wrong)."""
        return fhir.parse_request(data, limits=self.limits, zone=self.host.config.clinic.zone,
                                  same_patient=partial(same_patient, self.host.hooks))

    def _create(self, request: Request, data: dict[str, Any], condition: str | None, prefer: str) -> Response:
        req = self.parse(data)
        request.state.audit["request"] = req.id
        standing = self._matching(_condition_key(condition)) if condition is not None else None
        # If-None-Exist: one that exists, even blocked, is answered as it stands; nothing is decided,
        # but one that asked for something else is refused (RequestConflict, 409) by the rule the
        # host applies to a repeat of its id.
        if standing is not None:
            check_retry(self.host.storage.records.request(standing.request_id), req, self.host.audit.patient)
        outcome = standing or self._unless_unreadable(self.host.send(req))
        return self._answer(request, outcome, None if standing else data)

    def _unless_unreadable(self, outcome: Outcome) -> Outcome:
        """``outcome``, unless it is a repeat of a request whose record this release cannot read
        (the host's failed, transient outcome): then RecordUnreadable, read again from the record
        (newer or damaged, which the answer tells apart), or how it stands if it reads now."""
        if not is_unreadable_repeat(outcome):
            return outcome
        return self._standing(outcome.request_id) or outcome

    def _standing(self, ident: str) -> Outcome | None:
        """How request ``ident`` stands now, as a repeat's outcome (None: no such request)."""
        row = self.host.storage.records.request(ident)
        return None if row is None else self._standing_of(row)

    def _matching(self, key: str | Identifier) -> Outcome | None:
        """How the request an ``If-None-Exist`` names (:func:`_condition_key`) stands (None: there
        is none, so create it): by its id, or by its identifier as the search reads it, which finds
        a request with an id of its own too. ApiError 412 when several requests have the identifier."""
        if isinstance(key, str):
            return self._standing(key)
        identifier = key
        rows = self.host.storage.records.requests_by_identifier(identifier, limit=2)
        if len(rows) > 1:
            raise ApiError(412, "multiple-matches", "If-None-Exist: several requests were sent with this identifier "
                           "(GET CommunicationRequest?identifier=… lists them); nothing was sent",
                           expression="If-None-Exist")
        # A request filed before schema 6 kept no identifier: found by the id derived from it.
        return self._standing_of(rows[0]) if rows else self._standing(fhir.derived_request_id(identifier))

    def _standing_of(self, row: RequestRow) -> Outcome:
        records = [r for r in self.host.storage.records.for_request(row.id) if r.id in row.record_ids]
        status = Status(row.status) if row.status in RETRYABLE else request_status(records)
        return Outcome(request_id=row.id, status=status, record_ids=row.record_ids,
                       channels=tuple(r.channel for r in records if r.channel and r.role not in ("blocked", "not-filed")),
                       findings=tuple(f for r in records for f in r.findings if r.role in ("blocked", "not-filed")),
                       explanation=(ALREADY_HANDLED,), category=Category(row.category), patient_ref=row.patient,
                       identifier=row.identifier, other_identifiers=row.identifiers[1:])

    def _answer(self, request: Request, outcome: Any, submitted: Mapping[str, Any] | None) -> Response:
        status = answers.http_status(outcome)
        records = answers.records_of(self.host, outcome)
        request.state.audit["records"] = [r.id for r, _ in records]
        base = self.base(request)
        location = {"location": f"{base}/CommunicationRequest/{outcome.request_id}"}
        if status >= 400:
            return fhir_response(answers.refused(outcome, records), status,
                                 headers={"retry-after": "60"} if status == 503 else None)
        content = answers.body(outcome, records, submitted, self.host.clock(), base, _prefer(request))
        if content is None:
            return Response(status_code=status, headers=location)
        return fhir_response(content, status, headers=location)

    async def check(self, request: Request, grant: Grant | None) -> Response:
        data = await self.resource(request, "CommunicationRequest")

        def run() -> Response:
            outcome = self.host.preview(self.parse(data))
            return fhir_response(answers.outcome_resource(outcome, dry_run=True))

        return await run_in_threadpool(run)

    async def read_request(self, request: Request, grant: Grant | None) -> Response:
        ident = request.path_params["id"]
        if not _ID.fullmatch(ident):
            raise ApiError(404, "not-found", f"no CommunicationRequest {_shown(ident)}")

        def run() -> Response:
            row = self.host.storage.records.request(ident)
            if row is None:
                raise ApiError(404, "not-found", f"no CommunicationRequest {ident}: no request with this id was sent")
            found, updated = self._request_of(row)
            return fhir_response(found, headers={"last-modified": _http_date(updated)})

        return await run_in_threadpool(run)

    def _request_of(self, row: RequestRow) -> tuple[dict[str, Any], dt.datetime]:
        """The CommunicationRequest a read answers for a request in the ledger, and when it last changed."""
        outcome = self._standing_of(row)
        updated = answers.last_changed(answers.records_of(self.host, outcome), row.created)
        return answers.request_resource(outcome, None, updated), updated

    async def search_requests(self, request: Request, grant: Grant | None) -> Response:
        params = list(request.query_params.multi_items())
        identifier = search.request_identifier(params)

        def run() -> Response:
            rows = self.host.storage.records.requests_by_identifier(identifier, limit=search.MAX_REQUESTS)
            found = [self._request_of(row)[0] for row in rows]
            return fhir_response(search.request_bundle(found, params, self.base(request)))

        return await run_in_threadpool(run)

    # batches -------------------------------------------------------------------------------------
    async def batch(self, request: Request, grant: Grant | None) -> Response:
        raw = await self.read_body(request, self.limits.http_batch_bytes)
        big = attrs.evolve(self.limits, request_bytes=self.limits.http_batch_bytes)
        data = loads_json(raw, what="the body", limits=big)
        if not isinstance(data, dict) or data.get("resourceType") != "Bundle" or data.get("type") != "batch":
            raise ApiError(400, "invalid", "POST to the base takes a Bundle of type 'batch' (its entries: POST "
                           "CommunicationRequest)", expression="Bundle.type")
        entries = data.get("entry") or []
        if not isinstance(entries, list):
            raise ApiError(400, "structure", "Bundle.entry must be a list", expression="Bundle.entry")
        # FHIR clients write the url relative, with a leading slash, or absolute on this base.
        urls = ("CommunicationRequest", "/CommunicationRequest", f"{self.base(request)}/CommunicationRequest")
        items: list[tuple[str | None, Any, str | None]] = []
        for entry in entries:
            req = entry.get("request") if isinstance(entry, dict) else None
            if not isinstance(req, dict) or req.get("method") != "POST" or req.get("url") not in urls:
                items.append((f"entry.request must be method POST, url {' or '.join(urls)}", None, None))
                continue
            condition = req.get("ifNoneExist")
            items.append((None, entry.get("resource"), condition if isinstance(condition, str) else None))
        return await self._run_batch(request, items)

    async def ndjson(self, request: Request, grant: Grant | None) -> Response:
        raw = await self.read_body(request, self.limits.http_batch_bytes, NDJSON_TYPES)
        items: list[tuple[str | None, Any, str | None]] = []
        for number, line in enumerate(raw.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                items.append((None, loads_json(line, what=f"line {number}", limits=self.limits), None))
            except RequestError as exc:
                items.append((str(exc), None, None))
        return await self._run_batch(request, items)

    async def _run_batch(self, request: Request, items: list[tuple[str | None, Any, str | None]]) -> Response:
        if len(items) > self.settings.batch_entries:
            raise ApiError(413, "too-long", f"{len(items):,} entries; the most one batch may hold is "
                           f"{self.settings.batch_entries:,} ([api] batch_entries): split it")
        return await run_in_threadpool(self._batch, request, items)

    def _batch(self, request: Request, items: list[tuple[str | None, Any, str | None]]) -> Response:
        results: list[dict[str, Any] | None] = [None] * len(items)
        todo: list[tuple[int, EmrRequest, Any]] = []
        # An If-None-Exist that names an earlier entry of this batch (its id or identifier) is
        # answered as that entry stands once it is decided, as entries taken one by one would be:
        # never a second message.
        in_batch: dict[str | Identifier, EmrRequest] = {}
        followers: list[tuple[int, EmrRequest, EmrRequest]] = []
        for i, (problem, resource, condition) in enumerate(items):
            if problem is not None:
                results[i] = answers.error_entry(400, "invalid", problem)
                continue
            if not isinstance(resource, dict) or resource.get("resourceType") != "CommunicationRequest":
                results[i] = answers.error_entry(400, "invalid", "the entry's resource must be a CommunicationRequest")
                continue
            try:
                req = self.parse(resource)
                key = _condition_key(condition) if condition is not None else None
                if key is not None and key in in_batch:
                    followers.append((i, in_batch[key], req))
                    continue
                standing = self._matching(key) if key is not None else None
                if standing is not None:
                    check_retry(self.host.storage.records.request(standing.request_id), req, self.host.audit.patient)
                    results[i] = answers.batch_entry(standing, answers.records_of(self.host, standing))
                    continue
            except ApiError as exc:
                results[i] = answers.error_entry(exc.status, exc.code, exc.diagnostics, exc.expression, exc.text)
                continue
            except RequestConflict as exc:
                results[i] = answers.error_entry(409, "conflict", str(exc), exc.expression)
                continue
            except SubjectMismatch as exc:
                results[i] = answers.error_entry(422, "business-rule", str(exc), exc.expression, SUBJECT_TEXT)
                continue
            except RequestError as exc:
                results[i] = answers.error_entry(400, exc.issue_code, str(exc), exc.expression)
                continue
            except PluginUnavailable as exc:  # checking its subject (both ways) in the directory
                log.warning("POST batch: entry %d not decided: %s", i, exc)
                results[i] = answers.error_entry(503, "transient", NOT_DECIDED)
                continue
            except RecordUnreadable as exc:  # If-None-Exist names a request whose record cannot be read
                results[i] = unreadable_entry(i, exc)
                continue
            todo.append((i, req, resource))
            in_batch.setdefault(req.id, req)
            for identifier in req.identifiers:
                in_batch.setdefault(identifier, req)
        outcomes = self.host.send_many(req for _i, req, _r in todo)
        for n, (i, req, _resource) in enumerate(todo):
            try:
                outcome = next(outcomes)
            except StoreUnavailable:
                for j, _req, _r in todo[n:]:
                    results[j] = answers.error_entry(503, "transient", UNAVAILABLE)
                break
            except Exception as exc:
                # An error of ours: the entries before this one were done and are answered so. This
                # one may have been sent (inline delivery sends before it answers), or not (a group
                # commit is undone whole); those after it were not tried.
                log.error("POST batch: entry %d failed: %s", i, type(exc).__name__)
                results[i] = answers.error_entry(500, "exception", "the server failed on this entry (the server's log "
                                                 f"names the error): read CommunicationRequest/{req.id} to learn "
                                                 "whether it was sent before sending it again")
                for j, _req, _r in todo[n + 1:]:
                    results[j] = answers.error_entry(503, "transient", "not tried: the server failed on an earlier "
                                                     "entry of this batch; send this one again")
                break
            if is_conflict(outcome):
                results[i] = answers.error_entry(409, "conflict", outcome.explanation[0], CONFLICT_FIELD)
                continue
            if is_unreadable_repeat(outcome):  # sent before; how it stands cannot be read (send_many logs it)
                try:
                    outcome = self._unless_unreadable(outcome)
                except RecordUnreadable as exc:
                    results[i] = unreadable_entry(i, exc)
                    continue
            elif outcome.error == "transient":  # not decided: a check could not run now (send_many logs it)
                results[i] = answers.error_entry(503, "transient", NOT_DECIDED)
                continue
            status = answers.http_status(outcome)
            if outcome.status is Status.FAILED and status == 400:  # refused by send_many: its kind says why
                said = " ".join(outcome.explanation)
                if outcome.error == "processing":  # parsed, but could not be rendered
                    results[i] = answers.error_entry(422, "processing", said, staff=RENDER_TEXT)
                elif outcome.error == "business-rule":  # named twice, two patients
                    results[i] = answers.error_entry(422, "business-rule", said, staff=SUBJECT_TEXT)
                else:  # read, but not within the host's limits (a control character): as a create answers it
                    results[i] = answers.error_entry(400, outcome.error or "invalid", said)
                continue
            results[i] = answers.batch_entry(outcome, answers.records_of(self.host, outcome))
        for i, leader, follower in followers:
            if content_digest(leader, self.host.audit.patient) != content_digest(follower, self.host.audit.patient):
                results[i] = answers.error_entry(409, "conflict", conflict_text(follower, leader.id), CONFLICT_FIELD)
                continue
            standing = self._standing(leader.id)
            results[i] = (answers.batch_entry(standing, answers.records_of(self.host, standing)) if standing is not None
                          else answers.error_entry(503, "transient", f"If-None-Exist names an earlier entry of this "
                                                   f"batch ({leader.id}), which was not entered: send this one again"))
        return fhir_response({"resourceType": "Bundle", "type": "batch-response",
                              "entry": [r for r in results if r is not None]})

    # Communication ---------------------------------------------------------------------------------
    async def search(self, request: Request, grant: Grant | None) -> Response:
        params = list(request.query_params.multi_items())
        query = search.parse(params, page_size=self.settings.page_size)
        if query.limit == 0:
            total = await run_in_threadpool(self.host.storage.records.count_matching, query)
            return fhir_response(search.total_bundle(total, params, self.base(request)))
        unreadable: list[Unreadable] = []  # records of the page this release cannot read, named in it
        found = await run_in_threadpool(partial(self.host.storage.records.page, query, unreadable=unreadable))
        counted = (await run_in_threadpool(self.host.storage.records.count_matching, query)
                   if search.total_asked(params) else None)
        return fhir_response(search.bundle(found, query, params, self.base(request), total=counted,
                                           unreadable=unreadable))

    async def read_communication(self, request: Request, grant: Grant | None) -> Response:
        ident = request.path_params["id"]
        if not _ID.fullmatch(ident):
            raise ApiError(404, "not-found", f"no Communication {_shown(ident)}")

        def run() -> Response:
            try:
                read = self.host.storage.records.read(ident)
            except RecordUnreadable as exc:
                request.state.audit["record"] = ident
                log.warning("Communication %s: its record cannot be read by this release%s; answered 503", ident,
                            " (a newer release wrote it)" if exc.newer else "")
                raise unreadable_record(ident, exc) from None
            if read is None:
                raise ApiError(404, "not-found", f"no Communication {ident}")
            request.state.audit["record"] = ident
            found = search.resource(*read)
            return fhir_response(found, headers={"etag": f'W/"{found["meta"]["versionId"]}"',
                                                 "last-modified": _http_date(read[1])})

        return await run_in_threadpool(run)

    # Consent ---------------------------------------------------------------------------------------
    async def consent(self, request: Request, grant: Grant | None) -> Response:
        data = await self.resource(request, "Consent")
        condition = request.headers.get("if-none-exist")
        assert grant is not None

        def run() -> Response:
            asked = _consent_condition(condition) if condition is not None else None
            said = consents.read(self.host, data, client=grant.client_id)

            # Decided once per identifier, as a CommunicationRequest is: its retry is answered as
            # first recorded, never recorded again after a STOP that came in between, and before
            # the directory is asked for the addresses on file (its retry is answered while the
            # directory cannot answer).
            recorded = consents.record_once(self.host, said, identifiers=consents.identifiers(data, asked),
                                            digest=consents.content_digest(said, self.host.audit.patient),
                                            then=consents.audited(self.host, said, client=grant.client_id),
                                            resource=data)
            # A retry is answered with the Consent as first recorded (its dateTime, period…), so
            # that the EMR sees one Consent; one recorded at schema 10 kept none: the retry's own.
            res = consents.as_resource(recorded.resource or data, recorded.id, recorded.at)
            return fhir_response(res, 200 if recorded.repeat else 201,
                                 headers={"location": f"{self.base(request)}/Consent/{recorded.id}"})

        return await run_in_threadpool(run)

    # Subscription ----------------------------------------------------------------------------------
    async def subscribe(self, request: Request, grant: Grant | None) -> Response:
        data = await self.resource(request, "Subscription")
        assert grant is not None
        sub = await run_in_threadpool(self.subscriptions.create, data, client=grant.client_id,
                                      allow_http=self.settings.allow_http_endpoints)
        request.state.audit["subscription"] = sub.id
        return fhir_response(sub.as_fhir(with_secret=True), 201,
                             headers={"location": f"{self.base(request)}/Subscription/{sub.id}"})

    async def read_subscription(self, request: Request, grant: Grant | None) -> Response:
        sub = await run_in_threadpool(self._own_subscription, request, grant)
        return fhir_response(sub.as_fhir())

    async def unsubscribe(self, request: Request, grant: Grant | None) -> Response:
        sub = await run_in_threadpool(self._own_subscription, request, grant)
        await run_in_threadpool(self.subscriptions.delete, sub.id)
        return Response(status_code=204)

    def _own_subscription(self, request: Request, grant: Grant | None) -> Any:
        ident = request.path_params["id"]
        sub = self.subscriptions.get(ident) if _ID.fullmatch(ident) else None
        if sub is None or grant is None or sub.client_id != grant.client_id:  # another client's: not there for you
            raise ApiError(404, "not-found", f"no Subscription {_shown(ident)} of this client")
        request.state.audit["subscription"] = sub.id
        return sub


class _Asgi:
    """An ASGI callable that a Route takes as an app (every method), not as a request handler."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def _shown(value: str) -> str:
    return repr(escape_controls(value[:64]))


def _check_wants_json(request: Request) -> None:
    """ApiError 406 when the client takes no JSON: ``_format`` names another format, or ``Accept``
    lists only other media types (say FHIR's XML). Every answer here is JSON; a client that
    asked for XML would otherwise misread a 200."""
    for value in request.query_params.getlist("_format"):
        if value.strip().lower() not in _JSON_FORMATS:
            raise ApiError(406, "not-supported", "only JSON is served (_format=json)", expression="_format")
    accept = request.headers.get("accept", "").strip()
    if not accept:
        return
    for item in accept.split(","):
        media, *params = (part.strip().lower() for part in item.split(";"))
        refused = any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params)
        if not refused and (media in _JSON_FORMATS or media in ("*/*", "application/*")):
            return
    raise ApiError(406, "not-supported", f"Accept {escape_controls(accept[:80])!r}: this server answers "
                   "application/fhir+json only", expression="Accept")


_JSON_FORMATS = ("json", *JSON_TYPES, *NDJSON_TYPES)


def _http_date(when: dt.datetime) -> str:
    """A time as an HTTP date, for ``Last-Modified``."""
    return format_datetime(when.astimezone(dt.UTC), usegmt=True)


def _prefer(request: Request) -> str:
    match = _PREFER.search(request.headers.get("prefer", ""))
    return match.group(1) if match else ""


def _condition_key(condition: str) -> str | Identifier:
    """What an ``If-None-Exist`` names: a request id (``_id``) or an identifier."""
    name, value = _condition(condition)
    return value if name == "_id" else search.identifier_token(value, "If-None-Exist")


def _consent_condition(condition: str) -> Identifier:
    """The identifier a Consent's ``If-None-Exist`` names (a Consent's id is a ledger number,
    not the EMR's: no ``_id``)."""
    name, value = _condition(condition, "Consent")
    if name != "identifier":
        raise ApiError(400, "not-supported", "a Consent's If-None-Exist takes identifier=<system>|<value>",
                       expression="If-None-Exist")
    return search.identifier_token(value, "If-None-Exist")


def _condition(condition: str, kind: str = "CommunicationRequest") -> tuple[str, str]:
    """The one search parameter of an ``If-None-Exist`` (``identifier`` or ``_id``) and its value.
    The query may come after the type (``kind``), or the type's whole URL (``CommunicationRequest?…``,
    as HAPI FHIR's client and Bundle builders write it)."""
    path, mark, query = condition.rpartition("?")
    if mark and path.rstrip("/").rsplit("/", 1)[-1] != kind:
        raise ApiError(400, "invalid", f"If-None-Exist searches {kind}: [{kind}?]"
                       "identifier=<system>|<value>", expression="If-None-Exist")
    params = parse_qsl(query, keep_blank_values=True)
    if len(params) != 1 or params[0][0] not in ("identifier", "_id") or not params[0][1]:
        raise ApiError(400, "not-supported", "If-None-Exist takes one of: identifier=<system>|<value>, _id=<id>",
                       expression="If-None-Exist")
    name, value = params[0]
    if name == "_id" and not _ID.fullmatch(value):
        raise ApiError(400, "value", "If-None-Exist: _id is not a FHIR id", expression="If-None-Exist")
    return name, value


def build(host: Host, settings: ApiSettings) -> tuple[Starlette, Api]:
    """The API as an ASGI app (mounted at /fhir) and its handlers."""
    api = Api(host, settings)
    op = api.operation
    # POST [base] is FHIR's batch: the section also routes /fhir itself to it (no redirect to /fhir/).
    api.batch_endpoint = op("system/CommunicationRequest.write", "batch", api.batch)
    routes: list[BaseRoute] = [
        Route("/metadata", api.metadata, methods=["GET"]),
        Route("/.well-known/smart-configuration", api.smart_configuration, methods=["GET"]),
        Route("/auth/token", api.token, methods=["POST"]),
        Route("/", api.batch_endpoint, methods=["POST"]),
        Route("/StructureDefinition", op(None, "search StructureDefinition", api.structure_definitions), methods=["GET"]),
        Route("/StructureDefinition/{id}", op(None, "read StructureDefinition", api.structure_definition), methods=["GET"]),
        Route("/CommunicationRequest", op("system/CommunicationRequest.write", "create CommunicationRequest",
                                          api.create), methods=["POST"]),
        Route("/CommunicationRequest/$check", op("system/CommunicationRequest.read", "check CommunicationRequest",
                                                 api.check), methods=["POST"]),
        Route("/CommunicationRequest/$batch", op("system/CommunicationRequest.write", "batch CommunicationRequest",
                                                 api.ndjson), methods=["POST"]),
        Route("/CommunicationRequest", op("system/CommunicationRequest.read", "search CommunicationRequest",
                                          api.search_requests), methods=["GET"]),
        Route("/CommunicationRequest/{id}", op("system/CommunicationRequest.read", "read CommunicationRequest",
                                               api.read_request), methods=["GET"]),
        Route("/Communication", op("system/Communication.read", "search Communication", api.search), methods=["GET"]),
        Route("/Communication/{id}", op("system/Communication.read", "read Communication", api.read_communication),
              methods=["GET"]),
        Route("/Consent", op("system/Consent.write", "create Consent", api.consent), methods=["POST"]),
        Route("/Subscription", op("system/Subscription.write", "create Subscription", api.subscribe), methods=["POST"]),
        Route("/Subscription/{id}", op("system/Subscription.read", "read Subscription", api.read_subscription),
              methods=["GET"]),
        Route("/Subscription/{id}", op("system/Subscription.write", "delete Subscription", api.unsubscribe),
              methods=["DELETE"]),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 405:
            return ApiError(405, "not-supported", f"{escape_controls(request.method[:10])} is not supported here; "
                            "GET /fhir/metadata lists what is").response()
        if status == 404:
            return ApiError(404, "not-found", "no such resource or operation; GET /fhir/metadata lists what this "
                            "server supports").response()
        return ApiError(status if 400 <= status < 600 else 500, "exception" if status >= 500 else "invalid",
                        "the request could not be handled").response()

    app = Starlette(routes=routes, exception_handlers={HTTPException: not_found, 500: not_found})
    return app, api
