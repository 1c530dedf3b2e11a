"""The ``emrcomm`` command. Exit codes: 0 ok, 2 bad input or config, 3 blocked, 4 not done
(``audit verify`` found a problem; ``records flush`` left records queued or rejected)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from emrcomm import fhir
from emrcomm.api.commands import add_commands as add_api_commands
from emrcomm.errors import EmrcommError, RequestError
from emrcomm.limits import Limits, escape_controls, loads_json
from emrcomm.model import Finding, Outcome, Status

EXIT_OK, EXIT_BAD_INPUT, EXIT_BLOCKED = 0, 2, 3
EXIT_NOT_DONE = 4


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help="config file (default ./emrcomm.toml, else the embedded defaults)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print JSON for scripts instead of text")
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="log more (-vv: debug)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="emrcomm", parents=[common],
        description="Message patients safely from an EMR: consent, content rules, channel choice, FHIR records.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", parents=[common], help="run one clinic day on a synthetic clinic, locally")
    demo.add_argument("--data", metavar="DIR", type=Path, default=Path("demo-clinic"),
                      help="folder for the demo's config, store and sinks (default ./demo-clinic)")
    demo.add_argument("--patients", metavar="N", type=int, default=200, help="number of patients (default 200)")
    demo.add_argument("--seed", type=int, default=7, help="seed of the synthetic clinic (default 7)")
    demo.add_argument("--date", type=dt.date.fromisoformat, default=None,
                      help="the clinic day, YYYY-MM-DD (default today)")

    sub.add_parser("plugins", parents=[common], help="list active plugins in call order and their hooks")
    sub.add_parser("check-config", parents=[common], help="load the config and every plugin, then report")

    send = sub.add_parser("send", parents=[common], help="send FHIR CommunicationRequest(s) from files")
    send.add_argument("files", nargs="+", metavar="REQUEST",
                      help="a CommunicationRequest JSON file; .jsonl/.ndjson for one per line; - for stdin")

    check = sub.add_parser("check", parents=[common], help="check a text against the content rules, "
                           "or (--patient) how it would be routed to a patient and why")
    check.add_argument("--channel", help="sms, email or portal: the text rules of one channel")
    check.add_argument("--patient", metavar="Patient/ID",
                       help="a dry run for this patient: every channel, chosen or rejected and why; nothing is sent")
    check.add_argument("--restricted", action="store_true", help="with --patient: a restricted (confidential) request")
    check.add_argument("--category", default="appointment-reminder")
    check.add_argument("--lang", default="en", choices=["en", "fr"])
    given = check.add_mutually_exclusive_group(required=True)
    given.add_argument("--text", help="the text to check")
    given.add_argument("--jsonl", type=Path, metavar="FILE",
                       help='one {"text", "channel"?, "category"?, "lang"?} object per line; - for stdin')

    records = sub.add_parser("records", parents=[common],
                             help="print filed Communications as a FHIR Bundle; file queued ones on the FHIR server")
    records.add_argument("action", nargs="?", choices=("search", "flush", "queue"), default="search",
                         help="search (default): print a searchset Bundle; flush: file what waits for the FHIR "
                              "server now; queue: what waits, and what the server refused")
    records.add_argument("--patient", help="Patient/<id>")
    records.add_argument("--status", help="completed, not-done, on-hold, in-progress")
    records.add_argument("--channel", help="sms, email, portal, ...")
    records.add_argument("--category")
    records.add_argument("--since", type=dt.datetime.fromisoformat, help="ISO date or date-time (UTC if no zone)")
    records.add_argument("--until", type=dt.datetime.fromisoformat)
    records.add_argument("--source", choices=("store", "server"), default="store",
                         help="store: the embedded chart (default); server: search the FHIR server the "
                              "fhir-records plugin files to")
    records.add_argument("--retry-rejected", action="store_true",
                         help="with flush: first put back the records the server refused")

    audit = sub.add_parser("audit", parents=[common], help="verify or export the signed audit log")
    audit_sub = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = audit_sub.add_parser("verify", parents=[common],
                                  help="check every entry, the chain, the order and the end; name what is wrong")
    verify.add_argument("--public-key", action="append", type=Path, default=[], metavar="FILE",
                        help="a trusted public key (PEM); repeat for keys used before a rotation "
                             "(default: the key file's own)")
    verify.add_argument("--anchor", metavar="SEQ:HASH",
                        help="an entry noted earlier (from a previous verify) that must still be there")
    export = audit_sub.add_parser("export", parents=[common], help="write the log as JSON lines or FHIR AuditEvents")
    export.add_argument("--format", choices=("jsonl", "fhir"), default="jsonl",
                        help="jsonl: one signed entry per line (default); fhir: a Bundle of R4 AuditEvents")
    export.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here instead of standard output")
    audit_sub.add_parser("public-key", parents=[common], help="print the public key auditors verify with (PEM)")

    serve = sub.add_parser("serve", parents=[common], help="serve the portal's patient pages (an ASGI app)")
    serve.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--forwarded-allow-ips", metavar="IPS", default=None,
                       help="addresses of the reverse proxy whose X-Forwarded-For / -Proto headers to trust")

    worker = sub.add_parser("worker", parents=[common], help="deliver what waits in the outbox (retries, holds)")
    worker.add_argument("--once", action="store_true", help="deliver what is due now, then exit")
    worker.add_argument("--concurrency", type=int, metavar="N", default=None,
                        help="messages delivered at once (default delivery.concurrency, 4)")

    outbox = sub.add_parser("outbox", parents=[common], help="outbox counts by state and the dead letters")
    outbox_sub = outbox.add_subparsers(dest="action", required=False, metavar="ACTION")
    requeue = outbox_sub.add_parser("requeue", parents=[common], help="put dead letters back in the queue")
    requeue.add_argument("id", nargs="?", help="the outbox key or record id of one dead letter")
    requeue.add_argument("--all-dead", action="store_true", help="every dead letter")

    keys = sub.add_parser("keys", parents=[common], help="the portal's encryption key ring")
    keys_sub = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    rotate = keys_sub.add_parser("rotate", parents=[common],
                                 help="new current key and link key; re-encrypt every stored message")
    rotate.add_argument("--retire", action="store_true", help="then drop old keys no stored message uses")
    keys_sub.add_parser("list", parents=[common], help="key ids, which is current, how many messages each holds")

    portal = sub.add_parser("portal", parents=[common], help="portal messages and the practice inbox")
    portal_sub = portal.add_subparsers(dest="action", required=True, metavar="ACTION")
    recall = portal_sub.add_parser("recall", parents=[common], help="withdraw an unread portal message")
    recall.add_argument("id", help="the message id (its Communication id) or the request id that sent it")
    recall.add_argument("--reason", default="", help="why, for the record (no clinical details)")
    portal_sub.add_parser("expire", parents=[common], help="expire unread messages whose link has run out")
    inbox = portal_sub.add_parser("inbox", parents=[common],
                                  help="the practice inbox: patients' replies and staff follow-ups")
    inbox.add_argument("--all", action="store_true", help="include items already done")
    inbox.add_argument("--text", action="store_true", help="show the words of patients' replies (decrypted)")
    done = portal_sub.add_parser("done", parents=[common], help="mark an inbox item done")
    done.add_argument("id", help="the inbox item id")
    add_api_commands(sub, common)  # clients, notify: the FHIR API's (emrcomm.api.commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.config = getattr(args, "config", None)
    args.json = getattr(args, "json", False)
    verbose = getattr(args, "verbose", 0)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING,
                        handlers=[handler])
    handler = getattr(args, "handler", None) or globals()[f"cmd_{args.command.replace('-', '_')}"]
    try:
        code: int = handler(args)
        return code
    except EmrcommError as exc:
        print(f"emrcomm: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


class _OneLine(logging.Formatter):
    """One record, one line: control characters in a message (from a file, a URL) are escaped,
    so nothing a client sends can forge a log line. Tracebacks keep their lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))


