"""Bag-of-words features for IMDB: each review becomes a fixed-length vector of word weights.

Introduced in notebook 03, where a linear classifier on these vectors is trained with hand-written
gradients and becomes the baseline every later model must beat; reused in notebook 04. The counting
is scikit-learn's `TfidfVectorizer`: the lesson is about gradients, not about tokenizing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ftlearn.tokenization import clean_review

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from sklearn.feature_extraction.text import TfidfVectorizer


def _tfidf_preprocessor(text: str) -> str:
    """A review without its `<br />` tags, lower-cased: the TF-IDF preprocessor (notebook 03)."""
    # A custom preprocessor replaces TfidfVectorizer's own lower-casing, so it must lower-case itself.
    return clean_review(text).lower()


@dataclass
class BagOfWords:
    """Features of one train/test split: X_* are (N, V) float tensors, y_* are (N,) int64 labels."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    vectorizer: TfidfVectorizer

    @property
    def vocabulary(self) -> list[str]:
        """The V words, in column order."""
        return list(self.vectorizer.get_feature_names_out())


def bag_of_words(
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    test_texts: Sequence[str],
    test_labels: Sequence[int],
    *,
    max_features: int = 5000,
    min_df: int = 2,
    dtype: torch.dtype | None = None,
) -> BagOfWords:
    """TF-IDF vectors (unigrams, sublinear tf, rows of length 1) fitted on train only (notebook 03).

    The vocabulary and idf weights come from the training reviews alone, so nothing about the test
    split leaks into the features. Dense tensors: 2,000 reviews x 5,000 words is 40 MB in float32.
    """
    import numpy as np
    import torch
    from sklearn.feature_extraction.text import TfidfVectorizer

    # min_df drops words seen in fewer than min_df reviews: rare words are mostly noise with few
    # examples; on tiny subsets (the smoke profile) fall back to 1 so the vocabulary is not empty.
    min_df = min_df if len(train_texts) >= 200 else 1
    vectorizer = TfidfVectorizer(
        preprocessor=_tfidf_preprocessor, max_features=max_features, min_df=min_df, sublinear_tf=True, dtype=np.float64
    )
    dtype = dtype or torch.get_default_dtype()
    X_train = torch.tensor(vectorizer.fit_transform(train_texts).toarray(), dtype=dtype)  # (N_train, V)
    X_test = torch.tensor(vectorizer.transform(test_texts).toarray(), dtype=dtype)  # (N_test, V)
    y_train = torch.as_tensor(np.asarray(train_labels), dtype=torch.long)
    y_test = torch.as_tensor(np.asarray(test_labels), dtype=torch.long)
    return BagOfWords(X_train, y_train, X_test, y_test, vectorizer)


def imdb_bag_of_words(dsd, **kwargs) -> BagOfWords:
    """`bag_of_words` on a DatasetDict from `ftlearn.data.load_imdb` (notebooks 03 and 04)."""
    return bag_of_words(
        dsd["train"]["text"], dsd["train"]["label"], dsd["test"]["text"], dsd["test"]["label"], **kwargs
    )
