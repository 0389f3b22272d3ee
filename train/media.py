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
    n = int(window_s * rate)
    start = int(round((t - window_s / 2) * rate))
    start = min(max(start, 0), max(audio.shape[1] - n, 0))
    return frame, audio[:, start : start + n], rate
