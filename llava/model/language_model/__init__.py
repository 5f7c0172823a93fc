"""Language-model classes with LLaVA's image splicing (upstream path ``llava.model.language_model``)."""
