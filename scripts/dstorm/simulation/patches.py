"""Training patches by the Deep-STORM reference recipe, stored compactly.

Recipe (official code): for each training frame in order, draw ``patches_per_frame`` random patch
positions; keep a patch if at least ``min_emitters`` emitters lie inside it; stop at ``max_patches``.

Instead of the upsampled inputs and heatmaps (208×208 float arrays per patch at U = 8, which filled the
RAM of users of the original code), the file stores what they are made from: the raw low-resolution
patches and the emitter positions. The training stage builds inputs and targets per batch.

Patch file (``patches.npz``, read with ``dstorm.io.load_arrays``; format version 1):

=================  ==================  ==========================================================
array              shape, dtype        meaning
=================  ==================  ==========================================================
``patches``        (N, P, P) uint16    raw camera counts (ADU) of each patch
``origin``         (N, 2) int32        (row, col) of each patch's top-left pixel in its frame
``frame``          (N,) int32          frame of each patch, from 1 (as in ground_truth.csv)
``offsets``        (N + 1,) int64      emitters of patch i are ``xy[offsets[i]:offsets[i+1]]``
``xy``             (M, 2) float32      (x, y) in camera pixels relative to the patch corner:
                                       pixel j covers [j, j+1); includes emitters up to ``margin_px``
                                       outside the patch, whose blurred spikes reach into it
``meta``           JSON string         recipe and imaging parameters (see ``PatchSampler.meta``)
=================  ==================  ==========================================================

Optional, for ``<kind>`` ``calibration`` (``training_set.calibration_frames`` > 0) and ``precision``
(``training_set.precision_frames`` > 0): ``<kind>_frames`` (K, h, w) uint16, ``<kind>_offsets`` (K + 1,)
int64 and ``<kind>_xy`` (M, 2) float32, frames that look like the acquisitions and their emitters (see
``dstorm.simulation.simulate.sparse_frames``). Training calibrates the detection threshold on the
calibration frames (files without them: on the validation patches) and measures the precision curve of
``uncertainty [nm]`` on the isolated emitters of the precision frames (files without them: of the
calibration frames).
"""

from __future__ import annotations

import numpy as np

__all__ = ["PatchSampler", "PATCH_FORMAT_VERSION"]

PATCH_FORMAT_VERSION = 1


class PatchSampler:
    """Accumulates patches frame by frame until ``max_patches`` are kept."""

    def __init__(
        self,
        rng: np.random.Generator,
        *,
        patch_size_px: int,
        patches_per_frame: int,
        max_patches: int,
        min_emitters: int,
        margin_px: float,
    ):
        self.rng = rng
        self.p = int(patch_size_px)
        self.per_frame = int(patches_per_frame)
        self.max_patches = int(max_patches)
        self.min_emitters = int(min_emitters)
        self.margin = float(margin_px)
        self.frames_seen = 0
        self.candidates_tried = 0
        self._patches, self._origin, self._frame, self._counts, self._xy = [], [], [], [], []

    @property
    def n_patches(self) -> int:
        return int(sum(len(o) for o in self._origin))

    @property
    def full(self) -> bool:
        return self.n_patches >= self.max_patches

    def add_frame(self, image: np.ndarray, frame_number: int, x_px: np.ndarray, y_px: np.ndarray) -> None:
        """Offer one frame (raw counts) and its emitters (camera pixels, absolute)."""
        if self.full:
            return
        self.frames_seen += 1
        h, w = image.shape
        p = self.p
        r0 = self.rng.integers(0, h - p + 1, self.per_frame)
        c0 = self.rng.integers(0, w - p + 1, self.per_frame)
        self.candidates_tried += self.per_frame
        dx = x_px[None, :] - c0[:, None]
        dy = y_px[None, :] - r0[:, None]
        inside = (dx >= 0) & (dx < p) & (dy >= 0) & (dy < p)
        keep = np.flatnonzero(inside.sum(axis=1) >= self.min_emitters)
        keep = keep[: self.max_patches - self.n_patches]
        if len(keep) == 0:
            return
        m = self.margin
        near = (dx[keep] >= -m) & (dx[keep] < p + m) & (dy[keep] >= -m) & (dy[keep] < p + m)
        windows = np.lib.stride_tricks.sliding_window_view(image, (p, p))
        self._patches.append(windows[r0[keep], c0[keep]].copy())
        self._origin.append(np.column_stack([r0[keep], c0[keep]]))
        self._frame.append(np.full(len(keep), frame_number))
        self._counts.append(near.sum(axis=1))
        self._xy.append(np.column_stack([dx[keep][near], dy[keep][near]]))

    def arrays(self) -> dict[str, np.ndarray]:
        p = self.p
        cat = lambda parts, shape, dtype: np.concatenate(parts).astype(dtype) if parts else np.zeros(shape, dtype)  # noqa: E731
        counts = cat(self._counts, (0,), np.int64)
        return {
            "patches": cat(self._patches, (0, p, p), np.uint16),
            "origin": cat(self._origin, (0, 2), np.int32),
            "frame": cat(self._frame, (0,), np.int32),
            "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            "xy": cat(self._xy, (0, 2), np.float32),
        }
