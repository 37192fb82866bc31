"""The contract beneath ``models/``, ``export/``, ``serving/`` and ``pipeline/``: a generator's
signature (``signature``), its model card (``card``), the latent and picture helpers
(``images``) and the file helpers (``files``). TensorFlow-free and MLflow-free; it imports nothing
from the project's other packages."""
