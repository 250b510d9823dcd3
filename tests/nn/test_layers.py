"""Every layer against a direct NumPy formula, and its gradients (inputs and parameters) against
central differences, through the LayerCase base class."""

from __future__ import annotations

import numpy as np
import pytest

import nnet
from nnet import nn
from nnet.nn.functional import bernoulli_mask

from . import reference
from .layer_case import LayerCase


class TestLinear(LayerCase):
    def make_layer(self):
        return nn.Linear(4, 3)

    def inputs(self, rng):
        return [rng.standard_normal((5, 4))]

    def expected(self, layer, x):
        return x @ layer.weight.numpy() + layer.bias.numpy()


class TestLinearBatchedNoBias(LayerCase):
    def make_layer(self):
        return nn.Linear(3, 2, bias=False)

    def inputs(self, rng):
        return [rng.standard_normal((2, 4, 3))]

    def expected(self, layer, x):
        return x @ layer.weight.numpy()


class TestConv2dSame(LayerCase):
    """The seed's formula exactly: 'same' padding bh = floor(KH/2), bw = floor(KW/2), stride 1."""

    def make_layer(self):
        return nn.Conv2d(2, 3, (3, 5))

    def inputs(self, rng):
        return [rng.standard_normal((2, 5, 6, 2))]

    def expected(self, layer, x):
        w, b = layer.weight.numpy(), layer.bias.numpy()
        kh, kw = w.shape[:2]
        bh, bw = kh // 2, kw // 2
        n_, h, wd, _ = x.shape
        y = np.zeros((n_, h, wd, w.shape[3]))
        for n in range(n_):
            for r in range(h):
                for c in range(wd):
                    for i in range(kh):
                        for j in range(kw):
                            v = reference.padded_value(x, n, r + i - bh, c + j - bw, 0.0)
                            y[n, r, c] += v @ w[i, j]
                    y[n, r, c] += b
        return y


class TestConv2dStrideDilationValid(LayerCase):
    def make_layer(self):
        return nn.Conv2d(2, 2, 2, stride=(2, 1), padding="valid", dilation=(1, 2))

    def inputs(self, rng):
        return [rng.standard_normal((1, 6, 7, 2))]

    def expected(self, layer, x):
        return reference.conv2d(
            x, layer.weight.numpy(), layer.bias.numpy(), (2, 1), ((0, 0), (0, 0)), (1, 2)
        )


class TestConv2dEvenSame(LayerCase):
    """An even kernel with 'same': PyTorch's split, the extra row and column after."""

    def make_layer(self):
        return nn.Conv2d(1, 2, (2, 4), bias=False)

    def inputs(self, rng):
        return [rng.standard_normal((2, 4, 5, 1))]

    def expected(self, layer, x):
        return reference.conv2d(x, layer.weight.numpy(), None, (1, 1), ((0, 1), (1, 2)))


class TestMaxPool2d(LayerCase):
    def make_layer(self):
        return nn.MaxPool2d(2)

    def inputs(self, rng):
        return [rng.standard_normal((2, 5, 4, 3))]

    def expected(self, layer, x):
        return reference.pool2d(x, (2, 2), (2, 2), (0, 0), np.max, -np.inf)


class TestMaxPool2dPaddedOverlapping(LayerCase):
    def make_layer(self):
        return nn.MaxPool2d(3, stride=(1, 2), padding=1)

    def inputs(self, rng):
        return [rng.standard_normal((1, 4, 5, 2))]

    def expected(self, layer, x):
        return reference.pool2d(x, (3, 3), (1, 2), (1, 1), np.max, -np.inf)


class TestAvgPool2d(LayerCase):
    def make_layer(self):
        return nn.AvgPool2d((2, 3), stride=1)

    def inputs(self, rng):
        return [rng.standard_normal((2, 3, 4, 2))]

    def expected(self, layer, x):
        return reference.pool2d(x, (2, 3), (1, 1), (0, 0), np.mean, 0.0)


class TestAvgPool2dPadding(LayerCase):
    def make_layer(self):
        return nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def inputs(self, rng):
        return [rng.standard_normal((1, 5, 4, 2))]

    def expected(self, layer, x):
        ones = np.ones((*x.shape[:3], 1))
        total = reference.pool2d(x, (3, 3), (2, 2), (1, 1), np.sum, 0.0)
        count = reference.pool2d(ones, (3, 3), (2, 2), (1, 1), np.sum, 0.0)
        return total / count


def batch_norm_reference(x, gamma, beta, eps):
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axis=axes)
    var = x.var(axis=axes)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


class TestBatchNorm2dTrain(LayerCase):
    def make_layer(self):
        layer = nn.BatchNorm2d(3)
        layer.weight.data[...] = [0.5, 2.0, -1.0]
        layer.bias.data[...] = [0.1, 0.0, 0.3]
        return layer

    def inputs(self, rng):
        return [rng.standard_normal((2, 3, 2, 3)) * 3 + 1]

    def expected(self, layer, x):
        return batch_norm_reference(x, layer.weight.numpy(), layer.bias.numpy(), layer.eps)


class TestBatchNorm2dEval(LayerCase):
    def make_layer(self):
        layer = nn.BatchNorm2d(2).eval()
        layer.running_mean.data[...] = [0.5, -1.0]
        layer.running_var.data[...] = [2.0, 0.25]
        layer.weight.data[...] = [1.5, 0.5]
        return layer

    def inputs(self, rng):
        return [rng.standard_normal((2, 3, 3, 2))]

    def expected(self, layer, x):
        rm, rv = layer.running_mean.numpy(), layer.running_var.numpy()
        return (x - rm) / np.sqrt(rv + layer.eps) * layer.weight.numpy() + layer.bias.numpy()


