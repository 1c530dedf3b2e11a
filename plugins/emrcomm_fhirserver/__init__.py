"""emrcomm built-in plugins for a FHIR R4 server: ``fhir-records`` files every record there
(durable queue, conditional create, transaction Bundles) and ``fhir-directory`` reads Patients
and their Consents from it. Both are opt-in: they run only when the config names them.

Settings (``[plugins.fhir-records]``, ``[plugins.fhir-directory]``)::

    base_url = "https://fhir.example.org/r4"   # https (plain http only to this machine)
    token = { env = "EMRCOMM_FHIR_TOKEN" }      # bearer token, from the environment or a file

See docs/records.md and docs/configuration.md for the rest.
"""

from __future__ import annotations

from emrcomm_fhirserver.directory import DirectoryPlugin
from emrcomm_fhirserver.filer import FlushReport, RecordsPlugin

__all__ = ["DirectoryPlugin", "FlushReport", "RecordsPlugin"]
