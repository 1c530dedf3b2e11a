"""The audit log: every decision the host makes, appended to a hash chain and signed (Ed25519),
so that ``emrcomm audit verify`` finds an edited, deleted, inserted or reordered entry, or a cut end.

Each entry is canonical JSON (sorted keys, no spaces) holding ``seq``, ``at``, ``kind``, ``prev``
(the previous entry's hash), ``key`` (the signing key's id) and a few whitelisted fields: ids,
codes and channel names, never message text, names or addresses (:data:`FIELDS` refuses anything
else). ``hash`` is the SHA-256 of that text; ``sig`` signs the hash on the last entry of each
transaction (the entries before it are vouched for by the chain up to it). A separately signed
*head* names the last entry, so removing entries from the end is found too.

The host groups entries per request in a :class:`Trail` and writes them inside the transaction
that files the records, so the log costs no extra fsync on the send path (docs/audit.md).
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import hashlib
import json
import logging
import math
import os
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson
from attrs import field, frozen
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from emrcomm import fhir
from emrcomm.audit_index import FORGED, INTACT, KEYLESS, SEQ_LIMIT, SIGNED, UNSIGNED, EntryIndex, link
from emrcomm.errors import ConfigError

if TYPE_CHECKING:
    from emrcomm.config import Config
    from emrcomm.storage import Storage as Store

log = logging.getLogger("emrcomm.audit")

GENESIS = "0" * 64
GENESIS_LINK = bytes.fromhex(GENESIS)  # the first entry's prev, as the index keeps links
HEAD_DOMAIN = b"emrcomm-audit-head\x00"
AUDIT_SYSTEM = "http://emrcomm.org/fhir/CodeSystem/audit-event"
AUDIT_LOG_SYSTEM = "http://emrcomm.org/fhir/NamingSystem/audit-log"
DEFAULT_KEY_NAME = "audit-signing.key"

# What an entry may say besides seq/at/kind/prev/key. Anything else is refused, so that a
# careless call can never put a message's words or a phone number into the log.
FIELDS: Mapping[str, type | tuple[type, ...]] = {
    "request": str,        # request id
    "patient": str,        # Patient/<id>
    "category": str,
    "record": str,         # record (Communication) id
    "records": list,       # record ids
    "channel": str,
    "channels": list,
    "codes": list,         # every rule code found for the request (facts, warnings, blocks)
    "reasons": list,       # the codes that blocked it
    "plugin": str,
    "error": str,          # an exception's type name, never its message
    "until": str,          # ISO time a held message waits for
    "provider_id": str,
    "status": str,
    "problem": str,        # audit.anomaly: what the log found about itself
    "last_seq": int,
    "head_seq": int,
    "client": str,         # the FHIR API client (its id from `emrcomm clients add`)
    "operation": str,      # the FHIR API interaction: create CommunicationRequest, search Communication, ...
    "http_status": int,    # what the FHIR API or a staff sign-in answered
    "subscription": str,   # a Subscription id
    "scopes": list,        # the SMART scopes a token was granted
    "staff": str,          # a staff account's name (emrcomm staff add); who recorded a consent (emrcomm consent --by)
}

# The decisions logged, and what each means (docs/audit.md prints this table).
KINDS: Mapping[str, str] = {
    "request.received": "a request reached the host (logs before schema 4; the decision's entry carries its category now)",
    "request.duplicate": "a request id seen before: nothing sent again",
    "request.refused": "a request could not be processed (render error): nothing sent",
    "channel.chosen": "the candidate that passed every check, its records, and every rule code found",
    "held": "held until a time (quiet hours, not_before), with its records and rule codes",
    "queued": "left in the outbox for the worker, with its records and rule codes",
    "blocked": "no candidate passed: filed not-done; reasons are the blocking codes",
    "sent": "handed to a channel's transport",
    "delivery.failed": "a transport failed; the outbox keeps the message for retry",
    "delivery.hung": "a transport's send had not returned after [delivery] send_timeout: its row stays leased, to be taken over (it may have left)",
    "delivery.dead": "the outbox gave up on a message (permanent refusal or attempts used up): a dead letter",
    "expired": "the request expired before it could be delivered: not sent, filed not-done",
    "cancelled": "not sent after all: the patient opted out after it was queued, or the leg before it was not sent",
    "requeued": "staff put dead letters back in the outbox",
    "record.not_filed": "a filer failed: the message did not go (or its outcome is not filed)",
    "delivered": "the provider reported delivery",
    "failed": "the provider reported a failure",
    "read": "the patient read the message",
    "reply": "the patient replied; the reply is filed",
    "recalled": "the clinic recalled a message",
    "optout": "the patient opted out (STOP, unsubscribe)",
    "optin": "the patient opted back in (START)",
    "update": "another kind of delivery update (its kind in status)",
    "audit.anomaly": "the log found itself inconsistent when it was opened",
    "api.call": "a FHIR API call by a client (its id), the interaction and the HTTP status answered",
    "api.token": "an access token issued to a FHIR API client, with the scopes granted",
    "api.refused": "a FHIR API client's token request refused (bad or replayed assertion, scope not allowed)",
    "api.client.added": "a FHIR API client registered (emrcomm clients add), with the scopes it may have",
    "api.client.revoked": "a FHIR API client revoked, with its tokens",
    "consent.recorded": "a consent or an opt-out recorded through the FHIR API or emrcomm consent (the ledger has its source)",
    "staff.added": "a staff account created (emrcomm staff add)",
    "staff.password": "a staff account's password set anew; its sessions ended",
    "staff.disabled": "a staff account disabled; its sessions ended",
    "staff.enabled": "a disabled staff account enabled again",
    "staff.signed_in": "a staff member signed in to the staff pages",
    "staff.refused": "a sign-in to the staff pages refused (wrong name or password, disabled account, sign-ins slowed)",
    "staff.signed_out": "a staff member signed out",
    "staff.viewed": "a staff member read a patient's timeline on the staff pages",
}


# Entries about one record's delivery name the record, not its request and patient: the
# decision's entry before them in the chain names those with the record (as delivery reports do).
ABOUT_ONE_RECORD = frozenset({"sent"})


# What a log with no entries and no head says beside requests it should have recorded.
REMOVED = ("the log has no entries and no signed head, but the store holds requests whose decisions it recorded: "
           "the whole log was removed")


class AuditError(Exception):
    """An entry that breaks the log's rules (an unknown field, a value of the wrong type)."""


