"""Datasets in the published on-disk layouts, plus plain video files.

Training: ``<root>/frames/<id>.jpg|png`` + ``<root>/audio/<id>.wav``, optionally restricted to an
id list (``flickr_10k.txt``, ``vggss_144k.txt``, ...). Test sets (``open_testset``):

- ``vggss`` (also VGG-SS heard / unheard): frames/ + audio/ + an annotations json
  (``[{"file", "class", "bbox": [[xmin, ymin, xmax, ymax] normalised]}]``) + an id csv;
- ``flickr``: ``Annotations/<id>.xml`` + ``Data/**/<id>.jpg|wav``, or one flat folder of
  ``<id>.xml|jpg|wav``; boxes of several annotators on a 256 grid;
- ``duet``: frames/ + audio/ + ``sources/<id>_<k>.wav`` + ``duet.json`` (two sounding objects);
- silent pairs: a ``video,audio,label`` csv pairing a frame with another clip's audio;
- ``avsbench-s4`` / ``avsbench-ms3``: AVSBench's S4 and MS3 sets in their published layout, five
  frames a video, each with its segmentation mask (``train.avsbench``).

Missing files and malformed annotations (a box that is not four finite numbers, an unparseable
xml) are counted and reported when the index is built, and only a test set left with nothing usable
is an error; files that fail to decode are skipped at load time (``None`` samples, dropped and
counted by ``collate_skipping``), never replaced by another sample.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import reprlib
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from fnac.audio import clip_spectrogram, spec_augment
from fnac.config import AudioConfig, ImageConfig
from fnac.image import load_image, load_mask, test_transform, train_transform
from fnac.metrics import flickr_gt_map, vggss_gt_map
from train.avsbench import avsbench_entries, find_sets, set_root
from train.config import TESTSET_KINDS
from train.media import VIDEO_SUFFIXES, MediaError, load_audio, video_clip

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a")
GT_SIZE = 224  # the ground-truth grid of every published test set (masks are resized onto it)
VGGSS_SHAPE = '[{"file": id, "class": name, "bbox": [[xmin, ymin, xmax, ymax], ...]}, ...]'
DUET_SHAPE = '[{"file": id, "sources": [{"class": name, "bbox": [[xmin, ymin, xmax, ymax]]}, ...]}]'

T = TypeVar("T")


class DatasetError(ValueError):
    """A dataset that cannot be used as given; the message names the fix."""


@dataclass
class Entry:
    """One sample's files and ground truth."""

    id: str
    image: Path | None  # None for video entries (frame and audio come from ``video``)
    audio: Path | None
    video: Path | None = None
    label: str = "sounding"  # or "non-sounding" (silent pairs)
    boxes: list = field(default_factory=list)  # ground truth, in the test set's convention
    sources: list[dict[str, Any]] = field(default_factory=list)  # duet: per-source audio + boxes
    klass: str | None = None
    mask: Path | None = None  # AVSBench: the frame's segmentation mask
    clip: str | None = None  # AVSBench: the video the frame belongs to
    frame_index: int | None = None  # AVSBench: the frame's number in its video, 1..5


def _find(folder: Path, stem: str, suffixes: Sequence[str]) -> Path | None:
    for suffix in suffixes:
        path = folder / f"{stem}{suffix}"
        if path.is_file():
            return path
    return None


