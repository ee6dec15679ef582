"""Identity tracking: the same face keeps its track id from frame to frame."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..results import Box
from .detection import Detection, iou

# --------------------------------------------------------------------------------------------------
# Tracker
# --------------------------------------------------------------------------------------------------


@dataclass
class _Track:
    id: int
    box: Box
    vx: float = 0.0
    vy: float = 0.0
    missed: int = 0
    hits: int = 1

    def predicted(self) -> Box:
        """Where the face should be now, by constant velocity since its last sighting."""
        k = self.missed + 1
        x, y, w, h = self.box
        return (x + self.vx * k, y + self.vy * k, w, h)


class FaceTracker:
    """Gives each person a stable integer id across frames.

    Ids start at **1** and are never reused. Matching is greedy and deterministic: first by IoU of each
    track's constant-velocity prediction with the detections (pairs with IoU >= ``iou_threshold``,
    best first), then, for what is left, by centre distance normalised by the larger box side
    (<= ``max_center_dist``, box sizes within a factor ``max_size_ratio``), which keeps fast-moving
    faces whose boxes no longer overlap. A track unmatched for more than ``max_missed`` consecutive
    updates is retired; a face that comes back after that gets a new id.
    """

    def __init__(
        self,
        iou_threshold: float = 0.3,
        max_missed: int = 15,
        *,
        max_center_dist: float = 1.0,
        max_size_ratio: float = 2.0,
        velocity_smoothing: float = 0.5,
    ) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError("iou_threshold must be in (0, 1]")
        if max_missed < 0:
            raise ValueError("max_missed must be >= 0")
        self.iou_threshold = float(iou_threshold)
        self.max_missed = int(max_missed)
        self.max_center_dist = float(max_center_dist)
        self.max_size_ratio = float(max_size_ratio)
        self.velocity_smoothing = float(velocity_smoothing)
        self._tracks: list[_Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Forget every track and restart ids at 1 (a new clip, or a seek that breaks continuity)."""
        self._tracks = []
        self._next_id = 1

    @property
    def active_ids(self) -> list[int]:
        return [t.id for t in self._tracks]

    def update(self, detections: list[Detection]) -> list[tuple[int, Detection]]:
        """Assign track ids to this frame's detections; returns (id, detection) sorted by id."""
        tracks = self._tracks
        preds = [t.predicted() for t in tracks]
        assigned: dict[int, int] = {}  # track index -> detection index
        used: set[int] = set()

        pairs: list[tuple[float, int, int]] = []
        for ti, p in enumerate(preds):
            for di, d in enumerate(detections):
                v = iou(p, d.box)
                if v >= self.iou_threshold:
                    pairs.append((-v, ti, di))
        for _, ti, di in sorted(pairs):
            if ti not in assigned and di not in used:
                assigned[ti] = di
                used.add(di)

        pairs = []
        for ti, p in enumerate(preds):
            if ti in assigned:
                continue
            pcx, pcy = p[0] + p[2] / 2.0, p[1] + p[3] / 2.0
            psz = max(p[2], p[3])
            for di, d in enumerate(detections):
                if di in used:
                    continue
                dsz = max(d.box[2], d.box[3])
                if max(psz, dsz) > self.max_size_ratio * min(psz, dsz):
                    continue
                dcx, dcy = d.center
                dist = math.hypot(dcx - pcx, dcy - pcy) / max(psz, dsz)
                if dist <= self.max_center_dist:
                    pairs.append((dist, ti, di))
        for _, ti, di in sorted(pairs):
            if ti not in assigned and di not in used:
                assigned[ti] = di
                used.add(di)

        out: list[tuple[int, Detection]] = []
        alive: list[_Track] = []
        a = self.velocity_smoothing
        for ti, t in enumerate(tracks):
            match = assigned.get(ti)
            if match is None:
                t.missed += 1
                if t.missed <= self.max_missed:
                    alive.append(t)
                continue
            d = detections[match]
            steps = t.missed + 1
            ox, oy = t.box[0] + t.box[2] / 2.0, t.box[1] + t.box[3] / 2.0
            nx, ny = d.center
            vx, vy = (nx - ox) / steps, (ny - oy) / steps
            if t.hits == 1:
                t.vx, t.vy = vx, vy
            else:
                t.vx, t.vy = a * vx + (1 - a) * t.vx, a * vy + (1 - a) * t.vy
            t.box, t.missed, t.hits = d.box, 0, t.hits + 1
            alive.append(t)
            out.append((t.id, d))
        for di, d in enumerate(detections):
            if di not in used:
                t = _Track(id=self._next_id, box=d.box)
                self._next_id += 1
                alive.append(t)
                out.append((t.id, d))
        self._tracks = alive
        out.sort(key=lambda p: p[0])
        return out


