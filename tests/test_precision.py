"""precision: auto chooses bf16 from the device's instruction set, never from a timing, and says why;
compile: auto compiles the inference network where it pays, a compiled network gives the eager heatmaps,
and a failing compiler leaves it uncompiled."""

import numpy as np
import pytest
import torch

from dstorm.model import precision as P


@pytest.mark.parametrize(
    "requested,native,expected,why",
    [
        ("auto", True, "bf16-mixed", r"native bfloat16"),
        ("auto", False, "32", r"no native bfloat16.*10× slower"),
        ("32", True, "32", r"as configured"),
        (32, False, "32", r"as configured"),
        ("bf16-mixed", False, "bf16-mixed", r"as configured"),
        ("16-mixed", True, "32", r"needs a GPU"),
    ],
)
def test_cpu_choice(monkeypatch, requested, native, expected, why):
    monkeypatch.setattr(P, "cpu_has_native_bf16", lambda: native)
    chosen, reason = P.choose_precision(requested, "cpu")
    assert chosen == expected
    assert __import__("re").search(why, reason), reason


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match=r"precision 'half'; expected one of auto, 32, bf16-mixed, 16-mixed"):
        P.choose_precision("half", "cpu")


def test_the_probe_agrees_with_the_cpu_flags():
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        pytest.skip("no /proc/cpuinfo")
    assert P.cpu_has_native_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)


def test_autocast_of_each_precision():
    x = torch.randn(4, 4)
    with P.autocast("bf16-mixed", torch.device("cpu")):
        assert (x @ x).dtype == torch.bfloat16
    with P.autocast("32", torch.device("cpu")):
        assert (x @ x).dtype == torch.float32


@pytest.mark.parametrize(
    "requested,device,precision,architecture,frames,expected,why",
    [
        ("auto", "cpu", "bf16-mixed", "deepstorm", 10_000, True, r"auto: bf16-mixed on a CPU"),
        ("auto", "cpu", "bf16-mixed", "deepstorm", 100, False, r"under the 100 Mpx"),
        ("auto", "cpu", "bf16-mixed", "fast", 10_000, False, r"under the 5000 Mpx"),
        ("auto", "cpu", "bf16-mixed", "fast", 100_000, True, r"auto: bf16-mixed"),
        ("auto", "cpu", "32", "deepstorm", 100_000, False, r"only on a CPU at bf16-mixed \(here cpu, 32\)"),
        ("auto", "cuda", "bf16-mixed", "deepstorm", 100_000, False, r"here cuda"),
        (True, "cpu", "32", "fast", 1, True, r"as configured"),
        (False, "cpu", "bf16-mixed", "deepstorm", 100_000, False, r"as configured"),
    ],
)
def test_compile_is_chosen_where_it_pays(requested, device, precision, architecture, frames, expected, why):
    """Frames of 64 × 64 px at U = 8 (0.262 Mpx of heatmap each) against the registry's thresholds."""
    import re

    from dstorm.architectures import architecture as arch
    from dstorm.reconstruction import choose_compile

    mpx = frames * (64 * 8) ** 2 / 1e6
    chosen, reason = choose_compile(requested, torch.device(device), precision, architecture, mpx)
    assert chosen is expected and re.search(why, reason), reason
    if requested == "auto" and device == "cpu" and precision == "bf16-mixed":
        assert chosen is (mpx >= arch(architecture).compile_after_mpx)
    with pytest.raises(ValueError, match=r"reconstruction.compile 'yes'; expected auto, true or false"):
        choose_compile("yes", torch.device("cpu"), "32", "fast", 1.0)


def _untrained(tmp_path, architecture):
    from dstorm.model.modelfile import save_model
    from dstorm.model.network import build_network

    torch.manual_seed(3)
    path = tmp_path / f"{architecture}.pt"
    save_model(path, build_network(architecture, {}, 2), architecture, upsampling_factor=2,
               normalization={"mean": 0.2, "std": 0.2}, weighting_factor=100.0, pixel_size_nm=100.0)  # fmt: skip
    return path


def _cpp_compiler() -> str | None:
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        return get_cpp_compiler()
    except Exception:  # noqa: BLE001 - none found, or an API that moved
        return None


@pytest.mark.parametrize("precision", ["32", "bf16-mixed"])
def test_a_compiled_network_gives_the_eager_heatmaps_also_for_a_short_last_batch(tmp_path, precision):
    """The fast network (cheap to compile) compiled for batches of 4 frames of 12 × 20 px: batches of 4 and
    of 3 (padded to 4) give the eager model's heatmaps within rounding (bf16: within bf16 rounding)."""
    from dstorm.model.modelfile import load_model

    if _cpp_compiler() is None:
        pytest.skip("torch.compile needs a C++ compiler on the CPU; none found")
    path = _untrained(tmp_path, "fast")
    eager = load_model(path, precision=precision, fold_bn=True)
    compiled = load_model(path, precision=precision, fold_bn=True)
    compiled.compile(4, 12, 20)
    assert compiled.compiled is not None and compiled.compiled_batch == 4
    frames = torch.from_numpy(np.random.default_rng(0).poisson(50, (7, 12, 20)).astype(np.float32))
    for batch in (frames[:4], frames[4:]):
        ref, got = eager.predict(batch), compiled.predict(batch)
        assert got.shape == ref.shape == (len(batch), 24, 40)
        tol = (1e-5 if precision == "32" else 2e-2) * float(ref.abs().max())
        torch.testing.assert_close(got, ref, rtol=0, atol=tol)


def test_a_failing_compiler_leaves_the_network_uncompiled(tmp_path, monkeypatch, caplog):
    import logging

    from dstorm.model.modelfile import LoadedModel, load_model
    from dstorm.reconstruction import compile_for

    def broken(self, *args):
        raise RuntimeError("InductorError: no C++ compiler found\nsecond line")

    monkeypatch.setattr(LoadedModel, "compile", broken)
    model = load_model(_untrained(tmp_path, "fast"), fold_bn=True)
    with caplog.at_level(logging.INFO, logger="dstorm.reconstruction"):
        assert compile_for(model, True, 2, 12, 20, 10) is False
        assert compile_for(model, False, 2, 12, 20, 10) is False
    assert "compiling failed (RuntimeError: InductorError: no C++ compiler found); running uncompiled" in caplog.text
    assert "not compiled (as configured)" in caplog.text
    assert model.compiled is None and model.predict(torch.ones(3, 12, 20)).shape == (3, 24, 40)
