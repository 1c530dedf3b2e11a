"""Reading and checking emrcomm.toml: the schema, each plugin's settings schema, secret references.

Every error names the file, the dotted path, the offending value (never a secret's) and what
was expected, so a clinic can fix its file without reading code.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
import urllib.parse
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from attrs import field, frozen

from emrcomm.errors import ConfigError
from emrcomm.limits import Limits
from emrcomm.model import Severity
from emrcomm.pipeline.watch import check_send_timeout
from emrcomm.plugin.context import Clinic
from emrcomm.rules import RULES

DEFAULT_FILE = "emrcomm.toml"
EMBEDDED = "<embedded defaults>"
DATA_DIR_VARIABLE = "EMRCOMM_DATA_DIR"

# Keys whose values are credentials: they may only be references to the environment or a file.
_PASSWORD_IN_USER = re.compile(r"^[A-Za-z+]+://[^/@?#]*:[^/@?#]*@")
# libpq takes a password from the query too, its name percent-decoded like its value (the
# client key's passphrase is as secret as the password).
_PASSWORD_PARAMS = frozenset({"password", "sslpassword"})
_PASSWORD_KEYWORD = re.compile(r"(?:^|\s)(?:ssl)?password\s*=", re.I)
SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_?key|auth_?key|private_?key|credential)", re.I)


@cache
def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema shipped in the wheel (``schemas/`` in the source tree)."""
    text = resources.files("emrcomm.schemas").joinpath(name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@frozen
class RuleSettings:
    """Severity changes: raised freely, lowered only with a recorded reason."""

    severity: Mapping[str, Severity] = field(factory=dict)
    overrides: Mapping[str, str] = field(factory=dict)  # code -> reason

    def apply(self, code: str, severity: Severity) -> tuple[Severity, str | None]:
        """The severity a finding ends with, and the override reason when it was lowered."""
        wanted = self.severity.get(code)
        if wanted is None or wanted == severity:
            return severity, None
        if wanted.rank > severity.rank:
            return wanted, None
        return wanted, self.overrides.get(code)


@frozen
class Config:
    """A checked configuration. ``plugin_settings`` are still raw: the loader checks them
    against each plugin's schema once it knows which plugins exist."""

    source: str
    base_dir: Path
    clinic: Clinic
    store_path: Path
    delivery_mode: str
    plugin_order: tuple[str, ...] | None
    plugin_disable: tuple[str, ...]
    plugin_settings: Mapping[str, Mapping[str, Any]]
    rules: RuleSettings
    raw: Mapping[str, Any]
    store_synchronous: str = "full"  # [store] synchronous: "full" (fsync per commit) or "normal"
    limits: Limits = field(factory=Limits)  # [limits]: bounds on what enters (emrcomm.limits)
    store_url: str | None = None  # [store] url: PostgreSQL instead of the SQLite file
    store_pool_size: int = 10  # [store] pool_size: PostgreSQL connections a process keeps at most
    store_lock_timeout: float = 30.0  # [store] lock_timeout: PostgreSQL's wait for another session's lock

    def store_password(self) -> str | None:
        """``[store] password`` resolved (an environment variable or a file), or None."""
        ref = (self.raw.get("store") or {}).get("password")
        return None if ref is None else resolve_secret(ref, "store.password", self.base_dir)

    @property
    def store_where(self) -> str:
        """Where the store is, for messages: the SQLite file, or the PostgreSQL database."""
        if self.store_url:
            from emrcomm.storage.postgres import describe

            return describe(self.store_url)
        return str(self.store_path)


def resolve_secret(ref: Mapping[str, str], where: str, base_dir: Path) -> str:
    """The value a secret reference (``{env = ...}`` or ``{file = ...}``) points at."""
    if "env" in ref:
        value = os.environ.get(ref["env"])
        if value is None:
            raise ConfigError(f"{where}: environment variable {ref['env']} is not set")
        return value
    path = Path(ref["file"]).expanduser()
    path = path if path.is_absolute() else base_dir / path
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read secret file {path}: {exc.strerror}") from None


def embedded_defaults_text() -> str:
    return resources.files("emrcomm").joinpath("defaults.toml").read_text(encoding="utf-8")


def user_data_dir() -> Path:
    """Where the embedded defaults keep their database, keys and sinks: ``$EMRCOMM_DATA_DIR``,
    else the user's data folder (``~/.local/share/emrcomm`` on Linux)."""
    import platformdirs

    given = os.environ.get(DATA_DIR_VARIABLE, "").strip()
    return Path(given).expanduser() if given else platformdirs.user_data_path("emrcomm")


def find_config(path: str | Path | None) -> Path | None:
    """``--config FILE``, else ./emrcomm.toml when it exists, else None (embedded defaults)."""
    if path is not None:
        return Path(path)
    candidate = Path.cwd() / DEFAULT_FILE
    return candidate if candidate.is_file() else None


def load_config(path: str | Path | None = None, *, base_dir: Path | None = None) -> Config:
    """Read, parse and check a config file (or the embedded defaults when there is none).

    Relative paths in the file are relative to its folder; for the embedded defaults they are
    relative to ``base_dir`` (default: :func:`user_data_dir`, never the current directory).
    """
    found = find_config(path) if path is not None or base_dir is None else None
    if found is None:
        return parse_config(embedded_defaults_text(), source=EMBEDDED, base_dir=base_dir or user_data_dir())
    try:
        text = found.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{found}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{found}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{found}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    return parse_config(text, source=str(found), base_dir=found.resolve().parent)


def parse_config(text: str, *, source: str, base_dir: Path) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: not valid TOML: arrays or tables nested too deeply") from None
    check_secrets(raw.get("plugins", {}), source, "plugins")
    check_secrets(raw.get("store", {}), source, "store")
    # Before the schema: its message quotes the value it refuses, and a malformed URL (libpq's
    # key=value form, a stray space) may still carry a password.
    url = raw.get("store", {}).get("url") if isinstance(raw.get("store"), dict) else None
    if isinstance(url, str) and _carries_password(url):
        raise ConfigError(f"{source}: store.url: secrets cannot be written in the config file (the URL carries a "
                          "password, withheld here); write the URL without it and password = {env = \"VARIABLE\"} "
                          "or password = {file = \"path\"}")
    validate(raw, load_schema("config.schema.json"), source)
    unusable = check_send_timeout(raw.get("delivery", {}))
    if unusable is not None:
        raise ConfigError(f"{source}: {unusable}")
    clinic_raw = raw["clinic"]
    clinic = Clinic(
        name=clinic_raw["name"],
        phone=clinic_raw.get("phone", ""),
        email=clinic_raw.get("email", ""),
        signature=clinic_raw.get("signature", ""),
        address=clinic_raw.get("address", ""),
        jurisdiction=clinic_raw.get("jurisdiction", "CA-ON"),
        time_zones=tuple(clinic_raw.get("time_zones", ["America/Toronto"])),
        link_domains=tuple(clinic_raw.get("link_domains", ())),
        portal_url=clinic_raw.get("portal_url", ""),
        turnaround=clinic_raw.get("turnaround", ""),
        turnaround_fr=clinic_raw.get("turnaround_fr", ""),
        us_healthcare_exemption=clinic_raw.get("us_healthcare_exemption", False),
    )
    _check_time_zones(clinic.time_zones, source)
    store_path = Path(raw.get("store", {}).get("path", "emrcomm-data/emrcomm.sqlite")).expanduser()
    if not store_path.is_absolute():
        store_path = base_dir / store_path
    plugins = raw.get("plugins", {})
    order = plugins.get("order")
    settings = {k: v for k, v in plugins.items() if k not in ("order", "disable")}
    return Config(
        source=source,
        base_dir=base_dir,
        clinic=clinic,
        store_path=store_path,
        delivery_mode=raw.get("delivery", {}).get("mode", "inline"),
        plugin_order=tuple(order) if order is not None else None,
        plugin_disable=tuple(plugins.get("disable", ())),
        plugin_settings=settings,
        rules=_rule_settings(raw.get("rules", {}), source),
        raw=raw,
        store_synchronous=raw.get("store", {}).get("synchronous", "full"),
        limits=Limits.from_config(raw.get("limits", {})),
        store_url=url or None,
        store_pool_size=int(raw.get("store", {}).get("pool_size", 10)),
        store_lock_timeout=float(raw.get("store", {}).get("lock_timeout", 30)),
    )


def _carries_password(url: str) -> bool:
    """Whether a store URL carries a password: in its user part or as a query parameter, or,
    in libpq's key=value form (which the schema refuses), as a ``password`` key."""
    if "://" not in url:
        return bool(_PASSWORD_KEYWORD.search(url))
    try:
        query = urllib.parse.urlsplit(url).query
    except ValueError:  # not a URL urllib reads (a stray bracket): refuse it only if it could be one
        return "password" in url.lower()
    return bool(_PASSWORD_IN_USER.match(url)) or any(
        key.strip().lower() in _PASSWORD_PARAMS for key, _ in urllib.parse.parse_qsl(query, keep_blank_values=True))


def _check_time_zones(zones: tuple[str, ...], source: str) -> None:
    import zoneinfo

    for i, zone in enumerate(zones):
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"{source}: clinic.time_zones[{i}]: {zone!r} is not an IANA time zone "
                "(expected a name such as 'America/Toronto')"
            ) from None


