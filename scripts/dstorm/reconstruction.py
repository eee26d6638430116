"""The reconstruct stage: stream an acquisition through a trained model into a super-resolved image,
a localisation table and images for people.

Memory is bounded whatever the stack length: frames are read per batch (one batch prefetched by a thread
while the model computes the current one), the super-resolved and widefield sums and the rendered histogram
are fixed-size accumulators, and localisations are appended to the CSV batch by batch.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter, shift as shift_image

from dstorm.architectures import architecture
from dstorm.defaults import schema_defaults
from dstorm.drift import estimate_drift, write_drift
from dstorm.io import atomic_output, write_stack
from dstorm.localization import find_peaks
from dstorm.loctable import HEADER, export, open_writers
from dstorm.model.modelfile import load_model
from dstorm.model.precision import choose_precision
from dstorm.photometry import fit_photons, mortensen_precision, precision_function
from dstorm.render import drift_figure, render_localizations, save_preview, write_image
from dstorm.stack import StackError, TiffStack

__all__ = [
    "reconstruct", "save_predictions", "outputs_in", "OUTPUT_FILES", "DEFAULT_THRESHOLD", "auto_batch_size",
    "inference_model", "check_frame_size", "image_segments", "choose_compile", "compile_for",
]  # fmt: skip

log = logging.getLogger(__name__)

#: The outputs of :func:`reconstruct`: key -> file name (the rule's output names and files). The
#: drift-corrected table and images are the default ones; the uncorrected ones are kept beside them.
OUTPUT_FILES = {
    "super_resolution": "super_resolution.tif", "super_resolution_png": "super_resolution.png",
    "super_resolution_uncorrected": "super_resolution_uncorrected.tif",
    "widefield": "widefield.tif", "widefield_png": "widefield.png", "localizations": "localizations.csv",
    "localizations_uncorrected": "localizations_uncorrected.csv", "drift": "drift.csv", "drift_png": "drift.png",
    "rendered": "rendered.tif", "rendered_png": "rendered.png", "summary": "reconstruction.json",
}  # fmt: skip
#: The config's reconstruction defaults (the schema owns them).
DEFAULTS = schema_defaults("reconstruction")
#: At most this many partial super-resolved images (consecutive frame segments) are accumulated for the
#: drift correction of the image, within IMAGE_SEGMENT_BYTES.
MAX_IMAGE_SEGMENTS = 64
IMAGE_SEGMENT_BYTES = 512 * 2**20
#: ZeroCostDL4Mic's threshold (× weighting factor), used for model files without a calibrated one.
DEFAULT_THRESHOLD = 0.1


def auto_batch_size(height: int, width: int, upsampling_factor: int, device: torch.device, requested="auto",
                    architecture_name: str = "deepstorm") -> int:  # fmt: skip
    """``requested`` frames per batch, or for ``"auto"`` (or None) as many as fit: the architecture's
    inference memory per frame (``Architecture.inference_bytes``: for the faithful network about 6 float32
    maps of 32 channels at the high resolution) in half the free GPU memory, or in 256 MiB on a CPU (larger
    batches gain nothing there)."""
    if requested not in (None, "auto"):
        return int(requested)
    per_frame = architecture(architecture_name).inference_bytes(height, width, upsampling_factor)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = free // 2
    else:
        budget = 256 * 2**20
    return int(max(1, min(256, budget // per_frame)))


def outputs_in(folder) -> dict[str, str]:
    """The ``outputs`` argument of :func:`reconstruct` for writing every output into ``folder``."""
    return {key: str(Path(folder) / name) for key, name in OUTPUT_FILES.items()}


def resolve_device(device: str = "auto") -> torch.device:
    """``auto``: the GPU where one is visible, the CPU otherwise; any other value as torch names it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def inference_model(model_path: str, device: torch.device, precision="auto"):
    """The model file loaded for inference with the fastest safe settings on ``device``: BatchNorm folded
    into the convolutions, channels-last, and ``precision`` resolved by
    :func:`dstorm.model.precision.choose_precision` (logged with its reason)."""
    resolved, why = choose_precision(precision, device)
    model = load_model(model_path, device, precision=resolved, fold_bn=True)
    log.info("inference: architecture %s, precision %s (%s), BatchNorm folded, channels-last, %d threads",
             model.info["architecture"], resolved, why, torch.get_num_threads())  # fmt: skip
    return model


