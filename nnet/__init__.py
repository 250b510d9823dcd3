"""nnet: reverse-mode automatic differentiation over NumPy arrays, with PyTorch-style layers.

>>> import nnet
>>> w = nnet.tensor([[1.0, 2.0]], requires_grad=True)
>>> loss = (w * w).sum()
>>> loss.backward()
>>> w.grad
Tensor([[2., 4.]], dtype=float32)
"""

# first: it must run before NumPy loads OpenBLAS
from nnet import _openblas

# isort: split
import numpy as _np

from nnet import data, datasets, distributed, linalg, loss, memory, nn, optim, random, threads, viz
from nnet.autograd import (
    Function,
    Tensor,
    enable_grad,
    grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from nnet.autograd.defaults import get_default_dtype, set_default_dtype
from nnet.autograd.factories import (
    allclose,
    arange,
    eye,
    from_numpy,
    full,
    linspace,
    ones,
    ones_like,
    rand,
    randn,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from nnet.autograd.ops import (
    abs,
    add,
    amax,
    amin,
    argmax,
    argmin,
    argsort,
    broadcast_to,
    cat,
    chunk,
    clamp,
    clip,
    col2im,
    concatenate,
    cos,
    cumprod,
    cumsum,
    diag,
    diagonal,
    divide,
    dot,
    einsum,
    elu,
    erf,
    exp,
    expand_dims,
    expm1,
    flatten,
    flip,
    gather,
    gelu,
    leaky_relu,
    log,
    log1p,
    log_softmax,
    logaddexp,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    multiply,
    negative,
    outer,
    pad,
    permute,
    power,
    prod,
    relu,
    repeat_interleave,
    reshape,
    roll,
    scatter_add,
    sigmoid,
    silu,
    sin,
    sliding_windows,
    softmax,
    softplus,
    sort,
    split,
    sqrt,
    square,
    squeeze,
    stack,
    std,
    subtract,
    sum,
    swapaxes,
    take_along_axis,
    tan,
    tanh,
    tensordot,
    tile,
    topk,
    trace,
    transpose,
    tril,
    triu,
    unsqueeze,
    var,
    where,
)
from nnet.devices import device
from nnet.random import manual_seed
from nnet.serialization import load, save
from nnet.teaching import is_teaching, set_teaching, teaching
from nnet.threads import get_num_threads, set_num_threads

float32 = _np.float32
float64 = _np.float64
# PyTorch's dtype names, as NumPy's scalar types (what nnet's dtype= arguments take)
float = _np.float32
double = _np.float64
float16 = half = _np.float16
int8, uint8 = _np.int8, _np.uint8
int16 = short = _np.int16
int32 = int = _np.int32
int64 = long = _np.int64
bool = _np.bool_
complex64 = cfloat = _np.complex64
complex128 = cdouble = _np.complex128

memory._at_import()
threads.apply_environment()

__version__ = "0.1.0"
