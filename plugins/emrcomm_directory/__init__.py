"""emrcomm built-in plugin: directory. Finds patients in a FHIR R4 Bundle file.

Settings (``[plugins.directory]``)::

    bundle = "patients.json"   # relative to the config file's folder

The Bundle holds Patient and Consent resources (``entry[].resource``); it is read once, when the
host starts. Patients are found by ``Patient/<id>``, by the entry's ``fullUrl``, and by
identifier: ``Patient?identifier=system|value`` (or ``system|value``), ``Patient?identifier=|value``
for an identifier without a system, and ``Patient?identifier=value`` for any system, when the
patients matched are one: a single chart, or charts merged into the chart in use (which kept the
identifier) and that chart. Without a ``bundle`` setting the directory knows nobody and answers None,
so another directory plugin (the EMR's adapter) can answer. A patient the bundle has whom the chart
refuses raises :class:`emrcomm.RecipientRefused` (RECIPIENT_REFUSED, with the reason).

How Patient and Consent map to a Recipient, the consent profile, and how a chart merged into
another (``link`` ``replaced-by``) is followed, are in :mod:`emrcomm.fhir.patients`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import emrcomm
from emrcomm import settings_schema
from emrcomm.fhir.patients import (
    PURPOSE_SYSTEM,
    RecipientRefused,
    consent_grants,
    explain_consent,
    merged_charts,
    one_chart_in_use,
    period_ended,
    recipient_from_fhir,
)
from emrcomm.fhir.regions import DEFAULT_REGION, country_code

__all__ = [
    "PURPOSE_SYSTEM",
    "Plugin",
    "RecipientRefused",
    "consent_grants",
    "explain_consent",
    "recipient_from_fhir",
]

class Plugin:
    """The FHIR Bundle directory."""

    settings_schema = settings_schema(__name__)

    def __init__(self, context: emrcomm.PluginContext) -> None:
        self.context = context
        self._patients: dict[str, Mapping[str, Any]] = {}
        self._consents: dict[str, list[Mapping[str, Any]]] = {}
        self._by_url: dict[str, str] = {}
        self._by_identifier: dict[tuple[str, str], list[str]] = {}  # (system, value) -> ids
        self._by_value: dict[str, list[str]] = {}  # value of any system -> ids
        # Converted recipients: the bundle is read once, and the clock only decides which
        # addresses and telecoms have ended, so a conversion holds while those stay as they were.
        self._recipients: dict[tuple[str, tuple[str, ...]], tuple[tuple[bool, ...], emrcomm.Recipient | RecipientRefused]] = {}
        jurisdiction = context.clinic.jurisdiction or ""
        self.default_region = country_code(jurisdiction.split("-")[0]) or DEFAULT_REGION
        bundle = context.settings.get("bundle")
        if bundle:
            self._load(context.path(bundle))
        else:
            context.log.info("no bundle configured: this directory knows no patient")

    # ------------------------------------------------------------ loading

    def _error(self, path: Path, problem: str) -> emrcomm.ConfigError:
        return emrcomm.ConfigError(f"plugins.{self.context.name}.bundle: {path}: {problem}")

    def _load(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise self._error(path, "no such file (a FHIR R4 Bundle of Patient and Consent resources)") from None
        except UnicodeDecodeError:
            raise self._error(path, "not UTF-8 text (expected a FHIR R4 Bundle in JSON)") from None
        except OSError as exc:
            raise self._error(path, f"cannot read: {exc.strerror}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise self._error(path, f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
        if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
            found = data.get("resourceType") if isinstance(data, dict) else type(data).__name__
            raise self._error(path, f"expected a FHIR Bundle (resourceType 'Bundle'), found {found!r}")
        entries = data.get("entry", [])
        if not isinstance(entries, list):
            raise self._error(path, "Bundle.entry must be a list")

        consents: list[Mapping[str, Any]] = []
        for i, entry in enumerate(entries):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict):
                raise self._error(path, f"entry[{i}] has no resource")
            kind = resource.get("resourceType")
            if kind == "Consent":
                consents.append(resource)
            elif kind == "Patient":
                self._add_patient(path, i, entry, resource)
            else:
                self.context.log.debug("entry[%d]: %s ignored (only Patient and Consent are read)", i, kind)

        for consent in consents:
            reason = explain_consent(consent)
            pid = self._resolve_reference((consent.get("patient") or {}).get("reference", ""))
            if reason is None and pid is None:
                reason = "its patient reference is not a Patient in this bundle"
            if reason is not None or pid is None:
                self.context.log.debug("Consent/%s skipped: %s", consent.get("id", "(no id)"), reason)
                continue
            self._consents.setdefault(pid, []).append(consent)
        self.context.log.info(
            "%d patients, %d communication consents read from %s",
            len(self._patients),
            sum(len(v) for v in self._consents.values()),
            path,
        )

    def _add_patient(self, path: Path, i: int, entry: Mapping[str, Any], patient: Mapping[str, Any]) -> None:
        pid = patient.get("id")
        if not isinstance(pid, str) or not pid:
            raise self._error(path, f"entry[{i}]: Patient has no id")
        if pid in self._patients:
            raise self._error(path, f"entry[{i}]: Patient/{pid} appears twice")
        self._patients[pid] = patient
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str) and full_url:
            self._by_url[full_url] = pid
        for ident in patient.get("identifier") or ():
            if not isinstance(ident, Mapping) or not isinstance(ident.get("value"), str):
                continue
            value = ident["value"]
            key = (ident.get("system") or "", value)
            for ids in (self._by_identifier.setdefault(key, []), self._by_value.setdefault(value, [])):
                if pid not in ids:
                    ids.append(pid)

    # ------------------------------------------------------------ lookup

    def _resolve_reference(self, ref: str) -> str | None:
        if not isinstance(ref, str) or not ref:
            return None
        if ref in self._by_url:
            return self._by_url[ref]
        path = urlsplit(ref).path if "://" in ref else ref
        parts = path.rstrip("/").split("/")
        if "_history" in parts:
            parts = parts[: parts.index("_history")]
        if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1] in self._patients:
            return parts[-1]
        return None

    def resolve(self, patient_ref: str) -> tuple[str, ...]:
        """The ids of the Patients ``patient_ref`` names: the one it links to, or each one its
        identifier matches (several may be one patient: charts merged into the one in use)."""
        ref = patient_ref.strip()
        if ref.startswith("Patient?"):
            params = [part.partition("=") for part in ref[len("Patient?"):].split("&") if part]
            tokens = [unquote(value) for key, _eq, value in params if key == "identifier"]
            if len(tokens) != 1:
                return ()
            return self._by_token(tokens[0])
        found = self._resolve_reference(ref)
        if found is not None:
            return (found,)
        if "|" in ref:
            return self._by_token(ref)
        return ()

    def _by_token(self, token: str) -> tuple[str, ...]:
        if "|" in token:
            system, value = token.split("|", 1)
            return tuple(self._by_identifier.get((system, value), ()))
        return tuple(self._by_value.get(token, ()))

    @emrcomm.hookimpl
    def emrcomm_find_recipient(self, patient_ref: str, request: emrcomm.Request) -> emrcomm.Recipient | None:
        pids = self.resolve(patient_ref)
        # A patient the bundle has and the chart refuses raises RecipientRefused: the host blocks
        # the request with its reason (RECIPIENT_REFUSED), not as a patient nobody knows.
        chosen = one_chart_in_use([self._patients[pid] for pid in pids], self._read)
        if chosen is None:
            if len(pids) > 1:
                self.context.log.warning("identifier lookup matches more than one patient; nobody is chosen")
            return None
        patient, replaced = chosen
        found = self._convert(patient, replaced)
        if isinstance(found, RecipientRefused):
            raise RecipientRefused(str(found))
        return found

    def _read(self, reference: str) -> Mapping[str, Any] | None:
        """The Patient a merge link names (``Patient/<id>`` or an entry's ``fullUrl``), or None."""
        pid = self._resolve_reference(reference)
        return None if pid is None else self._patients[pid]

    def _convert(self, patient: Mapping[str, Any], replaced: tuple[str, ...]) -> emrcomm.Recipient | RecipientRefused:
        """The Recipient of the chart in use, with the Consents of the charts merged into it: a
        patient who refused a channel under the old chart stays refused."""
        pid, now = patient["id"], self.context.clock()
        ended = tuple(period_ended(item.get("period"), now) for item in _dated(patient))
        cached = self._recipients.get((pid, replaced))
        if cached is not None and cached[0] == ended:
            return cached[1]
        charts = [pid, *(self._resolve_reference(ref) for ref in merged_charts(patient, replaced))]
        consents = [c for chart in dict.fromkeys(charts) if chart is not None for c in self._consents.get(chart, [])]
        found: emrcomm.Recipient | RecipientRefused
        try:
            found = recipient_from_fhir(patient, consents, now=now, default_region=self.default_region,
                                        replaces=replaced)
        except RecipientRefused as exc:
            found = exc
        self._recipients[(pid, replaced)] = (ended, found)
        return found

def _dated(patient: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The patient's addresses and telecoms: the parts of a conversion the clock decides."""
    return [item for key in ("address", "telecom") for item in patient.get(key) or () if isinstance(item, Mapping)]
