"""Helpers and pytest fixtures for testing a plugin without an EMR.

Use in a plugin's own tests::

    from emrcomm.testing import make_context, make_recipient

    def test_my_validator(tmp_path):
        plugin = MyPlugin(make_context("mine", {"threshold": 3}, tmp_path))
        ...

or enable the fixtures with ``pytest_plugins = ["emrcomm.testing"]`` and take ``emrcomm_host``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from emrcomm.model import ConsentGrant, ContactPoint, Purpose, Recipient
from emrcomm.plugin.context import Clinic, PluginContext
from emrcomm.storage import Storage, open_sqlite

TEST_CLINIC = Clinic(
    name="Riverside Family Health",
    phone="+1 613 555 0100",
    email="info@riverside.example",
    signature="Riverside Family Health",
    time_zones=("America/Toronto",),
    link_domains=("portal.riverside.example",),
    portal_url="https://portal.riverside.example",
    turnaround="two business days",
    turnaround_fr="deux jours ouvrables",
)

# A fixed instant (10:00 in Toronto) so tests never depend on the hour they run at.
TEST_NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)


@attrs.frozen
class FixedClock:
    """A clock that always says ``now``: ``Host(config, clock=FixedClock(TEST_NOW))``. Unlike a
    lambda it can be pickled, so a host in another process can have it too."""

    now: dt.datetime = TEST_NOW

    def __call__(self) -> dt.datetime:
        return self.now


def make_context(
    name: str,
    settings: Mapping[str, Any] | None,
    base_dir: Path,
    *,
    clinic: Clinic = TEST_CLINIC,
    clock: Callable[[], dt.datetime] = lambda: TEST_NOW,
    storage: Storage | None = None,
) -> PluginContext:
    """A PluginContext backed by a fresh SQLite store in ``base_dir``."""
    return PluginContext(
        name=name,
        settings=dict(settings or {}),
        clinic=clinic,
        storage=storage or open_sqlite(base_dir / "emrcomm.sqlite"),
        base_dir=base_dir,
        clock=clock,
    )


def make_recipient(
    *,
    patient_ref: str = "Patient/test-1",
    mobile: str | None = "+16135550123",
    email: str | None = "pat@example.org",
    language: str = "en",
    jurisdiction: str | None = "CA-ON",
    time_zone: str | None = "America/Toronto",
    purposes: tuple[Purpose, ...] = (Purpose.CLINICAL,),
    **extra: Any,
) -> Recipient:
    """A patient who consented to SMS and email for ``purposes``, unless told otherwise."""
    points = []
    consents = []
    if mobile:
        points.append(ContactPoint("sms", mobile, use="mobile", rank=1, verified=True))
        consents += [ConsentGrant("sms", p, address=mobile, granted=TEST_NOW - dt.timedelta(days=30)) for p in purposes]
    if email:
        points.append(ContactPoint("email", email, use="home", rank=2, verified=True))
        consents += [ConsentGrant("email", p, address=email, granted=TEST_NOW - dt.timedelta(days=30)) for p in purposes]
    consents += [ConsentGrant("portal", p) for p in purposes]
    fields: dict[str, Any] = {
        "patient_ref": patient_ref,
        "given_name": "Alex",
        "family_name": "Tremblay",
        "contact_points": tuple(points),
        "consents": tuple(consents),
        "language": language,
        "jurisdiction": jurisdiction,
        "time_zone": time_zone,
    }
    fields.update(extra)
    return Recipient(**fields)


try:  # pytest fixtures, for plugin authors who enable this module as a pytest plugin
    import pytest

    @pytest.fixture
    def emrcomm_host(tmp_path: Path) -> Iterator[Any]:
        """A Host on the embedded defaults, with its data in a temporary folder."""
        from emrcomm.host import Host

        host = Host.from_config(None, base_dir=tmp_path, clock=lambda: TEST_NOW)
        try:
            yield host
        finally:
            host.close()

except ImportError:  # pragma: no cover - pytest is a test-time dependency only
    pass
