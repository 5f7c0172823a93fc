"""Export a LLaVA checkpoint as a transformers ``LlavaForConditionalGeneration`` folder, for serving.

Run (from the repository root; CPU is enough, and the default):

    # a LoRA run: the adapter is merged into its base first
    python -m llava.export_hf --model-path checkpoints/llava-v1.5-7b-okvqa-lora \
        --model-base liuhaotian/llava-v1.5-7b --out exports/llava-v1.5-7b-okvqa-hf

    # a full LLaVA checkpoint (for example one written by scripts/merge_lora_weights.py)
    python -m llava.export_hf --model-path checkpoints/llava-v1.5-7b-okvqa-merged \
        --out exports/llava-v1.5-7b-okvqa-hf

The folder serves as ``llava-hf/llava-1.5-7b-hf`` does::

    model = LlavaForConditionalGeneration.from_pretrained(out)
    processor = AutoProcessor.from_pretrained(out)
    vllm serve exports/llava-v1.5-7b-okvqa-hf

What the folder holds (config, weights in the llava-hf layout, the processor
and chat template), what cannot be exported and why, and the memory it takes:
docs/SERVING.md ("What the export writes").
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import torch

from llava.constants import DEFAULT_IMAGE_TOKEN, IMAGE_TOKEN_INDEX
from llava.flags import Parser
from llava.model.mm_config import mm_setting
from llava.utils import atomic_output_dir

logger = logging.getLogger("llava")

SUPPORTED_PROJECTORS = ("mlp2x_gelu", "linear")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# Keys a LLaVA config adds to a Llama config; none of them belong in text_config.
_LLAVA_ONLY_KEYS = ("architectures", "model_type", "_name_or_path", "transformers_version", "dtype", "torch_dtype")


# ------------------------------------------------------------------ checks


def _saved_config(model_path: str | os.PathLike) -> dict:
    from llava.model.hub import local_folder

    path = local_folder(model_path) / "config.json"  # a folder or a Hub id
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: --model-path must be a LLaVA checkpoint or a LoRA run folder")
    return json.loads(path.read_text(encoding="utf-8"))


def export_problems(config: dict) -> list[str]:
    """Every reason the LLaVA config ``config`` (a ``config.json`` dict) cannot become a HF Llava model."""
    problems = []
    if not config.get("mm_vision_tower"):
        problems.append("mm_vision_tower is not set: this is a text-only checkpoint, not a LLaVA model")
    if config.get("mm_use_im_start_end", False):
        problems.append(
            "mm_use_im_start_end is True: LlavaForConditionalGeneration has no <im_start>/<im_end> "
            "around the image; only models trained with --mm_use_im_start_end False can be exported"
        )
    projector = config.get("mm_projector_type", "linear")
    if projector not in SUPPORTED_PROJECTORS:
        problems.append(
            f"mm_projector_type {projector!r}: the HF projector is Linear -> activation -> Linear, "
            f"which can express only {', '.join(SUPPORTED_PROJECTORS)}"
        )
    merge = config.get("mm_patch_merge_type", "flat")
    if merge != "flat":
        problems.append(f"mm_patch_merge_type {merge!r}: only 'flat' (LLaVA-1.5) maps to LlavaForConditionalGeneration")
    if config.get("image_aspect_ratio") == "anyres":
        problems.append("image_aspect_ratio 'anyres' is LLaVA-NeXT tiling: export to LlavaNext instead")
    feature = config.get("mm_vision_select_feature", "patch")
    if feature not in ("patch", "cls_patch"):
        problems.append(f"mm_vision_select_feature {feature!r}: must be 'patch' or 'cls_patch'")
    return problems


def check_exportable(config: dict, where: str = "the checkpoint") -> None:
    """Raise ``ValueError`` listing every problem of ``export_problems`` at once."""
    problems = export_problems(config)
    if problems:
        raise ValueError(f"Cannot export {where} to LlavaForConditionalGeneration:\n- " + "\n- ".join(problems))


def resolve_dtype(name: str, saved_config: dict) -> torch.dtype:
    """``--dtype``: a name from ``DTYPES``, or "auto" for the dtype recorded in the checkpoint (float32 if none)."""
    if name == "auto":
        name = saved_config.get("dtype") or saved_config.get("torch_dtype") or "float32"
    if name not in DTYPES:
        raise ValueError(f"dtype {name!r} is not one of {sorted(DTYPES)} (or 'auto')")
    return DTYPES[name]


# ------------------------------------------------------------------ weights


def _grow_rows(matrix: torch.Tensor, rows: int) -> torch.Tensor:
    """``matrix`` with rows appended up to ``rows``, each the mean of the existing rows."""
    extra = rows - matrix.shape[0]
    if extra <= 0:
        return matrix
    mean = matrix.float().mean(dim=0, keepdim=True).to(matrix.dtype)
    return torch.cat([matrix, mean.expand(extra, -1)], dim=0)


def _tower_state(vision_tower) -> dict[str, torch.Tensor]:
    """The CLIP tower's weights keyed as ``vision_model.*`` (transformers 5 drops that prefix in memory)."""
    state = {}
    for key, value in vision_tower.state_dict().items():
        state["vision_model." + key.removeprefix("vision_model.")] = value
    return state


