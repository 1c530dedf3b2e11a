"""The ``emrcomm`` command. Exit codes: 0 ok, 2 bad input or config, 3 not sent (blocked or failed)
or, for ``check``, would be blocked, 4 not done (``audit verify`` or ``doctor`` found a problem; a
plugin command that left work undone, such as ``fhir-records flush``; the database unavailable:
its server not reached as the command starts (refused, timed out, starting up or shutting down,
its connections all taken) or gone away part-way, or a lock held elsewhere outlasted
``store.lock_timeout``: try again later; a server a plugin needs that cannot answer now, such as
the patient directory's for ``send``, ``check --patient`` or ``consent`` (PluginUnavailable); ``consent``
that the API would answer 503; ``send`` of a request sent before whose record this release cannot
read (nothing sent again); ``worker --once``
that left a row unsettled, its delivery raised or its send hung, or whose claim failed otherwise). A store that refuses the login, has no such database,
or is named by a malformed URL or a host name that does not exist is config, exit 2. ``send`` of
several requests exits with the most pressing of theirs: 2, then 4, then 3 (SEND_PRECEDENCE).
Plugins add commands of their own (``emrcomm_cli_commands``)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from emrcomm import fhir
from emrcomm.api.commands import add_commands as add_api_commands
from emrcomm.errors import EmrcommError, PluginUnavailable, RequestError
from emrcomm.limits import Limits, check_patient_option, escape_controls, loads_json
from emrcomm.model import Category, Finding, Outcome, Request, Status
from emrcomm.staff.commands import add_commands as add_staff_commands
from emrcomm.storage.database import StoreUnavailable, server_refuses

if TYPE_CHECKING:
    from emrcomm.host import Host
    from emrcomm.storage.outbox import Item

EXIT_OK, EXIT_BAD_INPUT, EXIT_BLOCKED = 0, 2, 3
EXIT_NOT_DONE = 4
EXIT_BROKEN_PIPE = 141  # what a shell reports for a command its reader stopped (128 + SIGPIPE)
# Every FHIR Communication.status a record can have (emrcomm.lifecycle.states.RULES, and in-progress
# for a message sent whose patient was not told): what `records --status` takes.
RECORD_STATUSES = ("completed", "in-progress", "on-hold", "not-done", "stopped")


def _common(*, config: bool = True) -> argparse.ArgumentParser:
    """--config (unless ``config`` is false: a command that reads none), --json and -v."""
    common = argparse.ArgumentParser(add_help=False)
    if config:
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
    from emrcomm import __version__

    parser.add_argument("--version", action="version", version=f"emrcomm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # The demo writes its own config in --data and runs on it: it takes no --config.
    demo = sub.add_parser("demo", parents=[_common(config=False)],
                          help="run one clinic day on a synthetic clinic, locally")
    demo.add_argument("--data", metavar="DIR", type=Path, default=Path("demo-clinic"),
                      help="folder for the demo's config, store and sinks (default ./demo-clinic)")
    demo.add_argument("--patients", metavar="N", type=int, default=200, help="number of patients (default 200)")
    demo.add_argument("--seed", type=int, default=7, help="seed of the synthetic clinic (default 7)")
    demo.add_argument("--date", type=dt.date.fromisoformat, default=None,
                      help="the clinic day, YYYY-MM-DD (default today)")

    sub.add_parser("plugins", parents=[common], help="list active plugins in call order and their hooks")
    sub.add_parser("check-config", parents=[common], help="load the config and every plugin, then report")
    sub.add_parser("doctor", parents=[common],
                   help="try everything the config names from here: credentials, the database, the audit key, "
                        "and each server (gateway, relay, FHIR server); nothing is sent or written")

    send = sub.add_parser("send", parents=[common], help="send FHIR CommunicationRequest(s) from files")
    send.add_argument("files", nargs="+", metavar="REQUEST",
                      help="a CommunicationRequest JSON file; .jsonl/.ndjson for one per line; - for stdin "
                           "(--json: an object for one request, a list for a .jsonl or several files)")

    check = sub.add_parser("check", parents=[common], help="check a text against the content rules, "
                           "or (--patient) how it would be routed to a patient and why")
    check.add_argument("--channel", help="sms, email or portal: the text rules of one channel")
    check.add_argument("--patient", metavar="Patient/ID",
                       help="a dry run for this patient: every channel, chosen or rejected and why; nothing is sent")
    check.add_argument("--restricted", action="store_true", help="with --patient: a restricted (confidential) request")
    check.add_argument("--category", default="appointment-reminder",
                       help="the request's category: its rules and, with --patient, its channels "
                            "(default appointment-reminder)")
    check.add_argument("--lang", default="en", choices=["en", "fr"], help="the text's language (default en)")
    given = check.add_mutually_exclusive_group(required=True)
    given.add_argument("--text", help="the text to check")
    given.add_argument("--jsonl", type=Path, metavar="FILE",
                       help='one {"text", "channel"?, "category"?, "lang"?} object per line; - for stdin')

    records = sub.add_parser("records", parents=[common],
                             help="what was filed, as a readable timeline (--fhir: a FHIR searchset Bundle)")
    records.add_argument("--patient", help="Patient/<id>: their timeline, in their time zone")
    records.add_argument("--fhir", action="store_true",
                         help="print the Communications as a FHIR searchset Bundle (as --json does)")
    records.add_argument("--status", choices=RECORD_STATUSES, help=", ".join(RECORD_STATUSES))
    records.add_argument("--channel", help="sms, email, portal, ...")
    records.add_argument("--category", choices=[c.value for c in Category], metavar="CATEGORY",
                         help="appointment-reminder, results-available, ... (a wrong one lists them all)")
    records.add_argument("--since", type=dt.datetime.fromisoformat, help="ISO date or date-time (UTC if no zone)")
    records.add_argument("--until", type=dt.datetime.fromisoformat, help="ISO date or date-time (UTC if no zone)")

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

    serve = sub.add_parser("serve", parents=[common], help="serve the FHIR API, the delivery callbacks, the portal, the staff pages and unsubscribe links")
    serve.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--forwarded-allow-ips", metavar="IPS", default=None,
                       help="addresses of the reverse proxy whose X-Forwarded-For / -Proto headers to trust")

    worker = sub.add_parser("worker", parents=[common], help="deliver what waits in the outbox (retries, holds)")
    worker.add_argument("--once", action="store_true", help="deliver what is due now, then exit")
    worker.add_argument("--concurrency", type=int, metavar="N", default=None,
                        help="messages delivered at once (default delivery.concurrency, 4)")

    outbox = sub.add_parser("outbox", parents=[common], help="outbox counts by state, the dead letters, the sends overdue (hung) and the rows waiting for a newer release")
    outbox_sub = outbox.add_subparsers(dest="action", required=False, metavar="ACTION")
    requeue = outbox_sub.add_parser("requeue", parents=[common], help="put dead letters back in the queue")
    requeue.add_argument("id", nargs="?", help="the outbox key or record id of one dead letter")
    requeue.add_argument("--all-dead", action="store_true", help="every dead letter")

    db = sub.add_parser("db", parents=[common], help="the database's schema: status, upgrade; copy a store")
    db_sub = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    db_sub.add_parser("status", parents=[common], help="the schema version of the core and of each plugin's "
                      "tables, and the steps not applied yet")
    db_sub.add_parser("upgrade", parents=[common], help="apply the steps not applied yet (run it as the role "
                      "that owns the tables, before starting a new release)")
    copy = db_sub.add_parser("copy", parents=[common], help="copy everything from another store into this "
                             "config's (empty) one, then check the counts and the audit chain")
    copy.add_argument("--from", dest="source", required=True, metavar="CONFIG",
                      help="the config of the store to copy from (e.g. the clinic's SQLite folder)")

    inbox = sub.add_parser("inbox", parents=[common],
                           help="the practice inbox: patients' replies and staff follow-ups, as FHIR Tasks")
    inbox.add_argument("action", nargs="?", choices=("list", "done"), default="list",
                       help="list (default) or done ID: mark an item done")
    inbox.add_argument("id", nargs="?", help="with done: the item id")
    inbox.add_argument("--all", action="store_true", help="include items already done")
    inbox.add_argument("--text", action="store_true",
                       help="show the words of patients' replies, read from the channel that keeps them")
    add_api_commands(sub, common)  # clients, notify: the FHIR API's (emrcomm.api.commands)
    add_staff_commands(sub, common)  # staff: accounts for the staff pages (emrcomm.staff.commands)
    _describe(parser)
    return parser


def _describe(parser: argparse.ArgumentParser) -> None:
    """Each command's help line, the one `emrcomm --help` lists, at the top of its own --help too."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for listed in action._choices_actions:
                child = action.choices[listed.dest]
                if child.description is None:
                    child.description = listed.help
                _describe(child)


