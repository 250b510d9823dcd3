"""Tools for testing code built on nnet: numerical gradient checks and hypothesis strategies.

:mod:`nnet.testing.gradcheck` needs only NumPy. :mod:`nnet.testing.strategies` needs hypothesis
(``pip install "nnet[test]"``) and is imported on its own: ``from nnet.testing import strategies``.
"""

from nnet.testing.check_model import CheckModelError, ModelCheck, check_model
from nnet.testing.gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = [
    "CheckModelError",
    "GradcheckError",
    "ModelCheck",
    "check_model",
    "gradcheck",
    "gradgradcheck",
]
