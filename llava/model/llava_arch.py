"""LLaVA's multimodal glue: the vision tower and projector on the language model,
and the splice of projected image features into the token embeddings.

``LlavaMetaModel`` is mixed into the decoder (it owns ``vision_tower`` and
``mm_projector`` so weight names match upstream checkpoints:
``model.mm_projector.*``, ``model.vision_tower.vision_tower.*``).
``LlavaMetaForCausalLM`` is mixed into the causal-LM head class and turns
``input_ids`` holding ``IMAGE_TOKEN_INDEX`` placeholders into ``inputs_embeds``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from llava.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from llava.model.mm_config import mm_setting

from .multimodal_encoder.builder import build_vision_tower
from .multimodal_projector.builder import build_projector, build_vision_projector

logger = logging.getLogger("llava")

# Modules bitsandbytes must leave in full precision (the trainable projector).
# transformers 5 matches these against full module names from the start, so a
# bare "mm_projector" no longer matches "model.mm_projector.0": hence the regex.
QUANTIZATION_SKIP_MODULES = [r".*mm_projector"]


class LlavaMetaModel:
    """Mixin for the decoder model: holds the (lazily loaded) CLIP tower and the projector."""

    def __init__(self, config):
        super().__init__(config)
        if mm_setting(config, "mm_vision_tower"):
            # The tower's weights load later (load_model); the projector is a
            # regular submodule so from_pretrained fills it from the checkpoint.
            self.vision_tower = build_vision_tower(config, delay_load=True)
            self.mm_projector = build_vision_projector(config)

    def get_vision_tower(self):
        tower = getattr(self, "vision_tower", None)
        return tower[0] if isinstance(tower, list) else tower

    def initialize_vision_modules(self, model_args, fsdp=None) -> None:
        """Upstream's call: ``model.get_model().initialize_vision_modules(model_args=..., fsdp=...)``.

        Reads upstream's ``ModelArguments`` fields and calls :meth:`attach_vision_modules`.
        Deviation from upstream: ``fsdp`` is accepted but changes nothing; the
        tower is a frozen submodule either way (upstream hid it from FSDP in a list).
        """
        self.attach_vision_modules(
            vision_tower=model_args.vision_tower,
            mm_vision_select_layer=model_args.mm_vision_select_layer,
            mm_vision_select_feature=model_args.mm_vision_select_feature,
            mm_projector_type=model_args.mm_projector_type,
            mm_patch_merge_type=model_args.mm_patch_merge_type,
            pretrain_mm_mlp_adapter=model_args.pretrain_mm_mlp_adapter,
        )

    def attach_vision_modules(
        self,
        vision_tower: str,
        mm_vision_select_layer: int = -1,
        mm_vision_select_feature: str = "patch",
        mm_projector_type: str = "linear",
        mm_patch_merge_type: str = "flat",
        pretrain_mm_mlp_adapter: str | None = None,
        device_map=None,
        dtype: torch.dtype | None = None,
    ) -> None:
        """Attach and load the CLIP tower, and build the projector if the checkpoint had none.

        Flat arguments (our training code calls this; upstream's
        ``initialize_vision_modules(model_args)`` is the front over it).
        Records the mm_* keys in the config.
        """
        config = self.config
        config.mm_vision_tower = vision_tower
        config.mm_vision_select_layer = mm_vision_select_layer
        config.mm_vision_select_feature = mm_vision_select_feature
        config.mm_patch_merge_type = mm_patch_merge_type
        tower = self.get_vision_tower()
        if tower is None or tower.vision_tower_name != vision_tower:
            tower = build_vision_tower(config, delay_load=True)
            self.vision_tower = tower
        tower.select_layer = mm_vision_select_layer
        tower.select_feature = mm_vision_select_feature
        tower.load_model(device_map=device_map, dtype=dtype)

        config.use_mm_proj = True
        config.mm_hidden_size = tower.hidden_size
        existing = getattr(self, "mm_projector", None)
        if existing is None or getattr(config, "mm_projector_type", None) != mm_projector_type:
            config.mm_projector_type = mm_projector_type
            self.mm_projector = build_projector(mm_projector_type, tower.hidden_size, config.hidden_size).to(
                device=self.get_input_embeddings().weight.device,
            )
        self.mm_projector.requires_grad_(True)

        if pretrain_mm_mlp_adapter:
            self.load_projector_weights(pretrain_mm_mlp_adapter)

    def load_projector_weights(self, path: str) -> None:
        """Load a stage-1 ``mm_projector.bin`` (keys ``model.mm_projector.*`` or bare)."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        prefix = "mm_projector."
        weights = {key.split(prefix, 1)[1]: value for key, value in state.items() if prefix in key}
        if not weights:
            raise ValueError(f"{path} holds no mm_projector weights (keys: {sorted(state)[:5]} ...)")
        missing, unexpected = self.mm_projector.load_state_dict(weights, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"{path} does not fit the projector ({self.config.mm_projector_type}): "
                f"missing {missing}, unexpected {unexpected}"
            )


