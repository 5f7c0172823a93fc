#!/usr/bin/env bash
# The main job: QLoRA fine-tune of LLaVA-1.5-7B on OK-VQA, end to end.
#
#   1. convert OK-VQA to LLaVA format (skipped when already converted),
#   2. deepspeed llava/train/train_mem.py: 4-bit NF4 base, LoRA r 128 / alpha 256,
#      projector at lr 2e-5, ZeRO-2, bf16, 3 epochs, evaluation (eval loss + VQA accuracy)
#      on a held-out val subset after every epoch, best checkpoint kept by accuracy,
#   3. answer the whole OK-VQA val split with the best model (batched model_vqa),
#   4. print its VQA accuracy.
#
#   bash scripts/finetune_qlora_okvqa.sh                    # GPU node: the real recipe
#   NUM_GPUS=4 EPOCHS=1 bash scripts/finetune_qlora_okvqa.sh --save_total_limit 1   # extra flags go to train_mem.py
#   MODE=demo bash scripts/finetune_qlora_okvqa.sh          # the CPU demo, also on a GPU node
#   DATASET=aokvqa bash scripts/finetune_qlora_okvqa.sh     # A-OKVQA (direct answer + multiple choice)
#   DATASET=custom DATA_DIR=playground/data/my_vqa bash scripts/finetune_qlora_okvqa.sh
#                  # your own data, converted by python -m llava.data.vqa (docs/CUSTOM_DATA.md)
#
# Without CUDA the same pipeline runs on a tiny random LLaVA and a synthetic OK-VQA
# (coloured shapes; questions answerable from the picture), with 4-bit QLoRA under
# DeepSpeed on two CPU processes: a few minutes on 2 cores, nothing downloaded.
#
# Environment overrides (real recipe defaults; the demo has its own, see below):
#   DATASET [okvqa]: okvqa, aokvqa or custom (the demo makes synthetic data in each layout)
#   AOKVQA_DIR [playground/data/aokvqa_raw]  aokvqa_v1p0_{train,val}.json (COCO_DIR then holds train2017/, val2017/)
#   CUSTOM_INPUT                           custom: a file/folder for python -m llava.data.vqa, converted
#                                          into DATA_DIR with VAL_FRACTION [0.1] when DATA_DIR is empty
#   MODEL_NAME_OR_PATH [liuhaotian/llava-v1.5-7b]   VISION_TOWER [openai/clip-vit-large-patch14-336]
#   OKVQA_DIR [playground/data/okvqa_raw]  the four official JSON files
#   COCO_DIR [playground/data/coco]        train2014/ and val2014/ images
#   HF_TRAIN, HF_VAL                       instead: local Hugging Face parquet/arrow exports
#   DATA_DIR [playground/data/okvqa]       converted data (reused when present)
#   OUTPUT_DIR [checkpoints/llava-v1.5-7b-okvqa-qlora]   ("llava" + "lora" in the name: upstream's loader rule)
#   EPOCHS [3]  NUM_GPUS [all visible]  BATCH_SIZE [16 per GPU]  GRAD_ACCUM [1]  LR [2e-4]
#   PROJECTOR_LR [2e-5]  LORA_R [128]  LORA_ALPHA [256]  MODEL_MAX_LENGTH [2048]
#   VAL_SUBSET [500 questions scored between epochs]  EVAL_BATCH_SIZE [16]  ANSWER_BATCH_SIZE [32]
#   GRADIENT_CHECKPOINTING [auto: on only when the activations would not fit; True, False]
#   DEEPSPEED_CONFIG [scripts/zero2.json]  REPORT_TO [wandb when installed, offline without an API key; else none]
#   PYTHON [.venv/bin/python if present]   DRY_RUN [1: print the commands instead of running them]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
DEEPSPEED="${DEEPSPEED:-$(dirname "$PYTHON")/deepspeed}"
command -v "$DEEPSPEED" >/dev/null 2>&1 || DEEPSPEED=deepspeed

run() {  # run a step, or only print it under DRY_RUN
    if [ -n "${DRY_RUN:-}" ]; then printf '%q ' "$@"; printf '\n'; else "$@"; fi
}

DATASET="${DATASET:-okvqa}"
case "$DATASET" in
    okvqa|aokvqa|custom) ;;
    *) echo "error: DATASET must be okvqa, aokvqa or custom, got '$DATASET'" >&2; exit 2 ;;
