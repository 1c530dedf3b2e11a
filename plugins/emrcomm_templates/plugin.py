"""The templates plugin: compiles the built-in and clinic templates once, renders per patient.

Templates run in Jinja's immutable sandbox with strict undefined names, so a clinic template
can neither reach Python internals nor print an empty hole where a variable was misspelled.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import emrcomm
from attrs import frozen
from babel import Locale, numbers
from emrcomm import ConfigError, Message, Recipient, RenderError, Request
from emrcomm.config import load_schema
from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from emrcomm_templates.catalog import (
    CONTEXT_NAMES,
    EMPTY,
    IMPLICIT,
    Declaration,
    Entry,
    merge_declarations,
    read_catalog,
)
from emrcomm_templates.formatting import CONNECTORS, FILTERS, FORMATTER, Formatter, locale_for, zone
from emrcomm_templates.variables import bind

DEFAULT_LANGUAGE = "en"
NEUTRAL_SUBJECT = {"en": "Message from {clinic}", "fr": "Message de {clinic}"}
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_LANGUAGE = re.compile(r"[a-z]{2,3}")
_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")


def layout(text: str) -> str:
    """One line per paragraph, single spaces, no trailing whitespace: what an SMS needs and what
    a plain-text email reads well as."""
    paragraphs = (" ".join(p.split()) for p in _PARAGRAPH.split(text))
    return "\n\n".join(p for p in paragraphs if p)


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
    subject: Template | None
    declaration: Declaration
    origin: str


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


class Plugin:
    """Renders requests into patient messages: built-in templates in English and Quebec French,
    replaced or extended by the clinic's own folder (setting ``directory``)."""

    settings_schema = load_schema("plugins/templates.schema.json")

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
            "turnaround": clinic.turnaround,
        })
        self._default_zone = clinic.time_zones[0] if clinic.time_zones else "America/Toronto"
        self._env = ImmutableSandboxedEnvironment(
            undefined=StrictUndefined,
            autoescape=False,
            auto_reload=False,
        )
        self._env.filters.update(FILTERS)
        self._templates = self._load(context)
        languages = {lang for by_lang in self._templates.values() for lang in by_lang}
        self._locales: dict[str, Locale] = {lang: locale_for(lang) for lang in languages | {DEFAULT_LANGUAGE}}

    # -- loading ---------------------------------------------------------------------------

    def _load(self, context: emrcomm.PluginContext) -> dict[str, dict[str, Compiled]]:
        builtin_root = resources.files(__package__).joinpath("templates")
        sources, by_lang = _scan(builtin_root, "emrcomm_templates/templates")
        declarations = merge_declarations(by_lang.values())
        subjects = {(n, lang): e.subject for lang, cat in by_lang.items() for n, e in cat.items() if e.subject}

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
            subjects.update({(n, lang): e.subject for lang, cat in extra_by_lang.items()
                             for n, e in cat.items() if e.subject})
            self._check_catalog_names(extra_by_lang, {s.name for s in sources}, root)

        templates: dict[str, dict[str, Compiled]] = {}
        for src in sources:
            declaration = declarations.get(src.name, EMPTY)
            body = self._compile(src.text, src, declaration)
            subject_text = subjects.get((src.name, src.language))
            subject = None
            if subject_text is not None:
                subject = self._compile(subject_text, _Source(src.name, src.language, subject_text,
                                                              f"{src.origin} (subject)"), declaration)
            templates.setdefault(src.name, {})[src.language] = Compiled(
                src.name, src.language, body, subject, declaration, src.origin
            )
        return templates

    @staticmethod
    def _check_catalog_names(catalogs: Mapping[str, Mapping[str, Entry]], names: set[str], root: Path) -> None:
        for lang, catalog in catalogs.items():
            for name in catalog:
                if name not in names:
                    raise ConfigError(f"{root}/{lang}/catalog.toml: [{name}] names no template; "
                                      f"templates: {', '.join(sorted(names))}")

    def _compile(self, text: str, src: _Source, declaration: Declaration) -> Template:
        env = self._env
        try:
            env.parse(text, src.name, src.origin)  # first as written, so errors give the file's line
            tree = env.parse(join_lines(text), src.name, src.origin)
            code = env.compile(tree, src.name, src.origin)
        except TemplateSyntaxError as exc:
            raise ConfigError(f"{src.origin}, line {exc.lineno}: template does not compile: {exc.message}") from None
        allowed = set(declaration.types) | CONTEXT_NAMES | set(IMPLICIT) | set(env.globals)
        unknown = sorted(meta.find_undeclared_variables(tree) - allowed)
        if unknown:
            raise ConfigError(
                f"{src.origin}: uses variable {unknown[0]!r}, which the catalog does not declare for "
                f"{src.name!r}; declare it under [{src.name}] required or optional in catalog.toml"
            )
        template: Template = env.template_class.from_code(env, code, env.make_globals(None))
        return template

    # -- the hook ----------------------------------------------------------------------------

    def template_names(self) -> list[str]:
        """Every template this plugin can render, sorted (built-in and the clinic's)."""
        return sorted(self._templates)

    def languages(self, name: str) -> list[str]:
        """The languages template ``name`` exists in."""
        return sorted(self._templates.get(name, {}))

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
        compiled = self._choose(request.template, language)
        values = bind(
            compiled.name,
            compiled.declaration,
            request.variables,
            appointment=request.appointment,
            link=self._clinic["portal_url"] or None,
        )
        values["text"] = request.text
        values["clinic"] = self._clinic
        values["patient"] = MappingProxyType({"given_name": recipient.given_name})
        values[FORMATTER] = Formatter(
            self._locales[compiled.language],
            zone(recipient.time_zone or self._default_zone),
            self._currency,
            CONNECTORS.get(compiled.language, ", "),
        )
        text = layout(self._run(compiled, compiled.body, values))
        if request.subject:
            subject = request.subject
        elif compiled.subject is not None:
            subject = " ".join(self._run(compiled, compiled.subject, values).split())
        else:
            subject = self._neutral_subject(compiled.language)
        return Message(request=request, text=text, subject=subject, language=compiled.language,
                       template=compiled.name)

    def _choose(self, name: str, language: str) -> Compiled:
        by_lang = self._templates.get(name)
        if by_lang is None:
            raise RenderError(f"no template named {name!r}; choose one of: {', '.join(self.template_names())}")
        if language in by_lang:
            return by_lang[language]
        if DEFAULT_LANGUAGE in by_lang:
            return by_lang[DEFAULT_LANGUAGE]
        return by_lang[min(by_lang)]

    @staticmethod
    def _run(compiled: Compiled, template: Template, values: dict[str, Any]) -> str:
        where = f"template {compiled.name!r} ({compiled.language}, {compiled.origin})"
        try:
            return template.render(values)
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
