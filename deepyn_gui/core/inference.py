"""The small contract every inference backend fulfils (ONNX Runtime, VART/VCK5000, ...).

It lives in core because the pipeline needs only this Protocol; concrete backends live in
``deepyn_gui.backends`` and are picked through its registry by the two shells, so core never
imports a concrete backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .results import ModelInfo


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here, and if not, the reason in words a user can act on."""

    available: bool
    reason: str = ""

    def __str__(self) -> str:
        return "available" if self.available else f"unavailable ({self.reason})"


@runtime_checkable
class InferenceBackend(Protocol):
    """Runs U-YNet on batches of face crops.

    ``infer`` takes uint8 RGB crops [N,224,224,3] (N <= batch_size is allowed; the backend pads
    internally if it must) and returns ``(mask_prob, fake_score)``: float32 [N,224,224] probability
    that each pixel is manipulated, and float32 [N] = 1 - P(real). It raises
    :class:`deepyn_gui.core.errors.BackendError` on failure; it never invents a score.
    """

    name: str
    batch_size: int

    @property
    def model_info(self) -> ModelInfo: ...

    def describe(self) -> dict[str, Any]:
        """Backend name, runtime version, providers/devices, threads: written into exports."""
        ...

    def infer(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def close(self) -> None: ...


def check_backend_input(crops: np.ndarray, name: str) -> np.ndarray:
    """The crops as an array, or BackendError unless they are uint8 ``[N, 224, 224, 3]`` (every backend)."""
    from .errors import BackendError
    from .results import CROP_SIZE

    crops = np.asarray(crops)
    if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[1:] != (CROP_SIZE, CROP_SIZE, 3):
        raise BackendError(
            f"backend {name} expects uint8 crops [N,{CROP_SIZE},{CROP_SIZE},3], got {crops.dtype} {list(crops.shape)}"
        )
    return crops


def check_backend_output(mask_prob: np.ndarray, fake_score: np.ndarray, n: int) -> None:
    """Raise BackendError if a backend returned the wrong shape, non-finite or out-of-range values."""
    from .errors import BackendError

    if mask_prob.shape != (n, 224, 224):
        raise BackendError(f"backend returned mask of shape {mask_prob.shape}, expected ({n}, 224, 224)")
    if fake_score.shape != (n,):
        raise BackendError(f"backend returned scores of shape {fake_score.shape}, expected ({n},)")
    if not np.all(np.isfinite(fake_score)):
        raise BackendError("backend returned NaN or infinite fake scores")
    if not np.all(np.isfinite(mask_prob)):
        raise BackendError("backend returned NaN or infinite mask values")
    if np.any((fake_score < 0.0) | (fake_score > 1.0)):
        raise BackendError("backend returned fake scores outside [0, 1]")
    if np.any((mask_prob < -1e-3) | (mask_prob > 1.0 + 1e-3)):
        raise BackendError("backend returned mask probabilities outside [0, 1]")
