"""llava/eval/batching.py: the seeded generation subset and the batches each rank runs."""

from __future__ import annotations

import pytest

from llava.eval.batching import GenerationItem, plan_batches, select_subset


def test_subset_is_seeded_in_file_order_and_the_same_every_time():
    items = [GenerationItem(i, i, "q", "p", None, ("a",), None) for i in range(50)]
    subset = select_subset(items, 10, seed=3)
    assert len(subset) == 10 and subset == select_subset(items, 10, seed=3)
    assert [item.position for item in subset] == sorted(item.position for item in subset)
    assert subset != select_subset(items, 10, seed=4)
    assert select_subset(items, None, 0) == items and select_subset(items, 500, 0) == items


@pytest.mark.parametrize(
    "images, texts, batch_size, world_size",
    [
        (7, 2, 3, 2),
        (5, 0, 2, 3),
        (0, 4, 4, 2),
        (10, 3, 4, 1),
        (1, 1, 8, 4),
        (13, 5, 2, 2),
    ],
)
def test_batches_are_identical_in_number_kind_and_size_on_every_rank(images, texts, batch_size, world_size):
    items = [
        GenerationItem(i, i, "q", "p" * (i % 5), f"{i}.png" if i < images else None, ("a",), None)
        for i in range(images + texts)
    ]
    plans = [plan_batches(items, batch_size, rank, world_size) for rank in range(world_size)]
    shapes = [[(len(batch), items[batch[0][0]].image is not None) for batch in plan] for plan in plans]
    assert all(shape == shapes[0] for shape in shapes)
    answered = sorted(index for plan in plans for batch in plan for index, padding in batch if not padding)
    assert answered == list(range(len(items)))  # each question answered exactly once
    for plan in plans:
        for batch in plan:
            assert len({items[index].image is None for index, _ in batch}) == 1  # one kind per batch
            assert len(batch) <= batch_size
