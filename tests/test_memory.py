"""ftlearn.memory: predicted training-state bytes equal what PyTorch allocates; FLOP formulas."""

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from ftlearn.memory import activation_bytes_per_layer, flops_per_token, measure_state_memory, mfu, predict_state_memory


def tiny_bert():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, max_position_embeddings=64)
    return BertForSequenceClassification(config)


def test_fp32_adamw_holds_exactly_16_bytes_per_parameter():
    model = tiny_bert()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = {"input_ids": torch.randint(0, 100, (2, 8)), "labels": torch.tensor([0, 1])}
    model(**batch).loss.backward()
    optimizer.step()
    measured = measure_state_memory(model, optimizer)
    params = sum(p.numel() for p in model.parameters())
    predicted = predict_state_memory(params, "fp32")
    assert measured == {"weights": 4 * params, "gradients": 4 * params, "optimizer_exp_avg": 4 * params, "optimizer_exp_avg_sq": 4 * params}
    assert sum(measured.values()) == predicted.total and predicted.bytes_per_param == 16


def test_recipes():
    assert predict_state_memory(10, "half-master").bytes_per_param == 16
    assert predict_state_memory(10, "pure-bf16").bytes_per_param == 8
    with pytest.raises(ValueError, match="Unknown recipe"):
        predict_state_memory(10, "int4")


def test_flops_and_activation_formulas():
    # 110M parameters, 12 layers, h=768, s=512: 6N = 660 MFLOP/token, attention 3 * 4 * 12 * 512 * 768
    assert flops_per_token(110_000_000, 12, 768, 512) == 6 * 110e6 + 12 * 12 * 512 * 768
    assert flops_per_token(100, 1, 1, 1, training=False) == 204
    assert activation_bytes_per_layer(1, 512, 768, 12) == 512 * 768 * 34 + 5 * 12 * 512 * 512
    assert activation_bytes_per_layer(1, 512, 768, 12, bytes_per_value=4) == 2 * activation_bytes_per_layer(1, 512, 768, 12)
    assert mfu(1000, 1e9, 1e13) == pytest.approx(0.1)
