"""The textbook peer (bench/peer.py) trains as Géron's chapter 17 trains it: one step equals the
book's own calls, its generator's batch norm learns batch statistics and its discriminator's
dropout is on while it trains, with RMSprop at Keras's defaults at the book's batch size."""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import peer  # noqa: E402
from tests.training_mode import modal_layers, moving_statistics, record_modes, unmoved  # noqa: E402

BATCH = peer.BATCH_SIZE


def _without_dropout(network):
    for layer in network.layers:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0  # dropout's random masks cannot be matched between two runs
    return network


def _twin(network):
    twin = keras.models.clone_model(network)
    twin.set_weights(network.get_weights())
    return twin


def test_one_step_equals_the_books_train_gan_calls():
    keras.utils.set_random_seed(0)
    model = peer.PeerDCGAN()
    model.compile()
    _without_dropout(model.discriminator)
    # the book: both compiled with binary cross-entropy and RMSprop, D frozen inside the GAN
    generator, discriminator = _twin(model.generator), _without_dropout(_twin(model.discriminator))
    gan = keras.Sequential([generator, discriminator])
    discriminator.compile(loss="binary_crossentropy", optimizer="rmsprop")
    discriminator.trainable = False
    gan.compile(loss="binary_crossentropy", optimizer="rmsprop")
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (BATCH, 28, 28, 1)).astype(np.float32)
    noise_1, noise_2 = (rng.standard_normal((BATCH, peer.LATENT_DIM)).astype(np.float32) for _ in range(2))
    for _ in range(2):  # the second step starts from moved batch-norm statistics and optimizer slots
        generated_images = generator(noise_1)
        discriminator.trainable = True
        y1 = tf.constant([[0.0]] * BATCH + [[1.0]] * BATCH)
        d_loss = discriminator.train_on_batch(tf.concat([generated_images, real], 0), y1)
        discriminator.trainable = False
        g_loss = gan.train_on_batch(noise_2, tf.constant([[1.0]] * BATCH))
        ours = tf.function(model.book_step)(real, noise_1, noise_2)
        np.testing.assert_allclose([float(v) for v in ours], [d_loss, g_loss], rtol=1e-5)
    book = generator.weights + discriminator.weights
    for mine, theirs in zip(model.generator.weights + model.discriminator.weights, book, strict=True):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), atol=1e-6, err_msg=mine.path)
    assert not np.allclose(model.generator.weights[0].numpy(), _twin(peer.build_generator()).weights[0].numpy())


def test_fit_trains_in_training_mode_with_the_books_optimizer_and_batch():
    keras.utils.set_random_seed(0)
    model = peer.PeerDCGAN()
    model.compile()
    assert isinstance(model.d_optimizer, keras.optimizers.RMSprop)
    assert isinstance(model.g_optimizer, keras.optimizers.RMSprop)
    for optimizer in (model.d_optimizer, model.g_optimizer):  # Keras's defaults, as "rmsprop" compiles
        assert optimizer.get_config() == {**keras.optimizers.RMSprop().get_config(), "name": optimizer.name}
    assert float(model.g_optimizer.learning_rate) == pytest.approx(1e-3)
    modes = record_modes(model)
    before = moving_statistics(model)
    real = np.random.default_rng(0).uniform(-1, 1, (BATCH, 28, 28, 1)).astype(np.float32)
    model.fit(tf.data.Dataset.from_tensors(real).repeat(), steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)
    assert not unmoved(before, moving_statistics(model)), "the generator's batch norm learned no statistics"
    # flags are recorded as the step is traced (once or more): per trace, phase 1 then phase 2
    for layer in modal_layers(model.generator):  # phase 1 as printed (inference), phase 2 training
        calls = modes[id(layer)]
        assert calls and calls == [False, True] * (len(calls) // 2), layer.path
    for layer in modal_layers(model.discriminator):  # dropout on in both phases
        calls = modes[id(layer)]
        assert calls and all(calls) and len(calls) % 2 == 0, layer.path
    dropout = modal_layers(model.discriminator)[0]
    assert dropout.rate == 0.4


def test_the_peer_trains_at_the_books_batch_size():
    from bench.equal_time import batch_size_of

    assert batch_size_of("peer-dcgan", 64) == BATCH == 32
    assert batch_size_of("peer-dcgan+batch_size=64", 32) == 64
