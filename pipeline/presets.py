"""Named, tested configurations: ``-P preset=<name>`` (or ``--preset``) picks one; any field
given as well overrides the preset's value. ``--dry-run`` prints the resolved config."""

from __future__ import annotations

PRESETS: dict[str, dict] = {
    "dcgan-fashion": {"model": "dcgan", "epochs": 2},  # the family's batch size
    "gan-fashion": {"model": "gan", "epochs": 4, "batch_size": 64},
    "wgan-gp-fashion": {"model": "dcgan", "gan_loss": "wgan-gp", "epochs": 2, "batch_size": 64, "learning_rate": 2e-4},
    "dcgan-fixes-fashion": {
        "model": "dcgan",
        "epochs": 2,
        "batch_size": 64,
        "replay": 6400,
        "minibatch_std": 1,
        "ema": 0.999,
    },
    "cdcgan-fashion": {"model": "cdcgan", "epochs": 2, "batch_size": 64},
    "vae-fashion": {
        "model": "vae",
        "epochs": 100,
        "latent_dim": 64,
        "width": 48,
        "batch_size": 64,
        "lr_schedule": "cosine",
        # float32: bfloat16 compute is emulated, and far slower, on a CPU without native bfloat16
        # (bench/train_speed.py measures vae-fashion against vae-fashion+precision=float32)
    },
    "ae-fashion": {"model": "ae", "epochs": 2, "batch_size": 64},
    # StyleGAN at the family's width 16, batch 32: on a CPU batch 32 takes about twice the steps
    # of batch 64 in the same seconds. How this preset scores against the DCGAN and ProGAN at equal
    # training time: docs/results.md#dcgan-progressive-growing-and-stylegan-at-equal-training-time
    "stylegan-fashion": {"model": "stylegan", "epochs": 20, "batch_size": 32},
    "progan-fashion": {"model": "progan", "epochs": 8, "batch_size": 64},
    # Google's Noto emoji at 64x64 RGB (pipeline/emoji.py; fetched on first use), 3,781 images:
    # small enough that the discriminator memorises them, so the GANs augment what it sees.
    "dcgan-emoji": {"model": "dcgan", "dataset": "emoji", "epochs": 20, "augment": "diffaugment"},
    # StyleGAN's 30 epochs are about the steps it had taken at the emoji study's 2 T checkpoint, where
    # its median FID was lowest; at 4 T it was higher (docs/results.md#emoji-at-6464-stylegan-dcgan-
    # and-the-keras-io-ada-peer-at-equal-training-time)
    "stylegan-emoji": {"model": "stylegan", "dataset": "emoji", "epochs": 30, "batch_size": 32, "augment": "ada"},
    "progan-emoji": {"model": "progan", "dataset": "emoji", "epochs": 20, "batch_size": 32},
    "vae-emoji": {"model": "vae", "dataset": "emoji", "epochs": 30, "batch_size": 64, "lr_schedule": "cosine"},
}


def apply(values: dict) -> dict:
    """``values`` (raw, from the command line) on top of its preset's, when it names one."""
    from pipeline.errors import UserError

    name = values.get("preset") or ""
    if not name:
        return values
    if name not in PRESETS:
        raise UserError(f"unknown preset '{name}'; valid presets: {', '.join(PRESETS)}")
    return {**PRESETS[name], **values}
