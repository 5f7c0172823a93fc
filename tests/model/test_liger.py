"""llava.model.liger: when Liger-Kernel is applied, and the fused loss's plumbing (the kernels need CUDA:
tests/gpu compares their losses with the unfused path)."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F

from llava.model import liger
from llava.train.arguments import ArgumentError, parse_args


@pytest.mark.parametrize(("requested", "warned"), [(None, False), (True, True), (False, False)])
def test_without_cuda_liger_is_off_and_only_an_explicit_request_says_so(requested, warned, caplog):
    with caplog.at_level(logging.INFO, logger="llava"):
        assert liger.want_liger(requested) is False
    lines = [record.getMessage() for record in caplog.records]
    assert lines == (["Liger-Kernel unavailable (no CUDA device): training without it."] if warned else [])


def test_transformers_own_liger_flag_is_refused(tmp_path):
    data = tmp_path / "train.json"
    data.write_text("[]")
    flags = ["--data_path", str(data), "--output_dir", str(tmp_path / "out"), "--report_to", "none"]
    with pytest.raises(ArgumentError, match="use --use_liger True"):
        parse_args([*flags, "--use_liger_kernel", "True"])
    _, _, training_args = parse_args([*flags, "--use_liger", "False"])
    assert training_args.use_liger is False
    assert parse_args(flags)[2].use_liger is None  # unset: on wherever it can run


class ReferenceLinearCrossEntropy(torch.nn.Module):
    """What Liger's fused loss computes, the plain way (logits materialised)."""

    def __init__(self, ignore_index: int, reduction: str):
        super().__init__()
        self.ignore_index, self.reduction = ignore_index, reduction

    def forward(self, weight, hidden, target, bias=None):
        logits = F.linear(hidden, weight, bias).float()
        return F.cross_entropy(logits, target, ignore_index=self.ignore_index, reduction=self.reduction)


@pytest.mark.parametrize("num_items", [None, 7])
def test_the_fused_forward_gives_transformers_loss(tiny_llava, monkeypatch, num_items):
    """Same hidden states, label shift, ignored positions and reduction as the model's own loss."""
    import copy

    model = copy.deepcopy(tiny_llava).train()  # the fixture is shared
    torch.manual_seed(0)
    ids = torch.randint(3, model.config.vocab_size, (2, 12))
    labels = ids.clone()
    labels[:, :4] = -100
    labels[1, 9:] = -100
    kwargs = {} if num_items is None else {"num_items_in_batch": torch.tensor(num_items)}
    expected = model(input_ids=ids, labels=labels, **kwargs).loss

    real = liger.fused_causal_lm_loss
    monkeypatch.setattr(
        liger,
        "fused_causal_lm_loss",
        lambda *args, **kw: real(*args, **kw, loss_class=ReferenceLinearCrossEntropy),
    )
    setattr(model, liger.FUSED_LOSS, True)
    try:
        output = model(input_ids=ids, labels=labels, **kwargs)
    finally:
        delattr(model, liger.FUSED_LOSS)
    assert output.logits is None  # nothing vocabulary-wide was kept
    torch.testing.assert_close(output.loss, expected, rtol=1e-5, atol=1e-6)
    model.eval()
    setattr(model, liger.FUSED_LOSS, True)
    try:
        assert model(input_ids=ids, labels=labels).logits is not None  # evaluation keeps the usual path
    finally:
        delattr(model, liger.FUSED_LOSS)


def test_a_4bit_head_is_dequantized_for_the_fused_loss():
    bnb = pytest.importorskip("bitsandbytes")
    torch.manual_seed(0)
    dense = torch.nn.Linear(32, 48, bias=False)
    head = bnb.nn.Linear4bit(32, 48, bias=False, compute_dtype=torch.float32, quant_type="nf4")
    head.load_state_dict(dense.state_dict())
    head = head.to("cpu")
    head.weight = bnb.nn.Params4bit(dense.weight.data.clone(), requires_grad=False, quant_type="nf4").to("cpu")
    assert head.weight.quant_state is not None and head.weight.dtype == torch.uint8  # really packed
    hidden = torch.randn(5, 32)
    weight = liger.output_weight(head)
    assert weight.shape == (48, 32) and weight.dtype == torch.float32
    torch.testing.assert_close(F.linear(hidden, weight), head(hidden), rtol=1e-4, atol=1e-4)
    assert liger.output_weight(dense) is dense.weight
