"""``emrcomm doctor``: what the clinic's config names, tried from this machine — the config, its
credentials, the database, the audit key and every server a plugin talks to — in words.

It runs on a host that writes nothing; each server is tried by the plugin that uses it
(``emrcomm_probe``), all of them side by side.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import frozen

from emrcomm.errors import ConfigError, EmrcommError
from emrcomm.plugin.contract import Probe

if TYPE_CHECKING:
    from emrcomm.host import Host

log = logging.getLogger("emrcomm.doctor")

HOST = "host"  # the plugin name of the checks the core makes itself


@frozen
class Check:
    """One thing tried: ``what`` (a server, a file), the ``plugin`` that tried it, the ``steps``
    that worked, in order, and ``problem``, what went wrong at the first that did not."""

    what: str
    plugin: str = HOST
    steps: tuple[str, ...] = ()
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def line(self) -> str:
        said = ", ".join([*self.steps, *([self.problem] if self.problem else [])])
        by = "" if self.plugin == HOST else f" (plugin {self.plugin})"
        return f"{'ok' if self.ok else 'FAIL':<4}  {self.what}{by}: {said}"

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "plugin": self.plugin, "ok": self.ok, "steps": list(self.steps),
                "problem": self.problem}


def examine(host: Host) -> list[Check]:
    """Every check, in order: the config, its credentials, the database, the audit key, then
    each plugin's servers (tried at once, reported in call order)."""
    checks = [_config(host), *_credentials(host), _database(host), _audit_key(host)]
    return checks + run_probes(host.plugins.probes())


def unopened(source: str, problem: str) -> list[Check]:
    """The checks when the store could not be opened (``problem`` says why): the config was read,
    the database failed, and what comes after needs it."""
    return [Check(f"config {source}", steps=("read",)),
            Check("database", problem=f"{problem}; the checks after it (the audit key, the plugins' servers) need "
                                      "it and were not tried")]


def run_probes(probes: Sequence[tuple[str, Probe | EmrcommError]]) -> list[Check]:
    """Run every probe in a thread of its own; each keeps to its own timeouts."""
    if not probes:
        return []
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(probes)),
                                               thread_name_prefix="emrcomm-doctor") as pool:
        futures = [pool.submit(_run, plugin, probe) for plugin, probe in probes]
        return [f.result() for f in futures]


def _run(plugin: str, probe: Probe | EmrcommError) -> Check:
    if isinstance(probe, EmrcommError):
        return Check("servers", plugin, problem=str(probe))
    steps: list[str] = []
    try:
        said = probe.check()
        if isinstance(said, str | bytes):  # read one letter a step otherwise
            return Check(probe.server, plugin, problem=f"the check answered {type(said).__name__}, not the steps it "
                         "took (emrcomm.Probe: check() yields them)")
        for step in said:
            steps.append(str(step))
    except EmrcommError as exc:  # ProbeFailed, or the ConfigError of a credential not found
        return Check(probe.server, plugin, tuple(steps), str(exc))
    except Exception as exc:
        log.debug("probe of %s by %s failed", probe.server, plugin, exc_info=True)
        return Check(probe.server, plugin, tuple(steps),
                     f"the check itself failed ({type(exc).__name__}); run `emrcomm -vv doctor` for details")
    return Check(probe.server, plugin, tuple(steps))


def _config(host: Host) -> Check:
    config = host.config
    plugins = [p.name for p in host.plugins]
    return Check(f"config {config.source}", steps=(
        f"clinic {config.clinic.name}", f"{len(plugins)} plugins ({', '.join(plugins)})",
        f"{len(host.channels)} channels ({', '.join(sorted(host.channels))})"))


def _credentials(host: Host) -> list[Check]:
    problems = host.plugins.secret_problems()
    if not problems:
        return [Check("credentials", steps=("every one the config names is there",))]
    return [Check("credential", problem=p) for p in problems]


def _database(host: Host) -> Check:
    """The store: for SQLite its file (there, or makeable; writable by this user), then, for any
    store, whether its schema is the one this emrcomm runs on."""
    db = host.storage.db
    if db.dialect != "sqlite":
        return _server_database(host)
    path = host.config.store_path
    what = f"database (SQLite) {path}"
    if not path.exists():
        return _not_yet(what, path, "created at the first send", "store.path")
    if not os.access(path, os.R_OK | os.W_OK) or not os.access(path.parent, os.W_OK):
        return Check(what, steps=("exists",), problem=f"this user ({_user()}) cannot write to it or to its "
                     "folder: run emrcomm as the user that owns it")
    return _schema(host, what, ["exists"])


