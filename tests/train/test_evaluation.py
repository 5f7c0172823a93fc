"""Evaluation between epochs (llava/train/evaluation.py): flags, prompts, sharding, the
evaluator on the tiny model, and whole runs through ``train()`` that write per-epoch
metrics and files, keep the best checkpoint by accuracy and agree with the offline scorer."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from launch import ROOT, _free_port, recipe_flags

from llava.conversation import conv_templates, template_for_version
from llava.eval.batching import (
    generation_items,
    generation_prompt,
)
from llava.model.image_tokens import num_image_tokens
from llava.train.data import conversation_prompt, preprocess_multimodal
from llava.train.eval_arguments import needs_generation, validate_evaluation_args
from llava.train.eval_reporting import (
    CURVES_FILE,
    EVAL_FOLDER,
    HISTORY_FILE,
    read_history,
)
from llava.train.evaluation import LLaVAEvaluator, build_evaluator

HELPER = Path(__file__).with_name("evaluation_train.py")
CATEGORIES = ("one", "two", "three")


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def validation_dir(colour_vqa_dir, tmp_path_factory):
    """The colour set as validation data: ``question_type`` per record, one record without
    ``answers`` (scored against its reply), images in the colour set's folder."""
    entries = json.loads((colour_vqa_dir / "train.json").read_text())
    for index, entry in enumerate(entries):
        if "image" in entry:
            entry["question_type"] = CATEGORIES[index % 3]
            entry["question_id"] = 1000 + index
    del entries[3]["answers"]
    folder = tmp_path_factory.mktemp("validation")
    (folder / "val.json").write_text(json.dumps(entries))
    return folder


@pytest.fixture()
def tokenizer(tiny_llava_dir):
    from llava.train.model_setup import load_tokenizer

    return load_tokenizer(
        SimpleNamespace(model_name_or_path=str(tiny_llava_dir)), SimpleNamespace(cache_dir=None, model_max_length=512)
    )


def evaluator_for(model, tokenizer, validation_dir, colour_vqa_dir, tmp_path, **overrides) -> LLaVAEvaluator:
    """An evaluator as ``build_evaluator`` makes one for ``--version v1``."""
    args = dict(
        data_args=SimpleNamespace(
            image_folder=str(colour_vqa_dir / "images"),
            image_processor=model.get_vision_tower().image_processor,
            is_multimodal=True,
            mm_use_im_start_end=False,
            image_aspect_ratio="pad",
            skip_flagged_samples=False,
        ),
        training_args=SimpleNamespace(
            validation_data_path=str(validation_dir / "val.json"),
            validation_image_folder=None,
            eval_generate=None,
            eval_max_samples=None,
            eval_max_new_tokens=4,
            eval_log_examples=4,
            eval_stem=False,
            eval_normalization="lmms-eval",
            eval_multiple_choice=None,
            per_device_eval_batch_size=4,
            model_max_length=512,
            seed=0,
            data_seed=None,
            metric_for_best_model=None,
            output_dir=str(tmp_path / "run"),
        ),
    )
    for key, value in overrides.items():
        group = next(name for name in ("training_args", "data_args") if hasattr(args[name], key))
        setattr(args[group], key, value)
    return build_evaluator(
        tokenizer,
        template_for_version("v1"),
        args["data_args"],
        args["training_args"],
        num_image_tokens(str(Path(model.config.mm_vision_tower)), "patch"),
    )


# ---------------------------------------------------------------------------------- flags


def flag_values(**overrides):
    training = SimpleNamespace(
        validation_data_path=None,
        validation_image_folder=None,
        eval_strategy="no",
        eval_on_start=False,
        eval_generate=None,
        metric_for_best_model=None,
        greater_is_better=None,
        load_best_model_at_end=False,
        save_strategy="steps",
        eval_max_samples=None,
        eval_max_new_tokens=16,
        eval_log_examples=32,
        per_device_eval_batch_size=8,
        eval_normalization="lmms-eval",
    )
    for key, value in overrides.items():
        setattr(training, key, value)
    return None, None, training


