"""Entry script of rule simulate_acquisition: frames and ground truth of one simulated test acquisition."""

import json

from dstorm.config import apply_estimates
from dstorm.logs import setup_logging
from dstorm.simulation.simulate import simulate_acquisition


def main(smk) -> None:
    setup_logging(smk.log[0])
    dataset = smk.params.dataset
    if smk.input.conditions:  # conditions estimated from the acquisitions, under the hand-typed keys
        conditions = json.loads(open(smk.input.conditions[0], encoding="utf-8").read())
        dataset = apply_estimates(dataset, conditions)
    simulate_acquisition(
        dataset,
        smk.wildcards.acquisition,
        density=smk.params.acquisition["density"],
        n_frames=smk.params.acquisition["frames"],
        frames_path=smk.output.frames,
        ground_truth_path=smk.output.ground_truth,
        drift=smk.params.acquisition.get("drift"),
        drift_path=smk.output.drift,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (provided by Snakemake)