def convert_state_dict(model, vocab_rows: int, projector_type: str) -> dict[str, torch.Tensor]:
    """Our LLaVA model's weights in the llava-hf hub layout, the vocabulary grown to ``vocab_rows``.

    ``model`` is a loaded (merged) ``LlavaLlamaForCausalLM`` with its CLIP tower loaded.
    """
    state = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("model.vision_tower.") or key.startswith("model.mm_projector"):
            continue
        if key == "lm_head.weight":
            out["language_model.lm_head.weight"] = _grow_rows(value, vocab_rows)
        elif key.startswith("model."):
            if key == "model.embed_tokens.weight":
                value = _grow_rows(value, vocab_rows)
            out["language_model." + key] = value
        else:
            raise ValueError(f"Unexpected weight {key!r}: not part of a LLaVA-1.5 model")

    projector = model.get_model().mm_projector
    weights = projector.state_dict()
    if projector_type == "mlp2x_gelu":
        mapping = {
            "0.weight": "linear_1.weight",
            "0.bias": "linear_1.bias",
            "2.weight": "linear_2.weight",
            "2.bias": "linear_2.bias",
        }
        for ours, theirs in mapping.items():
            out["multi_modal_projector." + theirs] = weights[ours]
    elif projector_type == "linear":
        # Linear, identity activation, identity Linear: exactly the single Linear.
        hidden = weights["weight"].shape[0]
        reference = weights["weight"]
        out["multi_modal_projector.linear_1.weight"] = weights["weight"]
        out["multi_modal_projector.linear_1.bias"] = weights["bias"]
        out["multi_modal_projector.linear_2.weight"] = torch.eye(hidden, dtype=reference.dtype)
        out["multi_modal_projector.linear_2.bias"] = torch.zeros(hidden, dtype=reference.dtype)
    else:  # check_exportable refuses these first
        raise ValueError(f"mm_projector_type {projector_type!r} cannot be exported")

    tower = model.get_vision_tower().vision_tower
    for key, value in _tower_state(tower).items():
        out["vision_tower." + key] = value
    return out


