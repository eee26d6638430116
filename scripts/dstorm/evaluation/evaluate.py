"""The evaluate stage: score each reconstruction, draw its figures, and gather the run into tables.

Reads only the files earlier stages wrote (localizations.csv, super_resolution.tif, widefield.tif,
reconstruction.json, ground-truth CSVs, history.csv, Snakemake benchmark TSVs) and imports no torch
(:mod:`dstorm.evaluation.cross` reconstructs with another model first).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import tifffile

from dstorm.defaults import schema_defaults
from dstorm.evaluation import figures
from dstorm.drift import read_drift, residual_rms
from dstorm.evaluation.frc import FRC_THRESHOLD, localization_frc
from dstorm.evaluation.nena import nena
from dstorm.errors import InputError
from dstorm.evaluation.metrics import (
    BRIGHTNESS_METRICS,
    IMAGE_METRICS,
    LOCALIZATION_METRICS,
    brightness_metrics,
    image_metrics,
    localization_metrics,
    matched_errors,
)
from dstorm.io import atomic_output, jsonable, read_localizations
from dstorm.render import render_localizations

__all__ = [
    "DEFAULT_OPTIONS",
    "evaluate_acquisition",
    "benchmark_table",
    "training_curves",
    "summary_table",
]

log = logging.getLogger(__name__)

#: The evaluation options (the config's ``evaluation`` section) and their defaults, from the config schema
#: (their one owner); ``benchmark`` is the workflow's, not a scoring option.
DEFAULT_OPTIONS = {k: v for k, v in schema_defaults("evaluation").items() if k != "benchmark"}

#: Columns of the summary table, in order (the metric columns follow the metric modules).
SUMMARY_INFO = ("dataset", "acquisition", "kind", "density_per_um2", "gt_density_per_um2", "model", "model_density")
SUMMARY_RUN = ("frames", "frames_per_second", "frc_resolution_nm", "frc_pixel_nm", "nena_nm", "drift_method",
               "drift_residual_nm")  # fmt: skip


def _options(options: dict | None) -> dict:
    out = dict(DEFAULT_OPTIONS)
    out.update(options or {})
    unknown = set(out) - set(DEFAULT_OPTIONS)
    if unknown:
        raise ValueError(f"unknown evaluation option(s) {sorted(unknown)}; known: {sorted(DEFAULT_OPTIONS)}")
    return out


def _write_json(path, data: dict) -> None:
    with atomic_output(path) as tmp:
        Path(tmp).write_text(json.dumps(jsonable(data), indent=2, sort_keys=True, allow_nan=False) + "\n")


def _coords(table: pd.DataFrame):
    return table["frame"].to_numpy(), table[["x [nm]", "y [nm]"]].to_numpy(dtype=np.float64)


def ground_truth_image(gt: pd.DataFrame, recon: dict) -> np.ndarray:
    """The ground truth drawn as the network was taught to draw it: every emitter of every frame as a spike
    on the super-resolved grid, blurred by the training heatmap's Gaussian (σ in high-resolution pixels)."""
    h, w = recon["frame_size_px"]
    px = float(recon["pixel_size_nm"])
    hr_px = float(recon["super_resolution_pixel_nm"])
    return render_localizations(
        gt["x [nm]"].to_numpy(), gt["y [nm]"].to_numpy(), fov_nm=(h * px, w * px), pixel_size_nm=hr_px,
        sigma_nm=float(recon.get("heatmap_sigma_px", 1.0)) * hr_px,
    )


#: Columns of matches.csv.
MATCH_COLUMNS = ["frame", "x_gt [nm]", "y_gt [nm]", "x [nm]", "y [nm]", "dx [nm]", "dy [nm]"]


