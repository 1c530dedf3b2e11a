"""The API's commands: ``emrcomm clients add/list/revoke`` (who may call the API),
``emrcomm notify`` (send Subscription notifications from a process of their own) and
``emrcomm consent grant/revoke`` (the front desk records a consent or an opt-out given in person,
the same way ``POST /fhir/Consent`` does)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from emrcomm.errors import EmrcommError, RequestError


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the API's commands to ``emrcomm``'s subcommands; each sets its own handler."""
    from emrcomm.api.scopes import ALL

    clients = sub.add_parser("clients", parents=[common], help="systems allowed to call the FHIR API (SMART clients)")
    clients.set_defaults(handler=cmd_clients)
    actions = clients.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", parents=[common], help="register a client: its public keys and scopes")
    add.add_argument("name", help="what the client is, for people and the audit log (e.g. 'OSCAR at Riverside')")
    add.add_argument("--jwks", required=True, metavar="FILE",
                     help="the client's public keys: a JWKS (or one JWK) JSON file; - for stdin")
    add.add_argument("--scope", action="append", required=True, metavar="SCOPE",
                     help=f"a scope it may be granted (repeat, or space-separated): {' '.join(ALL)}")
    actions.add_parser("list", parents=[common], help="clients, their scopes and keys, revoked or not")
    revoke = actions.add_parser("revoke", parents=[common], help="revoke a client and its tokens at once")
    revoke.add_argument("client_id")

    notify = sub.add_parser("notify", parents=[common],
                            help="send Subscription notifications (when `serve` does not: [api] notify = false)")
    notify.set_defaults(handler=cmd_notify)
    notify.add_argument("--once", action="store_true", help="send what is due now, then exit")

    consent = sub.add_parser("consent", parents=[common],
                             help="record a consent or an opt-out the patient gave the front desk")
    consent.set_defaults(handler=cmd_consent)
    consent_actions = consent.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, says in (("revoke", "the patient withdraws consent: nothing more goes on that channel"),
                         ("grant", "the patient gives (or gives back) consent for that channel")):
        one = consent_actions.add_parser(action, parents=[common], help=says)
        one.add_argument("--patient", required=True, metavar="Patient/ID")
        one.add_argument("--channel", required=True, help="sms, email, or another channel with addresses")
        one.add_argument("--purpose", choices=("clinical", "billing", "commercial"), default=None,
                         help="only this purpose (default: every purpose)")
        one.add_argument("--address", help="only this number or email address (default: every one on file)")
        one.add_argument("--by", required=True, metavar="NAME", help="who at the front desk records it")
        one.add_argument("--how", default="in person", help='how the patient said it (default "in person")')
        one.add_argument("--identifier", metavar="SYSTEM|VALUE",
                         help="the id of this word from the patient (the form's, in the EMR): recorded once for it; "
                              "run again, it records nothing and prints what was recorded")


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text)


def cmd_clients(args: argparse.Namespace) -> int:
    from emrcomm.api.clients import ClientRegistry
    from emrcomm.host import Host

    # Listing only asks: no credential, and nothing created before the first send.
    with Host.from_config(args.config, read_only=args.action == "list") as host:
        registry = ClientRegistry(host.storage.db, host.clock)
        if args.action == "add":
            text = sys.stdin.read() if args.jwks == "-" else _read(Path(args.jwks))
            if text.lstrip().startswith("-----BEGIN"):
                raise RequestError(f"--jwks {args.jwks}: a PEM key, where a JWKS (JSON, each key with a 'kid') "
                                   "is needed: docs/api.md (1. Set-up at the clinic) converts one")
            try:
                jwks = json.loads(text)
            except json.JSONDecodeError as exc:
                raise RequestError(f"--jwks {args.jwks}: not JSON ({exc.msg}, line {exc.lineno})") from None
            client = registry.add(args.name, jwks, " ".join(args.scope))
            host.audit.record("api.client.added", client=client.id, scopes=list(client.scopes))
            _emit(args, {"client_id": client.id, "name": client.name, "scopes": list(client.scopes),
                         "kids": [k["kid"] for k in client.jwks["keys"]]},
                  f"client {client.id} added ({client.name}); scopes: {' '.join(client.scopes)}\n"
                  "Its assertions use this id as iss and sub, and one of these kids in their header: "
                  f"{', '.join(k['kid'] for k in client.jwks['keys'])}")
            return 0
        if args.action == "list":
            rows: list[dict[str, Any]] = [{"client_id": c.id, "name": c.name, "scopes": list(c.scopes),
                     "kids": [k["kid"] for k in c.jwks["keys"]], "created": c.created.isoformat(),
                     "revoked": c.revoked.isoformat() if c.revoked else None} for c in registry.all()]
            _emit(args, rows, "\n".join(
                f"{r['client_id']}  {r['name']}  {'REVOKED ' + r['revoked'] if r['revoked'] else 'active'}  "
                f"scopes: {' '.join(r['scopes'])}  keys: {', '.join(r['kids'])}" for r in rows) or "no clients")
            return 0
        if not registry.revoke(args.client_id):
            raise EmrcommError(f"no client {args.client_id!r}: `emrcomm clients list` shows them")
        host.audit.record("api.client.revoked", client=args.client_id)
        _emit(args, {"client_id": args.client_id, "revoked": True},
              f"client {args.client_id} revoked; its tokens no longer work")
        return 0