def test_good_evaluation_flags_have_no_problems(validation_dir):
    assert validate_evaluation_args(*flag_values()) == []
    assert (
        validate_evaluation_args(
            *flag_values(
                validation_data_path=str(validation_dir / "val.json"),
                eval_strategy="epoch",
                eval_on_start=True,
                metric_for_best_model="vqa_accuracy",
                load_best_model_at_end=True,
                save_strategy="epoch",
                eval_max_samples=10,
            )
        )
        == []
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(eval_on_start=True), "--eval_on_start True without --validation_data_path"),
        (
            dict(validation_data_path="missing.json", eval_strategy="epoch"),
            "--validation_data_path missing.json: no such file",
        ),
        (dict(validation_data_path="VALID", eval_strategy="no"), "nothing would evaluate; add --eval_strategy epoch"),
        (
            dict(validation_data_path="VALID", eval_strategy="epoch", validation_image_folder="nowhere"),
            "--validation_image_folder nowhere: no such folder",
        ),
        (
            dict(
                validation_data_path="VALID",
                eval_strategy="epoch",
                metric_for_best_model="vqa_accuracy",
                eval_generate=False,
            ),
            "drop --eval_generate False",
        ),
        (
            dict(
                validation_data_path="VALID",
                eval_strategy="epoch",
                metric_for_best_model="eval_vqa_accuracy/one",
                greater_is_better=False,
            ),
            "higher accuracy is better",
        ),
        (
            dict(
                validation_data_path="VALID", eval_strategy="epoch", load_best_model_at_end=True, save_strategy="steps"
            ),
            "use --save_strategy epoch",
        ),
        (dict(load_best_model_at_end=True, save_strategy="epoch"), "--load_best_model_at_end True without evaluations"),
        (dict(eval_max_samples=0), "--eval_max_samples 0"),
        (dict(eval_max_new_tokens=0), "--eval_max_new_tokens 0"),
        (dict(eval_log_examples=-1), "--eval_log_examples -1"),
        (dict(eval_normalization="vqa"), "--eval_normalization vqa: use one of lmms-eval, official"),
    ],
)
def test_each_bad_combination_is_reported_with_its_fix(validation_dir, overrides, message):
    if overrides.get("validation_data_path") == "VALID":
        overrides["validation_data_path"] = str(validation_dir / "val.json")
    problems = validate_evaluation_args(*flag_values(**overrides))
    assert any(message in problem for problem in problems), problems


def test_metric_names_that_need_generation():
    assert needs_generation("vqa_accuracy") and needs_generation("eval_exact_match")
    assert needs_generation("choice_accuracy")
    assert needs_generation("eval_vqa_accuracy/one")
    assert not needs_generation("loss") and not needs_generation("eval_loss") and not needs_generation(None)


# ------------------------------------------------------------------------ prompts and items


@pytest.mark.parametrize("key", ["v1", "llava_v1", "v0", "llava_llama_2", "mistral_instruct", "chatml_direct", "mpt"])
@pytest.mark.parametrize("start_end", [False, True])
def test_generation_prompt_is_the_training_prompt_up_to_the_answer(make_data_args, key, start_end):
    template = conv_templates[key]
    data_args = make_data_args(mm_use_im_start_end=start_end)
    turns = [{"from": "human", "value": "What colour is the shape?\n<image>"}, {"from": "gpt", "value": "red"}]
    training_prompt, spans = conversation_prompt(
        preprocess_multimodal([copy.deepcopy(turns)], data_args, template)[0], template
    )
    prompt = generation_prompt(turns[0]["value"], template, True, data_args)
    assert training_prompt.startswith(prompt)
    assert "red" in training_prompt[len(prompt) :]
    assert spans[0][0] >= len(prompt) - 1  # nothing the model learns is inside the prompt (v1 learns the space)


def test_generation_items_keep_ids_answers_categories_and_skip_unscorable(validation_dir, make_data_args):
    entries = json.loads((validation_dir / "val.json").read_text())
    entries.append({"id": "lonely", "conversations": [{"from": "gpt", "value": "no question"}]})
    items = generation_items(entries, template_for_version("v1"), make_data_args())
    assert len(items) == len(entries) - 1
    first = items[0]
    assert first.question_id == 1000 and first.image == "0000.png" and first.question_type == "one"
    assert first.question == "What colour is the shape?\nAnswer the question using a single word or phrase."
    assert first.prompt.endswith("ASSISTANT:") and "<image>\nWhat colour" in first.prompt
    assert items[3].answers == (entries[3]["conversations"][1]["value"],)  # no 'answers': its reply
    text_only = items[-1]
    assert text_only.image is None and text_only.question_id == "t1" and text_only.answers == ("two",)


