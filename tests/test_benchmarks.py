"""The benchmark harness still runs: ``benchmarks/run.py --tiny --json`` prints every key.

Speed is never asserted here; only that the harness works, so that it cannot rot.
"""

from __future__ import annotations

import json
import subprocess
import sys

from support import REPO

KEYS = {"b1_sms_p50_ms", "b1_sms_p99_ms", "b1_sms_per_s", "b1_portal_p99_ms", "b1_group_sms_per_s",
        "b3_ratio_vs_raw", "b3_ratio_vs_apprise", "b5_startup_s"}


def test_run_tiny_prints_every_key_as_json() -> None:
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--tiny", "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert set(report["keys"]) >= KEYS
    assert all(isinstance(report["keys"][k], float) and report["keys"][k] > 0
               for k in KEYS - {"b3_ratio_vs_apprise"})
    assert report["machine"]["cores"] and report["machine"]["sqlite"]


API_KEYS = {"inprocess_per_s", "http_per_s", "http_p50_ms", "http_p99_ms", "ratio_http_per_s_vs_inprocess",
            "search_p99_ms"}


def test_the_api_benchmark_runs_at_its_smoke_size() -> None:
    """benchmarks/api.py: HTTP beside Host.send, with a real `emrcomm serve` process."""
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "api.py"), "--tiny", "--json"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert set(report["keys"]) >= API_KEYS and all(report["keys"][k] > 0 for k in API_KEYS)
    assert report["http"]["one_connection"]["statuses"] == {"201": 20}
