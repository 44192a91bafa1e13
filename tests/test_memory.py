"""ftlearn.memory: predicted training-state bytes equal what PyTorch allocates; FLOP formulas."""

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from ftlearn.memory import (
    GPU_PEAK_FLOPS,
    SavedTensors,
    activation_bytes_per_layer,
    epoch_seconds,
    flops_per_token,
    matmul_parameters,
    measure_state_memory,
    mfu,
    predict_state_memory,
)


def tiny_bert():
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
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
    assert measured == {
        "weights": 4 * params,
        "gradients": 4 * params,
        "optimizer_exp_avg": 4 * params,
        "optimizer_exp_avg_sq": 4 * params,
    }
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
    assert activation_bytes_per_layer(1, 512, 768, 12, bytes_per_value=4) == 2 * activation_bytes_per_layer(
        1, 512, 768, 12
    )
    assert mfu(1000, 1e9, 1e13) == pytest.approx(0.1)


def two_layer_mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))


def test_saved_tensors_counts_inputs_and_hidden_not_weights():
    mlp = two_layer_mlp()
    x = torch.randn(4, 6)
    with SavedTensors(mlp) as saved:
        y = mlp(x)
    # Linear 1 saves x (for W1's gradient), ReLU saves its output h, which Linear 2 also saves (one storage);
    # the weights are parameters and are not counted.
    assert saved.activations == 4 * 6 * 4 + 4 * 5 * 4 and saved.weight_copies == 0 and saved.tensors == 2
    y.sum().backward()  # the hooks leave the graph intact
    assert mlp[0].weight.grad is not None


def test_saved_tensors_under_bf16_autocast_separates_weight_copies():
    mlp = two_layer_mlp()
    with SavedTensors(mlp) as saved, torch.autocast("cpu", dtype=torch.bfloat16):
        mlp(torch.randn(4, 6))
    # Linear 2 saves the bf16 copy of W2 (2 bytes per value) to send the gradient back to h; Linear 1
    # needs no gradient for x, so it saves no weight. The activations are x and h, both in bf16.
    assert saved.weight_copies == 2 * 5 * 3
    assert saved.activations == 2 * (4 * 6 + 4 * 5) and saved.activations_by_dtype == {"bfloat16": saved.activations}
    assert saved.total == saved.activations + saved.weight_copies


def test_saved_tensors_of_a_bert_layer_match_the_hand_count_and_checkpointing_cuts_them():
    torch.manual_seed(0)
    # intermediate = 4 x hidden, as in BERT: the layout the per-layer count assumes
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=64,
    )
    model = BertForSequenceClassification(config)
    model.train()
    ids = torch.randint(0, 100, (2, 16))
    with SavedTensors(model) as plain:
        model(input_ids=ids, labels=torch.tensor([0, 1]))  # a training forward, loss included
    model.activation_checkpointing_enable()
    with SavedTensors(model) as ckpt:
        model(input_ids=ids, labels=torch.tensor([0, 1]))
    b, s, h, a, layers = 2, 16, 32, 4, 2
    # fp32 on a CPU, dropout masks kept as fp32 tensors: 72 TBC + 12 B H T^2 bytes per layer (notebook 11)
    per_layer = 72 * s * b * h + 12 * a * s * s * b
    assert layers * per_layer < plain.activations < 1.2 * layers * per_layer
    assert ckpt.activations < plain.activations / 4


def test_matmul_parameters_leave_out_embedding_tables():
    from transformers import GPT2Config, GPT2LMHeadModel

    bert = tiny_bert()
    linear = sum(m.weight.numel() for m in bert.modules() if isinstance(m, torch.nn.Linear))
    assert matmul_parameters(bert) == linear < sum(p.numel() for p in bert.parameters())
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=50, n_positions=16, n_embd=8, n_layer=1, n_head=2))
    # per layer: c_attn 8x24, c_proj 8x8, c_fc 8x32, mlp c_proj 32x8; plus the tied LM head 50x8
    assert matmul_parameters(gpt2) == 8 * 24 + 8 * 8 + 8 * 32 + 32 * 8 + 50 * 8


def test_epoch_seconds():
    # 1,000 examples x 100 tokens x 1e9 FLOPs / (1e12 FLOP/s x 0.5) = 200 s
    assert epoch_seconds(1000, 100, 1e9, 1e12, 0.5) == pytest.approx(200)
    assert GPU_PEAK_FLOPS["H100 SXM"] > GPU_PEAK_FLOPS["A100"] > GPU_PEAK_FLOPS["T4"]
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match="fraction"):
            epoch_seconds(1, 1, 1, 1e12, bad)
