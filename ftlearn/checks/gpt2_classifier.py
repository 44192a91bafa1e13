"""Checks for the GPT-2 classifier exercises (solutions/10_gpt2_classifier.ipynb): pad = eos, last-token pooling.

The references follow the rule `GPT2ForSequenceClassification` itself applies (the rightmost position that
is not padding), and the pad-token check runs a real, tiny GPT-2 classifier built from a config, with a
word-level tokenizer whose end-of-text token is not id 0, so no download is needed and no id is a lucky guess.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ftlearn.checks.core import CheckResult, Mistake, check, close, exercise

EOS = "<|endoftext|>"
_WORDS = ["a", "good", "bad", "film", "very", "dull", "moving", "plot", "the", "acting"]


# ---- giving GPT-2 a pad token ------------------------------------------------------------------


def tiny_gpt2_classifier(seed: int = 0) -> tuple[Any, Any]:
    """A word-level GPT-2-style tokenizer without a pad token, and a 1-layer GPT2ForSequenceClassification."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2ForSequenceClassification, PreTrainedTokenizerFast

    vocab = {word: i for i, word in enumerate(_WORDS)}
    vocab[EOS] = len(vocab)  # last, as in GPT-2 (id 50256 there): never id 0
    backend = Tokenizer(models.WordLevel(vocab, unk_token=EOS))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=EOS, eos_token=EOS, unk_token=EOS)
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(vocab), n_positions=16, n_embd=8, n_layer=1, n_head=2, num_labels=2,
        bos_token_id=vocab[EOS], eos_token_id=vocab[EOS], pad_token_id=None,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )  # fmt: skip
    model = GPT2ForSequenceClassification(config).eval()
    return tokenizer, model


_TEXTS = ["a very good film", "dull", "the acting is moving but the plot is bad"]


def _after_pad_fix(fix: Callable, seed: int) -> dict:
    """What a fix leaves behind: the pad settings, the sizes, and whether a padded batch classifies each row alone."""
    import torch

    tokenizer, model = tiny_gpt2_classifier(seed)
    vocab, rows = len(tokenizer), model.get_input_embeddings().num_embeddings
    fix(tokenizer, model)
    state = {
        "tokenizer.pad_token": tokenizer.pad_token,
        "model.config.pad_token_id": model.config.pad_token_id,
        "new tokens": len(tokenizer) - vocab,
        "new embedding rows": model.get_input_embeddings().num_embeddings - rows,
    }
    try:
        with torch.no_grad():
            batch = tokenizer(_TEXTS, padding=True, return_tensors="pt")
            together = model(**batch).logits
            alone = torch.cat([model(**tokenizer([t], return_tensors="pt")).logits for t in _TEXTS])
        state["padded batch = each review alone"] = bool(torch.allclose(together, alone, atol=1e-5))
    except Exception:  # noqa: BLE001 - a tokenizer that cannot pad or a model that cannot find the pad
        state["padded batch = each review alone"] = False
    return state


def _pad_ref(tokenizer: Any, model: Any) -> None:
    tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.eos_token_id


def _pad_tokenizer_only(tokenizer: Any, model: Any) -> None:
    tokenizer.pad_token = tokenizer.eos_token


def _pad_model_only(tokenizer: Any, model: Any) -> None:
    model.config.pad_token_id = tokenizer.eos_token_id


def _pad_id_zero(tokenizer: Any, model: Any) -> None:
    tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = 0


def _pad_new_token(tokenizer: Any, model: Any) -> None:
    tokenizer.add_special_tokens({"pad_token": "[PAD]"})
    model.config.pad_token_id = tokenizer.pad_token_id


def _pad_new_token_resized(tokenizer: Any, model: Any) -> None:
    _pad_new_token(tokenizer, model)
    model.resize_token_embeddings(len(tokenizer))


