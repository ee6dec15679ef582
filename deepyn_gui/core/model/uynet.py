"""U-YNet in PyTorch: a milesial UNet with a real/fake classifier on its bottleneck.

Attribute names and block layout follow the original DeepYNet code exactly (DESIGN.md §2), so a
published checkpoint loads with ``strict=True``. ``width`` scales every channel count (64 is the
original); key names do not change with it. This module imports torch at top level: the rest of
the package must import it lazily (see ``deepyn_gui.core.model.__init__``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

INPUT_SIZE = 224
ORIGINAL_WIDTH = 64


class DoubleConv(nn.Module):
    """(Conv3x3 -> BN -> ReLU) x 2, under ``double_conv`` as in milesial's UNet."""

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int | None = None) -> None:
        super().__init__()
        mid = mid_channels or out_channels
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, mid, kernel_size=3, padding=1),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, kernel_size=3, padding=1),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.double_conv(x)  # type: ignore[no-any-return]


class Down(nn.Module):
    """MaxPool2d(2) then DoubleConv, under ``maxpool_conv``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_channels, out_channels))

    def forward(self, x: Tensor) -> Tensor:
        return self.maxpool_conv(x)  # type: ignore[no-any-return]


class Up(nn.Module):
    """ConvTranspose2d(in, in//2, 2, 2) then DoubleConv(in, out) on [skip, upsampled]."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels)

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        x1 = self.up(x1)
        dy = x2.shape[2] - x1.shape[2]
        dx = x2.shape[3] - x1.shape[3]
        if dy or dx:  # never at 224 x 224; kept so odd sizes behave like the original
            x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return self.conv(torch.cat([x2, x1], dim=1))  # type: ignore[no-any-return]


class OutConv(nn.Module):
    """1x1 convolution to the two mask classes, under ``conv``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)  # type: ignore[no-any-return]


class UYNet(nn.Module):
    """U-YNet: segmentation mask logits + P(real) from the bottleneck.

    ``down5`` exists only so that original checkpoints load strictly; forward never uses it.
    Input: RGB float in [0, 1], NCHW, 224 x 224 (the classifier head assumes that size).
    """

    def __init__(self, width: int = ORIGINAL_WIDTH, n_channels: int = 3, n_classes: int = 2) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.width = width
        self.n_channels = n_channels
        self.n_classes = n_classes
        c = [width * m for m in (1, 2, 4, 8, 16, 32)]
        self.inc = DoubleConv(n_channels, c[0])
        self.down1 = Down(c[0], c[1])
        self.down2 = Down(c[1], c[2])
        self.down3 = Down(c[2], c[3])
        self.down4 = Down(c[3], c[4])
        self.down5 = Down(c[4], c[5])  # unused in forward: kept for checkpoint compatibility
        self.linear_1 = nn.Linear(c[4], c[3])
        self.linear_2 = nn.Linear(c[3], 1)
        self.up1 = Up(c[4], c[3])
        self.up2 = Up(c[3], c[2])
        self.up3 = Up(c[2], c[1])
        self.up4 = Up(c[1], c[0])
        self.outc = OutConv(c[0], n_classes)

    def forward_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return (mask_logits [N,2,H,W], class_logit [N,1]); the logit is what the DPU outputs."""
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x5 = self.down4(x4)
        # classification head: 16w x 14 x 14 -> 7 x 7 -> 1 x 1 -> 16w
        h = F.max_pool2d(x5, 2)
        h = F.max_pool2d(h, 7)
        h = torch.flatten(h, 1)
        h = F.relu(self.linear_1(h))
        class_logit = self.linear_2(h)
        # segmentation decoder
        y = self.up1(x5, x4)
        y = self.up2(y, x3)
        y = self.up3(y, x2)
        y = self.up4(y, x1)
        return self.outc(y), class_logit

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return (mask_logits [N,2,224,224], class_prob [N,1] = P(real)), as the original does."""
        mask_logits, class_logit = self.forward_logits(x)
        return mask_logits, torch.sigmoid(class_logit)


def _up_without_concat(up: Up, x1: Tensor, x2: Tensor) -> Tensor:
    """``Up.forward`` (eval mode) with its first convolution split over the two inputs, no concat.

    conv(cat([x2, x1]), W) = conv(x2, W[:, :C2]) + conv(x1, W[:, C2:]): the same sums in another
    order. The concat forced ONNX Runtime out of its blocked (NCHWc) layout and back at every
    decoder level (~14 % of its time at batch 8); torch eager runs the split ~12 % faster too.
    The BatchNorm after that convolution is folded into the two halves with its running
    statistics (what eval mode computes, and what the ONNX exporter does for every other Conv+BN).
    """
    x1 = up.up(x1)
    dy = x2.shape[2] - x1.shape[2]
    dx = x2.shape[3] - x1.shape[3]
    if dy or dx:
        x1 = F.pad(x1, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
    conv, bn, *rest = up.conv.double_conv
    assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and conv.bias is not None
    assert bn.running_mean is not None and bn.running_var is not None
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    w = conv.weight * scale[:, None, None, None]
    bias = (conv.bias - bn.running_mean) * scale + bn.bias
    c2 = conv.in_channels - up.up.out_channels  # a Python int: the traced graph slices constants
    y = F.conv2d(x2, w[:, :c2], bias, padding=conv.padding) + F.conv2d(x1, w[:, c2:], None, padding=conv.padding)
    for layer in rest:
        y = layer(y)
    return y


class UYNetForExport(nn.Module):
    """The deployable interface: ``image`` [N,3,224,224] RGB in [0,1] -> (mask_prob, fake_score).

    ``mask_prob`` [N,224,224] = softmax(mask_logits, dim=1)[:, 1] (probability that a pixel is
    manipulated); ``fake_score`` [N] = 1 - P(real), computed as sigmoid(-logit) so that scores near
    0 keep their precision.

    Two exact rewrites (equal up to float rounding; tests pin this module to ``UYNet.forward``):
    with two classes softmax(l)[:, 1] = sigmoid(l1 - l0), and ``outc`` is a 1x1 convolution, so the
    mask head is one 1-channel convolution (weights w1 - w0, bias b1 - b0) and a sigmoid; the
    2-channel softmax over 224 x 224 was ~10 % of ONNX Runtime's time. And each decoder level
    convolves skip and upsampled inputs separately instead of concatenating them
    (:func:`_up_without_concat`). The encoder/decoder walk therefore repeats ``forward_logits``.
    """

    def __init__(self, model: UYNet) -> None:
        super().__init__()
        if model.n_classes != 2:
            raise ValueError(f"the export interface needs a 2-class mask head, got {model.n_classes}")
        self.model = model

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        m = self.model
        if m.training:  # the decoder folds BatchNorm with running statistics: eval semantics only
            raise RuntimeError("UYNetForExport runs the model in eval mode only; call model.eval() first")
        x1 = m.inc(image)
        x2 = m.down1(x1)
        x3 = m.down2(x2)
        x4 = m.down3(x3)
        x5 = m.down4(x4)
        h = F.max_pool2d(F.max_pool2d(x5, 2), 7)
        class_logit = m.linear_2(F.relu(m.linear_1(torch.flatten(h, 1))))
        y = _up_without_concat(m.up1, x5, x4)
        y = _up_without_concat(m.up2, y, x3)
        y = _up_without_concat(m.up3, y, x2)
        y = _up_without_concat(m.up4, y, x1)
        w, b = m.outc.conv.weight, m.outc.conv.bias
        mask_logit = F.conv2d(y, w[1:2] - w[0:1], None if b is None else b[1:2] - b[0:1])
        mask_prob = torch.sigmoid(mask_logit.squeeze(1))
        fake_score = torch.sigmoid(-class_logit[:, 0])
        return mask_prob, fake_score


def build_uynet(width: int = ORIGINAL_WIDTH, seed: int | None = None) -> UYNet:
    """A fresh U-YNet in eval mode; ``seed`` makes the random initial weights reproducible."""
    if seed is not None:
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            model = UYNet(width)
        finally:
            torch.random.set_rng_state(gen_state)
    else:
        model = UYNet(width)
    return model.eval()
