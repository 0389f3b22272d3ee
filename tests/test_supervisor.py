"""The supervisor's back-off: a worker that keeps dying before its first heartbeat is restarted
later and later, then given up, and the live pipeline says so instead of spinning."""

from __future__ import annotations

import re
import sys
import time

from realtime.supervisor import Supervisor


def run_until_given_up(supervisor: Supervisor, seconds: float = 60.0) -> list[str]:
    events = []
    deadline = time.monotonic() + seconds
    while not supervisor.gave_up and time.monotonic() < deadline:
        events += supervisor.check()
        time.sleep(0.01)
    return events


def test_a_worker_that_keeps_failing_waits_longer_each_time_then_is_given_up():
    supervisor = Supervisor({"w": (sys.exit, 3)}, backoff_s=0.1, backoff_max_s=0.4)
    supervisor.start("w")
    try:
        events = run_until_given_up(supervisor)
    finally:
        supervisor.stop()
    assert supervisor.gave_up == {"w": "died (exit code 3)"}
    assert supervisor.restarts["w"] == supervisor.give_up_after == 5
    delays = [float(d) for d in re.findall(r"restarting in ([0-9.]+) s", "\n".join(events))]
    assert delays == [0.1, 0.2, 0.4, 0.4]  # the first restart is at once, then doubling, capped
    assert "gave up after 5 failed restarts" in events[-1]
    assert supervisor.processes == {}  # stopped and released


def test_a_worker_that_had_sent_heartbeats_is_restarted_at_once():
    supervisor = Supervisor({"w": (sys.exit, 3)})
    supervisor.start("w")
    try:
        supervisor.processes["w"].join(30)
        supervisor.beat("w")  # it had been healthy before it died
        events = supervisor.check()
    finally:
        supervisor.stop()
    assert events == ["w worker died (exit code 3); restarted (1)"]
    assert supervisor.failing["w"] == 1 and not supervisor.pending


def test_the_pipeline_names_a_capture_worker_it_gave_up_on(tmp_path):
    import pytest

    from fnac.weights import DEMO_CHECKPOINT
    from realtime.pipeline import LiveConfig, LivePipeline, PipelineError

    gone = tmp_path / "unplugged.mp4"  # what the capture worker finds each time it starts
    pipeline = LivePipeline(LiveConfig(str(gone), str(DEMO_CHECKPOINT)), say=lambda text: None)
    pipeline.supervisor.backoff_s, pipeline.supervisor.backoff_max_s = 0.1, 0.2
    deadline = time.monotonic() + 120
    with pipeline, pytest.raises(PipelineError) as failure:
        while time.monotonic() < deadline:
            pipeline.next()
    text = str(failure.value)
    assert "capture worker" in text and "given up" in text and "cannot open source" in text


def test_a_worker_still_starting_is_not_taken_for_hung_until_its_start_deadline():
    """Loading and compiling send no heartbeat: longer than ``stall_s`` is no stall then, but a
    worker that says nothing for ``start_s`` is hung at start: restarted, as a failed start."""
    supervisor = Supervisor({"w": (time.sleep, 60)}, stall_s=0.1, start_s=1.0)
    supervisor.start("w")
    first = supervisor.processes["w"]
    try:
        time.sleep(0.5)
        assert supervisor.check() == [] and first.is_alive()
        time.sleep(0.7)
        events = supervisor.check()
        assert supervisor.processes["w"] is not first  # killed, released, started anew
    finally:
        supervisor.stop()
    assert events == ["w worker said nothing in the 1 s it had to start; restarted (1)"]
    assert supervisor.failing["w"] == 1  # the next failure waits (back-off), then gives up