def main(argv: Sequence[str] | None = None) -> int:
    # Standard output carries the words (replies, the chart, providers' errors); standard error
    # carries progress bars, which redraw with carriage returns, and log lines, escaped already.
    out = sys.stdout
    sys.stdout = _Shown(out)
    try:
        return _main(argv)
    finally:
        sys.stdout = out


class _Shown:
    """A text stream that writes control characters other than line breaks and tabs as
    ``\\uXXXX``: the words a command prints come from patients, providers and files, and none
    may move the cursor, retitle or clear the staff's terminal (escape sequences, carriage
    returns, C1 controls). A JSON string stays JSON with the same value."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(_TERMINAL_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


_TERMINAL_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:  # `emrcomm` alone: what it can do, not only "the following arguments are required"
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    try:
        plugin_commands = _plugin_commands(parser, argv)
    except EmrcommError as exc:
        print(f"emrcomm: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StoreUnavailable as exc:  # a plugin read the store as it started, and found it away or locked
        print(f"emrcomm: error: {exc}", file=sys.stderr)
        return EXIT_NOT_DONE
    args = parser.parse_args(argv)
    args.config = getattr(args, "config", None)
    args.json = getattr(args, "json", False)
    verbose = getattr(args, "verbose", 0)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING,
                        handlers=[handler])
    try:
        if args.command in plugin_commands:
            done = _run_plugin_command(args, *plugin_commands[args.command])
            sys.stdout.flush()
            return done
        handler = getattr(args, "handler", None) or globals()[f"cmd_{args.command.replace('-', '_')}"]
        code: int = handler(args)
        sys.stdout.flush()  # here, where a reader that went away is caught, not at exit
        return code
    except PluginUnavailable as exc:  # a server a plugin needs (the patient directory's) cannot answer now
        print(f"emrcomm: error: {exc}", file=sys.stderr)
        return EXIT_NOT_DONE
    except EmrcommError as exc:
        print(f"emrcomm: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StoreUnavailable as exc:  # the server went away, or a lock held elsewhere outlasted store.lock_timeout
        print(f"emrcomm: error: {exc}", file=sys.stderr)
        return EXIT_NOT_DONE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`emrcomm records | head`): stop quietly, as other Unix tools do.
        # Standard output now goes nowhere, so the interpreter's last flush cannot fail either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _plugin_commands(parser: argparse.ArgumentParser, argv: list[str]) -> dict[str, tuple[str, Any]]:
    """The commands the config's plugins add (``emrcomm_cli_commands``), added to ``parser``.

    Plugins are loaded only when the command is not one of the core's (or for ``--help``), in a
    host that writes nothing: the core's commands start no faster or slower for them.
    """
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = _command_word(argv)
    asks_help = command is None and any(a in ("-h", "--help") for a in argv)
    if command in sub.choices or (command is None and not asks_help):
        return {}
    probe = _common().parse_known_args(argv)[0]
    try:
        with _host(argparse.Namespace(config=getattr(probe, "config", None)), read_only=True) as host:
            found = host.plugins.cli_commands()
            running = {loaded.name for loaded in host.plugins}
    except (EmrcommError, StoreUnavailable) as exc:
        if asks_help:  # the core's help still helps; say why the plugins' commands are not in it
            print(f"emrcomm: note: the plugins' commands are not listed: {exc}", file=sys.stderr)
            return {}
        raise
    from emrcomm.plugin.manager import discover

    if command not in {cmd.name for _, cmd in found} and command not in running and command in discover():
        # `fhir-records queue` on a config without fhir-records: argparse would only say "invalid choice".
        raise EmrcommError(f"{command!r} is a command of the plugin {command!r}, which is installed but not run by "
                           f"this config: name it in the config ([plugins.{command}], docs/configuration.md) to "
                           "have its commands; `emrcomm plugins` lists the ones that run")
    commands: dict[str, tuple[str, Any]] = {}
    for plugin, cmd in found:
        if cmd.name in sub.choices:
            raise EmrcommError(f"plugin {plugin!r} adds a command {cmd.name!r}, which is one of emrcomm's own; "
                               "rename it")
        child = sub.add_parser(cmd.name, parents=[_common()], help=f"{cmd.help} (plugin {plugin})")
        cmd.arguments(child)
        _with_common_options(child)
        commands[cmd.name] = (plugin, cmd)
    return commands


def _command_word(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names: its first word that is neither an option nor the value of
    ``--config`` (``emrcomm --config clinic.toml --help`` names none; it asks for help)."""
    value_next = False
    for arg in argv:
        if value_next:
            value_next = False
        elif arg.startswith("-"):
            value_next = len(arg) > 2 and "--config".startswith(arg)  # argparse takes --conf too
        else:
            return arg
    return None


