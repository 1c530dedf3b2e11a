"""The examples of docs/hooks.md, loaded the way the loader loads any plugin: the example's code
a module on ``sys.path``, an entry point naming its class, a config naming the plugin."""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from support import REPO

DOC = (REPO / "docs" / "hooks.md").read_text(encoding="utf-8")


def section(name: str) -> str:
    match = re.search(rf"^## {name}\n(.*?)(?=^## |\Z)", DOC, re.S | re.M)
    assert match, f"docs/hooks.md has no '## {name}' section"
    return match.group(1)


def example(name: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", section(name), re.S)
    assert blocks, f"docs/hooks.md: the {name} section has no python example"
    return blocks[0]


@contextmanager
def example_plugin(name: str, folder: Path) -> Iterator[metadata.EntryPoint]:
    """An entry point ``example`` for the class of the ``name`` section's example, importable
    while the context lasts."""
    module = f"doc_{name}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(example(name), encoding="utf-8")
    namespace: dict[str, object] = {}
    exec(compile(example(name), f"docs/hooks.md#{name}", "exec"), namespace)
    classes = [k for k, v in namespace.items() if inspect.isclass(v) and hasattr(v, name)]
    assert classes, f"the {name} example defines no class implementing it"
    sys.path.insert(0, str(folder))
    try:
        yield metadata.EntryPoint(name="example", value=f"{module}:{classes[-1]}", group="emrcomm")
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop(module, None)
