"""``Host.send_pool``: send_many's work shared out among child processes, with the same
outcomes, in the same order, and the same per-patient and per-address counts as one process."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from emrcomm import audit
from emrcomm.config import load_config
from emrcomm.host import Host
from emrcomm.model import Status
from emrcomm.parallel import SendPool, _Batch
from emrcomm.testing import FixedClock
from support import BASE_CONFIG, write_config
from test_pipeline import reminder

QUEUE = '\n[delivery]\nmode = "queue"\n'
US_EXEMPTION = BASE_CONFIG.replace('turnaround = "two business days"',
                                   'turnaround = "two business days"\nus_healthcare_exemption = true')
NOW = FixedClock()  # 10:00 in Toronto on a Monday, and picklable


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    path = write_config(tmp_path, QUEUE)
    path.write_text(US_EXEMPTION + QUEUE, encoding="utf-8")
    with Host(load_config(path), clock=NOW) as made:
        yield made


@pytest.fixture
def pool(host: Host) -> Iterator[SendPool]:
    with host.send_pool(2, group=4) as made:
        yield made


def test_a_pool_gives_send_manys_outcomes_in_order_from_two_processes(host: Host, pool: SendPool) -> None:
    batch = [reminder("Patient/ny", rid="ny-1"), reminder("Patient/fl", rid="fl-1"),
             {"resourceType": "Nope"},  # malformed: failed, in its place, sent nowhere
             *[reminder(rid=f"on-{n}") for n in range(6)],
             reminder("Patient/ny", rid="ny-2"),  # the US exemption allows one SMS a day: not a second
             reminder("Patient/fl", rid="fl-1")]  # the same request id again: recognised
    outcomes = list(pool.send_many(batch))
    assert [o.request_id for o in outcomes] == ["ny-1", "fl-1", "(unparsed)", *[f"on-{n}" for n in range(6)],
                                                "ny-2", "fl-1"]
    assert outcomes[2].status is Status.FAILED
    assert [o.channels for o in outcomes[:2]] == [("sms",), ("sms",)]
    assert "EXEMPTION_FREQUENCY" in {f.code for f in outcomes[9].findings} and outcomes[9].channels != ("sms",)
    assert "already handled" in outcomes[10].explanation[0]
    assert all(pool.handled), pool.handled  # both processes took a share
    assert audit.verify(host.store, [host.audit.key.public]).ok  # three writers, one intact log


def test_requests_sharing_a_patient_address_or_id_go_to_the_same_process(host: Host, pool: SendPool) -> None:
    batch = _Batch(pool)
    for index, request in enumerate([reminder("Patient/ny", rid="a"), reminder("Patient/fl", rid="b"),
                                     reminder("Patient/ny", rid="c"), reminder("Patient/qc-fr", rid="b")]):
        batch._place(index, request)
    placed = {request.id + request.patient_ref: child for child, waiting in enumerate(batch.waiting)
              for _, request in waiting}
    assert placed["aPatient/ny"] == placed["cPatient/ny"]  # one patient
    assert placed["bPatient/fl"] == placed["bPatient/qc-fr"]  # one request id
    assert placed["aPatient/ny"] != placed["bPatient/fl"]  # nothing shared: the less busy one


def test_a_process_that_dies_is_reported_with_the_requests_whose_outcome_is_unknown(pool: SendPool) -> None:
    child, _ = pool._children[1]
    os.kill(child.pid, signal.SIGKILL)
    child.join(10)
    got: list[str] = []
    with pytest.raises(RuntimeError, match=r"died|gone") as err:
        patients = ("Patient/on-en", "Patient/fl", "Patient/qc-fr", "Patient/ny")  # shared out: some to the dead one
        for outcome in pool.send_many([reminder(patients[n % 4], rid=f"k-{n}") for n in range(12)]):
            got.append(outcome.request_id)
    assert "not reported" in str(err.value)
    assert got == [f"k-{n}" for n in range(len(got))]  # what was yielded is a prefix, in order
    assert f"k-{len(got)}" in str(err.value)  # the first not reported is named
    with pytest.raises(RuntimeError, match="closed"):  # and the pool is done
        pool.send_many([reminder()])


def test_a_pool_needs_queue_mode_and_a_clock_it_can_hand_on(tmp_path: Path) -> None:
    with Host(load_config(write_config(tmp_path)), clock=NOW) as inline, pytest.raises(ValueError, match="queue"):
        inline.send_pool(2)
    with Host(load_config(write_config(tmp_path, QUEUE)), clock=lambda: NOW.now) as lambda_clock, \
            pytest.raises(ValueError, match="picklable"):
        lambda_clock.send_pool(2)


def test_closing_a_pool_stops_its_processes(host: Host) -> None:
    pool = host.send_pool(2)
    children = [child for child, _ in pool._children]
    pool.close()
    assert not any(child.is_alive() for child in children)
    with pytest.raises(RuntimeError, match="closed"):
        pool.send_many([reminder()])


def test_a_batch_left_half_read_does_not_mix_with_the_next(pool: SendPool) -> None:
    patients = ("Patient/on-en", "Patient/fl", "Patient/qc-fr", "Patient/ny")
    first = pool.send_many([reminder(patients[n % 4], rid=f"x-{n}") for n in range(12)])
    assert next(first).request_id == "x-0"
    first.close()  # the caller stops reading: the children's answers are still read, not left in the pipes
    outcomes = list(pool.send_many([reminder(patients[n % 4], rid=f"y-{n}") for n in range(8)]))
    assert [o.request_id for o in outcomes] == [f"y-{n}" for n in range(8)]


def test_one_batch_at_a_time(pool: SendPool) -> None:
    first = pool.send_many([reminder(rid="one-0"), reminder(rid="one-1")])
    assert next(first).request_id == "one-0"
    with pytest.raises(RuntimeError, match="another batch"):
        list(pool.send_many([reminder(rid="two-0")]))
    assert [o.request_id for o in first] == ["one-1"]  # the first goes on
    assert [o.request_id for o in pool.send_many([reminder(rid="two-0")])] == ["two-0"]  # and then the next


def test_a_failure_here_reports_what_the_children_did_and_names_the_rest(pool: SendPool) -> None:
    patients = ("Patient/on-en", "Patient/fl", "Patient/qc-fr", "Patient/ny")

    def requests() -> Iterator[object]:
        for n in range(10):
            yield reminder(patients[n % 4], rid=f"e-{n}")
        raise ValueError("the EMR's query failed")

    got: list[str] = []
    with pytest.raises(RuntimeError, match="could not go on") as err:
        for outcome in pool.send_many(requests()):
            got.append(outcome.request_id)
    assert isinstance(err.value.__cause__, ValueError)
    assert got == [f"e-{n}" for n in range(len(got))] and got  # what was handed over came back, in order
    assert all(f"e-{n}" in str(err.value) for n in range(len(got), 10))  # the rest, named
