"""Entry script of rule group_localizations: one molecule's detections in consecutive frames merged."""

import logging

from dstorm.grouping import group_table
from dstorm.io import read_localizations, write_localizations
from dstorm.logs import setup_logging


def main(smk) -> None:
    setup_logging(smk.log[0])
    table = read_localizations(smk.input.localizations)
    options = smk.params.grouping
    grouped = group_table(table, radius_nm=options["radius_nm"], max_gap_frames=options["max_gap_frames"])
    write_localizations(smk.output.grouped, grouped)
    logging.getLogger(__name__).info(
        "%d localisations grouped into %d (radius %g nm, gaps up to %d frames)", len(table), len(grouped),
        options["radius_nm"], options["max_gap_frames"],
    )  # fmt: skip


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (provided by Snakemake)
