"""Build the tokenizer and the trainable model from the parsed arguments.

The steps, each a function: load the language model (optionally quantized by
bitsandbytes), prepare it for k-bit training, attach and load the CLIP tower
and projector, attach LoRA adapters, then set which parameters train and in
which dtype. The result matches upstream's ``train()`` (docs/UPSTREAM.md):
LoRA on every language-model Linear except ``lm_head``, the
projector trainable (with its own learning rate if asked), CLIP frozen.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from llava.model.attention import resolve_attn_implementation
from llava.model.llava_arch import QUANTIZATION_SKIP_MODULES

logger = logging.getLogger("llava")

# Modules LoRA never targets: the multimodal parts and the output head.
LORA_EXCLUDED = ("mm_projector", "vision_tower", "vision_resampler")


def compute_dtype(training_args) -> torch.dtype:
    if training_args.bf16:
        return torch.bfloat16
    if training_args.fp16:
        return torch.float16
    return torch.float32


def load_tokenizer(model_args, training_args):
    """The tokenizer as upstream trains with it: right padding, ``model_max_length``, pad = unk.

    Deviation from upstream: for ``--version v0`` upstream adds a ``[PAD]`` token
    and resizes the embeddings; here every template pads with ``unk``, which the
    labels and the attention mask ignore anyway.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        model_args.model_name_or_path,
        cache_dir=training_args.cache_dir,
        model_max_length=training_args.model_max_length,
        padding_side="right",
        use_fast=False,
    )
    if tokenizer.unk_token is not None:
        tokenizer.pad_token = tokenizer.unk_token
    elif tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def quantization_config(training_args):
    """bitsandbytes settings for ``--bits 4|8`` (the projector stays unquantized), else None."""
    if training_args.bits not in (4, 8):
        return None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=training_args.bits == 4,
        load_in_8bit=training_args.bits == 8,
        llm_int8_skip_modules=QUANTIZATION_SKIP_MODULES,
        llm_int8_threshold=6.0,
        llm_int8_has_fp16_weight=False,
        bnb_4bit_compute_dtype=compute_dtype(training_args),
        bnb_4bit_use_double_quant=training_args.double_quant,
        bnb_4bit_quant_type=training_args.quant_type,
    )


def load_language_model(model_args, training_args, attn_implementation: str | None = None):
    """The (LLaVA or plain Llama) model, quantized when ``--bits`` asks for it."""
    from transformers import LlamaForCausalLM

    from llava.model import LlavaLlamaForCausalLM
    from llava.model.hub_kernels import kernel_kwargs

    kwargs = {
        "cache_dir": training_args.cache_dir,
        "attn_implementation": resolve_attn_implementation(attn_implementation),
        "dtype": compute_dtype(training_args),
        **kernel_kwargs(model_args.use_kernels),
    }
    quant = quantization_config(training_args)
    if quant is not None:
        kwargs["quantization_config"] = quant
        kwargs["device_map"] = {"": training_args.device}
    model_class = LlavaLlamaForCausalLM if model_args.vision_tower is not None else LlamaForCausalLM
    model = model_class.from_pretrained(model_args.model_name_or_path, **kwargs)
    model.config.use_cache = False
    if model_args.freeze_backbone:
        model.model.requires_grad_(False)
    return model


# Upstream's checkpointing variant (transformers 4.37's default); transformers 5 defaults to the
# non-reentrant one, which puts a hook on every tensor a layer saves (LoRA layers save many).
UPSTREAM_CHECKPOINTING_KWARGS = {"use_reentrant": True}


def checkpointing_kwargs(training_args) -> dict:
    """The checkpoint function's options: the user's ``--gradient_checkpointing_kwargs``, else upstream's."""
    given = getattr(training_args, "activation_checkpointing_kwargs", None) or getattr(
        training_args, "gradient_checkpointing_kwargs", None
    )
    return dict(given) if given else dict(UPSTREAM_CHECKPOINTING_KWARGS)


def prepare_for_training(model, training_args):
    """k-bit preparation and gradient checkpointing (which needs input grads on the embeddings).

    The Trainer enables checkpointing with ``activation_checkpointing_kwargs``, set here to
    :func:`checkpointing_kwargs` so both calls use the same variant.
    """
    if training_args.gradient_checkpointing:
        training_args.activation_checkpointing_kwargs = checkpointing_kwargs(training_args)
    if training_args.bits in (4, 8):
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=training_args.gradient_checkpointing,
            gradient_checkpointing_kwargs=getattr(training_args, "activation_checkpointing_kwargs", None),
        )
    if training_args.gradient_checkpointing:
        model.enable_input_require_grads()
    return model


