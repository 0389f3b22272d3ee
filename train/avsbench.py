"""AVSBench (v1) test sets in their published layout, indexed for localization: S4 (single
source) and MS3 (multiple sources), read where and how AVSBench's own loaders read them.

- S4: ``ROOT/s4_meta_data.csv`` (a header row; column 0 the video, column 2 its category, and a
  ``split`` column) and ``ROOT/s4_data/`` holding
  ``visual_frames/<split>/<category>/<video>/<video>_<i>.png``,
  ``gt_masks/<split>/<category>/<video>/<video>_<i>.png`` and
  ``audio_wav/<split>/<category>/<video>.wav``;
- MS3: ``ROOT/ms3_meta_data.csv`` (column 0 the video, a ``split`` column) and ``ROOT/ms3_data/``
  with no category level and frames without a split level, as AVSBench's loader reads them:
  ``visual_frames/<video>/<video>.mp4_<i>.png`` (``<video>_<i>.png`` and a ``<split>/`` level are
  accepted too), ``gt_masks/<split>/<video>/<video>_<i>.png``, ``audio_wav/<split>/<video>.wav``.

ROOT is the ``Single-source`` / ``Multi-sources`` folder, or the folder holding them (then both
sets). Every video gives ``FRAMES`` samples, i = 1..5 (one frame a second of a 5 s clip), each
paired with the clip's whole WAV (the model's clip rule takes the centred 3 s of it) and with its
mask (``fnac.image.load_mask``). A frame whose image, mask or audio is missing is counted by
reason and reported, never replaced; a meta CSV that cannot be read, lacks the columns, or has no
row of the split is one DatasetError that names the fix.

The layout's description imports nothing heavy (``fnac synth`` writes it, and the live commands
import the synth command without torch); ``train.datasets`` is imported where an index is built.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from train.datasets import Entry

FRAMES = 5  # annotated frames per video, one a second of the 5 s clip
SPLITS = ("test", "val")  # S4's train split has the first frame's mask only


@dataclass(frozen=True)
class AVSBenchSet:
    """Where one AVSBench set keeps its files."""

    kind: str  # the test-set kind, also the report's "testset"
    folder: str  # the published folder of the set
    meta: str  # its meta CSV, in that folder
    data: str  # its data folder, beside the CSV
    category_column: int | None  # S4: column 2 names the category folder; MS3 has none


S4 = AVSBenchSet("avsbench-s4", "Single-source", "s4_meta_data.csv", "s4_data", 2)
MS3 = AVSBenchSet("avsbench-ms3", "Multi-sources", "ms3_meta_data.csv", "ms3_data", None)
SETS = {s.kind: s for s in (S4, MS3)}


def find_sets(root: Path) -> list[tuple[AVSBenchSet, Path]]:
    """The AVSBench sets at ``root``: its own meta CSV, or those of its ``Single-source`` and
    ``Multi-sources`` folders; each with the folder that holds its CSV."""
    found = []
    for s in SETS.values():
        for folder in (root, root / s.folder):
            if (folder / s.meta).is_file():
                found.append((s, folder))
                break
    return found


def set_root(root: Path, kind: str) -> Path:
    """The folder holding ``kind``'s meta CSV: ``root`` or its published subfolder."""
    from train.datasets import DatasetError

    s = SETS[kind]
    for found, folder in find_sets(root):
        if found is s:
            return folder
    raise DatasetError(
        f"{root} holds no {s.meta} (nor {s.folder}/{s.meta}): give the AVSBench folder that "
        f"holds it, or another --testset"
    )


def _cell(row: Sequence[str], column: int) -> str:
    return row[column].strip() if column < len(row) else ""


def read_meta(path: Path, s: AVSBenchSet, split: str) -> list[tuple[str, str | None]]:
    """(video, category or None) of every row of ``split`` in a meta CSV, in its order."""
    from train.datasets import DatasetError, _report_malformed

    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = [row for row in csv.reader(fh) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path} is not a readable CSV file ({exc})") from exc
    expected = "video name in column 0, " + (
        f"the category in column {s.category_column}, " if s.category_column is not None else ""
    )
    header = [cell.strip().lower() for cell in rows[0]] if rows else []
    if "split" not in header or (
        s.category_column is not None and len(header) <= s.category_column
    ):
        raise DatasetError(
            f"{path} does not have the columns of AVSBench's {s.meta} (its header: "
            f"{','.join(rows[0]) if rows else 'none'}); expected a header row with the "
            f"{expected}and a 'split' column"
        )
    split_column = header.index("split")
    videos, malformed, counts = [], [], {}
    for k, row in enumerate(rows[1:], start=2):
        video, where = _cell(row, 0), _cell(row, split_column)
        category = _cell(row, s.category_column) if s.category_column is not None else None
        if (
            not video
            or not where
            or category == ""
            or any("/" in v or "\\" in v or v in (".", "..") for v in (video, category or "-"))
        ):
            malformed.append(f"line {k} ({','.join(row)})")
            continue
        counts[where] = counts.get(where, 0) + 1
        if where == split:
            videos.append((video, category))
    _report_malformed(malformed, sum(counts.values()), path)
    if not videos:
        present = ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "none"
        raise DatasetError(
            f"{path} has no row of split {split!r} (rows per split: {present}); evaluate "
            "another split (fnac eval --split)"
        )
    return videos


def _first(paths: Sequence[Path]) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


def avsbench_entries(
    root: str | Path, kind: str, split: str = "test"
) -> tuple[list[Entry], dict[str, int]]:
    """Every frame of ``split``'s videos in the set at ``root`` (``set_root``'s folder) as an
    entry with its frame, mask and audio; -> (entries, frames dropped per reason)."""
    from train.datasets import DatasetError, Entry, _report_missing

    root, s = Path(root), SETS[kind]
    if split not in SPLITS:
        raise DatasetError(f"unknown AVSBench split {split!r}; choose one of {SPLITS}")
    data = root / s.data
    if not data.is_dir():
        raise DatasetError(
            f"{root} has {s.meta} but no {s.data}/ folder beside it (visual_frames/, gt_masks/, "
            "audio_wav/): unpack the AVSBench data there"
        )
    missing: dict[str, list[str]] = {"frame": [], "mask": [], "audio": []}
    entries = []
    for video, category in read_meta(root / s.meta, s, split):
        level = (split, category) if category is not None else (split,)
        audio = data.joinpath("audio_wav", *level, f"{video}.wav")
        for i in range(1, FRAMES + 1):
            sid = f"{video}_{i}"
            if category is not None:
                frame = _first([data.joinpath("visual_frames", *level, video, f"{sid}.png")])
            else:  # MS3: AVSBench's own spelling first, then the plainer ones
                frame = _first(
                    [
                        folder / video / name
                        for folder in (data / "visual_frames", data / "visual_frames" / split)
                        for name in (f"{video}.mp4_{i}.png", f"{sid}.png")
                    ]
                )
            mask = data.joinpath("gt_masks", *level, video, f"{sid}.png")
            if not audio.is_file():
                missing["audio"].append(sid)
            elif frame is None:
                missing["frame"].append(sid)
            elif not mask.is_file():
                missing["mask"].append(sid)
            else:
                entries.append(
                    Entry(sid, frame, audio, klass=category, mask=mask, clip=video, frame_index=i)
                )
    what = {"audio": "no audio_wav/ file", "frame": "no frame image", "mask": "no gt_masks/ file"}
    for reason, ids in missing.items():
        _report_missing(ids, data, what[reason])
    return entries, {f"no {reason}": len(ids) for reason, ids in missing.items() if ids}
