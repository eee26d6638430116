# Two commands do all set-up on a fresh machine (Python >= 3.11 with pip):
#   make demo   create .venv, install the pinned dependencies, run the workflow on config/config.yaml,
#               then write its HTML report to results/report.html
#   make test   same .venv, run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= 2

.PHONY: demo test lint clean-results venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --workflow-profile workflow/profiles/default --cores $(CORES)
	$(BIN)/snakemake --workflow-profile workflow/profiles/default --report results/report.html
	@echo "Done: results/summary.csv (metrics per acquisition) and results/report.html (open in a browser)"

# the suite's files run on $(CORES) workers (pytest-xdist; one file per worker, so that a file's shared
# fixtures, such as the local SLURM cluster, are made once), in the order tests/conftest.py gives them, the
# longest first (xdist's own order, the files with the most tests first, would leave the long files with few
# tests, test_slurm and test_end_to_end, to run at the end)
test: $(STAMP)
	$(BIN)/python -m pytest -n $(CORES) --dist loadfile --no-loadscope-reorder

lint: $(STAMP)
	$(BIN)/snakemake --lint

clean-results:
	find results -mindepth 1 ! -name .gitignore ! -name README.md -exec rm -rf {} +
