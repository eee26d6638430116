"""Entry script of rule reconstruct: super-resolved image, localisations and previews of one acquisition."""

import torch

from dstorm.logs import setup_logging
from dstorm.reconstruction import reconstruct


def main(smk) -> None:
    setup_logging(smk.log[0])
    torch.set_num_threads(smk.threads)
    options = {k: smk.params.options[k] for k in ("threshold", "neighbourhood", "batch_size", "precision", "render_pixel_nm", "render_sigma_nm")}
    reconstruct(
        smk.input.frames,
        smk.input.model,
        dict(smk.output.items()),
        pixel_size_nm=smk.params.pixel_size_nm,
        title=f"{smk.wildcards.dataset}/{smk.wildcards.acquisition}",
        **options,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (provided by Snakemake)
