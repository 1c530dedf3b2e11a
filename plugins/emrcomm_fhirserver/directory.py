"""``fhir-directory``: find patients on a FHIR R4 server (the EMR's, or the one records go to).

A request names its patient as ``Patient/<id>`` (a read), ``Patient?identifier=system|value`` or
``system|value`` (a search that must match one patient: one Patient, or the chart in use and
charts merged into it that kept the identifier, :func:`emrcomm.fhir.patients.one_chart_in_use`).
The patient's Consents come from ``Consent?patient=Patient/<id>``, one search for the chart in use
and one for each chart merged into it (:func:`emrcomm.fhir.patients.merged_charts`). Both are read with the same
rules as the Bundle directory (:mod:`emrcomm.fhir.patients`: telecoms, language, region, the
communication-consent profile). A Patient merged into another (``link`` ``replaced-by``) is read
as the one it names, each link one more read, a bounded number of them
(:func:`emrcomm.fhir.patients.follow_replaced_by`).

A server that cannot answer now (down, slow past ``timeout``, answering 5xx or with what is not
the resource asked for) stops the request with PluginUnavailable naming the server: nothing is sent or
filed, nothing is said of the patient, and the EMR sends the same request again later (the API's
503). One that refuses the lookup (a token or URL setting) is a PluginError. A patient the server
does not have is None, so the next directory plugin may answer; one it has whom the chart refuses
(deceased, inactive, merges leading to no chart in use) raises :class:`emrcomm.RecipientRefused`,
and the host blocks the request with RECIPIENT_REFUSED and the reason.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any
from urllib.parse import parse_qsl, quote

import emrcomm
from emrcomm import PluginError, PluginUnavailable, settings_schema
from emrcomm.fhir import is_patient_link
from emrcomm.fhir.patients import (
    MAX_MATCHES,
    RecipientRefused,
    merged_charts,
    one_chart_in_use,
    recipient_from_fhir,
)
from emrcomm.fhir.regions import DEFAULT_REGION, country_code
from emrcomm_fhirserver.client import ServerRefused, ServerUnavailable
from emrcomm_fhirserver.filer import client_from

log = logging.getLogger("emrcomm.plugin.fhir-directory")


class DirectoryPlugin:
    """Patients and their communication consents, read from a FHIR server at each request."""

    settings_schema = settings_schema("emrcomm_fhirserver", "directory.schema.json")

    def __init__(self, context: emrcomm.PluginContext) -> None:
        self.context = context
        self.name = context.name
        self.client = client_from(context)
        self.cache_seconds = float(context.settings.get("cache_seconds", 0))
        self._cache: dict[str, tuple[float, emrcomm.Recipient | RecipientRefused | None]] = {}
        jurisdiction = context.clinic.jurisdiction or ""
        self.default_region = country_code(jurisdiction.split("-")[0]) or DEFAULT_REGION

    @emrcomm.hookimpl
    def emrcomm_probe(self) -> list[emrcomm.Probe]:
        """``emrcomm doctor``: the server answers R4 and takes the token (a Patient search)."""
        from emrcomm_fhirserver.probes import probe

        return [probe(self.client, self.name, "Patient", "patients")]

    @emrcomm.hookimpl
    def emrcomm_find_recipient(self, patient_ref: str, request: emrcomm.Request) -> emrcomm.Recipient | None:
        ref = patient_ref.strip()
        cached = self._cache.get(ref)
        if cached is not None and cached[0] > time.monotonic():
            if isinstance(cached[1], RecipientRefused):
                raise RecipientRefused(str(cached[1]))
            return cached[1]
        try:
            recipient = self._find(ref)
        except RecipientRefused as exc:
            # Known, and the chart says not to message them: the host blocks the request with
            # this reason (RECIPIENT_REFUSED), not as a patient nobody knows.
            if self.cache_seconds > 0:
                self._cache[ref] = (time.monotonic() + self.cache_seconds, exc)
            raise RecipientRefused(str(exc)) from None
        except ServerUnavailable as exc:
            raise PluginUnavailable(
                f"plugin {self.name!r}: the FHIR server {self.client.base_url} is unavailable ({exc}) while "
                f"looking up a patient for request {request.id}: nothing was sent or filed; send the request "
                "again when the server is back", retry_after=exc.retry_after,
            ) from None
        except ServerRefused as exc:
            hint = f" (check plugins.{self.name}.token)" if exc.status in (401, 403) else ""
            if 300 <= exc.status < 400:
                hint = f" ({exc.detail}: check plugins.{self.name}.base_url)"
            raise PluginError(f"plugin {self.name!r}: the FHIR server {self.client.base_url} refused the patient "
                              f"lookup for request {request.id}: HTTP {exc.status}{hint}") from None
        if self.cache_seconds > 0:
            self._cache[ref] = (time.monotonic() + self.cache_seconds, recipient)
        return recipient

    def _find(self, ref: str) -> emrcomm.Recipient | None:
        """The Recipient ``ref`` names on the server (its merges followed), or None.

        :raises RecipientRefused: the chart says the patient must not be messaged.
        """
        matches = self.find_patients(ref)
        chosen = one_chart_in_use(matches, self._read_link)
        if chosen is None:
            if len(matches) > 1:
                log.warning("an identifier lookup matches more than one patient on %s; nobody is chosen",
                            self.client.base_url)
            return None
        patient, replaced = chosen
        # The Consents of every chart merged into the one in use count as its own: a patient who
        # refused SMS under the old chart stays refused. Any of them unread is the whole lookup
        # unanswered (ServerUnavailable: PluginUnavailable), never a check without it.
        charts = dict.fromkeys((f"Patient/{patient['id']}", *merged_charts(patient, replaced)))
        consents = [c for chart in charts for c in self.client.search("Consent", {"patient": chart})]
        return recipient_from_fhir(patient, consents, now=self.context.clock(),
                                   default_region=self.default_region, replaces=replaced)

    def find_patients(self, ref: str) -> list[dict[str, Any]]:
        """The Patients ``ref`` names on the server: the one it reads, or what its identifier
        search matches (at most MAX_MATCHES + 1: more than MAX_MATCHES is ambiguous); [] for none."""
        if ref.startswith("Patient?"):
            params = parse_qsl(ref[len("Patient?"):], keep_blank_values=True)
            tokens = [value for key, value in params if key == "identifier"]
            if len(tokens) != 1 or len(params) != 1:
                # Not even as a digest: what it carries may be a health number (the host's own
                # log line names the request).
                log.warning("a patient reference Patient?… with %d parameter(s): only Patient?identifier=system|value "
                            "is supported", len(params))
                return []
            return self._by_identifier(tokens[0])
        if ref.startswith("Patient/"):
            pid = ref[len("Patient/"):].split("/_history/")[0].strip("/")
            if not is_patient_link(f"Patient/{pid}"):
                return []  # "..", a query or a fragment: no patient's id, and a URL of another meaning
            found = self.client.read("Patient", quote(pid, safe=""))
            return [] if found is None else [found]
        if "|" in ref:
            return self._by_identifier(ref)
        return []

    def _read_link(self, reference: str) -> dict[str, Any] | None:
        """The Patient a merge link names on this server (``Patient/<id>``, or that path under
        its base_url), or None."""
        base = self.client.base_url.rstrip("/") + "/"
        path = reference[len(base):] if reference.startswith(base) else reference
        found = self.find_patients(path) if path.startswith("Patient/") else []  # read as a request's reference is
        return found[0] if found else None

    def _by_identifier(self, token: str) -> list[dict[str, Any]]:
        # One more than may name one patient, so that more reads as ambiguous without reading them all.
        most = MAX_MATCHES + 1
        return list(itertools.islice(self.client.search("Patient", {"identifier": token}, page_size=most), most))

    def close(self) -> None:
        self.client.close()