@dataclass
class SplicedInputs:
    """What the language model receives after image features are spliced in."""

    inputs_embeds: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    labels: torch.Tensor | None


class LlavaMetaForCausalLM:
    """Mixin for the causal-LM class: image encoding and the splice."""

    def get_model(self):
        return self.model

    def get_vision_tower(self):
        return self.get_model().get_vision_tower()

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        features = self.get_vision_tower()(images)
        projector = self.get_model().mm_projector
        # The frozen tower may run in another dtype than the trainable projector.
        weight = next(projector.parameters(), None)
        if weight is not None:
            features = features.to(weight.dtype)
        return projector(features)

    def _image_feature_list(self, images) -> list[torch.Tensor]:
        if isinstance(images, list):
            images = [image if image.ndim == 4 else image.unsqueeze(0) for image in images]
            stacked = torch.cat(images, dim=0)
        else:
            stacked = images
        return list(self.encode_images(stacked).unbind(0))

    def splice_image_features(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        labels: torch.Tensor | None,
        images,
        padding_side: str | None = None,
    ) -> SplicedInputs:
        """Replace each ``IMAGE_TOKEN_INDEX`` with that image's projected features.

        Images are consumed in order, one per placeholder. Padding is dropped,
        each sequence is rebuilt, cut to ``tokenizer_model_max_length``, and
        padded again on ``padding_side`` (None: the config's ``tokenizer_padding_side``,
        right when unset, as upstream; position ids restart at 0 per sample).
        A sample without a placeholder still takes a zero-length slice of its
        image's features, so every rank's projector joins the backward pass
        (ZeRO waits for gradients of every parameter).
        """
        if padding_side is None:
            padding_side = mm_setting(self.config, "tokenizer_padding_side")  # older configs lack it
        embed = self.get_model().get_input_embeddings()
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids, dtype=torch.bool)
        attention_mask = attention_mask.bool()
        if labels is None:
            labels_or_fill = torch.full_like(input_ids, IGNORE_INDEX)
        else:
            labels_or_fill = labels

        features = self._image_feature_list(images)
        rows_ids = [ids[mask] for ids, mask in zip(input_ids, attention_mask, strict=True)]
        rows_labels = [lab[mask] for lab, mask in zip(labels_or_fill, attention_mask, strict=True)]
        # One embedding call for all text tokens of the batch.
        all_text = torch.cat([ids[ids != IMAGE_TOKEN_INDEX] for ids in rows_ids])
        all_text_embeds = embed(all_text)
        text_chunks = all_text_embeds.split([int((ids != IMAGE_TOKEN_INDEX).sum()) for ids in rows_ids])

        max_length = mm_setting(self.config, "tokenizer_model_max_length")
        new_embeds, new_labels = [], []
        image_index = 0
        for ids, lab, text_embeds in zip(rows_ids, rows_labels, text_chunks, strict=True):
            image_positions = (ids == IMAGE_TOKEN_INDEX).nonzero().flatten().tolist()
            if not image_positions:
                if image_index >= len(features):
                    raise ValueError(
                        "A sample without <image> needs its (zero) image in the batch: got too few images."
                    )
                pieces = [text_embeds, features[image_index][:0]]
                new_embeds.append(torch.cat(pieces))
                new_labels.append(lab)
                image_index += 1
                continue
            embed_pieces, label_pieces = [], []
            text_cursor, start = 0, 0
            for position in image_positions + [len(ids)]:
                span = position - start
                embed_pieces.append(text_embeds[text_cursor : text_cursor + span])
                label_pieces.append(lab[start:position])
                text_cursor += span
                start = position + 1
                if position < len(ids):
                    if image_index >= len(features):
                        raise ValueError(
                            f"The batch has more <image> placeholders than images ({len(features)}): "
                            "each <image> in a prompt needs one image."
                        )
                    feature = features[image_index]
                    image_index += 1
                    embed_pieces.append(feature)
                    label_pieces.append(
                        torch.full((feature.shape[0],), IGNORE_INDEX, dtype=lab.dtype, device=lab.device)
                    )
            new_embeds.append(torch.cat(embed_pieces))
            new_labels.append(torch.cat(label_pieces))

        if max_length is not None:
            new_embeds = [row[:max_length] for row in new_embeds]
            new_labels = [row[:max_length] for row in new_labels]
        return _pad_spliced(new_embeds, new_labels if labels is not None else None, padding_side)

    def prepare_inputs_labels_for_multimodal(
        self, input_ids, position_ids, attention_mask, past_key_values, labels, images, image_sizes=None
    ):
        """Upstream's front.

        Returns ``(None, position_ids, attention_mask, past_key_values, inputs_embeds, labels)``.
        """
        if images is None or input_ids.shape[1] == 1:
            return input_ids, position_ids, attention_mask, past_key_values, None, labels
        spliced = self.splice_image_features(input_ids, attention_mask, labels, images)
        return (
            None,
            spliced.position_ids,
            spliced.attention_mask,
            past_key_values,
            spliced.inputs_embeds,
            spliced.labels,
        )

    def initialize_vision_tokenizer(self, model_args, tokenizer) -> None:
        """Upstream's call: ``model.initialize_vision_tokenizer(model_args, tokenizer=tokenizer)``.

        Adds the image tokens ``model_args`` asks for (:meth:`add_image_tokens`)
        and, for stage-1 pretraining (``tune_mm_mlp_adapter``), sets which
        embeddings train as upstream: the input embeddings when
        ``<im_start>``/``<im_end>`` were added, neither for ``<im_patch>`` alone.
        Deviation from upstream: the new rows are not copied from a
        ``pretrain_mm_mlp_adapter`` file (ours hold only the projector).
        """
        self.add_image_tokens(model_args.mm_use_im_patch_token, model_args.mm_use_im_start_end, tokenizer)
        if model_args.tune_mm_mlp_adapter and (model_args.mm_use_im_start_end or model_args.mm_use_im_patch_token):
            self.get_input_embeddings().weight.requires_grad_(bool(model_args.mm_use_im_start_end))
            self.get_output_embeddings().weight.requires_grad_(False)

    def add_image_tokens(self, mm_use_im_patch_token: bool, mm_use_im_start_end: bool, tokenizer) -> int:
        """Add ``<im_patch>``/``<im_start>``/``<im_end>`` when asked; returns how many tokens were added.

        New rows are initialised to the mean of the existing embeddings, as upstream does.
        """
        from llava.constants import (
            DEFAULT_IM_END_TOKEN,
            DEFAULT_IM_START_TOKEN,
            DEFAULT_IMAGE_PATCH_TOKEN,
        )

        new_tokens = []
        if mm_use_im_patch_token:
            new_tokens.append(DEFAULT_IMAGE_PATCH_TOKEN)
        if mm_use_im_start_end:
            new_tokens += [DEFAULT_IM_START_TOKEN, DEFAULT_IM_END_TOKEN]
        if not new_tokens:
            return 0
        added = tokenizer.add_tokens(new_tokens, special_tokens=True)
        if added:
            self.resize_token_embeddings(len(tokenizer))
            with torch.no_grad():
                for matrix in (self.get_input_embeddings().weight, self.get_output_embeddings().weight):
                    matrix[-added:] = matrix[:-added].mean(dim=0, keepdim=True)
        return added


def _pad_spliced(embeds: list[torch.Tensor], labels: list[torch.Tensor] | None, padding_side: str) -> SplicedInputs:
    batch = len(embeds)
    longest = max(row.shape[0] for row in embeds)
    hidden = embeds[0].shape[1]
    reference = embeds[0]
    padded = reference.new_zeros((batch, longest, hidden))
    mask = torch.zeros((batch, longest), dtype=torch.bool, device=reference.device)
    positions = torch.zeros((batch, longest), dtype=torch.long, device=reference.device)
    padded_labels = None
    if labels is not None:
        padded_labels = torch.full((batch, longest), IGNORE_INDEX, dtype=labels[0].dtype, device=labels[0].device)
    for row, row_embeds in enumerate(embeds):
        length = row_embeds.shape[0]
        span = slice(longest - length, longest) if padding_side == "left" else slice(0, length)
        padded[row, span] = row_embeds
        mask[row, span] = True
        positions[row, span] = torch.arange(length, device=reference.device)
        if padded_labels is not None:
            padded_labels[row, span] = labels[row]
    return SplicedInputs(inputs_embeds=padded, attention_mask=mask, position_ids=positions, labels=padded_labels)
