"""Helpers around modules and training: gradient clipping, regularisation terms, and PyTorch
state-dict interchange."""

from nnet.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_
from nnet.nn.utils.penalty import l1_penalty, l2_penalty
from nnet.nn.utils.torch_io import export_torch_state_dict, import_torch_state_dict

__all__ = [
    "clip_grad_norm_",
    "clip_grad_value_",
    "export_torch_state_dict",
    "import_torch_state_dict",
    "l1_penalty",
    "l2_penalty",
]
