"""What a plugin receives when the host creates it: its settings, the clinic, the storage, a clock.

A plugin that is a class is instantiated as ``Plugin(context)``; a plugin that is a module is
registered as it is and gets no context.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from attrs import field, frozen

from emrcomm.clock import utcnow
from emrcomm.errors import ConfigError

if TYPE_CHECKING:
    from emrcomm.storage import Storage


@frozen
class Clinic:
    """Who the messages come from, from the ``[clinic]`` table of the config."""

    name: str
    phone: str = ""
    email: str = ""
    signature: str = ""
    address: str = ""
    time_zones: tuple[str, ...] = ("America/Toronto",)
    link_domains: tuple[str, ...] = ()
    portal_url: str = ""
    jurisdiction: str = "CA-ON"
    turnaround: str = ""
    us_healthcare_exemption: bool = False


@frozen
class PluginContext:
    """Everything a plugin may use from the host. Keep a reference; do not reach further."""

    name: str
    settings: Mapping[str, Any]
    clinic: Clinic
    storage: Storage
    base_dir: Path
    clock: Callable[[], dt.datetime] = utcnow
    rule_config: Mapping[str, Any] = field(factory=dict)
    # The host only answers questions (``emrcomm check``): create no file, write nothing.
    read_only: bool = False

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger(f"emrcomm.plugin.{self.name}")

    def path(self, value: str) -> Path:
        """A path from the settings, relative to the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def secret(self, key: str) -> str | None:
        """Resolve the secret reference in ``settings[key]`` (``{env = ...}`` or ``{file = ...}``).

        Returns None when the setting is absent; raises ConfigError when the reference points
        at nothing, naming the setting and the variable or file.
        """
        ref = self.settings.get(key)
        if ref is None:
            return None
        where = f"plugins.{self.name}.{key}"
        if "env" in ref:
            value = os.environ.get(ref["env"])
            if value is None:
                raise ConfigError(f"{where}: environment variable {ref['env']} is not set")
            return value
        path = self.path(ref["file"])
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read secret file {path}: {exc.strerror}") from None