def canonical(entry: Mapping[str, Any]) -> bytes:
    """The exact bytes that are hashed: sorted keys, no spaces, ASCII only: what
    ``json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True)`` writes.
    orjson writes the same bytes for ASCII content, four times faster; anything else (an id
    with an accent) goes through json, which escapes it."""
    try:
        text = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:  # a lone surrogate, say: json escapes what orjson refuses
        text = b"\x80"
    if text.isascii() and b"\x7f" not in text:  # json writes DEL as \u007f, orjson as itself
        return text
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def head_message(seq: int, hash_hex: str) -> bytes:
    return HEAD_DOMAIN + f"{seq}:{hash_hex}".encode("ascii")


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key (PEM) an auditor keeps, or the private key file itself."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read public key: {exc.strerror}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except ValueError:
            raise ConfigError(f"{path}: not a PEM Ed25519 public or private key") from None
        if not isinstance(private, Ed25519PrivateKey):
            raise ConfigError(f"{path}: not an Ed25519 key") from None
        return private.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path}: not an Ed25519 public key")
    return key


@frozen
class SigningKey:
    """The log's Ed25519 key, kept in a file only its owner can read (never in the config)."""

    private: Ed25519PrivateKey = field(repr=False)
    path: Path | None

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def kid(self) -> str:
        return key_id(self.public)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)

    def derived(self, purpose: bytes) -> bytes:
        """A 32-byte secret for another use, named by ``purpose`` (HKDF-SHA256 of the private
        key): known to whoever can read the key file, and to nobody who has only the database."""
        return HKDF(hashes.SHA256(), 32, salt=None, info=purpose).derive(self.private.private_bytes_raw())

    @classmethod
    def ephemeral(cls) -> SigningKey:
        """A key kept in memory only, for a host that writes nothing (it signs nothing either)."""
        return cls(Ed25519PrivateKey.generate(), None)

    @classmethod
    def load(cls, path: Path, *, create: bool) -> SigningKey:
        """Read the key file; create it (mode 0600) when absent and ``create`` is true."""
        where = f"audit.key_file: {path}"
        if not path.exists():
            if not create:
                raise ConfigError(f"{where}: no such key file")
            path.parent.mkdir(parents=True, exist_ok=True)
            private = Ed25519PrivateKey.generate()
            pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
            log.info("audit signing key %s created in %s", key_id(private.public_key()), path)
            return cls(private, path)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigError(f"{where}: the key file is readable by other users (mode {mode:04o}); "
                              f"run: chmod 600 {path}")
        try:
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError):
            raise ConfigError(f"{where}: not an unencrypted PEM private key") from None
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read: {exc.strerror}") from None
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ConfigError(f"{where}: not an Ed25519 key")
        return cls(loaded, path)


def key_path(config: Config) -> Path:
    """``[audit] key_file`` (relative to the config's folder), else beside the store."""
    raw = (config.raw.get("audit") or {}).get("key_file")
    if raw:
        p = Path(raw).expanduser()
        return p if p.is_absolute() else config.base_dir / p
    return config.store_path.parent / DEFAULT_KEY_NAME