def _with_common_options(parser: argparse.ArgumentParser) -> None:
    """--config, --json and -v on every action of a plugin's command, as on the core's."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if not any("--config" in a.option_strings for a in child._actions):
                    for option in _common()._actions:
                        child._add_action(option)
                _with_common_options(child)


def _run_plugin_command(args: argparse.Namespace, plugin: str, command: Any) -> int:
    read_only = command.read_only(args) if callable(command.read_only) else command.read_only
    with _host(args, read_only=read_only) as host:
        code: int = command.run(args, host.plugins.get(plugin))
        return code


class _OneLine(logging.Formatter):
    """One record, one line: control characters in a message (from a file, a URL) are escaped,
    so nothing a client sends can forge a log line. Tracebacks keep their lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))


def _host(args: argparse.Namespace, *, read_only: bool = False, prepare: bool = False) -> Any:
    """The host of ``--config``; ``read_only`` for commands that only ask (they write nothing).
    ``prepare`` for commands that inspect messages or check that everything works: the plugins
    that put off their costly preparation (the content plugin's lexicons) do it now, and one
    that cannot stops the command naming it (PluginManager.prepare); the others never pay it."""
    from emrcomm.host import Host

    host = Host.from_config(args.config, read_only=read_only)
    if prepare:
        try:
            host.plugins.prepare()
        except BaseException:
            host.close()
            raise
    return host


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text)


