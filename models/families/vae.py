"""VAE (Kingma & Welling 2013): ``models/vae.py``'s encoder, decoder and ELBO training; exports
the decoder as the generator and the encoder; measured by its likelihood on the test split."""

from __future__ import annotations

from typing import ClassVar

from contract import signature
from models.registry import Evaluation, EvaluationContext, Family, ModelSpec, NoOptions, register


@register
class Vae(Family):
    name = "vae"
    order = 4
    summary = "convolutional VAE (Kingma & Welling 2013), Bernoulli decoder on dynamically binarized images"
    description = (
        "convolutional VAE (Kingma & Welling 2013), Bernoulli decoder, trained on dynamically binarized images"
    )
    options = NoOptions
    value_range = "unit"
    primary_metric = "test_iwae_nll"
    binarized = True
    validates = True
    mixed_precision = True
    defaults: ClassVar[dict] = {"latent_dim": 32, "learning_rate": 1e-3, "width": 32}

    def build_model(self, spec: ModelSpec, options, learning_rate):
        import keras

        from models import vae

        model = vae.VAE(
            # two convolutions per resolution and 512 hidden units: measured to reach a better
            # likelihood bound per CPU-second than the AE's single-conv networks
            vae.build_encoder(spec.image_shape, spec.latent_dim, spec.width, hidden=512, blocks=2),
            vae.build_decoder(spec.latent_dim, spec.image_shape, spec.width, hidden=512, blocks=2),
            latent_dim=spec.latent_dim,
            seed=spec.seed,
        )
        model.compile(optimizer=keras.optimizers.Adam(learning_rate))
        return model

    def signatures(self, spec: ModelSpec) -> dict:
        return {
            "generator": signature.generator(spec.latent_dim, spec.image_shape),
            "encoder": signature.encoder(spec.image_shape, spec.latent_dim, ("z_mean", "z_log_var")),
        }

    def export_networks(self, model) -> dict:
        return {"generator": model.generator, "encoder": model.encoder}

    def evaluate(self, context: EvaluationContext) -> Evaluation:
        """Test negative ELBO (= reconstruction + KL) and the IWAE bound with ``iwae_k`` samples,
        in nats per image (``iwae_examples`` test images; 0 = all)."""
        import numpy as np

        config = context.config
        model, images = context.load_model(), context.load_test_images()
        images = images[: config.iwae_examples] if config.iwae_examples else images
        scores = model.evaluate(images, batch_size=500, verbose=0, return_dict=True)
        bounds = np.concatenate(
            [np.asarray(model.iwae_nll(images[i : i + 100], config.iwae_k)) for i in range(0, len(images), 100)]
        )
        test = {f"test_{name}": float(v) for name, v in scores.items()}
        return Evaluation({**test, "test_iwae_nll": float(bounds.mean())})

    def protocol(self, config) -> str:
        return f";iwae_k={config.iwae_k};test={config.iwae_examples or 'all'};binarized-seed0"
