"""``emrcomm templates``: every template this clinic can name in a request — the built-ins and
its own — with the languages it is written in and the variables it takes, as a table for staff,
``--markdown`` for docs/templates.md, or ``--json``."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from emrcomm import Command, print_result
from emrcomm_templates.catalog import CONTEXT_NAMES, IMPLICIT

if TYPE_CHECKING:
    from emrcomm_templates.plugin import Plugin


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--markdown", action="store_true", help="a Markdown table (what docs/templates.md shows)")


def _variables(types: Mapping[str, str]) -> str:
    return ", ".join(f"{name} ({kind})" for name, kind in sorted(types.items())) or "none"


def rows(plugin: Plugin) -> list[dict[str, Any]]:
    return [{"template": name, **plugin.describe(name)} for name in plugin.template_names()]


def markdown(found: list[dict[str, Any]]) -> str:
    lines = ["| template | languages | required variables | optional variables |", "|---|---|---|---|"]
    lines += [f"| `{r['template']}` | {', '.join(r['languages'])} | {_variables(r['required'])} | "
              f"{_variables(r['optional'])} |" for r in found]
    return "\n".join(lines)


def _run(args: argparse.Namespace, plugin: Plugin) -> int:
    found = rows(plugin)
    shared = ", ".join(sorted({*CONTEXT_NAMES, *IMPLICIT}))
    if args.markdown:
        text = markdown(found)
    else:
        width = max(len(r["template"]) for r in found)
        text = "\n".join(f"{r['template']:<{width}}  [{', '.join(r['languages'])}]  required: "
                         f"{_variables(r['required'])}; optional: {_variables(r['optional'])}" for r in found)
        text += f"\nEvery template also sees: {shared}."
    print_result(args, {"templates": found, "every_template_sees": sorted({*CONTEXT_NAMES, *IMPLICIT})}, text)
    return 0


COMMANDS = [Command("templates", "the templates a request can name, their languages and variables", _run, _arguments,
                    read_only=True)]
