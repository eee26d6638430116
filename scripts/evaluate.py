"""Entry script of rule evaluate: metrics, FRC curve and comparison figure of one reconstruction."""

from dstorm.config import seed_sequence_entropy
from dstorm.evaluation.evaluate import evaluate_acquisition
from dstorm.logs import setup_logging


def main(smk) -> None:
    setup_logging(smk.log[0])
    wc = smk.wildcards
    evaluate_acquisition(
        localizations=smk.input.localizations,
        super_resolution=smk.input.super_resolution,
        widefield=smk.input.widefield,
        reconstruction=smk.input.reconstruction,
        ground_truth=smk.input.ground_truth[0] if smk.input.ground_truth else None,
        drift=smk.input.drift,
        drift_truth=smk.input.drift_truth[0] if smk.input.drift_truth else None,
        outputs=dict(smk.output.items()),
        options=smk.params.options,
        seed=seed_sequence_entropy(smk.params.seed, "frc", wc.acquisition),
        info=smk.params.info,
        title=f"{wc.dataset}/{wc.acquisition}",
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (provided by Snakemake)
