#!/usr/bin/env bash
# The one GPU acceptance command. On a GPU machine with the project installed and no network:
#   (a) the gpu tests (pytest -m gpu: 4-bit QLoRA, ZeRO-2 through the launcher, answering and
#       merge on cuda, FlashAttention-2 against SDPA where flash-attn is installed);
#   (b) the main job end to end (MODE=gpu) on the tiny model and a synthetic OK-VQA, long enough
#       to rise well above chance (about 25%), printing its final score;
#   (c) the benchmarks on LLaVA-1.5-7B shapes: the model is built once, on the GPU in bf16, and
#       every stage reuses it (ZeRO-2 QLoRA recipe, plain Trainer, batched answering).
# Writes $OUT/gpu_check.json, prints one table, exits non-zero when any stage fails.
#
#   bash scripts/gpu_check.sh                 # OUT=gpu-check by default
#   STAGES="tests main" bash scripts/gpu_check.sh   # a subset: tests, main, bench
#   DRY_RUN=1 bash scripts/gpu_check.sh       # print the commands only (runs anywhere)
#
# A bare offline GPU machine with only torch: see docs/PERFORMANCE.md ("Running the GPU check").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-gpu-check}"
STAGES="${STAGES:-tests main bench}"
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
DEEPSPEED="${DEEPSPEED:-$(dirname "$PYTHON")/deepspeed}"
command -v "$DEEPSPEED" >/dev/null 2>&1 || DEEPSPEED=deepspeed
export WANDB_MODE=disabled PYTHONUNBUFFERED=1 HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
MODEL_7B="${MODEL_7B:-$OUT/llava-v1.5-7b-shapes}"
: > "$OUT/stages.tsv"

stage() {  # stage NAME COMMAND...: run it (or print it under DRY_RUN), log to $OUT/NAME.log, record its status
    # (a failed stage does not stop the others: the report at the end exits non-zero)
    local name=$1; shift
    if [ -n "${DRY_RUN:-}" ]; then
        printf '%s: ' "$name"; printf '%q ' "$@"; printf '\n'
        printf '%s\t0\t0\n' "$name" >> "$OUT/stages.tsv"
        return 0
    fi
    echo "== $name"
    local start=$SECONDS status=0
    "$@" > "$OUT/$name.log" 2>&1 || status=$?
    tail -n 5 "$OUT/$name.log"
    printf '%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - start))" >> "$OUT/stages.tsv"
}

if [ -z "${DRY_RUN:-}" ]; then
    if ! "$PYTHON" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
        echo "error: no CUDA device visible to $PYTHON: scripts/gpu_check.sh is for a GPU machine (DRY_RUN=1 prints its commands)." >&2
        exit 2
    fi
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu.txt" 2>/dev/null || true
    "$PYTHON" - > "$OUT/versions.json" <<'PY'
import importlib.metadata as m, json, torch
names = ["torch", "transformers", "peft", "accelerate", "deepspeed", "bitsandbytes", "flash-attn", "liger-kernel"]
def version(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return None
print(json.dumps({"device": torch.cuda.get_device_name(), "cuda": torch.version.cuda, **{n: version(n) for n in names}}))
PY
fi

# (a) the gpu tests
case " $STAGES " in *" tests "*)
    stage tests "$PYTHON" -m pytest -q -p no:cacheprovider -m gpu tests ;;
esac

# (b) the main job on the tiny model and a synthetic OK-VQA (12 epochs of 320 questions, as the demo)
case " $STAGES " in *" main "*)
    WORK="$OUT/main"
    [ -f "$WORK/llava-tiny/config.json" ] || stage main-model "$PYTHON" -m llava.model.tiny --out "$WORK/llava-tiny"
    stage main-data "$PYTHON" -m llava.data.synthetic --out "$WORK/raw" --train-size 320 --val-size 96
    stage main env MODE=gpu NUM_GPUS=1 PYTHON="$PYTHON" DEEPSPEED="$DEEPSPEED" \
        MODEL_NAME_OR_PATH="$WORK/llava-tiny" VISION_TOWER="$WORK/llava-tiny/clip-vision-tower" \
        OKVQA_DIR="$WORK/raw/okvqa" COCO_DIR="$WORK/raw/coco" DATA_DIR="$WORK/okvqa" \
        OUTPUT_DIR="$WORK/llava-tiny-okvqa-qlora" EPOCHS=12 BATCH_SIZE=8 LR=1e-2 PROJECTOR_LR=1e-2 \
        LORA_R=16 LORA_ALPHA=32 MODEL_MAX_LENGTH=512 VAL_SUBSET=48 REPORT_TO=none \
        bash scripts/finetune_qlora_okvqa.sh ;;
esac

# (c) the benchmarks on 7B shapes, one model for every stage
case " $STAGES " in *" bench "*)
    if [ ! -f "$MODEL_7B/config.json" ]; then
        stage bench-build "$PYTHON" -m llava.model.tiny --preset llava-v1.5-7b --device cuda --out "$MODEL_7B"
    fi
    BENCH=(scripts/benchmark.py --preset llava-v1.5-7b --model-dir "$MODEL_7B")
    TRAIN=(--bits 4 --bf16 --lora-r 128 --batch-size 16 --steps 10)
    # The recipe as the main script runs it (checkpointing decided from free memory); the plain
    # Trainer with upstream's flags (checkpointing on), to compare with upstream's own figure.
    stage bench-recipe "$DEEPSPEED" --num_gpus 1 "${BENCH[@]}" "${TRAIN[@]}" --gradient-checkpointing auto \
        --deepspeed scripts/zero2.json --json "$OUT/bench_recipe.json"
    stage bench-plain "$PYTHON" "${BENCH[@]}" "${TRAIN[@]}" --gradient-checkpointing True --json "$OUT/bench_plain.json"
    stage bench-answer "$PYTHON" "${BENCH[@]}" --mode eval --eval-batch-sizes 1 32 --questions 256 \
        --json "$OUT/bench_answer.json"
    # The static KV cache (transformers compiles the decode step); the first batches pay the compile.
    stage bench-answer-static "$PYTHON" "${BENCH[@]}" --mode eval --eval-batch-sizes 32 64 --questions 512 \
        --kv-cache static --json "$OUT/bench_answer_static.json" ;;
esac

[ -n "${DRY_RUN:-}" ] && exit 0
"$PYTHON" scripts/gpu_check_report.py "$OUT"
