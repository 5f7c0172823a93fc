"""Evaluation: VQA accuracy, batched offline answering, the OK-VQA scorer."""
