"""The templates plugin: compiles each template text once a process, renders per patient.

A clinic's own folder is compiled, and checked against its catalogs, as the plugin starts; the
built-in templates, which nothing in a config can break, each when first rendered (compiling
all 44 texts took ~0.2 s of every command's start, `emrcomm --help` and `records` included).

Templates run in Jinja's immutable sandbox with strict undefined names, so a clinic template
can neither reach Python internals nor print an empty hole where a variable was misspelled,
and within bounds on steps, time and size (``bounds``), so it cannot run away either.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any

from attrs import frozen
from babel import Locale, numbers
from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError, UndefinedError

import emrcomm
from emrcomm import Category, ConfigError, Message, Recipient, RenderError, Request, settings_schema
from emrcomm_templates import bounds
from emrcomm_templates.catalog import (
    CONTEXT_NAMES,
    EMPTY,
    IMPLICIT,
    Declaration,
    Entry,
    merge_declarations,
    read_catalog,
)
from emrcomm_templates.formatting import FILTERS, FORMATTER, Formatter, locale_for, zone
from emrcomm_templates.variables import bind

DEFAULT_LANGUAGE = "en"
# What Quebec patients receive in French whatever their language (Charter of the French
# language, s.55): sent bilingual, French first, to a patient who reads another language.
FRENCH_IN_QUEBEC = frozenset({Category.INVOICE})
NEUTRAL_SUBJECT = {"en": "Message from {clinic}", "fr": "Message de {clinic}"}
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_LANGUAGE = re.compile(r"[a-z]{2,3}")
_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
# "at 4:00 p.m." ending a sentence: the abbreviation's period is the sentence's ("p.m..").
_DOUBLE_PERIOD = re.compile(r"(?<!\.)\.\.(?!\.)")


def layout(text: str) -> str:
    """One line per paragraph, single spaces, no trailing whitespace: what an SMS needs and what
    a plain-text email reads well as."""
    paragraphs = (" ".join(p.split()) for p in _PARAGRAPH.split(text))
    return _DOUBLE_PERIOD.sub(".", "\n\n".join(p for p in paragraphs if p))


def join_lines(source: str) -> str:
    """A template's own line breaks are layout: lines join with a space, and only a blank line
    starts a new paragraph. Done on the source, so block tags at a line's end eat nothing."""
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in _PARAGRAPH.split(source))


def primary_language(tag: str) -> str:
    """``fr-CA``, ``fr_CA`` and ``FR`` all mean ``fr``."""
    return tag.replace("_", "-").split("-", 1)[0].strip().lower() or DEFAULT_LANGUAGE


@frozen
class Compiled:
    """One template in one language, ready to render."""

    name: str
    language: str
    body: Template
    subject: Template | str | None  # a str when it depends on the clinic only: rendered once
    declaration: Declaration
    origin: str
    uses_link: bool


class _Entry:
    """One template in one language as listed (its declaration), compiled on first use."""

    def __init__(self, declaration: Declaration, compile_it: Callable[[], Compiled]) -> None:
        self.declaration = declaration
        self._compile_it = compile_it

    @functools.cached_property
    def compiled(self) -> Compiled:
        return self._compile_it()


@frozen
class _Source:
    """A template file found in a folder, before compiling."""

    name: str
    language: str
    text: str
    origin: str


def _scan(root: Traversable, origin: str) -> tuple[list[_Source], dict[str, Mapping[str, Entry]]]:
    """Template files and catalogs (by language) under ``root/<lang>/``."""
    sources: list[_Source] = []
    catalogs: dict[str, Mapping[str, Entry]] = {}
    for folder in sorted(root.iterdir(), key=lambda t: t.name):
        if not folder.is_dir() or not _LANGUAGE.fullmatch(folder.name):
            continue
        lang = folder.name
        for item in sorted(folder.iterdir(), key=lambda t: t.name):
            where = f"{origin}/{lang}/{item.name}"
            if item.name == "catalog.toml":
                catalogs[lang] = read_catalog(item.read_text(encoding="utf-8"), where)
            elif item.name.endswith(".j2"):
                name = item.name.removesuffix(".j2")
                if not _NAME.fullmatch(name):
                    raise ConfigError(f"{where}: template names are lower-case letters, digits and '-' "
                                      "(such as appointment-reminder.j2)")
                sources.append(_Source(name, lang, item.read_text(encoding="utf-8"), where))
    return sources, catalogs


