"""Write fake ``.xmodel`` files for the ``xir``/``vart`` test doubles in this folder.

A fake xmodel is JSON (``format: fake-xmodel/1``): child subgraphs with their ``device``, and for a
DPU subgraph its int8 tensors and the reference weights. ``choose_fix_point`` picks the largest fix
point that keeps a calibration range inside int8 without saturating, as the Vitis AI quantiser does
for a well-calibrated tensor.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CROP = 224


def choose_fix_point(max_abs: float) -> int:
    """Largest f with max_abs · 2^f <= 127 (no saturation on the calibration data)."""
    if max_abs <= 0:
        return 7
    return math.floor(math.log2(127.0 / max_abs))


def write_fake_xmodel(
    path: str | Path,
    state_dict: str | Path,
    width: int,
    *,
    input_fix: int = 6,
    mask_fix: int = 4,
    class_fix: int = 6,
    batch: int = 8,
    devices: Sequence[str] = ("CPU", "DPU", "CPU"),
    faults: dict[str, Any] | None = None,
    input_dims: Sequence[int] | None = None,
    mask_dims: Sequence[int] | None = None,
    class_dims: Sequence[int] | None = None,
    name: str = "YNET",
) -> Path:
    """One subgraph per entry of ``devices``; every DPU one runs the reference U-YNet."""
    path = Path(path)
    subgraphs: list[dict[str, Any]] = []
    for i, dev in enumerate(devices):
        if dev.upper() == "DPU":
            subgraphs.append({
                "name": f"subgraph_{name}__UYNetForDPU__{i}",
                "device": dev,
                "attrs": {"dpu_name": "DPUCVDX8H_ISA1_F2W4_4PE_fake"},
                "inputs": [{"name": f"{name}__input_0_fix", "dims": list(input_dims or [batch, CROP, CROP, 3]),
                            "fix_point": input_fix}],
                "outputs": [
                    {"name": f"{name}__mask_logits_fix", "dims": list(mask_dims or [batch, CROP, CROP, 2]),
                     "fix_point": mask_fix, "role": "mask"},
                    {"name": f"{name}__class_logit_fix", "dims": list(class_dims or [batch, 1]),
                     "fix_point": class_fix, "role": "class"},
                ],
                "reference": {"state_dict": str(Path(state_dict).resolve()), "width": int(width)},
                "faults": dict(faults or {}),
            })
        else:
            subgraphs.append({"name": f"subgraph_{name}__{dev.lower()}_{i}", "device": dev})
    path.write_text(json.dumps({"format": "fake-xmodel/1", "name": name, "subgraphs": subgraphs}, indent=1),
                    encoding="utf-8")
    return path
