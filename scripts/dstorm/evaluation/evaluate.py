"""The evaluate stage: score each reconstruction, draw its figures, and gather the run into tables.

Reads only the files earlier stages wrote (localizations.csv, super_resolution.tif, widefield.tif,
reconstruction.json, ground-truth CSVs, history.csv, Snakemake benchmark TSVs); imports no torch, except
:func:`cross_evaluate`, which reconstructs with another model first.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile
from scipy.ndimage import gaussian_filter

from dstorm.evaluation import figures
from dstorm.evaluation.frc import FRC_THRESHOLD, localization_frc
from dstorm.evaluation.metrics import (
    IMAGE_METRICS,
    LOCALIZATION_METRICS,
    image_metrics,
    localization_metrics,
    matched_errors,
)
from dstorm.io import atomic_output, read_localizations
from dstorm.render import render_localizations

__all__ = [
    "DEFAULT_OPTIONS",
    "evaluate_acquisition",
    "localization_errors",
    "cross_evaluate",
    "benchmark_table",
    "training_curves",
    "summary_table",
]

log = logging.getLogger(__name__)

#: The evaluation options (the config's ``evaluation`` section) and their defaults.
DEFAULT_OPTIONS = {
    "tolerance_nm": 250.0,
    "efficiency_alpha_per_nm": 1.0,
    "correlation_blur_nm": 20.0,
    "frc_blocks": 50,
    "frc_pixel_nm": None,  # None: the super-resolution pixel
    "frc_smooth_rings": 3,
}

#: Columns of the summary table, in order (the metric columns follow the metric modules).
SUMMARY_INFO = ("dataset", "acquisition", "kind", "density_per_um2", "gt_density_per_um2", "model", "model_density")
SUMMARY_RUN = ("frames", "frames_per_second", "frc_resolution_nm", "frc_pixel_nm")


def _options(options: dict | None) -> dict:
    out = dict(DEFAULT_OPTIONS)
    out.update(options or {})
    unknown = set(out) - set(DEFAULT_OPTIONS)
    if unknown:
        raise ValueError(f"unknown evaluation option(s) {sorted(unknown)}; known: {sorted(DEFAULT_OPTIONS)}")
    return out


def _jsonable(value):
    """JSON has no NaN: write it as null (and read null back as NaN in pandas)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _write_json(path, data: dict) -> None:
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(_jsonable(data), indent=2, sort_keys=True, allow_nan=False) + "\n")


def _coords(table: pd.DataFrame):
    return table["frame"].to_numpy(), table[["x [nm]", "y [nm]"]].to_numpy(dtype=np.float64)


def ground_truth_image(gt: pd.DataFrame, recon: dict) -> np.ndarray:
    """The ground truth drawn as the network was taught to draw it: every emitter of every frame as a spike
    on the super-resolved grid, blurred by the training heatmap's Gaussian (σ in high-resolution pixels)."""
    h, w = recon["frame_size_px"]
    px = float(recon["pixel_size_nm"])
    spikes = render_localizations(
        gt["x [nm]"].to_numpy(), gt["y [nm]"].to_numpy(), fov_nm=(h * px, w * px),
        pixel_size_nm=float(recon["super_resolution_pixel_nm"]), sigma_nm=0,
    )  # fmt: skip
    return gaussian_filter(spikes, float(recon.get("heatmap_sigma_px", 1.0)), mode="constant")