def _host(args: argparse.Namespace, *, read_only: bool = False) -> Any:
    """The host of ``--config``; ``read_only`` for commands that only ask (they write nothing)."""
    from emrcomm.host import Host

    return Host.from_config(args.config, read_only=read_only)


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text)


# commands ----------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from emrcomm.demo import run_demo

    summary = run_demo(args.data, patients=args.patients, seed=args.seed, day=args.date,
                       progress=not args.json, out=sys.stderr)
    _emit(args, summary.to_dict(), summary.table())
    return EXIT_OK


def cmd_plugins(args: argparse.Namespace) -> int:
    with _host(args, read_only=True) as host:
        rows = host.plugins.hooks_of()
        data = [{"name": p.name, "entry_point": p.value, "distribution": p.distribution,
                 "builtin": p.builtin, "hooks": hooks} for p, hooks in rows]
        width = max(len(p.name) for p, _ in rows)
        lines = [f"{i:>2}. {p.name:<{width}}  {', '.join(h.removeprefix('emrcomm_') for h in hooks)}"
                 + ("" if p.builtin else f"  [{p.distribution or p.value}]")
                 for i, (p, hooks) in enumerate(rows, 1)]
        channels = ", ".join(f"{c.name} ({'secure' if c.secure else 'insecure'}, from {c.plugin})"
                             for c in host.channels.values())
        _emit(args, {"plugins": data, "channels": [c.name for c in host.channels.values()]},
              "Active plugins, in call order:\n" + "\n".join(lines) + f"\nChannels: {channels}")
    return EXIT_OK


