"""The hook contract: what a plugin may implement, with what arguments, and what the host does
with the answer. This file is the contract; docs/hooks.md shows each hook with an example.

Arguments are only ever added, never removed or renamed; a retired hook is kept with
``warn_on_impl``. A plugin implements any subset of the hooks and may accept any subset of a
hook's arguments (pluggy passes only those it names).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from emrcomm.model import (
    Channel,
    DeliveryUpdate,
    Finding,
    Message,
    Plan,
    Recipient,
    Record,
    Request,
    Route,
    SendingWindow,
)
from emrcomm.plugin import hookspec
from emrcomm.storage.database import Migration

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from emrcomm.plugin.contract import Command, Probe
    from emrcomm.web import WebContext


@hookspec
def emrcomm_migrations() -> Iterable[Migration]:
    """Contribute the migrations of the tables this plugin owns (``owner`` = the plugin's name).

    Called once at start-up. Every plugin's steps are collected, and the host applies the ones
    the database still needs, in version order, after its own, before it calls ``start()`` on
    any plugin: a plugin touches its tables in ``start()`` or in a hook, never in its
    constructor. A step for tables another plugin (or the host) owns stops start-up.

    :returns: the plugin's migrations (an empty iterable or None contributes none).

    .. versionadded:: 0.2
    """


@hookspec
def emrcomm_register_channels() -> Iterable[Channel]:
    """Contribute the channels this plugin can deliver on.

    Called once at start-up. Every plugin's answer is collected; two plugins registering the
    same channel name stop start-up with both names.

    :returns: the plugin's channels (an empty iterable or None contributes none).

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def emrcomm_find_recipient(patient_ref: str, request: Request) -> Recipient | None:
    """Find the patient: contact points, consents, preferences, language, time zone.

    Stops at first non-None result. None means "not mine": the next plugin is asked; when no
    plugin knows the patient the request fails with RECIPIENT_UNKNOWN and nothing is sent. None
    says the patient is not there: a directory that cannot tell now (its server down, slow past
    its timeout, answering 5xx or what cannot be read) raises :class:`emrcomm.PluginUnavailable`
    instead, naming its server: nothing is decided, sent or filed, and the caller is told to try
    again (the API's 503), never that the patient is unknown. Raise
    :class:`emrcomm.RecipientRefused` for a patient the plugin knows who must not be messaged
    (recorded deceased, a chart no longer in use): no other plugin is asked, and the request is
    blocked with RECIPIENT_REFUSED, ``str(exc)`` its reason (for staff, on the record: the patient
    by ``Patient/<id>`` only). Any other exception stops the request (PluginError).

    :param patient_ref: ``Patient/<id>``, or a search (``Patient?identifier=system|value``), as
        given in the request.
    :param request: the whole request, for adapters that look up by context.
    :returns: the Recipient, or None. Its ``patient_ref`` is the patient found, ``Patient/<id>``:
        for a request that searched, the host files and audits that one (whatever the EMR's ids
        look like; a request that named its patient by link stays so named, unless the Recipient's
        ``replaces`` names that link: a chart merged into this one); a search (``?``, ``|``,
        ``=``) or any other form is refused, CHECK_FAILED. Its ``merged`` names every chart the
        plugin knows was merged into this one: their consents belong in ``consents``, and the
        host reads the records filed under them as this patient's.
    :raises emrcomm.RecipientRefused: the patient is known and must not be messaged.

    Asked again, for the request as filed, before an outbox row decided ``[delivery]
    recheck_after`` or more before leaves: None then cancels it (RECIPIENT_UNKNOWN),
    RecipientRefused too (RECIPIENT_REFUSED, its reason), and PluginUnavailable keeps it unsent
    for a later try.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2 PluginUnavailable for a directory that cannot answer now;
       RecipientRefused is a refusal, not a failure; asked again before a late outbox row leaves.
    """


@hookspec(firstresult=True)
def emrcomm_render(request: Request, recipient: Recipient) -> Message | None:
    """Turn a request into words for this patient: template, variables, language, time zone.

    Stops at first non-None result. None means "I do not render this one"; when no plugin
    renders, the request fails with RENDER_FAILED. Raise :class:`emrcomm.RenderError` for a
    request that cannot be rendered (an unknown template, a missing variable): it becomes a
    clear error for the caller.

    The host also calls this hook to render notices (``request.template == "portal-notice"``).

    :returns: the Message, or None.

    .. versionadded:: 0.1
    """


@hookspec
def emrcomm_inspect(message: Message) -> Iterable[Finding]:
    """Report facts about the text itself: clinical terms, identifiers, links, promotion.

    Every plugin's findings are collected, in config order. Inspection does not know the
    channel: report facts (usually severity ``info``) with the span of text that triggered
    them, and let validators decide what blocks where. An inspector that raises blocks every
    candidate with a CHECK_FAILED finding naming it: a message never goes out because a check
    could not run. One that raises :class:`emrcomm.PluginUnavailable` (the server it asks, a
    content classifier service say, cannot answer now; its words name the plugin and the server,
    never the text or the patient) is answered as a validator's: nothing is decided, sent, blocked
    or filed, and the caller is told to try again (the API's 503).

    :returns: findings (an empty iterable or None means nothing to report).

    .. versionadded:: 0.1
    .. versionchanged:: 0.3 PluginUnavailable is "try again", not CHECK_FAILED.
    """


@hookspec(firstresult=True)
def emrcomm_plan(
    message: Message,
    recipient: Recipient,
    channels: Mapping[str, Channel],
    findings: tuple[Finding, ...],
) -> Plan | None:
    """Propose the channels to try, best first, e.g. ``[sms]`` or ``[portal + sms notice]``.

    Stops at first non-None result. None means "no opinion"; when no plugin plans, the request
    is blocked with NO_ROUTE. The host validates each candidate in order and uses the first one
    that no validator blocks.

    :param channels: every registered channel, by name (a read-only mapping: the host's own).
    :param findings: what the inspectors found in ``message``.
    :returns: a Plan, or None.

    .. versionadded:: 0.1
    """


@hookspec
def emrcomm_validate(
    message: Message,
    recipient: Recipient,
    channel: Channel,
    route: Route,
    findings: tuple[Finding, ...],
    now: dt.datetime,
) -> Iterable[Finding]:
    """Judge one route of a candidate: may this message go on this channel to this address now?

    Every plugin runs and every finding is collected; any finding of severity ``block``
    rejects the candidate (a block with ``hold_until`` holds it instead). A validator that
    raises blocks the candidate with CHECK_FAILED naming it, except one that raises
    :class:`emrcomm.PluginUnavailable` (the server it asks cannot answer now; its words name the
    plugin and the server, never the patient): then nothing is decided, sent, blocked or filed,
    and the caller is told to try again, as for a directory that cannot answer (the API's 503);
    an outbox row judged again as it leaves late is given back unsent.

    :param message: the words for this route (a notice has its own message).
    :param route: the channel, address and role being judged.
    :param findings: what the inspectors found in ``message``.
    :param now: the host's clock (aware, UTC); use it, not the system clock.
    :returns: findings (an empty iterable or None means no objection).

    .. versionadded:: 0.1
    .. versionchanged:: 0.3 PluginUnavailable is "try again", not CHECK_FAILED.
    """


@hookspec(firstresult=True)
def emrcomm_sending_window(message: Message, recipient: Recipient, channel: Channel) -> SendingWindow | None:
    """The sending window (QUIET_HOURS) a route's message must leave in, checked again when its
    outbox row leaves: a retry whose backoff ends at night, a dead letter requeued at night or a
    row taken over at night is held until the window opens (or expires, when it would expire
    first), not sent.

    Stops at first non-None result. None means "no window from me": the next plugin is asked;
    when none answers, no quiet hours apply to the route at delivery (the built-in ``policy``
    answers None for the answers to the patient's own messages, urgent priority and channels
    outside ``quiet_hours_channels``). Called once per route of the chosen candidate when a
    request is decided; the answer is kept with the outbox row, so keep it cheap and pure.

    :param message: the words for this route (a notice has its own message).
    :param channel: the route's channel.
    :returns: a SendingWindow (local start, end, and the IANA zones it must hold in), or None.

    .. versionadded:: 0.3
    """


@hookspec
def emrcomm_file_record(record: Record) -> None:
    """File a record in the chart: in-progress before sending, then the outcome.

    Every filer is called, in config order. A filer that raises stops the send (no record, no
    send) and the request fails with RECORD_NOT_FILED naming it. Filing the same ``record.id``
    again is an update, so filers must be idempotent.

    .. versionadded:: 0.1
    """


@hookspec
def emrcomm_delivery_update(update: DeliveryUpdate) -> None:
    """React to what happened after hand-off: delivery report, failure, read, reply, opt-out.

    Every plugin is called, in config order. The record filer updates the filed record; the
    opt-out plugin updates the consent ledger.

    .. versionadded:: 0.1
    """
@hookspec
def emrcomm_web_routes(web: WebContext) -> Iterable[BaseRoute]:
    """Contribute routes to ``emrcomm serve`` (Starlette routes or a ``Mount`` with middleware
    of its own: a rate limit, say): a channel's delivery reports and inbound messages, a
    portal's pages.

    Called once when the app is built. Every plugin's routes are collected, in call order,
    behind the app's security headers, body limit and access log. A route authenticates what
    it receives itself (a provider's signature, a shared secret) and tells the host through
    ``context.report(DeliveryUpdate(...))``. ``web`` renders pages in the app's layout.

    :returns: the plugin's routes (an empty iterable or None contributes none).

    .. versionadded:: 0.2
    """


@hookspec
def emrcomm_cli_commands() -> Iterable[Command]:
    """Contribute subcommands to ``emrcomm`` (``emrcomm keys rotate``, ``emrcomm fhir-records flush``).

    Called when the command line is built. Every plugin's commands are collected; a name
    taken twice stops it, naming both plugins. A command runs with a host built from
    ``--config`` (read-only when it says so) and returns its exit code.

    :returns: the plugin's commands (an empty iterable or None contributes none).

    .. versionadded:: 0.2
    """


@hookspec
def emrcomm_probe() -> Iterable[Probe]:
    """Contribute a check of each server this plugin talks to, for ``emrcomm doctor``: a gateway,
    a relay, a FHIR server.

    Called only by ``emrcomm doctor``, on a host that writes nothing. Every plugin's probes are
    collected, in call order, and run side by side; each reports the steps that worked and, at
    the first that did not, what happened (:class:`emrcomm.ProbeFailed`). A plugin whose hook
    raises is reported by name; the others still run.

    :returns: the plugin's probes (an empty iterable or None contributes none).

    .. versionadded:: 0.3
    """
