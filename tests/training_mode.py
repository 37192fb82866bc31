"""What a training step does to the layers whose behaviour depends on Keras's training mode.

In Keras 3 a network called inside a custom ``train_step`` without ``training=True`` runs in
inference mode: BatchNormalization normalizes by its moving statistics and never updates them,
Dropout passes everything through. ``record_modes`` lets a test see, for every such layer, the
training flag each call received, and ``moving_statistics`` what the step did to the statistics.
"""

from __future__ import annotations

import keras
import numpy as np

MODAL = (keras.layers.BatchNormalization, keras.layers.Dropout)


def modal_layers(model) -> list:
    """Every BatchNormalization and Dropout layer inside ``model`` (nested networks included)."""
    return [layer for layer in model._flatten_layers(include_self=False) if isinstance(layer, MODAL)]


def record_modes(model) -> dict[int, list]:
    """Wrap each modal layer's ``call`` so the training flag of every call (as Keras resolves it
    from the argument or the outer call) is recorded: {id(layer): [flag, ...]}. Install before the
    step is traced."""
    seen: dict[int, list] = {}
    for layer in modal_layers(model):
        calls = seen.setdefault(id(layer), [])
        original = layer.call

        def call(*args, _original=original, _calls=calls, **kwargs):
            _calls.append(bool(kwargs.get("training", False)))
            return _original(*args, **kwargs)

        object.__setattr__(layer, "call", call)
    return seen


def moving_statistics(model) -> dict[int, list[np.ndarray]]:
    """{id(layer): [moving_mean, moving_variance]} of every BatchNormalization inside ``model``."""
    return {
        id(layer): [layer.moving_mean.numpy(), layer.moving_variance.numpy()]
        for layer in modal_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization)
    }


def unmoved(before: dict, after: dict) -> list[int]:
    """The BatchNormalization layers (ids) whose mean or variance is the same after as before."""
    return [key for key in before if any(np.array_equal(a, b) for a, b in zip(before[key], after[key]))]
