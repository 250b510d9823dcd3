"""``nnet.linalg``: PyTorch's and NumPy's linear-algebra names (norm, inv, solve, det), differentiable.

>>> import nnet
>>> a = nnet.tensor([[2.0, 1.0], [1.0, 3.0]], requires_grad=True)
>>> nnet.linalg.det(a).backward()
>>> a.grad.numpy()
array([[ 3., -1.],
       [-1.,  2.]], dtype=float32)
"""

from nnet.autograd.linalg_ops import det, inv, norm, solve

__all__ = ["det", "inv", "norm", "solve"]