def cmd_check_config(args: argparse.Namespace) -> int:
    with _host(args, read_only=True) as host:
        config = host.config
        data: dict[str, Any] = {"config": config.source, "clinic": config.clinic.name, "store": str(config.store_path),
                "plugins": [p.name for p in host.plugins], "channels": sorted(host.channels)}
        _emit(args, data, f"{config.source}: OK\n  clinic: {config.clinic.name}\n  store: {config.store_path}\n"
                          f"  plugins: {', '.join(data['plugins'])}\n  channels: {', '.join(data['channels'])}")
    return EXIT_OK


def _read_requests(files: Sequence[str], limits: Limits) -> Iterator[str]:
    for name in files:
        if name == "-":
            text = _decoded(_read_stdin(), "standard input")
            yield from (line for line in text.splitlines() if line.strip()) if _is_lines(text) else [text]
            continue
        path = Path(name)
        lines = path.suffix in (".jsonl", ".ndjson")
        try:
            if not lines and path.stat().st_size > limits.request_bytes:
                raise RequestError(f"{path}: {path.stat().st_size:,} bytes; the most a request may be is "
                                   f"{limits.request_bytes:,} ([limits] request_bytes)")
            text = _decoded(path.read_bytes(), str(path))
        except OSError as exc:
            raise EmrcommError(f"{path}: cannot read: {exc.strerror}") from None
        if lines:
            yield from (line for line in text.splitlines() if line.strip())
        else:
            yield text


def _read_stdin() -> bytes:
    buffer = getattr(sys.stdin, "buffer", None)
    return buffer.read() if buffer is not None else sys.stdin.read().encode("utf-8", "surrogateescape")