def evaluate_acquisition(
    *,
    localizations: str,
    super_resolution: str,
    widefield: str,
    reconstruction: str,
    ground_truth: str | None,
    outputs: dict[str, str],
    options: dict | None = None,
    seed: tuple[int, tuple[int, ...]] = (0, ()),
    info: dict | None = None,
    title: str = "",
) -> dict:
    """Score one reconstruction and write ``outputs``: ``metrics`` (JSON, required) and, where given,
    ``frc`` (CSV of the curve), ``frc_png`` and ``comparison_png``. Without ``ground_truth`` the
    localisation and image metrics are null and the comparison has no ground-truth panel.

    ``seed`` is ``(entropy, spawn_key)`` of the random split of time blocks for the FRC.
    """
    opts = _options(options)
    recon = json.loads(Path(reconstruction).read_text())
    loc = read_localizations(localizations)
    sr = tifffile.imread(super_resolution).astype(np.float64)
    h, w = recon["frame_size_px"]
    px = float(recon["pixel_size_nm"])
    hr_px = float(recon["super_resolution_pixel_nm"])
    result: dict = dict(info or {})
    result.update(
        frames=recon["frames"], localizations=len(loc), frames_per_second=recon.get("frames_per_second"),
        reconstruct_seconds=recon.get("seconds"), upsampling_factor=recon["upsampling_factor"],
        threshold=recon.get("threshold"), model=recon.get("model"), tolerance_nm=opts["tolerance_nm"],
    )  # fmt: skip
    gt_image = None
    if ground_truth:
        gt = read_localizations(ground_truth)
        if len(gt) and gt["frame"].max() > recon["frames"]:
            raise ValueError(
                f"{ground_truth}: ground truth has frame {int(gt['frame'].max())}, the acquisition only "
                f"{recon['frames']} frames (is it the table of another acquisition?)"
            )
        area_um2 = h * w * px * px / 1e6
        result["gt_density_per_um2"] = len(gt) / recon["frames"] / area_um2
        metrics, _ = localization_metrics(
            *_coords(loc), *_coords(gt), tolerance_nm=opts["tolerance_nm"], alpha_per_nm=opts["efficiency_alpha_per_nm"]
        )
        result.update(metrics)
        gt_image = ground_truth_image(gt, recon)
        result.update(image_metrics(sr, gt_image, blur_px=opts["correlation_blur_nm"] / hr_px))
        log.info(
            "%d localisations vs %d ground-truth emitters: Jaccard %.3f, recall %.3f, precision %.3f, "
            "RMSE %.1f nm, efficiency %.1f %%, image r %.3f",
            len(loc), len(gt), result["jaccard"], result["recall"], result["precision"], result["rmse_lat_nm"],
            result["efficiency_pct"], result["pearson_r"],
        )  # fmt: skip
    else:
        result["gt_density_per_um2"] = float("nan")
        result.update({k: float("nan") for k in LOCALIZATION_METRICS + IMAGE_METRICS})
        result.update(n_localizations=len(loc))

    frc_px = float(opts["frc_pixel_nm"] or hr_px)
    frc = localization_frc(
        loc["frame"].to_numpy(), loc["x [nm]"].to_numpy(), loc["y [nm]"].to_numpy(), fov_nm=(h * px, w * px),
        pixel_size_nm=frc_px, n_blocks=opts["frc_blocks"],
        rng=np.random.default_rng(np.random.SeedSequence(seed[0], spawn_key=seed[1])),
        smooth_rings=opts["frc_smooth_rings"],
    )  # fmt: skip
    result.update(frc_resolution_nm=frc.resolution_nm, frc_pixel_nm=frc_px)
    if np.isfinite(frc.resolution_nm):
        log.info("FRC resolution %.1f nm (%d localisations, %d time blocks, %.4g nm bins)",
                 frc.resolution_nm, len(loc), opts["frc_blocks"], frc_px)  # fmt: skip
    elif len(frc.frc_smoothed) > 1 and frc.frc_smoothed[1] >= FRC_THRESHOLD:
        log.warning("FRC stays above 1/7 up to the finest frequency of %.4g nm bins: the resolution is better "
                    "than %.4g nm (set evaluation.frc_pixel_nm smaller to measure it); reported as empty",
                    frc_px, 2 * frc_px)  # fmt: skip
    else:
        log.warning("FRC below 1/7 already at the lowest frequency: too few localisations to measure a resolution")
    if "frc" in outputs:
        table = pd.DataFrame({"q [1/nm]": frc.q_per_nm, "frc": frc.frc, "frc_smoothed": frc.frc_smoothed})
        with atomic_output(outputs["frc"]) as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
    if "frc_png" in outputs:
        figures.frc_figure(outputs["frc_png"], frc.q_per_nm, frc.frc, frc.frc_smoothed, frc.resolution_nm,
                           FRC_THRESHOLD, title=f"{title} FRC".strip())  # fmt: skip
    if "comparison_png" in outputs:
        panels = [("ground truth", gt_image, hr_px)] if gt_image is not None else []
        panels += [("Deep-STORM", sr, hr_px), ("widefield (mean)", tifffile.imread(widefield).astype(np.float64), px)]
        figures.comparison_figure(outputs["comparison_png"], panels, title=title)
    _write_json(outputs["metrics"], result)
    return result


def localization_errors(
    localizations: str, ground_truth: str, matches_csv: str, errors_png: str, *, options: dict | None = None, title: str = ""
) -> dict:
    """The matched pairs as a table (``matches_csv``: frame, ground-truth and localised positions and their
    difference, in nm) and the histogram of the errors (``errors_png``); returns the metrics."""
    opts = _options(options)
    loc, gt = read_localizations(localizations), read_localizations(ground_truth)
    (pf, pxy), (gf, gxy) = _coords(loc), _coords(gt)
    metrics, m = localization_metrics(pf, pxy, gf, gxy, tolerance_nm=opts["tolerance_nm"], alpha_per_nm=opts["efficiency_alpha_per_nm"])
    err = matched_errors(m, pxy, gxy)
    order = np.lexsort((m.gt_index, gf[m.gt_index]))
    table = pd.DataFrame({
        "frame": gf[m.gt_index][order],
        "x_gt [nm]": gxy[m.gt_index, 0][order], "y_gt [nm]": gxy[m.gt_index, 1][order],
        "x [nm]": pxy[m.pred_index, 0][order], "y [nm]": pxy[m.pred_index, 1][order],
        "dx [nm]": err[order, 0], "dy [nm]": err[order, 1],
    })  # fmt: skip
    with atomic_output(matches_csv) as tmp, open(tmp, "w", newline="") as fh:
        fh.write(",".join(f'"{c}"' for c in table.columns) + "\n")
        table.to_csv(fh, index=False, header=False, float_format="%.3f", lineterminator="\n")
    figures.error_figure(errors_png, err[:, 0], err[:, 1], metrics, opts["tolerance_nm"], title=title)
    return metrics


