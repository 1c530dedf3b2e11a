"""``emrcomm staff add/password/disable/enable/list``: the accounts that may sign in to the staff
pages. Passwords are typed at a prompt (twice), or read from standard input with
``--password-stdin``; never given on the command line, where ``ps`` and the shell history see them."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from emrcomm.errors import EmrcommError


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    staff = sub.add_parser("staff", parents=[common], help="accounts for the staff pages under `emrcomm serve`")
    staff.set_defaults(handler=cmd_staff)
    actions = staff.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", parents=[common], help="create an account (asks for its password)")
    add.add_argument("name", help="the name to sign in with, e.g. jroy")
    add.add_argument("--full-name", default="", help="who it is, as the pages show it, e.g. 'Julie Roy'")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    password = actions.add_parser("password", parents=[common],
                                  help="set a new password (ends its sessions, forgets its browsers)")
    password.add_argument("name")
    password.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    disable = actions.add_parser("disable", parents=[common], help="stop an account signing in; end its sessions")
    disable.add_argument("name")
    enable = actions.add_parser("enable", parents=[common], help="let a disabled account sign in again")
    enable.add_argument("name")
    actions.add_parser("list", parents=[common], help="accounts, active or disabled")


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin or not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line.removesuffix("\n").removesuffix("\r")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("the same again: ") != first:
        raise EmrcommError("the two passwords differ; nothing was changed")
    return first


def cmd_staff(args: argparse.Namespace) -> int:
    from emrcomm.host import Host
    from emrcomm.staff.accounts import StaffAccounts

    # Listing only asks: no credential, and nothing created before the first send.
    with Host.from_config(args.config, read_only=args.action == "list") as host:
        accounts = StaffAccounts(host.storage.db, host.clock, host.audit.key)
        if args.action == "list":
            # No account is locked: wrong passwords slow the addresses that send them (accounts.sign_in).
            rows = [{"name": a.name, "full_name": a.full_name, "created": a.created.isoformat(),
                     "disabled": a.disabled.isoformat() if a.disabled else None} for a in accounts.all()]
            text = "\n".join(f"{r['name']:<16} {r['full_name']:<24} " + ("disabled" if r["disabled"] else "active")
                             for r in rows)
            _emit(args, rows, text or "no staff accounts: `emrcomm staff add NAME` creates one")
            return 0
        if args.action == "add":
            account = accounts.add(args.name, args.full_name, _password(args))
            host.audit.record("staff.added", staff=account.name)
            _emit(args, {"name": account.name}, f"account {account.name} added: it signs in at /staff/ under "
                                                "`emrcomm serve`")
            return 0
        if args.action == "password":
            accounts.set_password(args.name, _password(args))
            host.audit.record("staff.password", staff=args.name)
            _emit(args, {"name": args.name}, f"{args.name}: new password set; its sessions have ended")
            return 0
        getattr(accounts, args.action)(args.name)
        host.audit.record(f"staff.{args.action}d", staff=args.name)
        _emit(args, {"name": args.name, args.action + "d": True},
              f"{args.name}: {args.action}d" + ("; its sessions have ended" if args.action == "disable" else ""))
        return 0


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text)
