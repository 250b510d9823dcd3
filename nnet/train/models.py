"""The main job's models: the seed's CNN and a one-hidden-layer MLP, sized from the input."""

from __future__ import annotations

from nnet import nn

MODELS = ("seed-cnn", "mlp")


def seed_cnn(input_shape: tuple[int, int, int], num_classes: int = 10) -> nn.Module:
    """conv3x3(4)-relu-maxpool2-bn, conv3x3(8)-relu-maxpool2-bn, flatten, linear, relu,
    dropout 0.5, linear: the seed library's MNIST network (NHWC input ``(H, W, C)``).

    The hidden width is half the flattened size, 7*7*4 = 196 for 28x28 images, as in the seed.

    >>> from nnet.train.models import seed_cnn
    >>> seed_cnn((28, 28, 1))[-4]
    Linear(in_features=392, out_features=196, bias=True)
    """
    h, w, c = input_shape
    if h < 4 or w < 4:
        raise ValueError(f"seed-cnn needs images of at least 4x4 pixels, got {h}x{w}")
    flat = (h // 2 // 2) * (w // 2 // 2) * 8
    return nn.Sequential(
        nn.Conv2d(c, 4, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(4),
        nn.Conv2d(4, 8, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(8),
        nn.Flatten(),
        nn.Linear(flat, flat // 2),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(flat // 2, num_classes),
    )


def mlp(input_shape: tuple[int, int, int], num_classes: int = 10, hidden: int = 256) -> nn.Module:
    """flatten, linear -> ``hidden``, relu, linear -> classes (784-256-10 on MNIST)."""
    h, w, c = input_shape
    return nn.Sequential(
        nn.Flatten(), nn.Linear(h * w * c, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
    )


def build_model(name: str, input_shape: tuple[int, int, int], num_classes: int = 10) -> nn.Module:
    """The model called ``name`` (one of :data:`MODELS`) for inputs of ``input_shape``."""
    if name == "seed-cnn":
        return seed_cnn(input_shape, num_classes)
    if name == "mlp":
        return mlp(input_shape, num_classes)
    raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
