"""``emrcomm fhir-records``: file what waits for the FHIR server now (``flush``), see what waits
and what the server refused (``queue``), queue the records made before the plugin was switched on
(``backfill``), search the Communications filed there (``search``), and file a record set aside
because someone changed it on the server over that change, deliberately (``overwrite``)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import TYPE_CHECKING

from emrcomm import Command, EmrcommError, print_result
from emrcomm.fhir import CATEGORY_SYSTEM, PARTICIPATION_MODE, fhir_datetime, searchset

if TYPE_CHECKING:
    from emrcomm_fhirserver.filer import RecordsPlugin


def _arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    flush = actions.add_parser("flush", help="file what waits for the FHIR server now (exit 4 if some is left)")
    flush.add_argument("--retry-rejected", action="store_true", help="first put back the records the server refused")
    actions.add_parser("queue", help="what waits for the server, and what it refused")
    overwrite = actions.add_parser("overwrite", help="file a record set aside because a field emrcomm owns was "
                                   "changed on the server, over that change (what others added is kept)")
    overwrite.add_argument("record_id", metavar="RECORD_ID", help="as `fhir-records queue` names it")
    actions.add_parser("backfill", help="queue the records made before the plugin was switched on (then flush)")
    search = actions.add_parser("search", help="print the Communications filed on the server as a searchset Bundle")
    search.add_argument("--patient", help="Patient/<id>")
    search.add_argument("--status", help="completed, not-done, on-hold, in-progress")
    search.add_argument("--channel", help="sms, email, portal, ... (searched by its FHIR medium)")
    search.add_argument("--category")
    search.add_argument("--since", type=dt.datetime.fromisoformat, help="ISO date or date-time (UTC if no zone)")
    search.add_argument("--until", type=dt.datetime.fromisoformat)


def _run(args: argparse.Namespace, plugin: RecordsPlugin) -> int:
    if args.action == "flush":
        report = plugin.flush(retry_rejected=args.retry_rejected)
        data = {"target": plugin.name, "server": plugin.base_url, **report.to_dict()}
        print_result(args, data, f"{plugin.name} -> {plugin.base_url}: {report.filed} filed, {report.rejected} refused, "
                                 f"{report.pending} waiting" + (f"\n  stopped: {report.error}" if report.error else ""))
        return 0 if not report.error and not report.pending and not report.rejected else 4
    if args.action == "overwrite":
        state = plugin.overwrite(args.record_id)
        said = {"done": "filed over the changes made on the server", "conflict": "changed again meanwhile; "
                "it stays queued", "pending": "no longer on the server; it is queued to be filed again",
                "rejected": "refused by the server (see `fhir-records queue`)"}[state]
        print_result(args, {"target": plugin.name, "server": plugin.base_url, "record_id": args.record_id,
                            "state": state}, f"{plugin.name} -> {plugin.base_url}: record {args.record_id}: {said}")
        return 0 if state == "done" else 4
    if args.action == "backfill":
        queued = plugin.backfill()
        print_result(args, {"target": plugin.name, "server": plugin.base_url, "queued": queued},
                     f"{plugin.name} -> {plugin.base_url}: {queued} record(s) made before it was switched on queued; "
                     "`emrcomm fhir-records flush` files them now (serve and the workers do in the background)")
        return 0
    if args.action == "queue":
        status = plugin.queue_status()
        print_result(args, status, f"{status['target']} -> {status['server']}: {status['pending']} waiting, "
                                   f"{status['done']} filed, {len(status['rejected'])} refused"
                     + "".join(f"\n  refused {r['record_id']}: {r['last_error']}" for r in status["rejected"]))
        return 0
    print(json.dumps(searchset(plugin.search(_query(args, plugin))), indent=2, ensure_ascii=False))
    return 0


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


def _query(args: argparse.Namespace, plugin: RecordsPlugin) -> list[tuple[str, str]]:
    """FHIR search parameters for the filters. On the server, dates filter Communication.sent."""
    params: list[tuple[str, str]] = []
    if args.patient:
        params.append(("subject", args.patient))
    if args.status:
        params.append(("status", args.status))
    if args.channel:
        channel = plugin.context.channels.get(args.channel)
        if channel is None:
            raise EmrcommError(f"unknown channel {args.channel!r}; choose one of: "
                               f"{', '.join(sorted(plugin.context.channels))}")
        params.append(("medium", f"{PARTICIPATION_MODE}|{channel.medium}"))
    if args.category:
        params.append(("category", f"{CATEGORY_SYSTEM}|{args.category}"))
    since, until = _aware(args.since), _aware(args.until)
    if since:
        params.append(("sent", f"ge{fhir_datetime(since)}"))
    if until:
        params.append(("sent", f"lt{fhir_datetime(until)}"))
    return params


# flush and overwrite (what the server took) and backfill (the queue) write; queue and search read, in a host
# that writes nothing.
COMMANDS = [Command("fhir-records", "the records waiting for, refused by, or filed on the FHIR server", _run,
                    _arguments, read_only=lambda args: args.action not in ("flush", "backfill", "overwrite"))]
