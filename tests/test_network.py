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


# ----------------------------------------------------------------------------- the registry and the fast net


def test_every_registered_architecture_has_its_class_and_states_its_sizes():
    from dstorm.architectures import ARCHITECTURES, common_frame_multiple
    from dstorm.model.network import network_class

    for name, spec in ARCHITECTURES.items():
        assert network_class(name).spec is spec
    deepstorm, fast = ARCHITECTURES["deepstorm"], ARCHITECTURES["fast"]
    assert [deepstorm.frame_multiple(u) for u in (1, 2, 3, 4, 8, 16)] == [8, 4, 8, 2, 1, 1]  # side·U divisible by 8
    assert [fast.frame_multiple(u) for u in (1, 2, 3, 8)] == [1, 1, 1, 1]  # it pads
    assert [common_frame_multiple(u) for u in (2, 4, 8)] == [4, 2, 1]
    with pytest.raises(ValueError, match=r"unknown architecture 'unet'; known: deepstorm, fast"):
        network_class("unet")


@pytest.mark.parametrize("u,shape", [(8, (16, 16)), (4, (13, 22)), (2, (7, 5)), (3, (8, 12))])
def test_fast_network_gives_the_heatmap_u_times_finer_for_any_frame_size(u, shape):
    from dstorm.model.network import FastNet

    net = FastNet(upsampling_factor=u).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 1, *shape))
    assert out.shape == (2, 1, shape[0] * u, shape[1] * u)
    # pixel shuffle: the U² output channels of camera pixel (i, j) fill heatmap pixels [iU, iU+U) × [jU, jU+U)
    head = []
    net.head.register_forward_hook(lambda m, i, o: head.append(o))
    with torch.no_grad():
        full = net(torch.randn(1, 1, 8, 8))
    torch.testing.assert_close(full[0, 0, 2 * u : 3 * u, 5 * u : 6 * u].reshape(-1), head[0][0, :, 2, 5])


def test_fast_network_is_at_least_forty_times_cheaper_than_the_faithful_one():
    """Counted multiply-accumulates of a 64 × 64 frame at U = 8 (hooks on every convolution)."""
    from dstorm.model.network import FastNet, conv_macs

    faithful = conv_macs(DeepSTORMNet().eval(), torch.zeros(1, 1, 512, 512))
    fast = conv_macs(FastNet(8).eval(), torch.zeros(1, 1, 64, 64))
    assert faithful == pytest.approx(24.0e9, rel=0.02)  # ≈ 48 GFLOP per frame
    assert faithful / fast > 40, (faithful, fast)


@pytest.mark.parametrize("architecture,shape", [("deepstorm", (32, 32)), ("fast", (12, 12))])
def test_folding_batchnorm_gives_the_same_heatmap(architecture, shape):
    import copy

    from dstorm.model.network import build_network, fold_batchnorm

    torch.manual_seed(1)
    net = build_network(architecture, {"bn_momentum": 0.5}, upsampling_factor=2)
    net.train()
    with torch.no_grad():
        for _ in range(3):  # running statistics away from their initial values
            net(torch.randn(4, 1, *shape) * 2 + 1)
    net.eval()
    folded = fold_batchnorm(copy.deepcopy(net))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(3, 1, *shape)
    with torch.no_grad():
        ref, got = net(x), folded(x)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()))


def test_the_output_layer_stays_float32_under_bfloat16_autocast():
    from dstorm.model.network import FastNet

    net = FastNet(2).eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert net(torch.randn(1, 1, 8, 8)).dtype == torch.float32
        assert DeepSTORMNet().eval()(torch.randn(1, 1, 8, 8)).dtype == torch.float32
