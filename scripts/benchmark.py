"""Entry script of rule benchmark: a dataset's density benchmark (table and the paper's figure)."""

from dstorm.evaluation.evaluate import benchmark_table
from dstorm.logs import setup_logging


def main(smk) -> None:
    setup_logging(smk.log[0])
    benchmark_table(list(smk.input.metrics), smk.output.table, smk.output.figure, title=smk.wildcards.dataset)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (provided by Snakemake)