def read_ids(path: str | Path) -> list[str]:
    """An id list: one id per line, or the first column of a csv (a header row is skipped)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"id list {path} does not exist")
    ids = []
    with path.open(newline="") as fh:
        for row in csv.reader(fh):
            if row and row[0].strip() and row[0].strip() not in ("id", "video", "file"):
                ids.append(row[0].strip())
    return ids


def _require_dir(path: Path, what: str) -> None:
    if not path.is_dir():
        raise DatasetError(f"{what} {path} does not exist or is not a folder")


def _report_missing(missing: list[str], where: Path, why: str = "files missing") -> None:
    if missing:
        log.warning(
            "%s: %d samples skipped, %s (e.g. %s)",
            where,
            len(missing),
            why,
            ", ".join(missing[:3]),
        )


def _report_malformed(malformed: list[str], usable: int, where: Path) -> None:
    """Skip-and-count like missing files: one bad annotation should not cost the whole test set,
    but a set where every annotation is bad is a broken file or a wrong format, so it is an error
    that names the first problem rather than an empty result."""
    if malformed and not usable:
        raise DatasetError(
            f"{where}: none of the {len(malformed)} annotations is usable (e.g. {malformed[0]})"
        )
    _report_missing(malformed, where, "annotations malformed")


def _box(values: Any) -> list[float]:
    """``[xmin, ymin, xmax, ymax]`` as four finite floats, else a DatasetError saying what is
    wrong: a malformed box would otherwise fail (or silently score against an empty or inverted
    map) only later, in the ground-truth map, far from the file that holds it."""
    shown = reprlib.repr(values)
    if not isinstance(values, list | tuple):
        raise DatasetError(f"box {shown} is not a list [xmin, ymin, xmax, ymax]")
    if len(values) != 4:
        raise DatasetError(f"box {shown} has {len(values)} coordinates, not 4")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise DatasetError(f"box {shown} holds non-numeric coordinates")
    try:
        box = [float(v) for v in values]
    except OverflowError:  # an integer beyond the float range
        box = [math.inf]
    if not all(map(math.isfinite, box)):
        raise DatasetError(f"box {shown} holds non-finite coordinates")
    return box


class FramesAudioLayout:
    """Resolves ids in ``root/frames/<id>.jpg|png`` + ``root/audio/<id>.wav``."""

    def __init__(self, root: Path) -> None:
        _require_dir(root / "frames", "frames folder")
        _require_dir(root / "audio", "audio folder")
        self.root = root

    def ids(self) -> list[str]:
        frames = self.root / "frames"
        return sorted(p.stem for p in frames.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

    def image(self, sample_id: str) -> Path | None:
        return _find(self.root / "frames", sample_id, IMAGE_SUFFIXES)

    def audio(self, sample_id: str) -> Path | None:
        return _find(self.root / "audio", sample_id, AUDIO_SUFFIXES)


class FlickrLayout:
    """Resolves ids in ``Annotations/<id>.xml`` + ``Data/**/<id>.*``, or one flat folder."""

    def __init__(self, root: Path) -> None:
        nested = (root / "Annotations").is_dir()
        self.annotations = root / "Annotations" if nested else root
        data = root / "Data" if nested else root
        self.files = {p.name: p for p in data.rglob("*") if p.is_file()} if data.is_dir() else {}
        self.root = root

    def ids(self) -> list[str]:
        return sorted(p.stem for p in self.annotations.glob("*.xml"))

    def _lookup(self, sample_id: str, suffixes: Sequence[str]) -> Path | None:
        return next(
            (self.files[f"{sample_id}{s}"] for s in suffixes if f"{sample_id}{s}" in self.files),
            None,
        )

    def image(self, sample_id: str) -> Path | None:
        return self._lookup(sample_id, IMAGE_SUFFIXES)

    def audio(self, sample_id: str) -> Path | None:
        return self._lookup(sample_id, AUDIO_SUFFIXES)

    def xml(self, sample_id: str) -> Path | None:
        path = self.annotations / f"{sample_id}.xml"
        return path if path.is_file() else None


Layout = FramesAudioLayout | FlickrLayout


def layout_entries(layout: Layout, ids: Sequence[str] | None = None) -> list[Entry]:
    """Entries for the ids (default: all) whose frame and audio exist; the others are reported."""
    entries, missing = [], []
    for sample_id in layout.ids() if ids is None else ids:
        image, audio = layout.image(sample_id), layout.audio(sample_id)
        if image is None or audio is None:
            missing.append(sample_id)
        else:
            entries.append(Entry(sample_id, image, audio))
    _report_missing(missing, layout.root)
    return entries


def frames_audio_entries(root: str | Path, ids: Sequence[str] | None = None) -> list[Entry]:
    """``root/frames/<id>.*`` + ``root/audio/<id>.wav`` for the given ids (default: all frames)."""
    return layout_entries(FramesAudioLayout(Path(root)), ids)


def video_entries(paths: Sequence[str | Path]) -> list[Entry]:
    """Video files (or folders of them): one sample each, the middle frame and its audio."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.iterdir() if q.suffix.lower() in VIDEO_SUFFIXES)
        elif p.is_file():
            found.append(p)
        else:
            raise DatasetError(f"{p} does not exist")
    return [Entry(p.stem, None, None, video=p) for p in found]