def choose_compile(requested, device: torch.device, precision: str, architecture_name: str,
                   heatmap_mpx: float) -> tuple[bool, str]:
    """``(compile, reason)`` for ``reconstruction.compile`` = ``requested`` (auto, true, false): auto compiles
    on a CPU at bf16-mixed where the acquisition's heatmaps (``heatmap_mpx`` megapixels in all) reach the
    architecture's ``compile_after_mpx`` (where compiling pays: in fp32 it gained nothing measurable; on
    GPUs it is unmeasured). The reason is for the log."""
    if requested is True or requested is False:
        return requested, "as configured"
    if requested != "auto":
        raise ValueError(f"reconstruction.compile {requested!r}; expected auto, true or false")
    if device.type != "cpu" or precision != "bf16-mixed":
        return False, f"auto: compiled only on a CPU at bf16-mixed (here {device.type}, {precision})"
    need = architecture(architecture_name).compile_after_mpx
    if heatmap_mpx < need:
        return False, f"auto: {heatmap_mpx:.3g} Mpx of heatmap, under the {need:g} Mpx where compiling pays"
    return True, f"auto: bf16-mixed on a CPU, {heatmap_mpx:.3g} Mpx of heatmap (≥ {need:g})"


def compile_for(model, requested, batch: int, h: int, w: int, n_frames: int) -> bool:
    """Compile ``model`` for batches of ``batch`` frames of ``h × w`` where :func:`choose_compile` says so;
    where compiling fails, the model stays uncompiled. Logs what was done and why; returns whether it is
    compiled."""
    u = model.upsampling_factor
    wanted, why = choose_compile(requested, model.device, model.precision, model.info["architecture"],
                                 n_frames * h * w * u * u / 1e6)  # fmt: skip
    if not wanted:
        log.info("inference: not compiled (%s)", why)
        return False
    t0 = time.perf_counter()
    try:
        model.compile(batch, h, w)
    except Exception as exc:  # noqa: BLE001 - any failure of the compiler: run uncompiled
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        log.warning("inference: compiling failed (%s: %s); running uncompiled", type(exc).__name__, reason)
        return False
    log.info("inference: compiled in %.1f s (%s)", time.perf_counter() - t0, why)
    return True


def check_frame_size(stack_path, h: int, w: int, model) -> None:
    """A clear error where the model's architecture cannot take frames of ``h × w`` camera pixels."""
    arch = architecture(model.info["architecture"])
    u = model.upsampling_factor
    m = arch.frame_multiple(u)
    if h % m or w % m:
        raise StackError(
            f"{stack_path}: frames of {h}×{w} px do not fit the model: at U = {u} the sides become "
            f"{h * u}×{w * u}, which must be divisible by {arch.side_divisor} (crop the frames, train with "
            "another U, or use training.architecture: fast, which takes any size)"
        )


def _threshold(model, threshold) -> float:
    if threshold in (None, "auto"):
        calibration = model.info.get("calibration") or {}
        if "threshold" in calibration:
            return float(calibration["threshold"])
        log.warning(
            "the model file has no calibrated threshold; using %g × weighting factor (ZeroCostDL4Mic's default)",
            DEFAULT_THRESHOLD,
        )
        return DEFAULT_THRESHOLD
    return float(threshold)


