"""A counting n-gram language model: tokens, vocabulary, add-k smoothing, log-probability, perplexity, sampling.

Introduced in notebook 01 (language-model probability); notebook 02 rebuilds its bigram as a
neural model. Everything here is plain Python counting, small enough to read in one sitting, so
the numbers a neural LM produces later have a transparent baseline.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
SPECIALS = (BOS, EOS, UNK)

# IMDB reviews carry HTML line breaks; a word is letters/digits with an optional 's / n't style
# suffix, and every other non-space character (punctuation) is a token of its own.
_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lower-case word and punctuation tokens of a review, `<br />` removed (notebook 01)."""
    return _TOKEN.findall(_BREAK.sub(" ", text).lower())


@dataclass
class Vocab:
    """A word <-> id table whose first ids are the special tokens <s>, </s>, <unk> (notebook 01)."""

    itos: list[str]
    stoi: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def build(cls, docs: Iterable[Sequence[str]], min_count: int = 1, max_size: int | None = None) -> Vocab:
        """Keep words seen at least `min_count` times, most frequent first, at most `max_size` in all."""
        counts = Counter(w for doc in docs for w in doc)
        # ties broken alphabetically so the vocabulary does not depend on document order
        words = sorted(
            (w for w, c in counts.items() if c >= min_count and w not in SPECIALS), key=lambda w: (-counts[w], w)
        )
        if max_size is not None:
            words = words[: max(0, max_size - len(SPECIALS))]
        return cls([*SPECIALS, *words])

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return word in self.stoi

    def map_unk(self, tokens: Sequence[str]) -> list[str]:
        """Replace out-of-vocabulary tokens by <unk>."""
        return [w if w in self.stoi else UNK for w in tokens]

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Token ids, out-of-vocabulary tokens mapped to the id of <unk>."""
        unk = self.stoi[UNK]
        return [self.stoi.get(w, unk) for w in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens for ids."""
        return [self.itos[i] for i in ids]


def pad(tokens: Sequence[str], n: int) -> list[str]:
    """A document framed for an n-gram model: n-1 start symbols before, one end symbol after (notebook 01)."""
    return [BOS] * (n - 1) + list(tokens) + [EOS]


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """All n-grams of a padded document, as (context..., next) tuples (notebook 01)."""
    padded = pad(tokens, n)
    return [tuple(padded[i : i + n]) for i in range(len(padded) - n + 1)]


def add_k_prob(count: float, context_total: float, k: float, vocab_size: int) -> float:
    """Add-k estimate (c + k) / (N + k V): every one of V possible next tokens gets k pretend counts (notebook 01)."""
    return (count + k) / (context_total + k * vocab_size)


