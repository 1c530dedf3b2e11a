"""The template catalog: the variables each template declares, with their types, and its subject.

A catalog is a TOML file ``<lang>/catalog.toml`` beside that language's templates::

    [appointment-reminder]
    subject = "Appointment reminder from {{ clinic.name }}"
    required = { appointment = "datetime" }
    optional = { location = "string" }

Variables belong to the template, not to one language: declare them once, in any language's
catalog (the built-ins declare them in ``en``); two catalogs that declare the same template
must agree. Subjects are per language.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from attrs import frozen

from emrcomm import ConfigError

TYPES = ("datetime", "date", "string", "money", "number")
# Names every template sees without declaring them; a catalog may not take them for variables.
CONTEXT_NAMES = frozenset({"clinic", "patient"})
# Offered to every template: ``link`` (default: the clinic's portal) and ``text`` (request.text).
IMPLICIT = MappingProxyType({"link": "string", "text": "string"})
_KEYS = ("subject", "required", "optional")


@frozen
class Declaration:
    """The variables one template takes: name -> type, required and optional."""

    required: Mapping[str, str]
    optional: Mapping[str, str]
    source: str

    @property
    def types(self) -> Mapping[str, str]:
        return {**self.optional, **self.required}


@frozen
class Entry:
    """What one catalog file says about one template: a subject, variables, or both."""

    subject: str | None
    declaration: Declaration | None
    source: str


EMPTY = Declaration(required=MappingProxyType({}), optional=MappingProxyType({}), source="(none)")


def read_catalog(text: str, source: str) -> dict[str, Entry]:
    """Parse one catalog file; every mistake names the file and the key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    entries: dict[str, Entry] = {}
    for name, table in raw.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: {name}: expected a table such as [{name}] with subject, required, optional")
        unknown = sorted(set(table) - set(_KEYS))
        if unknown:
            raise ConfigError(f"{source}: {name}.{unknown[0]}: unknown key; allowed keys: {', '.join(_KEYS)}")
        subject = table.get("subject")
        if subject is not None and not isinstance(subject, str):
            raise ConfigError(f"{source}: {name}.subject: expected a string")
        declaration = None
        if "required" in table or "optional" in table:
            required = _variables(table.get("required", {}), f"{source}: {name}.required")
            optional = _variables(table.get("optional", {}), f"{source}: {name}.optional")
            both = sorted(set(required) & set(optional))
            if both:
                raise ConfigError(f"{source}: {name}: variable {both[0]!r} is both required and optional")
            declaration = Declaration(MappingProxyType(required), MappingProxyType(optional), source)
        entries[name] = Entry(subject=subject, declaration=declaration, source=f"{source} [{name}]")
    return entries


def _variables(table: object, where: str) -> dict[str, str]:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table of variable = \"type\" (types: {', '.join(TYPES)})")
    out: dict[str, str] = {}
    for var, kind in table.items():
        if var in CONTEXT_NAMES:
            raise ConfigError(f"{where}.{var}: {var!r} is given to every template and cannot be a variable")
        if kind not in TYPES:
            raise ConfigError(f"{where}.{var}: {kind!r} is not a variable type; use one of: {', '.join(TYPES)}")
        if var in IMPLICIT and kind != IMPLICIT[var]:
            raise ConfigError(f"{where}.{var}: {var!r} is always a {IMPLICIT[var]}")
        out[var] = kind
    return out


def merge_declarations(catalogs: Iterable[Mapping[str, Entry]]) -> dict[str, Declaration]:
    """One declaration per template from the catalogs of one folder; disagreement is an error."""
    merged: dict[str, Declaration] = {}
    for catalog in catalogs:
        for name, entry in catalog.items():
            new = entry.declaration
            if new is None:
                continue
            old = merged.get(name)
            if old is not None and (old.required, old.optional) != (new.required, new.optional):
                raise ConfigError(
                    f"{new.source}: {name}: declares different variables than {old.source}; "
                    "declare a template's variables once, or identically"
                )
            merged[name] = new
    return merged
