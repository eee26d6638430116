"""Entry script of rule training_curves: the loss curves of all of a dataset's models in one figure."""

from dstorm.evaluation.evaluate import training_curves
from dstorm.logs import setup_logging


def main(smk) -> None:
    setup_logging(smk.log[0])
    training_curves(dict(zip(smk.params.labels, smk.input.histories)), smk.output.figure, title=smk.wildcards.dataset)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (provided by Snakemake)