# commands ----------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from emrcomm.demo import run_demo

    if args.config is not None:  # `emrcomm --config clinic.toml demo`: the demo would not read it
        raise EmrcommError("demo takes no --config: it writes its own in --data (default ./demo-clinic) and runs "
                           "on it; give --data DIR for another folder")

    summary = run_demo(args.data, patients=args.patients, seed=args.seed, day=args.date,
                       progress=not args.json and sys.stderr.isatty(), out=sys.stderr)
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
    # Read-only: the check writes nothing, whatever it finds; a missing credential is reported,
    # not raised, so that every one is named at once.
    with _host(args, read_only=True, prepare=True) as host:
        config = host.config
        problems = host.plugins.secret_problems()
        data: dict[str, Any] = {"config": config.source, "clinic": config.clinic.name, "store": config.store_where,
                "plugins": [p.name for p in host.plugins], "channels": sorted(host.channels), "problems": problems}
        _emit(args, data, f"{config.source}: {'OK' if not problems else 'NOT OK'}\n"
                          f"  clinic: {config.clinic.name}\n  store: {config.store_where}\n"
                          f"  plugins: {', '.join(data['plugins'])}\n  channels: {', '.join(data['channels'])}"
                          + "".join(f"\n  problem: {p}" for p in problems)
                          + "\n  (`emrcomm doctor` also tries each server the config names)")
    return EXIT_BAD_INPUT if problems else EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from emrcomm.doctor import examine, table, unopened
    from emrcomm.storage import StoreNotOpened, StoreNotReached

    try:
        with _host(args, read_only=True, prepare=True) as host:
            checks = examine(host)
    except (StoreNotOpened, StoreNotReached) as exc:  # the server down, the login refused, no such database: a failed check
        checks = unopened(str(args.config or "(the embedded defaults)"), str(exc))
    _emit(args, {"ok": all(c.ok for c in checks), "checks": [c.to_dict() for c in checks]}, table(checks))
    return EXIT_OK if all(c.ok for c in checks) else EXIT_NOT_DONE


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

    from emrcomm.config import load_config
    from emrcomm.host import Host

    codes: set[int] = set()
    results: list[dict[str, Any]] = []
    # The requests are read and checked before the host opens: a file that is missing or not a
    # request creates no database, key or key ring (the embedded defaults make a data folder).
    config = load_config(args.config)
    items = [_parsed(text, config.limits, config.clinic.zone) for text in _read_requests(args.files, config.limits)]
    # --json prints a list for a batch however many lines it has tonight, an object for one request.
    batch = len(args.files) > 1 or any(Path(name).suffix in (".jsonl", ".ndjson") for name in args.files)
    if len(items) == 1 and isinstance(items[0], RequestError):
        raise items[0]
    with Host(config) as host:
        host.plugins.prepare()  # a plugin that cannot inspect stops the command here, as at its start
        # A bar only for long runs on a terminal; per-request output goes to stdout as usual.
        bar = tqdm(items, desc="sending", unit="msg", file=sys.stderr, leave=False,
                   disable=len(items) < 50 or not sys.stderr.isatty())
        for item in bar:
            try:
                if isinstance(item, RequestError):
                    raise item
                outcome = host.send(item)
            except (RequestError, PluginUnavailable) as exc:
                if len(items) == 1:
                    raise
                # The sentence is for people; ``code`` (FHIR's issue code: conflict, invalid,
                # required, processing, transient, ...) is what a program reads. Not sent for now
                # (the directory could not answer, transient): the others still go.
                later = isinstance(exc, PluginUnavailable)
                results.append({"error": str(exc), "code": exc.issue_code, **({"retry": True} if later else {})})
                codes.add(EXIT_NOT_DONE if later else EXIT_BAD_INPUT)
                if not args.json:
                    print(f"emrcomm: error: request {len(results)} of {len(items)}: {exc}", file=sys.stderr)
                continue
            # Failed for now (sent before, and its record cannot be read here: a newer release's,
            # or damaged): nothing was sent again; not done, as a directory outage is.
            later = outcome.status is Status.FAILED and outcome.error == "transient"
            if later:
                codes.add(EXIT_NOT_DONE)
            elif outcome.status in (Status.BLOCKED, Status.FAILED):
                codes.add(EXIT_BLOCKED)
            if args.json:
                results.append({"outcome": outcome.to_dict(), "communications": _communications(host, outcome)})
            else:
                results.append({"status": outcome.status.value, **({"retry": True} if later else {})})
                print(format_outcome(outcome, why=later))
    if args.json:
        print(json.dumps(results if batch or len(results) != 1 else results[0], indent=2, ensure_ascii=False))
    elif len(results) > 1:
        print(_tally(results))
    return _most_pressing(codes)


