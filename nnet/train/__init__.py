"""The main job, ``nnet train``: models, data, the training loop, checkpoints and the CLI."""
