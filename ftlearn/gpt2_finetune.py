"""The old name of `ftlearn.gpt2` (GPT-2's loading and language-model rows), kept because lessons 09-10 import it."""

from ftlearn.gpt2 import lm_blocks, lm_loader, lm_texts, load_causal_lm, load_gpt2_classifier

__all__ = ["lm_blocks", "lm_loader", "lm_texts", "load_causal_lm", "load_gpt2_classifier"]
