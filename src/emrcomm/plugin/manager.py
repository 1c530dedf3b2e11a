"""The plugin manager: finds plugins (entry points in group ``emrcomm``), loads them in config
order, and is the one place the host calls hooks from, each call typed.

Built-ins are entry points like any third party's. pluggy calls the last registered first, so
plugins are registered in reverse: the call order of every hook is the config order. Built-ins
run unless the config disables them; a third party's plugin runs when the config names it.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from importlib import metadata
from types import MappingProxyType
from typing import Any

import attrs
import pluggy
from attrs import frozen

from emrcomm.api.schema import OWNER as API_OWNER
from emrcomm.config import Config, check_secrets, resolve_secret, validate
from emrcomm.errors import (
    ConfigError,
    EmrcommError,
    PluginError,
    PluginUnavailable,
    RecipientRefused,
    RenderError,
)
from emrcomm.model import (
    Candidate,
    Channel,
    DeliveryUpdate,
    Finding,
    Message,
    Plan,
    Recipient,
    Record,
    Request,
    Route,
    SendingWindow,
)
from emrcomm.plugin import NAME, spec
from emrcomm.plugin.context import HostServices, PluginContext, references
from emrcomm.plugin.contract import Closable, Command, Preparable, Probe, Startable, TemplateCatalog
from emrcomm.rules import finding
from emrcomm.storage.database import CORE, Migration

log = logging.getLogger("emrcomm.plugins")

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

# Plugins that cannot be switched off: without them a message could go without consent, to a
# patient who said STOP, with clinical content on SMS or plain email (content finds it, policy
# keeps it off), or at night. A clinic tunes their rules one by one ([rules]), never all at once.
# (The chart is the host's own: every message's record and events are kept in its storage,
# whatever plugins run.)
ESSENTIAL: tuple[str, ...] = ("content", "consent", "optout", "policy")
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
    context: PluginContext | None = None  # None for a plugin that is a module


def discover() -> dict[str, metadata.EntryPoint]:
    """Every installed entry point of the group, by name; two different ones with a name conflict.

    Read again only when a folder of ``sys.path`` has changed: installing or removing a
    distribution adds or removes its ``.dist-info`` folder there. (Reading every distribution's
    metadata took ~8 ms, twice for each host a process starts.)"""
    return dict(_discover(_path_state()))


def _path_state() -> tuple[tuple[str, int | None], ...]:
    """``sys.path``, each folder with the time it last changed."""
    state: list[tuple[str, int | None]] = []
    for entry in sys.path:
        try:
            state.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            state.append((entry, None))
    return tuple(state)


@functools.lru_cache(maxsize=4)
def _discover(path_state: tuple[tuple[str, int | None], ...]) -> Mapping[str, metadata.EntryPoint]:
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=GROUP):
        other = found.get(ep.name)
        if other is not None and other.value != ep.value:
            raise PluginError(
                f"Conflicting plugins found for {ep.name!r}: {other.value} ({_dist(other)}) "
                f"and {ep.value} ({_dist(ep)}); uninstall one of them"
            )
        found.setdefault(ep.name, ep)
    return MappingProxyType(found)


def installed(entry_points: Mapping[str, metadata.EntryPoint] | None = None) -> dict[str, metadata.EntryPoint]:
    """``entry_points`` when given (tests, an embedding EMR), else the ones installed (:func:`discover`)."""
    return dict(entry_points) if entry_points is not None else discover()


def check_secret_references(config: Config, entry_points: Mapping[str, metadata.EntryPoint]) -> None:
    """Resolve each secret reference in the config's tables of the plugins that run, before any
    plugin (or the store it needs) is opened, raising ConfigError for the first that is not set:
    a host that may send checks them first, so that a credential not set leaves no database,
    audit key or key ring half made."""
    for name in active_names(config, list(entry_points)):
        for where, ref in references(config.plugin_settings.get(name, {}), f"plugins.{name}"):
            resolve_secret(ref, where, config.base_dir)

@functools.lru_cache(maxsize=256)
def _distribution(ep: metadata.EntryPoint) -> str:
    """The name of the distribution ``ep`` is from ('' when not known). Once a process: reading
    it parses the distribution's metadata, ~1 ms for each plugin of each host."""
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else ""


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
            f"the essential plugins ({', '.join(ESSENTIAL)}) keep consent, opt-outs, clinical content off "
            "insecure channels and the sending rules in force; to tune one rule, use [rules] (docs/configuration.md)"
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
        # An installed third party's plugin runs only once the clinic names it: installing a
        # package never changes what an existing configuration does.
        named = sorted(n for n in known - set(BUILTIN_ORDER) - set(OPTIONAL_BUILTINS) if n in config.plugin_settings)
        order = builtin + optional + named
    return [n for n in order if n not in config.plugin_disable]


