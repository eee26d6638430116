"""Entry script of rule export_picasso: the localisation table as Picasso's HDF5 + YAML, streamed."""

import json
import logging

from dstorm.logs import setup_logging
from dstorm.loctable import export


def main(smk) -> None:
    setup_logging(smk.log[0])
    recon = json.loads(open(smk.input.reconstruction, encoding="utf-8").read())
    h, w = recon["frame_size_px"]
    meta = {"frames": recon["frames"], "height": h, "width": w, "pixel_size_nm": recon["pixel_size_nm"],
            "acquisition": recon["acquisition"]}  # fmt: skip
    n = export(smk.input.localizations, {"picasso": smk.output.hdf5}, meta)
    logging.getLogger(__name__).info("%d localisations written to %s and %s", n, smk.output.hdf5, smk.output.yaml)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821  (provided by Snakemake)
