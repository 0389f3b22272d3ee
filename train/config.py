"""The training configuration: defaults from the published recipe, presets, JSON config files."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

LOSSES = ("fnac", "contrastive")
AMP_MODES = ("auto", "off", "bf16", "fp16")
INITS = ("imagenet", "random")
# the layouts a test set can be given in (--testset of fnac train and fnac eval); auto: from the
# folder (train.datasets.detect_kind)
TESTSET_KINDS = ("auto", "vggss", "flickr", "duet", "avsbench-s4", "avsbench-ms3")
RENAMED_KEYS = {"test_kind": "testset"}  # config.json keys of earlier builds -> their names now


INF = math.inf
# Ranges of numeric fields, as ``fnac.flags.number``'s (lo, hi, lo_open, hi_open).
AT_LEAST_0, AT_LEAST_1, ABOVE_0 = (0, INF), (1, INF), (0, INF, True)
DROPOUT = (0, 1, False, True)  # [0, 1): a dropout of 1 zeroes everything


def opt(default: Any, help: str, bounds: tuple | None = None, choices: tuple | None = None) -> Any:
    """A config field with its reason, which ``fnac train --help`` shows; ``bounds``: the valid
    range of a number, ``choices``: the valid values, both checked by its flag when it is parsed
    (``fnac.flags.add_dataclass_flags``)."""
    metadata: dict[str, Any] = {"help": help}
    if bounds is not None:
        metadata["range"] = bounds
    if choices is not None:
        metadata["choices"] = choices
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class TrainConfig:
    data: str = opt("", "training root (frames/ + audio/) or a folder of videos")
    out: str = opt("runs/fnac", "run folder: best.pth, latest.pth, config.json, tb/")
    ids: str | None = opt(None, "id list restricting the training set (flickr_10k.txt, ...)")
    test_data: str | None = opt(None, "evaluated after every epoch when given")
    testset: str = opt(
        "auto", "layout of --test-data (auto: from the folder)", choices=TESTSET_KINDS
    )
    test_annotations: str | None = opt(None, "vggss.json-style boxes of the test set")
    test_ids: str | None = opt(None, "id csv of the test set (vggss_test.csv, ...)")
    epochs: int = opt(20, "published: 20-30", AT_LEAST_1)
    batch_size: int = opt(
        128, "global batch, split across processes (published: 128 / 256)", (2, INF)
    )  # contrastive learning needs pairs
    lr: float = opt(1e-4, "Adam, no schedule (published)", ABOVE_0)
    weight_decay: float = opt(1e-4, "Adam weight decay (published)", AT_LEAST_0)
    warmup: int = opt(3, "epochs of contrastive loss alone before the FNAC terms join", AT_LEAST_0)
    loss: str = opt("fnac", '"contrastive" = the EZ-VSL baseline')
    w_fns_audio: float = opt(100.0, "weight of FNS-1 (published: 100)", AT_LEAST_0)
    w_tns: float = opt(100.0, "weight of TNS (published: 100)", AT_LEAST_0)
    w_fns_image: float = opt(100.0, "weight of FNS-2 (published: 100)", AT_LEAST_0)
    dim: int = opt(512, "embedding size D (published: 512)", AT_LEAST_1)
    tau: float = opt(0.03, "temperature (published: 0.03)", ABOVE_0)
    dropout_img: float = opt(0.9, "dropout on the image map in training (published: 0.9)", DROPOUT)
    dropout_aud: float = opt(0.0, "dropout on the audio feature (published: 0)", DROPOUT)
    spec_masks: bool = opt(
        True,
        "published: one frequency and one time band of the log spectrogram set to 0 (far above "
        "a quiet clip's values: on small data the masks can drown the sound)",
    )
    image_size: int = opt(224, "frame side; 224 gives the published 7x7 map", (32, INF))
    sample_rate: int | None = opt(None, "None: the rate of the training audio", (1000, INF))
    window_s: float = opt(3.0, "seconds of audio per frame (published: 3)", ABOVE_0)
    seed: int = opt(12345, "published seed")  # any integer
    workers: int = opt(2, "DataLoader worker processes per training process", AT_LEAST_0)
    amp: str = opt("auto", 'bf16 on CPUs with native bf16, bf16/fp16 on CUDA; "off" = float32')
    channels_last: bool = opt(True, "NHWC tensors: faster convolutions on CPU and GPU")
    init: str = opt("imagenet", "image encoder start: ImageNet weights (published) or random")
    imagenet_weights: str | None = opt(None, "file; default: torch's hub cache")
    device: str = opt("auto", "auto (CUDA when present), cpu, cuda, cuda:N")
    eval_every: int = opt(1, "evaluate every N epochs", AT_LEAST_1)
    tensorboard: bool = opt(True, "write TensorBoard scalars under OUT/tb")
    progress: bool = opt(True, "progress bar with the loss terms and samples/s")
    compact_best: bool = opt(
        False, "best.pth as float16 weights without optimizer state (the shipped demo's form)"
    )

    def validate(self) -> TrainConfig:
        problems = []
        if not self.data:
            problems.append("--data is required")
        if self.loss not in LOSSES:
            problems.append(f"--loss must be one of {LOSSES}")
        if self.amp not in AMP_MODES:
            problems.append(f"--amp must be one of {AMP_MODES}")
        if self.init not in INITS:
            problems.append(f"--init must be one of {INITS}")
        if self.batch_size < 2:
            problems.append("--batch-size must be at least 2 (contrastive learning needs pairs)")
        if self.epochs < 1 or self.warmup < 0:
            problems.append("--epochs must be >= 1 and --warmup >= 0")
        if not (0 <= self.dropout_img < 1 and 0 <= self.dropout_aud < 1):
            problems.append("--dropout-img and --dropout-aud must be in [0, 1)")
        if self.image_size % 32:
            problems.append("--image-size must be a multiple of 32 (the ResNet stride)")
        if problems:
            raise ValueError("; ".join(problems))
        return self


# Presets: named sets of overrides on the defaults, applied before a config file and flags.
PRESETS: dict[str, dict[str, Any]] = {
    # The published FNAC recipe (VGGSound / Flickr scripts).
    "published": {},
    # A small run on the synthetic world that fits a 2-core CPU.
    "cpu-small": {
        "batch_size": 32,
        "epochs": 8,
        "warmup": 2,
        "image_size": 160,
        "workers": 2,
        "init": "random",
        "dropout_img": 0.5,
    },
    # The checkpoint shipped in fnac/weights: the published recipe at the published 224-px frame
    # (a 7x7 map) with a compact embedding, the image encoder started from `fnac pretrain-image`
    # (the synthetic world's stand-in for ImageNet; pass it with --imagenet-weights) and no
    # SpecAugment masks (zeroed bands drown the world's quiet sounds). 2 epochs, both in the
    # warmup: epoch 4, the first with FNAC's terms, has the best test cIoU but loses the stream's
    # pointing and the duets (README: "The embedded demo checkpoint"), so the run stops before it.
    "demo": {
        "batch_size": 32,
        "epochs": 2,
        "warmup": 3,
        "image_size": 224,
        "dim": 128,
        "dropout_img": 0.5,
        "spec_masks": False,
        "init": "imagenet",
        "workers": 1,
        "compact_best": True,
    },
}


def field_names() -> set[str]:
    return {f.name for f in fields(TrainConfig)}


def load_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"config file {path} is not readable JSON ({exc})") from exc
    for old, new in RENAMED_KEYS.items():  # a config.json of an earlier run
        if old in values and new not in values:
            values[new] = values.pop(old)
    unknown = sorted(set(values) - field_names())
    if unknown:
        raise ValueError(f"config file {path} has unknown keys {unknown}")
    return values


def resolve(
    preset: str | None = None,
    config_file: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """defaults < preset < config file < explicit flags."""
    config = TrainConfig()
    if preset:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        config = replace(config, **PRESETS[preset])
    if config_file:
        config = replace(config, **load_config_file(config_file))
    return replace(config, **(overrides or {})).validate()


def to_dict(config: TrainConfig) -> dict[str, Any]:
    return asdict(config)