esac
CUDA_GPUS=$("$PYTHON" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)')
if [ "$CUDA_GPUS" = 0 ]; then MODE="${MODE:-demo}"; else MODE="${MODE:-gpu}"; fi

if [ "$MODE" = demo ]; then
    cat <<'BANNER'
==============================================================================
 No CUDA device: running the embedded CPU demo. Same pipeline as the real job
 (OK-VQA converter -> DeepSpeed ZeRO-2 4-bit QLoRA -> evaluation every epoch ->
 batched answering -> VQA accuracy), on a tiny random LLaVA and a synthetic
 OK-VQA whose answers (colour / shape of a drawn object) are in the pictures.
 Chance is about 25%. The real recipe needs a GPU: see docs/TRAINING.md.
==============================================================================
BANNER
    WORK="${DEMO_DIR:-playground/data/demo}"
    MODEL_NAME_OR_PATH="${MODEL_NAME_OR_PATH:-$WORK/llava-tiny}"
    VISION_TOWER="${VISION_TOWER:-$MODEL_NAME_OR_PATH/clip-vision-tower}"
    OKVQA_DIR="${OKVQA_DIR:-$WORK/raw/okvqa}"
    AOKVQA_DIR="${AOKVQA_DIR:-$WORK/raw_aokvqa/aokvqa}"
    if [ "$DATASET" = aokvqa ]; then COCO_DIR="${COCO_DIR:-$WORK/raw_aokvqa/coco}"; else COCO_DIR="${COCO_DIR:-$WORK/raw/coco}"; fi
    CUSTOM_INPUT="${CUSTOM_INPUT:-$WORK/raw_csv/csv/vqa.csv}"; VAL_FRACTION="${VAL_FRACTION:-0.25}"
    DATA_DIR="${DATA_DIR:-$WORK/$DATASET}"
    OUTPUT_DIR="${OUTPUT_DIR:-checkpoints/llava-tiny-$DATASET-qlora}"
    EPOCHS="${EPOCHS:-12}"; NUM_GPUS="${NUM_GPUS:-2}"; BATCH_SIZE="${BATCH_SIZE:-8}"
    LR="${LR:-1e-2}"; PROJECTOR_LR="${PROJECTOR_LR:-1e-2}"; LORA_R="${LORA_R:-16}"; LORA_ALPHA="${LORA_ALPHA:-32}"
    MODEL_MAX_LENGTH="${MODEL_MAX_LENGTH:-512}"; VAL_SUBSET="${VAL_SUBSET:-48}"
    DEMO_TRAIN_SIZE="${DEMO_TRAIN_SIZE:-320}"; DEMO_VAL_SIZE="${DEMO_VAL_SIZE:-96}"
    GRADIENT_CHECKPOINTING="${GRADIENT_CHECKPOINTING:-auto}"; TF32=False; WORKERS=0
    # Two CPU processes on two cores: one thread each (see PLATFORM_NOTES).
    export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    # Without CUDA, say so to DeepSpeed (it warns in every process when it has to guess).
    if [ "$CUDA_GPUS" = 0 ]; then export DS_ACCELERATOR="${DS_ACCELERATOR:-cpu}"; fi
    if [ ! -f "$MODEL_NAME_OR_PATH/config.json" ]; then
        run "$PYTHON" -m llava.model.tiny --out "$MODEL_NAME_OR_PATH"
    fi
    if [ "$DATASET" = okvqa ] && [ ! -f "$OKVQA_DIR/mscoco_val2014_annotations.json" ]; then
        run "$PYTHON" -m llava.data.synthetic --out "$(dirname "$OKVQA_DIR")" \
            --train-size "$DEMO_TRAIN_SIZE" --val-size "$DEMO_VAL_SIZE"
    elif [ "$DATASET" = aokvqa ] && [ ! -f "$AOKVQA_DIR/aokvqa_v1p0_val.json" ]; then
        run "$PYTHON" -m llava.data.synthetic --layout aokvqa --out "$(dirname "$AOKVQA_DIR")" \
            --train-size "$DEMO_TRAIN_SIZE" --val-size "$DEMO_VAL_SIZE"
    elif [ "$DATASET" = custom ] && [ ! -e "$CUSTOM_INPUT" ] && [ ! -f "$DATA_DIR/summary.json" ]; then
        run "$PYTHON" -m llava.data.synthetic --layout csv --out "$(dirname "$(dirname "$CUSTOM_INPUT")")" \
            --train-size "$DEMO_TRAIN_SIZE" --val-size "$DEMO_VAL_SIZE"
    fi
