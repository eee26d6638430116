"""Entry script of rule train: one model per (dataset, density), resumable from its last checkpoint."""

from dstorm.logs import setup_logging
from dstorm.training import train_model


def main(smk) -> None:
    setup_logging(smk.log[0])
    train_model(
        smk.input.patches,
        smk.output.model,
        smk.output.history,
        smk.output.curves,
        checkpoint_dir=smk.params.checkpoint_dir,
        recipe=smk.params.recipe,
        seed=smk.params.seed,
        label=f"{smk.wildcards.dataset}/density_{smk.wildcards.density}",
        threads=smk.threads,
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (provided by Snakemake)
