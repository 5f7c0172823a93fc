"""``LlavaLlamaForCausalLM``: a Llama causal LM that accepts images.

``forward`` and ``generate`` take ``images`` (and upstream's ``image_sizes``)
next to ``input_ids`` holding ``IMAGE_TOKEN_INDEX`` placeholders; the features
are spliced in by ``LlavaMetaForCausalLM`` and the rest is plain Llama.
Registered with ``AutoConfig``/``AutoModelForCausalLM`` as ``llava_llama``.
"""

from __future__ import annotations

import torch
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, LlamaModel

from ..liger import FUSED_LOSS
from ..llava_arch import LlavaMetaForCausalLM, LlavaMetaModel


class LlavaConfig(LlamaConfig):
    model_type = "llava_llama"


class LlavaLlamaModel(LlavaMetaModel, LlamaModel):
    config_class = LlavaConfig

    def __init__(self, config: LlamaConfig):
        super().__init__(config)


class LlavaLlamaForCausalLM(LlamaForCausalLM, LlavaMetaForCausalLM):
    config_class = LlavaConfig
    # Full checkpoints may carry the CLIP tower under this prefix; the tower is
    # always loaded from mm_vision_tower instead (as upstream), so skip quietly.
    _keys_to_ignore_on_load_unexpected = [r"model\.vision_tower\."]

    def __init__(self, config):
        LlamaForCausalLM.__init__(self, config)
        config.model_type = "llava_llama"
        self.model = LlavaLlamaModel(config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        images: torch.FloatTensor | list[torch.FloatTensor] | None = None,
        image_sizes: list[list[int]] | None = None,
        **kwargs,
    ):
        if inputs_embeds is None and images is not None and input_ids is not None and input_ids.shape[1] > 1:
            spliced = self.splice_image_features(input_ids, attention_mask, labels, images)
            input_ids, inputs_embeds = None, spliced.inputs_embeds
            attention_mask, position_ids, labels = spliced.attention_mask, spliced.position_ids, spliced.labels
        if labels is not None and self.training and getattr(self, FUSED_LOSS, False):
            return self._fused_loss_forward(input_ids, attention_mask, position_ids, inputs_embeds, labels, **kwargs)
        return super().forward(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            labels=labels,
            **kwargs,
        )

    def _fused_loss_forward(self, input_ids, attention_mask, position_ids, inputs_embeds, labels, **kwargs):
        """Training step with Liger-Kernel's fused linear + cross-entropy: no logits are materialised."""
        from transformers.modeling_outputs import CausalLMOutputWithPast

        from llava.model.liger import fused_causal_lm_loss

        num_items_in_batch = kwargs.pop("num_items_in_batch", None)
        outputs = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            **kwargs,
        )
        loss = fused_causal_lm_loss(outputs.last_hidden_state, self.lm_head, labels, num_items_in_batch)
        return CausalLMOutputWithPast(loss=loss, logits=None, past_key_values=outputs.past_key_values)

    @torch.no_grad()
    def generate(
        self,
        inputs: torch.Tensor | None = None,
        images: torch.Tensor | list[torch.Tensor] | None = None,
        image_sizes: list[list[int]] | None = None,
        attention_mask: torch.Tensor | None = None,
        **kwargs,
    ):
        """Generate from prompts holding ``<image>`` placeholders.

        The spliced prompts are always left-padded here, whatever the training
        padding side, so batched greedy decoding matches batch size 1.
        ``pad_to_multiple_of``: pad further on the left to a multiple of this length
        (for a static KV cache, see :func:`_left_pad_to_multiple`).
        Deviation from upstream: upstream pads by ``tokenizer_padding_side``
        (right after training), which corrupts batched generation.
        """
        if "inputs_embeds" in kwargs:
            raise ValueError("Pass input_ids (with <image> placeholders) and images, not inputs_embeds.")
        input_ids = inputs if inputs is not None else kwargs.pop("input_ids", None)
        if input_ids is None:
            raise ValueError("generate() needs input_ids")
        multiple = kwargs.pop("pad_to_multiple_of", None)
        if images is None:
            if multiple:  # the caller pads text-only prompts (and slices the prompt off the output)
                raise ValueError("pad_to_multiple_of is for prompts with images; pad text-only input_ids yourself")
            return super().generate(input_ids, attention_mask=attention_mask, **kwargs)
        spliced = self.splice_image_features(input_ids, attention_mask, None, images, padding_side="left")
        embeds, mask = spliced.inputs_embeds, spliced.attention_mask.long()
        if multiple:
            embeds, mask = _left_pad_to_multiple(embeds, mask, multiple)
        return super().generate(inputs_embeds=embeds, attention_mask=mask, **kwargs)


def _left_pad_to_multiple(inputs: torch.Tensor, mask: torch.Tensor, multiple: int):
    """``inputs`` (ids or embeddings) and ``mask`` padded on the left to a multiple of ``multiple``.

    A static KV cache has the prompt's length in its shape; lengths rounded up to a few
    buckets let a compiled decode step be reused across batches. Masked positions change
    nothing: the positions come from the mask.
    """
    extra = -mask.shape[1] % multiple
    if not extra:
        return inputs, mask
    pad_shape = (inputs.shape[0], extra, *inputs.shape[2:])
    inputs = torch.cat([inputs.new_zeros(pad_shape), inputs], dim=1)
    mask = torch.cat([mask.new_zeros((mask.shape[0], extra)), mask], dim=1)
    return inputs, mask


AutoConfig.register("llava_llama", LlavaConfig)
AutoModelForCausalLM.register(LlavaConfig, LlavaLlamaForCausalLM)
