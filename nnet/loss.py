"""The seed library's loss names, kept so its code reads the same: `MSELoss`, `BCELoss` and `CELoss`
(cross-entropy on logits; the seed fed it one-hot targets, and class indices work too).

>>> import nnet
>>> from nnet.loss import CELoss
>>> from nnet.nn.math import onehot
>>> round(CELoss()(nnet.tensor([[0.0, 0.0]]), onehot([1], 2)).item(), 4)
0.6931
"""

from nnet.nn.loss import BCELoss, CrossEntropyLoss, MSELoss

CELoss = CrossEntropyLoss

__all__ = ["BCELoss", "CELoss", "MSELoss"]
