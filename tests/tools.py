"""What real servers and packages the tests need, and what to do when one is missing: skip
with the reason when run by hand, fail in CI (tests/run.sh sets EMRCOMM_REQUIRE_SERVERS)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from support import REPO

NODE_MODULES = REPO / "tests" / "node" / "node_modules"
# marker -> (files it needs, how to install them). tests/run.sh installs all of them.
TOOLS: dict[str, tuple[tuple[str, ...], str]] = {
    "kannel": (("/usr/sbin/bearerbox", "/usr/sbin/smsbox", "/usr/lib/kannel/test/fakesmsc"),
               "apt-get install kannel kannel-extras"),
    "postfix": (("/usr/sbin/postfix",), "apt-get install postfix"),
    "chromium": (("/usr/bin/chromium",), "apt-get install chromium"),
    "node": ((str(NODE_MODULES / "@medplum" / "fhir-router" / "package.json"), str(NODE_MODULES / ".bin" / "prism"),
              str(NODE_MODULES / "fhir-kit-client" / "package.json"), str(NODE_MODULES / "jose" / "package.json")),
             "apt-get install nodejs npm, then npm install in tests/node"),
    "npm": ((str(NODE_MODULES / "@medplum" / "definitions" / "package.json"),), "npm install in tests/node"),
    "postgres": (("initdb", "pg_ctl"), "apt-get install postgresql"),
}
REQUIRE = "EMRCOMM_REQUIRE_SERVERS"


def missing(tool: str) -> list[str]:
    paths, _ = TOOLS[tool]
    if tool == "postgres":
        from pgserver import bin_dir

        found = bin_dir()
        return [p for p in paths if found is None or not (found / p).exists()]
    gone = [p for p in paths if not Path(p).exists()]
    if tool == "node" and shutil.which("node") is None:
        gone.append("node")
    return gone


def require(tool: str) -> None:
    """Skip the running test when ``tool`` is missing, or fail it when CI asked for everything."""
    gone = missing(tool)
    if not gone:
        return
    why = f"needs {tool}: {', '.join(gone)} missing ({TOOLS[tool][1]}; tests/run.sh does it)"
    if os.environ.get(REQUIRE):
        pytest.fail(f"{why}; {REQUIRE} is set, so this is a failure, not a skip", pytrace=False)
    pytest.skip(why)
