"""What the gradient checks do not see: running statistics, masks, ties, modes and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet import nn


def test_batch_norm2d_running_stats_after_several_steps_by_hand():
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm2d(3, momentum=0.2)
    mean, var = np.zeros(3), np.ones(3)
    for _ in range(4):
        x = rng.standard_normal((4, 3, 2, 3)).astype(np.float32) * 2 + 1
        bn(nnet.Tensor(x))
        rows = x.reshape(-1, 3).astype(np.float64)
        mean = mean + 0.2 * (rows.mean(0) - mean)  # the seed's rule, alpha = momentum
        var = var + 0.2 * (rows.var(0, ddof=1) - var)  # unbiased batch variance, as PyTorch
    np.testing.assert_allclose(bn.running_mean.numpy(), mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), var, rtol=1e-5)
    assert bn.num_batches_tracked.dtype == np.int64 and int(bn.num_batches_tracked) == 4
    # eval normalises with the running statistics and leaves them alone
    bn.eval()
    x = rng.standard_normal((2, 2, 2, 3)).astype(np.float32)
    want = (x - mean) / np.sqrt(var + bn.eps)
    np.testing.assert_allclose(bn(nnet.Tensor(x)).numpy(), want, rtol=1e-4, atol=1e-5)
    assert int(bn.num_batches_tracked) == 4
    bn.reset_running_stats()
    assert (bn.running_mean.numpy() == 0).all() and (bn.running_var.numpy() == 1).all()
    assert int(bn.num_batches_tracked) == 0


def test_batch_norm_momentum_none_is_the_cumulative_average():
    rng = np.random.default_rng(1)
    bn = nn.BatchNorm1d(2, momentum=None)
    batches = [rng.standard_normal((5, 2)).astype(np.float32) for _ in range(3)]
    for b in batches:
        bn(nnet.Tensor(b))
    np.testing.assert_allclose(
        bn.running_mean.numpy(), np.mean([b.mean(0) for b in batches], axis=0), rtol=1e-5
    )


def test_batch_norm_without_running_stats_uses_the_batch_in_eval_too():
    bn = nn.BatchNorm1d(2, track_running_stats=False).eval()
    x = np.array([[1.0, 2.0], [3.0, 6.0]], np.float32)
    np.testing.assert_allclose(bn(nnet.Tensor(x)).numpy(), [[-1, -1], [1, 1]], atol=1e-4)
    assert bn.state_dict().keys() == {"weight", "bias"}


def test_batch_norm_one_value_per_channel_is_an_error_in_training():
    with pytest.raises(ValueError, match=r"BatchNorm1d.*more than one value per channel"):
        nn.BatchNorm1d(3)(nnet.zeros((1, 3)))
    nn.BatchNorm1d(3).eval()(nnet.zeros((1, 3)))  # fine with running statistics


def test_dropout_mask_statistics_and_scaling():
    nnet.manual_seed(0)
    for p in (0.1, 0.5, 0.8):
        y = nn.Dropout(p)(nnet.ones(200_000)).numpy()
        kept = y != 0
        assert abs(kept.mean() - (1 - p)) < 0.005
        np.testing.assert_allclose(y[kept], 1 / (1 - p), rtol=1e-6)
        assert abs(y.mean() - 1) < 0.02  # the expectation is the input


def test_dropout_gradient_is_the_scaled_mask():
    nnet.manual_seed(5)
    x = nnet.ones(1000, requires_grad=True)
    y = nn.Dropout(0.25)(x)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), y.numpy())  # m / (1 - p) for x = 1


def test_dropout_eval_p0_p1_and_bad_p():
    x = nnet.randn(3, 4, requires_grad=True)
    assert nn.Dropout(0.5).eval()(x) is x
    assert nn.Dropout(0.0)(x) is x
    y = nn.Dropout(1.0)(x)
    assert (y.numpy() == 0).all() and y.requires_grad
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"Dropout: p must be a probability in \[0, 1\]"):
            nn.Dropout(p)


def test_dropout_is_reproducible_with_manual_seed():
    nnet.manual_seed(7)
    a = nn.Dropout()(nnet.ones(64)).numpy()
    nnet.manual_seed(7)
    np.testing.assert_array_equal(a, nn.Dropout()(nnet.ones(64)).numpy())


def test_max_pool_ties_send_the_gradient_to_the_first_element():
    x = nnet.zeros((1, 2, 2, 1), requires_grad=True)
    nn.MaxPool2d(2)(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[0, :, :, 0], [[1, 0], [0, 0]])


def test_pools_floor_sizes_that_do_not_divide():
    assert nn.MaxPool2d(2)(nnet.zeros((1, 5, 7, 2))).shape == (1, 2, 3, 2)
    assert nn.AvgPool2d(3, stride=2)(nnet.zeros((1, 7, 8, 1))).shape == (1, 3, 3, 1)


def test_same_padding_keeps_size_at_stride_1_and_gives_ceil_at_stride_2():
    x = nnet.zeros((1, 7, 8, 2))
    for k in (1, 2, 3, 4, 5):
        assert nn.Conv2d(2, 1, k)(x).shape == (1, 7, 8, 1)
        assert nn.Conv2d(2, 1, k, dilation=2)(x).shape == (1, 7, 8, 1)
        assert nn.Conv2d(2, 1, k, stride=2)(x).shape == (1, 4, 4, 1)


def test_nchw_input_gets_the_nhwc_hint():
    with pytest.raises(ValueError) as e:
        nn.Conv2d(3, 16, 3)(nnet.zeros((8, 3, 32, 32)))
    assert str(e.value).startswith(
        "Conv2d(3 -> 16) expects input (N, H, W, 3), got (8, 3, 32, 32); nnet images are NHWC"
    )
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\) expects input \(N, H, W, 3\), got"):
        nn.BatchNorm2d(3)(nnet.zeros((8, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"MaxPool2d.*expects input \(N, H, W, C\), got \(3, 4\)"):
        nn.MaxPool2d(2)(nnet.zeros((3, 4)))


@pytest.mark.parametrize(
    ("layer", "shape", "message"),
    [
        (nn.Linear(784, 10), (8, 28, 28), r"Linear\(784 -> 10\) expects input \(\.\.\., 784\), "
         r"got \(8, 28, 28\); flatten images first"),
        (nn.Conv2d(3, 4, 3), (2, 5, 5), r"Conv2d\(3 -> 4\) expects input \(N, H, W, 3\), got"),
        (nn.Conv2d(3, 4, 5, padding=0), (1, 3, 3, 3), r"Conv2d\(3 -> 4\): the 5x5 kernel .* larger "
         r"than the padded input 3x3"),
        (nn.MaxPool2d(4), (1, 3, 3, 1), r"MaxPool2d\(kernel_size=4.*larger than the padded input"),
        (nn.BatchNorm1d(4), (2, 3), r"BatchNorm1d\(4\) expects input \(N, 4\), got \(2, 3\)"),
    ],
)  # fmt: skip
def test_bad_input_messages_name_the_layer_and_shapes(layer, shape, message):
    with pytest.raises(ValueError, match=message):
        layer(nnet.zeros(shape))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: nn.Conv2d(1, 1, 3, stride=0), r"stride must be positive, got \(0, 0\)"),
        (lambda: nn.Conv2d(1, 1, 3, padding="full"), r"padding must be 'same', 'valid'"),
        (lambda: nn.Conv2d(1, 1, 3, padding=-1), r"padding must be non-negative"),
        (lambda: nn.MaxPool2d(2, stride=-1)(nnet.zeros((1, 4, 4, 1))), r"stride must be positive"),
        (lambda: nn.MaxPool2d(2, padding=2)(nnet.zeros((1, 4, 4, 1))), r"at most half|between 0"),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_train_and_eval_set_the_mode_everywhere():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout(), nn.BatchNorm1d(2)))
    assert all(m.training for m in model.modules())
    assert model.eval() is model and not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