def image_segments(n_frames: int, image_shape: tuple[int, int]) -> np.ndarray:
    """0-based frame edges of the partial super-resolved images kept for the drift correction of the image:
    as many equal segments as :data:`MAX_IMAGE_SEGMENTS` and :data:`IMAGE_SEGMENT_BYTES` (float64 images)
    allow, at most one per frame."""
    per_image = 8 * int(np.prod(image_shape))
    k = int(max(1, min(MAX_IMAGE_SEGMENTS, n_frames, IMAGE_SEGMENT_BYTES // per_image)))
    return np.unique(np.linspace(0, n_frames, k + 1).round().astype(np.int64))


def reconstruct(
    stack_path: str,
    model_path: str,
    outputs: dict[str, str],
    *,
    pixel_size_nm: float,
    threshold=DEFAULTS["threshold"],
    neighbourhood: int = DEFAULTS["neighbourhood"],
    batch_size=DEFAULTS["batch_size"],
    precision=DEFAULTS["precision"],
    compile=DEFAULTS["compile"],
    render_pixel_nm: float = DEFAULTS["render_pixel_nm"],
    render_sigma_nm: float = DEFAULTS["render_sigma_nm"],
    drift: dict | None = None,
    camera: dict | None = None,
    psf_sigma_nm: float | None = None,
    device: str = "auto",
    title: str = "",
) -> dict:
    """Reconstruct ``stack_path`` with the model file ``model_path``.

    ``outputs`` maps each key of :data:`OUTPUT_FILES` to a path (:func:`outputs_in` for one folder).
    ``drift``: the config's ``reconstruction.drift`` (its defaults where missing). ``camera`` (a resolved camera section) and
    ``psf_sigma_nm`` give each localisation its photons, background and precision
    (:mod:`dstorm.photometry`: the network's precision, the model's calibrated curve at Mortensen's bound); without them those columns are NaN. Returns the summary (also written as
    JSON). Nothing is written if the input is bad.
    """
    t_start = time.perf_counter()
    drift = dict(drift or {})
    method = drift.pop("method", DEFAULTS["drift"]["method"])
    device = resolve_device(device)
    model = inference_model(model_path, device, precision)
    u = model.upsampling_factor
    weight = float(model.info["weighting_factor"])
    warnings = []  # kept in reconstruction.json; the summary's status and the report show them
    model_px = float(model.info["pixel_size_nm"])
    if abs(model_px - pixel_size_nm) > 0.01 * pixel_size_nm:
        warnings.append(f"model pixel {model_px:.4g} nm ≠ {pixel_size_nm:.4g} nm")
        log.warning(
            "%s was trained for %.4g nm camera pixels, the acquisition has %.4g nm: expect worse results",
            model_path, model_px, pixel_size_nm,
        )  # fmt: skip
    if camera is None or psf_sigma_nm is None:
        log.info("no camera or PSF given: the photons, background and precision columns are empty")
    with TiffStack(stack_path) as stack:
        stack.check_pixel_size(pixel_size_nm)
        h, w, n = stack.height, stack.width, stack.n_frames
        check_frame_size(stack_path, h, w, model)
        rel_threshold = _threshold(model, threshold)
        batch = auto_batch_size(h, w, u, device, requested=batch_size, architecture_name=model.info["architecture"])
        log.info(
            "%s: %d frames of %d×%d px (%s) -> %d×%d at %.4g nm; model %s (U=%d) on %s, batch %d, "
            "threshold %.3g × %g",
            stack_path, n, h, w, stack.dtype, h * u, w * u, pixel_size_nm / u, model_path, u, device, batch,
            rel_threshold, weight,
        )  # fmt: skip
        compiled = compile_for(model, compile, batch, h, w, n)
        photometry = None
        if camera is not None and psf_sigma_nm is not None:
            cal = model.info.get("calibration") or {}
            if not cal.get("precision_curve"):
                log.info("the model file measured no precision: uncertainty [nm] is Mortensen's bound itself")
            photometry = (camera, float(psf_sigma_nm), precision_function(cal))
        summary, located = _run(stack, model, outputs, batch, rel_threshold * weight, neighbourhood, pixel_size_nm, title,
                                photometry)  # fmt: skip
    fov_nm = (h * pixel_size_nm, w * pixel_size_nm)
    frame, x_nm, y_nm, segment_images, image_edges = located
    estimate = estimate_drift(method, frame, x_nm, y_nm, n_frames=n, fov_nm=fov_nm, **drift)
    warnings += estimate.warnings
    write_drift(outputs["drift"], estimate.dx_nm, estimate.dy_nm)
    drift_figure(outputs["drift_png"], estimate, title=title)
    _write_corrected(outputs, estimate)
    hr_nm = pixel_size_nm / u
    sr_image = _corrected_image(segment_images, image_edges, estimate, hr_nm)
    write_image(outputs["super_resolution"], sr_image, hr_nm)
    save_preview(outputs["super_resolution_png"], sr_image, hr_nm, title=f"{title} Deep-STORM".strip())
    dx, dy = estimate.at(frame)
    spots = render_localizations(x_nm - dx, y_nm - dy, fov_nm=fov_nm, pixel_size_nm=render_pixel_nm, sigma_nm=render_sigma_nm)
    write_image(outputs["rendered"], spots, render_pixel_nm)
    save_preview(outputs["rendered_png"], spots, render_pixel_nm, title=f"{title} localisations".strip(), cmap="inferno")
    summary.update(
        acquisition=str(stack_path), model=str(model_path), upsampling_factor=u, threshold=rel_threshold,
        heatmap_sigma_px=float(model.info.get("heatmap_sigma_px", 1.0)), batch_size=batch, device=str(device),
        architecture=model.info["architecture"], precision=model.precision, compiled=compiled, drift=estimate.summary(),
        render_pixel_nm=render_pixel_nm, render_sigma_nm=render_sigma_nm,
        photometry=None if photometry is None else {"camera": camera["model"], "psf_sigma_nm": photometry[1],
                                                    "precision_curve": (model.info.get("calibration") or {}).get("precision_curve")},
        seconds=time.perf_counter() - t_start, model_pixel_size_nm=model_px, warnings=warnings,
    )  # fmt: skip
    with atomic_output(outputs["summary"]) as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def _write_corrected(outputs, drift) -> None:
    """The drift-corrected table, streamed from the uncorrected one chunk by chunk."""
    x, y, frame = HEADER.index("x [nm]"), HEADER.index("y [nm]"), HEADER.index("frame")

    def correct(table):
        dx, dy = drift.at(table[:, frame])
        table[:, x] -= dx
        table[:, y] -= dy

    export(outputs["localizations_uncorrected"], {"thunderstorm": outputs["localizations"]}, {}, transform=correct)


def _corrected_image(images, edges, drift, hr_nm) -> np.ndarray:
    """The sum of the partial super-resolved images, each shifted back by its segment's mean drift (linear
    interpolation, so the image stays non-negative)."""
    out = np.zeros(images[0].shape)
    for k, image in enumerate(images):
        dx = float(drift.dx_nm[edges[k]: edges[k + 1]].mean())
        dy = float(drift.dy_nm[edges[k]: edges[k + 1]].mean())
        if abs(dx) < 1e-6 * hr_nm and abs(dy) < 1e-6 * hr_nm:
            out += image
        else:
            out += shift_image(image, (-dy / hr_nm, -dx / hr_nm), order=1, mode="constant")
    return out


def _run(stack, model, outputs, batch, threshold_abs, neighbourhood, pixel_size_nm, title, photometry):
    """The streaming pass: the uncorrected table, the widefield image, the uncorrected super-resolved image
    and its partial images per segment. Returns the summary and (frame, x_nm, y_nm, images, edges)."""
    u, h, w, n = model.upsampling_factor, stack.height, stack.width, stack.n_frames
    edges = image_segments(n, (h * u, w * u))
    images = [np.zeros((h * u, w * u)) for _ in range(len(edges) - 1)]
    widefield = np.zeros((h, w), dtype=np.float64)
    frames_all, x_all, y_all = [], [], []
    n_loc, done = 0, 0
    t0 = last_log = time.perf_counter()
    bar = None
    if os.isatty(2):
        from tqdm import tqdm

        bar = tqdm(total=n, unit="frame", file=sys.stderr)
    pinned = model.device.type == "cuda"
    weight = float(model.info["weighting_factor"])
    if photometry is not None:
        camera, sigma_nm, precision_of = photometry
        sigma_px = sigma_nm / pixel_size_nm
    columns = {c: i for i, c in enumerate(HEADER)}

    def table_of(first_id, frames, start, index, x_px, y_px, peak, mass):  # on the writer thread
        rows = np.full((len(x_px), len(HEADER)), np.nan)
        rows[:, columns["id"]] = np.arange(first_id, first_id + len(x_px))
        rows[:, columns["frame"]] = index + start + 1
        rows[:, columns["x [nm]"]] = x_px * pixel_size_nm
        rows[:, columns["y [nm]"]] = y_px * pixel_size_nm
        rows[:, columns["peak [a.u.]"]] = peak
        rows[:, columns["confidence [a.u.]"]] = mass / weight
        if photometry is not None:
            photons, background = fit_photons(frames, index, x_px, y_px, camera=camera, sigma_px=sigma_px)
            rows[:, columns["sigma [nm]"]] = sigma_nm
            rows[:, columns["intensity [photon]"]] = photons
            rows[:, columns["offset [photon]"]] = background
            bound = mortensen_precision(photons, background, sigma_nm=sigma_nm, pixel_nm=pixel_size_nm,
                                        camera_model=camera["model"])  # fmt: skip
            rows[:, columns["uncertainty [nm]"]] = precision_of(bound)
        return rows

    def write(*args):
        csv.write(table_of(*args))

    with ThreadPoolExecutor(max_workers=1) as reader, ThreadPoolExecutor(max_workers=1) as writer, \
            open_writers({"thunderstorm": outputs["localizations_uncorrected"]}, {}) as (csv,):  # fmt: skip
        written = None
        for start, frames in prefetched(stack.batches(batch), reader):
            widefield += frames.sum(axis=0, dtype=np.float64)
            batch_frames = torch.from_numpy(frames)
            if pinned:  # page-locked memory: the copy to the GPU runs without blocking the host
                batch_frames = batch_frames.pin_memory().to(model.device, non_blocking=True)
            pred = model.predict(batch_frames)
            stop = start + len(frames)
            for k in range(np.searchsorted(edges, start, side="right") - 1, len(images)):
                lo, hi = max(start, edges[k]), min(stop, edges[k + 1])
                if lo >= hi:
                    break
                images[k] += pred[lo - start: hi - start].sum(dim=0, dtype=torch.float64).cpu().numpy()
            peaks = find_peaks(pred, upsampling_factor=u, threshold=threshold_abs, neighbourhood=neighbourhood)
            index = peaks.index.cpu().numpy()
            x_px, y_px = peaks.x_px.cpu().numpy(), peaks.y_px.cpu().numpy()
            frames_all.append(index + start + 1)
            x_all.append(x_px * pixel_size_nm)
            y_all.append(y_px * pixel_size_nm)
            if written is not None:  # one batch in flight at most: the order of the rows is kept
                written.result()
            written = writer.submit(write, n_loc + 1, frames, start, index, x_px, y_px, peaks.peak.cpu().numpy(), peaks.mass.cpu().numpy())
            n_loc += len(x_px)
            done = stop
            now = time.perf_counter()
            if bar is not None:
                bar.update(len(frames))
            if done == n or now - last_log > 5:
                last_log = now
                log.info("frames %d/%d (%.1f frames/s), %d localisations", done, n, done / (now - t0), n_loc)
        if written is not None:
            written.result()
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - t0
    hr_nm = pixel_size_nm / u
    write_image(outputs["super_resolution_uncorrected"], sum(images), hr_nm)
    write_image(outputs["widefield"], widefield / n, pixel_size_nm)
    save_preview(outputs["widefield_png"], widefield / n, pixel_size_nm, title=f"{title} widefield (mean)".strip(), cmap="gray")
    log.info("%d frames in %.1f s (%.1f frames/s), %d localisations", n, elapsed, n / elapsed, n_loc)
    summary = {
        "frames": n, "frame_size_px": [h, w], "localizations": n_loc, "frames_per_second": n / elapsed,
        "pixel_size_nm": pixel_size_nm, "super_resolution_pixel_nm": hr_nm, "image_segments": len(images),
    }  # fmt: skip
    cat = np.concatenate
    located = (cat(frames_all) if frames_all else np.zeros(0, np.int64), cat(x_all) if x_all else np.zeros(0),
               cat(y_all) if y_all else np.zeros(0), images, edges)  # fmt: skip
    return summary, located


def prefetched(iterator, pool: ThreadPoolExecutor):
    """Yield the items of ``iterator``, reading the next one in ``pool`` while the caller works on this one."""
    pending = pool.submit(next, iterator, None)
    while (item := pending.result()) is not None:
        pending = pool.submit(next, iterator, None)
        yield item


def save_predictions(
    stack_path: str, model_path: str, out_path: str, *, pixel_size_nm: float, batch_size="auto", precision="auto",
    device: str = "auto",
) -> None:
    """Every frame's prediction (ReLU applied) as a float32 ImageJ TIFF at the high-resolution pixel size,
    written frame by frame as the batches are predicted."""
    device = resolve_device(device)
    model = inference_model(model_path, device, precision)
    u = model.upsampling_factor
    with TiffStack(stack_path) as stack, ThreadPoolExecutor(max_workers=1) as reader:
        h, w, n = stack.height, stack.width, stack.n_frames
        check_frame_size(stack_path, h, w, model)
        batch = auto_batch_size(h, w, u, device, requested=batch_size, architecture_name=model.info["architecture"])

        def frames():
            for start, raw in prefetched(stack.batches(batch), reader):
                yield from model.predict(torch.from_numpy(raw)).cpu().numpy()
                log.info("predictions: frames %d/%d", start + len(raw), n)

        write_stack(out_path, frames(), shape=(n, h * u, w * u), dtype=np.float32, pixel_size_nm=pixel_size_nm / u)


