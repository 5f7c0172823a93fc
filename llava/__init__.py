"""llava-okvqa: LLaVA-1.5 fine-tuning on today's libraries.

Importing the package is cheap: the model classes live in ``llava.model`` and
are imported on demand, so ``python -m llava.data.okvqa`` never pays for torch.
"""

__version__ = "0.1.0"
