"""Meta-tests: every hook is documented with a working example and exercised by a test."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from docs_kit import example_plugin
from emrcomm.config import load_config
from emrcomm.host import Host
from emrcomm.plugin import spec as hookspecs
from emrcomm.plugin.manager import discover
from support import write_config

HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("emrcomm_"))


def test_the_contract_has_the_hooks_the_design_names() -> None:
    assert set(HOOKS) >= {
        "emrcomm_register_channels", "emrcomm_find_recipient", "emrcomm_render", "emrcomm_inspect",
        "emrcomm_plan", "emrcomm_validate", "emrcomm_file_record", "emrcomm_delivery_update",
    }


@pytest.mark.parametrize("name", HOOKS)
def test_hook_spec_says_what_it_returns_and_since_when(name: str) -> None:
    spec = getattr(hookspecs, name)
    doc = inspect.getdoc(spec) or ""
    assert ".. versionadded::" in doc
    firstresult = spec.emrcomm_spec["firstresult"]
    if firstresult:
        assert "Stops at first non-None result" in doc and "None means" in doc
    else:
        assert "Every" in doc  # "Every plugin ... is called / collected"
    hints = inspect.get_annotations(spec)
    assert "return" in hints and all(p in hints for p in inspect.signature(spec).parameters)


def load_example(name: str, folder: Path, settings: str = "") -> Host:
    """A host running the docs' example for hook ``name`` as the loader runs any plugin."""
    with example_plugin(name, folder / "code") as ep:
        return Host(load_config(write_config(folder, f"\n[plugins.example]\n{settings}")),
                    entry_points={**discover(), "example": ep})


@pytest.mark.parametrize("name", HOOKS)
def test_hook_example_in_the_docs_loads_as_a_plugin_and_implements_the_hook(name: str, tmp_path: Path) -> None:
    with load_example(name, tmp_path) as host:
        hooks = dict((p.name, h) for p, h in host.plugins.hooks_of())
    assert name in hooks["example"]


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_exercised_by_a_test(name: str) -> None:
    here = Path(__file__).resolve()
    users = [p.name for p in here.parent.glob("test_*.py") if p != here and name in p.read_text(encoding="utf-8")]
    assert users, f"no test names {name}"


def test_render_example_really_renders_through_the_host(tmp_path: Path) -> None:
    from emrcomm.model import Request

    with load_example("emrcomm_render", tmp_path) as host:
        request = Request("Patient/on-en", "appointment-reminder", template="shout")
        recipient = host.plugins.find_recipient(request)
        assert recipient is not None
        message = host.plugins.render(request, recipient)
    assert message.text == f"HELLO {recipient.given_name.upper()}"