def _server_database(host: Host) -> Check:
    """A store on a database server (PostgreSQL). The host could open it, so it answered; it is
    asked once more, then its schema is compared. A Database may add checks of its own (its
    roles, its pool, its server's version) as a ``probe()`` method with the contract of
    :class:`emrcomm.Probe`'s check: it yields the steps that worked and raises
    :class:`emrcomm.ProbeFailed` in words at the first that did not."""
    db = host.storage.db
    what = f"database ({db.dialect}) {db.where}"
    steps: list[str] = []
    try:
        db.query("SELECT 1")
        steps.append("connected")
        probe: Callable[[], Iterable[str]] | None = getattr(db, "probe", None)
        for step in probe() if probe is not None else ():
            steps.append(str(step))
    except EmrcommError as exc:
        return Check(what, steps=tuple(steps), problem=str(exc))
    except Exception as exc:
        log.debug("the database check failed", exc_info=True)
        return Check(what, steps=tuple(steps), problem=f"it does not answer as it should ({type(exc).__name__})")
    return _schema(host, what, steps)


def _schema(host: Host, what: str, steps: list[str]) -> Check:
    from emrcomm.storage import pending, schema_version

    db = host.storage.db
    steps.append(f"schema version {schema_version(db)}")
    try:
        later = pending(db, host.migrations())
    except ConfigError as exc:
        return Check(what, steps=tuple(steps), problem=str(exc).removeprefix(f"{db.where}: "))
    if later and db.dialect != "sqlite":  # a server's schema is upgraded only by `db upgrade`, never at start-up
        return Check(what, steps=tuple(steps), problem=f"{len(later)} upgrade step(s) not applied: start-up refuses "
                     "it; run `emrcomm db upgrade` as the role that owns the tables")
    steps.append("up to date" if not later else f"{len(later)} upgrade step(s) wait, applied at the next start")
    return Check(what, steps=tuple(steps))


def _audit_key(host: Host) -> Check:
    from emrcomm.audit import SigningKey, key_path
    from emrcomm.storage import schema_version

    path = key_path(host.config)
    what = f"audit signing key {path}"
    if not path.exists():
        audit = host.storage.audit  # a database server's tables may not be made yet (`db upgrade`)
        if schema_version(host.storage.db) and (audit.head() is not None or audit.last() is not None):
            return Check(what, problem="missing, but the audit log already has entries signed with it: "
                                       "restore it from the backup (docs/audit.md)")
        return _not_yet(what, path, "created (owner only) at the first send", "audit.key_file")
    try:
        SigningKey.load(path, create=False)
    except ConfigError as exc:
        return Check(what, steps=("exists",), problem=str(exc).removeprefix(f"audit.key_file: {path}: "))
    return Check(what, steps=("exists", "owner only", "a valid key"))


def _not_yet(what: str, path: Path, when: str, setting: str) -> Check:
    """A file emrcomm makes when first needed: fine if the nearest folder there is can be written."""
    folder = next(p for p in (path.parent, *path.parent.parents) if p.exists())
    if not folder.is_dir():
        problem = f"{folder} is a file, not a folder"
    elif not os.access(folder, os.W_OK) or os.statvfs(folder).f_flag & os.ST_RDONLY:
        problem = f"{folder} is not writable by this user ({_user()})"
    elif os.statvfs(folder).f_blocks == 0:  # /proc, /sys: the kernel's, which root's os.access calls writable
        problem = f"{folder} is on a filesystem that stores no files (the kernel's, such as /proc)"
    else:
        return Check(what, steps=(f"not created yet: {when}",))
    return Check(what, steps=("not created yet",), problem=f"{problem}: it could not be made there; check {setting}")


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def table(checks: Iterable[Check]) -> str:
    """The report for people: one line a check, then the verdict."""
    checks = list(checks)
    failed = sum(not c.ok for c in checks)
    verdict = ("All is well: every check passed." if not failed
               else f"{failed} of {len(checks)} checks failed: fix what they name, then run `emrcomm doctor` again.")
    return "\n".join([*(c.line() for c in checks), "", verdict])


__all__ = ["Check", "examine", "run_probes", "table"]
