"""Reading acquisitions: TIFF stacks of any common layout, streamed in batches of frames.

Multi-page TIFF, ImageJ hyperstacks and OME-TIFF; uint8/uint16/uint32/int/float; a single 2-D image is a
one-frame stack; every axis other than Y and X (T, Z, ...) is flattened into frames. RGB or multi-channel
data are refused. Pages are read per batch (``TiffFile.asarray(key=...)``), never the whole stack.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Iterator

import numpy as np
import tifffile

__all__ = ["StackError", "TiffStack"]

log = logging.getLogger(__name__)


class StackError(ValueError):
    """An acquisition file the reconstruction cannot use; the message names the file."""


class TiffStack:
    """An open TIFF acquisition. Use as a context manager; iterate with :meth:`batches`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise StackError(f"{self.path}: acquisition file not found")
        try:
            self._tif = tifffile.TiffFile(self.path)
            series = self._tif.series[0]
            shape, axes, dtype = tuple(series.shape), series.axes, np.dtype(series.dtype)
        except Exception as exc:  # noqa: BLE001 - tifffile raises many kinds for broken files
            raise StackError(f"{self.path}: unreadable or truncated TIFF ({type(exc).__name__}: {exc})") from None
        try:
            self._check_layout(series, shape, axes, dtype)
        except StackError:
            self._tif.close()
            raise
        self.series = series
        self.height, self.width = shape[-2], shape[-1]
        self.n_frames = int(math.prod(shape[:-2]))
        self.dtype = dtype
        self.pixel_size_nm = self._metadata_pixel_size_nm()

    def _check_layout(self, series, shape, axes, dtype) -> None:
        if "S" in axes or getattr(series.keyframe, "photometric", None) in (tifffile.PHOTOMETRIC.RGB, tifffile.PHOTOMETRIC.PALETTE):
            raise StackError(f"{self.path}: RGB/colour data (axes {axes}, shape {shape}); expected grey single-molecule frames")
        if axes == "CYX":
            # tifffile (and scripts using it) label a plain ImageJ stack without axes as channels: with no
            # time or z axis in the file, a single-molecule stack is far more likely than N colours
            log.warning("%s: axes CYX with no time axis; reading its %d 'channels' as frames", self.path, shape[0])
        elif "C" in axes and shape[axes.index("C")] > 1:
            raise StackError(f"{self.path}: {shape[axes.index('C')]} channels (axes {axes}); expected one grey channel")
        if not axes.endswith("YX") or len(shape) < 2:
            raise StackError(f"{self.path}: axes {axes!r}, shape {shape}; expected frames of Y × X pixels")
        if dtype.kind not in "uif" or dtype.itemsize > 8:
            raise StackError(f"{self.path}: pixel type {dtype} is not grey numbers (expected uint8/16/32, int or float)")
        if math.prod(shape[:-2]) == 0 or 0 in shape[-2:]:
            raise StackError(f"{self.path}: no frames (shape {shape})")

    def _metadata_pixel_size_nm(self) -> float | None:
        """Pixel size from ImageJ/OME/resolution metadata, nm, or None where the file does not say."""
        try:
            if self._tif.is_ome:
                import xml.etree.ElementTree as ET

                root = ET.fromstring(self._tif.ome_metadata)
                pixels = next(el for el in root.iter() if el.tag.endswith("Pixels"))
                size = pixels.get("PhysicalSizeX")
                unit = pixels.get("PhysicalSizeXUnit", "µm")
                if size:
                    return float(size) * {"nm": 1.0, "µm": 1000.0, "um": 1000.0, "mm": 1e6}.get(unit, 1000.0)
            page = self._tif.pages.first
            tag = page.tags.get("XResolution")
            if tag is None:
                return None
            num, den = tag.value
            if not num or not den:
                return None
            per_unit = num / den
            unit = (self._tif.imagej_metadata or {}).get("unit", "") if self._tif.is_imagej else ""
            res_unit = page.tags.get("ResolutionUnit")
            if unit in ("um", "micron", "µm", "\\u00B5m"):
                return 1000.0 / per_unit
            if unit == "nm":
                return 1.0 / per_unit
            if res_unit is not None and res_unit.value == tifffile.RESUNIT.CENTIMETER:
                return 1e7 / per_unit
            return None  # inches or no unit: a screen resolution, not a pixel size
        except Exception:  # noqa: BLE001 - metadata is advisory: never fail a run on it
            return None

    def check_pixel_size(self, configured_nm: float, tolerance: float = 0.01) -> None:
        """Warn (in the log) where the file's metadata disagrees with the configured pixel size."""
        found = self.pixel_size_nm
        if found is not None and abs(found - configured_nm) > tolerance * configured_nm:
            log.warning(
                "%s: the TIFF's metadata says %.4g nm pixels but the config says %.4g nm; using the config's",
                self.path, found, configured_nm,
            )  # fmt: skip

    def batches(self, batch_size: int) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first frame index (0-based), frames (B, H, W) float32)``; checks every value is finite."""
        for start in range(0, self.n_frames, batch_size):
            stop = min(start + batch_size, self.n_frames)
            try:
                data = self._tif.asarray(key=range(start, stop), series=0)
            except Exception as exc:  # noqa: BLE001
                raise StackError(
                    f"{self.path}: unreadable or truncated TIFF at frames {start + 1}-{stop} ({type(exc).__name__}: {exc})"
                ) from None
            frames = np.asarray(data, dtype=np.float32).reshape(stop - start, self.height, self.width)
            if not np.isfinite(frames).all():
                bad = start + 1 + int(np.flatnonzero(~np.isfinite(frames).all(axis=(1, 2)))[0])
                raise StackError(f"{self.path}: frame {bad} holds NaN or infinite values")
            yield start, frames

    def close(self) -> None:
        self._tif.close()

    def __enter__(self) -> "TiffStack":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
