"""The ``int8`` backend: both encoders quantized after training, for CPUs.

Static post-training quantization with torch's FX workflow and its x86 kernels (fbgemm / oneDNN):
int8 weights (per output channel) and activations, with batch norm and ReLU fused into the
convolutions; the two ResNet-18 trunks only, the 512 -> D projections after them stay in float32
(a fraction of a millisecond; on the demo checkpoint the largest map difference drops from 12 %
to 9 % of the map's range). Activation ranges are calibrated when the engine is made, on frames
and 3 s sounds of the synthetic world (a few seconds on a CPU; no data to bring). The maps are not
the float32 maps: ``tests/test_engines.py`` holds them to the float32 backend, and ``fnac bench``
measures what it buys and how far its maps are from eager's.

Calibrating and converting take several seconds on two cores, at every start. The frozen graphs
are therefore kept in the user's cache folder (``realtime.cache``), named by a digest of the
weights, the shapes, the calibration and torch's version: a later start with the same checkpoint
loads them in a tenth of a second, and gives the same maps (``tests/test_engines.py``). A file
that does not load is rebuilt and written again.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fnac.audio import log_spectrogram, normalize_spectrogram
from fnac.config import AudioConfig, ImageConfig
from fnac.image import preprocess_frames
from fnac.model import FNAC
from realtime.engines import AudioEncoder, Engine, ImageEncoder

KERNELS = "x86"
FORMAT = 1  # of the cached graphs; raised when what they hold changes
log = logging.getLogger(__name__)


def calibration_inputs(
    audio: AudioConfig, image: ImageConfig, count: int = 16, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` frames (count, 3, S, S) and spectrograms (count, 1, F, T) of the synthetic world's
    stream, preprocessed exactly as the live stage does it."""
    from train.synth_stream import StreamScript
    from train.synth_world import World, WorldConfig

    world = World(WorldConfig(sample_rate=audio.sample_rate, seed=seed))
    fps, window = 2.0, audio.window_samples
    rng = np.random.default_rng(seed)
    script = StreamScript.draw(world, rng, count / fps + audio.window_s, fps=fps)
    frames, waves = [], []
    for i in range(count):
        rgb, _ = script.render(i)
        frames.append(np.ascontiguousarray(rgb[:, :, ::-1]))  # BGR, as sources deliver
        end = int(round((i / fps + audio.window_s) * audio.sample_rate))
        waves.append(script.audio(end - window, end))
    batch = preprocess_frames(frames, image, method="fast")
    wave = torch.from_numpy(np.stack(waves)).clamp(-1, 1)
    specs = normalize_spectrogram(log_spectrogram(wave, audio.sample_rate, audio), audio)
    return batch, specs[:, None]


def quantize(
    module: nn.Module, examples: torch.Tensor, batch: int = 4, keep_float: tuple[str, ...] = ()
) -> nn.Module:
    """``module`` (eval mode) as an int8 graph whose activation ranges were observed on
    ``examples``, traced and frozen (TorchScript): the same numbers as the FX graph, without its
    Python call per layer (about 1.5 ms a pass here). The submodules named in ``keep_float``
    stay in float32."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = KERNELS
    with warnings.catch_warnings():  # the FX workflow's deprecation notices, once per engine
        warnings.simplefilter("ignore")
        mapping = get_default_qconfig_mapping(KERNELS)
        for name in keep_float:
            mapping = mapping.set_module_name(name, None)
        prepared = prepare_fx(module.eval(), mapping, (examples[:1],))
        with torch.no_grad():
            for start in range(0, len(examples), batch):
                prepared(examples[start : start + batch])
            converted = convert_fx(prepared)
            return torch.jit.freeze(torch.jit.trace(converted, examples[:1]))


def weights_digest(model: nn.Module) -> str:
    """A digest of a model's weights (names and values): what the int8 graphs are made from."""
    digest = hashlib.blake2b(digest_size=16)
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def graph_key(model: nn.Module, audio: AudioConfig, image: ImageConfig, calibration: int) -> str:
    """What the int8 graphs of ``model`` depend on, as a digest: its weights, the audio and image
    settings (shapes, normalisation), the calibration, fnac's and torch's versions (the code that
    calibrates) and this format."""
    from dataclasses import asdict

    from fnac import __version__

    configs = (sorted(asdict(audio).items()), sorted(asdict(image).items()))
    made_of = (FORMAT, __version__, weights_digest(model), configs, calibration, torch.__version__)
    return hashlib.blake2b(repr(made_of).encode(), digest_size=12).hexdigest()


def cached_graphs(key: str) -> dict[str, Path]:
    from realtime.cache import cache_dir

    return {part: cache_dir() / f"int8-{key}-{part}.pt" for part in ("image", "audio")}


def _save(graph: torch.jit.ScriptModule, path: Path) -> None:
    """Written whole (a temporary file renamed): two workers that start at once never leave half
    a file. A folder that cannot be written costs the next start its calibration, nothing else."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
        os.close(fd)
        with warnings.catch_warnings():  # TorchScript's deprecation notice
            warnings.simplefilter("ignore")
            torch.jit.save(graph, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        log.warning("could not keep the int8 graphs in %s (%s)", path.parent, exc)
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)  # a full disk leaves no half file behind


class Int8Engine(Engine):
    """Both encoders in int8 on the CPU; the maps in float32 as every engine's."""

    name = "int8"

    def __init__(
        self, model: FNAC, audio: AudioConfig, image: ImageConfig, calibration: int = 16
    ) -> None:
        if KERNELS not in torch.backends.quantized.supported_engines:
            raise ValueError(f"this torch build has no {KERNELS} int8 kernels: use --backend cpu")
        super().__init__(model, "cpu")
        self.calibration = calibration
        torch.backends.quantized.engine = KERNELS
        paths = cached_graphs(graph_key(self.model, audio, image, calibration))
        self.cached = all(path.exists() for path in paths.values())
        if self.cached:
            try:
                with warnings.catch_warnings():  # TorchScript's deprecation notice
                    warnings.simplefilter("ignore")
                    self.image_fn = torch.jit.load(str(paths["image"]), map_location="cpu")
                    self.audio_fn = torch.jit.load(str(paths["audio"]), map_location="cpu")
                with torch.inference_mode():  # a graph that loads but does not run is rebuilt
                    self.image_fn(torch.zeros(1, 3, image.size, image.size))
                    self.audio_fn(torch.zeros(1, 1, audio.n_freq, audio.n_frames()))
                return
            except (RuntimeError, OSError) as exc:
                log.warning("the cached int8 graphs do not load (%s): rebuilding them", exc)
                self.cached = False
        frames, specs = calibration_inputs(audio, image, calibration)
        image_net = ImageEncoder(copy.deepcopy(self.model))
        audio_net = AudioEncoder(copy.deepcopy(self.model))
        self.image_fn = quantize(image_net, frames, keep_float=("model.img_proj",))
        self.audio_fn = quantize(audio_net, specs, keep_float=("model.aud_proj",))
        _save(self.image_fn, paths["image"])
        _save(self.audio_fn, paths["audio"])

    def _image(self, frames: torch.Tensor) -> torch.Tensor:
        return self.image_fn(frames)

    def _audio(self, spec: torch.Tensor) -> torch.Tensor:
        return self.audio_fn(spec)

    def describe(self) -> str:
        made = (
            "from the cache"
            if self.cached
            else f"calibrated on {self.calibration} synthetic scenes"
        )
        return f"int8 (static, {KERNELS} kernels, {made})"
