"""The ``int8`` backend: both encoders quantized after training, for CPUs.

Static post-training quantization with torch's FX workflow and its x86 kernels (fbgemm / oneDNN):
int8 weights (per output channel) and activations, with batch norm and ReLU fused into the
convolutions; the two ResNet-18 trunks only, the 512 -> D projections after them stay in float32
(a fraction of a millisecond; on the demo checkpoint the largest map difference drops from 12 %
to 9 % of the map's range). Activation ranges are calibrated when the engine is made, on frames
and 3 s sounds of the synthetic world (a few seconds on a CPU; no data to bring). The maps are not
the float32 maps: ``tests/test_engines.py`` holds them to the float32 backend, and ``fnac bench``
measures what it buys and how far its maps are from eager's.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from torch import nn

from fnac.audio import log_spectrogram, normalize_spectrogram
from fnac.config import AudioConfig, ImageConfig
from fnac.image import preprocess_frames
from fnac.model import FNAC
from realtime.engines import AudioEncoder, Engine, ImageEncoder

KERNELS = "x86"


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


class Int8Engine(Engine):
    """Both encoders in int8 on the CPU; the maps in float32 as every engine's."""

    name = "int8"

    def __init__(
        self, model: FNAC, audio: AudioConfig, image: ImageConfig, calibration: int = 16
    ) -> None:
        if KERNELS not in torch.backends.quantized.supported_engines:
            raise ValueError(f"this torch build has no {KERNELS} int8 kernels: use --backend cpu")
        super().__init__(model, "cpu")
        frames, specs = calibration_inputs(audio, image, calibration)
        self.calibration = calibration
        image = ImageEncoder(copy.deepcopy(self.model))
        audio = AudioEncoder(copy.deepcopy(self.model))
        self.image_fn = quantize(image, frames, keep_float=("model.img_proj",))
        self.audio_fn = quantize(audio, specs, keep_float=("model.aud_proj",))

    def _image(self, frames: torch.Tensor) -> torch.Tensor:
        return self.image_fn(frames)

    def _audio(self, spec: torch.Tensor) -> torch.Tensor:
        return self.audio_fn(spec)

    def describe(self) -> str:
        return (
            f"int8 (static, {KERNELS} kernels, calibrated on {self.calibration} synthetic scenes)"
        )
