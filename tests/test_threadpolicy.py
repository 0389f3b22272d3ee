"""The OpenMP wait policy of the live workers: the measured verdict is kept per machine and
applied to the workers, never over what the user set; a pipeline asked for a policy starts its
workers with it and leaves the environment as it found it."""

from __future__ import annotations

import os

import pytest

from fnac import threads
from realtime import cache, threadpolicy


@pytest.fixture(autouse=True)
def clean(monkeypatch, tmp_path):
    monkeypatch.setenv("FNAC_CACHE_DIR", str(tmp_path / "cache"))
    for name in threads.SETTINGS:  # set, then removed: put back as they were afterwards
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setattr(threads, "_defaulted", {})


def run(fps: float, p95: float) -> dict:
    return {"fps": fps, "latency_ms": {"p50": p95 / 2, "p95": p95, "p99": p95}}


def test_spinning_threads_must_clearly_win_the_live_run():
    better = threadpolicy.clearly_better
    assert better(run(29.5, 40), run(25.0, 45))  # more frames
    assert better(run(29.5, 30), run(29.4, 40))  # as many, much shorter p95
    assert not better(run(29.5, 39), run(29.4, 40))  # within the noise: PASSIVE stays
    assert not better(run(20.0, 20), run(29.0, 40))  # fewer frames


def test_the_kept_verdict_goes_to_the_workers_unless_the_user_set_it(monkeypatch):
    threads.share_cores()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE" and threadpolicy.apply() is None
    value = {"policy": "ACTIVE", "reason": "threads: OMP_WAIT_POLICY=ACTIVE (...)"}
    cache.write(threadpolicy.CACHE_KIND, threadpolicy.machine_key(), value)
    assert threadpolicy.apply() == "ACTIVE" and os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    monkeypatch.setattr(threads, "_defaulted", {})
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # the user's, set before share_cores
    threads.share_cores()
    assert threadpolicy.apply() is None and os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_a_pipeline_asked_for_a_policy_sets_it_for_its_workers_then_undoes_it():
    from fnac.weights import DEMO_CHECKPOINT
    from realtime.pipeline import LiveConfig, LivePipeline

    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    config = LiveConfig("synthetic", str(DEMO_CHECKPOINT), omp_wait_policy="ACTIVE")
    pipeline = LivePipeline(config, say=lambda text: None)  # starts nothing before __enter__
    try:
        assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
    finally:
        pipeline.close()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_the_first_headless_demo_measures_the_thread_policy_once(monkeypatch):
    import gui.commands
    import realtime.threadpolicy as threadpolicy

    calls = []

    def fake_measure(checkpoint, seconds, backend):
        calls.append((checkpoint, seconds, backend))
        return {"policy": "ACTIVE", "reason": "threads: measured"}

    monkeypatch.setattr(threadpolicy, "measure", fake_measure)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setattr(threadpolicy, "cached", lambda: None)
    gui.commands.tune_threads_once("demo.pth", "auto")
    assert calls == [("demo.pth", threadpolicy.TUNE_SECONDS, "auto")]
    monkeypatch.setattr(threadpolicy, "cached", lambda: {"policy": "ACTIVE"})  # kept: not again
    gui.commands.tune_threads_once("demo.pth", "auto")
    monkeypatch.setattr(threadpolicy, "cached", lambda: None)
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # the user's choice: not measured
    gui.commands.tune_threads_once("demo.pth", "auto")
    assert len(calls) == 1
