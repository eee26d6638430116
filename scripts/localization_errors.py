"""Entry script of rule localization_errors: matched pairs and the error histogram of one acquisition."""

from dstorm.evaluation.evaluate import localization_errors
from dstorm.logs import setup_logging


def main(smk) -> None:
    setup_logging(smk.log[0])
    localization_errors(
        smk.input.localizations,
        smk.input.ground_truth[0],
        smk.output.matches,
        smk.output.errors_png,
        options=smk.params.options,
        title=f"{smk.wildcards.dataset}/{smk.wildcards.acquisition}",
    )


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (provided by Snakemake)
