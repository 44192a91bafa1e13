"""Which vector the classification head reads: the [CLS] pooler, or the mean of the token vectors.

Introduced in notebook 07. `BertForSequenceClassification` feeds its head the pooler output: a dense
layer + tanh on the [CLS] token's final vector, pretrained by BERT's next-sentence task where a checkpoint
had that pretraining (a sentence-embedding model's own training leaves it untouched). Sentence-
embedding checkpoints such as all-MiniLM-L6-v2 (the course's offline BERT) were trained instead to
make the *average* of the token vectors meaningful, and say so in `1_Pooling/config.json`;
`checkpoint_pooling` reads that file, and `BertMeanPoolForSequenceClassification` is BERT with a head
on the masked mean. Importing this module loads neither torch nor transformers: the class is built the
first time it is asked for (`_mean_pool_class`), when a model is loaded.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

POOLINGS = ("cls", "mean")
POOLING_FILE = "1_Pooling/config.json"  # written by sentence-transformers next to the weights


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Average of the token vectors (B, T, H) → (B, H) over real tokens only: padding has mask 0."""
    if attention_mask is None:
        return hidden.mean(dim=1)
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1): 1 for a token, 0 for padding
    # clamp: a row with no real tokens would divide 0 by 0; its (zero) sum is returned instead of NaN
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def _pooling_file(location: str) -> Path | None:
    folder = Path(location).expanduser()
    if folder.is_dir():
        path = folder / POOLING_FILE
        return path if path.is_file() else None
    try:  # a hub name: the file is tiny; offline, only a cached copy is found
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(location, POOLING_FILE)
        if not isinstance(found, str):
            from huggingface_hub import hf_hub_download

            found = hf_hub_download(location, POOLING_FILE)
        return Path(found)
    except Exception:  # no such file in the repo, or no network: the checkpoint declares nothing
        return None


def checkpoint_pooling(location: str) -> str:
    """ "mean" if the checkpoint declares mean pooling (sentence-transformers' 1_Pooling/config.json), else "cls".

    "cls" means BERT's tanh pooler on [CLS]: exact for plain BERT checkpoints, only the nearest choice for a
    sentence-transformers model that declares raw-[CLS], max or sqrt-length pooling.
    """
    path = _pooling_file(location)
    if path is None:
        return "cls"
    settings = json.loads(path.read_text(encoding="utf-8"))
    return "mean" if settings.get("pooling_mode_mean_tokens") else "cls"


def resolve_pooling(pooling: str, location: str) -> str:
    """ "cls" or "mean": `pooling` itself, or for "auto" the pooling the checkpoint was trained with (BERT only)."""
    if pooling not in ("auto", *POOLINGS):
        raise ValueError(f"Unknown pooling {pooling!r}; choose 'auto', {', '.join(map(repr, POOLINGS))}.")
    if pooling == "cls":
        return pooling
    from transformers import AutoConfig

    model_type = AutoConfig.from_pretrained(location).model_type
    if pooling == "auto":  # a non-BERT checkpoint keeps its own transformers head, whatever it declares
        return checkpoint_pooling(location) if model_type == "bert" else "cls"
    if model_type != "bert":
        raise ValueError(
            f"pooling='mean' is implemented for BERT checkpoints; {location} is a {model_type!r} model. Use "
            "pooling='cls'."
        )
    return pooling


@functools.cache
def _mean_pool_class() -> type:
    """`BertMeanPoolForSequenceClassification`, built once on first use so that importing this module stays light."""
    import torch  # noqa: F401  (the annotations below name it)
    from torch import nn
    from transformers import BertConfig, BertModel, BertPreTrainedModel
    from transformers.modeling_outputs import SequenceClassifierOutput

    class BertMeanPoolForSequenceClassification(BertPreTrainedModel):
        """BERT with a classification head on the masked mean of the final token vectors (no [CLS] pooler)."""

        def __init__(self, config: BertConfig):
            super().__init__(config)
            if config.num_labels < 2:
                raise ValueError(
                    f"{type(self).__name__} classifies into num_labels >= 2 classes, got {config.num_labels}."
                )
            self.num_labels = config.num_labels
            self.bert = BertModel(
                config, add_pooling_layer=False
            )  # an unused pooler would have no gradient (and upset DDP)
            dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
            self.dropout = nn.Dropout(dropout)
            self.classifier = nn.Linear(config.hidden_size, config.num_labels)
            self.post_init()

        def forward(
            self,
            input_ids: torch.Tensor | None = None,
            attention_mask: torch.Tensor | None = None,
            token_type_ids: torch.Tensor | None = None,
            position_ids: torch.Tensor | None = None,
            inputs_embeds: torch.Tensor | None = None,
            labels: torch.Tensor | None = None,
            **kwargs,
        ) -> SequenceClassifierOutput:
            """Logits from the mean of the real tokens' vectors; cross-entropy loss when `labels` are given."""
            outputs = self.bert(
                input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                position_ids=position_ids,
                inputs_embeds=inputs_embeds,
                return_dict=True,
                **kwargs,
            )
            pooled = mean_pool(outputs.last_hidden_state, attention_mask)
            logits = self.classifier(self.dropout(pooled))
            loss = (
                None
                if labels is None
                else nn.functional.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
            )
            return SequenceClassifierOutput(
                loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
            )

    BertMeanPoolForSequenceClassification.__qualname__ = "BertMeanPoolForSequenceClassification"
    return BertMeanPoolForSequenceClassification


def __getattr__(name: str):
    """`from ftlearn.pooling import BertMeanPoolForSequenceClassification` builds the class (PEP 562)."""
    if name == "BertMeanPoolForSequenceClassification":
        return _mean_pool_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def classifier_class(pooling: str) -> type:
    """The model class for a resolved pooling: transformers' own for "cls", ours for "mean"."""
    if pooling == "mean":
        return _mean_pool_class()
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification


def saved_class(folder: str | Path) -> type:
    """The class to reload a saved classifier with, from the `architectures` its config.json records."""
    from transformers import AutoModelForSequenceClassification

    config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    if "BertMeanPoolForSequenceClassification" in (config.get("architectures") or []):
        return _mean_pool_class()
    return AutoModelForSequenceClassification


def model_pooling(model: nn.Module) -> str:
    """ "mean" for a `BertMeanPoolForSequenceClassification` (also inside a DDP wrapper), else "cls"."""
    model = getattr(model, "module", model)
    return "mean" if isinstance(model, _mean_pool_class()) else "cls"