def _rule_settings(raw: Mapping[str, Any], source: str) -> RuleSettings:
    severity: dict[str, Severity] = {}
    overrides: dict[str, str] = {}
    known = ", ".join(sorted(RULES))
    for code, value in raw.get("severity", {}).items():
        rule = RULES.get(code)
        if rule is None:
            raise ConfigError(f"{source}: rules.severity.{code}: unknown rule code; known codes: {known}")
        wanted = Severity(value)
        if wanted.rank < rule.severity.rank:
            raise ConfigError(
                f"{source}: rules.severity.{code}: {value!r} lowers a {rule.severity.value} rule; "
                f"lowering needs [rules.override.{code}] with severity and a reason"
            )
        severity[code] = wanted
    for code, value in raw.get("override", {}).items():
        if code not in RULES:
            raise ConfigError(f"{source}: rules.override.{code}: unknown rule code; known codes: {known}")
        severity[code] = Severity(value["severity"])
        overrides[code] = value["reason"]
    return RuleSettings(severity=severity, overrides=overrides)


def _walk(value: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield path, str(key), item
            yield from _walk(item, f"{path}.{key}")


def is_secret_ref(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and len(value) == 1
        and (isinstance(value.get("env"), str) or isinstance(value.get("file"), str))
    )


def check_secrets(tree: Mapping[str, Any], source: str, root: str) -> None:
    """Reject literal credentials: a secret may only be ``{env = "VAR"}`` or ``{file = "path"}``."""
    for parent, key, value in _walk(tree, root):
        if SECRET_KEY.search(key) and not is_secret_ref(value):
            raise ConfigError(
                f"{source}: {parent}.{key}: secrets cannot be written in the config file "
                f"(value withheld); write {key} = {{env = \"VARIABLE\"}} or {key} = {{file = \"path\"}}"
            )


def validate(instance: Any, schema: Mapping[str, Any], source: str, root: str = "") -> None:
    """jsonschema validation with errors that name the path, the value and the expectation."""
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    err = errors[0]
    path = ".".join([root] if root else []) + "".join(
        f"[{p}]" if isinstance(p, int) else (f".{p}" if (root or i) else str(p))
        for i, p in enumerate(err.absolute_path)
    )
    path = path or root or "(top level)"
    expected = err.schema.get("description") if isinstance(err.schema, Mapping) else None
    if err.validator == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        detail = f"{err.message}; allowed keys: {', '.join(allowed)}"
    elif err.validator == "required":
        detail = err.message
    else:
        detail = f"{err.instance!r} is not valid: {err.message}"
        if expected:
            detail += f" (expected {expected})"
    raise ConfigError(f"{source}: {path}: {detail}")