@functools.cache
def _builtin() -> tuple[tuple[_Source, ...], Mapping[str, Mapping[str, Entry]]]:
    """The built-in templates and catalogs, read once a process (they are part of the package)."""
    sources, by_lang = _scan(resources.files(__package__).joinpath("templates"), "emrcomm_templates/templates")
    return tuple(sources), MappingProxyType(by_lang)


def _subjects(catalogs: Mapping[str, Mapping[str, Entry]]) -> dict[tuple[str, str], tuple[str, str]]:
    """(name, language) -> (subject template, where it was written)."""
    return {
        (name, lang): (entry.subject, entry.source)
        for lang, catalog in catalogs.items()
        for name, entry in catalog.items()
        if entry.subject is not None
    }


def _environment() -> bounds.BoundedSandbox:
    env = bounds.BoundedSandbox(undefined=StrictUndefined, autoescape=False, auto_reload=False)
    env.filters.update(FILTERS)
    bounds.install(env)
    return env


# Every plugin compiles and renders in this one environment. It holds nothing of a clinic (the
# render bounds travel with each render, the values with each call), so a template's text is
# compiled once per process however many hosts the process starts.
_ENV = _environment()


@functools.lru_cache(maxsize=1024)
def _compiled(text: str, name: str, origin: str) -> tuple[Template, frozenset[str]]:
    """``text`` compiled, and the names it reads from its context; TemplateSyntaxError when it
    does not compile (not kept: the next host reports it again)."""
    _ENV.parse(text, name, origin)  # first as written, so errors give the file's line
    tree = _ENV.parse(join_lines(text), name, origin)
    code = _ENV.compile(bounds.bound_loops(tree), name, origin)
    names = frozenset(meta.find_undeclared_variables(tree) - set(_ENV.globals))
    # A plain dict, not make_globals' ChainMap: every render copies the globals.
    return _ENV.template_class.from_code(_ENV, code, dict(_ENV.globals)), names