# --------------------------------------------------------------------- the evaluator, in-process


def test_evaluator_scores_writes_files_and_restores_the_model(
    tiny_llava, tokenizer, validation_dir, colour_vqa_dir, tmp_path
):
    evaluator = evaluator_for(tiny_llava, tokenizer, validation_dir, colour_vqa_dir, tmp_path)
    assert len(evaluator.eval_dataset) == 26 and len(evaluator.items) == 26
    tiny_llava.train()
    tiny_llava.config.use_cache = False
    metrics = evaluator.evaluate(tiny_llava, epoch=1.0, global_step=7)
    assert tiny_llava.training and tiny_llava.config.use_cache is False

    assert set(metrics) == {
        "loss",
        "vqa_accuracy",
        "exact_match",
        "vqa_accuracy/one",
        "vqa_accuracy/two",
        "vqa_accuracy/three",
        "generation_count",
        "generation_seconds",
    }
    assert metrics["generation_count"] == 26 and 0 < metrics["loss"] < 20
    folder = tmp_path / "run" / EVAL_FOLDER
    records = [json.loads(line) for line in (folder / "epoch_1.jsonl").read_text().splitlines()]
    assert [r["question_id"] for r in records[:2]] == [1000, 1001] and records[-1]["question_id"] == "t1"
    assert set(records[0]) == {
        "question_id",
        "question",
        "image",
        "prediction",
        "answers",
        "question_type",
        "vqa_accuracy",
        "exact_match",
    }
    from llava.eval.vqa_accuracy import score_predictions

    assert score_predictions(records)["vqa_accuracy"] == metrics["vqa_accuracy"]
    history = read_history(folder)
    assert [(h["tag"], h["global_step"], h["eval_loss"]) for h in history] == [("epoch_1", 7, metrics["loss"])]
    assert (folder / CURVES_FILE).read_bytes().startswith(b"\x89PNG")
    assert not [path for path in folder.iterdir() if path.name.startswith(".")], "temporary files left"


def test_batch_size_changes_neither_answers_nor_loss(tiny_llava, tokenizer, validation_dir, colour_vqa_dir, tmp_path):
    one = evaluator_for(
        tiny_llava,
        tokenizer,
        validation_dir,
        colour_vqa_dir,
        tmp_path,
        per_device_eval_batch_size=1,
        eval_max_new_tokens=6,
    )
    many = evaluator_for(
        tiny_llava,
        tokenizer,
        validation_dir,
        colour_vqa_dir,
        tmp_path,
        per_device_eval_batch_size=16,
        eval_max_new_tokens=6,
    )
    assert one.predict(tiny_llava) == many.predict(tiny_llava)
    assert one.loss(tiny_llava) == pytest.approx(many.loss(tiny_llava), rel=1e-5)


def test_predictions_are_model_vqa_answers(tiny_llava, tokenizer, validation_dir, colour_vqa_dir, tmp_path):
    """The evaluator and offline answering share build_prompt/answer_batch: same text."""
    from PIL import Image

    from llava.eval.generation import GenerationSettings, answer_batch, build_prompt
    from llava.mm_utils import process_images

    evaluator = evaluator_for(tiny_llava, tokenizer, validation_dir, colour_vqa_dir, tmp_path, eval_max_new_tokens=6)
    items = [item for item in evaluator.items if item.image][:4]
    prompts = [build_prompt(item.question, template_for_version("v1"), True) for item in items]
    pictures = [Image.open(colour_vqa_dir / "images" / item.image).convert("RGB") for item in items]
    images = process_images(pictures, tiny_llava.get_vision_tower().image_processor, tiny_llava.config)
    expected = answer_batch(tiny_llava, tokenizer, prompts, images, GenerationSettings(max_new_tokens=6))
    evaluator.items = items
    assert evaluator.predict(tiny_llava) == expected


