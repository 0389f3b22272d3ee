"""The whole multi-process pipeline: synthetic stream -> capture worker -> inference worker ->
JSON lines and annotated mp4, and nothing left running afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import REPO

from fnac.checkpoint import save_checkpoint
from fnac.config import AudioConfig
from fnac.model import FNAC, ModelConfig
from realtime.messages import LiveResult


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


def listening(pid: int) -> dict[str, set[str]]:
    """What process ``pid`` listens on: {"tcp": {"127.0.0.1:5555", ...}, "unix": {paths}}."""
    import socket
    import struct

    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found: dict[str, set[str]] = {"tcp": set(), "unix": set()}
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in open(f"/proc/net/{table}").read().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            host, port = fields[1].split(":")
            raw = bytes.fromhex(host)
            words = struct.unpack(f"<{len(raw) // 4}I", raw)  # the kernel's byte order, per word
            address = socket.inet_ntop(family, struct.pack(f">{len(words)}I", *words))
            found["tcp"].add(f"{address}:{int(port, 16)}")
    for line in open("/proc/net/unix").read().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[6] in inodes and int(fields[3], 16) & 0x10000:  # ACCEPTCON
            found["unix"].add(fields[7])
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


def fnac(cmd: list, timeout: float, cwd=None) -> subprocess.CompletedProcess:
    """``cmd`` (a command line) run to its end with this checkout on the path; its output kept."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env
    )


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
    result = fnac(cmd, 180, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) >= 3
    first = lines[0]
    assert set(first) >= {"frame", "t", "map", "peak", "box", "confidence", "sounding"}
    assert len(first["map"]) == 7 and len(first["map"][0]) == 7
    assert 0 <= first["peak"][0] < 640 and 0 <= first["peak"][1] < 480
    frames = [line["frame"] for line in lines]
    assert frames == sorted(frames) and len(set(frames)) == len(frames)
    assert frames[0] == 0  # the source's clock starts when the model is ready: none lost to it
    # the video has every frame of the stream up to the last processed one, at the stream's 30
    # fps (not only the processed frames), and the stream's sound
    assert video_facts(video) == (frames[-1] + 1, 30.0, True)
    assert "processed" in result.stderr and "dropped" in result.stderr
    time.sleep(0.5)
    assert not processes_mentioning(str(tmp_path)) and not processes_mentioning("fnac-ipc-")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 4 s stream of the synthetic world as mp4: 160x120 at 15 fps (60 frames), its sound and
    the JSON of its ground truth beside it."""
    from train.synth import write_stream
    from train.synth_stream import StreamScript
    from train.synth_world import World, WorldConfig

    world = World(WorldConfig(classes=8, sample_rate=16000))
    script = StreamScript.draw(world, np.random.default_rng(3), 4.0, fps=15, size=(160, 120))
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    write_stream(path, script)
    return path


def video_facts(path) -> tuple[int, float, bool]:
    """(frames, frame rate, whether it has a sound track) of an mp4, decoded."""
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video))
        return frames, float(video.average_rate), bool(container.streams.audio)


@pytest.mark.parametrize("flag", ["--offline", pytest.param("--fast", marks=pytest.mark.slow)])
def test_offline_processes_every_frame_of_a_file_in_order(checkpoint, clip, tmp_path, flag):
    jsonl, video = tmp_path / "out.jsonl", tmp_path / "out.mp4"
    cmd = run_command(
        checkpoint, clip, 600, flag, "--jsonl", jsonl, "--backend", "eager", "--out", video
    )
    result = fnac(cmd, 300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(60))  # every frame, in order
    assert all(line["latency_ms"] > 0 for line in lines)  # from each frame's read
    assert "dropped 0 stale frames" in result.stderr and "frames 60/60" in result.stderr
    assert all(line["truth"] for line in lines)  # the world's stream carries its ground truth
    # the audio each map came from ends at its frame: none was cut short by the fast reading
    assert all(abs(line["audio"]["end"] - line["t"]) < 0.11 for line in lines[10:])
    assert video_facts(video) == (60, 15.0, True)  # the clip's frames, rate and sound


def test_offline_is_for_files_and_a_finite_synthetic_world(checkpoint, tmp_path):
    for source, extra, message in (
        ("0", [], "a camera, a URL or --listen runs live"),
        ("synthetic", [], "needs --seconds"),
    ):
        cmd = run_command(checkpoint, source, 1, "--offline", *extra)
        if source == "synthetic":
            cmd = [c for c in cmd if c not in ("--seconds", "1")]
        result = fnac(cmd, 60, cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]


def test_run_with_a_bad_source_fails_clearly(checkpoint, tmp_path):
    cmd = run_command(checkpoint, "nowhere.mp4", 1)
    result = fnac(cmd, 60)
    assert result.returncode == 2 and "cannot open source" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # 16 s of stream; by default: the warm standby and tests/test_gui.py's kill
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
    result = fnac(cmd, 300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    for r in (report["reference"], report["backends"]["cpu"]):
        assert r["fps"] > 0 and r["throughput_fps"] > 0 and r["dropped"] >= 0
        assert set(r["latency_ms"]) == {"p50", "p95", "p99"}
        assert set(r["stages_ms"]) >= {"wait", "audio", "preprocess", "infer", "result"}
        assert all(v >= 0 for v in r["stages_ms"].values())
    assert {"publish", "deliver"} <= set(report["backends"]["cpu"]["stages_ms"])  # live, 2 hops
    assert report["capture_ms"]["make"] > 0 and report["capture_ms"]["encode"] > 0
    assert "stage ms" in result.stdout and "capture side" in result.stdout
    assert report["backends"]["cpu"]["speedup"] > 0
    # the cpu backend's maps against eager's: the bounds of tests/test_engines.py (bf16 or fp32)
    near = report["backends"]["cpu"]["vs_eager"]
    assert near["max_diff"] < 0.03 and near["min_corr"] > 0.99 and near["peak_within_1"] == 1.0
    assert report["machine"]["cores"] >= 1 and report["machine"]["torch"]
    assert "reference" in result.stdout and "capacity fps" in result.stdout
    assert result.stdout.startswith("machine: ") and "map diff" in result.stdout
    # what auto takes, under the table (pinned to cpu in the tests: tests/conftest.py)
    assert report["auto"]["backend"] == "cpu"
    assert "\nauto: cpu (FNAC_BACKEND=cpu: not measured)" in result.stdout


@pytest.mark.slow  # torch.compile of both encoders, twice: minutes on 2 cores
@pytest.mark.timeout(900)  # with a cold compile cache
def test_bench_reports_a_live_row_for_compile(tmp_path):
    """The worker compiles during its warm-up, not on its first live frames: no restart, and
    frames come through (it once sent no heartbeat while it recompiled, restarted for ever)."""
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "fnac.cli", "bench", "--seconds", "3", "--backends", "compile"]
    result = fnac([*cmd, "--json", out], 900, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no heartbeat" not in result.stderr and "restarted" not in result.stderr
    assert json.loads(out.read_text())["backends"]["compile"]["fps"] > 1


@pytest.mark.slow  # 24 s of stream
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


def kill_and_await_results(pipeline, worker: str, stamp: str, timeout_s: float):
    """SIGKILL ``worker``; the first result whose ``stamp`` is later than the kill, and the
    seconds it took (None, timeout_s when none came)."""
    import signal

    os.kill(pipeline.supervisor.processes[worker].pid, signal.SIGKILL)
    killed_at = time.monotonic()
    while time.monotonic() < killed_at + timeout_s:
        result = pipeline.next()
        if isinstance(result, LiveResult) and result.stamps[stamp] > killed_at:
            return result, time.monotonic() - killed_at
    return None, timeout_s


def test_with_a_warm_standby_results_resume_within_two_seconds_of_a_kill(checkpoint):

    from realtime.pipeline import LiveConfig, LivePipeline

    said: list[str] = []
    with LivePipeline(
        LiveConfig("synthetic", str(checkpoint), standby=True), say=said.append
    ) as pipeline:
        deadline = time.monotonic() + 120
        while not any("standby ready" in s for s in said) and time.monotonic() < deadline:
            pipeline.next()
        assert any("standby ready" in s for s in said), said
        spare = pipeline.supervisor.spares["inference"][0].pid
        killed = pipeline.supervisor.processes["inference"].pid
        resumed, seconds = kill_and_await_results(pipeline, "inference", "publish", 30)
        assert resumed is not None, said
        assert seconds < 2.0, f"{seconds:.2f} s: {said}"
        print(f"results resumed {seconds:.2f} s after the kill")  # for the docs (pytest -s)
        assert pipeline.supervisor.processes["inference"].pid == spare
        assert any("restarted from the warm standby" in s for s in said)
        deadline = time.monotonic() + 120  # and a new spare is made ready for the next time
        while not pipeline.supervisor.spares.get("inference") and time.monotonic() < deadline:
            pipeline.next()
        assert pipeline.supervisor.spares["inference"][0].pid not in (spare, killed)
    assert not processes_mentioning("fnac-ipc-")


def test_a_running_pipeline_listens_only_in_its_private_folder(checkpoint, tmp_path):
    """(With a checkpoint that carries its own sounding calibration, which the worker uses; and
    workers started with the thread-pool settings that let them share the cores.)"""
    from fnac.checkpoint import load_checkpoint, save_calibrated
    from realtime.pipeline import LiveConfig, LivePipeline

    calibrated = save_calibrated(tmp_path / "cal.pth", load_checkpoint(checkpoint), 0.123, "test")
    said: list[str] = []
    with LivePipeline(LiveConfig("synthetic", str(calibrated)), say=said.append) as pipeline:
        assert pipeline.ready.score_mid == 0.123 and pipeline.ready.calibrated
        assert "threshold 0.123 from the checkpoint's calibration" in said[0]
        while pipeline.next() is None:
            pass
        folder = pipeline.folder
        assert os.stat(folder).st_mode & 0o777 == 0o700
        workers = [p.pid for p in pipeline.supervisor.processes.values()]
        sockets = [listening(pid) for pid in (*workers, os.getpid())]
        environments = [open(f"/proc/{pid}/environ", "rb").read().split(b"\0") for pid in workers]
    assert all(b"OMP_WAIT_POLICY=PASSIVE" in env for env in environments)
    assert all(not s["tcp"] for s in sockets[:-1]), sockets  # the workers: no TCP at all
    assert {p for s in sockets for p in s["unix"]} >= {str(folder / "frames")}
    assert all(p.startswith(f"{folder}/") for s in sockets[:-1] for p in s["unix"]), sockets


def test_a_killed_capture_worker_is_restarted_and_results_resume(checkpoint):

    from realtime.pipeline import LiveConfig, LivePipeline

    said: list[str] = []
    with LivePipeline(LiveConfig("synthetic", str(checkpoint)), say=said.append) as pipeline:
        deadline = time.monotonic() + 120
        first = None
        while first is None and time.monotonic() < deadline:
            first = pipeline.next()
        assert isinstance(first, LiveResult), said
        killed = pipeline.supervisor.processes["capture"].pid
        resumed, seconds = kill_and_await_results(pipeline, "capture", "capture", 60)
        assert resumed is not None, said
        assert any("capture worker died" in s and "restarted" in s for s in said), said
        assert pipeline.supervisor.processes["capture"].pid != killed
        assert resumed.pts <= seconds + 0.5  # the stream started over
    assert not processes_mentioning("fnac-ipc-")


def test_the_link_is_bounded_by_the_bytes_of_its_frames_not_by_a_count():
    """The capture side holds as many messages as LINK_FRAME_BYTES of frames (audio blocks,
    a few kB, share the count), so 1080p frames get fewer places than 640x480 ones and the
    bytes in the link stay bounded whatever the frame size."""
    from realtime.workers import (
        INBOX_HWM,
        LINK_FRAME_BYTES,
        MAX_LINK_HWM,
        MIN_LINK_HWM,
        OFFLINE_LINK_HWM,
        link_hwm,
    )

    places = {}
    for width, height in ((320, 240), (640, 480), (1280, 720), (1920, 1080)):
        frame = width * height * 3
        places[height] = link_hwm(frame, realtime=True)
        assert MIN_LINK_HWM <= places[height] <= MAX_LINK_HWM
        assert places[height] * frame <= LINK_FRAME_BYTES
        # both sides together: LINK_FRAME_BYTES and INBOX_HWM of the largest frames (1080p,
        # where larger ones are shrunk) at most: 131 MB, where 32 messages a side held 400 MB
        assert (
            places[height] + INBOX_HWM
        ) * frame <= LINK_FRAME_BYTES + INBOX_HWM * 1920 * 1080 * 3
    assert places[240] > places[480] > places[720] > places[1080] >= MIN_LINK_HWM
    assert link_hwm(1080 * 1920 * 3, realtime=False) == OFFLINE_LINK_HWM
    assert link_hwm(None, realtime=True) == MIN_LINK_HWM  # a stream that ended before a frame


@pytest.mark.slow  # 10 s of flood
def test_a_flood_from_a_fast_producer_is_dropped_and_memory_stays_bounded(checkpoint):
    """A peer that pushes 640x480 frames and audio as fast as it can (a misbehaving device or
    remote capture): the link's bound holds, the excess is dropped and counted, results go on."""
    import socket
    import threading

    import numpy as np
    import zmq

    from realtime.pipeline import LiveConfig, LivePipeline
    from realtime.soak import rss_mb
    from realtime.wire import Message, encode

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    stop, refused = threading.Event(), [0]

    def flood(push) -> None:
        seq, start = 0, time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            for msg in (
                Message(
                    "audio",
                    seq,
                    {"capture": now},
                    {"samples": np.zeros(1600, np.float32)},
                    {"rate": 16000, "pts": now - start},
                ),
                Message("frame", seq, {"capture": now}, {"image": image}, {"pts": now - start}),
            ):
                try:
                    push.send_multipart(encode(msg), copy=False, flags=zmq.NOBLOCK)
                except zmq.Again:
                    refused[0] += 1
            seq += 1

    config = LiveConfig(None, str(checkpoint), listen=address)
    with LivePipeline(config, say=lambda text: None) as pipeline:
        worker = pipeline.supervisor.processes["inference"].pid
        assert listening(worker)["tcp"] == {address[len("tcp://") :]}  # loopback, as asked
        before = rss_mb(worker)
        context = zmq.Context()
        push = context.socket(zmq.PUSH)
        push.connect(address)
        producer = threading.Thread(target=flood, args=(push,))
        producer.start()
        results, peak, last = 0, before, None
        try:
            start = time.monotonic()
            while time.monotonic() - start < 10:
                result = pipeline.next(timeout_ms=100)
                if isinstance(result, LiveResult):
                    results, last = results + 1, result
                peak = max(peak, rss_mb(worker))
        finally:
            stop.set()
            producer.join()
            push.close(linger=0)
            context.term()
        assert pipeline.supervisor.processes["inference"].pid == worker  # never restarted
    assert peak - before < 250, f"the inference worker grew by {peak - before:.0f} MiB"
    assert results >= 10 and last.dropped > 100 and refused[0] > 0


def test_run_never_imports_torch_and_a_bad_checkpoint_is_one_line_from_the_worker(tmp_path):
    bad = tmp_path / "notes.pth"
    bad.write_text("not a checkpoint")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = fnac(run_command(bad, "synthetic", 1), 60)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "could not start" in result.stderr and "not a PyTorch checkpoint" in result.stderr
    code = (
        "import sys, fnac.cli\n"
        f"try: fnac.cli.main(['run', '--source', 'synthetic', '--checkpoint', {str(bad)!r}])\n"
        "except SystemExit: pass\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip().splitlines()[-1] == "False"  # the worker reads the checkpoint