def parse_flickr_xml(path: str | Path) -> list[list[int]]:
    """Flickr-SoundNet annotation -> annotator boxes [xmin, ymin, xmax, ymax] on the 256 grid.

    The root's children hold ``bbox`` elements of 5 children: the first is skipped, the next four
    are the coordinates, truncated to integers. Any problem with the file is one DatasetError (which
    ``flickr_entries`` counts as a skipped sample).
    """
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError, LookupError) as exc:  # LookupError: unknown encoding=
        raise DatasetError(f"{path} is not a readable annotation XML ({exc})") from exc
    boxes = []
    for child in root:
        for element in child:
            if element.tag != "bbox":
                continue
            values = [c.text for c in list(element)[1:5]]
            try:
                numbers = [float(v) for v in values]
            except (TypeError, ValueError) as exc:
                raise DatasetError(
                    f"{path}: a bbox holds non-numeric coordinates {values}"
                ) from exc
            try:
                boxes.append([int(v) for v in _box(numbers)])
            except DatasetError as exc:
                raise DatasetError(f"{path}: {exc}") from exc
    return boxes


def flickr_entries(root: str | Path, ids: Sequence[str] | None = None) -> list[Entry]:
    """Flickr-SoundNet test layout (Annotations/ + Data/**) or one flat folder."""
    layout = FlickrLayout(Path(root))
    ids = layout.ids() if ids is None else ids
    if not ids:
        raise DatasetError(f"{root} holds no Flickr annotations (Annotations/<id>.xml)")
    annotated = [i for i in ids if layout.xml(i) is not None]
    _report_missing([i for i in ids if layout.xml(i) is None], layout.annotations)
    kept, malformed = [], []
    for e in layout_entries(layout, annotated):
        try:
            e.boxes = parse_flickr_xml(layout.xml(e.id))
        except DatasetError as exc:
            malformed.append(f"{e.id} ({exc})")
        else:
            kept.append(e)
    _report_malformed(malformed, len(kept), layout.annotations)
    return kept


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        # ValueError: bad JSON, bad UTF-8, an integer past Python's digit limit; RecursionError:
        # arrays nested too deep for the decoder
        raise DatasetError(f"{path} is not a readable JSON file ({exc})") from exc


def _sample_id(item: dict[str, Any]) -> str:
    file = item.get("file")
    if isinstance(file, bool) or not isinstance(file, str | int) or file == "":
        raise DatasetError(f'"file" {reprlib.repr(file)} is not a sample id')
    return str(file)


def _boxes(item: dict[str, Any]) -> list[list[float]]:
    boxes = item.get("bbox")
    if not isinstance(boxes, list):
        raise DatasetError(f'"bbox" {reprlib.repr(boxes)} is not a list of boxes')
    return [_box(b) for b in boxes]


def _class(item: dict[str, Any]) -> str | None:
    klass = item.get("class")
    if klass is not None and not isinstance(klass, str):
        raise DatasetError(f'"class" {reprlib.repr(klass)} is not a name')
    return klass


def _json_annotations(path: Path, shape: str, parse: Callable[[dict[str, Any]], T]) -> dict[str, T]:
    """id -> ``parse(item)`` for the items of an annotations json.

    A file that is not a list of objects is one DatasetError naming the shape expected; an item
    whose id or boxes are malformed is skipped and counted (``_report_malformed``).
    """
    table = _load_json(path)
    if not isinstance(table, list):
        raise DatasetError(
            f"{path} holds a JSON {type(table).__name__}, not a list of annotations {shape}"
        )
    for k, item in enumerate(table):
        if not isinstance(item, dict):
            raise DatasetError(
                f"{path}: item #{k} is a JSON {type(item).__name__}, not an object; "
                f"expected {shape}"
            )
    parsed, malformed = {}, []
    for k, item in enumerate(table):
        name = f"item #{k}"
        try:
            name = _sample_id(item)
            parsed[name] = parse(item)
        except DatasetError as exc:
            malformed.append(f"{name} ({exc})")
    _report_malformed(malformed, len(parsed), path)
    return parsed


