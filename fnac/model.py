"""The FNAC model: a ResNet-18 image encoder, a ResNet-18 audio encoder and their similarity map.

Shapes use the same letters across the project: B batch, D embedding size, h x w the image feature
grid (7 x 7 for a 224 x 224 frame), F frequency bins (257), T spectrogram frames.

Parameter names match the published checkpoints: ``imgnet.*``, ``img_proj.*``, ``audnet.*``,
``aud_proj.*`` (torchvision's ResNet-18 trunks without ``fc``, built by ``fnac.resnet``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fnac.config import ModelConfig
from fnac.resnet import ResNet18, is_meta, resnet18


def resnet_trunk(net: ResNet18, x: torch.Tensor) -> torch.Tensor:
    """conv1 .. layer4 of a ResNet-18: (B, C, H, W) -> (B, 512, H/32, W/32)."""
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    return net.layer4(net.layer3(net.layer2(net.layer1(x))))


def _init_published(module: nn.Module) -> None:
    """The published initialisation of the audio net and both projections."""
    for m in module.modules():
        if is_meta(m):
            continue  # built to be given weights (fnac.checkpoint): nothing to draw
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, mean=0.0, std=0.01)
        elif isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, mean=1.0, std=0.02)
            nn.init.constant_(m.bias, 0.0)


class FNAC(nn.Module):
    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        self.info = None  # fnac.checkpoint.CheckpointInfo, set by load_checkpoint
        dim = self.config.dim

        # Image encoder: ResNet-18 trunk -> dropout -> 1x1 conv 512 -> D -> L2 over D.
        self.imgnet = resnet18()
        self.imgnet.avgpool = nn.Identity()
        self.imgnet.fc = nn.Identity()
        self.img_dropout = nn.Dropout(p=self.config.dropout_img)
        self.img_proj = nn.Conv2d(512, dim, kernel_size=1)

        # Audio encoder: 1-channel ResNet-18 -> global max pool -> dropout -> linear 512 -> D.
        self.audnet = resnet18()
        self.audnet.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.audnet.avgpool = nn.AdaptiveMaxPool2d((1, 1))
        self.audnet.fc = nn.Identity()
        self.aud_dropout = nn.Dropout(p=self.config.dropout_aud)
        self.aud_proj = nn.Linear(512, dim)

        _init_published(self.audnet)
        _init_published(self.img_proj)
        _init_published(self.aud_proj)

    @property
    def tau(self) -> float:
        return self.config.tau

    def encode_image(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised RGB -> (B, D, h, w), unit length over D at every position."""
        x = resnet_trunk(self.imgnet, frames)  # (B, 512, h, w)
        x = self.img_proj(self.img_dropout(x))  # (B, D, h, w)
        return F.normalize(x, dim=1)

    def encode_audio(self, spec: torch.Tensor) -> torch.Tensor:
        """(B, 1, F, T) normalised log spectrogram -> (B, D), unit length."""
        x = resnet_trunk(self.audnet, spec)  # (B, 512, f, t)
        x = self.audnet.avgpool(x).flatten(1)  # (B, 512): global max pool
        x = self.aud_proj(self.aud_dropout(x))  # (B, D)
        return F.normalize(x, dim=1)

    def localize(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """Matched pairs: (B, D, h, w), (B, D) -> (B, h, w), the raw map S[i, i]."""
        return torch.einsum("nchw,nc->nhw", v, a) / self.tau

    def forward(
        self, frames: torch.Tensor, spec: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, 3, H, W), (B, 1, F, T) -> v (B, D, h, w), a (B, D), raw maps (B, h, w)."""
        v = self.encode_image(frames)
        a = self.encode_audio(spec)
        return v, a, self.localize(v, a)
