"""The conformance kit (emrcomm.testing.conformance) over every built-in channel: sms (the Twilio
transport, against a provider that answers as Twilio does), email (SMTP with STARTTLS and AUTH)
and the portal. The tutorial's plugin runs the same kit in tests/test_tutorial.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance_providers import ACCOUNT_SID, AUTH_TOKEN, PortalProvider, SmtpProvider, TwilioProvider
from emrcomm.testing.conformance import ChannelConformance
from mailservers import USERNAME, CertificateAuthority

SMTP_PASSWORD = "conformance-smtp-password"


class TestSmsChannel(ChannelConformance):
    plugin = "emrcomm_sms:Plugin"
    name = "sms"
    channel = "sms"
    address = "+16135550123"
    secrets = ("twilio.auth_token",)

    @pytest.fixture
    def provider(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[TwilioProvider]:
        monkeypatch.setenv("CONFORMANCE_TWILIO_TOKEN", AUTH_TOKEN)
        server = TwilioProvider()
        yield server
        server.stop()

    def settings(self, provider: Any) -> dict[str, Any]:
        return {"transport": "twilio", "from": "+16135550100", "read_timeout": 1, "rate_per_second": 100,
                "twilio": {"account_sid": ACCOUNT_SID, "auth_token": {"env": "CONFORMANCE_TWILIO_TOKEN"},
                           "base_url": provider.url}}


class TestEmailChannel(ChannelConformance):
    plugin = "emrcomm_email:Plugin"
    name = "email"
    channel = "email"
    address = "alex.tremblay@example.org"
    secrets = ("smtp.password",)

    @pytest.fixture
    def provider(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpProvider]:
        monkeypatch.setenv("CONFORMANCE_SMTP_PASSWORD", SMTP_PASSWORD)
        server = SmtpProvider(CertificateAuthority(tmp_path / "ca"), SMTP_PASSWORD)
        yield server
        server.stop()

    def settings(self, provider: Any) -> dict[str, Any]:
        return {"transport": "smtp", "from": "Riverside Family Health <noreply@riverside.example>",
                "smtp": {"host": "localhost", "port": provider.server.port, "timeout": 1, "username": USERNAME,
                         "password": {"env": "CONFORMANCE_SMTP_PASSWORD"}, "ca_file": str(provider.ca.ca_file)}}


class TestPortalChannel(ChannelConformance):
    plugin = "emrcomm_portal:Plugin"
    name = "portal"
    channel = "portal"
    address = "Patient/conformance-1"
    failures = ()  # it keeps messages itself: there is no provider to be away

    @pytest.fixture
    def provider(self, tmp_path: Path) -> PortalProvider:
        return PortalProvider(tmp_path / "emrcomm.sqlite")

    def settings(self, provider: Any) -> dict[str, Any]:
        return {"keyring": "keyring.json"}