def vggss_entries(
    root: str | Path, annotations: str | Path, ids: Sequence[str] | None = None
) -> list[Entry]:
    """VGG-SS layout: frames/ + audio/, boxes from a vggss.json-style file."""
    by_id = _json_annotations(
        Path(annotations), VGGSS_SHAPE, lambda item: (_boxes(item), _class(item))
    )
    ids = list(ids) if ids is not None else list(by_id)
    unannotated = [i for i in ids if i not in by_id]
    if unannotated:
        log.warning(
            "%s: %d ids have no usable annotation and are skipped (e.g. %s)",
            annotations,
            len(unannotated),
            ", ".join(unannotated[:3]),
        )
    entries = frames_audio_entries(root, [i for i in ids if i in by_id])
    for e in entries:
        e.boxes, e.klass = by_id[e.id]
    return entries


def _duet_sources(item: dict[str, Any]) -> list[dict[str, Any]]:
    sources = item.get("sources")
    if not isinstance(sources, list) or not sources:
        raise DatasetError(f'"sources" {reprlib.repr(sources)} is not a list of sources')
    if not all(isinstance(src, dict) for src in sources):
        raise DatasetError('"sources" holds an item that is not a {"class", "bbox"} object')
    return [{"boxes": _boxes(src), "class": _class(src)} for src in sources]


def duet_entries(root: str | Path, annotations: str | Path | None = None) -> list[Entry]:
    """Two-source scenes: mixture audio plus each source's own audio and boxes."""
    root = Path(root)
    path = Path(annotations) if annotations else root / "duet.json"
    by_id = _json_annotations(path, DUET_SHAPE, _duet_sources)
    entries = frames_audio_entries(root, list(by_id))
    kept = []
    for e in entries:
        sources = []
        for k, src in enumerate(by_id[e.id]):
            audio = _find(root / "sources", f"{e.id}_{k}", AUDIO_SUFFIXES)
            if audio is None:
                break
            sources.append({"audio": audio, **src})
        if len(sources) == len(by_id[e.id]):
            e.sources = sources
            kept.append(e)
    _report_missing([e.id for e in entries if not e.sources], root / "sources")
    return kept


def silent_pair_entries(layout: Layout, pairs_csv: str | Path) -> list[Entry]:
    """Rows ``video,audio,label``: the frame of one clip with the audio of another (or of an
    off-screen source), resolved in the test set's layout."""
    out, missing = [], []
    with Path(pairs_csv).open(newline="") as fh:
        for row in csv.DictReader(fh):
            video, audio = row.get("video", ""), row.get("audio", "")
            image, sound = layout.image(video), layout.audio(audio)
            if image is None or sound is None:
                missing.append(f"{video}/{audio}")
                continue
            out.append(
                Entry(f"{video}+{audio}", image, sound, label=row.get("label") or "non-sounding")
            )
    _report_missing(missing, Path(pairs_csv))
    return out


def probe_entry(entry: Entry) -> int:
    """Decode an entry's files as loading it would, without the transforms: its frame, its audio
    (and a duet's per-source audio), each checked for content (an empty or truncated image, no
    audio samples, NaN / inf samples, a video without frames). Returns the audio's sample rate;
    raises what ``AVDataset.load`` would (ValueError, OSError, FileNotFoundError)."""
    if entry.video is not None:
        _, _, rate = video_clip(entry.video)
    else:
        image = load_image(entry.image)
        if entry.mask is not None:
            load_mask(entry.mask, image.size)
        _, rate = load_audio(entry.audio)
    for source in entry.sources:
        load_audio(source["audio"])
    return rate