else
    MODEL_NAME_OR_PATH="${MODEL_NAME_OR_PATH:-liuhaotian/llava-v1.5-7b}"
    VISION_TOWER="${VISION_TOWER:-openai/clip-vit-large-patch14-336}"
    OKVQA_DIR="${OKVQA_DIR:-playground/data/okvqa_raw}"
    AOKVQA_DIR="${AOKVQA_DIR:-playground/data/aokvqa_raw}"
    COCO_DIR="${COCO_DIR:-playground/data/coco}"
    CUSTOM_INPUT="${CUSTOM_INPUT:-}"; VAL_FRACTION="${VAL_FRACTION:-0.1}"
    DATA_DIR="${DATA_DIR:-playground/data/$DATASET}"
    OUTPUT_DIR="${OUTPUT_DIR:-checkpoints/llava-v1.5-7b-$DATASET-qlora}"
    EPOCHS="${EPOCHS:-3}"; NUM_GPUS="${NUM_GPUS:-$CUDA_GPUS}"; BATCH_SIZE="${BATCH_SIZE:-16}"
    LR="${LR:-2e-4}"; PROJECTOR_LR="${PROJECTOR_LR:-2e-5}"; LORA_R="${LORA_R:-128}"; LORA_ALPHA="${LORA_ALPHA:-256}"
    MODEL_MAX_LENGTH="${MODEL_MAX_LENGTH:-2048}"; VAL_SUBSET="${VAL_SUBSET:-500}"
    GRADIENT_CHECKPOINTING="${GRADIENT_CHECKPOINTING:-auto}"; TF32=True; WORKERS=4
fi
GRAD_ACCUM="${GRAD_ACCUM:-1}"; EVAL_BATCH_SIZE="${EVAL_BATCH_SIZE:-16}"; ANSWER_BATCH_SIZE="${ANSWER_BATCH_SIZE:-32}"
DEEPSPEED_CONFIG="${DEEPSPEED_CONFIG:-scripts/zero2.json}"  # 4-bit weights need ZeRO-2
if [ -z "${REPORT_TO:-}" ]; then
    if "$PYTHON" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("wandb") is None)' 2>/dev/null; then
        REPORT_TO=wandb
    else
        REPORT_TO=none
        echo "note: wandb is not installed: no W&B logging (pip install -e '.[train]', or set REPORT_TO)." >&2
    fi
fi

# --- 1. Data: converted already, or convert now (clear message when inputs are missing) ---
converted() { [ -f "$DATA_DIR/train.json" ] && [ -f "$DATA_DIR/val_subset.json" ] && [ -f "$DATA_DIR/summary.json" ]; }
if ! converted && [ "$DATASET" = custom ]; then
    if [ -z "$CUSTOM_INPUT" ]; then
        {
            echo "error: DATASET=custom needs DATA_DIR to be a folder written by python -m llava.data.vqa"
            echo "(train.json, val_subset.json, summary.json); $DATA_DIR has none. Convert your data first:"
            echo "  python -m llava.data.vqa --input my_vqa.csv --out $DATA_DIR --val-fraction 0.1"
            echo "or set CUSTOM_INPUT=my_vqa.csv to convert it here. See docs/CUSTOM_DATA.md."
        } >&2
        exit 2
    fi
    run "$PYTHON" -m llava.data.vqa --input "$CUSTOM_INPUT" --out "$DATA_DIR" \
        --val-fraction "$VAL_FRACTION" --val-size "$VAL_SUBSET"
elif ! converted && [ "$DATASET" = aokvqa ]; then
    missing=()
    for split in train val; do
        [ -f "$AOKVQA_DIR/aokvqa_v1p0_$split.json" ] || [ -n "${DRY_RUN:-}" ] || missing+=("$AOKVQA_DIR/aokvqa_v1p0_$split.json")
        [ -d "$COCO_DIR/${split}2017" ] || [ -n "${DRY_RUN:-}" ] || missing+=("$COCO_DIR/${split}2017/")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        {
            echo "error: A-OKVQA is not here yet. Missing:"
            printf '  %s\n' "${missing[@]}"
            echo "Get aokvqa_v1p0_{train,val}.json into AOKVQA_DIR and COCO 2017 train/val images"
            echo "(http://images.cocodataset.org/zips/train2017.zip, val2017.zip) into COCO_DIR. See docs/CUSTOM_DATA.md."
        } >&2
        exit 2
    fi
    run "$PYTHON" -m llava.data.aokvqa --aokvqa-dir "$AOKVQA_DIR" --coco-dir "$COCO_DIR" --out "$DATA_DIR" \
        --val-size "$VAL_SUBSET"