# ``emrcomm send`` of several requests exits with the most pressing of their codes, not the
# highest: bad input first (fix the file: no run again helps it, and a script that runs the same
# files again on 4 would run for ever), then 4 (run the same files again later: the requests
# decided are answered as first recorded, never sent twice), then 3. Each request's own line says
# which it was.
SEND_PRECEDENCE = (EXIT_BAD_INPUT, EXIT_NOT_DONE, EXIT_BLOCKED)


def _communications(host: Any, outcome: Outcome) -> list[dict[str, Any]]:
    """The Communications of ``outcome`` this release can read (one it cannot is named in the
    outcome's explanation, never a traceback)."""
    from emrcomm.storage.records import RecordUnreadable

    found = []
    for record_id in outcome.record_ids:
        try:
            record = host.record(record_id)
        except RecordUnreadable:
            continue
        if record is not None:
            found.append(fhir.communication(record))
    return found


def _most_pressing(codes: set[int]) -> int:
    return next((code for code in SEND_PRECEDENCE if code in codes), EXIT_OK)


def _parsed(text: str, limits: Limits, zone: dt.tzinfo) -> Request | RequestError:
    """The Request in ``text``, or the RequestError that says what is wrong with it."""
    from emrcomm.limits import check_request

    try:
        request = fhir.parse_request(text, limits=limits, zone=zone)
        check_request(request, limits)
    except RequestError as exc:
        return exc
    return request


def _tally(results: list[dict[str, Any]]) -> str:
    """``3 requests: 1 sent, 2 blocked``, statuses in the order first seen, then errors."""
    counts: dict[str, int] = {}
    for result in results:
        key = ("not sent now (try again)" if "retry" in result else "not read (error)" if "error" in result
               else str(result["status"]))
        counts[key] = counts.get(key, 0) + 1
    return f"{len(results)} requests: " + ", ".join(f"{n} {status}" for status, n in counts.items())


def format_outcome(outcome: Outcome, *, why: bool = True) -> str:
    """The outcome for people: status and channels, every finding once, the records filed;
    ``why`` adds how each candidate fared (``check --patient``; ``send`` leaves it out)."""
    from emrcomm.pipeline.write import is_repeat

    lines = [f"request {outcome.request_id}: {outcome.status.value.upper()}"
             + (f" on {' + '.join(outcome.channels)}" if outcome.channels else "")]
    findings = list(outcome.findings)
    if why or is_repeat(outcome):
        lines += [f"  - {line}" for line in outcome.explanation]
    elif outcome.status not in (Status.BLOCKED, Status.FAILED):
        # It went (or waits) another way: what stopped the channels passed over, in one line.
        passed = [f for f in findings if f.blocks and f.hold_until is None]
        findings = [f for f in findings if f not in passed]
        skipped: dict[str, list[str]] = {}
        for f in passed:
            codes = skipped.setdefault(f.channel or "?", [])
            if f.code not in codes:
                codes.append(f.code)
        if skipped:
            lines.append("  not by " + "; not by ".join(f"{c}: {', '.join(codes)}" for c, codes in skipped.items()))
    lines += [f"  {format_finding(f)}" for f in findings]
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
    with _host(args, read_only=True, prepare=True) as host:
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
    from emrcomm.model import Sensitivity

    if args.text is None:
        raise EmrcommError("check --patient: give the message with --text")
    if args.category not in {c.value for c in Category}:  # as host.check says it for a text alone
        raise RequestError(f"check --category: unknown category {args.category!r}; choose one of: "
                           f"{', '.join(c.value for c in Category)}")
    request = Request(args.patient, args.category, id="check", text=args.text,
                      sensitivity=Sensitivity.RESTRICTED if args.restricted else Sensitivity.NORMAL,
                      channel=args.channel)
    with _host(args, read_only=True, prepare=True) as host:
        outcome = host.preview(request)
    _emit(args, outcome.to_dict(), format_outcome(outcome).replace("request check: ", "would be: ", 1))
    return EXIT_BLOCKED if outcome.status is Status.BLOCKED else EXIT_OK


