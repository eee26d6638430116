"""Lateral drift of an acquisition estimated from its own localisations (no fiducials), and its correction.

Convention: the drift ``d(t)`` of frame ``t`` is where the sample appears displaced in that frame, relative
to frame 1 (``d(1) = 0``); a corrected localisation is ``x − d(t)``. Both methods estimate the drift of
segments of consecutive frames and interpolate it to every frame with a smoothing spline
(:func:`interpolate`).

- **RCC** (redundant cross-correlation, Wang et al., Opt. Express 2014; as Picasso's ``undrift``): every
  segment rendered as a histogram (``bin_nm``, Gaussian blur of one bin), all ``S(S−1)/2`` pairs
  cross-correlated by FFT, the sub-bin peak by a Gaussian (log-parabola) fit, the pairwise shifts solved for
  per-segment positions by least squares; the pair with the largest residual above ``max_residual_nm`` is
  dropped and the system solved again, as long as that leaves every segment connected (the paper's outlier
  rejection, which Picasso omits). Cost grows with ``S²``: segments of 500 frames by default.
- **AIM** (in the spirit of adaptive intersection maximisation, Ma et al., Sci. Adv. 2024): the first segment
  is the reference; each next segment's shift is the one that maximises the number of its localisations
  that coincide with the reference within ``intersection_nm`` (soft count: each reference localisation is a
  Gaussian of σ = intersection/2 on a grid of intersection/2), searched within ``max_step_nm`` of the
  previous segment's drift; the corrected segment then joins the reference. A second pass registers every
  segment against all the others. Cost is linear in the localisations: segments of 100 frames by default.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter

from dstorm.defaults import schema_defaults

__all__ = ["DRIFT_METHODS", "Drift", "estimate_drift", "rcc", "aim", "interpolate", "segment_edges",
           "DEFAULT_SEGMENT_FRAMES", "METHOD_OPTIONS", "DRIFT_HEADER", "solve_shifts", "write_drift", "read_drift", "residual_rms"]  # fmt: skip

log = logging.getLogger(__name__)

#: The methods, as ``reconstruction.drift.method`` names them.
DRIFT_METHODS = ("aim", "rcc", "none")
#: Frames per segment of each method when the config says ``auto`` (RCC: 500, half Picasso's 1,000, whose
#: spline extrapolates the first and last 500 frames and missed frame 1's drift by ~10 nm on 10,000-frame
#: simulations (scripts/benchmarks/drift.py), or a quarter of the acquisition when that is shorter; AIM:
#: Picasso's 100). Not the schema's to own: "auto" depends on
#: the method.
DEFAULT_SEGMENT_FRAMES = {"rcc": 500, "aim": 100}
#: The config's reconstruction.drift defaults (the schema owns them).
DEFAULTS = schema_defaults("reconstruction")["drift"]
#: The options of each method (the config's reconstruction.drift keys beside method and segment_frames).
METHOD_OPTIONS = {"aim": ("intersection_nm", "max_step_nm"), "rcc": ("bin_nm", "max_shift_nm", "max_residual_nm")}
#: Fewest localisations a segment needs for a shift estimate (fewer: the segments are made longer).
MIN_SEGMENT_LOCALIZATIONS = 200
#: Largest side of a rendered segment or reference grid, bins (the bin grows on larger fields).
MAX_GRID_SIDE = 4096


#: Columns of drift.csv (frames from 1).
DRIFT_HEADER = ["frame", "dx [nm]", "dy [nm]"]


def write_drift(path, dx_nm, dy_nm) -> None:
    """drift.csv: one row per frame (from 1), the drift in nm (subtract it from a localisation to correct)."""
    from dstorm.io import atomic_output

    table = np.column_stack([np.arange(1, len(dx_nm) + 1), dx_nm, dy_nm])
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as fh:
        fh.write(",".join(f'"{c}"' for c in DRIFT_HEADER) + "\n")
        np.savetxt(fh, table, fmt=["%d", "%.3f", "%.3f"], delimiter=",")


def read_drift(path) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dy) per frame from a drift.csv."""
    import pandas as pd

    from dstorm.errors import InputError

    table = pd.read_csv(path)
    if list(table.columns) != DRIFT_HEADER or not np.array_equal(table["frame"], np.arange(1, len(table) + 1)):
        raise InputError(f"{path}: expected columns {DRIFT_HEADER} with one row per frame from 1")
    return table["dx [nm]"].to_numpy(float), table["dy [nm]"].to_numpy(float)


