"""Every primitive and its public function, gathered in one namespace."""

from nnet.autograd.activation import Relu, Sigmoid, Tanh, relu, sigmoid, tanh
from nnet.autograd.compare import Compare, compare
from nnet.autograd.contract import dot, einsum, outer, tensordot
from nnet.autograd.elementwise import (
    Abs,
    Add,
    AsType,
    Clip,
    Div,
    Exp,
    Log,
    Maximum,
    Minimum,
    Mul,
    Neg,
    Pow,
    Sqrt,
    Sub,
    Where,
    abs,
    add,
    astype,
    clamp,
    clip,
    divide,
    exp,
    log,
    maximum,
    minimum,
    multiply,
    negative,
    power,
    sqrt,
    subtract,
    where,
)
from nnet.autograd.extrema import ValuesIndices, amax, amin, argmax, argmin, max, min
from nnet.autograd.indexing import (
    SortResult,
    argsort,
    gather,
    scatter_add,
    sort,
    take_along_axis,
    topk,
)
from nnet.autograd.linalg import MatMul, matmul
from nnet.autograd.linalg_ops import Det, Inv, Solve
from nnet.autograd.matrix import diag, diagonal, trace, tril, triu
from nnet.autograd.rearrange import chunk, flip, repeat, repeat_interleave, roll, split, tile
from nnet.autograd.reduction import (
    LogSoftmax,
    LogSumExp,
    Max,
    Mean,
    Min,
    Softmax,
    Sum,
    Var,
    log_softmax,
    logsumexp,
    mean,
    softmax,
    std,
    sum,
    var,
)
from nnet.autograd.scan import Cumprod, Cumsum, Prod, cumprod, cumsum, prod
from nnet.autograd.shape import (
    BroadcastTo,
    Concatenate,
    GetItem,
    Pad,
    Reshape,
    ScatterAdd,
    Stack,
    Transpose,
    broadcast_to,
    cat,
    concatenate,
    expand_dims,
    flatten,
    getitem,
    pad,
    permute,
    reshape,
    reverse_axes,
    shape_arg,
    squeeze,
    stack,
    swapaxes,
    transpose,
    unsqueeze,
)
from nnet.autograd.shape import _axis as shape_axis
from nnet.autograd.special import (
    Erf,
    Expm1,
    Log1p,
    LogAddExp,
    Softplus,
    elu,
    erf,
    expm1,
    gelu,
    leaky_relu,
    log1p,
    logaddexp,
    silu,
    softplus,
    square,
)
from nnet.autograd.trig import Cos, Sin, Tan, cos, sin, tan
from nnet.autograd.window import Col2Im, SlidingWindows, col2im, sliding_windows

#: The primitives, each a Function subclass with a hand-written VJP (docs/derivations.md has one
#: section per entry; a test keeps the two in step).
PRIMITIVES = (
    Add, Sub, Neg, Mul, Div, Pow, Exp, Log, Sqrt, Abs, Sigmoid, Tanh, Relu, Maximum, Minimum, Clip,
    Where, AsType, Sum, Mean, Var, Max, Min, LogSumExp, Softmax, LogSoftmax, MatMul, Reshape,
    Transpose, BroadcastTo, GetItem, ScatterAdd, Concatenate, Stack, Pad, SlidingWindows, Col2Im,
    Sin, Cos, Tan, Log1p, Expm1, Erf, Softplus, LogAddExp, Cumsum, Cumprod, Inv, Solve, Det,
    Prod,
)  # fmt: skip

__all__ = [name for name in dir() if not name.startswith("_")]