def _checked(kind: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    if kind not in KINDS:
        raise AuditError(f"unknown audit kind {kind!r}; known kinds: {', '.join(sorted(KINDS))}")
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if value is None or value == [] or value == ():
            continue
        expected = FIELDS.get(name)
        if expected is None:
            raise AuditError(f"audit field {name!r} is not allowed (the log keeps ids and codes only); "
                             f"allowed: {', '.join(sorted(FIELDS))}")
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, expected) or (isinstance(value, list) and not all(isinstance(v, str) for v in value)):
            raise AuditError(f"audit field {name!r}: {type(value).__name__} is not allowed")
        out[name] = value
    return out


class AuditLog:
    """Appends signed entries to the store. One per Host; safe to share between threads
    (the store's lock serialises appends).

    The last entry of every transaction is signed as the transaction commits (one signature
    for a request's entries, or for a whole group commit); the entries before it are vouched
    for by the chain, whose next link it signs. The *head* (the last entry's number and hash,
    signed apart) is re-signed at most every ``seal_seconds`` and when the host closes: a
    signature costs ~45-80 µs here, and the head only matters for finding a cut-off end.
    Entries appended since the last seal could be cut off unseen; everything else cannot.
    """

    def __init__(self, store: Store, key: SigningKey, clock: Callable[[], dt.datetime],
                 *, seal_seconds: float = 1.0) -> None:
        self.store = store
        self.key = key
        self._kid = key.kid  # derived from the public key: ~20 µs, once rather than per entry
        self._refs = key.derived(b"emrcomm audit patient references")
        self.clock = clock
        self.seal_seconds = seal_seconds
        self._sealed_at = float("-inf")
        # (seq, hash) of the entries this log appended in the open transaction: unsigned until
        # the commit signs the last one standing (a savepoint rolled back inside a group commit
        # takes its entries away, and an earlier one is the end again). Any other unsigned end
        # of the log was not written by a key holder, and nothing is chained or sealed onto it
        # unflagged (see _tail_problem).
        self._own: set[tuple[int, str]] = set()
        # The furthest end of the log this log has read as committed: the end never moves back,
        # so an end found before it was cut back (to a head kept from earlier, say), which
        # nothing else may show when the entries cut decided no request (see _cut_back).
        self._reached = 0
        # PostgreSQL: entries are chained as their transaction commits (see _append); what this
        # thread's open transaction staged. (One connection per thread in a transaction.)
        self._deferred = store.db.dialect == "postgresql"
        self._tx = threading.local()
        store.before_commit(self._sign_tail)

    @classmethod
    def open(cls, config: Config, store: Store, clock: Callable[[], dt.datetime]) -> AuditLog:
        """The log of ``store``, signed with the configured key (created on first use).

        A log that already has entries never gets a fresh key silently: a missing key file
        stops start-up, naming the file, so that a lost key is noticed, not papered over.
        """
        path = key_path(config)
        if not path.exists() and (store.audit.head() is not None or store.audit.last() is not None):
            signer = store.meta.get("audit_key")
            raise ConfigError(
                f"audit.key_file: {path} is missing, but the audit log in {config.store_where} already has "
                f"entries signed with key {signer}: restore the key file (or move the database aside to "
                "start a new log); to rotate to a new key, create its file first: "
                f"(umask 077; openssl genpkey -algorithm ed25519 -out {path})"
            )
        key = SigningKey.load(path, create=True)
        if store.meta.get(f"audit_public_key:{key.kid}") is None:
            with store.transaction():
                store.meta.put(f"audit_public_key:{key.kid}", public_pem(key.public))
                store.meta.put("audit_key", key.kid)
        seal_seconds = float((config.raw.get("audit") or {}).get("seal_seconds", 1.0))
        audit = cls(store, key, clock, seal_seconds=seal_seconds)
        if store.audit.head() is None and store.audit.last() is None and store.audit.witnessed():
            # Not a new log: its every entry and its head were removed. A new chain from entry 1
            # would look whole, so it starts by saying so.
            log.error("audit log: %s; run `emrcomm audit verify`", REMOVED)
            audit.append([("audit.anomaly", {"problem": REMOVED, "last_seq": 0})], seal=True)
        audit.seal()  # a tail left unsealed by a crash, or an end that disagrees with the head
        return audit

    def patient(self, ref: str) -> str:
        """``ref`` as an entry names a patient: ``Patient/<id>``, or a digest keyed with a secret of
        the signing key (``Patient?identifier=system|value`` carries a health number), the same
        for every entry until the key is rotated."""
        return fhir.safe_ref(ref, self._refs)

    def trail(self, **defaults: Any) -> Trail:
        """A Trail whose entries all carry ``defaults`` (the request id and patient, say)."""
        return Trail(self, **defaults)

    def record(self, kind: str, **fields: Any) -> None:
        """Append one entry now (in the caller's transaction, if any)."""
        self.append([(kind, fields)])

    def seal(self) -> None:
        """Sign the head now, if the log has moved since it was last signed."""
        self.append([], seal=True)

    def append(self, items: Iterable[tuple[str, Mapping[str, Any]]], *, seal: bool = False) -> None:
        """Append entries (and sign the head when due), in one transaction (the caller's, when open).

        An end that disagrees with the signed head (entries cut off, the head deleted) is written
        into the log itself as an ``audit.anomaly`` entry, and numbering resumes after the head,
        so that later appends never paper over the gap.
        """
        self._append([(kind, _checked(kind, fields)) for kind, fields in items], seal=seal)

    def _append(self, checked: list[tuple[str, dict[str, Any]]], *, seal: bool = False) -> None:
        """``append`` for entries already checked (a Trail checks each as it is added)."""
        at = self.clock().astimezone(dt.UTC).isoformat(timespec="microseconds") if checked else ""
        if self._deferred:
            # Many processes append to one chain: a transaction's entries wait in the staging
            # table (undone with it, or with a savepoint) and are chained as it commits, under
            # the database's audit lock, so the chain has one order: the order of the commits.
            with self.store.transaction():
                if checked:
                    self.store.audit.stage([(kind, json.dumps(fields), at) for kind, fields in checked])
                self._tx.staged = True
                self._tx.seal = getattr(self._tx, "seal", False) or seal
            return
        now = time.monotonic()
        due = seal or now - self._sealed_at >= self.seal_seconds
        with self.store.transaction():
            rows, sealed = self._chain([(kind, fields, at) for kind, fields in checked], due)
            self._own.update(rows)
        if sealed:
            self._sealed_at = now

    def _chain(self, checked: list[tuple[str, dict[str, Any], str]], due: bool, *, sign_last: bool = False,
               end: tuple[Mapping[str, Any] | None, Mapping[str, Any] | None] | None = None,
               ) -> tuple[list[tuple[int, str]], bool]:
        """Number, link and store ``checked`` (kind, fields, time) after the log's end (``end``:
        its last entry and head, when already read), and sign the head when ``due``; inside the
        caller's transaction. ``sign_last``: the last row is the transaction's last entry (it is
        committing) and is stored signed. Returns the rows written and whether the head was signed."""
        last, head = end if end is not None else (self.store.audit.last(), self.store.audit.head())
        seq, prev = (last["seq"], last["hash"]) if last else (0, GENESIS)
        problem = self._tail_problem(last) or self._cut_back(seq, committed=end is not None or not self._own) \
            or self._problem(last, head, thorough=due)
        if problem is not None:
            log.error("audit log: %s; run `emrcomm audit verify`", problem)
            at = checked[0][2] if checked else self.clock().astimezone(dt.UTC).isoformat(timespec="microseconds")
            checked.insert(0, ("audit.anomaly", {"problem": problem, "last_seq": seq,
                                                 **({"head_seq": head["seq"]} if head else {})}, at))
            seq = max(seq, head["seq"] if head else 0, self._reached)
        if not checked and (last is None or (head is not None and head["seq"] == last["seq"])):
            return [], False  # nothing new to sign
        rows: list[tuple[int, str]] = []  # (seq, hash): what this transaction appended
        texts: list[tuple[int, bytes]] = []
        kid = self._kid
        for kind, fields, at in checked:
            seq += 1
            entry = {**fields, "seq": seq, "at": at, "kind": kind, "prev": prev, "key": kid}
            text = canonical(entry)
            prev = hashlib.sha256(text).hexdigest()
            rows.append((seq, prev))
            texts.append((seq, text))  # signed at commit
        due = due or problem is not None
        new_head = (seq, prev, self.key.sign(head_message(seq, prev))) if due else None
        last_sig = self.key.sign(bytes.fromhex(prev)) if sign_last and texts else b""
        self.store.audit.append(texts, new_head, last_sig=last_sig)
        return rows, new_head is not None

    def _sign_tail(self) -> None:
        """Sign the log's last entry, if this log appended since the last commit (the store calls
        this just before each commit; a failure here rolls the transaction back)."""
        if self._deferred:
            self._chain_staged()
            return
        own, self._own = self._own, set()
        if not own:
            return
        last = self.store.audit.last()
        if last is not None and not last["sig"] and (last["seq"], last["hash"]) in own:
            self.store.audit.sign(last["pos"], self.key.sign(bytes.fromhex(last["hash"])))

    def _chain_staged(self) -> None:
        """PostgreSQL, as a transaction commits: take the audit lock (held until the commit is
        done), chain what the transaction staged after the log's end, its last entry stored
        signed. Every other writer waits for the lock meanwhile, so the step is kept short: the
        staged rows are taken before it; then one round trip takes the lock and reads the end,
        one writes the rows (the last signed, none read back), and the commit releases it."""
        if not getattr(self._tx, "staged", False):
            return
        seal, self._tx.staged, self._tx.seal = self._tx.seal, False, False
        staged = self.store.audit.take_staged()
        if not staged and not seal:
            return
        entries = [(kind, json.loads(fields), at) for kind, fields, at in staged]
        end = self.store.audit.lock_and_end()
        now = time.monotonic()
        due = seal or now - self._sealed_at >= self.seal_seconds
        _, sealed = self._chain(entries, due, sign_last=True, end=end)
        if sealed:
            self._sealed_at = now

    def _tail_problem(self, last: Mapping[str, Any] | None) -> str | None:
        """An unsigned entry at the end of the log that this log did not just write: every
        transaction ends signed, so it was added without the key. Chaining a new signed entry
        (or sealing the head) onto it would vouch for it; it is flagged instead."""
        if last is None or last["sig"] or (last["seq"], last["hash"]) in self._own:
            return None
        return (f"entry {last['seq']}, the end of the log, is not signed: it and the unsigned entries "
                "before it were added without the key")

    def _cut_back(self, end: int, *, committed: bool) -> str | None:
        """Whether the log's end ``end`` is before an end this log read earlier. ``committed``:
        nothing this log wrote in the open transaction is in ``end`` (an end that includes such
        entries is not remembered: they go when the transaction is undone)."""
        if end < self._reached:
            return (f"the log ended at entry {end}, but this host had seen it reach entry {self._reached}: "
                    "entries were cut off it (or lost by a database server that crashed or failed over "
                    "with commits unsynced)")
        if committed:
            self._reached = end
        return None

    def _problem(self, last: Mapping[str, Any] | None, head: Mapping[str, Any] | None, *,
                 thorough: bool) -> str | None:
        """Why the log's end and its signed head disagree, or None. ``thorough`` (when sealing)
        also checks that the entry the head names is still the one it signed."""
        if head is None:
            return "the signed head was missing" if last is not None else None
        if last is None or last["seq"] < head["seq"]:
            upto = last["seq"] if last else 0
            return f"the log ended at entry {upto} but its signed head named entry {head['seq']}"
        signed = last["hash"] if last["seq"] == head["seq"] else self.store.audit.hash_of(head["seq"]) if thorough else None
        if signed is not None and signed != head["hash"]:
            return f"entry {head['seq']}, which the signed head names, is not the one it signed"
        return None