def residual_rms(estimate: tuple[np.ndarray, np.ndarray], truth: tuple[np.ndarray, np.ndarray]) -> float:
    """RMS over frames of the 2-D error of an estimated trajectory, after removing the mean error (the
    common offset no method can know)."""
    ex = np.asarray(estimate[0]) - np.asarray(truth[0])
    ey = np.asarray(estimate[1]) - np.asarray(truth[1])
    return float(np.sqrt(np.mean((ex - ex.mean()) ** 2 + (ey - ey.mean()) ** 2)))


@dataclass
class Drift:
    """A per-frame trajectory (frames from 1) and the segment estimates behind it."""

    dx_nm: np.ndarray  # (n_frames,)
    dy_nm: np.ndarray
    method: str
    segment_frames: int = 0
    segment_centres: np.ndarray = field(default_factory=lambda: np.zeros(0))  # frames from 1
    segment_dx_nm: np.ndarray = field(default_factory=lambda: np.zeros(0))
    segment_dy_nm: np.ndarray = field(default_factory=lambda: np.zeros(0))
    warnings: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.dx_nm)

    def at(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The drift of 1-based ``frame`` numbers."""
        i = np.asarray(frame, dtype=np.int64) - 1
        return self.dx_nm[i], self.dy_nm[i]

    def summary(self) -> dict:
        return {
            "method": self.method, "segment_frames": self.segment_frames, "segments": len(self.segment_centres),
            "max_abs_nm": float(np.max(np.hypot(self.dx_nm, self.dy_nm))) if self.n_frames else 0.0,
            "end_nm": [float(self.dx_nm[-1]), float(self.dy_nm[-1])] if self.n_frames else [0.0, 0.0],
            "warnings": list(self.warnings), **self.details,
        }  # fmt: skip


def no_drift(n_frames: int, method: str = "none", warnings=()) -> Drift:
    return Drift(np.zeros(n_frames), np.zeros(n_frames), method, warnings=list(warnings))


def segment_edges(n_frames: int, segment_frames: int) -> np.ndarray:
    """0-based frame edges of segments of ``segment_frames`` (the last one takes the remainder when it would
    be shorter than half a segment)."""
    edges = list(range(0, n_frames, segment_frames)) + [n_frames]
    if len(edges) > 2 and edges[-1] - edges[-2] < segment_frames / 2:
        del edges[-2]
    return np.asarray(edges, dtype=np.int64)


def _segments(frame0, n_frames, segment_frames, method, warnings) -> np.ndarray:
    """Segment edges with at least MIN_SEGMENT_LOCALIZATIONS localisations each on average."""
    n_loc = len(frame0)
    if n_loc and n_loc / max(1, n_frames // segment_frames) < MIN_SEGMENT_LOCALIZATIONS:
        longer = int(np.ceil(MIN_SEGMENT_LOCALIZATIONS * n_frames / n_loc))
        warnings.append(
            f"{method}: {n_loc} localisations in {n_frames} frames are too few for segments of {segment_frames} "
            f"frames; segments of {longer} frames used"
        )
        segment_frames = longer
    return segment_edges(n_frames, segment_frames)


def estimate_drift(method: str, frame, x_nm, y_nm, *, n_frames: int, fov_nm: tuple[float, float],
                   segment_frames="auto", **options) -> Drift:  # fmt: skip
    """The drift of an acquisition of ``n_frames`` from its localisations (``frame`` from 1, positions in nm
    in a field of ``fov_nm`` = (height, width)). ``method``: one of :data:`DRIFT_METHODS`; ``options``: any of
    :data:`METHOD_OPTIONS` (the config section whole; each method takes its own)."""
    if method not in DRIFT_METHODS:
        raise ValueError(f"unknown drift method {method!r}; expected one of {', '.join(DRIFT_METHODS)}")
    known = {k for keys in METHOD_OPTIONS.values() for k in keys}
    if set(options) - known:
        raise ValueError(f"unknown drift option(s) {sorted(set(options) - known)}; known: {sorted(known)}")
    options = {**{k: DEFAULTS[k] for k in known}, **options}
    if method == "none":
        return no_drift(n_frames)
    if segment_frames in (None, "auto"):
        segment_frames = DEFAULT_SEGMENT_FRAMES[method]
        if method == "rcc":
            segment_frames = min(segment_frames, max(1, n_frames // 4))
    frame0 = np.asarray(frame, dtype=np.int64) - 1
    x, y = np.asarray(x_nm, dtype=np.float64), np.asarray(y_nm, dtype=np.float64)
    warnings: list[str] = []
    edges = _segments(frame0, n_frames, int(segment_frames), method, warnings)
    if len(edges) < 3:  # an expected outcome for short acquisitions: said in the log, not a warning
        note = f"{method}: {n_frames} frames make fewer than two segments of {segment_frames}; no drift corrected"
        log.info(note)
        drift = no_drift(n_frames, method, warnings)
        drift.segment_frames = int(segment_frames)
        drift.details["note"] = note
        return drift
    seg = np.searchsorted(edges, frame0, side="right") - 1
    fn = rcc if method == "rcc" else aim
    mine = {k: v for k, v in options.items() if k in METHOD_OPTIONS[method]}
    sx, sy, details = fn(seg, x, y, len(edges) - 1, fov_nm, warnings=warnings, **mine)
    centres = (edges[:-1] + edges[1:] - 1) / 2 + 1  # 1-based frame of each segment's centre
    dx, dy = interpolate(centres, sx, n_frames), interpolate(centres, sy, n_frames)
    drift = Drift(dx - dx[0], dy - dy[0], method, int(segment_frames), centres, sx - dx[0], sy - dy[0], warnings, details)
    for w in warnings:
        log.warning(w)
    log.info("drift (%s): %d segments of %d frames, largest %.1f nm, at the end (%.1f, %.1f) nm", method,
             len(centres), segment_frames, drift.summary()["max_abs_nm"], drift.dx_nm[-1], drift.dy_nm[-1])  # fmt: skip
    return drift


def interpolate(centres: np.ndarray, values: np.ndarray, n_frames: int) -> np.ndarray:
    """The per-frame trajectory (frames 1..n) through the segment estimates: a cubic smoothing spline whose
    smoothing is chosen by generalised cross-validation (scipy's ``make_smoothing_spline``; segments must be
    short against the time over which the drift turns) from five segments on, an interpolating spline (quadratic or linear) below; beyond the outer segment centres, the
    line through the two outermost."""
    from scipy.interpolate import make_interp_spline, make_smoothing_spline

    frames = np.arange(1, n_frames + 1, dtype=np.float64)
    if len(centres) == 1:
        return np.full(n_frames, float(values[0]))
    # in units of the segment spacing: scipy's search for the cross-validated smoothing is scale-dependent,
    # and picks almost none on raw frame numbers and too much on [0, 1] (measured on noisy lines, sinusoids
    # and random walks of 6-300 segments); a drift that turns within ~4 segments is smoothed away
    span = float(np.median(np.diff(centres)))
    t = (centres - centres[0]) / span
    if len(centres) >= 5:
        fitted = make_smoothing_spline(t, values)
    else:
        fitted = make_interp_spline(t, values, k=min(2, len(centres) - 1))

    def spline(f):
        return fitted((np.asarray(f, dtype=np.float64) - centres[0]) / span)

    out = spline(np.clip(frames, centres[0], centres[-1]))
    # beyond the outer centres: the line through the spline at the two outermost centres (the spline's own
    # slope at its ends is the least constrained part of it)
    c = spline(centres[[0, 1, -2, -1]])
    first, last = (c[1] - c[0]) / (centres[1] - centres[0]), (c[3] - c[2]) / (centres[-1] - centres[-2])
    out = np.where(frames < centres[0], out + first * (frames - centres[0]), out)
    out = np.where(frames > centres[-1], out + last * (frames - centres[-1]), out)
    return out


def _grid(fov_nm, bin_nm, margin_nm):
    """Bin size and grid shape covering the field plus a margin on every side."""
    extent = max(fov_nm) + 2 * margin_nm
    bin_nm = max(float(bin_nm), extent / MAX_GRID_SIDE)
    shape = tuple(int(np.ceil((s + 2 * margin_nm) / bin_nm)) for s in fov_nm)
    return bin_nm, shape


def _log_parabola_peak(c: np.ndarray, i: int, j: int) -> tuple[float, float]:
    """Sub-bin offset (row, col) of the peak at (i, j) of a positive surface: a Gaussian through the three
    values on each axis (log-parabola); 0 on an axis where the peak sits on the edge."""
    def axis(a, b, e):  # values at -1, 0, +1
        a, b, e = np.log(max(a, 1e-30)), np.log(max(b, 1e-30)), np.log(max(e, 1e-30))
        den = a - 2 * b + e
        return float(np.clip(0.5 * (a - e) / den, -0.5, 0.5)) if den < 0 else 0.0

    di = axis(c[i - 1, j], c[i, j], c[i + 1, j]) if 0 < i < c.shape[0] - 1 else 0.0
    dj = axis(c[i, j - 1], c[i, j], c[i, j + 1]) if 0 < j < c.shape[1] - 1 else 0.0
    return di, dj


def rcc(seg, x, y, n_segments, fov_nm, *, bin_nm: float, max_shift_nm: float, max_residual_nm: float, warnings=None):
    """Redundant cross-correlation: per-segment drift (x, y in nm, first segment 0) and details."""
    warnings = [] if warnings is None else warnings
    bin_nm, shape = _grid(fov_nm, bin_nm, 0.0)
    images = []
    for s in range(n_segments):
        keep = seg == s
        h, _, _ = np.histogram2d(y[keep], x[keep], bins=shape, range=[[0, shape[0] * bin_nm], [0, shape[1] * bin_nm]])
        images.append(np.fft.rfft2(gaussian_filter(h, 1.0, mode="constant")))
    r = int(np.ceil(max_shift_nm / bin_nm))
    pairs, shifts = [], []
    for i in range(n_segments):
        for j in range(i + 1, n_segments):
            # c(s) = Σ_x A_i(x) A_j(x + s): its peak is the displacement of segment j relative to segment i
            c = np.fft.irfft2(np.conj(images[i]) * images[j], s=shape)
            c = np.fft.fftshift(c)
            ci, cj = shape[0] // 2, shape[1] // 2
            win = c[max(ci - r, 0): ci + r + 1, max(cj - r, 0): cj + r + 1]
            pi, pj = np.unravel_index(np.argmax(win), win.shape)
            di, dj = _log_parabola_peak(win, pi, pj)
            pairs.append((i, j))
            shifts.append(((pj + dj + max(cj - r, 0) - cj) * bin_nm, (pi + di + max(ci - r, 0) - ci) * bin_nm))
    p, dropped = solve_shifts(np.asarray(pairs), np.asarray(shifts), n_segments, max_residual_nm, warnings)
    return p[:, 0], p[:, 1], {"pairs": int(len(pairs)), "pairs_dropped": dropped, "bin_nm": bin_nm}


def solve_shifts(pairs: np.ndarray, shifts: np.ndarray, n: int, max_residual_nm: float, warnings=None):
    """Segment positions ``(n, 2)`` (the first at 0) from pairwise shifts ``p[j] − p[i]`` by least squares,
    dropping the pair with the largest residual above ``max_residual_nm`` and solving again while that leaves
    every segment connected (RCC's outlier rejection). Returns the positions and the pairs dropped."""
    warnings = [] if warnings is None else warnings
    keep = np.ones(len(pairs), bool)
    while True:
        p = _solve_pairs(pairs[keep], shifts[keep], n)
        residual = np.hypot(*(p[pairs[:, 1]] - p[pairs[:, 0]] - shifts).T)
        residual[~keep] = -1
        worst = int(np.argmax(residual))
        if residual[worst] <= max_residual_nm:
            break
        trial = keep.copy()
        trial[worst] = False
        if not _connected(pairs[trial], n):
            warnings.append(f"rcc: pair residual {residual[worst]:.1f} nm > {max_residual_nm:g} nm kept (dropping it would split the segments)")
            break
        keep = trial
    dropped = int((~keep).sum())
    if dropped:
        log.info("rcc: %d of %d pairs dropped as outliers (residual > %g nm)", dropped, len(pairs), max_residual_nm)
    return p, dropped


def _solve_pairs(pairs, shifts, n):
    """Least-squares positions p (n, 2) with p[j] − p[i] = shift for each pair and p[0] = 0."""
    a = np.zeros((len(pairs) + 1, n))
    a[np.arange(len(pairs)), pairs[:, 1]] = 1
    a[np.arange(len(pairs)), pairs[:, 0]] = -1
    a[-1, 0] = 1
    b = np.vstack([shifts, [[0.0, 0.0]]])
    return np.linalg.lstsq(a, b, rcond=None)[0]


def _connected(pairs, n) -> bool:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if n == 1:
        return True
    if len(pairs) == 0:
        return False
    g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(g, directed=False)[0] == 1


class _SoftReference:
    """Localisations splatted as Gaussians (σ = one bin, cut at two) on a grid: the soft count of
    coincidences. The grid's margin keeps every lookup inside it."""

    def __init__(self, fov_nm, bin_nm, margin_nm):
        self.bin_nm, shape = _grid(fov_nm, bin_nm, margin_nm)
        self.margin = margin_nm
        self.grid = np.zeros(shape, dtype=np.float32)
        self.k = np.arange(-2, 3)

    def _bins(self, x, y):
        """Fractional bin coordinates (row, col), bin centres at integers."""
        return (y + self.margin) / self.bin_nm - 0.5, (x + self.margin) / self.bin_nm - 0.5

    def add(self, x, y, sign: float = 1.0):
        fi, fj = self._bins(x, y)
        h, w = self.grid.shape
        i0 = np.clip(np.rint(fi).astype(np.int64), 2, h - 3)
        j0 = np.clip(np.rint(fj).astype(np.int64), 2, w - 3)
        wi = np.exp(-0.5 * (i0[:, None] + self.k - fi[:, None]) ** 2)  # (N, 5)
        wj = np.exp(-0.5 * (j0[:, None] + self.k - fj[:, None]) ** 2)
        lin = (i0 * w + j0)[:, None, None] + (self.k * w)[None, :, None] + self.k[None, None, :]
        np.add.at(self.grid.ravel(), lin.ravel(), (sign * wi[:, :, None] * wj[:, None, :]).astype(np.float32).ravel())

    def counts(self, x, y, centre_nm, radius_bins: int):
        """Soft count of the target (x − s, y − s) on the reference for shifts s on the bin grid within
        ``radius_bins`` of ``centre_nm`` (rounded to the grid): ``(2r+1, 2r+1)`` (rows: y shifts, columns: x
        shifts) and the rounded centre (nm)."""
        cx, cy = np.rint(np.asarray(centre_nm) / self.bin_nm) * self.bin_nm
        fi, fj = self._bins(x - cx, y - cy)
        h, w = self.grid.shape
        r = radius_bins
        i0 = np.clip(np.rint(fi).astype(np.int64), r, h - r - 1)
        j0 = np.clip(np.rint(fj).astype(np.int64), r, w - r - 1)
        off = np.arange(-r, r + 1)
        # shift s moves the target by −s: the bin looked up is the target's bin − offset
        shifts = (off[:, None] * w + off[None, :]).ravel()
        out = np.zeros(len(shifts))
        flat = self.grid.ravel()
        lin = i0 * w + j0
        for start in range(0, len(lin), 4096):  # (targets × shifts) gathers in blocks
            out += flat[lin[start:start + 4096, None] - shifts[None, :]].sum(axis=0, dtype=np.float64)
        return out.reshape(len(off), len(off)), (cx, cy)


def aim(seg, x, y, n_segments, fov_nm, *, intersection_nm: float, max_step_nm: float, passes: int = 2, warnings=None):
    """Intersection maximisation: per-segment drift (x, y in nm, first segment 0) and details."""
    warnings = [] if warnings is None else warnings
    order = np.argsort(seg, kind="stable")
    seg, x, y = seg[order], x[order], y[order]
    bounds = np.searchsorted(seg, np.arange(n_segments + 1))
    margin = max_step_nm * 4 + 1000.0
    ref = _SoftReference(fov_nm, intersection_nm / 2, margin)
    radius = int(np.ceil(max_step_nm / ref.bin_nm))
    sx, sy = np.zeros(n_segments), np.zeros(n_segments)
    lo, hi = bounds[0], bounds[1]
    ref.add(x[lo:hi], y[lo:hi])
    flat = 0

    def register(s, centre):
        nonlocal flat
        lo, hi = bounds[s], bounds[s + 1]
        if hi == lo:
            return centre
        c, (cx, cy) = ref.counts(x[lo:hi], y[lo:hi], centre, radius)
        i, j = np.unravel_index(np.argmax(c), c.shape)
        if c[i, j] <= 0:
            flat += 1
            return centre
        di, dj = _log_parabola_peak(c, i, j)
        return (cx + (j - radius + dj) * ref.bin_nm, cy + (i - radius + di) * ref.bin_nm)

    for s in range(1, n_segments):  # first pass: the reference grows segment by segment
        sx[s], sy[s] = register(s, (sx[s - 1], sy[s - 1]))
        lo, hi = bounds[s], bounds[s + 1]
        ref.add(x[lo:hi] - sx[s], y[lo:hi] - sy[s])
    for _ in range(passes - 1):  # later passes: every segment against all the others
        for s in range(n_segments):
            lo, hi = bounds[s], bounds[s + 1]
            ref.add(x[lo:hi] - sx[s], y[lo:hi] - sy[s], -1.0)
            sx[s], sy[s] = register(s, (sx[s], sy[s]))
            ref.add(x[lo:hi] - sx[s], y[lo:hi] - sy[s])
        sx, sy = sx - sx[0], sy - sy[0]
    if flat:
        warnings.append(f"aim: {flat} segment registrations found no coincidences within {max_step_nm:g} nm")
    return sx, sy, {"intersection_nm": intersection_nm, "max_step_nm": max_step_nm, "passes": passes}
