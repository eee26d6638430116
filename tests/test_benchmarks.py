"""The benchmark scripts run and print their tables (tiny sizes: the figures themselves are not tested)."""

import re
import subprocess
import sys

import pytest

from conftest import REPO

BENCH = REPO / "scripts" / "benchmarks"
sys.path.insert(0, str(BENCH))

from common import PICASSO_PYTHON  # noqa: E402


@pytest.mark.parametrize(
    "script,args,expected",
    [
        ("simulate_speed.py", ["--frames", "20", "--repeats", "1"], "| epfl2016 | filaments |"),
        ("train_speed.py", ["--side", "32", "--batch", "2", "--repeats", "1", "--no-compile"], "| fp32 channels_last |"),
        ("reconstruct_speed.py", ["--frames", "12", "--upsampling", "1", "--train-steps", "0"], "| 12 |"),
        ("throughput.py", ["--upsampling", "2", "--sides", "16", "--repeats", "1", "--stage-frames", "4", "--skip-accuracy",
                           "--no-compile"],
         "| fast | fp32 | 16² |"),
        ("oversubscription.py", ["--side", "16", "--batch", "1", "--steps", "1", "--rows", "4"], "| two at once | PASSIVE |"),
        ("plan_speed.py", ["--acquisitions", "4", "--repeats", "1"], "| 4 | half simulated | 1 |"),
        ("estimate_accuracy.py", ["--frames", "100", "--densities", "1", "--cameras", "epfl2016"], "| epfl2016 | 1 | emccd |"),
        ("estimate_accuracy.py", ["--frames", "100", "--densities", "1", "--cameras", "epfl2016", "--repeats", "2"], "| epfl2016 | 1 | 2/2 |"),
    ],
)
def test_benchmark_prints_its_table(script, args, expected):
    result = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout, result.stdout


def test_independent_simulator_benchmark_prints_its_table():
    """Needs Picasso in build/picasso-venv (the benchmark makes it with pip on its first run, minutes)."""
    if not PICASSO_PYTHON.exists():
        pytest.skip("build/picasso-venv is absent (run scripts/benchmarks/independent.py once to make it)")
    args = ["--cameras", "scmos", "--densities", "2", "--kinetics", "short on-times", "--photons", "2000 ± 0",
            "--frames", "60", "--density", "ratio", "--shared", "/nonexistent"]  # fmt: skip
    result = subprocess.run([sys.executable, str(BENCH / "independent.py"), *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "| Picasso scmos, short on-times, 2000 ± 0 photons, 2/µm² [ratio] | scmos |" in result.stdout, result.stdout
    share = re.search(r"Picasso's truth: ([\d.]+)–([\d.]+) % of its photons fall inside the field", result.stdout)
    assert share and 95 < float(share[1]) <= float(share[2]) < 99.5, result.stdout  # σ 1.1 px on 64 px: about 2.6 % out


def test_in_field_share_of_the_truths_photons():
    """An emitter at the field's corner keeps a quarter of its photons inside (half on each axis), one at the
    centre of a field 100 σ wide all of them: photons 1 and 3 give (0.25 + 3) / 4."""
    import pandas as pd
    from independent import in_field

    gt = pd.DataFrame({"x [nm]": [0.0, 3200.0], "y [nm]": [0.0, 3200.0], "intensity [photon]": [1.0, 3.0]})
    assert in_field(gt, size=64, pixel_nm=100.0, sigma_nm=64.0) == pytest.approx(3.25 / 4, abs=1e-9)
