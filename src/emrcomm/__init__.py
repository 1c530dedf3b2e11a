"""emrcomm: the host an EMR embeds to message patients safely.

The public surface is what this module exports; everything else may change between releases.
"""

from __future__ import annotations

import pluggy

from emrcomm.context import Clinic, PluginContext
from emrcomm.delivery import PermanentDeliveryError, TransientDeliveryError
from emrcomm.errors import ConfigError, EmrcommError, PluginError, RenderError, RequestError
from emrcomm.model import (
    Attachment,
    Candidate,
    Category,
    Channel,
    ConsentGrant,
    ContactPoint,
    DeliveryUpdate,
    Finding,
    Message,
    Outcome,
    Plan,
    Purpose,
    Receipt,
    Recipient,
    Record,
    Request,
    Route,
    Sensitivity,
    Severity,
    Status,
    Transport,
)

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("emrcomm")
"""Mark a plugin function or method as a hook implementation: ``@hookimpl``."""


def __getattr__(name: str) -> object:
    # Host pulls in the loader, config and FHIR code; import it only when asked for.
    if name == "Host":
        from emrcomm.host import Host

        return Host
    raise AttributeError(f"module 'emrcomm' has no attribute {name!r}")


__all__ = [
    "Attachment",
    "Candidate",
    "Category",
    "Channel",
    "Clinic",
    "ConfigError",
    "ConsentGrant",
    "ContactPoint",
    "DeliveryUpdate",
    "EmrcommError",
    "Finding",
    "Host",
    "Message",
    "Outcome",
    "PermanentDeliveryError",
    "Plan",
    "PluginContext",
    "PluginError",
    "Purpose",
    "Receipt",
    "Recipient",
    "Record",
    "RenderError",
    "Request",
    "RequestError",
    "Route",
    "Sensitivity",
    "Severity",
    "Status",
    "TransientDeliveryError",
    "Transport",
    "__version__",
    "hookimpl",
]
