"""The Deep-STORM network and loss against the reference's numbers and hand computations."""

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from dstorm.coordinates import gaussian_kernel
from dstorm.model.loss import deepstorm_loss, loss_kernel
from dstorm.model.network import DeepSTORMNet


@pytest.mark.parametrize("shape", [(8, 8), (16, 24), (64, 64), (208, 208)])
def test_output_shape_equals_input_shape_for_sides_divisible_by_8(shape):
    net = DeepSTORMNet().eval()
    with torch.no_grad():
        assert net(torch.randn(2, 1, *shape)).shape == (2, 1, *shape)


@pytest.mark.parametrize("shape", [(12, 16), (64, 60), (7, 8)])
def test_sides_not_divisible_by_8_are_a_clear_error(shape):
    with pytest.raises(ValueError, match=r"must be divisible by 8: the network pools three times"):
        DeepSTORMNet()(torch.randn(1, 1, *shape))


def test_architecture_matches_the_reference():
    net = DeepSTORMNet()
    assert net.conv_weight_count() == 1_364_288
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 512, 128, 64, 32, 1]
    assert all(c.bias is None for c in convs)
    assert [c.kernel_size for c in convs] == [(3, 3)] * 7 + [(1, 1)]
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 7 and all(b.momentum == 0.01 and b.eps == 1e-3 for b in bns)
    # orthogonal initialisation: the flattened kernels have orthonormal rows (or columns)
    for c in convs:
        w = c.weight.detach().reshape(c.out_channels, -1)
        gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
        np.testing.assert_allclose(gram.numpy(), np.eye(len(gram)), atol=1e-4)
    # no skip connections: the bottleneck is 1/8 of the input side
    pooled = []
    net.enc[3].register_forward_hook(lambda m, i, o: pooled.append(o.shape))
    net(torch.randn(1, 1, 64, 64))
    assert pooled == [(1, 512, 8, 8)]


def test_loss_kernel_is_twice_a_normalised_7x7_gaussian():
    k = loss_kernel()[0, 0].numpy()
    assert k.shape == (7, 7) and k.sum() == pytest.approx(2.0, rel=1e-6)
    one_d = np.exp(-(np.arange(-3, 4) ** 2) / 2)
    assert k[3, 3] == pytest.approx(2 / one_d.sum() ** 2, rel=1e-6)  # separable: centre = 2 / (1-D sum)²
    np.testing.assert_allclose(k, 2 * np.outer(one_d, one_d) / one_d.sum() ** 2, rtol=1e-6)


def test_loss_on_a_single_spike_by_hand():
    pred = torch.zeros(1, 1, 9, 9)
    pred[0, 0, 4, 4] = 1.0
    target = torch.zeros(1, 1, 9, 9)
    g = 2 * gaussian_kernel(1.0, 7)
    expected = (g**2).sum() / 81 + 1 / 81  # MSE of the blurred spike against zero, plus mean |pred|
    assert float(deepstorm_loss(pred, target, loss_kernel())) == pytest.approx(expected, rel=1e-6)
    # weights scale the two terms
    both = float(deepstorm_loss(pred, target, loss_kernel(), mse_weight=2.0, l1_weight=0.5))
    assert both == pytest.approx(2 * (g**2).sum() / 81 + 0.5 / 81, rel=1e-6)


def test_loss_on_random_tensors_against_scipy():
    rng = np.random.default_rng(0)
    pred = rng.normal(size=(3, 1, 12, 10)).astype(np.float32)
    target = rng.uniform(0, 5, size=(3, 1, 12, 10)).astype(np.float32)
    g = 2 * gaussian_kernel(1.0, 7)
    blurred = np.stack([convolve2d(p[0], g, mode="same")[None] for p in pred])  # zero padding
    expected = np.mean((target - blurred) ** 2) + np.mean(np.abs(pred))
    got = float(deepstorm_loss(torch.from_numpy(pred), torch.from_numpy(target), loss_kernel()))
    assert got == pytest.approx(expected, rel=1e-5)
