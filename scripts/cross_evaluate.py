"""Entry script of rule cross_evaluate: score an acquisition reconstructed with another model of its dataset."""

import torch

from dstorm.config import seed_sequence_entropy
from dstorm.evaluation.cross import cross_evaluate
from dstorm.logs import setup_logging


def main(smk) -> None:
    setup_logging(smk.log[0])
    torch.set_num_threads(smk.threads)
    cross_evaluate(
        frames=smk.input.frames,
        model=smk.input.model,
        ground_truth=smk.input.ground_truth,
        metrics=smk.output.metrics,
        pixel_size_nm=smk.params.pixel_size_nm,
        reconstruction=smk.params.reconstruction,
        options=smk.params.options,
        seed=seed_sequence_entropy(smk.params.seed, "frc", smk.wildcards.acquisition),
        info=smk.params.info,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (provided by Snakemake)