def load_plugins(
    pm: pluggy.PluginManager,
    config: Config,
    make_context: Callable[[str, Mapping[str, Any]], PluginContext],
    entry_points: Mapping[str, metadata.EntryPoint] | None = None,
) -> list[LoadedPlugin]:
    """Import, configure and register the active plugins; return them in call order.

    Every active plugin is one the clinic runs (a built-in, or a plugin the config names), so one
    that fails to import or start stops start-up with its name and error; a plugin that is
    installed but not named is never imported.
    """
    eps = installed(entry_points)
    names = active_names(config, list(eps))
    loaded: list[LoadedPlugin] = []
    for name in names:
        ep = eps[name]
        try:
            obj = ep.load()
        except Exception as exc:
            raise PluginError(
                f"plugin {name!r} ({ep.value}, from {_dist(ep)}) failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        settings = _checked_settings(name, obj, config)
        context = make_context(name, settings) if isinstance(obj, type) else None
        if context is not None and not context.read_only:
            # A host that may send needs every credential: say so at start-up, not at the first
            # message. One that only reads never asks for them (plugins resolve them on use).
            problems = context.secret_problems()
            if problems:
                raise ConfigError(problems[0])
        try:
            plugin = obj(context) if context is not None else obj
        except ConfigError as exc:
            raise _in_file(exc, config.source) from None
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(f"plugin {name!r} ({ep.value}) failed to start: {type(exc).__name__}: {exc}") from exc
        loaded.append(
            LoadedPlugin(
                name=name,
                value=ep.value,
                distribution=_distribution(ep),
                plugin=plugin,
                builtin=(name in BUILTIN_ORDER and ep.value.startswith(f"emrcomm_{name}"))
                or (name in OPTIONAL_BUILTINS and ep.value.startswith("emrcomm_fhirserver")),
                context=context,
            )
        )
    for item in reversed(loaded):
        try:
            pm.register(item.plugin, name=item.name)
        except ValueError as exc:
            raise PluginError(f"plugin {item.name!r} could not be registered: {exc}") from exc
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {item.name!r} breaks the hook contract: {exc}") from exc
    for hook_name, caller in vars(pm.hook).items():  # check_pending's own error names the object, not the plugin
        if not caller.has_spec():
            for impl in caller.get_hookimpls():
                if not impl.optionalhook:
                    raise PluginError(f"plugin {impl.plugin_name!r} implements unknown hook {hook_name!r}: hooks "
                                      "must be named after a spec in emrcomm.plugin.spec (docs/hooks.md lists them)")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{exc} (hooks must be named after a spec in emrcomm.plugin.spec)") from exc
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


class _Pluggy(pluggy.PluginManager):
    def parse_hookimpl_opts(self, plugin: Any, name: str) -> pluggy.HookimplOpts | None:
        if name.startswith("__"):  # object's own names: never a hook (half of what a plugin has)
            return None
        return super().parse_hookimpl_opts(plugin, name)


def new_plugin_manager() -> pluggy.PluginManager:
    pm = _Pluggy(NAME)
    pm.add_hookspecs(spec)
    return pm


# Hooks the manager calls one implementation at a time, so that each answer is the plugin's
# own (a failing check is caught, named and turned into a closed door; a channel or a table is
# attributed to its plugin). A wrapper around them would never run: it is refused at load.
CALLED_ONE_BY_ONE = ("emrcomm_inspect", "emrcomm_validate", "emrcomm_file_record", "emrcomm_delivery_update",
                     "emrcomm_register_channels", "emrcomm_migrations", "emrcomm_web_routes", "emrcomm_cli_commands",
                     "emrcomm_probe")


class FilingFailed(Exception):
    """A filer raised: ``plugin`` names it; ``error`` is what it raised."""

    def __init__(self, plugin: str, error: BaseException) -> None:
        super().__init__(f"{plugin}: {type(error).__name__}")
        self.plugin = plugin
        self.error = error


class PluginManager:
    """The plugins of one host: loaded and registered in config order (``plugins``), their
    channels (``channels``), and every hook call, typed. The host calls no hook but through it.

    ``rules`` and ``text_limits`` are the config's severity changes and per-channel text limits,
    applied to what validators report.
    """

    def __init__(self, config: Config, make_context: Callable[[str, Mapping[str, Any]], PluginContext],
                 entry_points: Mapping[str, metadata.EntryPoint] | None = None) -> None:
        self.config = config
        self._pm = new_plugin_manager()
        self._callers: dict[tuple[str, int], Any] = {}
        self.plugins: list[LoadedPlugin] = load_plugins(self._pm, config, make_context, entry_points)
        self._refuse_wrappers()
        # Read-only: every planner and plugin is shown this one mapping, and none may add, drop or
        # re-declare a channel for the others (or raise the trust a clinic gave it).
        self.channels: Mapping[str, Channel] = MappingProxyType(self._collect_channels())

    def __iter__(self) -> Iterator[LoadedPlugin]:
        return iter(self.plugins)

    def __len__(self) -> int:
        return len(self.plugins)

    def get(self, name: str) -> Any:
        """The object of the active plugin ``name`` (None when it is not active)."""
        return next((p.plugin for p in self.plugins if p.name == name), None)

    # loading ---------------------------------------------------------------------------------------
    def _refuse_wrappers(self) -> None:
        for hook_name in CALLED_ONE_BY_ONE:
            for impl in getattr(self._pm.hook, hook_name).get_hookimpls():
                if impl.wrapper or impl.hookwrapper:
                    raise PluginError(
                        f"plugin {impl.plugin_name!r}: {hook_name} cannot be a wrapper; the host calls each "
                        "implementation of it on its own (a failing one is named and closes the door), so a "
                        "wrapper would never run. Wrappers may wrap emrcomm_find_recipient, emrcomm_render and "
                        "emrcomm_plan."
                    )

    @property
    def pluggy(self) -> pluggy.PluginManager:
        """The pluggy manager underneath, for tracing and tools (``add_hookcall_monitoring``,
        ``enable_tracing``): every hook call, the one-by-one ones included, goes through it."""
        return self._pm

    def _caller(self, hook_name: str, plugin: Any) -> Any:
        """A hook caller for one plugin's implementation alone, through pluggy (so that its
        tracing and monitoring see the call), made once."""
        key = (hook_name, id(plugin))
        caller = self._callers.get(key)
        if caller is None:
            others = [p.plugin for p in self.plugins if p.plugin is not plugin]
            caller = self._callers[key] = self._pm.subset_hook_caller(hook_name, remove_plugins=others)
        return caller

    def _one_by_one(self, hook_name: str, expected: type | None = None,
                    **kwargs: Any) -> Iterator[tuple[str, Any, BaseException | None]]:
        """Each plugin's answer in call order, or what it raised. With ``expected``, the answer is
        a tuple of ``expected`` (None is an empty one); any other answer is a :class:`BadAnswer`
        in its place."""
        hook = getattr(self._pm.hook, hook_name)
        for impl in reversed(hook.get_hookimpls()):
            try:
                # A collecting hook answers a list: this one plugin's answer, or nothing for None.
                answers = self._caller(hook_name, impl.plugin)(**kwargs)
                result = answers[0] if answers else None
                if expected is not None:
                    result = _items(result, expected, impl.plugin_name, hook_name)
            except PluginUnavailable as exc:  # its words name its server, never the patient (the contract)
                log.warning("plugin %s cannot answer now in %s: %s", impl.plugin_name, hook_name, exc)
                yield impl.plugin_name, None, exc
            except Exception as exc:
                log.error("plugin %s failed in %s: %s", impl.plugin_name, hook_name, type(exc).__name__)
                log.debug("plugin %s failed in %s", impl.plugin_name, hook_name, exc_info=True)
                yield impl.plugin_name, None, exc
            else:
                yield impl.plugin_name, result, None

    def _collect_channels(self) -> dict[str, Channel]:
        channels: dict[str, Channel] = {}
        for plugin, result, exc in self._one_by_one("emrcomm_register_channels", Channel):
            if isinstance(exc, BadAnswer):
                raise exc
            if exc is not None:
                raise PluginError(f"plugin {plugin!r} failed in emrcomm_register_channels: "
                                  f"{type(exc).__name__}: {exc}") from exc
            for channel in result:
                if channel.name in channels:
                    raise PluginError(
                        f"channel {channel.name!r} is registered by both {channels[channel.name].plugin!r} "
                        f"and {plugin!r}; disable one of them"
                    )
                channels[channel.name] = attrs.evolve(channel, plugin=plugin)
        return self._configured_channels(channels)

    def _configured_channels(self, channels: dict[str, Channel]) -> dict[str, Channel]:
        """``[channels.NAME] secure = false``: a clinic decides what it trusts. It may only lower
        what a plugin claims, never raise it."""
        settings = self.config.raw.get("channels", {})
        where = self.config.source
        for name, table in settings.items():
            if name not in channels:
                raise ConfigError(f"{where}: channels.{name}: no plugin registers channel {name!r}; "
                                  f"choose one of: {', '.join(sorted(channels)) or '(none)'}")
            if table.get("secure") is True and not channels[name].secure:
                raise ConfigError(f"{where}: channels.{name}.secure: the {channels[name].plugin!r} plugin does not "
                                  "declare this channel secure; a clinic may only lower trust, not raise it")
            if table.get("secure") is False:
                channels[name] = attrs.evolve(channels[name], secure=False)
        return channels

    def migrations(self) -> list[Migration]:
        """Every plugin's migrations; a step for tables another owner has stops start-up."""
        found: list[Migration] = []
        names = {p.name for p in self.plugins}
        for plugin, result, exc in self._one_by_one("emrcomm_migrations", Migration):
            if isinstance(exc, BadAnswer):
                raise exc
            if exc is not None:
                raise PluginError(f"plugin {plugin!r} failed in emrcomm_migrations: {type(exc).__name__}") from exc
            for step in result:
                if step.owner in (CORE, API_OWNER) or step.owner in names - {plugin}:
                    raise PluginError(f"plugin {plugin!r} contributes a migration for tables owned by "
                                      f"{step.owner!r}: a plugin migrates only its own tables")
                found.append(step)
        return found

    def start(self, host: HostServices) -> None:
        """Bind every context to the host, then start the plugins that have work to start."""
        for item in self.plugins:
            if item.context is not None:
                item.context.bind(host)
        for item in self.plugins:
            if isinstance(item.plugin, Startable):
                try:
                    item.plugin.start()
                except ConfigError as exc:
                    raise _in_file(exc, self.config.source) from None

    def prepare(self) -> None:
        """Have every plugin that puts off its costly preparation (Preparable) do it now. One that
        fails stops here, named, as it would have at load: PluginError (ConfigError for its own)."""
        for item in self.plugins:
            if isinstance(item.plugin, Preparable):
                try:
                    item.plugin.load_deferred()
                except ConfigError as exc:
                    raise _in_file(exc, self.config.source) from None
                except PluginError:
                    raise
                except Exception as exc:
                    raise PluginError(f"plugin {item.name!r} ({item.value}) failed to start: "
                                      f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        for item in self.plugins:
            if isinstance(item.plugin, Closable):
                try:
                    item.plugin.close()
                except Exception as exc:  # the others still close
                    log.error("plugin %s failed to close: %s", item.name, type(exc).__name__)

    def secret_problems(self) -> list[str]:
        """Every secret reference of every plugin that points at nothing (a variable not set, a
        file not readable), each in words: what ``check-config`` and ``doctor`` report."""
        return [problem for item in self.plugins if item.context is not None
                for problem in item.context.secret_problems()]

    def hooks_of(self) -> list[tuple[LoadedPlugin, list[str]]]:
        """Active plugins in call order, each with the hooks it implements."""
        out = []
        for item in self.plugins:
            callers = self._pm.get_hookcallers(item.plugin) or []
            out.append((item, sorted(c.name for c in callers)))
        return out

    # the pipeline's hooks ----------------------------------------------------------------------------
    def _first(self, hook_name: str, expected: type, **kwargs: Any) -> Any:
        """A first-result hook's answer: None or an ``expected``. A plugin that raises anything but
        an EmrcommError (its own clear words), or an answer of another type, is a PluginError that
        names the hook and the plugin: nothing is decided on it, so nothing goes."""
        hook = getattr(self._pm.hook, hook_name)
        try:
            result = hook(**kwargs)
        except EmrcommError:
            raise
        except Exception as exc:
            plugin = _raised_by(exc, hook.get_hookimpls())
            log.error("plugin %s failed in %s: %s", plugin, hook_name, type(exc).__name__)
            log.debug("plugin %s failed in %s", plugin, hook_name, exc_info=True)
            # Its type only: what a directory or a template raises may quote the patient.
            raise PluginError(f"plugin {plugin!r} failed in {hook_name}: {type(exc).__name__}; nothing was sent "
                              "(run with -vv for the plugin's traceback in the log)") from exc
        if result is not None and not isinstance(result, expected):
            implementers = ", ".join(repr(impl.plugin_name) for impl in reversed(hook.get_hookimpls()))
            raise PluginError(f"{hook_name} answered {type(result).__name__}, not emrcomm.{expected.__name__} or "
                              f"None; one of the plugins that implement it ({implementers}) breaks the contract")
        return result

    def find_recipient(self, request: Request) -> Recipient | None:
        """The patient a directory finds, or None (nobody knows them). A directory that knows the
        patient and refuses them raises RecipientRefused: it reaches the caller, ``plugin`` naming
        that directory."""
        try:
            result: Recipient | None = self._first("emrcomm_find_recipient", Recipient,
                                                    patient_ref=request.patient_ref, request=request)
        except RecipientRefused as exc:
            exc.plugin = _raised_by(exc, self._pm.hook.emrcomm_find_recipient.get_hookimpls())
            # Ids only: its reason is for the record, where staff read it.
            log.warning("request %s: plugin %s refuses the patient (RECIPIENT_REFUSED)", request.id, exc.plugin)
            raise
        return result

    def render(self, request: Request, recipient: Recipient) -> Message:
        message: Message | None = self._first("emrcomm_render", Message, request=request, recipient=recipient)
        if message is None:
            what = f"template {request.template!r}" if request.template else "free text"
            names = sorted({n for p in self.plugins if isinstance(p.plugin, TemplateCatalog)
                            for n in p.plugin.template_names()})
            raise RenderError(f"no plugin renders {what}" + (f"; choose one of: {', '.join(names)}" if names else ""))
        return _composed(message)

    def inspect(self, message: Message) -> tuple[Finding, ...]:
        facts: list[Finding] = []
        for plugin, result, exc in self._one_by_one("emrcomm_inspect", Finding, message=message):
            if isinstance(exc, PluginUnavailable):
                raise exc  # as a validator's (validate): its server down decides nothing; try again
            if exc is not None:
                facts.append(finding("CHECK_FAILED", plugin=plugin, detail=_check_failed(plugin, exc)))
                continue
            facts.extend(_named(result, plugin))
        return tuple(facts)

    def plan(self, message: Message, recipient: Recipient, facts: tuple[Finding, ...]) -> Plan | None:
        result: Plan | None = self._first("emrcomm_plan", Plan, message=message, recipient=recipient,
                                          channels=self.channels, findings=facts)
        for candidate in result.candidates if result is not None else ():
            routes = candidate.routes if isinstance(candidate, Candidate) else ()
            if not isinstance(candidate, Candidate) or not all(isinstance(r, Route) for r in routes):
                wrong = candidate if not isinstance(candidate, Candidate) else \
                    next(r for r in routes if not isinstance(r, Route))
                raise PluginError(f"emrcomm_plan answered a Plan holding {type(wrong).__name__}: its candidates "
                                  "must be emrcomm.Candidate, each of emrcomm.Route")
        return result

    def validate(self, message: Message, recipient: Recipient, channel: Channel, route: Route,
                 facts: tuple[Finding, ...], now: dt.datetime) -> tuple[Finding, ...]:
        found: list[Finding] = []
        for plugin, result, exc in self._one_by_one("emrcomm_validate", Finding, message=message,
                                                    recipient=recipient, channel=channel, route=route,
                                                    findings=facts, now=now):
            if isinstance(exc, PluginUnavailable):
                # A check that cannot run for now (its server down) decides nothing: nothing goes
                # (fail closed) and nothing is filed, as when the directory cannot answer; the
                # caller is told to try again. A permanent CHECK_FAILED block would file it not-done.
                raise exc
            if exc is not None:
                found.append(finding("CHECK_FAILED", plugin=plugin, channel=channel.name,
                                     detail=_check_failed(plugin, exc)))
                continue
            for f in _named(result, plugin):
                found.append(self._configured(attrs.evolve(f, channel=f.channel or channel.name), message))
        limit = self.config.limits.channel_text_chars.get(channel.name)
        if limit is not None and len(message.text) > limit:
            found.append(self._configured(finding("TEXT_TOO_LONG", plugin="host", channel=channel.name,
                                                  length=f"{len(message.text):,}", limit=f"{limit:,}"), message))
        return tuple(found)

    def sending_window(self, message: Message, recipient: Recipient, channel: Channel) -> SendingWindow | None:
        """The window the route's message must leave in (QUIET_HOURS), or None: none applies."""
        result: SendingWindow | None = self._first("emrcomm_sending_window", SendingWindow, message=message,
                                                   recipient=recipient, channel=channel)
        return result

    def _configured(self, f: Finding, message: Message) -> Finding:
        severity, override = self.config.rules.apply(f.code, f.severity)
        if severity is f.severity:
            return f
        if override:
            log.warning("request %s: %s lowered from %s to %s by override (%s)",
                        message.request.id, f.code, f.severity.value, severity.value, override)
        return attrs.evolve(f, severity=severity, override=override)

    def file_each(self, record: Record, savepoint: Callable[[], AbstractContextManager[None]]) -> FilingFailed | None:
        """Give ``record`` to every filer, each in a ``savepoint()`` of the current transaction (a
        failing one's writes are undone alone); return the first failure, or None."""
        failed: FilingFailed | None = None
        hook = self._pm.hook.emrcomm_file_record
        for impl in reversed(hook.get_hookimpls()):
            try:
                with savepoint():
                    impl.function(*[{"record": record}[a] for a in impl.argnames])
            except Exception as exc:
                log.error("record %s could not be filed by %s (%s)", record.id, impl.plugin_name, type(exc).__name__)
                failed = failed or FilingFailed(impl.plugin_name, exc)
        return failed

    def delivery_update(self, update: DeliveryUpdate) -> list[tuple[str, BaseException]]:
        """Every plugin hears of ``update``, even when one before it fails; returns the failures."""
        return [(plugin, exc) for plugin, _result, exc in self._one_by_one("emrcomm_delivery_update", update=update)
                if exc is not None]

    # what plugins add to serve and to the command line -------------------------------------------------
    def web_routes(self, web: Any) -> list[Any]:
        """Every plugin's routes for ``emrcomm serve``, in call order."""
        from starlette.routing import BaseRoute

        routes: list[Any] = []
        for plugin, result, exc in self._one_by_one("emrcomm_web_routes", BaseRoute, web=web):
            if isinstance(exc, BadAnswer):
                raise exc
            if exc is not None:
                raise PluginError(f"plugin {plugin!r} failed in emrcomm_web_routes: {type(exc).__name__}: {exc}") \
                    from exc
            routes.extend(result)
        return routes

    def cli_commands(self) -> list[tuple[str, Command]]:
        """Every plugin's commands, with the plugin that adds each; two with one name stop start-up."""
        found: dict[str, tuple[str, Command]] = {}
        for plugin, result, exc in self._one_by_one("emrcomm_cli_commands", Command):
            if isinstance(exc, BadAnswer):
                raise exc
            if exc is not None:
                raise PluginError(f"plugin {plugin!r} failed in emrcomm_cli_commands: {type(exc).__name__}") from exc
            for command in result:
                if command.name in found:
                    raise PluginError(f"command {command.name!r} is added by both {found[command.name][0]!r} "
                                      f"and {plugin!r}; disable one of them")
                found[command.name] = (plugin, command)
        return list(found.values())

    def probes(self) -> list[tuple[str, Probe | PluginError]]:
        """Every plugin's probes (``emrcomm doctor``), in call order, with the plugin of each; a
        plugin whose hook fails or answers something else is a PluginError in its place."""
        found: list[tuple[str, Probe | PluginError]] = []
        for plugin, result, exc in self._one_by_one("emrcomm_probe", Probe):
            if isinstance(exc, BadAnswer):
                found.append((plugin, exc))
            elif exc is not None:
                found.append((plugin, PluginError(f"plugin {plugin!r} could not say which servers it uses: "
                                                  f"{type(exc).__name__}: {exc}")))
            else:
                found.extend((plugin, probe) for probe in result)
        return found


def _in_file(exc: ConfigError, source: str) -> ConfigError:
    """A plugin's own ConfigError ("plugins.policy.quiet_hours: …") with the config it is about
    in front, as the host's errors have it."""
    return exc if str(exc).startswith(f"{source}:") else ConfigError(f"{source}: {exc}")


def _raised_by(exc: BaseException, impls: Sequence[Any]) -> str:
    """The plugin whose hook function is deepest in ``exc``'s traceback: the one that raised."""
    codes = {getattr(impl.function, "__code__", None): impl.plugin_name for impl in impls}
    names = [codes[tb.tb_frame.f_code] for tb in _tracebacks(exc) if tb.tb_frame.f_code in codes]
    return names[-1] if names else "(unknown)"


def _tracebacks(exc: BaseException) -> Iterator[Any]:
    tb = exc.__traceback__
    while tb is not None:
        yield tb
        tb = tb.tb_next


class BadAnswer(PluginError):
    """A plugin answered a hook with something the contract does not allow (the message names
    the plugin, the hook, what it answered and what was expected)."""


def _items(result: Any, expected: type, plugin: str, hook_name: str) -> tuple[Any, ...]:
    """A collecting hook's answer as a tuple of ``expected``; BadAnswer for anything else (a
    lone object, a string, a list holding something else)."""
    if result is None:
        return ()
    if isinstance(result, (str, bytes)) or not isinstance(result, Iterable):
        raise BadAnswer(f"plugin {plugin!r}: {hook_name} returned {type(result).__name__}, "
                        f"not a list of {_type_name(expected)}")
    items = tuple(result)
    for item in items:
        if not isinstance(item, expected):
            raise BadAnswer(f"plugin {plugin!r}: {hook_name} returned {type(item).__name__}, "
                            f"not {_type_name(expected)}")
    return items


def _type_name(expected: type) -> str:
    return f"emrcomm.{expected.__name__}" if expected.__module__.startswith("emrcomm") else expected.__name__


def _check_failed(plugin: str, exc: BaseException) -> str:
    """CHECK_FAILED's detail: what the check raised (its type only: a message may quote the
    text), or what it answered instead of findings."""
    return str(exc) if isinstance(exc, BadAnswer) else f"{plugin}: {type(exc).__name__}"


def _named(result: Iterable[Finding], plugin: str) -> Iterator[Finding]:
    for f in result:
        yield f if f.plugin else attrs.evolve(f, plugin=plugin)


def _composed(message: Message) -> Message:
    """The message with its accents composed (NFC). An EMR that stores "é" as "e" and a combining
    accent (macOS input, text copied from a PDF) would otherwise send every SMS as UCS-2, at 67
    characters a segment where GSM-7 has 153, and the rules would count what no phone shows."""
    def nfc(words: str | None) -> str | None:
        return None if words is None else unicodedata.normalize("NFC", words)

    text = unicodedata.normalize("NFC", message.text)
    subject, html = nfc(message.subject), nfc(message.html)
    if (text, subject, html) == (message.text, message.subject, message.html):
        return message
    return attrs.evolve(message, text=text, subject=subject, html=html)
