"""The test FHIR server: Medplum's FHIR router behind shim.cjs, started once per test session on
127.0.0.1 (a free port), stopped by its PID, and restartable on the same port with its data kept
(the shim journals every write), for the tests that take the server away in mid-flight.
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
SHIM = HERE / "shim.cjs"
NODE_MODULES = HERE.parent / "node" / "node_modules" / "@medplum"
TOKEN_VARIABLE = "EMRCOMM_TEST_FHIR_TOKEN"


class ShimServer:
    """One shim process at a time; ``stop``/``kill`` and ``start`` again keep port and data."""

    def __init__(self, folder: Path) -> None:
        missing = [p for p in ("fhir-router", "core", "definitions") if not (NODE_MODULES / p).is_dir()]
        if missing:
            raise RuntimeError(f"npm packages @medplum/{', @medplum/'.join(missing)} are missing in tests/node: "
                               "run `bash tests/run.sh` once (it runs npm install there)")
        self.folder = folder
        self.journal = folder / "fhir-journal.jsonl"
        self.token = secrets.token_urlsafe(24)
        self.port = 0
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = (folder / "shim.log").open("ab")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {self.token}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        env = {**os.environ, "FHIR_SHIM_TOKEN": self.token}
        proc = subprocess.Popen(["node", str(SHIM), "--port", str(self.port), "--journal", str(self.journal)],
                                stdout=subprocess.PIPE, stderr=self._log, env=env)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ready else b""
        if not line:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"the FHIR shim did not start within {timeout:g} s; see {self.folder / 'shim.log'}")
        info = json.loads(line)
        self.port, self.pid, self._proc = info["port"], info["pid"], proc

    def stop(self) -> None:
        """A clean stop (SIGTERM to its PID)."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """Gone at once, as a crashed server is (SIGKILL to its PID)."""
        self._signal(signal.SIGKILL)

    def pause(self) -> None:
        """Frozen (SIGSTOP to its PID): connections are taken by the kernel and never answered,
        as a server too slow for any timeout; ``resume`` wakes it."""
        assert self.pid is not None
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.pid is not None
        os.kill(self.pid, signal.SIGCONT)

    def _signal(self, sig: int) -> None:
        if self._proc is None or self.pid is None:
            return
        if self._proc.poll() is None:
            os.kill(self.pid, sig)
            os.kill(self.pid, signal.SIGCONT)  # a paused one too
        self._proc.wait(timeout=30)
        self.pid, self._proc = None, None

    def close(self) -> None:
        """Stop the server and remove its folder (journal, log)."""
        self.stop()
        self.session.close()
        self._log.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def wait_until_dead(self, timeout: float = 30.0) -> None:
        """For the shim's own crash control: it kills itself; wait for it and forget it."""
        assert self._proc is not None
        self._proc.wait(timeout=timeout)
        self.pid, self._proc = None, None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def ensure_running(self) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            self._proc, self.pid = None, None
        if self._proc is None:
            self.start()

    # ------------------------------------------------------------------ reading and controlling
    def control(self, what: str, **params: Any) -> dict[str, Any]:
        method = "GET" if what == "stats" else "POST"
        resp = self.session.request(method, f"{self.base_url}/__shim/{what}", params=params, timeout=10)
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    def reset(self) -> None:
        self.control("reset")

    def crash_after_writes(self, n: int) -> None:
        self.control("crash", after=n)

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        resp = self.session.get(f"{self.base_url}/{path}", params=params, timeout=10)
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    def search(self, resource_type: str, **params: Any) -> list[dict[str, Any]]:
        bundle = self.get(resource_type, _count=10000, **params)
        return [e["resource"] for e in bundle.get("entry", [])]

    def put(self, resource: dict[str, Any]) -> dict[str, Any]:
        resp = self.session.put(f"{self.base_url}/{resource['resourceType']}/{resource['id']}", json=resource,
                                timeout=10)
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data

    def post(self, resource: dict[str, Any]) -> dict[str, Any]:
        resp = self.session.post(f"{self.base_url}/{resource['resourceType']}", json=resource, timeout=10)
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data


_shared: ShimServer | None = None


def shared_server() -> ShimServer:
    """The session's server (started on first use, stopped by PID when the session ends)."""
    global _shared
    if _shared is None:
        folder = Path(tempfile.mkdtemp(prefix="emrcomm-fhir-"))
        server = ShimServer(folder)
        server.start()
        atexit.register(server.close)
        _shared = server
    _shared.ensure_running()
    os.environ[TOKEN_VARIABLE] = _shared.token
    return _shared


def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