def test_generation_subset_and_answerless_validation(tiny_llava, tokenizer, validation_dir, colour_vqa_dir, tmp_path):
    subset = evaluator_for(tiny_llava, tokenizer, validation_dir, colour_vqa_dir, tmp_path, eval_max_samples=5)
    assert len(subset.items) == 5 and len(subset.eval_dataset) == 26  # the loss still sees everything

    entries = json.loads((validation_dir / "val.json").read_text())
    for entry in entries:
        entry.pop("answers", None)
    (tmp_path / "plain.json").write_text(json.dumps(entries))
    plain = evaluator_for(
        tiny_llava,
        tokenizer,
        validation_dir,
        colour_vqa_dir,
        tmp_path,
        validation_data_path=str(tmp_path / "plain.json"),
    )
    assert plain.items == []  # no 'answers' anywhere: loss only by default
    assert set(plain.evaluate(tiny_llava)) == {"loss"}
    with pytest.raises(ValueError, match="needs generated answers"):
        evaluator_for(
            tiny_llava,
            tokenizer,
            validation_dir,
            colour_vqa_dir,
            tmp_path,
            validation_data_path=str(tmp_path / "plain.json"),
            metric_for_best_model="vqa_accuracy",
        )
    forced = evaluator_for(
        tiny_llava,
        tokenizer,
        validation_dir,
        colour_vqa_dir,
        tmp_path,
        validation_data_path=str(tmp_path / "plain.json"),
        eval_generate=True,
    )
    assert len(forced.items) == 26 and forced.items[0].answers == ("blue",)


def test_lora_model_with_gradient_checkpointing_comes_back_as_it_was(
    tiny_llava, tokenizer, validation_dir, colour_vqa_dir, tmp_path
):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(tiny_llava, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    model.activation_checkpointing_enable()
    model.train()
    model.config.use_cache = False
    trainable = {name for name, param in model.named_parameters() if param.requires_grad}
    evaluator = evaluator_for(tiny_llava, tokenizer, validation_dir, colour_vqa_dir, tmp_path, eval_max_samples=6)
    metrics = evaluator.evaluate(model, epoch=0, global_step=0)
    assert metrics["generation_count"] == 6
    assert model.training and model.config.use_cache is False
    assert model.base_model.model.is_activation_checkpointing
    assert trainable == {name for name, param in model.named_parameters() if param.requires_grad}
    loss = model(**evaluator.data_collator([evaluator.eval_dataset[0]])).loss
    loss.backward()  # the parameters still train after generation


def test_four_bit_model(tiny_llava_dir, tokenizer, validation_dir, colour_vqa_dir, tmp_path):
    pytest.importorskip("bitsandbytes")
    from transformers import BitsAndBytesConfig

    from llava.model import LlavaLlamaForCausalLM
    from llava.model.llava_arch import QUANTIZATION_SKIP_MODULES

    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.float32,
        llm_int8_skip_modules=QUANTIZATION_SKIP_MODULES,
    )
    model = LlavaLlamaForCausalLM.from_pretrained(
        str(tiny_llava_dir), quantization_config=quantization, device_map="cpu"
    )
    model.get_vision_tower().load_model()
    evaluator = evaluator_for(model, tokenizer, validation_dir, colour_vqa_dir, tmp_path, eval_max_samples=4)
    metrics = evaluator.evaluate(model)
    assert metrics["generation_count"] == 4 and metrics["loss"] > 0


def test_evaluation_loop_names_metrics_as_the_trainer_does(
    tiny_llava, tokenizer, validation_dir, colour_vqa_dir, tmp_path
):
    evaluator = evaluator_for(tiny_llava, tokenizer, validation_dir, colour_vqa_dir, tmp_path, eval_max_samples=3)
    trainer = SimpleNamespace(
        model=tiny_llava,
        state=SimpleNamespace(epoch=2.0, global_step=14),
        args=SimpleNamespace(report_to=[], device=torch.device("cpu")),
        is_world_process_zero=lambda: True,
    )
    output = evaluator.evaluation_loop(trainer)
    assert output.num_samples == 26 and output.predictions is None
    assert {"eval_loss", "eval_vqa_accuracy", "eval_exact_match", "eval_generation_count"} <= set(output.metrics)
    assert all(key.startswith("eval_") for key in output.metrics)
    assert (tmp_path / "run" / EVAL_FOLDER / "epoch_2.jsonl").exists()