def find_all_linear_names(model) -> list[str]:
    """Names (last component) of the language model's Linear layers, without ``lm_head``."""
    linear_types: tuple[type, ...] = (nn.Linear,)
    try:
        import bitsandbytes as bnb

        linear_types += (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt)
    except ImportError:
        pass
    names = set()
    for name, module in model.named_modules():
        if any(key in name for key in LORA_EXCLUDED):
            continue
        if isinstance(module, linear_types):
            names.add(name.split(".")[-1])
    names.discard("lm_head")
    return sorted(names)


def attach_lora(model, training_args):
    """Wrap ``model`` in LoRA adapters on every language-model Linear."""
    from peft import LoraConfig, get_peft_model

    from llava.model.peft_compat import check_lora_config

    config = LoraConfig(
        r=training_args.lora_r,
        lora_alpha=training_args.lora_alpha,
        target_modules=find_all_linear_names(model),
        lora_dropout=training_args.lora_dropout,
        bias=training_args.lora_bias,
        task_type="CAUSAL_LM",
    )
    check_lora_config(config)  # fail now, not at the final save, if upstream's peft could not load it
    if training_args.bits == 16:
        model.to(compute_dtype(training_args))
    logger.info("Adding LoRA adapters (r=%d, alpha=%d) to %s", config.r, config.lora_alpha, config.target_modules)
    return get_peft_model(model, config)


def attach_vision(model, tokenizer, model_args, data_args, training_args) -> None:
    """Load the CLIP tower and projector, record the mm_* config keys, fill ``data_args``."""
    llava = model.get_model()
    llava.initialize_vision_modules(model_args)  # upstream's call, over attach_vision_modules
    dtype = compute_dtype(training_args)
    tower = model.get_vision_tower()
    tower.to(device=training_args.device, dtype=dtype)
    llava.mm_projector.to(device=training_args.device, dtype=dtype if training_args.bits == 16 else torch.float32)

    data_args.image_processor = tower.image_processor
    data_args.is_multimodal = True
    data_args.mm_use_im_start_end = model_args.mm_use_im_start_end

    config = model.config
    config.image_aspect_ratio = data_args.image_aspect_ratio
    config.tokenizer_padding_side = tokenizer.padding_side
    config.tokenizer_model_max_length = tokenizer.model_max_length
    config.tune_mm_mlp_adapter = training_args.tune_mm_mlp_adapter = model_args.tune_mm_mlp_adapter
    config.freeze_mm_mlp_adapter = training_args.freeze_mm_mlp_adapter
    config.mm_projector_lr = training_args.mm_projector_lr
    config.mm_use_im_start_end = model_args.mm_use_im_start_end
    config.mm_use_im_patch_token = model_args.mm_use_im_patch_token
    model.add_image_tokens(
        mm_use_im_patch_token=model_args.mm_use_im_patch_token,
        mm_use_im_start_end=model_args.mm_use_im_start_end,
        tokenizer=tokenizer,
    )


def set_trainable(model, model_args, training_args) -> None:
    """Which parameters train: adapters (PEFT set them), the projector unless frozen, CLIP never."""
    if not hasattr(model, "get_vision_tower") and not hasattr(model, "get_base_model"):
        return
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not hasattr(base, "get_vision_tower") or base.get_vision_tower() is None:
        return
    projector = base.get_model().mm_projector
    if model_args.tune_mm_mlp_adapter:
        model.requires_grad_(False)
        projector.requires_grad_(True)
    else:
        # PEFT froze everything but the adapters; the projector trains alongside.
        projector.requires_grad_(not training_args.freeze_mm_mlp_adapter)
    base.get_vision_tower().requires_grad_(False)


