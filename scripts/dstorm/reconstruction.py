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
from scipy.ndimage import gaussian_filter

from dstorm.io import atomic_output, write_stack
from dstorm.localization import find_peaks
from dstorm.architectures import architecture
from dstorm.model.modelfile import load_model
from dstorm.model.precision import choose_precision
from dstorm.render import render_localizations, save_preview, write_image
from dstorm.stack import StackError, TiffStack

__all__ = [
    "reconstruct", "save_predictions", "outputs_in", "OUTPUT_FILES", "LOCALIZATION_HEADER", "DEFAULT_THRESHOLD",
    "auto_batch_size", "inference_model", "check_frame_size",
]  # fmt: skip

log = logging.getLogger(__name__)

#: ThunderSTORM-style columns of the localisation table.
LOCALIZATION_HEADER = ["id", "frame", "x [nm]", "y [nm]", "intensity [a.u.]", "confidence [a.u.]"]
#: The format of one row of the localisation table.
LOCALIZATION_ROW = "%d,%d,%.3f,%.3f,%.5g,%.5g\n"
#: The outputs of :func:`reconstruct`: key -> file name (the rule's output names and files).
OUTPUT_FILES = {
    "super_resolution": "super_resolution.tif", "super_resolution_png": "super_resolution.png",
    "widefield": "widefield.tif", "widefield_png": "widefield.png", "localizations": "localizations.csv",
    "rendered": "rendered.tif", "rendered_png": "rendered.png", "summary": "reconstruction.json",
}  # fmt: skip
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


def reconstruct(
    stack_path: str,
    model_path: str,
    outputs: dict[str, str],
    *,
    pixel_size_nm: float,
    threshold="auto",
    neighbourhood: int = 3,
    batch_size="auto",
    precision="auto",
    render_pixel_nm: float = 10.0,
    render_sigma_nm: float = 20.0,
    device: str = "auto",
    title: str = "",
) -> dict:
    """Reconstruct ``stack_path`` with the model file ``model_path``.

    ``outputs`` maps each key of :data:`OUTPUT_FILES` to a path (:func:`outputs_in` for one folder).
    Returns the summary (also written as JSON). Nothing is written if the input is bad.
    """
    t_start = time.perf_counter()
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
        summary = _run(stack, model, outputs, batch, rel_threshold * weight, neighbourhood, pixel_size_nm,
                       render_pixel_nm, render_sigma_nm, title)  # fmt: skip
    summary.update(
        acquisition=str(stack_path), model=str(model_path), upsampling_factor=u, threshold=rel_threshold,
        heatmap_sigma_px=float(model.info.get("heatmap_sigma_px", 1.0)), batch_size=batch, device=str(device),
        architecture=model.info["architecture"], precision=model.precision,
        seconds=time.perf_counter() - t_start, model_pixel_size_nm=model_px, warnings=warnings,
    )  # fmt: skip
    with atomic_output(outputs["summary"]) as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def _run(stack, model, outputs, batch, threshold_abs, neighbourhood, pixel_size_nm, render_pixel_nm, render_sigma_nm, title):
    u, h, w, n = model.upsampling_factor, stack.height, stack.width, stack.n_frames
    fov_nm = (h * pixel_size_nm, w * pixel_size_nm)
    sr = torch.zeros(h * u, w * u, dtype=torch.float64, device=model.device)
    widefield = np.zeros((h, w), dtype=np.float64)
    rendered = render_localizations([], [], fov_nm=fov_nm, pixel_size_nm=render_pixel_nm, sigma_nm=0)  # histogram, blurred at the end
    n_loc, done = 0, 0
    t0 = last_log = time.perf_counter()
    bar = None
    if os.isatty(2):
        from tqdm import tqdm

        bar = tqdm(total=n, unit="frame", file=sys.stderr)
    pinned = model.device.type == "cuda"

    def write(table, x_nm, y_nm):  # on the writer thread: the network goes on with the next batch meanwhile
        # one %-format of the whole batch: the bytes np.savetxt writes, in half its time
        csv_file.write((LOCALIZATION_ROW * len(table)) % tuple(table.ravel().tolist()))
        return render_localizations(x_nm, y_nm, fov_nm=fov_nm, pixel_size_nm=render_pixel_nm, sigma_nm=0)

    with ThreadPoolExecutor(max_workers=1) as reader, ThreadPoolExecutor(max_workers=1) as writer, \
            atomic_output(outputs["localizations"]) as csv_tmp, open(csv_tmp, "w", newline="") as csv_file:  # fmt: skip
        csv_file.write(",".join(f'"{c}"' for c in LOCALIZATION_HEADER) + "\n")
        written = None
        for start, frames in prefetched(stack.batches(batch), reader):
            widefield += frames.sum(axis=0, dtype=np.float64)
            batch_frames = torch.from_numpy(frames)
            if pinned:  # page-locked memory: the copy to the GPU runs without blocking the host
                batch_frames = batch_frames.pin_memory().to(model.device, non_blocking=True)
            pred = model.predict(batch_frames)
            sr += pred.sum(dim=0, dtype=torch.float64)
            peaks = find_peaks(pred, upsampling_factor=u, threshold=threshold_abs, neighbourhood=neighbourhood)
            x_nm = (peaks.x_px * pixel_size_nm).cpu().numpy()
            y_nm = (peaks.y_px * pixel_size_nm).cpu().numpy()
            frame = peaks.index.cpu().numpy() + start + 1
            table = np.column_stack([
                np.arange(n_loc + 1, n_loc + len(x_nm) + 1), frame, x_nm, y_nm,
                peaks.peak.cpu().numpy(), (peaks.mass / float(model.info["weighting_factor"])).cpu().numpy(),
            ])  # fmt: skip
            if written is not None:  # one batch in flight at most: the order of the rows is kept
                rendered += written.result()
            written = writer.submit(write, table, x_nm, y_nm)
            n_loc += len(x_nm)
            done = start + len(frames)
            now = time.perf_counter()
            if bar is not None:
                bar.update(len(frames))
            if done == n or now - last_log > 5:
                last_log = now
                log.info("frames %d/%d (%.1f frames/s), %d localisations", done, n, done / (now - t0), n_loc)
        if written is not None:
            rendered += written.result()
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - t0
    sr_image = sr.cpu().numpy()
    hr_nm = pixel_size_nm / u
    write_image(outputs["super_resolution"], sr_image, hr_nm)
    save_preview(outputs["super_resolution_png"], sr_image, hr_nm, title=f"{title} Deep-STORM".strip())
    write_image(outputs["widefield"], widefield / n, pixel_size_nm)
    save_preview(outputs["widefield_png"], widefield / n, pixel_size_nm, title=f"{title} widefield (mean)".strip(), cmap="gray")
    spots = gaussian_filter(rendered, render_sigma_nm / render_pixel_nm, mode="constant") if render_sigma_nm > 0 else rendered
    write_image(outputs["rendered"], spots, render_pixel_nm)
    save_preview(outputs["rendered_png"], spots, render_pixel_nm, title=f"{title} localisations".strip(), cmap="inferno")
    log.info("%d frames in %.1f s (%.1f frames/s), %d localisations", n, elapsed, n / elapsed, n_loc)
    return {
        "frames": n, "frame_size_px": [h, w], "localizations": n_loc, "frames_per_second": n / elapsed,
        "pixel_size_nm": pixel_size_nm, "super_resolution_pixel_nm": hr_nm, "render_pixel_nm": render_pixel_nm,
        "render_sigma_nm": render_sigma_nm,
    }  # fmt: skip


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


