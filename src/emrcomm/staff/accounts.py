"""Staff accounts and their sessions.

A password is kept as an Argon2id hash (argon2-cffi, its RFC 9106 low-memory profile), checked
in constant time, and re-hashed at sign-in when the profile changes. Five wrong passwords in a row
lock an account for 15 minutes (an unknown name costs the same time as a known one, so names
cannot be guessed from it). A session id is 256 random bits, kept as its SHA-256; it ends after
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

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from attrs import frozen

from emrcomm.errors import EmrcommError
from emrcomm.storage import Database, iso
from emrcomm.storage.times import parse_iso

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
MAX_FAILURES = 5
LOCKED_FOR = dt.timedelta(minutes=15)
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
    locked_until: dt.datetime | None


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
    def __init__(self, db: Database, clock: Callable[[], dt.datetime]) -> None:
        self.db = db
        self.clock = clock
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
        """A new password; the account is unlocked and its sessions end."""
        self._account(name)
        check_password(name, password)
        with self.db.transaction():
            self.db.execute("""UPDATE staff_accounts SET password_hash = ?, password_changed = ?, failures = 0,
                               locked_until = NULL WHERE name = ?""", (_HASHER.hash(password), iso(self.clock()), name))
            self.db.execute("DELETE FROM staff_sessions WHERE name = ?", (name,))

    def disable(self, name: str) -> None:
        """The account can no longer sign in, and its sessions end at once."""
        self._account(name)
        with self.db.transaction():
            self.db.execute("UPDATE staff_accounts SET disabled = ? WHERE name = ?", (iso(self.clock()), name))
            self.db.execute("DELETE FROM staff_sessions WHERE name = ?", (name,))

    def enable(self, name: str) -> None:
        self._account(name)
        with self.db.transaction():
            self.db.execute("UPDATE staff_accounts SET disabled = NULL, failures = 0, locked_until = NULL "
                            "WHERE name = ?", (name,))

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
                       disabled=parse_iso(r["disabled"]) if r["disabled"] else None,
                       locked_until=parse_iso(r["locked_until"]) if r["locked_until"] else None)

    # signing in (the pages) ----------------------------------------------------------------------
    def sign_in(self, name: str, password: str) -> str | None:
        """A new session id when ``password`` is the account's and the account may sign in, else
        None (an unknown name, a wrong password, a disabled or locked account: the same answer)."""
        now = self.clock()
        name = name.strip().lower()[:64]
        # Take a try before checking the password: wrong passwords sent at once each need one of
        # the MAX_FAILURES tries, so no more than that many are ever checked, whatever the timing.
        taken = self._take_try(name, now)
        tries, stored = taken if taken is not None else (None, _decoy())
        right: bool
        try:
            right = _HASHER.verify(stored, password[:MAX_PASSWORD])
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            right = False
        if tries is None:  # no such account, or disabled, or locked: checked against the decoy
            return None
        if not right:
            if tries >= MAX_FAILURES:  # the last try: the account is locked, and its tries start again after
                with self.db.transaction():
                    self.db.execute("UPDATE staff_accounts SET failures = 0, locked_until = ? WHERE name = ?",
                                    (iso(now + LOCKED_FOR), name))
            return None
        session_id = secrets.token_urlsafe(32)
        with self.db.transaction():
            if _HASHER.check_needs_rehash(stored):
                self.db.execute("UPDATE staff_accounts SET password_hash = ? WHERE name = ?",
                                (_HASHER.hash(password), name))
            self.db.execute("UPDATE staff_accounts SET failures = 0, locked_until = NULL WHERE name = ?", (name,))
            self.db.execute("INSERT INTO staff_sessions (digest, name, created, seen) VALUES (?, ?, ?, ?)",
                            (_digest(session_id), name, iso(now), iso(now)))
            self.db.execute("DELETE FROM staff_sessions WHERE seen < ? OR created < ?",
                            (iso(now - IDLE), iso(now - LIFETIME)))
        return session_id

    def _take_try(self, name: str, now: dt.datetime) -> tuple[int, str] | None:
        """Count one try at the account's password (one statement: concurrent sign-ins each get
        their own count). Returns the tries counted so far, this one included, and the password's
        hash; None when the account does not exist, is disabled or locked, or has no try left."""
        with self.db.transaction():  # RETURNING rows are read before the commit
            rows = self.db.query(
                """UPDATE staff_accounts SET failures = failures + 1
                   WHERE name = ? AND disabled IS NULL AND failures < ? AND (locked_until IS NULL OR locked_until <= ?)
                   RETURNING failures, password_hash""", (name, MAX_FAILURES, iso(now)))
        return (int(rows[0]["failures"]), rows[0]["password_hash"]) if rows else None

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
