"""Vision encoders (upstream path ``llava.model.multimodal_encoder``)."""
