"""Decoding media files for offline work: audio tracks, frames and clips of videos (PyAV).

WAV goes through ``fnac.audio.load_wav`` (fast, exact PCM scaling); everything else (mp3, flac,
m4a, the audio track of mp4 / mkv) through PyAV, decoded to float at the file's native rate.
The live pipeline's file source (``realtime.sources``) decodes with the same pieces, so a video
means the same suffixes and its audio the same samples offline and live.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# fnac.audio (torch) is imported where it is used: realtime.sources imports this module in
# processes that must stay free of torch (the GUI's).

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".avi")  # what counts as a video file


class MediaError(ValueError):
    """A media file that cannot be decoded; the message names the file and the problem."""


def _open(path: Path):
    import av

    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise MediaError(f"{path} cannot be opened as media ({exc})") from exc


def decoded_audio(frame) -> np.ndarray:
    """One decoded PyAV audio frame -> (C, N) float in [-1, 1], whatever its sample format."""
    from fnac.audio import pcm_to_float

    data = frame.to_ndarray()
    if not frame.format.is_planar:  # interleaved: (1, N * C) -> (C, N)
        data = data.reshape(-1, len(frame.layout.channels)).T
    return pcm_to_float(data)


def load_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """Any audio file or the first audio track of a video -> ((C, N) float32, native rate).

    Audio that decodes to no samples, or to NaN / inf samples, is an ``AudioContentError``.
    """
    import av

    from fnac.audio import AudioContentError, check_samples, load_wav

    path = Path(path)
    if path.suffix.lower() == ".wav":
        try:
            return load_wav(path)
        except AudioContentError:
            raise  # read fine, unusable: another decoder would read the same samples
        except ValueError:
            pass  # WAV flavours scipy does not read (e.g. A-law): let FFmpeg try
    container = _open(path)
    try:
        if not container.streams.audio:
            raise MediaError(f"{path} has no audio track")
        stream = container.streams.audio[0]
        chunks = [decoded_audio(frame) for frame in container.decode(stream)]
        audio = np.concatenate(chunks, axis=1) if chunks else np.zeros((1, 0), np.float32)
        audio = check_samples(
            audio, f"{path}'s audio track", "re-export the file with its sound, or leave it out"
        )
        return np.ascontiguousarray(audio, dtype=np.float32), int(stream.rate)
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: decoding failed ({exc})") from exc
    finally:
        container.close()


def video_frame(path: str | Path, time_s: float | None = None) -> tuple[np.ndarray, float]:
    """The frame shown at ``time_s`` (default: the middle) -> ((H, W, 3) uint8 RGB, its time)."""
    import av

    path = Path(path)
    container = _open(path)
    try:
        if not container.streams.video:
            raise MediaError(f"{path} has no video track")
        stream = container.streams.video[0]
        duration = _duration(container, stream)
        target = duration / 2 if time_s is None else float(time_s)
        try:
            container.seek(
                max(int((target - 1.0) / stream.time_base), 0),
                stream=stream,
                backward=True,
                any_frame=False,
            )
        except av.error.FFmpegError:
            pass  # no index to seek in (a track without frames has none): decode from the start
        chosen = None
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            if chosen is not None and frame.time > target + 1e-6:
                break
            chosen = frame
        if chosen is None:
            raise MediaError(
                f"{path}: its video track holds no frame that decodes; re-export it with its "
                "picture"
            )
        return chosen.to_ndarray(format="rgb24"), float(chosen.time)
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: decoding failed ({exc})") from exc
    finally:
        container.close()


def _duration(container, stream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    raise MediaError(f"{container.name}: unknown duration")


def video_clip(
    path: str | Path, window_s: float = 3.0, time_s: float | None = None
) -> tuple[np.ndarray, np.ndarray, int]:
    """A frame and the ``window_s`` seconds of audio centred on it.

    -> ((H, W, 3) uint8 RGB, (C, N) float32 audio, native rate). Near the ends the window is
    shifted to stay inside the track.
    """
    frame, t = video_frame(path, time_s)
    audio, rate = load_audio(path)
    return frame, centred_window(audio, rate, t, window_s), rate


def centred_window(audio: np.ndarray, rate: int, t: float, window_s: float = 3.0) -> np.ndarray:
    """The ``window_s`` seconds of (C, N) ``audio`` centred on time ``t``, shifted to stay inside
    the track near its ends (the whole track when it is shorter)."""
    n = int(window_s * rate)
    start = int(round((t - window_s / 2) * rate))
    start = min(max(start, 0), max(audio.shape[1] - n, 0))
    return audio[:, start : start + n]


def _encoder(candidates: tuple[str, ...]) -> str:
    """The first of ``candidates`` this machine's FFmpeg (PyAV's) can encode with."""
    import av

    for name in candidates:
        try:
            av.codec.Codec(name, "w")
            return name
        except (av.codec.codec.UnknownCodecError, ValueError):
            continue
    raise RuntimeError(f"PyAV's FFmpeg has none of the encoders {candidates}")


class Mp4Writer:
    """An mp4 of RGB frames and (optionally) mono float audio, in codecs a browser plays where
    FFmpeg has them: H.264 (else MPEG-4 part 2) and AAC (else MP3). Frames come at ``fps``, or,
    with ``fps=None``, each at its own time (``frame(rgb, t=seconds)``: a variable rate)."""

    VIDEO = ("libx264", "h264", "mpeg4")
    AUDIO = ("aac", "libmp3lame", "mp3")
    MS = 1000  # the time base of a variable-rate video: milliseconds

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: float | None,
        sample_rate: int | None = None,
        crf: int = 20,
    ) -> None:
        import av

        self.video_codec = _encoder(self.VIDEO)
        self.audio_codec = _encoder(self.AUDIO) if sample_rate else None
        self.container = av.open(str(path), "w")
        from fractions import Fraction

        rate = Fraction(fps).limit_denominator(1001) if fps else None
        self.video = self.container.add_stream(self.video_codec, rate=rate or 30)
        self.video.width, self.video.height = width - width % 2, height - height % 2
        self.video.pix_fmt = "yuv420p"
        self.clock = Fraction(1, self.MS)
        if fps is None:  # the encoder's clock too, else it rounds every time to 1/30 s
            self.video.time_base = self.clock
            self.video.codec_context.time_base = self.clock
        if self.video_codec != "mpeg4":
            self.video.options = {"crf": str(crf), "preset": "veryfast"}
        else:
            self.video.bit_rate = 4_000_000
        self.audio = None
        if sample_rate:
            self.audio = self.container.add_stream(self.audio_codec, rate=int(sample_rate))
            self.audio.layout = "mono"
        self.frames = 0
        self.samples = 0
        self.variable = fps is None
        self.last_pts = -1

    def frame(self, rgb: np.ndarray, t: float | None = None) -> None:
        """Add an (H, W, 3) uint8 RGB frame (at time ``t`` in a variable-rate video)."""
        import av

        rgb = np.ascontiguousarray(rgb[: self.video.height, : self.video.width])
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if self.variable:
            pts = max(self.last_pts + 1, int(round((t or 0.0) * self.MS)))
            frame.pts, frame.time_base = pts, self.clock  # not the stream's: the muxer changes it
            self.last_pts = pts
        else:
            frame.pts = self.frames
        self.container.mux(self.video.encode(frame))
        self.frames += 1

    def sound(self, samples: np.ndarray, block: int = 1024) -> None:
        """Add mono float samples in [-1, 1] after those added so far."""
        import av

        samples = np.clip(np.asarray(samples, np.float32), -1.0, 1.0)
        for start in range(0, samples.size, block):
            chunk = samples[start : start + block]
            frame = av.AudioFrame.from_ndarray(chunk[None], format="flt", layout="mono")
            frame.sample_rate, frame.pts = self.audio.rate, self.samples
            self.container.mux(self.audio.encode(frame))
            self.samples += chunk.size

    def close(self) -> None:
        try:
            self.container.mux(self.video.encode())
            if self.audio is not None:
                self.container.mux(self.audio.encode())
        finally:
            self.container.close()