def cmd_consent(args: argparse.Namespace) -> int:
    """The front desk's word in the consent ledger, through the code path of ``POST /fhir/Consent``:
    with ``--identifier``, once for it (run again, it prints what was recorded; another word under
    it is refused, exit 2). What the API answers 503 (not done for now: run it again) exits 4, as
    ``emrcomm send`` does; its other refusals are bad input, exit 2."""
    import datetime as dt

    from emrcomm.api.consent import audited, content_digest, front_desk, identifiers, read, record_once
    from emrcomm.api.outcome import ApiError
    from emrcomm.api.search import identifier_token
    from emrcomm.cli import EXIT_NOT_DONE
    from emrcomm.host import Host
    from emrcomm.limits import check_patient_option, check_text

    check_patient_option(args.patient, f"consent {args.action}")
    for name in ("by", "how"):
        value = getattr(args, name).strip()
        if not value:
            raise RequestError(f"consent {args.action}: --{name} is empty")
        check_text(value, f"--{name}")
    ident = None
    if args.identifier is not None:
        try:
            ident = identifier_token(args.identifier, "--identifier")
        except ApiError as exc:
            words = exc.diagnostics.replace("identifier=<system>|<value>", "SYSTEM|VALUE").replace("|<value>", "|VALUE")
            raise RequestError(f"consent {args.action}: --identifier: {words}") from None
    resource = front_desk(patient=args.patient, channel=args.channel, action=args.action, staff=args.by.strip(),
                          how=args.how.strip(), purpose=args.purpose, address=args.address, identifier=ident)
    with Host.from_config(args.config) as host:
        try:
            said = read(host, resource, client="cli")
            recorded = record_once(host, said, identifiers=identifiers(resource, None),
                                   digest=content_digest(said, host.audit.patient),
                                   then=audited(host, said, client="cli", staff=args.by.strip()),
                                   resource=resource)
        except ApiError as exc:
            words = exc.diagnostics.replace("the extension consent-address", "--address").replace(
                "consent-address", "--address")
            if exc.status == 503:  # transient: nothing was recorded; the same command goes once run again
                print(f"emrcomm: error: consent {args.action}: {words}", file=sys.stderr)
                return EXIT_NOT_DONE
            raise RequestError(f"consent {args.action}: {words}") from None
        made: list[tuple[int, Any]]  # (ledger number, the entry: an Entry, or the ledger's ConsentEvent)
        if recorded.repeat:  # its entries, read back from the ledger: what the first run printed
            made = [(e.seq, e) for e in host.storage.consent.history(
                        patient=said.patient, since=recorded.at, until=recorded.at + dt.timedelta(microseconds=1))
                    if e.seq >= recorded.id and (e.action, e.source, e.purpose) == (said.action, said.source,
                                                                                    said.purpose)]
        else:
            made = list(zip(recorded.seqs, recorded.entries, strict=True))
    done = "withdrawn" if args.action == "revoke" else "given"
    rows = [{"ledger": seq, "patient": e.patient, "channel": e.channel, "address": e.address, "action": e.action,
             "purpose": e.purpose or "every purpose", "source": e.source, "consent": recorded.id,
             "repeat": recorded.repeat} for seq, e in made]
    head = (f"already recorded as Consent/{recorded.id} ({recorded.at.isoformat(timespec='seconds')}) under "
            f"--identifier {args.identifier}: nothing recorded again\n" if recorded.repeat else "")
    _emit(args, rows, head + "\n".join(
        f"#{r['ledger']}  {r['patient']}  {r['channel']} {r['address']}: consent {done} ({r['purpose']}); "
        f"source: {r['source']}" for r in rows))
    return 0


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RequestError(f"--jwks {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise RequestError(f"--jwks {path}: not UTF-8 text") from None


def cmd_notify(args: argparse.Namespace) -> int:
    import signal

    from emrcomm.api.notify import Notifier
    from emrcomm.api.settings import ApiSettings
    from emrcomm.host import Host

    with Host.from_config(args.config) as host:
        notifier = Notifier(host, ApiSettings.from_config(host.config.raw))
        if args.once:
            sent = notifier.run_once()
            _emit(args, {"sent": sent}, f"{sent} notifications taken")
            return 0
        signal.signal(signal.SIGTERM, lambda *_: notifier.stop())
        notifier.start()
        try:
            while notifier.running():
                notifier.wait(1.0)
        except KeyboardInterrupt:
            notifier.stop()
    return 0