def _open(path: Path) -> Any:
    try:
        return path.open("rb")
    except OSError as exc:
        raise EmrcommError(f"{path}: cannot read: {exc.strerror}") from None


def _open_output(path: Path) -> Any:
    try:
        return path.open("w", encoding="utf-8")
    except OSError as exc:
        raise EmrcommError(f"{path}: cannot write: {exc.strerror}; give -o a file in a folder that exists "
                           "and that you may write to") from None


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

    if args.patient is not None:
        check_patient_option(args.patient, "records")
    filters = {"status": args.status, "channel": args.channel, "category": args.category,
               "since": aware(args.since), "until": aware(args.until)}
    from emrcomm import timeline

    # A record this release cannot read is left out, named (after the others), and the command
    # exits 4: what was printed is not the whole chart.
    with _host(args, read_only=True) as host:
        if args.json or args.fhir:
            bundle = host.records(patient=args.patient, **filters)
            print(json.dumps(bundle, indent=2, ensure_ascii=False))
            left_out = [e for e in bundle.get("entry", ()) if e["search"]["mode"] == "outcome"]
            for entry in left_out:
                print(f"emrcomm: {entry['resource']['issue'][0]['diagnostics']}: not shown", file=sys.stderr)
            return EXIT_NOT_DONE if left_out else EXIT_OK
        chart = (timeline.for_patient(host, args.patient, **filters) if args.patient
                 else timeline.for_clinic(host, **filters))
        for line in timeline.text_lines(chart):
            print(line)
    return EXIT_NOT_DONE if chart.unreadable else EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    """Read-only on purpose: verifying opens the store and the key, not the host and its plugins."""
    from emrcomm import audit
    from emrcomm.config import load_config
    from emrcomm.storage import open_storage

    config = load_config(args.config)
    key_file = audit.key_path(config)
    store = open_storage(config, read_only=True)
    try:
        if args.action == "public-key":
            print(audit.public_pem(audit.load_public_key(key_file)), end="")
            return EXIT_OK
        if args.action == "export":
            out = _open_output(args.output) if args.output else sys.stdout
            try:
                n = (audit.write_fhir if args.format == "fhir" else audit.write_jsonl)(store, out)
            finally:
                if args.output:
                    out.close()
            if args.output:
                print(f"{n} entries written to {args.output}", file=sys.stderr)
            return EXIT_OK
        if getattr(store.db, "in_memory", False):  # an absent file is opened as an empty database
            raise EmrcommError(f"store.path: {config.store_where}: no such database, so no audit log to verify; "
                               "give the config whose [store] path names the database")
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
        text = (f"audit log {config.store_where}: {report.entries} entries; every signature, the chain, the order "
                f"and the end check out.\n  head: {head}\n  keys: {', '.join(report.keys)}")
        if report.unsealed:
            text += (f"\n  {report.unsealed} entr{'y' if report.unsealed == 1 else 'ies'} appended since the last "
                     "seal (the host is running, or stopped without closing)")
    else:
        text = (f"audit log {config.store_where}: {len(report.problems)} problem(s) in {report.entries} entries:\n"
                + "\n".join(f"  - {p.message}" for p in report.problems))
    _emit(args, report.to_dict(), text)
    return EXIT_OK if report.ok else EXIT_NOT_DONE


def _anchor(value: str) -> tuple[int, str]:
    if not re.fullmatch(r"[0-9]+:[0-9a-fA-F]{64}", value):
        raise EmrcommError(f"--anchor {value!r}: expected SEQ:HASH, e.g. 1042:<64 hex digits> from `audit verify`")
    seq, _, digest = value.partition(":")
    return int(seq), digest.lower()