def _matched_pairs(loc: pd.DataFrame, gt: pd.DataFrame, matches, err: np.ndarray) -> pd.DataFrame:
    """The matched pairs, one per row (frame, ground-truth and localised positions, their difference ``err``
    from :func:`matched_errors`, nm), in frame order."""
    (_, pxy), (gf, gxy) = _coords(loc), _coords(gt)
    order = np.lexsort((matches.gt_index, gf[matches.gt_index]))
    pi, gi = matches.pred_index[order], matches.gt_index[order]
    columns = (gf[gi], gxy[gi, 0], gxy[gi, 1], pxy[pi, 0], pxy[pi, 1], err[order, 0], err[order, 1])
    return pd.DataFrame(dict(zip(MATCH_COLUMNS, columns)))


def evaluate_acquisition(
    *,
    localizations: str,
    super_resolution: str,
    widefield: str,
    reconstruction: str,
    ground_truth: str | None,
    outputs: dict[str, str],
    drift: str | None = None,
    drift_truth: str | None = None,
    options: dict | None = None,
    seed: tuple[int, tuple[int, ...]] = (0, ()),
    info: dict | None = None,
    title: str = "",
) -> dict:
    """Score one reconstruction and write ``outputs``: ``metrics`` (JSON, required) and, where given,
    ``frc`` (CSV of the curve), ``frc_png``, ``comparison_png``, ``matches`` (CSV of the matched pairs) and
    ``localizations_png`` (localisation QC with the error histograms). Without ``ground_truth`` the
    localisation and image metrics are null, the comparison has no ground-truth panel and the matches
    table is only its header.

    ``seed`` is ``(entropy, spawn_key)`` of the random split of time blocks for the FRC. ``drift`` (the
    reconstruction's drift.csv) and ``drift_truth`` (a simulation's) give the residual drift: the RMS over
    frames of their difference, its mean removed (:func:`dstorm.drift.residual_rms`).
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
        warnings=list(recon.get("warnings", [])),
    )  # fmt: skip
    gt_image = gt = None
    pairs = pd.DataFrame(columns=MATCH_COLUMNS)
    if ground_truth:
        gt = read_localizations(ground_truth)
        if len(gt) and gt["frame"].max() > recon["frames"]:
            raise InputError(
                f"{ground_truth}: ground truth has frame {int(gt['frame'].max())}, the acquisition only "
                f"{recon['frames']} frames (is it the table of another acquisition?)"
            )
        area_um2 = h * w * px * px / 1e6
        result["gt_density_per_um2"] = len(gt) / recon["frames"] / area_um2
        metrics, matches = localization_metrics(
            *_coords(loc), *_coords(gt), tolerance_nm=opts["tolerance_nm"], alpha_per_nm=opts["efficiency_alpha_per_nm"]
        )
        result.update(metrics)
        photons = gt["intensity [photon]"].to_numpy(dtype=np.float64) if "intensity [photon]" in gt else None
        errors = matched_errors(matches, _coords(loc)[1], _coords(gt)[1])
        result.update(brightness_metrics(matches, errors, photons, opts["brightness_split_photons"]))
        result["brightness_split_photons"] = opts["brightness_split_photons"]
        pairs = _matched_pairs(loc, gt, matches, errors)
        gt_image = ground_truth_image(gt, recon)
        result.update(image_metrics(sr, gt_image, blur_px=opts["correlation_blur_nm"] / hr_px))
        log.info(
            "%d localisations vs %d ground-truth emitters: Jaccard %.3f, recall %.3f, precision %.3f, "
            "RMSE %.1f nm, efficiency %.1f %%, image r %.3f",
            len(loc), len(gt), result["jaccard"], result["recall"], result["precision"], result["rmse_lat_nm"],
            result["efficiency_pct"], result["pearson_r"],
        )  # fmt: skip
        log.info(
            "below %g photons: %d emitter-frames, recall %.3f, RMSE %.1f nm; at or above: %d, recall %.3f, RMSE %.1f nm",
            opts["brightness_split_photons"], result["n_ground_truth_dim"], result["recall_dim"], result["rmse_lat_nm_dim"],
            result["n_ground_truth_bright"], result["recall_bright"], result["rmse_lat_nm_bright"],
        )  # fmt: skip
    else:
        result["gt_density_per_um2"] = float("nan")
        result.update({k: float("nan") for k in LOCALIZATION_METRICS + BRIGHTNESS_METRICS + IMAGE_METRICS})
        result.update(n_localizations=len(loc))

    frc_px = float(opts["frc_pixel_nm"] or hr_px)
    frc = localization_frc(
        loc["frame"].to_numpy(), loc["x [nm]"].to_numpy(), loc["y [nm]"].to_numpy(), fov_nm=(h * px, w * px),
        pixel_size_nm=frc_px, n_blocks=opts["frc_blocks"],
        rng=np.random.default_rng(np.random.SeedSequence(seed[0], spawn_key=seed[1])),
        smooth_rings=opts["frc_smooth_rings"],
    )  # fmt: skip
    result.update(frc_resolution_nm=frc.resolution_nm, frc_pixel_nm=frc_px)
    result.update(nena(loc["frame"].to_numpy(), loc["x [nm]"].to_numpy(), loc["y [nm]"].to_numpy()))
    log.info("NeNA precision %.1f ± %.1f nm (%d next-frame neighbours)", result["nena_nm"], result["nena_se_nm"],
             result["nena_pairs"])  # fmt: skip
    result.update(drift_method=(recon.get("drift") or {}).get("method"), drift_residual_nm=float("nan"),
                  drift_true_max_nm=float("nan"))  # fmt: skip
    if drift and drift_truth:
        truth = read_drift(drift_truth)
        result.update(drift_residual_nm=residual_rms(read_drift(drift), truth),
                      drift_true_max_nm=float(np.max(np.hypot(*truth))) if len(truth[0]) else 0.0)  # fmt: skip
        log.info("drift: true up to %.1f nm, residual after correction %.2f nm RMS", result["drift_true_max_nm"],
                 result["drift_residual_nm"])  # fmt: skip
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
    if "matches" in outputs:
        with atomic_output(outputs["matches"]) as tmp, open(tmp, "w", newline="") as fh:
            fh.write(",".join(f'"{c}"' for c in pairs.columns) + "\n")
            pairs.to_csv(fh, index=False, header=False, float_format="%.3f", lineterminator="\n")
    if "localizations_png" in outputs:
        errors = pairs[["dx [nm]", "dy [nm]"]].to_numpy(dtype=np.float64) if gt is not None else None
        figures.localizations_figure(
            outputs["localizations_png"], loc["frame"].to_numpy(),
            loc["confidence [a.u.]"].to_numpy() if "confidence [a.u.]" in loc else None, int(recon["frames"]),
            gt_frames=None if gt is None else gt["frame"].to_numpy(), errors=errors, metrics=result,
            tolerance_nm=opts["tolerance_nm"], title=title,
        )  # fmt: skip
    _write_json(outputs["metrics"], result)
    return result


def _read_metrics(path) -> dict:
    data = json.loads(Path(path).read_text())
    return {k: (float("nan") if v is None else v) for k, v in data.items()}


def _ok_status(metrics: dict) -> str:
    """``ok``, or ``ok (warning; warning)`` for a result to read with care (e.g. a model trained at another
    pixel size)."""
    warnings = metrics.get("warnings") or []
    return f"ok ({'; '.join(warnings)})" if warnings else "ok"


def _model_label(density, model) -> str:
    """'trained at 2/µm²', 'trained at the estimated density' (a model of .../density_estimated/), or the
    model file's name (a model given by path)."""
    if isinstance(density, (int, float)) and math.isfinite(density):
        return f"trained at {density:g}/µm²"
    path = Path(str(model))
    return "trained at the estimated density" if path.parent.name == "density_estimated" else path.name


