"""File formats: ImageJ TIFF stacks, ThunderSTORM CSV tables and the compact training-patch file.

Every writer writes to a temporary file beside the target and renames it when complete, so a failure
never leaves a partial output behind.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
import tifffile

from dstorm.errors import InputError, MissingInput

__all__ = [
    "jsonable",
    "LOCALIZATION_COLUMNS",
    "atomic_output",
    "write_stack",
    "read_localizations",
    "write_localizations",
    "save_arrays",
    "load_arrays",
]

#: ThunderSTORM's ground-truth columns, in its order, units in brackets.
LOCALIZATION_COLUMNS = [
    "id",
    "frame",
    "x [nm]",
    "y [nm]",
    "sigma [nm]",
    "intensity [photon]",
    "offset [photon]",
    "bkgstd [photon]",
]


#: The columns every localisation or ground-truth table needs.
REQUIRED_COLUMNS = ("frame", "x [nm]", "y [nm]")


def jsonable(value):
    """``value`` with NumPy scalars made plain and NaN/inf written as null (JSON has no NaN; pandas reads
    null back as NaN), through dicts, lists and tuples."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; outputs are ordinary files
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_stack(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    *,
    shape: tuple[int, int, int],
    dtype,
    pixel_size_nm: float,
) -> None:
    """Write frames (an array or an iterator of 2-D frames) as a multi-page ImageJ TIFF.

    The pixel size goes into the resolution tags in µm (ImageJ reads it as the calibration). No date or
    host is written, so identical data give identical files.
    """
    pixels_per_um = 1000.0 / float(pixel_size_nm)
    with atomic_output(path) as tmp:
        tifffile.imwrite(
            tmp,
            frames if isinstance(frames, np.ndarray) else iter(frames),
            shape=shape,
            dtype=dtype,
            imagej=True,
            resolution=(pixels_per_um, pixels_per_um),
            metadata={"axes": "TYX" if len(shape) == 3 else "YX", "unit": "um"},
            photometric="minisblack",
        )


def read_localizations(path: str | os.PathLike) -> pd.DataFrame:
    """Read a ThunderSTORM CSV (ground truth or localisations). Needs ``frame``, ``x [nm]``, ``y [nm]``.

    Frames are numbered from 1 and positions follow ThunderSTORM's convention (pixel ``j`` covers
    ``[j, j+1)`` pixel widths, centre at ``j + 0.5``).
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInput(f"{path}: localisation table not found")
    if path.stat().st_size == 0:
        raise InputError(f'{path}: empty file (0 bytes); expected a ThunderSTORM CSV with "frame","x [nm]","y [nm]"')
    try:
        table = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - pandas raises many kinds; one clear message
        raise InputError(f"{path}: not a readable CSV table ({exc})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {missing}; expected a ThunderSTORM CSV with "
            f'"frame","x [nm]","y [nm]" (found {list(table.columns)})'
        )
    for column in REQUIRED_COLUMNS:
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            raw = table[column].iloc[bad[0]]
            shown = "an empty cell (or NaN)" if pd.isna(raw) else repr(str(raw))
            raise InputError(
                f"{path}: row {bad[0] + 1} (line {bad[0] + 2}), column {column!r}: {shown} is not a finite number "
                f"({len(bad)} such value(s) in that column)"
            )
        if not pd.api.types.is_numeric_dtype(table[column]):
            table[column] = pd.to_numeric(table[column])
    if len(table) and table["frame"].min() < 1:
        raise InputError(f"{path}: frames must be numbered from 1 (ThunderSTORM), found {table['frame'].min():g}")
    return table


def write_localizations(path: str | os.PathLike, table: pd.DataFrame, *, decimals: int = 3) -> None:
    """Write a ThunderSTORM CSV: quoted header with units, ``id`` from 1, numbers unquoted."""
    table = table.copy()
    table.insert(0, "id", np.arange(1, len(table) + 1))
    header = ",".join(f'"{c}"' for c in table.columns)
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            fh.write(header + "\n")
            table.to_csv(fh, index=False, header=False, float_format=f"%.{decimals}f", lineterminator="\n")


def save_arrays(path: str | os.PathLike, meta: dict, **arrays: np.ndarray) -> None:
    """Save arrays and a JSON ``meta`` dict as an uncompressed ``.npz`` that ``np.load`` reads.

    Unlike ``np.savez`` the zip entries carry a fixed date, so the same arrays give the same bytes.
    Nothing is pickled: loading needs ``allow_pickle=False`` only.
    """
    entries = dict(arrays)
    entries["meta"] = np.array(json.dumps(meta, sort_keys=True))
    with atomic_output(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for name, array in entries.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.require(array, requirements="C"), allow_pickle=False)


def load_arrays(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """Inverse of :func:`save_arrays`: ``(meta, arrays)``."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    return meta, arrays
