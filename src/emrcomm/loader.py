"""Finding, loading and ordering plugins: entry points in group ``emrcomm``, ordered by config.

Built-ins are entry points like any third party's. pluggy calls the last registered first, so
plugins are registered in reverse: the call order of every hook is the config order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from typing import Any

import pluggy
from attrs import frozen

from emrcomm import hookspecs
from emrcomm.config import Config, check_secrets, validate
from emrcomm.context import PluginContext
from emrcomm.errors import ConfigError, PluginError

log = logging.getLogger("emrcomm.loader")

GROUP = "emrcomm"

# The built-ins in their default call order (used when the config gives no plugins.order).
BUILTIN_ORDER: tuple[str, ...] = (
    "directory",
    "templates",
    "content",
    "routing",
    "consent",
    "optout",
    "policy",
    "sms",
    "email",
    "portal",
)

# Built-ins that run only when the config names them (in plugins.order or with a [plugins.NAME]
# table): they talk to a server the clinic must name. Without plugins.order they follow the
# built-ins above, in this order.
OPTIONAL_BUILTINS: tuple[str, ...] = ("fhir-directory", "fhir-records")

# Plugins that cannot be switched off: without them a message could go without consent, or to
# a patient who said STOP. (The chart is the host's own: every message's record and events are
# kept in its storage, whatever plugins run.)
ESSENTIAL: tuple[str, ...] = ("consent", "optout")
# Names that were plugins once and are now part of the host: a config naming one is told so.
FOLDED = {"records": "the embedded chart is now kept by the host itself, always: remove it from the config"}

RESERVED = frozenset({"order", "disable"})


@frozen
class LoadedPlugin:
    """An active plugin: its name, where it came from, and the object registered with pluggy."""

    name: str
    value: str
    distribution: str
    plugin: Any
    builtin: bool


def discover() -> dict[str, metadata.EntryPoint]:
    """Every installed entry point of the group, by name; two different ones with a name conflict."""
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=GROUP):
        other = found.get(ep.name)
        if other is not None and other.value != ep.value:
            raise PluginError(
                f"Conflicting plugins found for {ep.name!r}: {other.value} ({_dist(other)}) "
                f"and {ep.value} ({_dist(ep)}); uninstall one of them"
            )
        found.setdefault(ep.name, ep)
    return found


def _dist(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"


def active_names(config: Config, available: Sequence[str]) -> list[str]:
    """The plugins to run, in call order, after checking every name the config uses."""
    known = set(available)
    choices = ", ".join(sorted(known))
    where = config.source

    def check_known(name: str, path: str) -> None:
        if name in FOLDED and name not in known:
            raise ConfigError(f"{where}: {path}: plugin {name!r} is no longer a plugin: {FOLDED[name]}")
        if name in RESERVED or name not in known:
            raise ConfigError(f"{where}: {path}: unknown plugin {name!r}; choose one of: {choices}")

    for name in config.plugin_order or ():
        check_known(name, "plugins.order")
    for name in config.plugin_disable:
        check_known(name, "plugins.disable")
    for name in config.plugin_settings:
        check_known(name, f"plugins.{name}")

    essential_off = [n for n in config.plugin_disable if n in ESSENTIAL]
    if essential_off:
        raise ConfigError(
            f"{where}: plugins.disable: {', '.join(repr(n) for n in essential_off)} cannot be disabled: "
            f"the essential plugins ({', '.join(ESSENTIAL)}) keep consent, opt-outs and records in force"
        )
    if config.plugin_order is not None:
        missing = [n for n in ESSENTIAL if n not in config.plugin_order]
        if missing:
            raise ConfigError(
                f"{where}: plugins.order leaves out essential plugin(s) {', '.join(missing)}; "
                f"essential plugins ({', '.join(ESSENTIAL)}) cannot be disabled: add them to the list"
            )
        order = list(config.plugin_order)
    else:
        builtin = [n for n in BUILTIN_ORDER if n in known]
        optional = [n for n in OPTIONAL_BUILTINS if n in known and n in config.plugin_settings]
        order = builtin + optional + sorted(known - set(BUILTIN_ORDER) - set(OPTIONAL_BUILTINS))
    return [n for n in order if n not in config.plugin_disable]


def _is_configured(name: str, config: Config) -> bool:
    return (
        name in BUILTIN_ORDER
        or name in (config.plugin_order or ())
        or name in config.plugin_settings
    )


def load_plugins(
    pm: pluggy.PluginManager,
    config: Config,
    make_context: Callable[[str, Mapping[str, Any]], PluginContext],
    entry_points: Mapping[str, metadata.EntryPoint] | None = None,
) -> list[LoadedPlugin]:
    """Import, configure and register the active plugins; return them in call order.

    A configured plugin (named in the config, or a built-in) that fails stops start-up with its
    name and error. An unconfigured third-party plugin that fails is logged and skipped.
    """
    eps = dict(entry_points) if entry_points is not None else discover()
    names = active_names(config, list(eps))
    loaded: list[LoadedPlugin] = []
    for name in names:
        ep = eps[name]
        strict = _is_configured(name, config)
        try:
            obj = ep.load()
        except Exception as exc:
            if strict:
                raise PluginError(
                    f"plugin {name!r} ({ep.value}, from {_dist(ep)}) failed to import: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            log.warning("plugin %r (%s) failed to import and is skipped: %s: %s",
                        name, ep.value, type(exc).__name__, exc)
            continue
        settings = _checked_settings(name, obj, config)
        try:
            plugin = obj(make_context(name, settings)) if isinstance(obj, type) else obj
        except (ConfigError, PluginError):
            raise
        except Exception as exc:
            if strict:
                raise PluginError(
                    f"plugin {name!r} ({ep.value}) failed to start: {type(exc).__name__}: {exc}"
                ) from exc
            log.warning("plugin %r failed to start and is skipped: %s", name, exc)
            continue
        dist = getattr(ep, "dist", None)
        loaded.append(
            LoadedPlugin(
                name=name,
                value=ep.value,
                distribution=dist.name if dist is not None else "",
                plugin=plugin,
                builtin=(name in BUILTIN_ORDER and ep.value.startswith(f"emrcomm_{name}"))
                or (name in OPTIONAL_BUILTINS and ep.value.startswith("emrcomm_fhirserver")),
            )
        )
    for item in reversed(loaded):
        try:
            pm.register(item.plugin, name=item.name)
        except ValueError as exc:
            raise PluginError(f"plugin {item.name!r} could not be registered: {exc}") from exc
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {item.name!r} breaks the hook contract: {exc}") from exc
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{exc} (hooks must be named after a spec in emrcomm.hookspecs)") from exc
    return loaded


def _checked_settings(name: str, obj: Any, config: Config) -> Mapping[str, Any]:
    settings = config.plugin_settings.get(name, {})
    schema = getattr(obj, "settings_schema", None)
    if schema is None:
        if settings:
            raise ConfigError(f"{config.source}: plugins.{name}: plugin {name!r} takes no settings")
        return settings
    check_secrets(settings, config.source, f"plugins.{name}")
    validate(settings, schema, config.source, root=f"plugins.{name}")
    return settings


def new_plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.NAME)
    pm.add_hookspecs(hookspecs)
    return pm