@exercise(answer=_pad_ref)
def check_add_pad_token(fn: Callable) -> CheckResult:
    """Check `fn(tokenizer, model)`: pad = eos on the tokenizer *and* in the model's config (notebook 10, section 1)."""

    def runner(fix: Callable) -> Callable[[int], dict]:
        return lambda seed: _after_pad_fix(fix, seed)

    return check(
        "add_pad_token",
        runner(fn),
        runner(_pad_ref),
        [(0,)],
        mistakes=[
            Mistake(
                runner(_pad_tokenizer_only),
                "the tokenizer can pad now, but the model still has `config.pad_token_id = None`: it finds each "
                "row's last real token by comparing the ids with it, and refuses a batch of more than one row.",
                kind="missing",
            ),
            Mistake(
                runner(_pad_model_only),
                "the model knows the pad id, but the tokenizer still has no pad token, so it cannot pad a batch.",
                kind="missing",
            ),
            Mistake(
                runner(_pad_id_zero),
                "the model's pad id must be the tokenizer's eos id (`tokenizer.eos_token_id`); ids differ from "
                "one tokenizer to another, so never type the number.",
                kind="convention",
            ),
            Mistake(
                runner(_pad_new_token),
                "a new [PAD] token has an id past the end of the embedding matrix. The usual fix adds no token: it "
                "reuses a special token the tokenizer already has.",
                kind="convention",
            ),
            Mistake(
                runner(_pad_new_token_resized),
                "that works, but it adds a token and an untrained embedding row to the model. The lesson's fix "
                "changes no weights: it reuses a special token the tokenizer already has.",
                kind="convention",
            ),
        ],
        hint="Two lines: one gives the tokenizer a pad token, one tells the model which id it has.",
    )


# ---- last-token pooling, right and left padding -------------------------------------------------


def _right_padded(lengths: list[int], width: int) -> Any:
    import torch

    return torch.tensor([[1] * n + [0] * (width - n) for n in lengths])


def _left_padded(lengths: list[int], width: int) -> Any:
    import torch

    return torch.tensor([[0] * (width - n) + [1] * n for n in lengths])


def _pool_cases() -> list[tuple]:
    import torch

    g = torch.Generator().manual_seed(0)
    masks = [
        _left_padded([3, 1, 4], 5),  # first: here the mistakes that suit only right padding all differ
        _right_padded([3, 1, 4], 5),  # every row padded
        _right_padded([4, 4], 4),  # no padding at all
        _left_padded([2, 5, 1, 3], 5),
    ]
    return [(torch.randn(m.shape[0], m.shape[1], 3, generator=g, dtype=torch.float64), m) for m in masks]


def _last_real_index(attention_mask: Any) -> Any:
    """(B,) index of each row's last real token, whatever the padding side: the rightmost 1 of the mask."""
    import torch

    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (positions * attention_mask.bool()).argmax(-1)  # the largest index where the mask is 1


def _pool_ref(scores: Any, attention_mask: Any) -> Any:
    import torch

    return scores[torch.arange(scores.shape[0]), _last_real_index(attention_mask)]


def _pool_right_only(scores: Any, attention_mask: Any) -> Any:
    import torch

    return scores[torch.arange(scores.shape[0]), attention_mask.sum(-1) - 1]


def _pool_count(scores: Any, attention_mask: Any) -> Any:
    import torch

    return scores[torch.arange(scores.shape[0]), attention_mask.sum(-1)]


def _pool_first_real(scores: Any, attention_mask: Any) -> Any:
    import torch

    return scores[torch.arange(scores.shape[0]), attention_mask.argmax(-1)]


def _pool_mean(scores: Any, attention_mask: Any) -> Any:
    weights = attention_mask.unsqueeze(-1).to(scores.dtype)
    return (scores * weights).sum(1) / weights.sum(1)


