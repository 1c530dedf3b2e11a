"""The ``emrcomm`` command. Exit codes: 0 ok, 2 bad input or config, 3 blocked."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from emrcomm.errors import EmrcommError
from emrcomm.model import Finding, Outcome, Status

EXIT_OK, EXIT_BAD_INPUT, EXIT_BLOCKED = 0, 2, 3


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

    check = sub.add_parser("check", parents=[common], help="check a text against the content rules")
    check.add_argument("--channel", required=True, help="sms, email or portal")
    check.add_argument("--category", default="appointment-reminder")
    check.add_argument("--lang", default="en", choices=["en", "fr"])
    given = check.add_mutually_exclusive_group(required=True)
    given.add_argument("--text", help="the text to check")
    given.add_argument("--jsonl", type=Path, metavar="FILE",
                       help='one {"text", "channel"?, "category"?, "lang"?} object per line; - for stdin')

    records = sub.add_parser("records", parents=[common], help="print filed Communications as a FHIR Bundle")
    records.add_argument("--patient", help="Patient/<id>")
    records.add_argument("--status", help="completed, not-done, on-hold, in-progress")
    records.add_argument("--channel")
    records.add_argument("--category")
    records.add_argument("--since", type=dt.datetime.fromisoformat, help="ISO date or date-time (UTC if no zone)")
    records.add_argument("--until", type=dt.datetime.fromisoformat)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.config = getattr(args, "config", None)
    args.json = getattr(args, "json", False)
    verbose = getattr(args, "verbose", 0)
    logging.basicConfig(
        level=logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr,
    )
    handler = globals()[f"cmd_{args.command.replace('-', '_')}"]
    try:
        code: int = handler(args)
        return code
    except EmrcommError as exc:
        print(f"emrcomm: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


def _host(args: argparse.Namespace) -> Any:
    from emrcomm.host import Host

    return Host.from_config(args.config)


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
    with _host(args) as host:
        rows = host.plugin_hooks()
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
    with _host(args) as host:
        config = host.config
        data: dict[str, Any] = {"config": config.source, "clinic": config.clinic.name, "store": str(config.store_path),
                "plugins": [p.name for p in host.plugins], "channels": sorted(host.channels)}
        _emit(args, data, f"{config.source}: OK\n  clinic: {config.clinic.name}\n  store: {config.store_path}\n"
                          f"  plugins: {', '.join(data['plugins'])}\n  channels: {', '.join(data['channels'])}")
    return EXIT_OK


def _read_requests(files: Sequence[str]) -> Iterator[str]:
    for name in files:
        if name == "-":
            text = sys.stdin.read()
            yield from (line for line in text.splitlines() if line.strip()) if _is_lines(text) else [text]
            continue
        path = Path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise EmrcommError(f"{path}: cannot read: {exc.strerror}") from None
        if path.suffix in (".jsonl", ".ndjson"):
            yield from (line for line in text.splitlines() if line.strip())
        else:
            yield text


def _is_lines(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    return len(lines) > 1 and all(line.lstrip().startswith("{") and line.rstrip().endswith("}") for line in lines)


def cmd_send(args: argparse.Namespace) -> int:
    from emrcomm.errors import RequestError

    from tqdm import tqdm

    items = list(_read_requests(args.files))
    worst = EXIT_OK
    results: list[dict[str, Any]] = []
    # A bar only for long runs on a terminal; per-request output goes to stdout as usual.
    bar = tqdm(items, desc="sending", unit="msg", file=sys.stderr, leave=False,
               disable=len(items) < 50 or not sys.stderr.isatty())
    with _host(args) as host:
        for item in bar:
            try:
                outcome = host.send(item)
            except RequestError as exc:
                if len(items) == 1:
                    raise
                results.append({"error": str(exc)})
                worst = max(worst, EXIT_BAD_INPUT)
                continue
            communications = [host.store.get_record(rid) for rid in outcome.record_ids]
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


def cmd_check(args: argparse.Namespace) -> int:
    with _host(args) as host:
        if args.text is not None:
            found = host.check(args.text, channel=args.channel, category=args.category, language=args.lang)
            blocked = any(f.blocks for f in found)
            _emit(args, {"blocked": blocked, "findings": [_finding_json(f) for f in found]},
                  "\n".join(format_finding(f) for f in found) or "no findings")
            return EXIT_BLOCKED if blocked else EXIT_OK
        any_blocked = False
        stream = sys.stdin if str(args.jsonl) == "-" else _open(args.jsonl)
        with stream:
            for number, line in enumerate(stream, 1):
                if not line.strip():
                    continue
                item = _check_item(line, number, args)
                found = host.check(item["text"], channel=item.get("channel", args.channel),
                                   category=item.get("category", args.category),
                                   language=item.get("lang", args.lang))
                blocked = any(f.blocks for f in found)
                any_blocked |= blocked
                print(json.dumps({"blocked": blocked, "findings": [_finding_json(f) for f in found]},
                                 ensure_ascii=False))
        return EXIT_BLOCKED if any_blocked else EXIT_OK


def _open(path: Path) -> Any:
    try:
        return path.open(encoding="utf-8")
    except OSError as exc:
        raise EmrcommError(f"{path}: cannot read: {exc.strerror}") from None


def _check_item(line: str, number: int, args: argparse.Namespace) -> dict[str, Any]:
    from emrcomm.errors import RequestError

    where = f"{args.jsonl}:{number}"
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RequestError(f"{where}: not JSON: {exc.msg}") from None
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        raise RequestError(f'{where}: expected an object with a "text" string')
    return item


def _finding_json(f: Finding) -> dict[str, Any]:
    return {"code": f.code, "severity": f.severity.value, "message": f.message,
            "span": list(f.span) if f.span else None, "remedy": f.remedy, "plugin": f.plugin}


def cmd_records(args: argparse.Namespace) -> int:
    def aware(value: dt.datetime | None) -> dt.datetime | None:
        return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value

    with _host(args) as host:
        bundle = host.records(patient=args.patient, status=args.status, channel=args.channel,
                              category=args.category, since=aware(args.since), until=aware(args.until))
    print(json.dumps(bundle, indent=2, ensure_ascii=False))
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
