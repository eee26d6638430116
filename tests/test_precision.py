"""precision: auto chooses bf16 from the device's instruction set, never from a timing, and says why."""

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