def first_usable(entries: Sequence[Entry], where: str | Path) -> tuple[int, int]:
    """(index, audio sample rate) of the first entry whose files decode into usable content.

    Called when an index is opened, before any model is built: the entries before it are
    skipped with a warning, as loading skips them; when none is usable, one DatasetError names
    the first problem and the fix, instead of a run that loads nothing (or an error that blames
    the batch size). Costs one sample's decoding when the first one is fine."""
    first = None
    for index, entry in enumerate(entries):
        try:
            return index, probe_entry(entry)
        except (OSError, ValueError, RuntimeError) as exc:
            log.warning("skipping %s: %s", entry.id, exc)
            first = first or f"{entry.id}: {exc}"
    raise DatasetError(
        f"{where}: none of its {len(entries)} samples can be loaded (the first: {first}); "
        "fix or remove the bad files"
    )


def collate_skipping(batch: list[dict | None]) -> dict[str, Any]:
    """Stack the samples that loaded; ``skipped`` counts the ones that did not."""
    good = [b for b in batch if b is not None]
    out: dict[str, Any] = {"skipped": len(batch) - len(good)}
    if not good:
        return out
    for key in good[0]:
        values = [b[key] for b in good]
        out[key] = torch.stack(values) if isinstance(values[0], torch.Tensor) else values
    return out


def mask_on_grid(mask: np.ndarray, size: int = GT_SIZE) -> np.ndarray:
    """(H, W) bool mask -> (size, size) bool, nearest-neighbour (AVSBench's masks are 224 x 224
    already and come back unchanged)."""
    if mask.shape == (size, size):
        return mask
    return np.array(Image.fromarray(mask).resize((size, size), Image.NEAREST), dtype=bool)


class AVDataset(Dataset):
    """Entries -> dicts of ``frame`` (3, S, S), ``spec`` (1, F, T), ``id`` and ``index``, and
    ``mask`` (GT_SIZE, GT_SIZE) bool for entries with a mask."""

    def __init__(
        self,
        entries: list[Entry],
        audio: AudioConfig,
        image: ImageConfig | None = None,
        train: bool = False,
        spec_masks: bool = True,
    ) -> None:
        if not entries:
            raise DatasetError("the dataset holds no usable samples (see the warnings above)")
        self.entries = entries
        self.audio = audio
        self.image = image or ImageConfig()
        self.train = train
        self.spec_masks = train and spec_masks  # SpecAugment-style masks, training only
        self.transform = train_transform(self.image) if train else test_transform(self.image)
        self._warned_rates: set[int] = set()

    def __len__(self) -> int:
        return len(self.entries)

    def spectrogram(self, path: Path) -> torch.Tensor:
        wave, rate = load_audio(path)
        if rate != self.audio.sample_rate and rate not in self._warned_rates:
            self._warned_rates.add(rate)
            log.info(
                "audio at %d Hz is resampled to the model's %d Hz (first: %s)",
                rate,
                self.audio.sample_rate,
                path,
            )
        spec = clip_spectrogram(wave, rate, self.audio)
        return spec_augment(spec) if self.spec_masks else spec

    def load(self, entry: Entry) -> dict[str, Any]:
        if entry.video is not None:
            frame, wave, rate = video_clip(entry.video, self.audio.window_s)
            image = Image.fromarray(frame)
            spec = clip_spectrogram(wave, rate, self.audio)
            spec = spec_augment(spec) if self.spec_masks else spec
        else:
            image = load_image(entry.image)
            spec = self.spectrogram(entry.audio)
        sample = {
            "frame": self.transform(image),
            "spec": spec,
            "id": entry.id,
            "size": (image.height, image.width),
        }
        if entry.mask is not None:
            sample["mask"] = torch.from_numpy(mask_on_grid(load_mask(entry.mask, image.size)))
        return sample

    def __getitem__(self, index: int) -> dict[str, Any] | None:
        entry = self.entries[index]
        try:
            sample = self.load(entry)
        except (OSError, ValueError, MediaError, RuntimeError) as exc:
            log.warning("skipping %s: %s", entry.id, exc)
            return None
        sample["index"] = index
        return sample