class TestBatchNorm1dNoAffine(LayerCase):
    def make_layer(self):
        return nn.BatchNorm1d(4, affine=False)

    def inputs(self, rng):
        return [rng.standard_normal((5, 4))]

    def expected(self, layer, x):
        return batch_norm_reference(x, 1.0, 0.0, layer.eps)


class TestDropout(LayerCase):
    seed = 3

    def make_layer(self):
        return nn.Dropout(0.3)

    def inputs(self, rng):
        return [rng.standard_normal((4, 5))]

    def expected(self, layer, x):
        return x * bernoulli_mask(x.shape, 0.7) / 0.7


class TestReLU(LayerCase):
    def make_layer(self):
        return nn.ReLU()

    def inputs(self, rng):
        x = rng.standard_normal((3, 4))
        return [np.where(np.abs(x) < 1e-3, 0.5, x)]  # away from the kink

    def expected(self, layer, x):
        return np.maximum(x, 0)


class TestLeakyReLU(TestReLU):
    def make_layer(self):
        return nn.LeakyReLU(0.2)

    def expected(self, layer, x):
        return np.where(x > 0, x, 0.2 * x)


class TestELU(TestReLU):
    def make_layer(self):
        return nn.ELU(0.5)

    def expected(self, layer, x):
        return np.where(x > 0, x, 0.5 * (np.exp(x) - 1))


class TestSiLU(TestReLU):
    def make_layer(self):
        return nn.SiLU()

    def expected(self, layer, x):
        return x / (1 + np.exp(-x))


class TestSoftplus(TestReLU):
    def make_layer(self):
        return nn.Softplus(beta=2.0, threshold=3.0)

    def inputs(self, rng):
        x = rng.standard_normal((3, 4)) * 2
        return [np.where(np.abs(x - 1.5) < 1e-3, 0.5, x)]  # away from beta x = threshold

    def expected(self, layer, x):
        return np.where(2 * x > 3, x, np.log(1 + np.exp(2 * x)) / 2)


class TestGELUTanh(TestReLU):
    def make_layer(self):
        return nn.GELU(approximate="tanh")

    def expected(self, layer, x):
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


class TestGELU(TestReLU):
    def make_layer(self):
        return nn.GELU()

    def expected(self, layer, x):
        # Phi by the integral of the normal density (Gauss-Legendre): independent of nnet's erf
        nodes, weights = np.polynomial.legendre.leggauss(80)
        t = (nodes[:, None, None] + 1) / 2 * x  # [0, x] for each element
        density = np.exp(-t * t / 2) / np.sqrt(2 * np.pi)
        return x * (0.5 + (weights[:, None, None] * density).sum(0) * x / 2)


class TestSigmoid(LayerCase):
    def make_layer(self):
        return nn.Sigmoid()

    def inputs(self, rng):
        return [rng.standard_normal((3, 4)) * 3]

    def expected(self, layer, x):
        return 1 / (1 + np.exp(-x))


class TestTanh(TestSigmoid):
    def make_layer(self):
        return nn.Tanh()

    def expected(self, layer, x):
        return np.tanh(x)


class TestSoftmax(TestSigmoid):
    def make_layer(self):
        return nn.Softmax(axis=0)

    def expected(self, layer, x):
        e = np.exp(x - x.max(axis=0))
        return e / e.sum(axis=0)


class TestLogSoftmax(TestSigmoid):
    def make_layer(self):
        return nn.LogSoftmax()

    def expected(self, layer, x):
        return (
            x
            - x.max(-1, keepdims=True)
            - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True))
        )


class TestFlatten(TestSigmoid):
    def make_layer(self):
        return nn.Flatten()

    def inputs(self, rng):
        return [rng.standard_normal((2, 3, 2, 2))]

    def expected(self, layer, x):
        return x.reshape(2, -1)


class TestSmallCNN(LayerCase):
    """A whole seed-style network: the composition is differentiable end to end."""

    def make_layer(self):
        return nn.Sequential(
            nn.Conv2d(1, 2, 3),
            nn.BatchNorm2d(2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * 2 * 2, 3),
        )

    def inputs(self, rng):
        return [rng.standard_normal((2, 4, 4, 1))]

    def expected(self, layer, x):
        conv, bn, _, _, _, fc = layer
        y = reference.conv2d(x, conv.weight.numpy(), conv.bias.numpy(), pads=((1, 1), (1, 1)))
        y = np.maximum(batch_norm_reference(y, bn.weight.numpy(), bn.bias.numpy(), bn.eps), 0)
        y = reference.pool2d(y, (2, 2), (2, 2), (0, 0), np.max, -np.inf)
        return y.reshape(2, -1) @ fc.weight.numpy() + fc.bias.numpy()


@pytest.mark.parametrize("layer", [nn.Sigmoid(), nn.ReLU(), nn.Identity(), nn.Flatten()])
def test_parameterless_layers_have_no_state(layer):
    assert list(layer.parameters()) == [] and layer.state_dict() == {}


def test_default_init_is_uniform_in_one_over_sqrt_fan_in():
    nnet.manual_seed(0)
    lin = nn.Linear(100, 50)
    conv = nn.Conv2d(8, 16, 3)
    for w, fan_in in ((lin.weight, 100), (lin.bias, 100), (conv.weight, 72), (conv.bias, 72)):
        bound = 1 / np.sqrt(fan_in)
        assert np.abs(w.numpy()).max() <= bound
        assert np.abs(w.numpy()).max() > 0.9 * bound
