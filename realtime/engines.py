"""Inference engines: one interface, several backends, chosen by name.

- ``eager``: the model as it is, float32 (the reference every other backend is held against);
- ``cpu``: batch norm folded into the convolutions, channels_last tensors, float32; with
  ``bf16=True`` under bfloat16 autocast, which ``--backend auto`` (``realtime.autoselect``) takes
  only where it measures faster than float32 and its maps agree (CPU flags do not tell: AVX512-BF16
  without AMX measured slower than float32 on Xeons);
- ``int8``: both encoders quantized to int8 for x86 CPUs, calibrated on the synthetic world
  (``realtime.quantize``);
- ``compile``: ``torch.compile`` of both encoders;
- ``tensorrt``: Torch-TensorRT engines built by ``fnac export`` (FP16, static shapes), loaded from
  disk with their JSON sidecar and refused when stale (see ``realtime.tensorrt``).

An engine encodes frames (B, 3, S, S) -> v (B, D, h, w) and spectrograms (B, 1, F, T) -> a (B, D),
and maps (v, a) -> (B, h, w) raw similarity maps (``FNAC.localize``), always returning float32.
``realtime.registry`` makes them by name; the int8 and tensorrt backends live in their own modules
(``realtime.quantize``, ``realtime.tensorrt``) and build on this one.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from fnac.model import FNAC

log = logging.getLogger(__name__)


class ImageEncoder(nn.Module):
    """``FNAC.encode_image`` as a module of its own (for tracing, compiling, exporting)."""

    def __init__(self, model: FNAC) -> None:
        super().__init__()
        self.model = model

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(frames)


class AudioEncoder(nn.Module):
    """``FNAC.encode_audio`` as a module of its own."""

    def __init__(self, model: FNAC) -> None:
        super().__init__()
        self.model = model

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        return self.model.encode_audio(spec)


class Engine:
    """The ``eager`` backend, and the interface of every other one."""

    name = "eager"
    choice = ""  # why, when ``--backend auto`` chose it: one line, after ``describe()``

    def __init__(self, model: FNAC, device: str | torch.device = "cpu") -> None:
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.tau = model.tau

    def _image(self, frames: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(frames)

    def _audio(self, spec: torch.Tensor) -> torch.Tensor:
        return self.model.encode_audio(spec)

    @torch.inference_mode()
    def encode_image(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised RGB -> (B, D, h, w) float32."""
        return self._image(frames.to(self.device)).float()

    @torch.inference_mode()
    def encode_audio(self, spec: torch.Tensor) -> torch.Tensor:
        """(B, 1, F, T) normalised log spectrogram -> (B, D) float32."""
        return self._audio(spec.to(self.device)).float()

    @torch.inference_mode()
    def maps(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """(B, D, h, w), (B, D) -> (B, h, w) raw maps S[i, i] (float32, on the CPU)."""
        return self.model.localize(v.float(), a.float()).cpu()

    def describe(self) -> str:
        return f"{self.name} on {self.device}"


def fold_batchnorm(net: nn.Module) -> None:
    """Fold every batch norm of a torchvision ResNet trunk into the convolution before it
    (eval-mode statistics), in place."""
    net.conv1 = fuse_conv_bn_eval(net.conv1, net.bn1)
    net.bn1 = nn.Identity()
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        for block in layer:
            block.conv1 = fuse_conv_bn_eval(block.conv1, block.bn1)
            block.conv2 = fuse_conv_bn_eval(block.conv2, block.bn2)
            block.bn1, block.bn2 = nn.Identity(), nn.Identity()
            if block.downsample is not None:
                conv, bn = block.downsample[0], block.downsample[1]
                block.downsample = nn.Sequential(fuse_conv_bn_eval(conv, bn))


class CpuEngine(Engine):
    """Batch norm folded into the convolutions, channels_last tensors (oneDNN's fast layout),
    float32, or bfloat16 autocast when asked (``bf16``). The engine keeps its own copy of the
    model."""

    name = "cpu"

    def __init__(self, model: FNAC, bf16: bool = False) -> None:
        folded = copy.deepcopy(model).eval()
        fold_batchnorm(folded.imgnet)
        fold_batchnorm(folded.audnet)
        super().__init__(folded.to(memory_format=torch.channels_last), "cpu")
        self.bf16 = bf16

    def _autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16)

    def _image(self, frames: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return self.model.encode_image(frames.contiguous(memory_format=torch.channels_last))

    def _audio(self, spec: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            return self.model.encode_audio(spec.contiguous(memory_format=torch.channels_last))

    def describe(self) -> str:
        return f"cpu (folded batch norm, channels_last, {'bf16' if self.bf16 else 'fp32'})"


class CompileEngine(Engine):
    """``torch.compile`` of both encoders (compiled on the first call of each shape)."""

    name = "compile"

    def __init__(self, model: FNAC, device: str | torch.device = "cpu") -> None:
        super().__init__(model, device)
        self.image_fn = torch.compile(ImageEncoder(self.model))
        self.audio_fn = torch.compile(AudioEncoder(self.model))

    def _image(self, frames: torch.Tensor) -> torch.Tensor:
        return self.image_fn(frames)

    def _audio(self, spec: torch.Tensor) -> torch.Tensor:
        return self.audio_fn(spec)