def write_safetensors(
    state: dict[str, torch.Tensor], folder: Path, dtype: torch.dtype, max_shard_size: str | int = "5GB"
) -> list[str]:
    """Write ``state`` cast to ``dtype`` as (sharded) safetensors with an index when sharded."""
    from huggingface_hub import split_torch_state_dict_into_shards
    from safetensors.torch import save_file

    seen: set[int] = set()
    tensors = {}
    for key, value in state.items():
        value = value.detach().to("cpu", dtype) if value.is_floating_point() else value.detach().cpu()
        storage = value.untyped_storage().data_ptr()
        if storage in seen:  # safetensors refuses shared storage (tied weights)
            value = value.clone()
        seen.add(value.untyped_storage().data_ptr())
        tensors[key] = value.contiguous()
    split = split_torch_state_dict_into_shards(tensors, max_shard_size=max_shard_size)
    for filename, keys in split.filename_to_tensors.items():
        save_file({key: tensors[key] for key in keys}, str(folder / filename), metadata={"format": "pt"})
    if split.is_sharded:
        index = {
            "metadata": {"total_size": sum(t.numel() * t.element_size() for t in tensors.values())},
            "weight_map": split.tensor_to_filename,
        }
        (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return sorted(split.filename_to_tensors)


# ------------------------------------------------------------------ config and processor


def build_hf_config(config, vision_config, image_token_id: int, vocab_rows: int, dtype: torch.dtype):
    """The ``transformers.LlavaConfig`` for our (LLaVA-1.5) ``config`` and CLIP ``vision_config``."""
    from transformers import LlamaConfig
    from transformers import LlavaConfig as HFLlavaConfig

    ours = config.to_dict()
    llama_keys = set(LlamaConfig().to_dict()) - set(_LLAVA_ONLY_KEYS)
    text = {key: value for key, value in ours.items() if key in llama_keys}
    text["vocab_size"] = vocab_rows
    text_config = LlamaConfig(**text)
    full = mm_setting(config, "mm_vision_select_feature") == "cls_patch"
    patches = (vision_config.image_size // vision_config.patch_size) ** 2
    linear = mm_setting(config, "mm_projector_type") == "linear"
    hf_config = HFLlavaConfig(
        vision_config=vision_config.to_dict(),
        text_config=text_config.to_dict(),
        image_token_index=image_token_id,
        image_seq_length=patches + (1 if full else 0),
        projector_hidden_act="linear" if linear else "gelu",
        vision_feature_select_strategy="full" if full else "default",
        vision_feature_layer=mm_setting(config, "mm_vision_select_layer"),
        multimodal_projector_bias=True,
        tie_word_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
    )
    hf_config.dtype = str(dtype).removeprefix("torch.")
    hf_config.architectures = ["LlavaForConditionalGeneration"]
    return hf_config


def add_image_token(tokenizer) -> int:
    """Add ``<image>`` as a special token (kept whole, never normalised); return its id."""
    from transformers import AddedToken

    if DEFAULT_IMAGE_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_tokens([AddedToken(DEFAULT_IMAGE_TOKEN, special=True, normalized=False)], special_tokens=True)
    return tokenizer.convert_tokens_to_ids(DEFAULT_IMAGE_TOKEN)


def expand_image_tokens(input_ids: torch.Tensor, image_token_id: int, tokens_per_image: int) -> torch.Tensor:
    """Our prompt ids (``IMAGE_TOKEN_INDEX`` placeholders) as HF Llava ids (``tokens_per_image`` image tokens each).

    1-D in, 1-D out: ``[1, 5, -200, 7]`` with 3 tokens per image and id 512 becomes
    ``[1, 5, 512, 512, 512, 7]``.
    """
    pieces = []
    for token in input_ids.tolist():
        pieces.extend([image_token_id] * tokens_per_image if token == IMAGE_TOKEN_INDEX else [token])
    return torch.tensor(pieces, dtype=torch.long)


def _image_processor_class():
    """``LlavaImageProcessor``, or its PIL twin without torchvision (saved under the same type name)."""
    import importlib.util

    import transformers

    if importlib.util.find_spec("torchvision") is None:
        return transformers.LlavaImageProcessorPil
    return transformers.LlavaImageProcessor


_IMAGE_PROCESSOR_KEYS = (
    "do_resize",
    "size",
    "resample",
    "do_center_crop",
    "crop_size",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "image_mean",
    "image_std",
    "do_convert_rgb",
)


def build_image_processor(clip_processor, pad_to_square: bool):
    """A ``LlavaImageProcessor`` with ``clip_processor``'s settings, padding to a square when asked.

    Its padding is ``expand2square``'s: centred, with ``int(255 * mean)`` per channel.
    """
    settings = clip_processor.to_dict()
    kwargs = {key: settings[key] for key in _IMAGE_PROCESSOR_KEYS if settings.get(key) is not None}
    return _image_processor_class()(do_pad=pad_to_square, **kwargs)


def _message_text(content: str) -> str:
    """Jinja: the text of a message ``content`` (a string, or the ``text`` parts of a list)."""
    return (
        f"{content} if {content} is string else "
        f"{content} | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('')"
    )


def chat_template_for(conv_mode: str, image_text: str = "<image>\n", after_bos: str = "") -> str | None:
    """A Jinja chat template rendering ``conv_templates[conv_mode]`` (SeparatorStyle.TWO) as upstream does.

    Messages use HF's format (``content`` a string, or a list of ``{"type":
    "image"}`` and ``{"type": "text", "text": ...}`` parts); a user message
    puts ``image_text`` once per image before its text, as LLaVA's data do. A
    leading ``system`` message replaces the template's system prompt. The
    prompt starts with ``bos_token`` + ``after_bos`` (runtimes tokenize chat
    prompts without adding special tokens). Returns ``None`` for other styles.
    """
    from llava.conversation import SeparatorStyle, conv_templates

    if conv_mode not in conv_templates:
        raise ValueError(f"Unknown --conv-mode {conv_mode!r}; choose from {sorted(conv_templates)} or 'none'")
    conv = conv_templates[conv_mode]
    if conv.sep_style != SeparatorStyle.TWO:
        return None
    user, assistant = conv.roles
    q = json.dumps  # a Jinja string literal
    lines = [
        "{#- LLaVA " + conv_mode + " prompt, written by llava.export_hf -#}",
        "{%- set ns = namespace(system=" + q(conv.system) + ") -%}",
        "{%- set loop_messages = messages -%}",
        "{%- if messages and messages[0]['role'] == 'system' -%}",
        "    {%- set ns.system = " + _message_text("messages[0]['content']") + " -%}",
        "    {%- set loop_messages = messages[1:] -%}",
        "{%- endif -%}",
        "{{- bos_token + " + q(after_bos) + " + ns.system + " + q(conv.sep) + " -}}",
        "{%- for message in loop_messages -%}",
        "    {%- set text = " + _message_text("message['content']") + " -%}",
        "    {%- if message['role'] == 'user' -%}",
        "        {%- set images = 0 if message['content'] is string else "
        "message['content'] | selectattr('type', 'equalto', 'image') | list | length -%}",
        "        {{- " + q(user + ": ") + " + " + q(image_text) + " * images + text + " + q(conv.sep) + " -}}",
        "    {%- elif message['role'] == 'assistant' -%}",
        "        {{- " + q(assistant + ": ") + " + text + " + q(conv.sep2) + " -}}",
        "    {%- endif -%}",
        "{%- endfor -%}",
        "{%- if add_generation_prompt -%}",
        "    {{- " + q(assistant + ":") + " -}}",
        "{%- endif -%}",
    ]
    return "\n".join(lines) + "\n"


def upstream_chat_template(tokenizer, conv_mode: str, image_token_id: int) -> str | None:
    """``chat_template_for(conv_mode)`` spaced so the rendered prompt tokenizes exactly as upstream's.

    Upstream tokenizes the prompt around ``<image>`` chunk by chunk, each
    chunk with SentencePiece's word-boundary prefix; a runtime tokenizes the
    whole rendered prompt (no special tokens added). The spacing after BOS and
    after ``<image>`` that reproduces upstream's ids on a probe prompt is
    chosen; if none does, the plain one is used with a warning. ``None`` when
    the template is not SeparatorStyle.TWO.
    """
    from llava.conversation import conv_templates
    from llava.mm_utils import tokenizer_image_token

    if chat_template_for(conv_mode) is None:
        logger.warning("--conv-mode %s is not a SeparatorStyle.TWO template: no chat template written.", conv_mode)
        return None
    question = "What colour is the shape?"
    conv = conv_templates[conv_mode].copy()
    conv.append_message(conv.roles[0], DEFAULT_IMAGE_TOKEN + "\n" + question)
    conv.append_message(conv.roles[1], None)
    upstream_ids = tokenizer_image_token(conv.get_prompt(), tokenizer, return_tensors="pt")
    upstream = expand_image_tokens(upstream_ids, image_token_id, 1).tolist()
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    for after_bos in ("", " "):
        for image_text in (DEFAULT_IMAGE_TOKEN + "\n", DEFAULT_IMAGE_TOKEN + " \n"):
            template = chat_template_for(conv_mode, image_text, after_bos)
            rendered = tokenizer.apply_chat_template(
                messages, chat_template=template, add_generation_prompt=True, tokenize=False
            )
            if tokenizer(rendered, add_special_tokens=False).input_ids == upstream:
                return template
    logger.warning(
        "No spacing of the %s chat template reproduces upstream's token ids with this tokenizer; "
        "writing the plain template.",
        conv_mode,
    )
    return chat_template_for(conv_mode)


def build_processor(tokenizer, clip_processor, config, vision_config, image_token_id: int, conv_mode: str | None):
    """The ``LlavaProcessor`` for the exported model (``tokenizer`` already holds ``<image>``)."""
    from transformers import LlavaProcessor

    chat_template = None
    if conv_mode and conv_mode != "none":
        chat_template = upstream_chat_template(tokenizer, conv_mode, image_token_id)
    full = mm_setting(config, "mm_vision_select_feature") == "cls_patch"
    return LlavaProcessor(
        image_processor=build_image_processor(clip_processor, mm_setting(config, "image_aspect_ratio") == "pad"),
        tokenizer=tokenizer,
        patch_size=vision_config.patch_size,
        vision_feature_select_strategy="full" if full else "default",
        chat_template=chat_template,
        image_token=DEFAULT_IMAGE_TOKEN,
        num_additional_image_tokens=1,  # CLIP's CLS position
    )


# ------------------------------------------------------------------ export


def export(
    model_path: str | os.PathLike,
    out: str | os.PathLike,
    model_base: str | None = None,
    dtype: str = "auto",
    conv_mode: str | None = "vicuna_v1",
    overwrite: bool = False,
    max_shard_size: str | int = "5GB",
    device: str = "cpu",
) -> Path:
    """Write the HF Llava folder for ``model_path`` (a LoRA run merges into ``model_base``); return it."""
    from llava.mm_utils import get_model_name_from_path
    from llava.model.builder import load_pretrained_model

    saved = _saved_config(model_path)
    check_exportable(saved, where=str(model_path))
    out_dtype = resolve_dtype(dtype, saved)
    out = Path(out).resolve()
    if out.exists() and not overwrite:  # fail before the (slow) load
        raise FileExistsError(f"{out} already exists: choose another --out or pass --overwrite")

    tokenizer, model, clip_processor, _ = load_pretrained_model(
        str(model_path),
        model_base,
        get_model_name_from_path(str(model_path)),
        device_map=device,
        device=device,
        dtype=torch.float32,
    )
    config = model.config
    vision_config = model.get_vision_tower().config
    image_token_id = add_image_token(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token  # what training used (upstream's choice)
    # Left padding for batched generation; init_kwargs is what save_pretrained writes.
    tokenizer.padding_side = tokenizer.init_kwargs["padding_side"] = "left"
    rows = model.get_input_embeddings().weight.shape[0]
    vocab_rows = max(rows, len(tokenizer), image_token_id + 1)

    hf_config = build_hf_config(config, vision_config, image_token_id, vocab_rows, out_dtype)
    model.to(out_dtype)  # in place, after the float32 merge: no second copy of the weights
    state = convert_state_dict(model, vocab_rows, mm_setting(config, "mm_projector_type"))
    processor = build_processor(tokenizer, clip_processor, config, vision_config, image_token_id, conv_mode)
    generation_config = model.generation_config
    del model

    with atomic_output_dir(out, overwrite=overwrite) as staging:
        files = write_safetensors(state, staging, out_dtype, max_shard_size)
        hf_config.save_pretrained(str(staging))
        generation_config.save_pretrained(str(staging))
        processor.save_pretrained(str(staging))
        # Older loaders (transformers 4) read the image processor from its own file.
        processor.image_processor.save_pretrained(str(staging))
    logger.info(
        "Exported %s (%s, %d weight file(s), image token %d, vocabulary %d) to %s",
        model_path,
        out_dtype,
        len(files),
        image_token_id,
        vocab_rows,
        out,
    )
    return out


def build_parser() -> argparse.ArgumentParser:
    from llava.entry import HelpFormatter

    parser = Parser(
        formatter_class=HelpFormatter,
        prog="python -m llava.export_hf",
        description="Export a LLaVA-1.5 checkpoint (full, or a LoRA run with its base) as a transformers "
        "LlavaForConditionalGeneration folder with its LlavaProcessor, for transformers / vLLM / SGLang.",
    )
    parser.add_argument(
        "--model-path",
        required=True,
        help="a full LLaVA checkpoint, or a LoRA run's --output_dir (then also pass --model-base)",
    )
    parser.add_argument(
        "--model-base", default=None, help="the model a LoRA run was trained from (e.g. liuhaotian/llava-v1.5-7b)"
    )
    parser.add_argument("--out", required=True, help="output folder (must not exist unless --overwrite)")
    parser.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", *DTYPES],
        help="dtype of the written weights (default auto: the checkpoint's own)",
    )
    parser.add_argument(
        "--conv-mode",
        default="vicuna_v1",
        help="conversation template for the chat template (LLaVA-1.5: vicuna_v1); 'none' for none",
    )
    parser.add_argument("--max-shard-size", default="5GB", help="largest weight file (default 5GB)")
    parser.add_argument("--device", default="cpu", help="device to load and merge on (default cpu)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out once the export is done")
    return parser


def main(argv: list[str] | None = None) -> Path:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = export(
        args.model_path,
        args.out,
        model_base=args.model_base,
        dtype=args.dtype,
        conv_mode=args.conv_mode,
        overwrite=args.overwrite,
        max_shard_size=args.max_shard_size,
        device=args.device,
    )
    print(f"wrote {out}")
    return out


if __name__ == "__main__":
    from llava.entry import run

    sys.exit(run(main))
