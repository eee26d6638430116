"""Entry script of rule reconstruct: super-resolved image, localisations (drift-corrected, with photons and
precision), drift trajectory and previews of one acquisition."""

import json

import torch

from dstorm.config import apply_estimates
from dstorm.logs import setup_logging
from dstorm.photometry import dataset_photometry
from dstorm.reconstruction import reconstruct


def main(smk) -> None:
    setup_logging(smk.log[0])
    torch.set_num_threads(smk.threads)
    dataset = smk.params.dataset
    if smk.input.conditions:  # conditions estimated from the acquisitions, under the hand-typed keys
        dataset = apply_estimates(dataset, json.loads(open(smk.input.conditions[0], encoding="utf-8").read()))
    camera, sigma_nm = dataset_photometry(dataset)
    keys = ("threshold", "neighbourhood", "batch_size", "precision", "compile", "render_pixel_nm", "render_sigma_nm", "drift")
    reconstruct(
        smk.input.frames,
        smk.input.model,
        dict(smk.output.items()),
        pixel_size_nm=smk.params.pixel_size_nm,
        camera=camera,
        psf_sigma_nm=sigma_nm,
        title=f"{smk.wildcards.dataset}/{smk.wildcards.acquisition}",
        **{k: smk.params.options[k] for k in keys},
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (provided by Snakemake)
