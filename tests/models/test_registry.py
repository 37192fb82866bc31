"""The family registry, typed options, ModelSpec and signatures: the contracts the stages rely on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from contract import images, signature
from models import registry
from models.registry import Family, ModelSpec, Options, option
from pipeline.config import Config
from pipeline.errors import UserError


def test_a_model_json_of_an_older_layout_is_refused_with_the_retrain_command():
    # What the train stage wrote before per-family options: a "gan" dict with "loss", no width.
    old = {
        "model": "dcgan",
        "latent_dim": 6,
        "image_shape": [28, 28, 1],
        "value_range": "tanh",
        "dataset": "fashion_mnist",
        "dataset_version": "3.0.1",
        "class_names": [str(i) for i in range(10)],
        "gan": {"loss": "lsgan", "critic_steps": 1, "minibatch_std": False, "ema": 0.0},
        "learning_rate": 2e-4,
        "seed": 0,
    }
    with pytest.raises(ValueError) as refused:
        ModelSpec.from_dict(old)
    assert "lacks options, width, network_version" in str(refused.value)
    assert str(refused.value).endswith("retrain it: latentforge train --model dcgan")
    spec = registry.model_spec("dcgan", image_shape=(28, 28, 1), latent_dim=6, learning_rate=2e-4, seed=0)
    for layout in (1, 2, 3, 4):  # the DCGAN's earlier layouts are no longer built
        older = ModelSpec.from_dict({**spec.to_dict(), "network_version": layout})
        with pytest.raises(ValueError, match=f"network layout {layout}, which this latentforge no longer builds"):
            registry.get("dcgan").build(older)


def _kernel_sizes(model):
    """(G's convolution layer types, G's kernel sizes, D's kernel sizes), input to output."""
    import keras

    def convolutions(network):
        kinds = (keras.layers.Conv2D, keras.layers.Conv2DTranspose)
        return [layer for layer in network.layers if isinstance(layer, kinds)]

    g, d = convolutions(model.generator), convolutions(model.discriminator)
    kinds = [type(layer).__name__ for layer in g]
    return kinds, [layer.kernel_size[0] for layer in g], [layer.kernel_size[0] for layer in d]


def test_new_models_record_the_network_layout_and_kernel_sizes():
    options = {"kernel_size": 5, "d_kernel_size": 4, "image_kernel_size": 3}
    spec = registry.model_spec(
        "dcgan", image_shape=(28, 28, 1), latent_dim=6, learning_rate=2e-4, seed=0, options=options
    )
    assert spec.network_version == registry.get("dcgan").network_version == 5
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    model = registry.get("dcgan").build(spec)
    kinds, g_kernels, d_kernels = _kernel_sizes(model)
    # version 5: two transposed convolutions, the last one makes the image; the layers on pixels
    # (G's last, D's first) have image_kernel_size
    assert kinds == ["Conv2DTranspose", "Conv2DTranspose"]
    assert g_kernels == [5, 3] and d_kernels == [3, 4]
    assert model.generator.output.shape[1:] == (28, 28, 1)
    default = registry.get("dcgan").build(
        registry.model_spec("dcgan", image_shape=(28, 28, 1), latent_dim=6, learning_rate=2e-4, seed=0)
    )
    assert _kernel_sizes(default)[1:] == ([3, 7], [7, 3])  # the DCGAN's 7x7 layers on pixels
    conditional = registry.get("cdcgan").build(
        registry.model_spec("cdcgan", image_shape=(28, 28, 1), latent_dim=6, learning_rate=2e-4, seed=0)
    )
    assert _kernel_sizes(conditional)[1:] == ([3, 5], [5, 3])  # the cDCGAN keeps the recipe it was measured with


def test_an_option_name_with_another_meaning_is_refused():
    @dataclass(frozen=True)
    class Clashing(Options):
        gan_loss: int = option(3, "not the GAN loss")

    class Other(Family):
        name = "clashing"
        options = Clashing

    with pytest.raises(ValueError, match="gan_loss.*means something else"):
        registry.register(Other)
    assert "clashing" not in registry.names()


def test_another_familys_option_at_its_default_is_ignored_and_otherwise_refused():
    assert Config.from_dict({"model": "vae", "gan_loss": "ns", "minibatch_std": "0"}).model == "vae"
    with pytest.raises(UserError, match="gan_loss apply to GAN models"):
        Config.from_dict({"model": "vae", "gan_loss": "hinge"})
    assert Config.from_dict({"minibatch_std": "1.0"}).options.minibatch_std is True
    with pytest.raises(UserError, match="minibatch_std must be 0 or 1"):
        Config.from_dict({"minibatch_std": "yes please"})


def test_the_seed_stands_for_the_primary_latent_wherever_it_sits():
    noise = signature.TensorSpec("noise", (4,), "noise")
    z = signature.TensorSpec("z", (4,), "latent")
    feed = signature.default_feed((noise, z), 3, seed=7)
    np.testing.assert_array_equal(feed["z"], images.latents(7, 3, 4))
    assert not np.array_equal(feed["noise"], feed["z"])


def test_coerce_broadcasts_one_value_and_checks_bounds_and_classes():
    psi = signature.TensorSpec("psi", (), "truncation", default={"kind": "constant", "value": 1.0}, bounds=(0, 1))
    np.testing.assert_array_equal(signature.coerce(psi, 0.5, 3), np.full(3, 0.5, np.float32))
    noise = signature.TensorSpec("noise", (2,), "noise")
    assert signature.coerce(noise, 0.0, 3).shape == (3, 2)
    with pytest.raises(ValueError, match="'psi' must be between 0 and 1"):
        signature.coerce(psi, 1.5, 3)
    label = signature.TensorSpec("label", (), "label", "int32", {"kind": "classes", "classes": 10})
    with pytest.raises(ValueError, match="takes integers"):
        signature.coerce(label, 2.5, 3)
    with pytest.raises(ValueError, match="between 0 and 9"):
        signature.coerce(label, 10, 3)
