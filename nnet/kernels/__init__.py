"""Kernels: fast functions that compute what a composition of primitives computes, each one entry
of the registry (registry.py) with that composition as its oracle (compositions.py).

The layer sits between the engine (:mod:`nnet.autograd`) and the layers (:mod:`nnet.nn`): a layer
asks :func:`registry.run` for its layers, which runs the first entry that applies, else the
composition; :func:`use_fused` (on by default) turns every kernel off. docs/kernels.md has the table
of entries, generated from the registry.
"""

from nnet.kernels.batchnorm import BatchNorm, BatchStats
from nnet.kernels.bnpool import BatchNormReluPool
from nnet.kernels.channels import per_channel
from nnet.kernels.conv import Conv2d
from nnet.kernels.convbn import ConvBatchNormReluPool, WinogradBatchNormReluPool
from nnet.kernels.convpoolbn import ConvReluPoolBatchNorm
from nnet.kernels.convrelu import ConvReluBatchNormPool, ConvReluPool
from nnet.kernels.crossentropy import SoftmaxCrossEntropy
from nnet.kernels.fewpool import FewChannelConvReluPool
from nnet.kernels.im2col import Col2ImPadded, Geometry, Im2Col, geometry
from nnet.kernels.linear import Linear
from nnet.kernels.mode import is_fused_enabled, use_fused
from nnet.kernels.pool import MaxPool2d, MaxPool2dBackward
from nnet.kernels.registry import REGISTRY, Kernel, run, select

#: The primitives the kernels record that are not a registry entry's node: the pieces their
#: recorded VJPs are made of, each with its own gradient tests in tests/kernels.
HELPERS = (MaxPool2dBackward, Im2Col, Col2ImPadded)

#: Every primitive of this layer (docs/derivations.md has a section per entry, like PRIMITIVES).
FUSED = (
    tuple(
        dict.fromkeys(
            k.node
            for k in REGISTRY
            if k.node is not None and k.node.__module__.startswith("nnet.kernels")
        )
    )
    + HELPERS
)

__all__ = [
    "FUSED",
    "HELPERS",
    "REGISTRY",
    "BatchNorm",
    "BatchNormReluPool",
    "BatchStats",
    "Col2ImPadded",
    "Conv2d",
    "ConvBatchNormReluPool",
    "ConvReluBatchNormPool",
    "ConvReluPool",
    "ConvReluPoolBatchNorm",
    "FewChannelConvReluPool",
    "Geometry",
    "Im2Col",
    "Kernel",
    "Linear",
    "MaxPool2d",
    "MaxPool2dBackward",
    "SoftmaxCrossEntropy",
    "WinogradBatchNormReluPool",
    "geometry",
    "is_fused_enabled",
    "per_channel",
    "run",
    "select",
    "use_fused",
]
