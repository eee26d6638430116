"""Entry script of rule estimate_conditions: a dataset's imaging conditions from its TIFF acquisitions."""

import json

import pandas as pd

from dstorm.config import apply_estimates
from dstorm.estimation.figures import photon_transfer_figure, spots_figure
from dstorm.estimation.run import estimate_dataset
from dstorm.io import atomic_output
from dstorm.logs import setup_logging


def comparison_table(doc: dict, dataset: dict) -> pd.DataFrame:
    """One row per config key: the estimate, its standard error, the hand-typed value and the value used."""
    used = apply_estimates(dataset, doc)
    rows = []
    for section, keys in doc["config"].items():
        for key, estimate in keys.items():
            typed = (doc["given"].get(section) or {}).get(key)
            rows.append({"key": f"{section}.{key}", "estimate": json.dumps(estimate), "hand-typed": "" if typed is None else json.dumps(typed), "used": json.dumps(used[section].get(key))})
    for key, value in doc["values"].items():
        rows.append({"key": f"estimate.{key}", "estimate": json.dumps(value), "standard error": doc["standard_errors"].get(key), "used": ""})
    return pd.DataFrame(rows, columns=["key", "estimate", "standard error", "hand-typed", "used"])


def main(smk) -> None:
    setup_logging(smk.log[0])
    opts = smk.params.options
    doc, est = estimate_dataset(
        list(smk.input.frames), pixel_size_nm=opts["pixel_size_nm"], max_frames=opts["max_frames"], given=opts["given"], seed=opts["seed"]
    )
    doc["acquisitions"] = opts["acquisitions"]
    photon_transfer_figure(est, smk.output.photon_transfer)
    spots_figure(est, smk.output.spots, pixel_size_nm=opts["pixel_size_nm"])
    with atomic_output(smk.output.csv) as tmp:
        comparison_table(doc, smk.params.dataset).to_csv(tmp, index=False)
    with atomic_output(smk.output.json) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (provided by Snakemake)
