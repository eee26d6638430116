"""Entry script of rule simulate_training_set: frames, ground truth and patches of one training set."""

import json

from dstorm.config import apply_estimates
from dstorm.logs import setup_logging
from dstorm.simulation.simulate import simulate_training_set


def main(smk) -> None:
    setup_logging(smk.log[0])
    dataset = smk.params.dataset
    if smk.input.conditions:  # conditions estimated from the acquisitions, under the hand-typed keys
        conditions = json.loads(open(smk.input.conditions[0], encoding="utf-8").read())
        dataset = apply_estimates(dataset, conditions)
    density = smk.params.density
    if density == "estimated":
        density = conditions["values"]["training_density_per_um2"]
    simulate_training_set(
        dataset,
        density=density,
        frames_path=smk.output.frames,
        ground_truth_path=smk.output.ground_truth,
        patches_path=smk.output.patches,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (provided by Snakemake)