class Trail:
    """The entries of one request, collected as it goes and written inside the transaction that
    files its records (one fsync for both). ``flush`` is cheap when empty.

    ``note(**fields)`` adds fields to the next entry: the rule codes found travel with the
    decision they led to, in one signed entry rather than two.
    """

    def __init__(self, audit: AuditLog | None, **defaults: Any) -> None:
        self.audit = audit
        self.defaults = defaults
        self.notes: dict[str, Any] = {}
        self.pending: list[tuple[str, dict[str, Any]]] = []

    def note(self, **fields: Any) -> None:
        self.notes.update(fields)

    def add(self, kind: str, **fields: Any) -> None:
        defaults = {} if kind in ABOUT_ONE_RECORD else self.defaults
        self.pending.append((kind, _checked(kind, {**defaults, **self.notes, **fields})))
        self.notes = {}

    def flush(self) -> None:
        if not self.pending or self.audit is None:
            return
        items, self.pending = self.pending, []
        try:
            self.audit._append(list(items))  # _append may add an anomaly to the list it gets
        except BaseException:
            self.pending = items + self.pending
            raise


# ------------------------------------------------------------------------------------ verify


@frozen
class Problem:
    """One thing verification found wrong: where (storage position, entry number) and what."""

    what: str  # edited, forged, deleted, inserted, reordered, truncated, head, anchor, key
    message: str
    seq: int | None = None
    position: int | None = None


