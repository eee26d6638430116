"""Entry script of rule estimate_conditions: a dataset's imaging conditions from its TIFF acquisitions."""

import json

import pandas as pd

from dstorm.config import ESTIMATED_SECTIONS, ConfigError, apply_estimates
from dstorm.estimation.figures import photon_transfer_figure, spots_figure
from dstorm.estimation.run import estimate_dataset
from dstorm.io import atomic_output
from dstorm.logs import setup_logging


def _text(value) -> str:
    """A table cell: plain text for a number or word, JSON for a list or mapping, empty for none."""
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (list, dict)) else str(value)


def comparison_table(doc: dict, dataset: dict) -> pd.DataFrame:
    """One row per config key: the estimate, its standard error, the hand-typed value and the value used."""
    try:
        used = apply_estimates(dataset, doc)
    except ConfigError as err:  # the simulations will stop with this message; the table still shows the rest
        used = {section: {} for section in ESTIMATED_SECTIONS}
        doc["warnings"].append(str(err))
    rows = []
    for section, keys in doc["config"].items():
        for key, estimate in keys.items():
            typed = (doc["given"].get(section) or {}).get(key)
            rows.append({"key": f"{section}.{key}", "estimate": _text(estimate), "hand-typed": _text(typed), "used": _text(used[section].get(key))})
    for section, keys in doc["given"].items():  # typed keys with no estimate of their own (e.g. a preset)
        for key, typed in (keys or {}).items():
            if key not in doc["config"].get(section, {}):
                rows.append({"key": f"{section}.{key}", "hand-typed": _text(typed), "used": _text(used[section].get(key, typed))})
    for key, value in doc["values"].items():
        rows.append({"key": f"estimate.{key}", "estimate": _text(value), "standard error": doc["standard_errors"].get(key)})
    return pd.DataFrame(rows, columns=["key", "estimate", "standard error", "hand-typed", "used"])


def main(smk) -> None:
    setup_logging(smk.log[0])
    opts = smk.params.options
    doc, est = estimate_dataset(
        list(smk.input.frames), pixel_size_nm=opts["pixel_size_nm"], max_frames=opts["max_frames"], given=opts["given"], seed=opts["seed"],
        population=opts["density"] == "simulation",
    )
    doc["acquisitions"] = opts["acquisitions"]
    photon_transfer_figure(est, smk.output.photon_transfer)
    spots_figure(est, smk.output.spots, pixel_size_nm=opts["pixel_size_nm"])
    table = comparison_table(doc, smk.params.dataset)
    with atomic_output(smk.output.csv) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_output(smk.output.json) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (provided by Snakemake)
