"""Meta-tests: every hook is documented with a working example and exercised by a test."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pluggy
import pytest

from emrcomm.plugin import NAME
from emrcomm.plugin import spec as hookspecs
from emrcomm.testing import make_context
from support import REPO

HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("emrcomm_"))
DOC = (REPO / "docs" / "hooks.md").read_text(encoding="utf-8")


def section(name: str) -> str:
    match = re.search(rf"^## {name}\n(.*?)(?=^## |\Z)", DOC, re.S | re.M)
    assert match, f"docs/hooks.md has no '## {name}' section"
    return match.group(1)


def example(name: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", section(name), re.S)
    assert blocks, f"docs/hooks.md: the {name} section has no python example"
    return blocks[0]


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


@pytest.mark.parametrize("name", HOOKS)
def test_hook_example_in_the_docs_implements_the_hook(name: str, tmp_path: Path) -> None:
    namespace: dict[str, object] = {}
    exec(compile(example(name), f"docs/hooks.md#{name}", "exec"), namespace)
    classes = [obj for obj in namespace.values() if inspect.isclass(obj) and hasattr(obj, name)]
    assert classes, f"the {name} example defines no class implementing it"
    cls = classes[-1]
    params = inspect.signature(cls).parameters
    plugin = cls(make_context("example", {}, tmp_path)) if params else cls()
    pm = pluggy.PluginManager(NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(plugin, name="example")  # raises if the signature breaks the spec
    pm.check_pending()
    assert [impl.plugin_name for impl in getattr(pm.hook, name).get_hookimpls()] == ["example"]


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_exercised_by_a_test(name: str) -> None:
    here = Path(__file__).resolve()
    users = [p.name for p in here.parent.glob("test_*.py") if p != here and name in p.read_text(encoding="utf-8")]
    assert users, f"no test names {name}"


def test_render_example_really_renders(tmp_path: Path) -> None:
    from emrcomm.model import Request
    from emrcomm.testing import make_recipient

    namespace: dict[str, object] = {}
    exec(example("emrcomm_render"), namespace)
    renderer = namespace["ShoutingRenderer"]()  # type: ignore[operator]
    message = renderer.emrcomm_render(Request("Patient/1", "appointment-reminder", template="shout"),
                                      make_recipient())
    assert message.text == "HELLO ALEX"
