"""Dataset tools: the OK-VQA converter and synthetic demo data."""
