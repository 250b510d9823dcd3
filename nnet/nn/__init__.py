"""Neural-network layers built from nnet's primitives, PyTorch's names, the seed's NHWC layouts.

>>> import nnet
>>> from nnet import nn
>>> model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
...                       nn.Linear(8 * 14 * 14, 10))
>>> model(nnet.zeros((2, 28, 28, 1))).shape
(2, 10)
"""

from nnet.nn import chains, functional, init, utils
from nnet.nn.activation import (
    ELU,
    GELU,
    Flatten,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from nnet.nn.containers import Identity, ModuleDict, ModuleList, Sequential
from nnet.nn.conv import Conv2d
from nnet.nn.dropout import Dropout
from nnet.nn.linear import Linear
from nnet.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
)
from nnet.nn.module import Module, Parameter
from nnet.nn.normalization import BatchNorm1d, BatchNorm2d
from nnet.nn.pooling import AvgPool2d, MaxPool2d

__all__ = [
    "ELU",
    "GELU",
    "AvgPool2d",
    "BCELoss",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "Identity",
    "L1Loss",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "ModuleDict",
    "ModuleList",
    "NLLLoss",
    "Parameter",
    "ReLU",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "functional",
    "init",
    "utils",
]