def ground_truth(entry: Entry, kind: str, size: int = GT_SIZE) -> np.ndarray:
    """The entry's ground-truth map on the evaluation grid, from its boxes (a mask set's maps
    come with its samples: ``AVDataset``'s ``mask``)."""
    if kind == "flickr":
        return flickr_gt_map(entry.boxes, size)
    return vggss_gt_map(entry.boxes, size)


def _only(root: Path, pattern: str) -> Path | None:
    found = sorted(root.glob(pattern))
    return found[0] if len(found) == 1 else None


def detect_kind(root: Path) -> str:
    if root.is_file() and root.suffix.lower() in VIDEO_SUFFIXES:
        return "video"
    if (root / "duet.json").is_file():
        return "duet"
    if (root / "frames").is_dir() and any(root.glob("*.json")):
        return "vggss"
    if (root / "Annotations").is_dir() or any(root.glob("*.xml")):
        return "flickr"
    found = find_sets(root)
    if len(found) > 1:
        raise DatasetError(
            f"{root} holds both AVSBench sets: pass --testset avsbench-s4 or avsbench-ms3 "
            "(fnac eval evaluates both in one go)"
        )
    if found:
        return found[0][0].kind
    raise DatasetError(
        f"cannot tell what test set {root} is: expected Annotations/ (flickr), duet.json (duet), "
        "frames/ + audio/ with an annotations json (vggss) or AVSBench's s4_meta_data.csv / "
        "ms3_meta_data.csv (avsbench-s4 / avsbench-ms3); pass --testset"
    )


@dataclass
class TestSet:
    __test__ = False  # not a pytest test class
    kind: str
    root: Path
    entries: list[Entry]
    silent: list[Entry] = field(default_factory=list)  # non-sounding pairs, when given
    split: str | None = None  # AVSBench: the split of the meta CSV
    dropped: dict[str, int] = field(default_factory=dict)  # AVSBench: frames left out, by reason


def open_testset(
    root: str | Path,
    kind: str = "auto",
    annotations: str | Path | None = None,
    ids: str | Path | None = None,
    pairs: str | Path | None = None,
    split: str = "test",
) -> TestSet:
    """Index a test set; ``auto`` tells the layout from the folder and finds its json / csv.
    ``split``: the AVSBench split (``train.avsbench.SPLITS``); the other sets have none."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"test set {root} does not exist")
    if kind not in (*TESTSET_KINDS, "video"):  # video: one file, as training's test set
        raise DatasetError(f"unknown test set kind {kind!r}; choose one of {TESTSET_KINDS}")
    kind = detect_kind(root) if kind == "auto" else kind
    if kind.startswith("avsbench"):
        root = set_root(root, kind)
        entries, dropped = avsbench_entries(root, kind, split)
        if not entries:
            raise DatasetError(f"test set {root} holds no usable frame of split {split!r}")
        first_usable(entries, f"test set {root}")
        return TestSet(kind, root, entries, split=split, dropped=dropped)
    id_list = read_ids(ids) if ids else None
    if kind == "flickr":
        if id_list is None and (root / "test.csv").is_file():
            id_list = read_ids(root / "test.csv")
        entries = flickr_entries(root, id_list)
    elif kind == "duet":
        entries = duet_entries(root, annotations)
    elif kind == "video":
        entries = video_entries([root])
    else:
        annotations = annotations or _only(root, "*.json")
        if annotations is None:
            raise DatasetError(f"{root}: pass --annotations (a vggss.json-style file)")
        if id_list is None and _only(root, "*test.csv"):
            id_list = read_ids(_only(root, "*test.csv"))
        entries = vggss_entries(root, annotations, id_list)
    if not entries:
        raise DatasetError(f"test set {root} holds no usable samples")
    first_usable(entries, f"test set {root}")
    pairs = pairs or _only(root, "*plus_silent.csv")
    silent = []
    if pairs and kind in ("vggss", "flickr"):
        layout = FlickrLayout(root) if kind == "flickr" else FramesAudioLayout(root)
        silent = silent_pair_entries(layout, pairs)
    return TestSet(kind, root, entries, silent)
