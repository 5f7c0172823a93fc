"""Offline answering: upstream's answer format, batching that changes nothing, resume, chunks."""

from __future__ import annotations

import json

import pytest

from llava.eval.model_vqa import KV_CACHES, answered_ids, get_chunk, main, prefetched, split_list


@pytest.fixture(scope="module")
def question_file(colour_vqa_dir, tmp_path_factory):
    entries = json.loads((colour_vqa_dir / "train.json").read_text())
    path = tmp_path_factory.mktemp("questions") / "questions.jsonl"
    with open(path, "w") as handle:
        for entry in entries[:9]:
            text = entry["conversations"][0]["value"].replace("<image>\n", "")
            handle.write(json.dumps({"question_id": entry["id"], "image": entry["image"], "text": text}) + "\n")
    return path


def answer(model_dir, questions, images, answers, *extra):
    return main(
        [
            "--model-path",
            str(model_dir),
            "--question-file",
            str(questions),
            "--image-folder",
            str(images),
            "--answers-file",
            str(answers),
            "--conv-mode",
            "vicuna_v1",
            "--temperature",
            "0",
            "--max-new-tokens",
            "6",
            "--device",
            "cpu",
            *extra,
        ]
    )


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_batched_answers_equal_one_at_a_time(tiny_llava_dir, colour_vqa_dir, question_file, tmp_path):
    single = read(answer(tiny_llava_dir, question_file, colour_vqa_dir / "images", tmp_path / "b1.jsonl"))
    batched = read(
        answer(tiny_llava_dir, question_file, colour_vqa_dir / "images", tmp_path / "b4.jsonl", "--batch-size", "4")
    )
    assert {r["question_id"]: r["text"] for r in single} == {r["question_id"]: r["text"] for r in batched}
    assert len(batched) == len(single) == 9 and any(r["text"] for r in single)
    record = single[0]
    assert set(record) == {"question_id", "prompt", "text", "answer_id", "model_id", "metadata"}
    assert record["model_id"] == tiny_llava_dir.name
    assert record["prompt"].startswith("What")


def test_static_kv_cache_gives_the_same_answers(tiny_llava_dir, colour_vqa_dir, question_file, tmp_path):
    """A preallocated cache (prompts padded to a multiple of 64 on the left) changes no greedy answer."""
    images = colour_vqa_dir / "images"
    dynamic = read(answer(tiny_llava_dir, question_file, images, tmp_path / "dynamic.jsonl", "--batch-size", "4"))
    static = read(
        answer(
            tiny_llava_dir,
            question_file,
            images,
            tmp_path / "static.jsonl",
            "--batch-size",
            "4",
            "--kv-cache",
            "static",
        )
    )
    assert [(r["question_id"], r["text"]) for r in static] == [(r["question_id"], r["text"]) for r in dynamic]


def test_batches_are_sorted_by_length_within_windows():
    from llava.eval.model_vqa import SORT_WINDOW_BATCHES, length_sorted

    questions = [{"question_id": i, "image": "x.jpg", "text": "w" * (50 - i)} for i in range(40)]
    questions.insert(3, {"question_id": "t", "text": "w"})  # text-only questions go after the image ones
    ordered = length_sorted(questions, batch_size=2)
    window = 2 * SORT_WINDOW_BATCHES
    assert sorted(map(str, (q["question_id"] for q in ordered))) == sorted(
        map(str, (q["question_id"] for q in questions))
    )
    first = ordered[:window]
    assert [len(q["text"]) for q in first[:-1]] == sorted(len(q["text"]) for q in first[:-1])
    assert first[-1]["question_id"] == "t"
    assert {q["question_id"] for q in ordered[window:]} == {q["question_id"] for q in questions[window:]}


def test_kv_cache_choices_are_the_generation_settings():
    from llava.eval.generation import KV_CACHES as SETTINGS_CHOICES
    from llava.eval.generation import GenerationSettings

    assert KV_CACHES == SETTINGS_CHOICES
    with pytest.raises(ValueError, match="kv_cache must be one of"):
        GenerationSettings(kv_cache="paged")


def test_prefetched_keeps_the_order_and_raises_where_the_bad_item_is():
    import threading

    threads = set()

    def prepare(item):
        threads.add(threading.current_thread().name)
        if item == 4:
            raise OSError("picture 4 is missing")
        return item * 10

    results = []
    with pytest.raises(OSError, match="picture 4"):
        for value in prefetched(prepare, range(7)):
            results.append(value)
    assert results == [0, 10, 20, 30]  # everything before the bad item came out, in order
    assert all(name.startswith("prefetch") for name in threads)
    assert list(prefetched(lambda item: item, [])) == []


def test_resume_skips_answered_questions_and_cuts_a_torn_line(tiny_llava_dir, colour_vqa_dir, question_file, tmp_path):
    complete = read(answer(tiny_llava_dir, question_file, colour_vqa_dir / "images", tmp_path / "all.jsonl"))
    partial = tmp_path / "partial.jsonl"
    lines = (tmp_path / "all.jsonl").read_text().splitlines(keepends=True)
    partial.write_text("".join(lines[:3]) + lines[3][:20])  # killed while writing line 4
    assert answered_ids(partial) == {"q0", "q1", "q2"}
    resumed = read(answer(tiny_llava_dir, question_file, colour_vqa_dir / "images", partial, "--batch-size", "3"))
    assert [r["question_id"] for r in resumed] == [r["question_id"] for r in complete]
    assert [r["text"] for r in resumed] == [r["text"] for r in complete]


def test_chunks_cover_every_question_once():
    items = list(range(10))
    chunks = split_list(items, 3)
    assert chunks == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert sum((get_chunk(items, 3, k) for k in range(3)), []) == items
    assert get_chunk(list(range(2)), 4, 3) == []


def test_bad_question_file_names_the_line(tmp_path, tiny_llava_dir):
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"question_id": 1, "text": "a"}\n{"question_id": 2\n')
    with pytest.raises(ValueError, match=r"q.jsonl:2: not valid JSON"):
        answer(tiny_llava_dir, bad, tmp_path, tmp_path / "a.jsonl")


@pytest.mark.parametrize(
    ("module", "required"),
    [
        ("llava.eval.model_vqa", []),
        ("llava.eval.model_vqa_loader", []),
        ("llava.eval.run_llava", ["--image-file", "a.jpg", "--query", "q"]),
        ("llava.serve.cli", ["--image-file", "a.jpg"]),
    ],
)
def test_every_answering_entry_point_takes_the_shared_model_flags(module, required):
    import importlib

    parser = importlib.import_module(module).build_parser()
    flags = ["--model-path", "run", "--model-base", "base", "--load-4bit", "--allow-base-mismatch", *required]
    args = parser.parse_args(flags)
    assert (args.model_path, args.model_base, args.load_4bit, args.allow_base_mismatch) == ("run", "base", True, True)
    assert parser.parse_args(["--model-path", "run", *required]).allow_base_mismatch is False


def test_pad_to_multiple_of_is_only_for_prompts_with_images(tiny_llava):
    import torch

    ids = torch.tensor([[1, 10, 11]])
    with pytest.raises(ValueError, match="pad text-only input_ids yourself"):
        tiny_llava.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=2, pad_to_multiple_of=64)