def cross_evaluate(
    *,
    frames: str,
    model: str,
    ground_truth: str,
    metrics: str,
    pixel_size_nm: float,
    reconstruction: dict | None = None,
    options: dict | None = None,
    seed: tuple[int, tuple[int, ...]] = (0, ()),
    info: dict | None = None,
) -> dict:
    """Reconstruct ``frames`` with ``model`` in a temporary folder and score it like
    :func:`evaluate_acquisition`, keeping only the metrics: the benchmark's other (acquisition, model)
    pairs."""
    from dstorm.reconstruction import reconstruct

    recon_opts = {k: v for k, v in (reconstruction or {}).items() if k in ("threshold", "neighbourhood", "batch_size")}
    with tempfile.TemporaryDirectory(prefix="dstorm-cross-") as tmp:
        names = ("super_resolution", "super_resolution_png", "widefield", "widefield_png", "localizations",
                 "rendered", "rendered_png", "summary")  # fmt: skip
        suffix = {"localizations": ".csv", "summary": ".json"}
        outs = {k: str(Path(tmp) / (k + suffix.get(k, ".png" if k.endswith("_png") else ".tif"))) for k in names}
        reconstruct(frames, model, outs, pixel_size_nm=pixel_size_nm, **recon_opts)
        return evaluate_acquisition(
            localizations=outs["localizations"], super_resolution=outs["super_resolution"],
            widefield=outs["widefield"], reconstruction=outs["summary"], ground_truth=ground_truth,
            outputs={"metrics": metrics}, options=options, seed=seed, info=info,
        )  # fmt: skip


def _read_metrics(path) -> dict:
    data = json.loads(Path(path).read_text())
    return {k: (float("nan") if v is None else v) for k, v in data.items()}


def benchmark_table(metrics_files: list[str], out_csv: str, out_png: str, *, title: str = "") -> pd.DataFrame:
    """The density benchmark of one dataset: one row per (acquisition, model) from their metrics files,
    written as CSV and drawn as the paper's figure (metric against ground-truth density, a curve per model)."""
    rows = [_read_metrics(p) for p in metrics_files]
    table = pd.DataFrame(rows)
    table["density_per_um2"] = table["gt_density_per_um2"]
    columns = ["acquisition", "model_density", "model", "density_per_um2", *LOCALIZATION_METRICS, *IMAGE_METRICS, "frc_resolution_nm"]
    table = table.reindex(columns=columns).sort_values(["model_density", "density_per_um2"], na_position="last")
    table["model"] = [
        f"trained at {d:g}/µm²" if isinstance(d, (int, float)) and math.isfinite(d) else Path(str(m)).name
        for d, m in zip(table["model_density"], table["model"])
    ]
    with atomic_output(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
    figures.benchmark_figure(out_png, table, title=title)
    return table


def training_curves(histories: dict[str, str], out_png: str, *, title: str = "") -> None:
    """One figure with the loss curves of a dataset's models (``histories``: label → history.csv)."""
    figures.training_figure(out_png, {label: pd.read_csv(path) for label, path in histories.items()}, title=title)


def _benchmark_seconds(path) -> float:
    """Wall time from a Snakemake benchmark TSV (the first row's ``s``)."""
    return float(pd.read_csv(path, sep="\t")["s"].iloc[0])


def summary_table(entries: list[dict], out_csv: str) -> pd.DataFrame:
    """``results/summary.csv``: one row per acquisition. Each entry gives the row's labels (dataset,
    acquisition, kind, density_per_um2, model_density), ``metrics`` (its metrics.json) and ``benchmarks``
    (stage name → Snakemake benchmark TSV; the stage's seconds become ``<stage>_s``)."""
    rows = []
    stages: list[str] = []
    for entry in entries:
        row = {k: entry.get(k) for k in SUMMARY_INFO}
        metrics = _read_metrics(entry["metrics"])
        row.update({k: metrics.get(k) for k in ("model", "gt_density_per_um2", *SUMMARY_RUN)})
        row.update({k: metrics.get(k, float("nan")) for k in LOCALIZATION_METRICS + IMAGE_METRICS})
        for stage, path in entry.get("benchmarks", {}).items():
            row[f"{stage}_s"] = _benchmark_seconds(path)
            stages += [stage] if stage not in stages else []
        rows.append(row)
    columns = [*SUMMARY_INFO, *SUMMARY_RUN, *LOCALIZATION_METRICS, *IMAGE_METRICS, *(f"{s}_s" for s in stages)]
    table = pd.DataFrame(rows).reindex(columns=columns)
    with atomic_output(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
    return table