@exercise()
def check_last_token_pool(fn: Callable) -> CheckResult:
    """Check `fn(scores, attention_mask)`: (B, T, C) -> (B, C), the scores at each row's last real token (lesson 10)."""
    return check(
        "last_token_pool",
        fn,
        _pool_ref,
        _pool_cases(),
        compare=lambda got, want: close(got, want, rtol=1e-9),
        mistakes=[
            Mistake(
                lambda s, m: s[:, -1],
                "the final position is padding in every row shorter than the batch (with right padding): read each "
                "row at its own last real token.",
                kind="edge",
            ),
            Mistake(
                lambda s, m: s[:, 0],
                "position 0 has seen only itself: GPT-2's attention is causal. (BERT can read [CLS] at position 0 "
                "because its attention goes both ways.)",
            ),
            Mistake(
                _pool_right_only,
                "`attention_mask.sum(-1) - 1` is right only when the padding is on the right. With left padding the "
                "real tokens end at the last position: find the position of the *last* 1 in the mask instead.",
                kind="edge",
            ),
            Mistake(
                _pool_count,
                "positions count from 0: a row of n real tokens (right-padded) ends at index n - 1.",
                kind="off_by_one",
            ),
            Mistake(
                _pool_first_real,
                "`argmax` returns the *first* position of the maximum, so on the mask it finds the first real "
                "token; you want the last one.",
                kind="order",
            ),
            Mistake(
                _pool_mean,
                "that is mean pooling (lesson 07's head for the MiniLM); GPT2ForSequenceClassification reads the "
                "last real token only.",
            ),
        ],
        hint="Each row needs the position of its own last real token, which the mask alone tells. Work out one "
        "right-padded and one left-padded mask by hand, then pick one score vector per row.",
    )


# ---- the pad = eos problem ----------------------------------------------------------------------

PAD = 9  # the eos id of the cases below, which is also their pad id


def _eos_cases() -> list[tuple]:
    import torch

    # (ids, real tokens per row, padding side); every review ends with its own eos (9), and pads are 9 too
    rows = [
        ([[4, 1, 9, 2, 3, 9], [6, 9, 9, 9, 9, 9]], [6, 2], "right"),  # row 0: two reviews joined by an eos
        ([[4, 1, 3, 9, 9, 9], [2, 5, 6, 7, 3, 9], [5, 9, 9, 9, 9, 9]], [4, 6, 2], "right"),
        ([[9, 9, 4, 1, 3, 9], [9, 9, 9, 9, 5, 9], [2, 9, 7, 3, 8, 9]], [4, 2, 6], "left"),
    ]
    return [
        (torch.tensor(ids), (_right_padded if side == "right" else _left_padded)(lengths, len(ids[0])), PAD)
        for ids, lengths, side in rows
    ]


def _eos_ref(input_ids: Any, attention_mask: Any, pad_id: int) -> Any:
    return _last_real_index(attention_mask)


def _eos_by_ids(input_ids: Any, attention_mask: Any, pad_id: int) -> Any:
    import torch

    positions = torch.arange(input_ids.shape[1])
    return (positions * (input_ids != pad_id)).argmax(-1)


def _eos_first_pad(input_ids: Any, attention_mask: Any, pad_id: int) -> Any:
    return (input_ids == pad_id).int().argmax(-1) - 1


@exercise()
def check_last_real_position(fn: Callable) -> CheckResult:
    """Check `fn(input_ids, attention_mask, pad_id)` -> (B,) last real position when pad = eos (notebook 10)."""
    return check(
        "last_real_position",
        fn,
        _eos_ref,
        _eos_cases(),
        compare=lambda got, want: close(got, want),
        mistakes=[
            Mistake(
                _eos_by_ids,
                "with pad = eos the ids cannot tell a review's own final eos from the padding after it, so "
                "`input_ids != pad_id` stops one token early. Only the attention mask knows which positions are "
                "padding.",
                kind="edge",
            ),
            Mistake(
                _eos_first_pad,
                "the first eos need not be padding: with pad = eos it may end the first of two joined reviews, "
                "and everything after it would be ignored. Use the attention mask.",
                kind="edge",
            ),
            Mistake(
                lambda ids, m, p: m.sum(-1) - 1,
                "right for right padding only: in the left-padded case the real tokens end at the last position. "
                "Look for the last 1 of the mask.",
                kind="edge",
            ),
        ],
        hint="Only one of the three inputs can tell a real end-of-text token from padding: work out a right-padded "
        "and a left-padded row by hand.",
    )
