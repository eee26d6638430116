"""Reading acquisitions: TIFF stacks of any common layout, streamed in batches of frames.

Multi-page TIFF, ImageJ hyperstacks and OME-TIFF; uint8/uint16/uint32/int/float; a single 2-D image is a
one-frame stack; every axis other than Y and X (T, Z, ...) is flattened into frames. RGB or multi-channel
data are refused. Pages are read per batch (``TiffFile.asarray(key=...)``), never the whole stack.

A file is used only whole: the frame count is the one the file declares (ImageJ ``images``, the OME
``Pixels`` sizes, else its pages), every declared frame must lie inside the file, and any error tifffile
reports while opening or reading (it logs many instead of raising, e.g. for a truncated file, and then
offers the pages it could parse) is a failure naming the file and the frames found against those declared.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import tifffile

from dstorm.errors import InputError

__all__ = ["StackError", "TiffStack"]

log = logging.getLogger(__name__)


class StackError(InputError):
    """An acquisition file the reconstruction cannot use; the message names the file."""


class _TifffileErrors(logging.Handler):
    """Collects the ERROR records tifffile logs (it logs, then goes on with what it could parse)."""

    def __init__(self):
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _tifffile_errors():
    handler = _TifffileErrors()
    logger = logging.getLogger("tifffile")
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


class TiffStack:
    """An open TIFF acquisition. Use as a context manager; iterate with :meth:`batches`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise StackError(f"{self.path}: acquisition file not found")
        if self.path.stat().st_size == 0:
            raise StackError(f"{self.path}: empty file (0 bytes); expected a TIFF stack")
        with _tifffile_errors() as errors:
            try:
                self._tif = tifffile.TiffFile(self.path)
                series = self._tif.series[0]
                shape, axes, dtype = tuple(series.shape), series.axes, np.dtype(series.dtype)
            except Exception as exc:  # noqa: BLE001 - tifffile raises many kinds for broken files
                if hasattr(self, "_tif"):
                    self._tif.close()
                raise StackError(f"{self.path}: not a readable TIFF ({type(exc).__name__}: {exc})") from None
        try:
            self._check_whole(series, shape, errors)
            self._check_layout(series, shape, axes, dtype)
        except StackError:
            self._tif.close()
            raise
        self.series = series
        self.height, self.width = shape[-2], shape[-1]
        self.n_frames = int(math.prod(shape[:-2]))
        self.dtype = dtype
        self.pixel_size_nm = self._metadata_pixel_size_nm()

    def declared_frames(self) -> int | None:
        """The number of images the file's metadata declares (ImageJ ``images``; OME ``SizeT·SizeZ·SizeC``),
        None where it declares none (a plain multi-page TIFF: its pages are the count)."""
        tif = self._tif
        if tif.is_imagej and (tif.imagej_metadata or {}).get("images"):
            return int(tif.imagej_metadata["images"])
        if tif.is_ome:
            import xml.etree.ElementTree as ET

            root = ET.fromstring(tif.ome_metadata)
            pixels = next((el for el in root.iter() if el.tag.endswith("Pixels")), None)
            if pixels is not None:
                return math.prod(int(pixels.get(k, 1)) for k in ("SizeT", "SizeZ", "SizeC"))
        return None

    def _check_whole(self, series, shape, errors: list[str]) -> None:
        """Refuse a file that holds fewer frames than it declares, or that tifffile found damaged."""
        found = int(math.prod(shape[:-2]))
        declared = self.declared_frames()
        if declared is not None and "S" not in series.axes and declared != found:
            raise StackError(
                f"{self.path}: the file declares {declared} frames but {found} can be read (truncated or corrupt "
                f"TIFF{'; tifffile: ' + errors[0] if errors else ''})"
            )
        offset = getattr(series, "dataoffset", None)
        if offset is not None:  # contiguous data: every declared byte must be in the file
            end, size = offset + series.nbytes, os.path.getsize(self.path)
            if end > size:
                frame_bytes = series.nbytes // max(found, 1)
                raise StackError(
                    f"{self.path}: truncated TIFF: {found} frames declared, the file ends inside frame "
                    f"{(size - offset) // frame_bytes + 1} ({size} of {end} bytes)"
                )
        if errors:
            raise StackError(
                f"{self.path}: damaged or truncated TIFF ({found} frame(s) readable, "
                f"{declared if declared is not None else 'no count'} declared; tifffile: {errors[0]})"
            )

    def _check_layout(self, series, shape, axes, dtype) -> None:
        if "S" in axes or getattr(series.keyframe, "photometric", None) in (tifffile.PHOTOMETRIC.RGB, tifffile.PHOTOMETRIC.PALETTE):
            raise StackError(f"{self.path}: RGB/colour data (axes {axes}, shape {shape}); expected grey single-molecule frames")
        if axes == "CYX" and not self._tif.is_ome:
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
            with _tifffile_errors() as errors:
                try:
                    data = self._tif.asarray(key=range(start, stop), series=0)
                except Exception as exc:  # noqa: BLE001
                    errors.insert(0, f"{type(exc).__name__}: {exc}")
            if errors:
                raise StackError(
                    f"{self.path}: unreadable or truncated TIFF at frames {start + 1}-{stop} of {self.n_frames} "
                    f"({errors[0]})"
                )
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
