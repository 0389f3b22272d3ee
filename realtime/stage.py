"""The inference stage of the live pipeline, in one process: audio in, frames in, results out.

Audio packets are resampled once to the model's rate (streaming, seamless) into the audio ring;
lost blocks enter as flagged zeros. For each frame the stage takes the ``window_s`` seconds of
audio ending at the frame's capture time, recomputes the audio embedding when ``audio_rate_hz``
says it is due (in stream time, so a paced and an unpaced run do the same work per second of
stream) and reuses it in between, encodes the frame, and turns the raw map into a result. Every
stage is timed. The ZeroMQ inference worker wraps this class.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from fnac.audio import log_spectrogram, normalize_spectrogram
from fnac.config import AudioConfig, ImageConfig
from fnac.image import preprocess_frames
from realtime.audio_ring import AudioRing
from realtime.engines import Engine
from realtime.resample import StreamingResampler
from realtime.results import ConfidenceSettings, Localization, analyze, spectrum_db
from realtime.sources import AudioPacket, FramePacket


@dataclass
class Result:
    frame: int  # index of the frame in its source
    pts: float  # the frame's time in the source
    raw_map: np.ndarray  # (h, w) similarity / tau
    localization: Localization
    padded: bool  # fewer than window_s seconds of audio had arrived
    gap: bool  # the window holds zero-filled lost audio
    audio_fresh: bool  # the audio embedding was recomputed for this frame
    spectrum: np.ndarray  # (F,) dB spectrum of the newest audio, for the live window's strip
    stamps: dict[str, float] = field(default_factory=dict)  # stage -> monotonic seconds


class InferenceStage:
    def __init__(
        self,
        engine: Engine,
        audio: AudioConfig,
        image: ImageConfig,
        audio_rate_hz: float = 10.0,
        resize: str = "fast",
        settings: ConfidenceSettings | None = None,
    ) -> None:
        self.engine, self.audio, self.image = engine, audio, image
        self.audio_period = 1.0 / audio_rate_hz
        self.resize = resize
        self.settings = settings or ConfidenceSettings()
        self.ring = AudioRing(
            audio.sample_rate, audio.window_s, capacity_s=max(10.0, 2 * audio.window_s)
        )
        self.resampler: StreamingResampler | None = None
        self.source_rate: int | None = None
        self.audio_anchor: float | None = None  # capture time of the first audio sample
        self.last_seq: int | None = None
        self.last_block = 0
        self.embedding: torch.Tensor | None = None
        self.embedding_pts = -np.inf
        self.audio_encodes = 0

    def warm_up(self, runs: int = 2) -> None:
        """Run both encoders on blank input (first calls compile, allocate, tune)."""
        size = self.image.size
        for _ in range(runs):
            self.engine.encode_image(torch.zeros(1, 3, size, size))
            self.engine.encode_audio(torch.zeros(1, 1, self.audio.n_freq, self.audio.n_frames()))

    def add_audio(self, packet: AudioPacket) -> None:
        """Resample a block to the model's rate and append it to the ring."""
        if self.resampler is None or packet.rate != self.source_rate:
            self.resampler = StreamingResampler(packet.rate, self.audio.sample_rate)
            self.source_rate, self.audio_anchor = packet.rate, packet.t
            self.last_seq = None
        if self.last_seq is not None and packet.seq > self.last_seq + 1:
            lost = (packet.seq - self.last_seq - 1) * self.last_block
            self._append(np.zeros(lost, np.float32), valid=False)
        self.last_seq, self.last_block = packet.seq, packet.samples.size
        self._append(packet.samples, valid=True)

    def _append(self, samples: np.ndarray, valid: bool) -> None:
        first = self.resampler.next_out  # index at the model's rate of the first output sample
        out = self.resampler.feed(samples)
        if out.size:
            t = self.audio_anchor + first / self.audio.sample_rate
            self.ring.write(out, t, valid=valid)

    def _audio_embedding(self, window: np.ndarray, pts: float) -> bool:
        if self.embedding is not None and pts - self.embedding_pts < self.audio_period - 1e-9:
            return False
        wave = torch.from_numpy(window).clamp(-1, 1)
        spec = normalize_spectrogram(
            log_spectrogram(wave, self.audio.sample_rate, self.audio), self.audio
        )
        self.embedding = self.engine.encode_audio(spec[None, None])
        self.embedding_pts = pts
        self.audio_encodes += 1
        return True

    def process(self, frame: FramePacket) -> Result:
        """One frame -> its result, with the time of every stage."""
        stamps = {"capture": frame.t, "start": time.monotonic()}
        window = self.ring.window(frame.t)
        fresh = self._audio_embedding(window.samples, frame.pts)
        stamps["audio"] = time.monotonic()
        batch = preprocess_frames([frame.image], self.image, method=self.resize)
        stamps["preprocess"] = time.monotonic()
        v = self.engine.encode_image(batch)
        raw = self.engine.maps(v, self.embedding)[0].numpy()
        stamps["infer"] = time.monotonic()
        loc = analyze(
            raw,
            frame.image.shape[:2],
            window.samples,
            self.audio.sample_rate,
            self.engine.tau,
            self.settings,
        )
        stamps["result"] = time.monotonic()
        spectrum = spectrum_db(window.samples, n_fft=512)
        return Result(
            frame.index, frame.pts, raw, loc, window.padded, window.gap, fresh, spectrum, stamps
        )


class NaiveStage(InferenceStage):
    """The reference: eager, audio embedding on every frame, scipy spectrogram, PIL resize."""

    def __init__(self, engine, audio, image) -> None:
        super().__init__(engine, audio, image, audio_rate_hz=1e9, resize="reference")

    def _audio_embedding(self, window: np.ndarray, pts: float) -> bool:
        import scipy.signal

        _, _, psd = scipy.signal.spectrogram(
            window, self.audio.sample_rate, nperseg=self.audio.nperseg, noverlap=self.audio.noverlap
        )
        spec = torch.from_numpy(np.log(psd + self.audio.log_eps) / self.audio.norm_std).float()
        self.embedding = self.engine.encode_audio(spec[None, None])
        self.audio_encodes += 1
        return True