elif ! converted; then
    if [ -n "${HF_TRAIN:-}" ] || [ -n "${HF_VAL:-}" ]; then
        read -r -a HF_TRAIN_FILES <<< "${HF_TRAIN:?HF_TRAIN is needed with HF_VAL}"
        read -r -a HF_VAL_FILES <<< "${HF_VAL:?HF_VAL is needed with HF_TRAIN}"
        SOURCE=(--hf-train "${HF_TRAIN_FILES[@]}" --hf-val "${HF_VAL_FILES[@]}")
    else
        missing=()
        for name in OpenEnded_mscoco_train2014_questions.json OpenEnded_mscoco_val2014_questions.json \
                    mscoco_train2014_annotations.json mscoco_val2014_annotations.json; do
            [ -f "$OKVQA_DIR/$name" ] || [ -n "${DRY_RUN:-}" ] || missing+=("$OKVQA_DIR/$name")
        done
        for split in train2014 val2014; do
            [ -d "$COCO_DIR/$split" ] || [ -n "${DRY_RUN:-}" ] || missing+=("$COCO_DIR/$split/")
        done
        if [ "${#missing[@]}" -gt 0 ]; then
            {
                echo "error: OK-VQA is not here yet. Missing:"
                printf '  %s\n' "${missing[@]}"
                echo "Get the four OK-VQA JSON files (https://okvqa.allenai.org/download.html) into OKVQA_DIR"
                echo "and COCO 2014 train/val images (http://images.cocodataset.org/zips/train2014.zip, val2014.zip)"
                echo "into COCO_DIR, or point HF_TRAIN/HF_VAL at local parquet exports. See docs/OKVQA.md."
            } >&2
            exit 2
        fi
        SOURCE=(--okvqa-dir "$OKVQA_DIR" --coco-dir "$COCO_DIR")
    fi
    run "$PYTHON" -m llava.data.okvqa "${SOURCE[@]}" --out "$DATA_DIR" --val-size "$VAL_SUBSET"
fi
if [ -n "${DRY_RUN:-}" ] && ! converted; then
    IMAGE_FOLDER="$COCO_DIR"; [ "$DATASET" = custom ] && IMAGE_FOLDER=$(dirname "$CUSTOM_INPUT")
else
    IMAGE_FOLDER=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["image_folder"])' "$DATA_DIR/summary.json")
fi
if [ "$MODE" != demo ] && [ ! -e "$MODEL_NAME_OR_PATH" ]; then
    echo "note: $MODEL_NAME_OR_PATH is not a local folder: it loads from the Hugging Face cache or downloads (~14 GB)." >&2
fi