class Plugin:
    """Renders requests into patient messages: built-in templates in English and Quebec French,
    replaced or extended by the clinic's own folder (setting ``directory``)."""

    settings_schema = settings_schema("emrcomm_templates")

    def __init__(self, context: emrcomm.PluginContext) -> None:
        self.context = context
        clinic = context.clinic
        self._currency = str(context.settings.get("currency", "CAD"))
        if self._currency not in numbers.list_currencies():
            raise ConfigError(f"plugins.{context.name}.currency: {self._currency!r} is not an ISO 4217 "
                              "currency code (expected a code such as CAD)")
        self._clinic = MappingProxyType({
            "name": clinic.name,
            "phone": clinic.phone,
            "email": clinic.email,
            "signature": clinic.signature,
            "address": clinic.address,
            "portal_url": clinic.portal_url,
            "turnaround": clinic.turnaround_in("en"),
        })
        # How soon staff answer, in each template's own language: the words the clinic gave for it,
        # and nothing when it gave them in one language only (both languages promise the same).
        self._clinic_fr = MappingProxyType({**self._clinic, "turnaround": clinic.turnaround_in("fr")})
        self._default_zone = clinic.time_zones[0] if clinic.time_zones else "America/Toronto"
        settings = context.settings
        default = bounds.RenderBounds()
        self._bounds = bounds.RenderBounds(
            steps=settings.get("render_steps", default.steps),
            seconds=settings.get("render_seconds", default.seconds),
            chars=settings.get("render_chars", default.chars),
        )
        self._templates = self._load(context)
        languages = {lang for by_lang in self._templates.values() for lang in by_lang}
        self._locales: dict[str, Locale] = {lang: locale_for(lang) for lang in languages | {DEFAULT_LANGUAGE}}

    # -- loading ---------------------------------------------------------------------------

    def _load(self, context: emrcomm.PluginContext) -> dict[str, dict[str, _Entry]]:
        builtin, builtin_by_lang = _builtin()
        sources, by_lang = list(builtin), dict(builtin_by_lang)
        declarations = merge_declarations(by_lang.values())
        subjects = _subjects(by_lang)

        directory = context.settings.get("directory")
        if directory:
            root = context.path(str(directory))
            if not root.is_dir():
                raise ConfigError(f"plugins.{context.name}.directory: {root} is not a folder "
                                  "(expected <lang>/<name>.j2 files, relative to the config file's folder)")
            extra, extra_by_lang = _scan(root, str(root))
            replaced = {(e.name, e.language) for e in extra}
            sources = [s for s in sources if (s.name, s.language) not in replaced] + extra
            declarations.update(merge_declarations(extra_by_lang.values()))  # a redeclaration replaces
            subjects.update(_subjects(extra_by_lang))
            self._check_catalog_names(extra_by_lang, {s.name for s in sources}, root)

        templates: dict[str, dict[str, _Entry]] = {}
        for src in sources:
            declaration = declarations.get(src.name, EMPTY)
            entry = _Entry(declaration, functools.partial(self._compile_entry, src, declaration,
                                                          subjects.get((src.name, src.language))))
            if directory:  # what the clinic wrote, and the built-ins its catalogs redeclare: checked now
                entry.compiled  # noqa: B018
            templates.setdefault(src.name, {})[src.language] = entry
        return templates

    def _compile_entry(self, src: _Source, declaration: Declaration, subject_of: tuple[str, str] | None) -> Compiled:
        body, uses = self._compile(src.text, src, declaration)
        subject: Template | str | None = None
        if subject_of is not None:
            text, origin = subject_of
            subject, names = self._compile(text, _Source(src.name, src.language, text, f"{origin}.subject"),
                                           declaration)
            uses |= names
            if names <= {"clinic"}:
                subject = " ".join(self._once(subject, src).split())
        return Compiled(src.name, src.language, body, subject, declaration, src.origin, uses_link="link" in uses)

    @staticmethod
    def _check_catalog_names(catalogs: Mapping[str, Mapping[str, Entry]], names: set[str], root: Path) -> None:
        for lang, catalog in catalogs.items():
            for name in catalog:
                if name not in names:
                    raise ConfigError(f"{root}/{lang}/catalog.toml: [{name}] names no template; "
                                      f"templates: {', '.join(sorted(names))}")

    @staticmethod
    def _compile(text: str, src: _Source, declaration: Declaration) -> tuple[Template, set[str]]:
        """The compiled template and the names it reads from its context."""
        try:
            template, names = _compiled(text, src.name, src.origin)
        except TemplateSyntaxError as exc:
            raise ConfigError(f"{src.origin}, line {exc.lineno}: template does not compile: {exc.message}") from None
        unknown = sorted(names - set(declaration.types) - CONTEXT_NAMES - set(IMPLICIT))
        if unknown:
            declared_in = declaration.source if declaration is not EMPTY else "no catalog"
            raise ConfigError(
                f"{src.origin}: uses variable {unknown[0]!r}, which {src.name!r} does not declare "
                f"(declared in: {declared_in}); declare it under [{src.name}] required or optional "
                "in catalog.toml, and when a clinic redeclares a built-in, override all its languages"
            )
        return template, set(names)

    # -- the hook ----------------------------------------------------------------------------

    def template_names(self) -> list[str]:
        """Every template this plugin can render, sorted (built-in and the clinic's)."""
        return sorted(self._templates)

    def languages(self, name: str) -> list[str]:
        """The languages template ``name`` exists in."""
        return sorted(self._templates.get(name, {}))

    def describe(self, name: str) -> dict[str, Any]:
        """Template ``name``'s languages and variables (name -> type), for ``emrcomm templates``."""
        by_lang = self._templates[name]
        declaration = next(iter(by_lang.values())).declaration  # one per template, whatever the language
        return {"languages": sorted(by_lang), "required": dict(declaration.required),
                "optional": dict(declaration.optional)}

    @emrcomm.hookimpl
    def emrcomm_cli_commands(self) -> list[emrcomm.Command]:
        from emrcomm_templates.commands import COMMANDS

        return COMMANDS

    @emrcomm.hookimpl
    def emrcomm_render(self, request: Request, recipient: Recipient) -> Message | None:
        language = primary_language(recipient.language)
        if request.template is None:
            if request.text is None:
                raise RenderError("the request has neither a template nor a text; give one of them")
            return Message(
                request=request,
                text=request.text,
                subject=request.subject or self._neutral_subject(language),
                language=language,
                template=None,
            )
        if request.template not in self._templates:
            return None  # another plugin's template, perhaps; the host says so if none renders it
        compiled = self._choose(request.template, language)
        values = bind(
            compiled.name,
            compiled.declaration,
            request.variables,
            appointment=request.appointment,
            link=self._clinic["portal_url"] or None,
        )
        if compiled.uses_link and not values["link"]:
            raise RenderError(f"template {compiled.name!r} shows a link: give variable 'link', "
                              "or set clinic.portal_url in the config")
        values["text"] = request.text
        values["clinic"] = self._clinic
        values["patient"] = MappingProxyType({"given_name": recipient.given_name})
        tz = zone(recipient.time_zone or self._default_zone)
        place = recipient.jurisdiction
        text, subject = self._words(compiled, values, tz, place)
        used = compiled.language
        french_entry = self._templates[compiled.name].get("fr")
        if used != "fr" and french_entry is not None and self._needs_french(request, recipient):
            french = french_entry.compiled
            # Quebec: invoices in French, bilingual allowed (docs/rule-catalogue.md I): French first.
            french_text, french_subject = self._words(french, values, tz, place)
            text, subject, used = f"{french_text}\n\n{text}", f"{french_subject} / {subject}", "fr"
        return Message(request=request, text=text, subject=request.subject or subject, language=used,
                       template=compiled.name)

    def _words(self, compiled: Compiled, values: dict[str, Any], tz: dt.tzinfo,
               place: str | None) -> tuple[str, str]:
        """The text and subject of one template in its language."""
        values[FORMATTER] = Formatter(compiled.language, self._locales[compiled.language], tz, self._currency,
                                      clinic_tz=zone(self._default_zone), place=place)
        values["clinic"] = self._clinic_fr if compiled.language == "fr" else self._clinic
        text = layout(self._run(compiled, compiled.body, values))
        if isinstance(compiled.subject, str):
            subject = compiled.subject
        elif compiled.subject is not None:
            subject = " ".join(self._run(compiled, compiled.subject, values).split())
        else:
            subject = self._neutral_subject(compiled.language)
        return text, subject

    @staticmethod
    def _needs_french(request: Request, recipient: Recipient) -> bool:
        return request.category in FRENCH_IN_QUEBEC and recipient.jurisdiction == "CA-QC"

    def _choose(self, name: str, language: str) -> Compiled:
        by_lang = self._templates.get(name)
        if by_lang is None:
            raise RenderError(f"no template named {name!r}; choose one of: {', '.join(self.template_names())}")
        if language in by_lang:
            return by_lang[language].compiled
        if DEFAULT_LANGUAGE in by_lang:
            return by_lang[DEFAULT_LANGUAGE].compiled
        return by_lang[min(by_lang)].compiled

    def _once(self, subject: Template, src: _Source) -> str:
        """A subject that depends on the clinic only, rendered at start-up."""
        try:
            return bounds.render(subject, {"clinic": self._clinic}, self._bounds)
        except bounds.RenderLimit as exc:
            raise ConfigError(f"{src.origin}: the subject was stopped: it {exc}") from None

    def _run(self, compiled: Compiled, template: Template, values: dict[str, Any]) -> str:
        where = f"template {compiled.name!r} ({compiled.language}, {compiled.origin})"
        try:
            return bounds.render(template, values, self._bounds)
        except bounds.RenderLimit as exc:
            # A runaway: stopped within its bounds, reported with what to change, never its output.
            raise RenderError(f"{where} was stopped: it {exc}; simplify the template, or raise "
                              f"[plugins.{self.context.name}] render_* if the clinic really needs more") from None
        except RecursionError:
            raise RenderError(f"{where} was stopped: it nests or recurses too deeply") from None
        except RenderError as exc:
            raise RenderError(f"{where}: {exc}") from exc
        except SecurityError as exc:
            # Say what was refused, never what it would have shown.
            raise RenderError(f"{where} tried an operation the sandbox forbids and was stopped") from exc
        except UndefinedError as exc:
            raise RenderError(f"{where}: {exc.message}") from exc
        except Exception as exc:  # a template is configuration: any failure is a failed render
            raise RenderError(f"{where} failed: {type(exc).__name__}: {exc}") from exc

    def _neutral_subject(self, language: str) -> str:
        pattern = NEUTRAL_SUBJECT.get(language, NEUTRAL_SUBJECT[DEFAULT_LANGUAGE])
        return pattern.format(clinic=self._clinic["name"])
