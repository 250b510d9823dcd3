"""Helpers around modules and training: gradient clipping and regularisation terms."""

from nnet.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_
from nnet.nn.utils.penalty import l1_penalty, l2_penalty

__all__ = ["clip_grad_norm_", "clip_grad_value_", "l1_penalty", "l2_penalty"]
