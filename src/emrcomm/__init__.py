"""emrcomm: the host an EMR embeds to message patients safely.

The public surface is what this module exports, plus the modules a plugin may use:
``emrcomm.fhir`` (the FHIR edges: requests in, Communications out, Patients and Consents read),
``emrcomm.rules`` (the rule catalogue and ``finding``), ``emrcomm.storage`` (the protocols, and
``Migration`` for a plugin's own tables), ``emrcomm.web`` (pages and routes under ``serve``),
``emrcomm.segments`` (SMS segments), ``emrcomm.testing`` (fixtures and the conformance kit),
``emrcomm.deadline`` (an overall deadline for one exchange with a server, which per-read socket
timeouts are not).
Everything else may change between releases; a CI check keeps plugins off it.
"""

from __future__ import annotations

from emrcomm.delivery import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    redact,
    retry_after,
)
from emrcomm.errors import (
    ConfigError,
    EmrcommError,
    PluginError,
    PluginUnavailable,
    ProbeFailed,
    RecipientRefused,
    RenderError,
    RequestConflict,
    RequestError,
    SubjectMismatch,
)
from emrcomm.model import (
    Attachment,
    Candidate,
    Category,
    Channel,
    ConsentGrant,
    ContactPoint,
    DeliveryUpdate,
    Finding,
    Identifier,
    Message,
    Outcome,
    Plan,
    Purpose,
    Receipt,
    Recipient,
    Record,
    Request,
    Route,
    SendingWindow,
    Sensitivity,
    Severity,
    Status,
)
from emrcomm.pipeline.records import record_id
from emrcomm.plugin import hookimpl
from emrcomm.plugin.context import Clinic, PluginContext
from emrcomm.plugin.contract import (
    Closable,
    Command,
    Delivery,
    KeepingTransport,
    LinkingTransport,
    Preparable,
    Probe,
    Startable,
    Transport,
    print_result,
    settings_schema,
)
from emrcomm.rules import finding
from emrcomm.segments import count_segments
from emrcomm.storage.database import Migration

__version__ = "0.2.0"


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
    "Closable",
    "Command",
    "ConfigError",
    "ConsentGrant",
    "ContactPoint",
    "Delivery",
    "DeliveryError",
    "DeliveryUpdate",
    "EmrcommError",
    "Finding",
    "Host",
    "Identifier",
    "KeepingTransport",
    "LinkingTransport",
    "Message",
    "Migration",
    "Outcome",
    "PermanentDeliveryError",
    "Plan",
    "PluginContext",
    "PluginError",
    "PluginUnavailable",
    "Preparable",
    "Probe",
    "ProbeFailed",
    "Purpose",
    "Receipt",
    "Recipient",
    "RecipientRefused",
    "Record",
    "RenderError",
    "Request",
    "RequestConflict",
    "RequestError",
    "Route",
    "SendingWindow",
    "Sensitivity",
    "Severity",
    "Startable",
    "Status",
    "SubjectMismatch",
    "TransientDeliveryError",
    "Transport",
    "__version__",
    "count_segments",
    "finding",
    "hookimpl",
    "print_result",
    "record_id",
    "redact",
    "retry_after",
    "settings_schema",
]
