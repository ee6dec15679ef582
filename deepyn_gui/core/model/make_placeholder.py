"""Write the bundled placeholder model: an UNTRAINED U-YNet (width 16, seed 0) and its model card.

The app must start and run end to end before the trained model exists; this file stands in for it
and says loudly, in its metadata and card, that its scores mean nothing. Run:

    python -m deepyn_gui.core.model.make_placeholder [--out resources/models/uynet_default.onnx]

The trained model will later overwrite both files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ...resources import resource_path

PLACEHOLDER_NAME = "uynet-untrained-placeholder"
PLACEHOLDER_WIDTH = 16
PLACEHOLDER_SEED = 0
MAX_BYTES = 20 * 1024 * 1024

CARD = """# {name}

**This model is UNTRAINED. Its scores mean nothing.**

- What it is: the U-YNet architecture (UNet with a real/fake classifier on the bottleneck), base width
  {width}, with random initial weights (PyTorch seed {seed}). It has never seen a face.
- Why it is here: so that DeepYN Viewer runs end to end (detection, inference, timeline, mask overlay,
  exports) before a trained model is available.
- Do not use its fake scores or masks to judge any video. Score bands shown with it are marked
  uncalibrated.
- It will be replaced by the trained model (same file name, `uynet_default.onnx`) and a real card.

Interface: input `image` float32 [N,3,224,224] RGB in [0,1]; outputs `mask_prob` [N,224,224] and
`fake_score` [N] (= 1 - P(real)). Metadata: `deepyn.trained=false`.

- File: `{file}`  size {size} bytes
- SHA-256: `{sha}`
"""


def make_placeholder(out: Path | None = None, threads: int = 2) -> Path:
    """Export the placeholder ONNX model and write its card beside it; returns the model path."""
    from .export import export_untrained
    from .metadata import sha256_file

    out = out or resource_path("models", "uynet_default.onnx")
    out.parent.mkdir(parents=True, exist_ok=True)
    path = export_untrained(
        PLACEHOLDER_WIDTH,
        out,
        seed=PLACEHOLDER_SEED,
        name=PLACEHOLDER_NAME,
        metadata={
            "deepyn.version": "0",
            "deepyn.notes": "Placeholder with random weights, to be replaced by the trained model.",
        },
        threads=threads,
    )
    size = path.stat().st_size
    if size >= MAX_BYTES:
        raise RuntimeError(f"placeholder model is {size} bytes, over the {MAX_BYTES} byte budget")
    card = CARD.format(
        name=PLACEHOLDER_NAME,
        width=PLACEHOLDER_WIDTH,
        seed=PLACEHOLDER_SEED,
        file=path.name,
        size=size,
        sha=sha256_file(path),
    )
    path.with_suffix(".md").write_text(card, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=None, help="model path (default: the bundled one)")
    args = parser.parse_args(argv)
    path = make_placeholder(args.out)
    print(f"wrote {path} ({path.stat().st_size} bytes) and {path.with_suffix('.md').name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