def benchmark_table(metrics_files: list[str], out_csv: str, out_png: str, *, title: str = "") -> pd.DataFrame:
    """The density benchmark of one dataset: one row per (acquisition, model) from their metrics files,
    written as CSV and drawn as the paper's figure (metric against ground-truth density, a curve per model)."""
    rows = [_read_metrics(p) for p in metrics_files]
    table = pd.DataFrame(rows)
    table["density_per_um2"] = table["gt_density_per_um2"]
    columns = ["acquisition", "model_density", "model", "density_per_um2", *LOCALIZATION_METRICS, *IMAGE_METRICS, "frc_resolution_nm"]
    table = table.reindex(columns=columns).sort_values(["model_density", "density_per_um2"], na_position="last")
    table["model"] = [_model_label(d, m) for d, m in zip(table["model_density"], table["model"])]
    with atomic_output(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
    figures.benchmark_figure(out_png, table, title=title)
    return table


def training_curves(histories: dict[str, str], out_png: str, *, title: str = "") -> None:
    """One figure with the loss curves of a dataset's models (``histories``: label → history.csv)."""
    figures.training_figure(out_png, {label: pd.read_csv(path) for label, path in histories.items()}, title=title)


def _benchmark_seconds(path) -> float:
    """Wall time from a Snakemake benchmark TSV (the first row's ``s``); NaN if the stage did not finish."""
    try:
        return float(pd.read_csv(path, sep="\t")["s"].iloc[0])
    except (FileNotFoundError, KeyError, IndexError, pd.errors.EmptyDataError):
        return float("nan")


def _status(entry: dict) -> str:
    """``ok``, or which stage failed: the first stage (in order) whose output is missing, with its log."""
    for stage in entry.get("stages", []):
        if not Path(stage["output"]).exists():
            return f"failed: {stage['stage']} (see {stage['log']})"
    return "ok" if Path(entry["metrics"]).exists() else "failed: evaluate"


def summary_table(entries: list[dict], out_csv: str) -> pd.DataFrame:
    """``results/summary.csv``: one row per acquisition. Each entry gives the row's labels (dataset,
    acquisition, kind, density_per_um2, model_density), ``metrics`` (its metrics.json) and ``stages`` (in
    order, each ``{stage, output, log, benchmark}``; the seconds in the stage's Snakemake benchmark TSV become
    ``<stage>_s``). An acquisition whose metrics are missing (a stage failed in a ``--keep-going`` run) keeps
    its row: ``status`` names the failed stage and its log, metrics are empty."""
    rows = []
    stages: list[str] = []
    for entry in entries:
        row = {k: entry.get(k) for k in SUMMARY_INFO}
        row["status"] = _status(entry)
        metrics = _read_metrics(entry["metrics"]) if row["status"] == "ok" else {}
        if metrics:
            row["status"] = _ok_status(metrics)
        row.update({k: metrics.get(k) for k in ("model", "gt_density_per_um2", *SUMMARY_RUN) if k in metrics})
        row.update({k: metrics.get(k, float("nan")) for k in LOCALIZATION_METRICS + BRIGHTNESS_METRICS + IMAGE_METRICS})
        for stage in entry.get("stages", []):
            row[f"{stage['stage']}_s"] = _benchmark_seconds(stage["benchmark"])
            stages += [stage["stage"]] if stage["stage"] not in stages else []
        rows.append(row)
    columns = [*SUMMARY_INFO, "status", *SUMMARY_RUN, *LOCALIZATION_METRICS, *BRIGHTNESS_METRICS, *IMAGE_METRICS,
               *(f"{s}_s" for s in stages)]  # fmt: skip
    table = pd.DataFrame(rows).reindex(columns=columns)
    with atomic_output(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g", lineterminator="\n")
    failed = table[~table["status"].str.startswith("ok")]
    for _, row in failed.iterrows():
        log.warning("%s/%s: %s", row["dataset"], row["acquisition"], row["status"])
    return table
