"""Entry script of rule summary: results/summary.csv, one row per acquisition."""

from dstorm.evaluation.evaluate import summary_table
from dstorm.logs import setup_logging


def main(smk) -> None:
    setup_logging(smk.log[0])
    summary_table(smk.params.entries, smk.output.table)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (provided by Snakemake)
