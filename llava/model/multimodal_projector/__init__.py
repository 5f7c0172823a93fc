"""Vision-to-language projectors (upstream path ``llava.model.multimodal_projector``)."""
