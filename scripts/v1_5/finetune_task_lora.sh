#!/usr/bin/env bash
# Task LoRA fine-tune of LLaVA-1.5-7B: upstream's scripts/v1_5/finetune_task_lora.sh recipe
# (LoRA r 128 / alpha 256 on every linear layer of the language model, projector lr 2e-5,
# DeepSpeed ZeRO-3, bf16, one epoch), on the data in $DATA_PATH / $IMAGE_FOLDER.
#
#   bash scripts/v1_5/finetune_task_lora.sh                      # upstream's defaults below
#   DATA_PATH=playground/data/okvqa/train.json IMAGE_FOLDER=playground/data/coco \
#     bash scripts/v1_5/finetune_task_lora.sh --num_train_epochs 3   # extra flags go last and win
#
# Environment overrides (defaults in brackets): MODEL_NAME_OR_PATH [liuhaotian/llava-v1.5-7b],
# DATA_PATH [./playground/data/llava_v1_5_mix665k.json], IMAGE_FOLDER [./playground/data],
# OUTPUT_DIR [./checkpoints/llava-v1.5-7b-task-lora; keep "llava" and "lora" in its name so
# load_pretrained_model recognises the adapter], REPORT_TO [wandb], DEEPSPEED_LAUNCH_ARGS
# [empty; for example "--num_gpus 2"]. The legacy transformers-4.37 flags below are upstream's;
# llava/train/arguments.py maps them to transformers 5 with a note each. Run from the
# repository root (the paths are relative to it, as upstream's).
set -euo pipefail

MODEL_NAME_OR_PATH="${MODEL_NAME_OR_PATH:-liuhaotian/llava-v1.5-7b}"
DATA_PATH="${DATA_PATH:-./playground/data/llava_v1_5_mix665k.json}"
IMAGE_FOLDER="${IMAGE_FOLDER:-./playground/data}"
OUTPUT_DIR="${OUTPUT_DIR:-./checkpoints/llava-v1.5-7b-task-lora}"
REPORT_TO="${REPORT_TO:-wandb}"
read -r -a LAUNCH_ARGS <<< "${DEEPSPEED_LAUNCH_ARGS:-}"

deepspeed "${LAUNCH_ARGS[@]}" llava/train/train_mem.py \
    --lora_enable True --lora_r 128 --lora_alpha 256 --mm_projector_lr 2e-5 \
    --deepspeed ./scripts/zero3.json \
    --model_name_or_path "$MODEL_NAME_OR_PATH" \
    --version v1 \
    --data_path "$DATA_PATH" \
    --image_folder "$IMAGE_FOLDER" \
    --vision_tower openai/clip-vit-large-patch14-336 \
    --mm_projector_type mlp2x_gelu \
    --mm_vision_select_layer -2 \
    --mm_use_im_start_end False \
    --mm_use_im_patch_token False \
    --image_aspect_ratio pad \
    --group_by_modality_length True \
    --bf16 True \
    --output_dir "$OUTPUT_DIR" \
    --num_train_epochs 1 \
    --per_device_train_batch_size 16 \
    --per_device_eval_batch_size 4 \
    --gradient_accumulation_steps 1 \
    --evaluation_strategy "no" \
    --save_strategy "steps" \
    --save_steps 50000 \
    --save_total_limit 1 \
    --learning_rate 2e-4 \
    --weight_decay 0. \
    --warmup_ratio 0.03 \
    --lr_scheduler_type "cosine" \
    --logging_steps 1 \
    --tf32 True \
    --model_max_length 2048 \
    --gradient_checkpointing True \
    --dataloader_num_workers 4 \
    --lazy_preprocess True \
    --report_to "$REPORT_TO" \
    "$@"