def cmd_serve(args: argparse.Namespace) -> int:
    from emrcomm.web import serve

    logging.getLogger("emrcomm").setLevel(min(logging.getLogger().level, logging.INFO))
    with _host(args, prepare=True) as host:  # the first request does not wait for the lexicons
        print(f"emrcomm: serving on http://{args.bind}:{args.port}/ (Ctrl-C stops)", file=sys.stderr)
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
        try:
            stats = worker.run(once=args.once)
        except (EmrcommError, StoreUnavailable):
            raise
        except Exception as exc:  # --once: a claim that failed otherwise; said in one line, not a traceback
            if not args.once:
                raise
            said = (str(exc).strip().splitlines() or [""])[0][:200]
            print(f"emrcomm: error: worker --once: the outbox could not be claimed from: {type(exc).__name__}"
                  + (f": {said}" if said else ""), file=sys.stderr)
            # SQLSTATE class 42 (a privilege the role lacks, a table not there): the config, not the moment
            return EXIT_BAD_INPUT if server_refuses(exc) else EXIT_NOT_DONE
        counts = host.storage.outbox.counts()
    result = {"worker": stats.as_dict(), "outbox": counts}
    _emit(args, result, " ".join(f"{k}={v}" for k, v in stats.as_dict().items() if k != "crash_window_ms")
          + " | outbox " + " ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    if args.once and stats.unrecorded:  # the grants, as for a claim the server refuses (above)
        print(f"emrcomm: error: worker --once: {stats.unrecorded} sent but not recorded: the database refuses this "
              "role a statement (SQLSTATE 42); their records stay in progress: grant the runtime role what it lacks "
              "(emrcomm doctor; docs/operations.md, Roles and least privilege)", file=sys.stderr)
        return EXIT_BAD_INPUT
    # --once left rows leased that a send did not settle (it raised, or hung): not done
    return EXIT_NOT_DONE if args.once and (stats.errors or stats.hung) else EXIT_OK


def _written_by_newer(host: Host, row: Item) -> bool:
    """``row``, given back as a newer release's, still is one as this release reads it: its
    payload, or else its record."""
    from emrcomm.storage.records import RecordUnreadable

    if row.payload.unreadable is not None:
        return row.payload.unreadable.newer
    try:
        host.storage.records.facts(row.key)
    except RecordUnreadable as exc:
        return exc.newer
    return False


def cmd_outbox(args: argparse.Namespace) -> int:
    requeue = getattr(args, "action", None) == "requeue"
    with _host(args, read_only=not requeue) as host:
        if requeue:
            if bool(args.id) == bool(args.all_dead):
                raise EmrcommError("outbox requeue: give one ID or --all-dead")
            done = host.requeue_dead(None if args.all_dead else args.id)
            count = len(done.records)
            if done.unreadable:  # kept dead: requeued, they would only die again unsent
                kept = [{"record_id": k, "reason": why} for k, why in done.unreadable.items()]
                _emit(args, {"requeued": count, "unreadable": kept},
                      "\n".join([f"requeued {count} dead letter(s); {len(kept)} kept dead, their record unreadable:",
                                  *(f"  dead     {k['record_id']}  {k['reason']}: not requeued" for k in kept)]))
                return EXIT_NOT_DONE
            if count or args.all_dead:
                _emit(args, {"requeued": count, "unreadable": []}, f"requeued {count} dead letter(s)")
                return EXIT_OK
            row = host.storage.outbox.get(args.id)
            if row is None:  # a mistyped id is bad input, as `inbox done` says of one
                raise EmrcommError(f"outbox requeue: no outbox row has the id {args.id} (give it in full, as "
                                   "`emrcomm outbox` lists it)")
            _emit(args, {"requeued": 0, "state": row.state},
                  f"requeued 0 dead letter(s): {args.id} is {row.state}, not dead")
            return EXIT_NOT_DONE
        counts = host.storage.outbox.counts()
        dead = [{"record_id": d.key, "request_id": d.request_id, "channel": d.channel, "state": d.state,
                 "attempts": d.attempts, "last_error": d.last_error} for d in host.storage.outbox.dead()]
        # A send found hung (past delivery.send_timeout), or a lease run out with the row still
        # sending (its deliverer died or hung); not a row claimed and waiting its turn.
        bound = host.sends.bound
        overdue = [{"record_id": r.key, "request_id": r.request_id, "channel": r.channel, "attempts": r.attempts,
                    "lease_until": r.lease_until.isoformat() if r.lease_until else None,
                    "hung_at": r.hung_at.isoformat() if r.hung_at else None}
                   for r in host.storage.outbox.overdue(host.clock())]
        newer = [{"record_id": r.key, "request_id": r.request_id, "channel": r.channel,
                  "not_before": r.not_before.isoformat() if r.not_before else None,
                  "expires": r.expires.isoformat() if r.expires else None, "last_error": r.last_error}
                 for r in host.storage.outbox.newer() if _written_by_newer(host, r)]
    lines = ["outbox: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "empty")]
    for row in dead:
        lines.append(f"  {row['state']:8} {row['record_id']} {row['channel']:7} attempts={row['attempts']}  "
                     f"{row['last_error'] or ''}")
    for row in overdue:
        why = (f"its send has not returned after delivery.send_timeout ({bound:g} s), found hung at {row['hung_at']}; "
               f"taken over when its lease runs out ({row['lease_until']})" if row["hung_at"] else
               f"its lease ran out ({row['lease_until']}) while sending: its worker died or hung; taken over by "
               "the next worker's claim")
        lines.append(f"  overdue  {row['record_id']} {row['channel']:7} attempts={row['attempts']}  {why}")
    for row in newer:
        end = (f"ends expired at {row['expires']} if none takes it before" if row["expires"] else
               "it has no expiry: it waits until one runs")
        lines.append(f"  waiting  {row['record_id']} {row['channel']:7} written by a newer release: waits for a "
                     f"worker of that release; {end}")
    _emit(args, {"counts": counts, "dead": dead, "overdue": overdue, "newer": newer}, "\n".join(lines))
    return EXIT_OK


def cmd_db(args: argparse.Namespace) -> int:
    """The schema (emrcomm.storage.schema, and each plugin's migrations) and copying a store."""
    from emrcomm.storage import admin

    if args.action == "copy":
        copied = admin.copy_store(args.source, args.config)
        _emit(args, copied.to_dict(), copied.text())
        return EXIT_OK if copied.ok else EXIT_NOT_DONE
    if args.action == "upgrade":
        with _host(args, read_only=True) as host:
            before = admin.status(host)
        from emrcomm.host import Host

        Host.from_config(args.config, upgrade=True).close()
        applied = [step for step in before.pending]
        _emit(args, {"where": before.where, "applied": [s.to_dict() for s in applied]},
              f"{before.where}: " + ("up to date; nothing to apply" if not applied else
                                     "applied " + ", ".join(f"{s.owner} {s.version} ({s.description})"
                                                            for s in applied)))
        return EXIT_OK
    with _host(args, read_only=True) as host:
        report = admin.status(host)
    _emit(args, report.to_dict(), report.text())
    return EXIT_OK if not report.pending else EXIT_NOT_DONE


def cmd_inbox(args: argparse.Namespace) -> int:
    from emrcomm.inbox import close_item
    from emrcomm.plugin.contract import KeepingTransport

    with _host(args, read_only=args.action != "done") as host:
        if args.action == "done":
            if not args.id:
                raise EmrcommError("inbox done: give the id of the item")
            if not close_item(host.storage, args.id, host.clock()):
                raise EmrcommError(f"no open inbox item {args.id}")
            _emit(args, {"done": args.id}, f"{args.id}: done")
            return EXIT_OK
        items = host.storage.inbox.items(state=None if args.all else "open")
        keepers = [c.transport for c in host.channels.values() if isinstance(c.transport, KeepingTransport)]
        if args.text:
            for item in items:
                if item["kind"] == "reply" and item["message_id"]:
                    item["text"] = _kept_text(keepers, item["message_id"])
                elif item["kind"] == "reply" and item["record_id"]:  # a texted reply: its words are in the chart
                    reply = host.record(item["record_id"])
                    if reply is not None and reply.role == "reply" and reply.text:
                        item["text"] = reply.text
        zone = host.config.clinic.time_zones[0]
        lines = [f"times in {zone}, the clinic's time zone"] if items else []
        for item in items:
            tags = f" [{', '.join(item['keywords'])}]" if item["keywords"] else ""
            created = dt.datetime.fromisoformat(item["created"]).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
            lines.append(f"{item['id']}  {created}  {item['priority']:<7}  {item['kind']:<14}  "
                         f"{item['patient']}{tags}  {item['task']['description']}")
            if item.get("text"):
                lines += [f"    | {line}" for line in item["text"].splitlines()]
        tasks = [dict(item["task"], note=[{"text": item["text"]}]) if item.get("text") else item["task"]
                 for item in items]
        _emit(args, {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": t} for t in tasks]},
              "\n".join(lines) or "the inbox is empty")
    return EXIT_OK


def _kept_text(keepers: Sequence[Any], message_id: str) -> str | None:
    """The words of a reply a channel keeps (the portal's, decrypted), or None if none keeps it."""
    for transport in keepers:
        try:
            text = transport.read(message_id).get("text")
        except KeyError:
            continue
        return text if isinstance(text, str) else None
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
