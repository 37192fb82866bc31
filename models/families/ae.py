"""Convolutional autoencoder (deterministic): ``models/ae.py``; exports the decoder (with a
sigmoid) as the generator and the encoder."""

from __future__ import annotations

from typing import ClassVar

from contract import signature
from models.registry import Evaluation, EvaluationContext, Family, ModelSpec, register


@register
class AutoEncoder(Family):
    name = "ae"
    order = 5
    summary = "convolutional autoencoder, reconstruction loss only; a poor sampler (docs/usage.md says why)"
    description = "convolutional autoencoder, deterministic, reconstruction loss only"
    value_range = "unit"
    primary_metric = "fid"
    validates = True
    mixed_precision = True
    defaults: ClassVar[dict] = {"latent_dim": 32, "learning_rate": 1e-3, "width": 32}

    def build_model(self, spec: ModelSpec, options, learning_rate):
        import keras

        from models import ae

        model = ae.AutoEncoder(
            ae.build_encoder(spec.image_shape, spec.latent_dim, spec.width),
            ae.build_decoder(spec.latent_dim, spec.image_shape, spec.width),
            spec.latent_dim,
        )
        model.compile(optimizer=keras.optimizers.Adam(learning_rate))
        return model

    def signatures(self, spec: ModelSpec) -> dict:
        return {
            "generator": signature.generator(spec.latent_dim, spec.image_shape),
            "encoder": signature.encoder(spec.image_shape, spec.latent_dim, ("z",)),
        }

    def export_networks(self, model) -> dict:
        return {"generator": model.generator, "encoder": model.encoder}

    def evaluate(self, context: EvaluationContext) -> Evaluation:
        """Test reconstruction loss, nats per image on grey levels."""
        scores = context.load_model().evaluate(context.load_test_images(), batch_size=500, verbose=0, return_dict=True)
        return Evaluation({"test_reconstruction_loss": float(scores["loss"])})
