"""Turn trained networks into deployable files: SavedModel, ONNX, a parity report, a model card.

Nothing here imports MLflow.
"""
