"""Merging emrcomm's Communication onto one the server holds that someone else edited since
emrcomm filed it: emrcomm's fields go over, what others added stays, a field both changed stops."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

# The server's own bookkeeping, never compared; of its meta, what a clinic sets is carried over.
_SERVER_KEYS = frozenset({"id", "meta"})
_KEPT_META = ("profile", "security", "tag")


@frozen
class Merge:
    """The resource to file, and the fields where the server and emrcomm disagree (empty: none)."""

    resource: dict[str, Any]
    clashes: tuple[str, ...]


def merge(theirs: Mapping[str, Any], ours: Mapping[str, Any], filed: Mapping[str, Any], *,
          overwrite: bool = False) -> Merge:
    """``theirs``: the server's copy now; ``ours``: the record as emrcomm projects it now;
    ``filed``: what emrcomm projected when it last filed (the fields it owns are the ones either
    projection has). A field emrcomm owns takes ``ours`` when nobody else changed it since
    ``filed``, or when it already equals ``ours``; otherwise it is a clash, and keeps ``theirs``
    unless ``overwrite``. Notes are merged one by one: emrcomm's notes are those of its
    projections, any other note on the server is someone else's and is kept (one of emrcomm's
    notes that someone removed is a clash). Fields emrcomm never writes (``extension``, ``text``,
    ``encounter``...) keep ``theirs``."""
    out = {k: v for k, v in theirs.items() if k not in _SERVER_KEYS}
    meta = theirs.get("meta")
    if isinstance(meta, Mapping) and any(meta.get(k) for k in _KEPT_META):
        out["meta"] = {k: meta[k] for k in _KEPT_META if meta.get(k)}
    if "id" in theirs:
        out["id"] = theirs["id"]
    clashes: list[str] = []
    for key in sorted((set(ours) | set(filed)) - _SERVER_KEYS):
        if key == "note":
            notes, removed = _notes(theirs.get(key), ours.get(key), filed.get(key))
            if removed and not overwrite:
                clashes.append(key)
                continue
            _put(out, key, notes or None)
            continue
        now, mine, before = theirs.get(key), ours.get(key), filed.get(key)
        if now != before and now != mine and not overwrite:
            clashes.append(key)
            continue
        _put(out, key, mine)
    return Merge(out, tuple(clashes))


def _notes(theirs: Any, ours: Any, filed: Any) -> tuple[list[Any], bool]:
    """emrcomm's notes then the others' (those on the server neither projection has), and
    whether someone removed one of emrcomm's notes that it still files."""
    theirs, ours, filed = (list(v) if isinstance(v, list) else [] for v in (theirs, ours, filed))
    others = [n for n in theirs if n not in filed and n not in ours]
    removed = any(n in filed and n not in theirs for n in ours)
    return ours + others, removed


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        out.pop(key, None)
    else:
        out[key] = value
