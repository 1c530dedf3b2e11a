"""``[api]`` in the config: the FHIR API's settings, each with a default (docs/api.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen


@frozen
class ApiSettings:
    enabled: bool = True
    base_url: str | None = None  # the public base (https://host/fhir); None: taken from each request
    token_seconds: int = 300
    page_size: int = 50
    batch_entries: int = 5000
    notify: bool = True
    notify_poll_seconds: float = 2.0
    notify_max_attempts: int = 10
    notify_backoff_base: float = 5.0
    notify_backoff_cap: float = 3600.0
    notify_timeout: float = 10.0
    allow_http_endpoints: bool = False

    @classmethod
    def from_config(cls, raw: Mapping[str, Any]) -> ApiSettings:
        """From the config's ``[api]`` table (already checked against the config schema)."""
        return cls(**dict(raw.get("api", {})))
