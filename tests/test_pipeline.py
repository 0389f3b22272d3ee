"""The whole multi-process pipeline: synthetic stream -> capture worker -> inference worker ->
JSON lines and annotated mp4, and nothing left running afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO

from fnac.checkpoint import save_checkpoint
from fnac.config import AudioConfig
from fnac.model import FNAC, ModelConfig


def processes_mentioning(marker: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline:
            found.append(f"{pid}: {cmdline[:120]}")
    return found


def run_command(checkpoint, source: str, seconds: float, *extra) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fnac.cli",
        "run",
        "--source",
        source,
        "--checkpoint",
        str(checkpoint),
        "--seconds",
        str(seconds),
        *map(str, extra),
    ]


def start_run_and_find_worker(cmd: list[str]) -> tuple[subprocess.Popen, int]:
    """Start ``fnac run`` and read its stderr until it names its inference worker's pid."""
    import re

    proc = subprocess.Popen(
        cmd,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    for line in proc.stderr:
        match = re.search(r"inference worker pid (\d+)", line)
        if match:
            return proc, int(match.group(1))
    proc.kill()
    raise AssertionError("the run never reported its inference worker")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ck") / "model.pth"
    save_checkpoint(path, FNAC(ModelConfig(dim=32)), AudioConfig(sample_rate=16000))
    return path


def test_run_on_the_synthetic_stream_writes_results_and_cleans_up(checkpoint, tmp_path):
    jsonl, video = tmp_path / "out.jsonl", tmp_path / "out.mp4"
    cmd = run_command(checkpoint, "synthetic", 6, "--jsonl", jsonl, "--out", video)
    result = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) >= 3
    first = lines[0]
    assert set(first) >= {"frame", "t", "map", "peak", "box", "confidence", "sounding"}
    assert len(first["map"]) == 7 and len(first["map"][0]) == 7
    assert 0 <= first["peak"][0] < 640 and 0 <= first["peak"][1] < 480
    frames = [line["frame"] for line in lines]
    assert frames == sorted(frames) and len(set(frames)) == len(frames)
    assert video.stat().st_size > 1000
    assert "processed" in result.stderr and "dropped" in result.stderr
    time.sleep(0.5)
    assert not processes_mentioning(str(tmp_path)) and not processes_mentioning("fnac-ipc-")


def test_run_with_a_bad_source_fails_clearly(checkpoint, tmp_path):
    cmd = run_command(checkpoint, "nowhere.mp4", 1)
    result = subprocess.run(
        cmd, capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert result.returncode == 2 and "cannot open source" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_killed_inference_worker_is_restarted_and_results_resume(checkpoint, tmp_path):
    import signal

    jsonl = tmp_path / "out.jsonl"
    cmd = run_command(checkpoint, "synthetic", 16, "--jsonl", jsonl)
    proc, pid = start_run_and_find_worker(cmd)
    try:
        time.sleep(3)
        killed_at = len(jsonl.read_text().splitlines())
        os.kill(pid, signal.SIGKILL)
        rest = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest[-3000:]
    assert "inference worker died" in rest and "restarted" in rest
    assert "inference worker back" in rest
    assert len(jsonl.read_text().splitlines()) > killed_at + 3  # results resumed
    assert not processes_mentioning("fnac-ipc-")


def test_bench_reports_every_variant(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [
        sys.executable,
        "-m",
        "fnac.cli",
        "bench",
        "--seconds",
        "1",
        "--backends",
        "cpu",
        "--json",
        str(out),
    ]
    result = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    for r in (report["reference"], report["backends"]["cpu"]):
        assert r["fps"] > 0 and r["throughput_fps"] > 0 and r["dropped"] >= 0
        assert set(r["latency_ms"]) == {"p50", "p95", "p99"}
        assert set(r["stages_ms"]) >= {"audio", "preprocess", "infer", "result"}
    assert report["backends"]["cpu"]["speedup"] > 0
    assert "reference" in result.stdout and "capacity fps" in result.stdout


def test_a_hung_inference_worker_is_detected_by_its_heartbeats(checkpoint, tmp_path):
    import signal

    jsonl = tmp_path / "out.jsonl"
    proc, pid = start_run_and_find_worker(
        run_command(checkpoint, "synthetic", 24, "--jsonl", jsonl)
    )
    try:
        time.sleep(2)
        os.kill(pid, signal.SIGSTOP)  # alive but hung: only the missing heartbeats tell
        hung_at = len(jsonl.read_text().splitlines())
        rest = proc.stderr.read()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest[-3000:]
    assert "inference worker sent no heartbeat" in rest and "inference worker back" in rest
    assert len(jsonl.read_text().splitlines()) > hung_at + 3
    assert not processes_mentioning("fnac-ipc-")


def test_capture_and_inference_on_different_hosts_over_curve(checkpoint, tmp_path):
    """fnac run --listen on the inference side, fnac capture on the capture side (here both on
    loopback, with the keys an exposed address requires)."""
    import socket

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    keys = tmp_path / "keys"
    subprocess.run([sys.executable, "-m", "fnac.cli", "keys", keys], check=True, env=env)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    jsonl = tmp_path / "remote.jsonl"
    cmd = [sys.executable, "-m", "fnac.cli", "run", "--listen", address, "--keys"]
    cmd += [keys / "server.key", "--checkpoint", checkpoint, "--seconds", 40, "--jsonl", jsonl]
    run = subprocess.Popen(
        list(map(str, cmd)), stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        for line in run.stderr:
            if "listening for fnac capture" in line:
                break
        capture = subprocess.run(
            [
                *(sys.executable, "-m", "fnac.cli", "capture", "--source", "synthetic"),
                *("--connect", address, "--keys", str(keys / "client.key"), "--seconds", "4"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert capture.returncode == 0, capture.stderr[-2000:]
        rest = run.stderr.read()  # the run ends with the capture's end of stream
        run.wait(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, rest[-3000:]
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) >= 3 and lines[-1]["t"] > 2.0
    assert not processes_mentioning("fnac-ipc-")


def test_an_exposed_address_without_keys_is_refused(checkpoint):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for cmd in (
        ["run", "--listen", "tcp://0.0.0.0:5999", "--checkpoint", str(checkpoint)],
        ["capture", "--source", "synthetic", "--connect", "tcp://192.0.2.1:5999"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "fnac.cli", *cmd],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert result.returncode == 2 and "keys" in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr
