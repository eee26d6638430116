"""Test stacks from an independent simulator: Picasso's (jungmannlab/picasso, pip package picassosr).

Runs inside a virtual environment of its own (scripts/benchmarks/independent.py makes it); imports nothing
of this project, so that the stacks share none of our simulator's assumptions:

- kinetics: ``picasso.simulate.paintgen`` (continuous-time bright and dark times per binding site, partial
  first and last frames, Poisson photons per frame, a photon budget);
- image: ``picasso.simulate.convertMovie`` (every photon placed by sampling a Gaussian PSF, then binned:
  not our integrated-Gaussian erf model), then ``noisy_p`` (Poisson background);
- camera: Picasso counts photons (an ideal camera). For EMCCD and sCMOS data the photon image then goes
  through a camera recipe written here from the EPFL SMLM challenge's description (Sage et al., Nat.
  Methods 2019): EMCCD: Poisson(QE·photons + spurious charge) electrons, a Gamma(n, EM gain) multiplication,
  Gaussian read noise, ADU = electrons / (e⁻ per ADU) + offset; sCMOS: Poisson electrons plus Gaussian read
  noise. Not our camera code.

Usage (Picasso's venv): python picasso_stack.py OUT.tif OUT.csv JSON-PARAMETERS

Ground truth (ThunderSTORM CSV): one row per (binding site, frame) with photons > 0: frame from 1, x/y in nm
with the pixel convention of ThunderSTORM (pixel j covers [j, j+1) px), intensity [photon]. Picasso's
``convertMovie`` flips the image vertically (``np.flipud`` after the histogram), so a site at Picasso's y
lies at row ``size − 1 − floor(y)``: the truth's y is ``size − y``.
"""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import tifffile
from picasso import simulate

CAMERAS = {  # EPFL 2016 challenge's EMCCD; a current sCMOS
    "emccd": {"qe": 0.9, "spurious": 0.002, "em_gain": 300.0, "read_e": 74.4, "e_per_adu": 45.0, "offset": 100.0},
    "scmos": {"qe": 0.72, "read_e": 1.6, "e_per_adu": 0.46, "offset": 100.0},
    "ideal": {},
}


def camera(photons: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Photon counts (Picasso's movie) -> ADU, uint16."""
    if kind == "ideal":
        return np.clip(photons, 0, 65535).astype(np.uint16)
    c = CAMERAS[kind]
    # Picasso's counts are already Poisson photons; thinning by the QE keeps them Poisson
    electrons = rng.binomial(photons.astype(np.int64), c["qe"]).astype(np.float64)
    if kind == "emccd":
        electrons = electrons + rng.poisson(c["spurious"], photons.shape)
        amplified = np.where(electrons > 0, rng.gamma(np.maximum(electrons, 1e-9), c["em_gain"]), 0.0)
        electrons = amplified
    adu = (electrons + rng.normal(0.0, c["read_e"], photons.shape)) / c["e_per_adu"] + c["offset"]
    return np.clip(np.round(adu), 0, 65535).astype(np.uint16)


def _on_time_one_frame_events(photonsinframe, tempFrame, onFrames, photons, eventsum, i, time):
    """Picasso's ``_distribute_event_photons`` (0.11.3, kept in :data:`_PICASSO_RULE`), except that an event
    within one frame gets the photons of its on-time instead of those up to the frame's end.

    Picasso's own docstring says the first and last frames of an event receive photons "proportional to the
    fraction of the frame during which the emitter is active"; its code gives an event that begins and ends
    within one frame the first frame's share, from the event's start to the frame's end, so such an event
    emits after it has ended (at a mean on-time of one frame about 37 % of events, and their photons are
    then 2.3 times their on-time's in all). This rule is what that docstring, and issue 14's definition of an
    emitter-frame's photons (the on-rate × the on-time within the exposure), describe."""
    if onFrames == 1:
        photonsinframe[1 + tempFrame] = int(np.random.poisson((eventsum[i] - eventsum[i - 1]) / time * photons))
    else:
        _PICASSO_RULE(photonsinframe, tempFrame, onFrames, photons, eventsum, i, time)


_PICASSO_RULE = simulate._distribute_event_photons


def main(out_tif: str, out_csv: str, params: dict) -> None:
    rule = params.get("one_frame_events", "picasso")
    if rule == "on-time":
        simulate._distribute_event_photons = _on_time_one_frame_events
    elif rule != "picasso":
        raise SystemExit(f"one_frame_events: expected 'picasso' or 'on-time', got {rule!r}")
    seed = int(params["seed"])
    np.random.seed(seed)  # Picasso draws from NumPy's global generator
    rng = np.random.default_rng(seed + 1)
    size, frames, pixel = int(params["size"]), int(params["frames"]), float(params["pixel_size_nm"])
    # binding sites: uniform over the whole field, as the truth's density counts them (photons that fall
    # outside the image are lost, as on a camera)
    n_sites = int(params["sites"])
    xy = rng.uniform(0.0, size, (n_sites, 2))
    structures = np.zeros((5, n_sites))
    structures[0], structures[1] = xy[:, 0], xy[:, 1]
    # Picasso's photon rate is per ms of exposure (paintgen multiplies it by the frame time)
    itime = float(params["itime_ms"])
    rate, rate_std = params["photons_per_frame"] / itime, params["photons_per_frame_std"] / itime
    photondist = np.zeros((n_sites, frames), dtype=int)
    for i in range(n_sites):
        photondist[i], _, _ = simulate.distphotons(
            structures, itime, frames, params["taud_ms"], params["taub_ms"], rate, rate_std, params["photonbudget"],
        )  # fmt: skip
    movie = np.zeros((frames, size, size))
    for f in range(frames):
        movie[f] = simulate.convertMovie(f, photondist, structures, size, frames, params["psf_px"], rate,
                                         params["background"], 0, False, [], [])  # fmt: skip
    movie = simulate.noisy_p(movie, params["background"])
    stack = camera(movie, params["camera"], rng)
    tifffile.imwrite(out_tif, stack, imagej=True, resolution=(1000 / pixel, 1000 / pixel), metadata={"axes": "TYX", "unit": "um"})
    site, frame = np.nonzero(photondist)
    order = np.lexsort((site, frame))
    with open(out_csv, "w", newline="") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_NONNUMERIC)
        writer.writerow(["frame", "x [nm]", "y [nm]", "intensity [photon]"])
        for s, f in zip(site[order], frame[order]):
            writer.writerow([int(f) + 1, xy[s, 0] * pixel, (size - xy[s, 1]) * pixel, float(photondist[s, f])])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