def cast_for_kbit(model, training_args) -> None:
    """Upstream's dtypes after k-bit preparation: LoRA in bf16 when --bf16, norms in fp32."""
    if training_args.bits not in (4, 8):
        return
    from peft.tuners.lora import LoraLayer

    for name, module in model.named_modules():
        if isinstance(module, LoraLayer) and training_args.bf16:
            module.to(torch.bfloat16)
        if "norm" in name:
            module.to(torch.float32)
        if ("lm_head" in name or "embed_tokens" in name) and hasattr(module, "weight"):
            if training_args.bf16 and module.weight.dtype == torch.float32:
                module.to(torch.bfloat16)


def decide_checkpointing(model, training_args, longest_sample: int) -> None:
    """``--gradient_checkpointing auto``: decide now that the weights are in memory, log it in one line."""
    from llava.train.memory_plan import plan_checkpointing

    plan = plan_checkpointing(
        model,
        batch_size=training_args.per_device_train_batch_size,
        tokens=max(longest_sample, 1),
        bytes_per_value=compute_dtype(training_args).itemsize,
        device=training_args.device,
        lora_r=training_args.lora_r if training_args.lora_enable else 0,
        lora_dropout=training_args.lora_dropout if training_args.lora_enable else 0.0,
    )
    logger.info("%s", plan.line())
    training_args.activation_checkpointing = training_args.gradient_checkpointing = plan.checkpointing


def compile_decoder_layers(model, training_args) -> int:
    """``--torch_compile``: compile each decoder layer of the language model, not the whole model.

    The whole LLaVA forward (image splicing, varying lengths, the CLIP tower) would break the
    graph everywhere; the 32 identical decoder layers compile once and are reused. The Trainer's
    own whole-model compile is switched off (flags and accelerate's environment). Returns the
    number of layers compiled. Off by default: docs/PERFORMANCE.md has the measurements.
    """
    import os

    backend = training_args.torch_compile_backend or "inductor"
    mode = training_args.torch_compile_mode
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    layers = base.get_model().layers if hasattr(base, "get_model") else base.model.layers
    for layer in layers:
        layer.compile(backend=backend, mode=mode)
    training_args.torch_compile, training_args.torch_compile_backend, training_args.torch_compile_mode = (
        False,
        None,
        None,
    )
    os.environ.pop("ACCELERATE_DYNAMO_BACKEND", None)
    os.environ.pop("ACCELERATE_DYNAMO_MODE", None)
    logger.info("--torch_compile: %d decoder layers compiled (backend %s)", len(layers), backend)
    return len(layers)


def build_model(
    model_args,
    data_args,
    training_args,
    tokenizer,
    attn_implementation: str | None = None,
    longest_sample: int | None = None,
):
    """The model ready for the Trainer (PEFT-wrapped when ``--lora_enable``).

    ``longest_sample``: tokens of the longest training sample, for ``--gradient_checkpointing auto``
    (default: ``model_max_length``).
    """
    model = load_language_model(model_args, training_args, attn_implementation)
    from llava.model.liger import apply_liger, want_liger

    if want_liger(getattr(training_args, "use_liger", False)):
        apply_liger(model)  # before LoRA: adapters then wrap the fused MLP's projections
    if getattr(training_args, "activation_checkpointing_auto", False):
        decide_checkpointing(model, training_args, longest_sample or training_args.model_max_length)
    model = prepare_for_training(model, training_args)
    # Adapters before the tower loads (upstream's order): LoRA matches layers by
    # their short names, and CLIP's q_proj/k_proj/v_proj would match too.
    if training_args.lora_enable:
        model = attach_lora(model, training_args)
    if model_args.vision_tower is not None:
        attach_vision(model, tokenizer, model_args, data_args, training_args)
    set_trainable(model, model_args, training_args)
    cast_for_kbit(model, training_args)
    if getattr(training_args, "torch_compile", False):
        compile_decoder_layers(model, training_args)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    logger.info(
        "Trainable parameters: %s of %s (%.2f%%)", f"{trainable:,}", f"{total:,}", 100 * trainable / max(total, 1)
    )
    return model


def record_base_model(model, model_name_or_path: str) -> None:
    """Record the base (name and weight fingerprint) in the config every output saves.

    Every rank calls this (under ZeRO-3 the embedding is gathered). A loader then
    refuses to apply the run to a different base (``llava.model.base_record``).
    """
    from llava.model.base_record import record_from_weight
    from llava.train.checkpointing import gathered_copy

    record_from_weight(model.config, model_name_or_path, gathered_copy(model.get_input_embeddings().weight))