@frozen
class Report:
    entries: int
    head_seq: int | None
    head_hash: str | None
    keys: tuple[str, ...]
    problems: tuple[Problem, ...]
    unsealed: int = 0  # signed entries after the signed head: appended since the last seal

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "entries": self.entries, "head": {"seq": self.head_seq, "hash": self.head_hash},
            "unsealed": self.unsealed,
            "keys": list(self.keys),
            "problems": [{"what": p.what, "seq": p.seq, "position": p.position, "message": p.message}
                         for p in self.problems],
        }


def _verify_signature(keys: Mapping[str, Ed25519PublicKey], kid: Any, sig: bytes, message: bytes) -> bool | None:
    """True/False, or None when ``kid`` is not a trusted key."""
    public = keys.get(kid) if isinstance(kid, str) else None
    if public is None:
        return None
    try:
        public.verify(sig, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def verify(store: Store, keys: Iterable[Ed25519PublicKey], *, anchor: tuple[int, str] | None = None) -> Report:
    """Check every entry, the chain, the order and the head. Each problem names the entry.

    ``keys`` are the trusted public keys (the key file's, and any an auditor supplies).
    ``anchor`` is an (entry number, hash) noted earlier, e.g. from a previous verify: the entry
    must still be there with that hash, which finds a log rewritten or cut before it.

    The log is read once, in storage order; what the later checks need of each entry goes to an
    :class:`~emrcomm.audit_index.EntryIndex` on disk, so that memory does not grow with the log's
    length (docs/audit.md): only the problems found are kept in memory. Everything is read in
    one snapshot of the store, so a host may go on appending meanwhile.
    """
    trusted = {key_id(k): k for k in keys}
    # One snapshot: a host appending meanwhile would otherwise move the head, or add a request,
    # past the entries already read, and look like an end cut off.
    with EntryIndex() as index, store.snapshot():
        problems, count, last_seq = _check_entries(store, trusted, index)
        index.finish()
        problems += _check_order(index)
        head = store.audit.head()
        head_ok = head is not None and any(
            _verify_signature(trusted, kid, head["sig"], head_message(head["seq"], head["hash"])) for kid in trusted)
        problems += _unvouched(index, (head["seq"], head["hash"]) if head is not None and head_ok else None)
        if head is None:
            if count:
                problems.append(Problem("head", "the signed head is missing: entries may have been removed from the end"))
            elif store.audit.witnessed():
                problems.append(Problem("truncated", REMOVED))
        else:
            named = index.hash_of(head["seq"])
            if not head_ok:
                problems.append(Problem("head", f"the signed head (entry {head['seq']}) has a signature that does "
                                                "not match (edited)", head["seq"]))
            elif head["seq"] > last_seq:
                span = _span([(last_seq + 1, head["seq"] + 1)])
                problems.append(Problem("truncated", f"the log ends at entry {last_seq} but its signed head says "
                                        f"{head['seq']}: entr{'y' if head['seq'] == last_seq + 1 else 'ies'} {span} "
                                        "were cut off the end (truncated)", last_seq + 1))
            elif named is not None and named.hex() != head["hash"]:
                problems.append(Problem("head", f"the signed head does not match entry {head['seq']}", head["seq"]))
        if count and not any(p.what in ("deleted", "truncated", "head") for p in problems):
            # An end cut back to a head signed earlier (kept from a copy of the database) checks out
            # by itself; the requests whose decisions were cut are still in the store. (Entries found
            # missing otherwise are named already.)
            unlogged, first = index.unnamed(store.audit.request_ids())
            if unlogged:
                problems.append(Problem("truncated", f"{unlogged} request(s) in the store have no entry in the log "
                                        f"(first: {first!r}): their entries were removed, or the log was cut "
                                        "back to a head signed earlier"))
        if anchor is not None:
            seq, hash_hex = anchor
            found = index.hash_of(seq)
            if found is None or found.hex() != hash_hex:
                problems.append(Problem("anchor", f"entry {seq} is not the one noted earlier ({hash_hex[:12]}…): the "
                                                  "log was rewritten or cut before it", seq))
    return Report(
        entries=count,
        head_seq=head["seq"] if head else None,
        head_hash=head["hash"] if head else None,
        keys=tuple(sorted(trusted)),
        problems=tuple(problems),
        unsealed=max(0, last_seq - head["seq"]) if head else 0,
    )


def _check_entries(store: Store, trusted: Mapping[str, Ed25519PublicKey],
                   index: EntryIndex) -> tuple[list[Problem], int, int]:
    """Each entry by itself, in storage order: is it an entry, does its signature match, by a
    trusted key, is it an anomaly the log wrote about itself. What the order's checks need, and
    the requests the entries name, go to ``index``. Returns the problems, the number of entries
    and the highest entry number (0 when none has one)."""
    problems: list[Problem] = []
    count = 0
    highest: int | None = None
    for position, row in enumerate(store.audit.entries(), 1):
        count = position
        text = row["entry"]
        try:
            entry = json.loads(text)
            seq = entry["seq"] if isinstance(entry.get("seq"), int) and -SEQ_LIMIT < entry["seq"] < SEQ_LIMIT else None
        except (json.JSONDecodeError, AttributeError):
            entry, seq = {}, None
        if isinstance(entry.get("request"), str):
            index.name(entry["request"])
        digest = row["hash"]  # of the stored text: what the next entry's prev and the signature vouch for
        if seq is None:
            problems.append(Problem("edited", f"the entry at position {position} is not an entry (edited)",
                                    seq, position))
            continue
        highest = seq if highest is None else max(highest, seq)
        name = f"entry {seq}"
        if entry.get("kind") == "audit.anomaly":  # signed, or vouched for as the first of its transaction
            problems.append(Problem("anomaly", f"{name}: the log found, when it was next written, that "
                                               f"{entry.get('problem')}", seq, position))
        if not row["sig"]:  # vouched for by the next entry's link, checked by _unvouched
            index.add(position, int(seq), UNSIGNED, link(entry.get("prev")), bytes.fromhex(digest))
            continue
        signed = _verify_signature(trusted, entry.get("key"), row["sig"], bytes.fromhex(digest))
        if signed is None:
            state = KEYLESS
            problems.append(Problem("key", f"{name}: signed with key {entry.get('key')!r}, which is not a trusted "
                                           "key (give the right one with --public-key)", seq, position))
        elif not signed:
            state = FORGED
            problems.append(Problem("forged", f"{name}: the signature does not match its content "
                                              "(edited, or rewritten or inserted without the key)", seq, position))
        else:
            state = SIGNED
        index.add(position, int(seq), state, link(entry.get("prev")), bytes.fromhex(digest))
    return problems, count, highest if highest is not None else 0


def _check_order(index: EntryIndex) -> list[Problem]:
    """The entries in storage order against their numbers: each number once, none missing, none
    out of place, and each intact entry linked to the intact one numbered before it."""
    problems: list[Problem] = []
    expected = 1  # one more than the highest number so far
    reported: list[tuple[int, int]] = []  # runs of numbers already named as coming later, ascending
    for pos, seq, state, prev, first, wanted in index.in_order():
        if state not in INTACT:
            expected = max(expected, seq + 1)
            continue
        if first != pos:
            problems.append(Problem("inserted", f"entry {seq} appears twice (positions {first} and "
                                                f"{pos}): a copy was inserted", seq, pos))
            continue
        if seq > expected:
            later = list(_runs(index.numbers(expected, seq)))  # numbers of the gap found further on
            missing = _complement(expected, seq, later)
            if missing:
                one = _count(missing) == 1
                problems.append(Problem("deleted", f"entr{'y' if one else 'ies'} {_span(missing)} "
                                        f"{'is' if one else 'are'} missing: deleted "
                                        f"(entry {seq} follows entry {expected - 1 if expected > 1 else 'none'})",
                                        missing[0][0], pos))
            if later:
                problems.append(Problem("reordered", f"entry {seq} (position {pos}) comes before entr"
                                        f"{'y' if _count(later) == 1 else 'ies'} {_span(later)}: the log was reordered",
                                        seq, pos))
                reported.append((expected, seq))  # every number of it some entry has is in `later`
        elif seq < expected and not _within(reported, seq):
            problems.append(Problem("reordered", f"entry {seq} (position {pos}) comes after entry "
                                    f"{expected - 1}: the log was reordered", seq, pos))
        wanted_prev = GENESIS_LINK if seq == 1 else wanted
        if wanted_prev is not None and prev != wanted_prev:
            problems.append(Problem("inserted", f"entry {seq} does not follow entry {seq - 1} in the chain "
                                    "(an entry was replaced or inserted)", seq, pos))
        expected = max(expected, seq + 1)
    return problems


def _unvouched(index: EntryIndex, head: tuple[int, str] | None) -> list[Problem]:
    """Unsigned entries that nothing signed vouches for. An entry without a signature of its own
    (every entry of a transaction but its last) is vouched for when the entry after it in the
    chain links to its hash and is itself signed or vouched for, or when the signed head names it."""
    found: list[tuple[int, int]] = []  # (position, number)
    after: tuple[int, bool, bytes | None] | None = None  # the entry numbered next: number, vouched for, link
    for seq, pos, state, prev, digest in index.chain():
        vouched = (state != UNSIGNED or (head is not None and head == (seq, digest.hex()))
                   or (after is not None and after[0] == seq + 1 and after[1] and after[2] == digest))
        if not vouched:
            found.append((pos, seq))
        after = (seq, vouched, prev)
    return [Problem("forged", f"entry {seq}: not signed, and no signed entry after it vouches for it "
                              "(rewritten or added without the key)", seq, pos) for pos, seq in sorted(found)]


def _runs(numbers: Iterable[int]) -> Iterator[tuple[int, int]]:
    """Ascending numbers as runs of consecutive ones, each [low, high)."""
    low = high = 0
    started = False
    for n in numbers:
        if started and n == high:
            high += 1
            continue
        if started:
            yield low, high
        low, high, started = n, n + 1, True
    if started:
        yield low, high


def _complement(low: int, high: int, runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The runs of [low, high) outside ``runs`` (ascending, inside it)."""
    out = []
    for start, end in runs:
        if start > low:
            out.append((low, start))
        low = end
    if high > low:
        out.append((low, high))
    return out


def _count(runs: list[tuple[int, int]]) -> int:
    return sum(high - low for low, high in runs)


def _within(runs: list[tuple[int, int]], n: int) -> bool:
    i = bisect.bisect_right(runs, (n, math.inf)) - 1
    return i >= 0 and runs[i][0] <= n < runs[i][1]


def _span(runs: list[tuple[int, int]]) -> str:
    """Numbers (as runs) as a reader wants them: ``7``, ``10-12``, or every one: ``3, 5, 6``."""
    if len(runs) == 1:
        low, high = runs[0]
        return str(low) if high - low == 1 else f"{low}-{high - 1}"
    return ", ".join(str(n) for low, high in runs for n in range(low, high))


# ------------------------------------------------------------------------------------ export


def entries(store: Store) -> Iterator[dict[str, Any]]:
    """Every entry: its fields plus ``hash`` (the SHA-256 of its canonical JSON) and ``sig``
    (base64; empty on the entries a later signed one vouches for). Verifiable offline: drop those
    two, serialise canonically, SHA-256."""
    for row in store.audit.entries():
        try:
            entry = json.loads(row["entry"])
        except json.JSONDecodeError:
            entry = {"unreadable": row["entry"]}
        yield {**entry, "hash": row["hash"], "sig": base64.b64encode(row["sig"]).decode("ascii")}


def write_jsonl(store: Store, out: IO[str]) -> int:
    n = 0
    for item in entries(store):
        out.write(json.dumps(item, sort_keys=True, separators=(",", ":")) + "\n")
        n += 1
    return n


_FAILURES = frozenset({"delivery.failed", "record.not_filed", "failed"})


def audit_event(item: Mapping[str, Any]) -> dict[str, Any]:
    """A FHIR R4 AuditEvent for one entry; the chain (seq, hash, prev, signature) rides in the
    last entity's details so that the export can be checked against the log."""
    from emrcomm.fhir import REQUEST_ID_SYSTEM

    kind = str(item.get("kind", "unknown"))
    recorded = str(item.get("at", ""))
    entity: list[dict[str, Any]] = []
    if item.get("patient"):
        entity.append({"what": {"reference": item["patient"]},
                       "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1",
                                "display": "Person"},
                       "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1",
                                "display": "Patient"}})
    if item.get("request"):
        entity.append({"what": {"identifier": {"system": REQUEST_ID_SYSTEM, "value": item["request"]}},
                       "type": {"system": "http://hl7.org/fhir/resource-types", "code": "CommunicationRequest"}})
    for record in [item["record"]] if item.get("record") else list(item.get("records") or ()):
        entity.append({"what": {"reference": f"Communication/{record}"},
                       "type": {"system": "http://hl7.org/fhir/resource-types", "code": "Communication"}})
    details: list[dict[str, Any]] = [
        {"type": "seq", "valueString": str(item.get("seq"))},
        {"type": "hash", "valueString": str(item.get("hash"))},
        {"type": "prev", "valueString": str(item.get("prev"))},
        {"type": "key", "valueString": str(item.get("key"))},
    ]
    if item.get("sig"):  # the last entry of each transaction; the chain vouches for the others
        details.append({"type": "signature", "valueBase64Binary": str(item["sig"])})
    for name in ("codes", "reasons", "channels", "channel", "plugin", "error", "until", "provider_id", "status",
                 "category", "problem"):
        value = item.get(name)
        if value:
            details.append({"type": name, "valueString": " ".join(value) if isinstance(value, list) else str(value)})
    entity.append({"what": {"identifier": {"system": AUDIT_LOG_SYSTEM, "value": str(item.get("seq"))}},
                   "detail": details})
    digest = str(item.get("hash", ""))
    return {
        "resourceType": "AuditEvent",
        "id": str(uuid.UUID(hex=digest[:32])) if len(digest) >= 32 else f"audit-{item.get('seq')}",
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110100",
                 "display": "Application Activity"},
        "subtype": [{"system": AUDIT_SYSTEM, "code": kind, "display": KINDS.get(kind, kind)}],
        "action": "E",
        "recorded": recorded,
        "outcome": "4" if kind in _FAILURES else "0",
        "agent": [{"who": {"display": "emrcomm host"}, "requestor": False,
                   **({"name": item["plugin"]} if item.get("plugin") else {})}],
        "source": {"observer": {"display": "emrcomm"},
                   "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4",
                             "display": "Application Server"}]},
        "entity": entity,
    }


def write_fhir(store: Store, out: IO[str]) -> int:
    """A FHIR R4 Bundle (collection) of AuditEvents, streamed entry by entry."""
    out.write('{"resourceType":"Bundle","type":"collection"')
    n = 0
    for item in entries(store):
        event = audit_event(item)
        out.write((',' if n else ',"entry":[') + json.dumps({"fullUrl": f"urn:uuid:{event['id']}", "resource": event},
                                                            separators=(",", ":")))
        n += 1
    out.write("]}\n" if n else "}\n")  # FHIR allows no empty arrays
    return n