# --- 2. Train, evaluating after every epoch; the best epoch by VQA accuracy ends in OUTPUT_DIR ---
# A free port unless MASTER_PORT is set: two jobs on one node would both take 29500 (EADDRINUSE).
MASTER_PORT="${MASTER_PORT:-$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')}"
# SIGTERM/SIGINT (Slurm, Kubernetes, Ctrl-C) go to the whole training tree: the workers finish
# their step, write a checkpoint and exit; then this script exits 75 (run it again to resume).
# Killing the deepspeed runner alone would leave the launcher and the workers running.
train_tree() {
    if [ -n "${DRY_RUN:-}" ]; then run "$@"; return; fi
    setsid "$@" &  # its own process group, so one kill reaches the runner, launcher and workers
    local group=$! signalled=""
    forward() { signalled=1; kill "-$1" -- "-$group" 2>/dev/null || true; }
    trap 'forward TERM' TERM; trap 'forward INT' INT
    local status=0
    while :; do
        wait "$group" && status=0 || status=$?
        kill -0 "$group" 2>/dev/null || break  # wait returns early when a signal arrives
    done
    while kill -0 -- "-$group" 2>/dev/null; do sleep 1; done  # workers may outlive the runner
    trap - TERM INT
    if [ -n "$signalled" ]; then
        echo "Training was stopped by a signal; its checkpoint is in $OUTPUT_DIR: run the same command to resume." >&2
        exit 75
    fi
    return "$status"
}
train_tree "$DEEPSPEED" --num_gpus "$NUM_GPUS" --master_port "$MASTER_PORT" llava/train/train_mem.py \
    --lora_enable True --lora_r "$LORA_R" --lora_alpha "$LORA_ALPHA" --mm_projector_lr "$PROJECTOR_LR" \
    --bits 4 \
    --deepspeed "$DEEPSPEED_CONFIG" \
    --model_name_or_path "$MODEL_NAME_OR_PATH" \
    --version v1 \
    --data_path "$DATA_DIR/train.json" \
    --image_folder "$IMAGE_FOLDER" \
    --validation_data_path "$DATA_DIR/val_subset.json" \
    --vision_tower "$VISION_TOWER" \
    --mm_projector_type mlp2x_gelu \
    --mm_vision_select_layer -2 \
    --mm_use_im_start_end False \
    --mm_use_im_patch_token False \
    --image_aspect_ratio pad \
    --group_by_modality_length True \
    --bf16 True \
    --output_dir "$OUTPUT_DIR" \
    --num_train_epochs "$EPOCHS" \
    --per_device_train_batch_size "$BATCH_SIZE" \
    --per_device_eval_batch_size "$EVAL_BATCH_SIZE" \
    --gradient_accumulation_steps "$GRAD_ACCUM" \
    --eval_strategy epoch \
    --save_strategy epoch \
    --save_total_limit 2 \
    --metric_for_best_model vqa_accuracy \
    --load_best_model_at_end True \
    --eval_max_new_tokens 16 \
    --learning_rate "$LR" \
    --weight_decay 0. \
    --warmup_steps 0.03 \
    --lr_scheduler_type cosine \
    --logging_steps 1 \
    --tf32 "$TF32" \
    --model_max_length "$MODEL_MAX_LENGTH" \
    --activation_checkpointing "$GRADIENT_CHECKPOINTING" \
    --dataloader_num_workers "$WORKERS" \
    --lazy_preprocess True \
    --report_to "$REPORT_TO" \
    "$@"

# --- 3. Answer the whole val split with the best model, 4. score it ---
ANSWERS="$OUTPUT_DIR/eval/${DATASET}_val_answers.jsonl"
MC_ANSWERS="$OUTPUT_DIR/eval/${DATASET}_val_answers_mc.jsonl"
# model_vqa resumes a killed answering run; answers older than the model are stale.
for file in "$ANSWERS" "$MC_ANSWERS"; do
    if [ -f "$file" ] && [ "$file" -ot "$OUTPUT_DIR/adapter_model.safetensors" ]; then run rm "$file"; fi
done
# One GPU holds the merged 7B model; device_map=auto would spread it over all of them.
DEVICE=cuda:0; [ "$MODE" = demo ] && DEVICE=cpu
answer() {  # answer(question file, answers file)
    run "$PYTHON" -m llava.eval.model_vqa \
        --model-path "$OUTPUT_DIR" --model-base "$MODEL_NAME_OR_PATH" \
        --question-file "$1" --image-folder "$IMAGE_FOLDER" \
        --answers-file "$2" --conv-mode vicuna_v1 --temperature 0 --max-new-tokens 16 \
        --batch-size "$ANSWER_BATCH_SIZE" --device "$DEVICE"
}
answer "$DATA_DIR/val_questions.jsonl" "$ANSWERS"
# A-OKVQA is scored by llava.eval.eval_vqa (direct answer and multiple choice) where it exists.
if [ "$DATASET" = aokvqa ] && "$PYTHON" -c "import llava.eval.eval_vqa" >/dev/null 2>&1; then
    run "$PYTHON" -m llava.eval.eval_vqa --answers "$ANSWERS" \
        --annotations "$DATA_DIR/val_annotations.json" --json "$OUTPUT_DIR/eval/${DATASET}_val_score.json"
    answer "$DATA_DIR/val_questions_mc.jsonl" "$MC_ANSWERS"
    run "$PYTHON" -m llava.eval.eval_vqa --task multiple-choice --answers "$MC_ANSWERS" \
        --annotations "$DATA_DIR/val_annotations.json" --json "$OUTPUT_DIR/eval/${DATASET}_val_score_mc.json"
else
    if [ "$DATASET" = aokvqa ]; then
        echo "note: llava.eval.eval_vqa is not installed: direct answers scored with llava.eval.eval_okvqa," \
            "multiple choice not run" >&2
    fi
    run "$PYTHON" -m llava.eval.eval_okvqa --answers "$ANSWERS" \
        --annotations "$DATA_DIR/val_annotations.json" --json "$OUTPUT_DIR/eval/${DATASET}_val_score.json"
fi
