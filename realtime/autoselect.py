"""``--backend auto``: the backend chosen by measuring the candidates on this machine, once.

Which backend is fastest is a property of the processor that its flags do not tell: bf16 is
native on Zen 5 and faster than float32 there, native on Xeons without AMX and slower there,
emulated on Zen 3 and several times slower; int8 wins wherever it runs, but its maps are only as
good as the quantization of the weights at hand. So ``auto`` measures, and keeps what it found.

What is measured, at batch 1, with torch's thread count and OpenMP wait policy of the process
that measures (the inference worker's own):

- each candidate's time a frame (``time_engine``): after ``WARM_UP`` calls of each encoder, the
  median of ``RUNS`` calls of the image encoder plus one call of the audio encoder times
  ``AUDIO_SHARE`` (the audio embedding is recomputed at 10 Hz against a 30 fps camera: a third of
  a call a frame), on blank input of the checkpoint's shapes. A candidate that takes more than
  ``SLOW_FACTOR`` times the fastest so far on a call after its first is stopped there: it is
  slower, and how much slower is not worth seconds (bf16 emulated on AVX2 takes 0.45 s a call).
- the candidates: ``eager`` (float32, the reference, always a candidate and the fallback),
  ``cpu`` (float32, folded batch norm, channels_last), ``cpu-bf16`` (the same under bf16
  autocast), ``int8`` (where this torch has x86 int8 kernels), and with a CUDA GPU, ``cuda``
  (eager on the GPU) and ``tensorrt`` (when ``fnac export``'s engines for the checkpoint are
  there and Torch-TensorRT imports). ``compile`` is not one: it compiles for minutes on a CPU.
- agreement (``map_agreement``), for the candidates that are not float32 (``cpu-bf16``, ``int8``,
  ``tensorrt``): their maps against eager's on ``AGREEMENT_SCENES`` scenes of the synthetic world
  (``calibration_inputs`` with seed ``AGREEMENT_SEED``; int8's calibration uses seed 0), each map
  min-max normalised to [0, 1]. A candidate agrees when, on every scene, the largest difference
  is at most ``MAX_MAP_DIFF`` (0.15 of the range) and its hottest cell is eager's or one of its 8
  neighbours. Checked fastest first, only for candidates faster than the fastest float32 one,
  until one agrees. (The demo checkpoint's int8 maps are about 0.09 from float32's; a random
  224-px model's about 0.25, refused.)

The verdict is the fastest candidate that agrees; eager always qualifies, so it is never slower
than eager. ``Verdict.reason`` says it on one line, e.g. ``auto: int8 (29.7 ms a frame vs cpu
71.7, eager 93.3, cpu-bf16 >=452; int8 maps within 0.09 of fp32; 2 threads, OMP PASSIVE)``.

What is kept (``realtime.cache``): the timings, keyed by the machine (processor name, family,
model, stepping and a digest of its flags; usable cores; torch's version, CPU kernels, threads;
the OpenMP wait policy; the GPU) and the checkpoint's shapes (image size, spectrogram shape,
embedding size), not its weights; beside them the agreements, keyed also by the checkpoint's
SHA-256 (its content: a copy keeps the verdict, retraining measures the agreement again, about
0.05 s to hash the 45 MB demo checkpoint). Later starts measure nothing they find there.
``FNAC_REMEASURE=1`` measures again (and keeps the new figures); ``FNAC_BACKEND=NAME`` skips all
of it and takes NAME (a backend, or ``cpu-bf16`` / ``cuda``), for scripts and tests that want a
fixed engine without naming it on every command.

Not measured here: the OpenMP wait policy itself, which is read when the OpenMP runtime loads,
before anything can be timed in this process; ``realtime.threadpolicy`` measures it through the
live pipeline, on request, and the supervisor starts the workers with its verdict.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

import torch

from fnac.config import AudioConfig, ImageConfig
from fnac.model import FNAC
from realtime import cache as kept
from realtime.backends import default_engine_dir
from realtime.engines import Engine

log = logging.getLogger(__name__)

WARM_UP = 2  # calls of each encoder before timing (first calls allocate and tune)
RUNS = 5  # timed calls of the image encoder; the median counts
AUDIO_SHARE = 1 / 3  # audio embeddings a frame: 10 Hz against a 30 fps camera
SLOW_FACTOR = 3.0  # a call this many times the fastest so far stops a candidate
MAX_MAP_DIFF = 0.15  # largest difference of min-max normalised maps vs eager's, on any scene
AGREEMENT_SCENES = 6
AGREEMENT_SEED = 1  # not int8's calibration seed (0): scenes it did not see
KEEP_WEIGHTS = 16  # checkpoints whose agreements are kept per machine and shape
CACHE_KIND = "auto"
PIN_ENV, REMEASURE_ENV = "FNAC_BACKEND", "FNAC_REMEASURE"

# A timer: (candidate label, its engine, stop above this many ms or None) -> (ms a frame,
# whether it was stopped early). Tests give fake ones.
Timer = Callable[[str, Engine, "float | None"], tuple[float, bool]]


@dataclass(frozen=True)
class Candidate:
    label: str  # "cpu-bf16"
    backend: str  # the registry's name: "cpu"
    exact: bool  # float32: eager's maps up to rounding (tests/test_engines.py), not checked here
    make: Callable[[], Engine]
    bf16: bool = False
    device: str | None = None


@dataclass(frozen=True)
class Verdict:
    label: str
    backend: str  # what ``realtime.registry.make_engine`` builds, with ``bf16`` and ``device``
    reason: str  # one line
    bf16: bool = False
    device: str | None = None
    measured: bool = True  # False: read from the cache, or pinned


PINS = {  # FNAC_BACKEND's values: label -> (backend, bf16, device)
    "eager": ("eager", False, "cpu"),
    "cpu": ("cpu", False, None),
    "cpu-bf16": ("cpu", True, None),
    "int8": ("int8", False, None),
    "compile": ("compile", False, None),
    "cuda": ("eager", False, "cuda"),
    "tensorrt": ("tensorrt", False, None),
}


def machine_key() -> dict[str, Any]:
    """What the timings depend on besides the checkpoint's shapes."""
    from fnac.hardware import processor, usable_cores

    return {
        **processor(),
        "cores": usable_cores(),
        "torch": torch.__version__,
        "kernels": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def shape_key(image_size: int, audio: AudioConfig, dim: int) -> dict[str, Any]:
    return {"image_size": image_size, "spec": [audio.n_freq, audio.n_frames()], "dim": dim}


def weights_id(model: FNAC, checkpoint: str | Path | None = None) -> str:
    """The SHA-256 of the checkpoint file, else of the weights themselves (a model made in
    memory)."""
    path = checkpoint or (model.info.path if getattr(model, "info", None) else None)
    digest = hashlib.sha256()
    if path is not None and Path(path).is_file():
        with Path(path).open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return "weights:" + digest.hexdigest()


def default_candidates(
    model: FNAC,
    image_size: int,
    engine_dir: str | Path | None = None,
    checkpoint: str | Path | None = None,
    cuda: bool | None = None,
) -> list[Candidate]:
    """The candidates on this machine, each made on demand (making int8 calibrates it: seconds)."""
    from realtime.registry import make_engine

    found = [
        Candidate("eager", "eager", True, lambda: make_engine("eager", model, device="cpu")),
        Candidate("cpu", "cpu", True, lambda: make_engine("cpu", model)),
        Candidate(
            "cpu-bf16", "cpu", False, lambda: make_engine("cpu", model, bf16=True), bf16=True
        ),
        Candidate("int8", "int8", False, lambda: make_engine("int8", model, image_size=image_size)),
    ]
    if not (torch.cuda.is_available() if cuda is None else cuda):
        return found
    found.append(
        Candidate(
            "cuda",
            "eager",
            True,
            lambda: make_engine("eager", copy.deepcopy(model), device="cuda"),
            device="cuda",
        )
    )
    checkpoint = checkpoint or (model.info.path if getattr(model, "info", None) else None)
    folder = Path(engine_dir) if engine_dir else None
    if folder is None and checkpoint is not None:
        folder = default_engine_dir(checkpoint)
    if folder is not None and folder.is_dir() and _importable("torch_tensorrt"):
        found.append(
            Candidate(
                "tensorrt",
                "tensorrt",
                False,
                lambda: make_engine(
                    "tensorrt",
                    copy.deepcopy(model),
                    image_size=image_size,
                    engine_dir=folder,
                    checkpoint=checkpoint,
                ),
            )
        )
    return found


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def time_engine(
    engine: Engine, frames: torch.Tensor, spec: torch.Tensor, limit_ms: float | None = None
) -> tuple[float, bool]:
    """Milliseconds a frame (the image encoder's median + ``AUDIO_SHARE`` of an audio call), and
    whether the candidate was stopped early for a call over ``limit_ms`` (its very first call,
    which may set things up, only past ten times that)."""
    cuda = engine.device.type == "cuda"

    def call(fn, x) -> float:
        start = time.perf_counter()
        fn(x)
        if cuda:
            torch.cuda.synchronize()
        return (time.perf_counter() - start) * 1000

    def over(ms: float, first: bool = False) -> bool:
        return limit_ms is not None and ms > limit_ms * (10 if first else 1)

    audio = 0.0
    for i in range(WARM_UP):
        ms = call(engine.encode_image, frames)
        if over(ms, first=i == 0):
            return ms + AUDIO_SHARE * audio, True
        audio = call(engine.encode_audio, spec)
    runs = []
    for _ in range(RUNS):
        runs.append(call(engine.encode_image, frames))
        if over(runs[-1]):
            return runs[-1] + AUDIO_SHARE * audio, True
    audio = call(engine.encode_audio, spec)
    return statistics.median(runs) + AUDIO_SHARE * audio, False


def engine_maps(engine: Engine, frames: torch.Tensor, specs: torch.Tensor) -> torch.Tensor:
    """(N, h, w) maps, one scene at a time (static-shape engines take batch 1 only)."""
    return torch.cat(
        [
            engine.maps(engine.encode_image(f[None]), engine.encode_audio(s[None]))
            for f, s in zip(frames, specs, strict=True)
        ]
    )


def hot_cell_near(maps: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(N,) bool: each map's hottest cell is the reference's or one of its 8 neighbours."""
    width = reference.shape[2]
    hot, want = maps.flatten(1).argmax(1), reference.flatten(1).argmax(1)
    return ((hot // width - want // width).abs() <= 1) & ((hot % width - want % width).abs() <= 1)


def map_agreement(maps: torch.Tensor, reference: torch.Tensor) -> dict[str, Any]:
    """``maps`` (N, h, w) against ``reference``'s: the largest difference of the min-max
    normalised maps (``max_diff``, 0..1) and whether every hottest cell is the reference's or
    one of its 8 neighbours (``peak_near``); ``ok`` when both hold (``MAX_MAP_DIFF``)."""

    def unit(m: torch.Tensor) -> torch.Tensor:
        m = m.double()
        lo, hi = m.amin(dim=(1, 2), keepdim=True), m.amax(dim=(1, 2), keepdim=True)
        return (m - lo) / (hi - lo).clamp_min(1e-12)

    diff = float((unit(maps) - unit(reference)).abs().max())
    peak_near = bool(hot_cell_near(maps, reference).all())
    ok = diff <= MAX_MAP_DIFF and peak_near and bool(torch.isfinite(maps).all())
    return {"max_diff": round(diff, 4), "peak_near": peak_near, "ok": ok}


def pinned(name: str) -> Verdict:
    """``FNAC_BACKEND``'s verdict, measuring nothing."""
    if name not in PINS:
        raise ValueError(f"{PIN_ENV}={name!r} is not a backend: give one of {', '.join(PINS)}")
    backend, bf16, device = PINS[name]
    reason = f"auto: {name} ({PIN_ENV}={name}: not measured)"
    return Verdict(name, backend, reason, bf16, device, measured=False)


def choose(
    model: FNAC,
    audio: AudioConfig,
    image_size: int,
    engine_dir: str | Path | None = None,
    checkpoint: str | Path | None = None,
    cuda: bool | None = None,
    candidates: list[Candidate] | None = None,
    timer: Timer | None = None,
) -> tuple[Verdict, Engine | None]:
    """The verdict for ``model`` on this machine, from the cache or measured now (and kept), and
    the winner's engine when it was made here (None: the caller makes it from the verdict)."""
    if os.environ.get(PIN_ENV):
        return pinned(os.environ[PIN_ENV]), None
    candidates = candidates or default_candidates(model, image_size, engine_dir, checkpoint, cuda)
    by_label = {c.label: c for c in candidates}
    if "eager" not in by_label:
        raise ValueError("auto needs eager among its candidates: the reference and the fallback")
    key = {**machine_key(), **shape_key(image_size, audio, model.config.dim)}
    stored = None if os.environ.get(REMEASURE_ENV) else kept.read(CACHE_KIND, key)
    timings, stopped, agreements = _usable(stored or {}, kept.entry_path(CACHE_KIND, key))
    wid = weights_id(model, checkpoint)
    agreed: dict[str, dict[str, Any]] = dict(agreements.get(wid, {}))
    engines: dict[str, Engine] = {}
    unavailable: dict[str, str] = {}
    measured = False

    def engine(label: str) -> Engine | None:
        if label not in engines and label not in unavailable:
            try:
                engines[label] = by_label[label].make()
            except (ValueError, RuntimeError, ImportError, OSError) as exc:
                unavailable[label] = str(exc)
                log.info("auto: %s is not available here: %s", label, exc)
        return engines.get(label)

    # timings: the candidates the cache does not have, eager and the float32 ones first
    if any(c.label not in timings for c in candidates):
        frames = torch.zeros(1, 3, image_size, image_size)
        spec = torch.zeros(1, 1, audio.n_freq, audio.n_frames())
        timer = timer or (lambda label, e, limit: time_engine(e, frames, spec, limit))
        for c in sorted(candidates, key=lambda c: not c.exact):
            if c.label in timings or engine(c.label) is None:
                continue
            known = [timings[x] for x in timings if x in by_label and x not in stopped]
            limit = SLOW_FACTOR * min(known) if known else None
            timings[c.label], slow = timer(c.label, engines[c.label], limit)
            stopped.discard(c.label)
            if slow:
                stopped.add(c.label)
            measured = True
    # the fastest candidate that agrees
    ranked = sorted((x for x in timings if x in by_label), key=timings.__getitem__)
    winner = "eager"
    reference: torch.Tensor | None = None
    for label in ranked:
        if by_label[label].exact:
            winner = label
            break
        if label not in agreed:
            if engine(label) is None:
                continue
            scenes = _scenes(audio, image_size, AGREEMENT_SCENES)
            if reference is None:
                reference = engine_maps(engine("eager"), *scenes)
            agreed[label] = map_agreement(engine_maps(engines[label], *scenes), reference)
            measured = True
        if agreed[label]["ok"]:
            winner = label
            break
    if measured:
        agreements.pop(wid, None)
        agreements[wid] = agreed  # the newest last; the oldest dropped past KEEP_WEIGHTS
        value = {
            "timings_ms": {k: round(v, 2) for k, v in timings.items()},
            "stopped": sorted(stopped),
            "agreement": dict(list(agreements.items())[-KEEP_WEIGHTS:]),
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        where = kept.write(CACHE_KIND, key, value)
        if where:
            log.info("auto: kept in %s", where)
    chosen = by_label[winner]
    reason = _reason(winner, timings, stopped, agreed, unavailable, by_label)
    if not measured:
        reason += " (cached)"
    log.info(reason)
    verdict = Verdict(winner, chosen.backend, reason, chosen.bf16, chosen.device, measured)
    return verdict, engines.get(winner)


def _usable(
    stored: dict[str, Any], path: Path
) -> tuple[dict[str, float], set[str], dict[str, dict[str, Any]]]:
    """The timings, the stopped candidates and the agreements of a kept entry, checked: an entry
    edited by hand or by another version is measured again (warned), never a crash."""
    try:
        timings = {str(k): float(v) for k, v in stored.get("timings_ms", {}).items()}
        stopped = {str(label) for label in stored.get("stopped", [])}
        agreements = {
            str(wid): {
                str(label): {
                    "max_diff": float(a["max_diff"]),
                    "peak_near": bool(a["peak_near"]),
                    "ok": bool(a["ok"]),
                }
                for label, a in checks.items()
            }
            for wid, checks in stored.get("agreement", {}).items()
        }
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        log.warning("ignoring the cache file %s (%r): measuring again", path, exc)
        return {}, set(), {}
    return timings, stopped, agreements


@cache
def _scenes(audio: AudioConfig, image_size: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    from realtime.quantize import calibration_inputs

    return calibration_inputs(audio, ImageConfig(size=image_size), count, seed=AGREEMENT_SEED)


def _reason(
    winner: str,
    timings: dict[str, float],
    stopped: set[str],
    agreed: dict[str, dict[str, Any]],
    unavailable: dict[str, str],
    by_label: dict[str, Candidate],
) -> str:
    """``auto: int8 (29.7 ms a frame vs cpu 71.7, eager 93.3, cpu-bf16 >=452; int8 maps within
    0.09 of fp32; 2 threads, OMP PASSIVE)``."""
    others, notes = [], []
    for label in sorted(timings, key=timings.__getitem__):
        if label == winner or label not in by_label:
            continue
        ms = timings[label]
        text = f"{label} >={ms:.0f}" if label in stopped else f"{label} {ms:.1f}"
        check = agreed.get(label)
        if check is not None and not check["ok"]:
            why = f"maps {check['max_diff']:.2f} from fp32's"
            if not check["peak_near"]:
                why += ", peak moved"
            text += f" refused ({why})"
        others.append(text)
    if winner in agreed:
        notes.append(f"{winner} maps within {agreed[winner]['max_diff']:.2f} of fp32")
    for label in unavailable:
        notes.append(f"no {label} here")
    policy = os.environ.get("OMP_WAIT_POLICY", "default")
    notes.append(f"{torch.get_num_threads()} threads, OMP {policy}")
    versus = f" vs {', '.join(others)}" if others else ""
    return f"auto: {winner} ({timings.get(winner, 0.0):.1f} ms a frame{versus}; {'; '.join(notes)})"
