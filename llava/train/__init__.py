"""Training: arguments, data, trainer, checkpointing and the ``train()`` entry point."""
