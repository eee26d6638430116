"""Entry script of rule save_predictions: every frame's prediction as a float32 ImageJ TIFF stack."""

import torch

from dstorm.logs import setup_logging
from dstorm.reconstruction import save_predictions


def main(smk) -> None:
    setup_logging(smk.log[0])
    torch.set_num_threads(smk.threads)
    save_predictions(
        smk.input.frames,
        smk.input.model,
        smk.output.predictions,
        pixel_size_nm=smk.params.pixel_size_nm,
        batch_size=smk.params.options["batch_size"],
        precision=smk.params.options["precision"],
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (provided by Snakemake)
