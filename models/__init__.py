"""Keras 3 generative models: networks, training models (custom ``train_step``) and losses.

Nothing here touches MLflow, files or the command line.
"""