def apply_temperature(probs: Sequence[float], temperature: float) -> list[float]:
    """Re-shape a distribution: p_i^(1/T) renormalised, i.e. softmax(log p / T) (notebook 01)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}; use argmax for greedy decoding.")
    logs = [math.log(p) / temperature if p > 0 else -math.inf for p in probs]
    top = max(logs)  # subtract the largest before exp so nothing overflows (see notebook 02)
    weights = [math.exp(x - top) for x in logs]
    total = sum(weights)
    return [w / total for w in weights]


def perplexity_from_logprob(total_logprob: float, n_tokens: int) -> float:
    """exp(-(1/N) sum log p): the geometric-mean branching factor (notebook 01)."""
    return math.exp(-total_logprob / n_tokens)


class NGramLM:
    """A counted n-gram language model with add-k smoothing (notebook 01).

    P(w | context) = (c(context, w) + k) / (c(context) + k V), where V counts every token the model
    can predict: the vocabulary without <s> (which is never predicted) but with </s> and <unk>.
    """

    def __init__(self, vocab: Vocab, n: int = 2, k: float = 1.0) -> None:
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        self.vocab, self.n, self.k = vocab, n, k
        self.counts: dict[tuple[str, ...], Counter[str]] = {}
        self.totals: Counter[tuple[str, ...]] = Counter()
        self.targets = [w for w in vocab.itos if w != BOS]  # the V tokens a prediction ranges over

    @property
    def V(self) -> int:
        """Number of tokens a prediction ranges over."""
        return len(self.targets)

    def fit(self, docs: Iterable[Sequence[str]]) -> NGramLM:
        """Count every (context, next) pair in the documents (out-of-vocabulary words become <unk>)."""
        for doc in docs:
            for gram in ngrams(self.vocab.map_unk(doc), self.n):
                context, word = gram[:-1], gram[-1]
                self.counts.setdefault(context, Counter())[word] += 1
                self.totals[context] += 1
        return self

    def context_of(self, history: Sequence[str]) -> tuple[str, ...]:
        """The last n-1 tokens of a history (padded with <s>), out-of-vocabulary words as <unk>."""
        if self.n == 1:
            return ()
        padded = [BOS] * (self.n - 1) + self.vocab.map_unk(list(history)[-(self.n - 1) :])
        return tuple(padded[len(padded) - (self.n - 1) :])

    def _prob(self, word: str, context: tuple[str, ...]) -> float:
        """P(word | context) for an in-vocabulary word and an n-1 token context."""
        total = self.totals.get(context, 0)
        if total == 0 and self.k == 0:
            return 0.0  # an unseen context has no estimate without smoothing
        count = self.counts[context][word] if total else 0
        return add_k_prob(count, total, self.k, self.V)

    def prob(self, word: str, history: Sequence[str] = ()) -> float:
        """P(word | history) under the Markov assumption and add-k smoothing."""
        return self._prob(word if word in self.vocab else UNK, self.context_of(history))

    def distribution(self, history: Sequence[str] = ()) -> list[float]:
        """P(w | history) for every w in `self.targets` (sums to 1)."""
        context = self.context_of(history)
        return [self._prob(w, context) for w in self.targets]

    def token_logprobs(self, tokens: Sequence[str]) -> list[float]:
        """log P(w_i | w_<i) for each token and for the closing </s>, by the chain rule."""
        out = []
        for gram in ngrams(self.vocab.map_unk(tokens), self.n):  # each n-gram = (context..., next)
            p = self._prob(gram[-1], gram[:-1])
            out.append(math.log(p) if p > 0 else -math.inf)
        return out

    def logprob(self, tokens: Sequence[str]) -> float:
        """log P(tokens, </s>) = sum of the chain-rule terms (natural log)."""
        return sum(self.token_logprobs(tokens))

    def perplexity(self, docs: Iterable[Sequence[str]]) -> float:
        """exp of the mean negative log-probability per predicted token over all documents (</s> included)."""
        total, n = 0.0, 0
        for doc in docs:
            lps = self.token_logprobs(doc)
            total += sum(lps)
            n += len(lps)
        return perplexity_from_logprob(total, n)

    def sample(
        self,
        prefix: Sequence[str] = (),
        max_tokens: int = 30,
        temperature: float = 1.0,
        rng=None,
    ) -> list[str]:
        """Generate tokens after `prefix` until </s> or `max_tokens`, drawn from the temperature-scaled distribution."""
        import random

        rng = rng or random.Random(0)
        out = list(prefix)
        for _ in range(max_tokens):
            probs = apply_temperature(self.distribution(out), temperature)
            word = rng.choices(self.targets, weights=probs, k=1)[0]
            if word == EOS:
                break
            out.append(word)
        return out


def bigram_ids(docs: Iterable[Sequence[str]], vocab: Vocab):
    """(x, y) id tensors of every bigram in the padded documents: x predicts y (notebook 02)."""
    import torch

    xs: list[int] = []
    ys: list[int] = []
    for doc in docs:
        ids = vocab.encode(pad(doc, 2))
        xs.extend(ids[:-1])
        ys.extend(ids[1:])
    return torch.tensor(xs, dtype=torch.long), torch.tensor(ys, dtype=torch.long)


def bigram_count_matrix(xs, ys, vocab_size: int):
    """C[a, b] = how often id b follows id a, as a float64 (V, V) tensor (notebook 02)."""
    import torch

    counts = torch.zeros(vocab_size * vocab_size, dtype=torch.float64)
    counts.index_add_(0, xs * vocab_size + ys, torch.ones_like(xs, dtype=torch.float64))
    return counts.view(vocab_size, vocab_size)
