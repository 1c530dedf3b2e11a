"""The benchmark harness still runs: ``benchmarks/run.py --tiny --json`` prints every key, and
``benchmarks/detector.py`` reads the labelled files others write (a blind set: label, lang,
category, text, with or without a header line).

Speed is never asserted here; only that the harness works, so that it cannot rot.
"""

from __future__ import annotations

import json
import subprocess
import sys

from support import REPO

KEYS = {"b1_sms_p50_ms", "b1_sms_p99_ms", "b1_sms_per_s", "b1_portal_p99_ms", "b1_group_sms_per_s",
        "b3_inline_ratio_vs_raw", "b3_inline_ratio_vs_apprise", "b3_floor_ratio_vs_raw", "b3_stored_bytes_per_message",
        "b5_startup_s",
        "b6_dedup_ratio_largest_smallest"}


def test_run_tiny_prints_every_key_as_json() -> None:
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--tiny", "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert set(report["keys"]) >= KEYS
    assert all(isinstance(report["keys"][k], float) and report["keys"][k] > 0
               for k in KEYS - {"b3_inline_ratio_vs_apprise"})
    assert report["machine"]["cores"] and report["machine"]["sqlite"]
    # Counts, not times: an inline send makes exactly one durable (fsync'd) commit.
    assert report["keys"]["b3_durable_commits_per_send"] == 1.0


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


def _detector_benchmark():  # type: ignore[no-untyped-def]
    import importlib.util

    spec = importlib.util.spec_from_file_location("detector_benchmark", REPO / "benchmarks" / "detector.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_detector_benchmark_reads_a_labelled_file_without_a_header(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "blind.tsv"
    path.write_text("clinical\ten\tfinding\tThe spot is gone.\nadmin\tfr\tbilling\tVotre facture est prête.\n",
                    encoding="utf-8")
    rows = _detector_benchmark().read_rows(path)
    assert [(r["label"], r["lang"], r["kind"], r["text"]) for r in rows] == [
        ("clinical", "en", "finding", "The spot is gone."), ("administrative", "fr", "billing", "Votre facture est prête.")]


def test_the_detector_benchmark_reads_a_header_a_byte_order_mark_and_windows_line_ends(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "blind.tsv"
    path.write_bytes("\ufefflabel\tlang\tcategory\ttext\r\nAdmin\ten\tappointment\tSee you at 3.\r\n".encode())
    [row] = _detector_benchmark().read_rows(path)
    assert (row["label"], row["kind"], row["text"]) == ("administrative", "appointment", "See you at 3.")


def test_the_detector_benchmark_names_the_line_of_a_bad_label(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    path = tmp_path / "blind.tsv"
    path.write_text("clinical\ten\tfinding\tok\nclinicl\ten\tfinding\tok\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"blind.tsv:2: label 'clinicl'"):
        _detector_benchmark().read_rows(path)
