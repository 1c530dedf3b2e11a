"""Essential plugin: files every record in the embedded store as a FHIR R4 Communication.

Filing is an upsert on the record id, so filing again (in-progress, then completed) updates
the same Communication and a retry never creates a second one.
"""

from __future__ import annotations

from typing import Any

from emrcomm import DeliveryUpdate, PluginContext, Record, hookimpl
from emrcomm.fhir import RULE_SYSTEM, fhir_datetime
from emrcomm.fhir import communication as to_communication


class Plugin:
    """The built-in chart: ``emrcomm records`` reads what this plugin files."""

    settings_schema = None

    def __init__(self, context: PluginContext) -> None:
        self.context = context

    @hookimpl
    def emrcomm_file_record(self, record: Record) -> None:
        self.context.store.file_record(
            id=record.id,
            request_id=record.request.id,
            patient=record.request.patient_ref,
            status=record.status,
            channel=record.channel,
            category=record.request.category.value,
            recorded=record.recorded or self.context.clock(),
            resource=to_communication(record),
        )

    @hookimpl
    def emrcomm_delivery_update(self, update: DeliveryUpdate) -> None:
        store = self.context.store
        record_id = update.record_id
        if record_id is None and update.channel and update.provider_id:
            record_id = store.record_for_provider(update.channel, update.provider_id)
        if record_id is None:
            return
        resource = store.get_record(record_id)
        if resource is None:
            return
        changed = _apply(resource, update)
        if changed:
            meta = store.record_meta(record_id)
            store.file_record(
                id=record_id, request_id=meta["request_id"], patient=meta["patient"],
                status=resource["status"], channel=meta["channel"], category=meta["category"],
                recorded=self.context.clock(), resource=resource,
            )


def _apply(resource: dict[str, Any], update: DeliveryUpdate) -> bool:
    when = fhir_datetime(update.at)
    notes = resource.setdefault("note", [])
    if update.kind == "delivered":
        notes.append({"text": f"delivered {when}"})
    elif update.kind == "failed":
        resource["status"] = "not-done"
        resource["statusReason"] = {
            "coding": [{"system": RULE_SYSTEM, "code": "DELIVERY_FAILED"}],
            "text": f"the provider reported a failure: {update.detail or 'no detail'}",
        }
    elif update.kind == "read":
        resource["received"] = when
    else:
        return False
    return True
