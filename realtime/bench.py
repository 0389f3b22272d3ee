"""``fnac bench``: every backend against a naive reference on the same synthetic 640x480 stream.

For each variant, (a) live: the source paced at 30 fps for ``--seconds``, newest frame wins:
processed fps, frames dropped as stale, capture->result latency percentiles and per-stage times;
(b) capacity: the source unpaced, every frame processed: frames per second. The backends run in
the real pipeline (capture and inference workers over ZeroMQ) for (a) and in one process for (b).
The reference is what a first implementation does: one process, float32 eager, both encoders
recomputed on every frame, the scipy spectrogram and the PIL resize. Rates such as the audio
embedding's are counted in stream time, so both runs do the same work per second of stream.
Each backend's maps are also held against eager's on scenes of the synthetic world (``vs_eager``),
and the report names the machine: figures from different processors are not comparable. Under
the table, one line says what ``--backend auto`` takes for this checkpoint on this machine and
why (``realtime.autoselect``: from its cache, or measured once and kept).
"""

from __future__ import annotations

import queue
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from realtime.backends import CONCRETE
from realtime.stats import percentiles_ms

if TYPE_CHECKING:
    import torch

    from realtime.engines import Engine
    from realtime.stage import InferenceStage

STREAM = {"size": (640, 480), "fps": 30.0, "sample_rate": 16000}
STAGES = ("audio", "preprocess", "infer", "result")
AGREEMENT_SCENES = 16
FIRST_RESULT_S = 120.0  # the live runs wait this long for their first frame / result


def _summary(
    latencies: list[float],
    stamps: list[dict[str, float]],
    processed: int,
    dropped: int,
    seconds: float,
) -> dict[str, Any]:
    stages = {}
    previous = "start"
    for name in STAGES:
        stages[name] = (
            float(np.mean([s[name] - s[previous] for s in stamps])) * 1000 if stamps else 0.0
        )
        previous = name
    stages["wait"] = (
        float(np.mean([s["start"] - s["capture"] for s in stamps])) * 1000 if stamps else 0.0
    )
    for name, after in (("publish", "result"), ("deliver", "publish")):
        # the message made and sent; then on its way to the reading process (live runs only)
        following = "received" if name == "deliver" else name
        spans = [s[following] - s[after] for s in stamps if following in s and after in s]
        if spans:
            stages[name] = float(np.mean(spans)) * 1000
    return {
        "fps": processed / seconds,
        "dropped": dropped,
        "latency_ms": percentiles_ms(latencies, digits=2),
        "stages_ms": {k: round(v, 2) for k, v in stages.items()},
    }


def _source(realtime: bool, seconds: float | None):
    from realtime.sources import SyntheticSource

    return SyntheticSource(
        size=STREAM["size"],
        fps=STREAM["fps"],
        sample_rate=STREAM["sample_rate"],
        seconds=seconds,
        realtime=realtime,
    )


def capture_cost(frames: int = 60) -> dict[str, float]:
    """What the capture worker spends on a frame of the stream, in ms: drawing the synthetic
    world's frame and its audio (``make``) and turning the packets into wire messages
    (``encode``), unpaced, in this process."""
    from realtime.messages import FramePacket
    from realtime.wire import encode

    made = coded = 0.0
    count = 0
    with _source(False, None) as source:
        packets = iter(source)
        while count < frames:
            t0 = time.perf_counter()
            packet = next(packets)
            t1 = time.perf_counter()
            encode(packet.to_wire())
            made, coded = made + t1 - t0, coded + time.perf_counter() - t1
            count += isinstance(packet, FramePacket)
    return {"make": 1000 * made / frames, "encode": 1000 * coded / frames}


def capacity(stage: InferenceStage, seconds: float) -> float:
    """Frames per second when every frame of an unpaced stream is processed."""
    from realtime.messages import AudioPacket

    frames, start = 0, time.monotonic()
    with _source(False, None) as source:
        for packet in source:
            if isinstance(packet, AudioPacket):
                stage.add_audio(packet)
                continue
            stage.process(packet)
            frames += 1
            if time.monotonic() - start >= seconds:
                break
    return frames / (time.monotonic() - start)


