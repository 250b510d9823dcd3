"""Optimizers (``SGD``, ``Adam``, ``AdamW``, ``RMSprop``, ``Adagrad``) and learning-rate schedules.

Each updates its parameters' arrays in place, without recording a graph; the update rules are
written out in docs/optim.md.
"""

from nnet.optim import lr_scheduler
from nnet.optim.adagrad import Adagrad
from nnet.optim.adam import Adam, AdamW
from nnet.optim.optimizer import Optimizer
from nnet.optim.rmsprop import RMSprop
from nnet.optim.sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler"]
