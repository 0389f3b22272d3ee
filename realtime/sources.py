"""Live sources, opened by one dispatcher from a string: ``open_source("0")`` (a camera),
``"rtsp://..."`` (a stream URL), ``"clip.mp4"`` (a file with an audio track), ``"synthetic"``.

A source is an iterator of packets in capture order, with ``close()`` and a context manager:
``FramePacket`` (a BGR frame, as OpenCV delivers) and ``AudioPacket`` (a block of mono float
samples with a sequence number). Every packet is stamped once, on ``time.monotonic()``: a camera
frame when it is grabbed, a file's or the synthetic world's packets at ``start + pts`` (they are
paced to that time when ``realtime``, and come as fast as they can be decoded otherwise).

The synthetic source streams ``train.synth_world`` (numpy only): the world is shared by the
offline datasets and the live pipeline rather than written twice.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from realtime.messages import AudioPacket, FramePacket
from train.media import VIDEO_SUFFIXES, decoded_audio  # one home for what a video file is

log = logging.getLogger(__name__)
SYNTHETIC_FPS = 30.0  # the synthetic source's frame rate, a webcam's
URL_SCHEMES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://", "file://")


def quiet_opencv():
    """cv2 with its own warnings off (a missing camera is reported by us, once, clearly)."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    return cv2


class SourceError(ValueError):
    """A source that cannot be opened or read; the message names the fix."""


# Frames larger than this (in pixels) are shrunk where they enter the pipeline: the model sees
# a few hundred pixels and the window about a thousand, while a 4K frame is 25 MB on the link.
MAX_FRAME_PIXELS = 1920 * 1080


def fit_frame(packet: FramePacket) -> FramePacket:
    """``packet`` with its image shrunk (area-averaged) to at most ``MAX_FRAME_PIXELS``, and the
    boxes of its ground truth scaled with it; the packet itself when it is small enough."""
    h, w = packet.image.shape[:2]
    if h * w <= MAX_FRAME_PIXELS:
        return packet
    cv2 = quiet_opencv()
    scale = math.sqrt(MAX_FRAME_PIXELS / (h * w))
    size = (max(1, int(w * scale)), max(1, int(h * scale)))
    image = cv2.resize(packet.image, size, interpolation=cv2.INTER_AREA)
    factors = (size[0] / w, size[1] / h)
    truth = packet.truth
    if truth:
        truth = [
            scaled_truth(obj, factors) if isinstance(obj, dict) and "box" in obj else obj
            for obj in truth
        ]
    return FramePacket(packet.index, packet.t, packet.pts, image, truth, packet.read)


def scaled_truth(obj: dict, factors: tuple[float, float]) -> dict:
    """One object's ground truth with its box (and outline) scaled by (x, y) ``factors``."""
    fx, fy = factors
    scaled = {**obj, "box": [v * f for v, f in zip(obj["box"], (fx, fy, fx, fy), strict=True)]}
    if "outline" in obj:
        scaled["outline"] = [[x * fx, y * fy] for x, y in obj["outline"]]
    return scaled


@dataclass
class Source:
    """Base: iteration, pacing and closing."""

    realtime: bool = True
    start: float = field(default_factory=time.monotonic)
    closed: bool = False

    def __iter__(self) -> Iterator[FramePacket | AudioPacket]:
        raise NotImplementedError

    def pace(self, pts: float) -> float:
        """Wait until ``pts`` is due (when realtime); returns the packet's capture time."""
        due = self.start + pts
        if self.realtime:
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return due

    def close(self) -> None:
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SyntheticSource(Source):
    """The synthetic world streamed live: moving objects, the sounding one changing, with the
    ground truth of every frame."""

    def __init__(
        self,
        classes: int = 8,
        seed: int = 0,
        size: tuple[int, int] = (640, 480),
        fps: float = SYNTHETIC_FPS,
        sample_rate: int = 16000,
        seconds: float | None = None,
        block: int = 1024,
        realtime: bool = True,
    ) -> None:
        from train.synth_stream import StreamScript
        from train.synth_world import World, WorldConfig

        super().__init__(realtime=realtime)
        world = World(WorldConfig(classes=classes, sample_rate=sample_rate, seed=seed))
        rng = np.random.default_rng(seed)
        self.script = StreamScript.draw(world, rng, seconds, fps=fps, size=size)
        self.fps, self.rate, self.block, self.seconds = fps, sample_rate, block, seconds

    def __iter__(self) -> Iterator[FramePacket | AudioPacket]:
        frame, seq = 0, 0
        while not self.closed:
            t_video, t_audio = frame / self.fps, seq * self.block / self.rate
            if self.seconds is not None and min(t_video, t_audio) >= self.seconds:
                return
            if t_video <= t_audio:
                image, truth = self.script.frame(frame), self.script.truth(frame)
                cv2 = quiet_opencv()
                bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)  # ten times numpy's flip
                yield FramePacket(frame, self.pace(t_video), t_video, bgr, truth)
                frame += 1
            else:
                n0 = seq * self.block
                samples = self.script.audio(n0, n0 + self.block)
                yield AudioPacket(seq, self.pace(t_audio), t_audio, samples, self.rate)
                seq += 1


