"""Entry script of rule simulate_training_set: frames, ground truth and patches of one training set."""

from dstorm.logs import setup_logging
from dstorm.simulation.simulate import simulate_training_set


def main(smk) -> None:
    setup_logging(smk.log[0])
    simulate_training_set(
        smk.params.dataset,
        density=smk.params.density,
        frames_path=smk.output.frames,
        ground_truth_path=smk.output.ground_truth,
        patches_path=smk.output.patches,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (provided by Snakemake)