def live_in_process(stage: InferenceStage, seconds: float) -> dict[str, Any]:
    """The reference's live run: a capture thread queues every packet, and this process takes
    them in as the inference worker does (``Intake``: all the audio, the newest frame)."""
    from realtime.stage import Intake

    packets: queue.SimpleQueue = queue.SimpleQueue()
    source = _source(True, seconds + 1)

    def capture() -> None:
        for packet in source:
            packets.put(packet)

    thread = threading.Thread(target=capture, daemon=True)
    thread.start()
    intake = Intake(stage)
    latencies, stamps, start = [], [], None
    deadline = time.monotonic() + FIRST_RESULT_S
    while start is None or time.monotonic() - start < seconds:
        waiting = []
        while not packets.empty():
            waiting.append(packets.get())
        frame = intake.next_frame(waiting)
        if frame is None:
            if start is None and time.monotonic() > deadline:
                raise RuntimeError(f"the reference got no frame within {FIRST_RESULT_S:.0f} s")
            time.sleep(0.002)
            continue
        start = time.monotonic() if start is None else start  # the clock starts at frame one
        result = stage.process(frame)
        latencies.append(time.monotonic() - frame.t)
        stamps.append(result.stamps)
        intake.processed += 1
    source.close()
    thread.join(2)
    return _summary(latencies, stamps, intake.processed, intake.dropped, seconds)


def live_pipeline(
    checkpoint: str,
    backend: str,
    seconds: float,
    engine_dir: str | None = None,
    omp_wait_policy: str | None = None,
) -> dict[str, Any]:
    """A backend's live run through the real multi-process pipeline (its workers with
    ``omp_wait_policy`` when given)."""
    from realtime.messages import LiveResult
    from realtime.pipeline import LiveConfig, LivePipeline

    latencies, stamps, dropped = [], [], 0
    config = LiveConfig(
        "synthetic", checkpoint, backend, engine_dir=engine_dir, omp_wait_policy=omp_wait_policy
    )
    with LivePipeline(config, say=lambda text: None) as pipeline:
        start, deadline = None, time.monotonic() + FIRST_RESULT_S
        while start is None or time.monotonic() - start < seconds:
            result = pipeline.next(timeout_ms=100)
            if not isinstance(result, LiveResult):
                if start is None and time.monotonic() > deadline:
                    raise RuntimeError(f"{backend}: no result within {FIRST_RESULT_S:.0f} s")
                continue
            # the clock starts at the first result: the capture worker's start-up (a second or
            # more on a busy machine) is not live time, and a short run would count none
            start = time.monotonic() if start is None else start
            latencies.append(time.monotonic() - result.origin_time)
            stamps.append({**result.stamps, "received": time.monotonic()})
            dropped = result.dropped
    return _summary(latencies, stamps, len(latencies), dropped, seconds)


def agreement(
    engine: Engine, eager_maps: torch.Tensor, frames: torch.Tensor, specs: torch.Tensor
) -> dict[str, float]:
    """How close ``engine``'s maps are to eager's on the same inputs: the largest difference as
    a share of each map's range (``max_diff``), the lowest correlation (``min_corr``), and the
    share of maps whose hottest cell is eager's or one of its 8 neighbours (``peak_within_1``)."""
    from realtime.autoselect import hot_cell_near

    maps = engine.maps(engine.encode_image(frames), engine.encode_audio(specs)).double()
    eager = eager_maps.double()
    span = (eager.amax(dim=(1, 2)) - eager.amin(dim=(1, 2))).clamp_min(1e-12)
    diff = (maps - eager).abs().amax(dim=(1, 2)) / span
    corr = [np.corrcoef(a.flatten(), b.flatten())[0, 1] for a, b in zip(eager, maps, strict=True)]
    near = hot_cell_near(maps, eager)
    return {
        "max_diff": float(diff.max()),
        "min_corr": float(min(corr)),
        "peak_within_1": float(near.double().mean()),
    }


def available_backends() -> list[str]:
    names = [name for name in CONCRETE if name != "tensorrt"]
    try:
        import torch
        import torch_tensorrt  # noqa: F401

        if torch.cuda.is_available():
            names.append("tensorrt")
    except ImportError:
        pass
    return names