def _decoded(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(f"{where}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def _is_lines(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    return len(lines) > 1 and all(line.lstrip().startswith("{") and line.rstrip().endswith("}") for line in lines)


def cmd_send(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    worst = EXIT_OK
    results: list[dict[str, Any]] = []
    with _host(args) as host:
        items = list(_read_requests(args.files, host.config.limits))
        # A bar only for long runs on a terminal; per-request output goes to stdout as usual.
        bar = tqdm(items, desc="sending", unit="msg", file=sys.stderr, leave=False,
                   disable=len(items) < 50 or not sys.stderr.isatty())
        for item in bar:
            try:
                outcome = host.send(item)
            except RequestError as exc:
                if len(items) == 1:
                    raise
                results.append({"error": str(exc)})
                worst = max(worst, EXIT_BAD_INPUT)
                continue
            communications = [fhir.communication(r) for r in map(host.record, outcome.record_ids) if r is not None]
            results.append({"outcome": outcome.to_dict(), "communications": communications})
            if outcome.status in (Status.BLOCKED, Status.FAILED):
                worst = max(worst, EXIT_BLOCKED)
            if not args.json:
                print(format_outcome(outcome))
                print(json.dumps(communications, indent=2, ensure_ascii=False))
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2, ensure_ascii=False))
    return worst


def format_outcome(outcome: Outcome) -> str:
    lines = [f"request {outcome.request_id}: {outcome.status.value.upper()}"
             + (f" on {' + '.join(outcome.channels)}" if outcome.channels else "")]
    lines += [f"  - {line}" for line in outcome.explanation]
    lines += [f"  {format_finding(f)}" for f in outcome.findings]
    if outcome.record_ids:
        lines.append(f"  filed: {', '.join('Communication/' + r for r in outcome.record_ids)}")
    return "\n".join(lines)


def format_finding(f: Finding) -> str:
    where = f" [{f.channel}]" if f.channel else ""
    span = f" at {f.span[0]}-{f.span[1]}" if f.span else ""
    text = f"{f.severity.value.upper():5} {f.code}{where}{span}: {f.message}"
    if f.remedy:
        text += f" -> {f.remedy}"
    return text + (f" (plugin {f.plugin})" if f.plugin else "")


# How `emrcomm check` names what stopped a text: the content detector's layer.
CONTENT_VERDICTS = {
    "lexicon": "blocked by the lexicon (a listed clinical term)",
    "context": "blocked by context (clinical wording without a listed term)",
    "uncertain": "routed to the portal for uncertainty (free text that may be clinical)",
}


def content_verdict(found: Sequence[Finding]) -> str | None:
    """The layer that stopped the text: ``lexicon`` before ``context`` before ``uncertain``."""
    from emrcomm.rules import clinical_layer

    layers = {clinical_layer(f) for f in found if f.blocks}
    return next((layer for layer in CONTENT_VERDICTS if layer in layers), None)


def cmd_check(args: argparse.Namespace) -> int:
    if args.patient is not None:
        return _check_patient(args)
    if args.channel is None:
        raise EmrcommError("check: give --channel (the text rules of one channel) "
                           "or --patient (how it would be routed to that patient)")
    with _host(args, read_only=True) as host:
        if args.text is not None:
            found = host.check(args.text, channel=args.channel, category=args.category, language=args.lang)
            blocked = any(f.blocks for f in found)
            layer = content_verdict(found)
            content = f"content: {CONTENT_VERDICTS[layer]}" if layer else "content: no clinical content found"
            _emit(args, {"blocked": blocked, "content": layer, "findings": [_finding_json(f) for f in found]},
                  "\n".join([*(format_finding(f) for f in found), content]))
            return EXIT_BLOCKED if blocked else EXIT_OK
        return _check_lines(args, host)


def _check_lines(args: argparse.Namespace, host: Any) -> int:
    """One JSON object per input line, in order: the verdict, or the error of that line alone.
    Each line is read no further than the request limit (a longer one is that line's error)."""
    any_blocked = any_error = False
    stream = sys.stdin.buffer if str(args.jsonl) == "-" else _open(args.jsonl)
    with stream:
        lines = iter(lambda: stream.readline(host.config.limits.request_bytes + 2), b"")
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                item = _check_item(raw, number, args, host.config.limits)
                found = host.check(item["text"], channel=item.get("channel", args.channel),
                                   category=item.get("category", args.category),
                                   language=item.get("lang", args.lang))
            except RequestError as exc:
                any_error = True
                message = str(exc) if str(exc).startswith(f"{args.jsonl}:") else f"{args.jsonl}:{number}: {exc}"
                print(f"emrcomm: error: {message}", file=sys.stderr)
                print(json.dumps({"line": number, "error": message}, ensure_ascii=False))
                continue
            blocked = any(f.blocks for f in found)
            any_blocked |= blocked
            print(json.dumps({"line": number, "blocked": blocked, "content": content_verdict(found),
                              "findings": [_finding_json(f) for f in found]}, ensure_ascii=False))
    return EXIT_BAD_INPUT if any_error else EXIT_BLOCKED if any_blocked else EXIT_OK


def _check_patient(args: argparse.Namespace) -> int:
    from emrcomm.model import Request, Sensitivity

    if args.text is None:
        raise EmrcommError("check --patient: give the message with --text")
    request = Request(args.patient, args.category, id="check", text=args.text,
                      sensitivity=Sensitivity.RESTRICTED if args.restricted else Sensitivity.NORMAL,
                      channel=args.channel)
    with _host(args, read_only=True) as host:
        outcome = host.preview(request)
    _emit(args, outcome.to_dict(), format_outcome(outcome).replace("request check: ", "would be: ", 1))
    return EXIT_BLOCKED if outcome.status is Status.BLOCKED else EXIT_OK


def _open(path: Path) -> Any:
    try:
        return path.open("rb")
    except OSError as exc:
        raise EmrcommError(f"{path}: cannot read: {exc.strerror}") from None


def _check_item(line: bytes, number: int, args: argparse.Namespace, limits: Limits) -> dict[str, Any]:
    where = f"{args.jsonl}:{number}"
    try:
        item = loads_json(line, what=f"line {number}", limits=limits)
    except RequestError as exc:
        raise RequestError(f"{where}: {exc}") from None
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        raise RequestError(f'{where}: expected an object with a "text" string')
    for key in ("channel", "category", "lang"):
        if key in item and not isinstance(item[key], str):
            raise RequestError(f'{where}: "{key}" must be a string')
    return item


def _finding_json(f: Finding) -> dict[str, Any]:
    return {"code": f.code, "severity": f.severity.value, "message": f.message,
            "span": list(f.span) if f.span else None, "remedy": f.remedy, "plugin": f.plugin}


def cmd_records(args: argparse.Namespace) -> int:
    def aware(value: dt.datetime | None) -> dt.datetime | None:
        return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value

    with _host(args) as host:
        if args.action == "flush":
            return _flush(args, host)
        if args.action == "queue":
            status = [filer.queue_status() for filer in _server_filers(host)]
            _emit(args, status, "\n".join(
                f"{s['target']} -> {s['server']}: {s['pending']} waiting, {s['done']} filed, "
                f"{len(s['rejected'])} refused" + "".join(f"\n  refused {r['record_id']}: {r['last_error']}"
                                                           for r in s["rejected"]) for s in status))
            return EXIT_OK
        if args.source == "server":
            from emrcomm import fhir

            params = _server_query(host, args, aware(args.since), aware(args.until))
            bundle = fhir.searchset(_server_filers(host)[0].search(params))
        else:
            bundle = host.records(patient=args.patient, status=args.status, channel=args.channel,
                                  category=args.category, since=aware(args.since), until=aware(args.until))
    print(json.dumps(bundle, indent=2, ensure_ascii=False))
    return EXIT_OK


def _server_filers(host: Any) -> list[Any]:
    """The active plugins that file on a FHIR server (they offer flush, queue_status, search)."""
    found = [p.plugin for p in host.plugins if all(callable(getattr(p.plugin, m, None))
                                                   for m in ("flush", "queue_status", "search"))]
    if not found:
        raise EmrcommError("no plugin files records on a FHIR server: add [plugins.fhir-records] with its "
                           "base_url to the config (docs/records.md)")
    return found


def _server_query(host: Any, args: argparse.Namespace, since: dt.datetime | None,
                  until: dt.datetime | None) -> list[tuple[str, str]]:
    """FHIR search parameters for the filters. On the server, dates filter Communication.sent."""
    from emrcomm.fhir import CATEGORY_SYSTEM, PARTICIPATION_MODE, fhir_datetime

    params: list[tuple[str, str]] = []
    if args.patient:
        params.append(("subject", args.patient))
    if args.status:
        params.append(("status", args.status))
    if args.channel:
        channel = host.channels.get(args.channel)
        if channel is None:
            raise EmrcommError(f"unknown channel {args.channel!r}; choose one of: {', '.join(sorted(host.channels))}")
        params.append(("medium", f"{PARTICIPATION_MODE}|{channel.medium}"))
    if args.category:
        params.append(("category", f"{CATEGORY_SYSTEM}|{args.category}"))
    if since:
        params.append(("sent", f"ge{fhir_datetime(since)}"))
    if until:
        params.append(("sent", f"lt{fhir_datetime(until)}"))
    return params


def _flush(args: argparse.Namespace, host: Any) -> int:
    reports = [(filer, filer.flush(retry_rejected=args.retry_rejected)) for filer in _server_filers(host)]
    data = [{"target": filer.name, "server": filer.base_url, **report.to_dict()} for filer, report in reports]
    _emit(args, data, "\n".join(
        f"{d['target']} -> {d['server']}: {d['filed']} filed, {d['rejected']} refused, {d['pending']} waiting"
        + (f"\n  stopped: {d['error']}" if d["error"] else "") for d in data))
    return EXIT_OK if all(not r.error and not r.pending and not r.rejected for _, r in reports) else EXIT_NOT_DONE


def cmd_audit(args: argparse.Namespace) -> int:
    """Read-only on purpose: verifying opens the store and the key, not the host and its plugins."""
    from emrcomm import audit
    from emrcomm.config import load_config
    from emrcomm.storage import open_sqlite

    config = load_config(args.config)
    key_file = audit.key_path(config)
    store = open_sqlite(config.store_path, read_only=True)
    try:
        if args.action == "public-key":
            print(audit.public_pem(audit.load_public_key(key_file)), end="")
            return EXIT_OK
        if args.action == "export":
            out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
            try:
                n = (audit.write_fhir if args.format == "fhir" else audit.write_jsonl)(store, out)
            finally:
                if args.output:
                    out.close()
            if args.output:
                print(f"{n} entries written to {args.output}", file=sys.stderr)
            return EXIT_OK
        keys = [audit.load_public_key(path) for path in args.public_key]
        if key_file.exists():
            keys.append(audit.load_public_key(key_file))
        if not keys:
            raise EmrcommError(f"no trusted key: {key_file} (audit.key_file) is missing; give --public-key FILE")
        anchor = _anchor(args.anchor) if args.anchor else None
        report = audit.verify(store, keys, anchor=anchor)
    finally:
        store.close()
    if report.ok:
        head = (f"entry {report.head_seq} (keep {report.head_seq}:{report.head_hash} to check later with --anchor)"
                if report.head_seq else "none (the log is empty)")
        text = (f"audit log {config.store_path}: {report.entries} entries; every signature, the chain, the order "
                f"and the end check out.\n  head: {head}\n  keys: {', '.join(report.keys)}")
        if report.unsealed:
            text += (f"\n  {report.unsealed} entr{'y' if report.unsealed == 1 else 'ies'} appended since the last "
                     "seal (the host is running, or stopped without closing)")
    else:
        text = (f"audit log {config.store_path}: {len(report.problems)} problem(s) in {report.entries} entries:\n"
                + "\n".join(f"  - {p.message}" for p in report.problems))
    _emit(args, report.to_dict(), text)
    return EXIT_OK if report.ok else EXIT_NOT_DONE


def _anchor(value: str) -> tuple[int, str]:
    seq, _, digest = value.partition(":")
    if not seq.isdigit() or len(digest) != 64:
        raise EmrcommError(f"--anchor {value!r}: expected SEQ:HASH, e.g. 1042:<64 hex digits> from `audit verify`")
    return int(seq), digest.lower()


def cmd_serve(args: argparse.Namespace) -> int:
    from emrcomm.web import serve

    logging.getLogger("emrcomm").setLevel(min(logging.getLogger().level, logging.INFO))
    with _host(args) as host:
        print(f"emrcomm: serving the portal on http://{args.bind}:{args.port}/ (Ctrl-C stops)", file=sys.stderr)
        serve(host, bind=args.bind, port=args.port, forwarded_allow_ips=args.forwarded_allow_ips)
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    import signal

    from emrcomm.outbox.worker import Worker, WorkerSettings

    if args.concurrency is not None and not 1 <= args.concurrency <= 256:
        raise EmrcommError(f"--concurrency {args.concurrency}: choose 1 to 256")
    logging.getLogger("emrcomm").setLevel(min(logging.getLogger().level, logging.INFO))
    with _host(args) as host:
        settings = WorkerSettings.from_config(host.config.raw.get("delivery", {}), args.concurrency)
        worker = Worker(host, settings)
        # SIGTERM finishes the messages in hand, then exits; the leases make SIGKILL safe too.
        signal.signal(signal.SIGTERM, lambda *_: worker.stop())
        stats = worker.run(once=args.once)
        counts = host.storage.outbox.counts()
    result = {"worker": stats.as_dict(), "outbox": counts}
    _emit(args, result, " ".join(f"{k}={v}" for k, v in stats.as_dict().items() if k != "crash_window_ms")
          + " | outbox " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    return EXIT_OK


def cmd_outbox(args: argparse.Namespace) -> int:
    with _host(args) as host:
        if getattr(args, "action", None) == "requeue":
            if bool(args.id) == bool(args.all_dead):
                raise EmrcommError("outbox requeue: give one ID or --all-dead")
            count = host.requeue(None if args.all_dead else args.id)
            _emit(args, {"requeued": count}, f"requeued {count} dead letter(s)")
            return EXIT_OK if count or args.all_dead else EXIT_NOT_DONE
        counts = host.storage.outbox.counts()
        dead = [{"record_id": d.key, "request_id": d.request_id, "channel": d.channel, "state": d.state,
                 "attempts": d.attempts, "last_error": d.last_error} for d in host.storage.outbox.dead()]
    lines = ["outbox: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "empty")]
    for row in dead:
        lines.append(f"  {row['state']:8} {row['record_id']} {row['channel']:7} attempts={row['attempts']}  "
                     f"{row['last_error'] or ''}")
    _emit(args, {"counts": counts, "dead": dead}, "\n".join(lines))
    return EXIT_OK


def _portal(host: Any) -> Any:
    channel = host.channels.get("portal")
    service = getattr(channel.transport, "service", None) if channel is not None else None
    if service is None:
        raise EmrcommError("the built-in portal is not enabled (plugins.portal): nothing to do here")
    return service


def cmd_keys(args: argparse.Namespace) -> int:
    with _host(args) as host:
        portal = _portal(host)
        if args.action == "rotate":
            done = portal.rotate_keys(retire=args.retire)
            data = {"key": done.key_id, "link_key": done.link_key_id, "reencrypted": done.resealed,
                    "retired": list(done.retired)}
            _emit(args, data, f"new current key {done.key_id} (link key {done.link_key_id}); "
                              f"{done.resealed} message(s) re-encrypted"
                              + (f"; retired {', '.join(done.retired)}" if done.retired else ""))
            return EXIT_OK
        ring, use = portal.transport.ring, portal.messages.key_use()
        rows = [{"id": k, "kind": "encryption", "current": k == ring.current, "messages": use.get(k, 0)}
                for k in ring.keys]
        rows += [{"id": k, "kind": "link", "current": k == ring.link_current, "messages": use.get(k, 0)}
                 for k in ring.link_keys]
        _emit(args, rows, "\n".join(f"{r['id']}  {r['kind']:<10}  {'current' if r['current'] else 'old':<7}  "
                                    f"{r['messages']} message(s)" for r in rows))
    return EXIT_OK


def cmd_portal(args: argparse.Namespace) -> int:
    from emrcomm.inbox import close_item

    with _host(args) as host:
        portal = _portal(host)
        if args.action == "recall":
            result = portal.recall(args.id, host, args.reason)
            _emit(args, {"result": result}, {
                "recalled": "recalled: the link no longer opens it and the record says so",
                "unknown": f"no portal message {args.id}",
                "read": "not recalled: the patient has already read it; send a correction instead",
                "recalled-before": "it was already recalled",
                "expired": "not recalled: it had already expired unread",
            }.get(result, result))
            return EXIT_OK if result == "recalled" else EXIT_BAD_INPUT
        if args.action == "expire":
            expired = portal.expire_due(host)
            _emit(args, {"expired": expired}, f"{len(expired)} message(s) expired")
            return EXIT_OK
        if args.action == "done":
            closed = close_item(host.storage, args.id, host.clock())
            if not closed:
                raise EmrcommError(f"no open inbox item {args.id}")
            _emit(args, {"done": args.id}, f"{args.id}: done")
            return EXIT_OK
        items = host.storage.inbox.items(state=None if args.all else "open")
        if args.text:
            for item in items:
                if item["kind"] == "reply" and item["message_id"]:
                    item["text"] = portal.transport.read(item["message_id"])["text"]
        lines = []
        for item in items:
            tags = f" [{', '.join(item['keywords'])}]" if item["keywords"] else ""
            lines.append(f"{item['id']}  {item['created'][:16]}  {item['priority']:<7}  {item['kind']:<14}  "
                         f"{item['patient']}{tags}  {item['task']['description']}")
            if "text" in item:
                lines += [f"    | {line}" for line in item["text"].splitlines()]
        tasks = [dict(item["task"], note=[{"text": item["text"]}]) if "text" in item else item["task"]
                 for item in items]
        _emit(args, {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": t} for t in tasks]},
              "\n".join(lines) or "the inbox is empty")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
