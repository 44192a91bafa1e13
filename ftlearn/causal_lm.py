"""The causal-LM objective for GPT-2: shifted labels, loss, perplexity, blocks of text, and sampling.

Introduced in notebook 09 (GPT-2 as a language model). Shapes: B = batch, T = tokens per row,
V = vocabulary size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ftlearn.tokenization import clean_review  # noqa: F401 - notebooks 09-10 import it from here

IGNORE_INDEX = -100  # the label value PyTorch's cross_entropy (and Hugging Face models) skip
SENTIMENT_PREFIX = "Review ({}):"  # filled with "positive" or "negative"; learned during fine-tuning


def shift_for_causal_lm(logits: Any, labels: Any) -> tuple[Any, Any]:
    """Align predictions with targets: position t's logits predict token t+1 (notebook 09).

    logits (B, T, V), labels (B, T)  ->  logits (B, T-1, V), labels (B, T-1).
    """
    return logits[:, :-1, :], labels[:, 1:]


def causal_lm_loss(logits: Any, labels: Any, ignore_index: int = IGNORE_INDEX) -> Any:
    """Mean next-token cross-entropy over the positions whose label is not `ignore_index` (notebook 09)."""
    import torch.nn.functional as F

    logits, labels = shift_for_causal_lm(logits, labels)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1), ignore_index=ignore_index)


def perplexity(mean_loss: float) -> float:
    """exp of the mean per-token cross-entropy (in nats): the model's effective branching factor (notebook 09)."""
    return math.exp(mean_loss)


def with_sentiment_prefix(text: str, label: int) -> str:
    """'Review (positive): ...' or 'Review (negative): ...': a prefix to ask for a sentiment later (notebook 09)."""
    return f"{SENTIMENT_PREFIX.format('positive' if label == 1 else 'negative')} {text}"


def chunk_into_blocks(token_lists: Sequence[Sequence[int]], block_size: int, eos_id: int) -> Any:
    """Concatenate documents (each followed by eos) into one stream and cut it into rows: a (N, block_size) tensor.

    The last partial row is dropped, so every position is a real token and nothing is padded (notebook 09).
    """
    import torch

    stream: list[int] = []
    for ids in token_lists:
        stream.extend(ids)
        stream.append(eos_id)
    n = len(stream) // block_size
    return torch.tensor(stream[: n * block_size], dtype=torch.long).view(n, block_size)


def mean_lm_loss(model: Any, blocks: Any, batch_size: int = 16, device: Any = "cpu") -> float:
    """Mean per-token causal-LM loss of `model` over the rows of `blocks` (N, T), without gradients (notebook 09)."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(blocks), batch_size):
            batch = blocks[start : start + batch_size].to(device)  # (b, T)
            loss = model(input_ids=batch, labels=batch).loss  # mean over b * (T - 1) predicted tokens
            n = batch.numel() - batch.size(0)
            total += loss.item() * n
            count += n
    return total / count


def top_k_filter(logits: Any, k: int) -> Any:
    """Keep the k largest logits in the last dimension, set the rest to -inf (notebook 09)."""
    import torch

    k = min(k, logits.size(-1))
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1): the k-th largest value
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: Any, p: float) -> Any:
    """Nucleus filter: keep the fewest most likely tokens whose probabilities sum to at least p (notebook 09)."""
    import torch

    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    cum = sorted_logits.softmax(-1).cumsum(-1)
    # drop a token when the tokens *before* it already reach p; the most likely token always stays
    drop_sorted = (cum - sorted_logits.softmax(-1)) >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def sample_next_token(
    logits: Any, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None, generator: Any = None
) -> Any:
    """Pick the next token id from last-position logits (B, V): greedy when temperature is 0 (notebook 09)."""
    import torch

    if temperature == 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)


def sample_text(
    model: Any,
    tokenizer: Any,
    prompt: str,
    max_new_tokens: int = 40,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    device: Any = "cpu",
    min_new_tokens: int = 0,
) -> str:
    """Continue `prompt` one token at a time with `sample_next_token` (a hand-written `generate`, notebook 09).

    The end-of-text token cannot be drawn before `min_new_tokens` new tokens, so a sample is never empty.
    """
    import torch

    generator = torch.Generator(device="cpu").manual_seed(seed)
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"].to(device)  # (1, T)
    limit = model.config.n_positions
    model.eval()
    with torch.no_grad():
        for step in range(max_new_tokens):
            logits = model(input_ids=ids[:, -limit:]).logits[:, -1, :]  # (1, V): only the last position matters
            if step < min_new_tokens:
                logits[:, tokenizer.eos_token_id] = float("-inf")  # too early to stop
            nxt = sample_next_token(logits.float().cpu(), temperature, top_k, top_p, generator)  # (1,)
            ids = torch.cat([ids, nxt.view(1, 1).to(device)], dim=1)
            if nxt.item() == tokenizer.eos_token_id:
                break
    return tokenizer.decode(ids[0], skip_special_tokens=True)