class FakeWandb:
    """Just enough of wandb for the example table."""

    def __init__(self):
        self.logged = []
        self.run = SimpleNamespace(log=self.logged.append)

    class Table:
        def __init__(self, columns):
            self.columns, self.rows = columns, []

        def add_data(self, *row):
            self.rows.append(row)

    class Image:
        def __init__(self, picture):
            self.size = picture.size


def test_wandb_table_of_examples_and_no_failure_without_wandb(
    tiny_llava, tokenizer, validation_dir, colour_vqa_dir, tmp_path, monkeypatch
):
    evaluator = evaluator_for(tiny_llava, tokenizer, validation_dir, colour_vqa_dir, tmp_path, eval_log_examples=3)
    evaluator.items = evaluator.items[:2] + evaluator.items[-1:]  # two image questions, one text-only
    evaluator.evaluate(tiny_llava, epoch=1.0, global_step=9)

    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    assert evaluator.log_examples_to_wandb(1.0, 9)
    (logged,) = fake.logged
    table = logged["eval/examples"]
    assert logged["train/global_step"] == 9
    assert table.columns == ["epoch", "question_id", "image", "question", "prediction", "answers", "vqa_accuracy"]
    assert len(table.rows) == 3 and table.rows[0][5] == "blue x10" and table.rows[2][2] is None
    assert max(table.rows[0][2].size) <= 128

    fake.run = None  # wandb installed, no run
    assert not evaluator.log_examples_to_wandb(1.0, 9)
    monkeypatch.setitem(sys.modules, "wandb", None)  # wandb not installed
    assert not evaluator.log_examples_to_wandb(1.0, 9)


# ------------------------------------------------------------------- whole runs through train()


def run_flags(model_dir, data_dir, validation_dir, output_dir, epochs, *extra, keep_best=True) -> list[str]:
    """The recipe's flags with evaluation each epoch (and, with ``keep_best``, the best checkpoint kept)."""
    flags = recipe_flags(model_dir, data_dir, output_dir, epochs=epochs)
    flags += [
        "--validation_data_path",
        str(validation_dir / "val.json"),
        "--validation_image_folder",
        str(data_dir / "images"),
        "--eval_strategy",
        "epoch",
        "--per_device_eval_batch_size",
        "8",
        "--eval_max_new_tokens",
        "8",
        "--metric_for_best_model",
        "vqa_accuracy",
    ]
    if keep_best:
        flags[flags.index("--save_strategy") + 1] = "epoch"
        flags += ["--load_best_model_at_end", "True"]
    return flags + list(extra)


