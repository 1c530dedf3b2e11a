"""Staff accounts and their sessions.

A password is kept as an Argon2id hash (argon2-cffi, its RFC 9106 low-memory profile), checked
in constant time, and re-hashed at sign-in when the profile changes. Sign-ins are limited before
any password is checked (emrcomm.staff.tries), per address and name, per address, and per name
for browsers that have not signed in to the account before, so that wrong passwords slow the
address that sends them, never lock the account for everyone; an unknown name is limited and
answered as a known one is. A session id is 256 random bits, kept as its SHA-256; it ends after
30 minutes unused or 12 hours in all, at sign-out, or when the account is disabled or its
password is changed. The form token of a session is derived from its id.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from attrs import frozen

from emrcomm.errors import EmrcommError
from emrcomm.staff.tries import Key, Tries
from emrcomm.storage import Database, iso
from emrcomm.storage.times import parse_iso

if TYPE_CHECKING:
    from emrcomm.audit import SigningKey

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
# Tries before sign-ins wait (each bucket gets one try back every tries.EVERY, 3 minutes):
PER_NAME_AND_ADDRESS = 5  # wrong passwords for one name from one address (as the account lock had)
PER_ADDRESS = 20  # wrong passwords from one address, whatever the names (password spraying)
# Wrong passwords for one name from browsers that have not signed in to it: a guesser with many
# addresses gets no more than before (20 an hour); twice PER_NAME_AND_ADDRESS, so that one
# address alone never empties it and the account's own staff on another address get in at once.
PER_NAME = 2 * PER_NAME_AND_ADDRESS
PER_DEVICE = 5  # wrong passwords for one name from a browser that signed in to it before
DEVICE_DAYS = dt.timedelta(days=90)  # how long a browser that signed in stays known
IDLE = dt.timedelta(minutes=30)
LIFETIME = dt.timedelta(hours=12)

_HASHER = PasswordHasher()  # Argon2id, RFC 9106's low-memory profile: 64 MiB, 3 passes


@functools.cache
def _decoy() -> str:
    """The hash checked against when the name is unknown, so that a wrong name takes as long as a
    wrong password. Made once a process, when its first StaffAccounts is (the staff pages at start,
    a staff command), not when the module is imported: every command imports it, and one Argon2
    hash is ~0.2 s of CPU and 64 MiB."""
    return _HASHER.hash(secrets.token_hex(16))


@frozen
class Account:
    name: str
    full_name: str
    created: dt.datetime
    disabled: dt.datetime | None


@frozen
class SignIn:
    """What a sign-in got: a new ``session`` id and the browser's new ``device`` id (its cookie)
    when the password was right; else ``wait``, the seconds before this address may try this name
    again (0: it may now; the name or the password was wrong). The same for any name."""

    session: str | None = None
    device: str | None = None
    wait: float = 0.0


@frozen
class Session:
    """A signed-in browser: the account, and the token its forms carry."""

    name: str
    full_name: str
    form_token: str


def check_password(name: str, password: str) -> None:
    """Raise EmrcommError when ``password`` is too weak to keep (NIST SP 800-63B: length, not
    composition rules)."""
    if len(password) < MIN_PASSWORD:
        raise EmrcommError(f"the password is too short: use at least {MIN_PASSWORD} characters "
                           "(a few unrelated words make a good one)")
    if len(password) > MAX_PASSWORD:
        raise EmrcommError(f"the password is too long: at most {MAX_PASSWORD} characters")
    if password.strip().lower() == name.lower():
        raise EmrcommError("the password may not be the account's name")


def form_token(session_id: str) -> str:
    """What a signed-in page's forms carry: derived from the session id (which only the cookie
    holds), so a page elsewhere cannot know it."""
    return hmac.new(session_id.encode(), b"emrcomm-staff-form", hashlib.sha256).hexdigest()


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii", "replace")).hexdigest()


class StaffAccounts:
    def __init__(self, db: Database, clock: Callable[[], dt.datetime], key: SigningKey) -> None:
        """``key``: the audit signing key, from which the secret that keys what the sign-in limits
        store about names and addresses is derived (tries.py)."""
        self.db = db
        self.clock = clock
        self.tries = Tries(db, key.derived(b"emrcomm staff sign-in limits"))
        _decoy()

    # accounts (the command line) -----------------------------------------------------------------
    def add(self, name: str, full_name: str, password: str) -> Account:
        if not NAME.fullmatch(name):
            raise EmrcommError(f"account name {name!r}: use lower-case letters, digits, '.', '_' or '-' "
                               "(e.g. 'jroy'), at most 64")
        check_password(name, password)
        now = iso(self.clock())
        with self.db.transaction():
            if self.db.query("SELECT name FROM staff_accounts WHERE name = ?", (name,)):
                raise EmrcommError(f"there is already an account {name!r}: `emrcomm staff password {name}` "
                                   "sets a new password")
            self.db.execute(
                """INSERT INTO staff_accounts (name, full_name, password_hash, created, password_changed)
                   VALUES (?, ?, ?, ?, ?)""", (name, full_name or name, _HASHER.hash(password), now, now))
        return self._account(name)

    def set_password(self, name: str, password: str) -> None:
        """A new password; the account's sessions end, its known browsers are forgotten, and the
        sign-in limits on its name start again."""
        self._account(name)
        check_password(name, password)
        with self.db.transaction():
            self.db.execute("UPDATE staff_accounts SET password_hash = ?, password_changed = ? WHERE name = ?",
                            (_HASHER.hash(password), iso(self.clock()), name))
            self.db.execute("DELETE FROM staff_sessions WHERE name = ?", (name,))
            # Browsers that knew the old password are strangers to the new one.
            self.db.execute("DELETE FROM staff_devices WHERE name = ?", (name,))
            self.tries.forget(name)

    def disable(self, name: str) -> None:
        """The account can no longer sign in, and its sessions end at once."""
        self._account(name)
        with self.db.transaction():
            self.db.execute("UPDATE staff_accounts SET disabled = ? WHERE name = ?", (iso(self.clock()), name))
            self.db.execute("DELETE FROM staff_sessions WHERE name = ?", (name,))

    def enable(self, name: str) -> None:
        self._account(name)
        with self.db.transaction():
            self.db.execute("UPDATE staff_accounts SET disabled = NULL WHERE name = ?", (name,))
            self.tries.forget(name)

    def known(self, name: str) -> bool:
        """Whether ``name`` is an account's (what a refused sign-in may write to the audit log)."""
        return bool(self.db.query("SELECT name FROM staff_accounts WHERE name = ?", (name,)))

    def all(self) -> list[Account]:
        rows = self.db.query("SELECT name FROM staff_accounts ORDER BY name")
        return [self._account(r["name"]) for r in rows]

    def _account(self, name: str) -> Account:
        rows = self.db.query("SELECT * FROM staff_accounts WHERE name = ?", (name,))
        if not rows:
            raise EmrcommError(f"no staff account {name!r}: `emrcomm staff list` shows them")
        r = rows[0]
        return Account(name=r["name"], full_name=r["full_name"], created=parse_iso(r["created"]),
                       disabled=parse_iso(r["disabled"]) if r["disabled"] else None)

    # signing in (the pages) ----------------------------------------------------------------------
    def sign_in(self, name: str, password: str, address: str = "unknown", device: str | None = None) -> SignIn:
        """Sign in from client ``address`` (the app's, behind a trusted proxy the one it names),
        in a browser whose device cookie is ``device``.

        A try is taken from each limit before the password is checked, so wrong passwords sent
        at once cannot get more checks than the limits allow, whatever the timing; a try refused
        checks nothing. A right password gives its tries back. The answer, and the time it takes,
        is the same for an unknown name, a disabled account and a wrong password.
        """
        now = self.clock()
        name = name.strip().lower()[:64]
        address = address[:100]
        pair = Key(f"pair\x1f{name}\x1f{address}", name, PER_NAME_AND_ADDRESS)
        source = Key(f"address\x1f{address}", None, PER_ADDRESS)
        by_name = Key(f"name\x1f{name}", name, PER_NAME)
        known = Key(f"device\x1f{name}\x1f{_digest(device)}", name, PER_DEVICE) if device else None
        # A browser that signed in to this name before has a limit of its own, so that guesses
        # from elsewhere cannot keep it out; once that runs out it is limited as any other.
        spent = known if known is not None and self._known_device(name, device, now) else by_name
        wait = self.tries.take([pair, source, spent], now.timestamp())
        if wait > 0 and spent is not by_name:
            spent = by_name
            wait = self.tries.take([pair, source, by_name], now.timestamp())
        if wait > 0:
            return SignIn(wait=wait)
        stored = self._stored_hash(name)
        right: bool
        try:
            right = _HASHER.verify(stored or _decoy(), password[:MAX_PASSWORD])
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            right = False
        if stored is None or not right:  # no such account, or disabled: checked against the decoy
            return SignIn()
        session_id, device_id = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self.db.transaction():
            if _HASHER.check_needs_rehash(stored):
                self.db.execute("UPDATE staff_accounts SET password_hash = ? WHERE name = ?",
                                (_HASHER.hash(password), name))
            self.db.execute("INSERT INTO staff_sessions (digest, name, created, seen) VALUES (?, ?, ?, ?)",
                            (_digest(session_id), name, iso(now), iso(now)))
            self.db.execute("DELETE FROM staff_sessions WHERE seen < ? OR created < ?",
                            (iso(now - IDLE), iso(now - LIFETIME)))
            self._remember_device(name, device, device_id, now)
            # A right password: the wrong ones before it from here, and from this browser, are
            # forgiven; the address's and the name's buckets get this try back.
            self.tries.reset([pair] + ([known] if known is not None else []))
            self.tries.give_back([source] + ([by_name] if spent is by_name else []))
        return SignIn(session=session_id, device=device_id)

    def _stored_hash(self, name: str) -> str | None:
        rows = self.db.query("SELECT password_hash FROM staff_accounts WHERE name = ? AND disabled IS NULL", (name,))
        return str(rows[0]["password_hash"]) if rows else None

    def _known_device(self, name: str, device: str | None, now: dt.datetime) -> bool:
        if not device or len(device) > 100:
            return False
        return bool(self.db.query("SELECT name FROM staff_devices WHERE digest = ? AND name = ? AND seen > ?",
                                  (_digest(device), name, iso(now - DEVICE_DAYS))))

    def _remember_device(self, name: str, old: str | None, new: str, now: dt.datetime) -> None:
        """The browser gets a new device id at each sign-in (one planted in it beforehand is of no
        use to whoever planted it), and keeps the accounts its old one had signed in to."""
        if old and len(old) <= 100:
            self.db.execute("UPDATE staff_devices SET digest = ? WHERE digest = ? AND name <> ?",
                            (_digest(new), _digest(old), name))
            self.db.execute("DELETE FROM staff_devices WHERE digest = ?", (_digest(old),))
        self.db.execute("INSERT INTO staff_devices (digest, name, seen) VALUES (?, ?, ?)", (_digest(new), name, iso(now)))
        self.db.execute("DELETE FROM staff_devices WHERE seen <= ?", (iso(now - DEVICE_DAYS),))

    def session(self, session_id: str | None) -> Session | None:
        """The session of a browser's cookie while it lasts (and it lasts on: its use is noted)."""
        if not session_id or len(session_id) > 100:
            return None
        now = self.clock()
        rows = self.db.query(
            """SELECT s.name, s.created, s.seen, a.full_name, a.disabled FROM staff_sessions s
               JOIN staff_accounts a ON a.name = s.name WHERE s.digest = ?""", (_digest(session_id),))
        if not rows:
            return None
        r = rows[0]
        if r["disabled"] or parse_iso(r["seen"]) <= now - IDLE or parse_iso(r["created"]) <= now - LIFETIME:
            self.sign_out(session_id)
            return None
        with self.db.transaction():
            self.db.execute("UPDATE staff_sessions SET seen = ? WHERE digest = ?", (iso(now), _digest(session_id)))
        return Session(name=r["name"], full_name=r["full_name"], form_token=form_token(session_id))

    def sign_out(self, session_id: str) -> None:
        with self.db.transaction():
            self.db.execute("DELETE FROM staff_sessions WHERE digest = ?", (_digest(session_id),))
