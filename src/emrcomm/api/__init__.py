"""The FHIR R4 REST API under ``emrcomm serve`` (``/fhir``), so that an EMR in any language can
send requests, read what happened, record consents and hear of changes (docs/api.md).

Modules, one job each: ``routes`` (the handlers), ``answers`` (a decided request as FHIR, and
its status code), ``outcome`` (OperationOutcome), ``capability`` (CapabilityStatement, SMART
configuration), ``auth`` / ``clients`` / ``scopes`` (SMART Backend Services), ``search``
(Communication search), ``consent`` (Consent intake), ``subscriptions`` / ``notify`` (rest-hook
Subscriptions), ``schema`` (its tables), ``commands`` (``emrcomm clients``, ``emrcomm notify``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from emrcomm.web import WebContext

PREFIX = "/fhir"


def routes(web: WebContext) -> Sequence[BaseRoute]:
    """The web section: the API mounted at ``/fhir`` (nothing when ``[api] enabled = false``),
    and, unless ``[api] notify = false``, the thread that sends Subscription notifications."""
    from starlette.routing import Mount

    from emrcomm.api.notify import Notifier
    from emrcomm.api.routes import build
    from emrcomm.api.settings import ApiSettings

    settings = ApiSettings.from_config(web.host.config.raw)
    if not settings.enabled:
        return []
    app, _ = build(web.host, settings)
    if settings.notify and not web.host.read_only:
        Notifier(web.host, settings).start()
    return [Mount(PREFIX, app=app)]