def bench(
    checkpoint: str | None, backends: list[str], seconds: float, engine_dir: str | None = None
) -> dict[str, Any]:
    """The reference and each backend, live and unpaced, with their maps against eager's."""
    import torch

    from fnac.checkpoint import load_checkpoint, save_checkpoint
    from fnac.config import AudioConfig
    from fnac.hardware import machine
    from fnac.model import FNAC
    from realtime.autoselect import choose
    from realtime.engines import Engine
    from realtime.quantize import calibration_inputs
    from realtime.registry import make_engine
    from realtime.stage import InferenceStage, NaiveStage

    with tempfile.TemporaryDirectory() as tmp:
        if checkpoint is None:  # timings do not depend on the weights; seeded for vs_eager
            checkpoint = str(Path(tmp) / "random.pth")
            with torch.random.fork_rng():
                torch.manual_seed(0)
                save_checkpoint(checkpoint, FNAC(), AudioConfig(sample_rate=STREAM["sample_rate"]))
        model = load_checkpoint(checkpoint)
        info = model.info
        eager = Engine(model)
        # scenes of the synthetic world that int8's calibration (seed 0) did not see
        frames, specs = calibration_inputs(info.audio, info.image, AGREEMENT_SCENES, seed=1)
        eager_maps = eager.maps(eager.encode_image(frames), eager.encode_audio(specs))
        verdict, _ = choose(model, info.audio, info.image.size, engine_dir, checkpoint)
        reference = NaiveStage(eager, info.audio, info.image)
        reference.warm_up()
        report: dict[str, Any] = {
            "machine": machine(),
            "stream": {**STREAM, "size": list(STREAM["size"])},
            "seconds": seconds,
            "reference": live_in_process(reference, seconds),
            "auto": {"backend": verdict.label, "reason": verdict.reason},
            "capture_ms": capture_cost(),
        }
        report["reference"]["throughput_fps"] = capacity(reference, seconds)
        report["backends"] = {}
        for name in backends:
            engine = make_engine(name, load_checkpoint(checkpoint), engine_dir=engine_dir)
            stage = InferenceStage(engine, info.audio, info.image)
            stage.warm_up()
            result = live_pipeline(checkpoint, name, seconds, engine_dir)
            result["throughput_fps"] = capacity(stage, seconds)
            result["speedup"] = result["throughput_fps"] / report["reference"]["throughput_fps"]
            result["engine"] = engine.describe()
            result["vs_eager"] = agreement(engine, eager_maps, frames, specs)
            report["backends"][name] = result
    return report


def table(report: dict[str, Any]) -> str:
    """The report as a text table under a line naming the machine, over a line saying what
    ``--backend auto`` takes here; the last two columns hold each backend's maps against
    eager's (``agreement``)."""
    from fnac.hardware import describe

    header = ("variant", "live fps", "dropped", "p50 ms", "p95 ms", "p99 ms", "capacity fps")
    rows = [(*header, "speedup", "map diff", "peak +-1")]
    for name, r in [("reference", report["reference"]), *report["backends"].items()]:
        lat = r["latency_ms"]
        near = r.get("vs_eager")
        rows.append(
            (
                name,
                f"{r['fps']:.1f}",
                str(r["dropped"]),
                f"{lat['p50']:.0f}",
                f"{lat['p95']:.0f}",
                f"{lat['p99']:.0f}",
                f"{r['throughput_fps']:.1f}",
                f"{r.get('speedup', 1.0):.2f}",
                f"{near['max_diff']:.1%}" if near else "-",
                f"{near['peak_within_1']:.0%}" if near else "-",
            )
        )
    auto = [report["auto"]["reason"]] if report.get("auto") else []
    return "\n".join(
        [f"machine: {describe(report['machine'])}", *_columns(rows), *auto, *stage_table(report)]
    )


STAGE_COLUMNS = ("wait", "audio", "preprocess", "infer", "result", "publish", "deliver")


def stage_table(report: dict[str, Any]) -> list[str]:
    """Where a live frame's time goes, mean ms a processed frame: waiting in the link (``wait``:
    capture stamp -> the stage takes it), the audio embedding (a share of the frames recompute
    it), preprocessing, the image encoder and the map, the peak, box and confidence, making and
    sending the message, and its way to the reading process; and the capture side's cost."""
    rows = [("stage ms", *STAGE_COLUMNS)]
    for name, r in [("reference", report["reference"]), *report["backends"].items()]:
        stages = r.get("stages_ms", {})
        rows.append((name, *(f"{stages[k]:.1f}" if k in stages else "-" for k in STAGE_COLUMNS)))
    lines = ["", *_columns(rows)]
    if "capture_ms" in report:
        cost = report["capture_ms"]
        lines.append(
            f"capture side, a frame of the synthetic 640x480 stream: drawing it and its sound "
            f"{cost['make']:.1f} ms, encoding the messages {cost['encode']:.1f} ms"
        )
    return lines


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]


def chosen_backends(names: str | None) -> list[str]:
    """``--backends`` as a list (blank names ignored), every available backend when none is
    named; an unknown name is refused before anything runs."""
    named = [name.strip() for name in (names or "").split(",") if name.strip()]
    if "auto" in named:
        raise ValueError(
            "auto is not timed on its own: it takes one of the others, and the line under the "
            "table says which and why; name the backends to time (choose from "
            f"{', '.join(CONCRETE)})"
        )
    unknown = [name for name in named if name not in CONCRETE]
    if unknown:
        raise ValueError(f"unknown backend {', '.join(unknown)}: choose from {', '.join(CONCRETE)}")
    return named or available_backends()
