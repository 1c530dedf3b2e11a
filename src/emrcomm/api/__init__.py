"""The FHIR R4 REST API under ``emrcomm serve`` (``/fhir``), so that an EMR in any language can
send requests, read what happened, record consents and hear of changes (docs/api.md).

Modules, one job each: ``handlers`` (the routes and their handlers), ``answers`` (a decided request as FHIR, and
its status code), ``outcome`` (OperationOutcome), ``capability`` (CapabilityStatement, SMART
configuration), ``auth`` / ``clients`` / ``scopes`` (SMART Backend Services), ``search``
(Communication search, CommunicationRequest search by identifier), ``consent`` (Consent intake),
``subscriptions`` / ``notify`` (rest-hook Subscriptions), ``schema`` (its tables), ``commands``
(``emrcomm clients``, ``emrcomm notify``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from emrcomm.host import Host

PREFIX = "/fhir"


def routes(host: Host) -> Sequence[BaseRoute]:
    """The web section: the API mounted at ``/fhir`` (nothing when ``[api] enabled = false``),
    and, unless ``[api] notify = false``, the thread that sends Subscription notifications."""
    from starlette.routing import Mount, Route

    from emrcomm.api.handlers import build
    from emrcomm.api.notify import Notifier
    from emrcomm.api.settings import ApiSettings

    settings = ApiSettings.from_config(host.config.raw)
    if not settings.enabled:
        return []
    app, api = build(host, settings)
    if settings.notify and not host.read_only:
        Notifier(host, settings).start()
    mount = Mount(PREFIX, app=app)
    # Every path under /fhir is the API's, even one with a line break in it (which Starlette's
    # pattern would leave to the portal's HTML 404): the answer is always an OperationOutcome.
    mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
    return [Route(PREFIX, api.root()), mount]