def launch(command: list[str], report: Path, wandb_dir: Path | None = None) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", WANDB_MODE="disabled")
    if wandb_dir is not None:
        env.update(WANDB_MODE="offline", WANDB_DIR=str(wandb_dir), WANDB_SILENT="true")
    result = subprocess.run(
        [*command, "--report", str(report)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        raise AssertionError(f"training failed:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}")
    return json.loads(report.read_text())


def evaluations(report: dict) -> dict[int, dict]:
    """Logged evaluation metrics by epoch (the Trainer's log_history)."""
    return {round(entry["epoch"]): entry for entry in report["log_history"] if "eval_loss" in entry}


def test_two_epochs_log_metrics_write_files_and_agree_with_the_offline_scorer(
    tiny_llava_dir, colour_vqa_dir, validation_dir, tmp_path
):
    from llava.eval.eval_okvqa import main as score_offline

    use_wandb = _wandb_installed()
    output = tmp_path / "run"
    flags = run_flags(tiny_llava_dir, colour_vqa_dir, validation_dir, output, 2, "--eval_on_start", "True")
    if use_wandb:
        flags[flags.index("--report_to") + 1] = "wandb"
    report = launch([sys.executable, str(HELPER), *flags], tmp_path / "report.json", tmp_path if use_wandb else None)

    logged = evaluations(report)
    assert sorted(logged) == [0, 1, 2]  # --eval_on_start, then each epoch
    for metrics in logged.values():
        assert {
            "eval_loss",
            "eval_vqa_accuracy",
            "eval_exact_match",
            "eval_vqa_accuracy/one",
            "eval_generation_count",
        } <= set(metrics)
        assert metrics["eval_generation_count"] == 26
    assert logged[2]["eval_loss"] < logged[0]["eval_loss"]

    folder = output / EVAL_FOLDER
    assert {path.name for path in folder.iterdir()} == {
        "epoch_0.jsonl",
        "epoch_1.jsonl",
        "epoch_2.jsonl",
        HISTORY_FILE,
        CURVES_FILE,
        "run.json",  # what the run trained and evaluated on (llava/run_record.py)
    }
    history = read_history(folder)
    assert [(h["epoch"], h["eval_loss"], h["vqa_accuracy"]) for h in history] == [
        (float(k), logged[k]["eval_loss"], logged[k]["eval_vqa_accuracy"]) for k in (0, 1, 2)
    ]

    # The offline scorer on the written predictions gives the logged numbers.
    annotations = tmp_path / "val_annotations.json"  # the converter's format; no 'answers': the reply
    annotations.write_text(
        json.dumps(
            {
                "format": "llava-okvqa-annotations/1",
                "split": "val",
                "questions": {
                    str(entry.get("question_id", entry["id"])): {
                        "question": entry["conversations"][0]["value"],
                        "answers": entry.get("answers", [entry["conversations"][1]["value"]]),
                        "question_type": entry.get("question_type"),
                    }
                    for entry in json.loads((validation_dir / "val.json").read_text())
                },
            }
        )
    )
    for epoch, metrics in logged.items():
        answers = tmp_path / f"answers_{epoch}.jsonl"
        records = [json.loads(line) for line in (folder / f"epoch_{epoch}.jsonl").read_text().splitlines()]
        answers.write_text(
            "".join(json.dumps({"question_id": r["question_id"], "text": r["prediction"]}) + "\n" for r in records)
        )
        scores = score_offline(["--answers", str(answers), "--annotations", str(annotations)])
        assert scores["vqa_accuracy"] == pytest.approx(metrics["eval_vqa_accuracy"], abs=1e-9)
        assert scores["exact_match"] == pytest.approx(metrics["eval_exact_match"], abs=1e-9)
        for category, value in scores["per_category"].items():
            assert value == pytest.approx(metrics[f"eval_vqa_accuracy/{category}"], abs=1e-9)

    # --metric_for_best_model vqa_accuracy: the Trainer found the metric and kept a best checkpoint.
    assert report["best_metric"] == max(logged[k]["eval_vqa_accuracy"] for k in (1, 2))
    assert Path(report["best_model_checkpoint"]).name.startswith("checkpoint-")

    if use_wandb:
        tables = list(tmp_path.glob("wandb/offline-run-*/files/media/table/eval/examples_*.table.json"))
        assert len(tables) == 3
        table = json.loads(tables[0].read_text())
        assert table["columns"] == [
            "epoch",
            "question_id",
            "image",
            "question",
            "prediction",
            "answers",
            "vqa_accuracy",
        ]
        assert len(table["data"]) == 26


def test_best_checkpoint_by_accuracy_is_the_one_loaded_at_the_end(
    tiny_llava_dir, colour_vqa_dir, validation_dir, tmp_path
):
    """Accuracy 50%, 100%, 25% over three epochs (scripted answers): epoch 2 is kept and restored."""
    from safetensors.torch import load_file

    from llava.train.checkpointing import NON_LORA_FILE

    output = tmp_path / "run"
    flags = run_flags(tiny_llava_dir, colour_vqa_dir, validation_dir, output, 3, "--scripted-fractions", "0.5,1,0.25")
    report = launch([sys.executable, str(HELPER), *flags], tmp_path / "report.json")
    logged = evaluations(report)
    assert [logged[k]["eval_vqa_accuracy"] for k in (1, 2, 3)] == [50.0, 100.0, pytest.approx(100 * 6 / 26)]
    steps_per_epoch = logged[1]["step"]
    assert report["best_metric"] == 100.0
    assert report["best_model_checkpoint"] == str(output / f"checkpoint-{2 * steps_per_epoch}")

    best = Path(report["best_model_checkpoint"])
    final_adapter, best_adapter = (load_file(str(folder / "adapter_model.safetensors")) for folder in (output, best))
    assert all(torch.equal(final_adapter[key], best_adapter[key]) for key in best_adapter)
    final_extras, best_extras = (torch.load(folder / NON_LORA_FILE, weights_only=True) for folder in (output, best))
    assert all(torch.equal(final_extras[key], best_extras[key]) for key in best_extras), "projector not restored"


@pytest.mark.slow
@pytest.mark.parametrize("config", ["zero2.json", "zero3.json"])
def test_two_deepspeed_processes_give_the_same_predictions_and_metrics_as_one(
    tiny_llava_dir, colour_vqa_dir, validation_dir, tmp_path, config
):
    """Same weights (a vanishing learning rate), 25 questions (uneven shards): identical answers,
    accuracy and (token-weighted) eval loss with one plain process and two DeepSpeed processes."""
    import shutil

    def flags(output):
        base = run_flags(
            tiny_llava_dir,
            colour_vqa_dir,
            validation_dir,
            output,
            1,
            "--eval_on_start",
            "True",
            "--eval_max_samples",
            "25",
            "--per_device_eval_batch_size",
            "4",
            keep_best=False,
        )
        for name in ("--learning_rate", "--mm_projector_lr"):
            base[base.index(name) + 1] = "1e-12"
        return base

    single = launch([sys.executable, str(HELPER), *flags(tmp_path / "one")], tmp_path / "one.json")
    launcher = shutil.which("deepspeed") or str(Path(sys.executable).with_name("deepspeed"))
    double = launch(
        [
            launcher,
            "--num_gpus",
            "2",
            "--master_port",
            str(_free_port()),
            str(HELPER),
            "--deepspeed",
            str(ROOT / "scripts" / config),
            *flags(tmp_path / "two"),
        ],
        tmp_path / "two.json",
    )
    assert double["world_size"] == 2
    for epoch in (0, 1):
        name = f"epoch_{epoch}.jsonl"
        one = (tmp_path / "one" / EVAL_FOLDER / name).read_text()
        assert one == (tmp_path / "two" / EVAL_FOLDER / name).read_text()
        assert len(one.splitlines()) == 25
        a, b = evaluations(single)[epoch], evaluations(double)[epoch]
        assert a["eval_vqa_accuracy"] == b["eval_vqa_accuracy"]
        assert a["eval_exact_match"] == b["eval_exact_match"]
        assert a["eval_loss"] == pytest.approx(b["eval_loss"], rel=1e-6)


@pytest.mark.slow
def test_best_checkpoint_is_restored_under_two_deepspeed_processes(
    tiny_llava_dir, colour_vqa_dir, validation_dir, tmp_path
):
    import shutil

    output = tmp_path / "run"
    flags = run_flags(tiny_llava_dir, colour_vqa_dir, validation_dir, output, 2, "--scripted-fractions", "1,0.5")
    launcher = shutil.which("deepspeed") or str(Path(sys.executable).with_name("deepspeed"))
    report = launch(
        [
            launcher,
            "--num_gpus",
            "2",
            "--master_port",
            str(_free_port()),
            str(HELPER),
            "--deepspeed",
            str(ROOT / "scripts" / "zero2.json"),
            *flags,
        ],
        tmp_path / "report.json",
    )
    assert report["best_model_checkpoint"] == str(output / f"checkpoint-{evaluations(report)[1]['step']}")


def _wandb_installed() -> bool:
    try:
        import wandb  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------- normalisation and multiple choice

CHOICES = ["red", "green", "blue", "yellow"]


@pytest.fixture()
def choice_validation(validation_dir, tmp_path) -> Path:
    """The colour set with A-OKVQA-style options on its image records (answer = the right option)."""
    entries = json.loads((validation_dir / "val.json").read_text())
    for index, entry in enumerate(entries):
        if "image" in entry:
            entry["choices"] = CHOICES
            entry["correct_choice_idx"] = index % 4
            entry["question_type"] = ""
    path = tmp_path / "val_choices.json"
    path.write_text(json.dumps(entries))
    return path


def test_choice_prompt_is_upstreams_lettered_prompt_in_the_template(choice_validation, make_data_args):
    from llava.metrics.choices import MULTIPLE_CHOICE_SUFFIX

    items = generation_items(json.loads(choice_validation.read_text()), template_for_version("v1"), make_data_args())
    first = items[0]
    assert first.choices == tuple(CHOICES) and first.correct_choice_idx == 0 and first.question_type is None
    human = "<image>\nWhat colour is the shape?\nA. red\nB. green\nC. blue\nD. yellow\n" + MULTIPLE_CHOICE_SUFFIX
    assert first.choice_prompt == generation_prompt(human, template_for_version("v1"), True, make_data_args())
    assert items[-1].choice_prompt is None  # the text-only record has no options

    entries = json.loads(choice_validation.read_text())
    entries[0]["correct_choice_idx"] = 9
    entries[1]["choices"] = "red"
    with pytest.raises(ValueError, match="unusable 'choices'/'correct_choice_idx'.*question ids 1000, 1001"):
        generation_items(entries, template_for_version("v1"), make_data_args())


def test_multiple_choice_and_official_normalisation_between_epochs(
    tiny_llava, tokenizer, validation_dir, colour_vqa_dir, choice_validation, tmp_path
):
    from llava.metrics.choices import score_choices
    from llava.metrics.vqa import vqa_accuracy

    evaluator = evaluator_for(
        tiny_llava,
        tokenizer,
        validation_dir,
        colour_vqa_dir,
        tmp_path,
        validation_data_path=str(choice_validation),
        eval_max_samples=6,
        eval_normalization="official",
    )
    with_options = sum(item.image is not None for item in evaluator.items)
    assert with_options >= 4 and len(evaluator.choice_items) == with_options  # the subset's image questions
    metrics = evaluator.evaluate(tiny_llava, epoch=1.0, global_step=3)
    records = evaluator.last_records
    choice_records = [r for r in records if "choice" in r]
    assert len(choice_records) == with_options
    assert metrics["choice_accuracy"] == score_choices(choice_records)["choice_accuracy"]
    assert metrics["choice_unparsed"] == sum(r["choice"] is None for r in choice_records)
    for record in records:
        assert record["vqa_accuracy"] == vqa_accuracy(record["prediction"], record["answers"], normalization="official")
    (entry,) = read_history(tmp_path / "run" / EVAL_FOLDER)
    assert entry["normalization"] == "official" and entry["choice_accuracy"] == metrics["choice_accuracy"]

    off = evaluator_for(
        tiny_llava,
        tokenizer,
        validation_dir,
        colour_vqa_dir,
        tmp_path,
        validation_data_path=str(choice_validation),
        eval_multiple_choice=False,
    )
    assert off.choice_items == []
    with pytest.raises(ValueError, match="no generated question .* carries 'choices'"):
        evaluator_for(tiny_llava, tokenizer, validation_dir, colour_vqa_dir, tmp_path, eval_multiple_choice=True)
    with pytest.raises(ValueError, match="--metric_for_best_model choice_accuracy needs multiple-choice questions"):
        evaluator_for(
            tiny_llava, tokenizer, validation_dir, colour_vqa_dir, tmp_path, metric_for_best_model="choice_accuracy"
        )


def test_eval_normalization_flag_parses_and_is_checked():
    from transformers import HfArgumentParser

    from llava.train.arguments import TrainingArguments

    parser = HfArgumentParser(TrainingArguments)
    (parsed,) = parser.parse_args_into_dataclasses(["--output_dir", "x", "--eval_normalization", "official"])
    assert parsed.eval_normalization == "official" and parsed.eval_multiple_choice is None
    (default,) = parser.parse_args_into_dataclasses(["--output_dir", "x"])
    assert default.eval_normalization == "lmms-eval"
    with pytest.raises(SystemExit):
        parser.parse_args_into_dataclasses(["--output_dir", "x", "--eval_normalization", "vqa"])
