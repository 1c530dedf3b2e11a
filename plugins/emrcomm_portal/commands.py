"""The commands the portal adds to ``emrcomm``: ``portal recall``, ``portal expire``, ``keys
rotate`` and ``keys list`` (docs/portal.md)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from emrcomm import Command, ConfigError, print_result
from emrcomm_portal.keyring import RETIRE_AFTER

if TYPE_CHECKING:
    from emrcomm_portal import Plugin

RECALLED = {
    "recalled": "recalled: the link no longer opens it and the record says so",
    "read": "not recalled: the patient has already read it; send a correction instead",
    "recalled-before": "it was already recalled",
    "expired": "not recalled: it had already expired unread",
}


def _portal_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    recall = actions.add_parser("recall", help="withdraw an unread portal message")
    recall.add_argument("id", help="the portal message's record id, or the id of the request that sent it")
    recall.add_argument("--reason", default="", help="why (kept in the record)")
    actions.add_parser("expire", help="expire unread messages whose link has run out")


def _portal(args: argparse.Namespace, plugin: Plugin) -> int:
    service = plugin.service
    if args.action == "recall":
        result = service.recall(args.id, args.reason)
        print_result(args, {"result": result}, RECALLED.get(result, f"no portal message {args.id}"))
        return 0 if result == "recalled" else 2
    expired = service.expire_due()
    print_result(args, {"expired": expired}, f"{len(expired)} message(s) expired")
    return 0


def _keys_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    rotate = actions.add_parser("rotate", help="a new current key; every stored message re-encrypted under it")
    rotate.add_argument("--retire", action="store_true", help="then drop old keys no stored message uses")
    actions.add_parser("list", help="key ids, which is current, how many messages each holds")


def _keys(args: argparse.Namespace, plugin: Plugin) -> int:
    service = plugin.service
    if args.action == "rotate":
        done = service.rotate_keys(retire=args.retire)
        data = {"key": done.key_id, "link_key": done.link_key_id, "reencrypted": done.resealed,
                "retired": list(done.retired), "kept": list(done.kept)}
        minutes = int(RETIRE_AFTER.total_seconds() // 60)
        print_result(args, data, f"new current key {done.key_id} (link key {done.link_key_id}); "
                                 f"{done.resealed} message(s) re-encrypted"
                                 + (f"; retired {', '.join(done.retired)}" if done.retired else "")
                                 + (f"; kept {', '.join(done.kept)} (superseded less than {minutes} minutes ago: "
                                    "a process may still be storing a message under it; `keys rotate --retire` "
                                    "again later drops it)" if done.kept else ""))
        return 0
    ring, use = service.transport.ring, service.messages.key_use()
    if problem := service.missing_keys():
        raise ConfigError(problem)
    if ring.path is not None and not ring.path.exists():  # listed read-only: nothing was created
        print_result(args, [], f"no key ring yet ({ring.path}): it is created when the portal first keeps a message")
        return 0
    rows = [{"id": k, "kind": kind, "current": k == current, "messages": use.get(k, 0),
             "superseded": at.isoformat() if (at := ring.superseded.get(k)) is not None else None}
            for kind, keys, current in (("encryption", ring.keys, ring.current), ("link", ring.link_keys,
                                                                                  ring.link_current))
            for k in keys]
    print_result(args, rows, "\n".join(f"{r['id']}  {r['kind']:<10}  {'current' if r['current'] else 'old':<7}  "
                                       f"{r['messages']} message(s)"
                                       + (f", superseded {r['superseded']}" if r["superseded"] else "")
                                       for r in rows))
    return 0


def commands() -> list[Command]:
    return [
        Command("portal", "portal messages: recall one, expire those whose link ran out", _portal,
                _portal_arguments),
        Command("keys", "the portal's encryption key ring", _keys, _keys_arguments,
                read_only=lambda args: args.action == "list"),
    ]


__all__ = ["commands"]