def sidecar_truth(path: Path, video) -> list:
    """Per-frame ground truth of a video written by ``fnac synth`` (``stream_<k>.json`` beside
    ``stream_<k>.mp4``): a list of each frame's objects; empty for any other video, or when the
    file beside it does not describe this one (another size), so no wrong truth is ever drawn."""
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        return []
    try:
        described = json.loads(sidecar.read_text())
        size = (described["width"], described["height"])
        frames = [frame["objects"] for frame in described["frames"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []  # some other JSON beside the video
    if size != (video.codec_context.width, video.codec_context.height):
        log.warning("%s describes a %dx%d video, not this one: no ground truth", sidecar, *size)
        return []
    return frames


def frame_rate(path: str | Path) -> float | None:
    """The frame rate the video file at ``path`` declares; None when it declares none."""
    import av

    try:
        with av.open(str(path)) as container:
            rate = container.streams.video[0].average_rate
            return float(rate) if rate else None
    except (av.error.FFmpegError, OSError, IndexError):
        return None


def frame_count(path: str | Path) -> int | None:
    """How many frames the video file at ``path`` holds, as its container says (or its duration
    times its frame rate); None when it does not say."""
    import av

    try:
        with av.open(str(path)) as container:
            video = container.streams.video[0]
            if video.frames:
                return int(video.frames)
            if video.duration is not None and video.time_base and video.average_rate:
                return int(round(float(video.duration * video.time_base * video.average_rate)))
    except (av.error.FFmpegError, OSError, IndexError):
        pass
    return None


class FileSource(Source):
    """A video file with an audio track (PyAV), replayed in real time or as fast as possible."""

    def __init__(self, path: str | Path, realtime: bool = True) -> None:
        import av

        super().__init__(realtime=realtime)
        self.path = Path(path)
        try:
            self.container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(f"{self.path} cannot be opened as a video ({exc})") from exc
        if not self.container.streams.video:
            self.container.close()
            raise SourceError(f"{self.path} has no video track")
        self.video = self.container.streams.video[0]
        self.audio = self.container.streams.audio[0] if self.container.streams.audio else None
        try:
            self._check_content()
        except BaseException:
            self.container.close()
            raise
        if self.audio is None:
            log.warning("%s has no audio track: frames only", self.path)
        self.truth = sidecar_truth(self.path, self.video)

    def _check_content(self) -> None:
        """Refuse, when the file is opened, what the pipeline could only run on silently: a video
        track without a frame that decodes, an audio track without a finite sample (empty, or
        NaN / inf throughout: the stage would zero it all and localize silence). Decodes on a
        second handle until it has seen one frame and one finite audio block: a few packets for
        a sound file."""
        import av

        frames, samples, sound = 0, 0, self.audio is None
        try:
            with av.open(str(self.path)) as probe:
                streams = [probe.streams.video[0]] + ([probe.streams.audio[0]] if not sound else [])
                for packet in probe.demux(*streams):
                    for decoded in packet.decode():
                        if packet.stream.type == "video":
                            frames += 1
                        else:
                            data = decoded.to_ndarray()
                            samples += data.size
                            sound = sound or bool(np.isfinite(data).any())
                    if frames and sound:
                        return
        except av.error.FFmpegError as exc:
            raise SourceError(f"{self.path}: decoding failed ({exc})") from exc
        if not frames:
            raise SourceError(
                f"{self.path} holds no video frame that decodes: re-export it with its picture"
            )
        what = "no samples" if not samples else f"only NaN or inf samples ({samples})"
        raise SourceError(
            f"{self.path}: its audio track holds {what}; re-export the file with its sound"
        )

    def __iter__(self) -> Iterator[FramePacket | AudioPacket]:
        import av

        streams = [self.video] + ([self.audio] if self.audio is not None else [])
        frame_no, seq = 0, 0
        try:
            for packet in self.container.demux(*streams):
                if self.closed:
                    return
                for decoded in packet.decode():
                    pts = float(decoded.time or 0.0)
                    if packet.stream.type == "video":
                        image = decoded.to_ndarray(format="bgr24")
                        truth = self.truth[frame_no] if frame_no < len(self.truth) else None
                        yield FramePacket(frame_no, self.pace(pts), pts, image, truth)
                        frame_no += 1
                    else:
                        mono = decoded_audio(decoded).mean(axis=0)
                        yield AudioPacket(seq, self.pace(pts), pts, mono, decoded.sample_rate)
                        seq += 1
        except av.error.FFmpegError as exc:
            raise SourceError(f"{self.path}: decoding failed at frame {frame_no} ({exc})") from exc

    def close(self) -> None:
        super().close()
        self.container.close()


class CameraSource(Source):
    """A camera by index or a stream URL through OpenCV. A grab thread keeps only the newest
    frame (a slow consumer never sees stale ones) and reconnects with backoff when reading
    fails; iteration yields each new frame once.

    Nothing waits for ever: a URL gets ``open_timeout_s`` to open and ``read_timeout_s`` per
    frame (FFmpeg's own defaults are 30 s), and a camera or stream that delivers no new frame
    for ``stall_s`` (unplugged, a hung driver, a stalled server) ends iteration with an error,
    within the supervisor's patience, instead of leaving the capture worker silent."""

    def __init__(
        self,
        target: int | str,
        reconnect: int = 5,
        backoff_s: float = 0.5,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 3.0,
        stall_s: float = 4.0,
    ) -> None:
        super().__init__(realtime=True)
        self.target, self.reconnect, self.backoff_s = target, reconnect, backoff_s
        self.open_timeout_s, self.read_timeout_s, self.stall_s = (
            open_timeout_s,
            read_timeout_s,
            stall_s,
        )
        self.capture = self._open()
        self.lock = threading.Condition()
        self.latest: FramePacket | None = None
        self.grabbed = 0  # frames read from the device
        self.ended = False
        self.error: str | None = None
        self.thread = threading.Thread(target=self._grab, name=f"camera-{target}", daemon=True)
        self.thread.start()

    def _what(self) -> str:
        return f"camera {self.target}" if isinstance(self.target, int) else str(self.target)

    def _open(self):
        cv2 = quiet_opencv()
        if isinstance(self.target, str) and not self._is_file():  # FFmpeg honours these
            timeouts = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                int(1000 * self.open_timeout_s),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                int(1000 * self.read_timeout_s),
            ]
            capture = cv2.VideoCapture(self.target, cv2.CAP_FFMPEG, timeouts)
        else:
            capture = cv2.VideoCapture(self.target)
        if not capture.isOpened():
            capture.release()
            raise SourceError(
                f"cannot open {self._what()}: check the index (fnac devices) or the URL"
            )
        return capture

    def _grab(self) -> None:
        failures = 0
        while not self.closed:
            ok, image = self.capture.read()
            if self.closed:
                break
            if not ok:
                failures += 1
                if failures > self.reconnect or self._is_file():
                    self.error = None if self._is_file() else f"{self._what()} stopped delivering"
                    break
                time.sleep(self.backoff_s * 2 ** (failures - 1))
                log.warning("%s: no frame, reconnecting (try %d)", self.target, failures)
                self.capture.release()
                try:
                    self.capture = self._open()
                except SourceError:
                    continue
                continue
            failures = 0
            packet = FramePacket(
                self.grabbed, time.monotonic(), time.monotonic() - self.start, image
            )
            with self.lock:
                self.latest = packet
                self.grabbed += 1
                self.lock.notify_all()
        self.capture.release()  # here, by the one thread that reads it
        with self.lock:
            self.ended = True
            self.lock.notify_all()

    def _is_file(self) -> bool:
        return isinstance(self.target, str) and Path(self.target).is_file()

    def __iter__(self) -> Iterator[FramePacket]:
        last, since = -1, time.monotonic()
        while True:
            with self.lock:
                while not self.ended and (self.latest is None or self.latest.index == last):
                    waited = time.monotonic() - since
                    if waited > self.stall_s:
                        raise SourceError(
                            f"{self._what()} delivered no frame for {waited:.1f} s: unplugged, "
                            "in use by another program, or the stream stalled"
                        )
                    self.lock.wait(timeout=min(1.0, self.stall_s))
                packet = self.latest
                if packet is None or packet.index == last:
                    if self.error:
                        raise SourceError(self.error)
                    return
            last, since = packet.index, time.monotonic()
            yield packet

    def close(self) -> None:
        """Stop the grab thread; it releases the device when its current read returns (within
        the read timeout), so closing never waits on a hung driver."""
        super().close()
        self.thread.join(timeout=2.0)


def _sounddevice():
    try:
        import sounddevice
    except OSError as exc:  # the PortAudio library is missing
        raise SourceError(
            f"PortAudio is not installed ({exc}); run make setup or apt-get install libportaudio2"
        ) from exc
    return sounddevice


def input_devices() -> list[dict[str, Any]]:
    """The microphones PortAudio sees: index, name, channels, default rate."""
    sd = _sounddevice()
    return [
        {
            "index": i,
            "name": d["name"],
            "channels": d["max_input_channels"],
            "default_rate": d["default_samplerate"],
        }
        for i, d in enumerate(sd.query_devices())
        if d["max_input_channels"] > 0
    ]


def cameras(max_index: int = 6) -> list[dict[str, Any]]:
    """The camera indexes OpenCV can open, with their frame size."""
    cv2 = quiet_opencv()
    found = []
    for index in range(max_index):
        capture = cv2.VideoCapture(index)
        if capture.isOpened():
            width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
            height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
            found.append({"index": index, "width": width, "height": height})
        capture.release()
    return found


class MicrophoneSource(Source):
    """A microphone through sounddevice: PortAudio's callback copies each block into a queue
    with a sequence number and its capture time. PortAudio's stream clock is not the monotonic
    clock on Linux, so the offset between them is measured once when the stream starts.
    Overflows (the device dropped samples) and blocks the consumer was too slow to take are
    counted; a dropped block leaves a gap in the sequence numbers, which the audio ring
    zero-fills and flags."""

    def __init__(
        self,
        device: int | str | None = None,
        sample_rate: int | None = None,
        channels: int = 1,
        block: int = 1024,
        max_queued: int = 512,
        stall_s: float = 3.0,
    ) -> None:
        sd = _sounddevice()
        super().__init__(realtime=True)
        if not input_devices():
            raise SourceError(
                "no microphone found: fnac devices lists the inputs; use a file "
                "or the synthetic source instead"
            )
        try:
            info = sd.query_devices(device, "input")
        except (ValueError, sd.PortAudioError) as exc:
            raise SourceError(
                f"no input device {device!r} ({exc}); fnac devices lists them"
            ) from exc
        self.rate = int(sample_rate or info["default_samplerate"])
        self.block = block
        self.queue: queue.Queue = queue.Queue(maxsize=max_queued)
        self.seq = 0
        self.overflows = 0  # blocks PortAudio reported as overflowed
        self.dropped = 0  # blocks the consumer did not take in time
        self.offset: float | None = None  # monotonic - PortAudio stream time
        self.name, self.stall_s = info["name"], stall_s
        self.last_block = time.monotonic()  # when PortAudio last delivered (the start, at first)
        try:
            self.stream = sd.InputStream(
                device=device,
                samplerate=self.rate,
                channels=min(channels, info["max_input_channels"]),
                dtype="float32",
                blocksize=block,
                callback=self._callback,
            )
            self.offset = time.monotonic() - self.stream.time  # calibrated once, at the start
            self.stream.start()
        except sd.PortAudioError as exc:
            raise SourceError(
                f"cannot open input {info['name']!r} at {self.rate} Hz ({exc})"
            ) from exc

    def _callback(self, data: np.ndarray, frames: int, time_info, status) -> None:
        self.last_block = time.monotonic()
        if status.input_overflow:
            self.overflows += 1
        adc = time_info.inputBufferAdcTime
        offset = self.offset if self.offset is not None else time.monotonic() - adc
        t = adc + offset if adc else time.monotonic() - frames / self.rate
        packet = AudioPacket(self.seq, t, t - self.start, data.mean(axis=1).copy(), self.rate)
        self.seq += 1
        try:
            self.queue.put_nowait(packet)
        except queue.Full:
            self.dropped += 1

    def __iter__(self) -> Iterator[AudioPacket]:
        """The blocks as they come. A device that stops (unplugged, taken by another program,
        a driver that hangs) is an error, not the end of the stream: a microphone never ends."""
        while not self.closed:
            try:
                yield self.queue.get(timeout=0.5)
            except queue.Empty:
                silent = time.monotonic() - self.last_block
                if self.closed:
                    return
                if not self.stream.active or silent > self.stall_s:
                    raise SourceError(
                        f"the input {self.name!r} stopped delivering audio ({silent:.1f} s "
                        "without a block): was it unplugged? fnac devices lists the inputs"
                    ) from None

    def close(self, timeout_s: float = 2.0) -> None:
        """Stop and release the device. PortAudio waits for its callback thread, which a hung
        driver never returns from: after ``timeout_s`` the stream is abandoned to the process's
        exit (and sounddevice's own exit hook, which would wait for ever too, is taken out)."""
        super().close()

        def release() -> None:
            self.stream.abort()
            self.stream.close()

        releaser = threading.Thread(target=release, name="mic-release", daemon=True)
        releaser.start()
        releaser.join(timeout_s)
        if releaser.is_alive():
            import atexit

            atexit.unregister(_sounddevice()._exit_handler)
            log.warning("the input %r did not stop: left to the process's exit", self.name)


class PairedSource(Source):
    """Frames from one source and audio from another (a camera and a microphone), merged in
    arrival order: only the first side's frames and the second side's audio. Each side is read
    by its own thread into one queue; a failure on either side ends the pair with its error."""

    _END = object()

    def __init__(self, video: Source, audio: Source) -> None:
        super().__init__(realtime=True)
        self.sides = (video, audio)
        self.queue: queue.Queue = queue.Queue(maxsize=1024)
        self.threads = [
            threading.Thread(target=self._pump, args=(side,), name=f"pair-{i}", daemon=True)
            for i, side in enumerate(self.sides)
        ]
        for thread in self.threads:
            thread.start()

    def _pump(self, side: Source) -> None:
        wanted = FramePacket if side is self.sides[0] else AudioPacket  # a file's own sound goes
        try:
            for packet in side:
                if self.closed:
                    return
                if isinstance(packet, wanted):
                    self._put(packet)
            self._put(self._END)
        except Exception as exc:  # handed to the consumer, which raises it
            self._put(exc)

    def _put(self, item: Any) -> None:
        while not self.closed:  # never stuck on a full queue once closing
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[FramePacket | AudioPacket]:
        while not self.closed:
            try:
                item = self.queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if item is self._END:
                return  # either side ending ends the pair: no frames or no sound left
            if isinstance(item, Exception):
                raise item
            yield item

    def close(self) -> None:
        super().close()
        for side in self.sides:
            side.closed = True  # each side's loop stops at its next packet ...
        for thread in self.threads:
            thread.join(timeout=3.0)
        for side in self.sides:
            side.close()  # ... and only then are its decoder and device released


def _is_microphone(spec: str) -> bool:
    return spec == "mic" or spec.startswith("mic:")


def prepare(spec: str) -> None:
    """Import what opening ``spec`` takes (the synthetic world, OpenCV, PyAV): the capture worker
    does it while the model loads, so that opening the source later costs only the opening."""
    quiet_opencv()
    if "synthetic" in spec:
        import train.synth_stream  # noqa: F401
    else:
        import av  # noqa: F401


def open_source(spec: str, realtime: bool = True, **options: Any) -> Source:
    """A camera index (``"0"``), a stream URL, a video file, ``"synthetic"``, a microphone
    (``"mic"``: the default input, ``"mic:NAME"`` or ``"mic:INDEX"``), or a picture source paired
    with a microphone: ``"0+mic"``, ``"rtsp://cam/stream+mic:USB"``."""
    spec = str(spec).strip()
    video, plus, audio = spec.rpartition("+")
    if plus and _is_microphone(audio) and video:
        picture = open_source(video, realtime=realtime)
        if isinstance(picture, MicrophoneSource):
            picture.close()
            raise SourceError(f"{spec!r} pairs two microphones: put a camera, URL or file first")
        try:
            return PairedSource(picture, open_source(audio, **options))
        except BaseException:
            picture.close()
            raise
    if spec == "synthetic":
        return SyntheticSource(realtime=realtime, **options)
    if _is_microphone(spec):
        device = spec[4:] or None
        return MicrophoneSource(int(device) if device and device.isdigit() else device, **options)
    if spec.isdigit():
        return CameraSource(int(spec), **options)
    if spec.lower().startswith(URL_SCHEMES):
        return CameraSource(spec, **options)
    path = Path(spec)
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise SourceError(f"{path} is not a video file ({', '.join(VIDEO_SUFFIXES)})")
        return FileSource(path, realtime=realtime)
    raise SourceError(
        f"cannot open source {spec!r}: not a camera index, a URL, an existing "
        "video file, 'synthetic', or CAMERA+mic[:NAME]"
    )
