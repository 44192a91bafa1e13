"""A small GPT-2-architecture model built on this machine, for learners without the Hugging Face hub.

Introduced in notebook 09. No pretrained GPT-2 weights can be installed offline, so when
`ftlearn.models.locate_model("gpt2")` finds neither the hub nor a cached copy, it points at this module's build
folder, and `ftlearn.models.resolve_model` builds it there on first use:

1. a general-English corpus from a fixed list of sources that every course installation carries: the docstrings
   of the Python standard library's modules, classes and functions, plus the long descriptions (README text) in
   the METADATA of the course's own declared dependencies (`CORPUS_PACKAGES`), never of whatever else happens to
   be installed; cut into prose paragraphs, built at run time, never saved as text; its SHA-256 and sources
   (Python and package versions) are recorded in the build's build_info.json;
2. a byte-level BPE tokenizer trained on that corpus with `tokenizers` (GPT-2's scheme: bytes, then merges),
   wrapped as a `GPT2TokenizerFast` whose only special token is `<|endoftext|>` (and no pad token, like GPT-2);
3. a `GPT2LMHeadModel` with a small `GPT2Config`, pretrained for a few hundred steps on that corpus;
4. model and tokenizer saved with `save_pretrained` (safetensors) in a per-machine cache folder keyed by
   the build settings ($FTLEARN_CACHE, default ~/.cache/ftlearn), so the build happens once per machine.

It is honestly a model of about a million parameters pretrained for minutes on documentation text: it writes
English-looking text with real words and little sense; it is not OpenAI's GPT-2. The lessons' code runs unchanged
on either. This module deals in folders and plain settings only (it never imports `ftlearn.models`); which build to
use is a parameter, `build` ("smoke" or "cpu"; `build_for_profile` picks it), with $FTLEARN_GPT2_BUILD as an override.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
import re
import shutil
import sys
import sysconfig
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ftlearn.course import BUILD_TIMING_KEY  # its entry in the course's timings (`ftlearn build-gpt2 --record`)

CACHE_ENV = "FTLEARN_CACHE"
BUILD_ENV = "FTLEARN_GPT2_BUILD"  # "smoke" or "cpu": a user override, read when the caller names no build
EOS = "<|endoftext|>"  # GPT-2's one special token: end of a document, also used as bos/unk
# Bump when the recipe changes, so old caches are not reused. 2: pretrained through ftlearn.train.fit
# (lesson 04's AdamW, the one schedule family). 3: the corpus comes from fixed sources only (CORPUS_PACKAGES).
BUILDER_VERSION = 3
BUILD_WAIT_S = 3600.0  # how long the other torchrun ranks wait for local rank 0's build (the cpu build: minutes)


class BuildWaitTimeout(RuntimeError):
    """Another process was to build the offline GPT-2 and it did not appear in time; the message says what to do."""


# The packages whose METADATA descriptions join the corpus: the course's declared dependencies (pyproject.toml),
# in a fixed order. Before builder 3 every installed package's description was used, so installing anything
# changed the build (tests/test_offline_gpt2.py checks that it no longer does, and that each name here is declared).
CORPUS_PACKAGES = (
    "torch",
    "transformers",
    "datasets",
    "accelerate",
    "tokenizers",
    "safetensors",
    "huggingface-hub",
    "scikit-learn",
    "pandas",
    "numpy",
    "tqdm",
    "matplotlib",
    "ipywidgets",
    "jupyterlab",
    "nbformat",
    "nbclient",
    "ipykernel",
    "nbval",
)


@dataclass(frozen=True)
class BuildConfig:
    """How the offline GPT-2 is built: corpus size, tokenizer, architecture and pretraining budget."""

    name: str
    corpus_chars: int  # characters of prose to collect
    vocab_size: int  # BPE vocabulary, including the 256 byte tokens and <|endoftext|>
    n_positions: int  # longest context the model can read
    n_embd: int
    n_layer: int
    n_head: int
    block_size: int  # tokens per pretraining example
    batch_size: int
    steps: int  # optimizer steps of pretraining
    lr: float  # peak learning rate (linear warm-up, cosine decay)
    seed: int = 0

    def key(self) -> str:
        """A short hash of the settings: the cache folder's name changes when any setting does."""
        blob = json.dumps({**asdict(self), "builder": BUILDER_VERSION}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:10]


BUILDS: dict[str, BuildConfig] = {
    # CI: the whole build in well under 30 s on 2 busy CPU cores; the model is barely trained.
    "smoke": BuildConfig(
        "smoke",
        corpus_chars=150_000,
        vocab_size=1024,
        n_positions=128,
        n_embd=64,
        n_layer=2,
        n_head=2,
        block_size=64,
        batch_size=16,
        steps=40,
        lr=3e-3,
    ),
    # a laptop: a few minutes, once (131 s on 2 idle CPU cores, 11 min on 2 busy ones);
    # English-looking text, little sense.
    "cpu": BuildConfig(
        "cpu",
        corpus_chars=1_500_000,
        vocab_size=4096,
        n_positions=256,
        n_embd=128,
        n_layer=4,
        n_head=4,
        block_size=128,
        batch_size=16,
        steps=300,
        lr=2e-3,
    ),
}


def cache_root() -> Path:
    """Where ftlearn keeps per-machine builds: $FTLEARN_CACHE, else ~/.cache/ftlearn."""
    return Path(os.environ.get(CACHE_ENV, "").strip() or Path.home() / ".cache" / "ftlearn").expanduser()


def build_dir(config: BuildConfig) -> Path:
    """The cache folder of one build: <cache>/offline-gpt2/<name>-<hash of the settings>."""
    return cache_root() / "offline-gpt2" / f"{config.name}-{config.key()}"


def build_for_profile(profile_name: str) -> str:
    """The offline GPT-2 build that suits a profile: `smoke` for the smoke profile, `cpu` for any other."""
    return "smoke" if profile_name == "smoke" else "cpu"


def default_build() -> str:
    """The build used when the caller names none: $FTLEARN_GPT2_BUILD, else the one that suits the current profile."""
    wanted = os.environ.get(BUILD_ENV, "").strip().lower()
    if wanted:
        if wanted not in BUILDS:
            raise ValueError(f"{BUILD_ENV}={wanted!r}: choose one of {', '.join(BUILDS)}.")
        return wanted
    from ftlearn.runtime import get_profile  # reads FTLEARN_PROFILE, else gpu/cpu by the CUDA check

    return build_for_profile(get_profile("auto").name)


def build_config(build: str | None = None) -> BuildConfig:
    """The settings of the build named `build` ("smoke" or "cpu"; None: `default_build()`)."""
    name = build or default_build()
    if name not in BUILDS:
        raise ValueError(f"Unknown offline GPT-2 build {name!r}: choose one of {', '.join(BUILDS)}.")
    return BUILDS[name]


BUILD_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "build_info.json")


def build_problem(folder: str | Path) -> str | None:
    """What is wrong with a build folder (a missing, truncated or changed file), or None when it is intact.

    A build made by this version has a manifest (every file's size and sha256, `ftlearn.files`), checked
    in full: milliseconds for these small models. An older build has none; it is checked without loading
    anything (each JSON file parses, the weights are as long as their header says), and `ensure_built`
    then writes its manifest, so an intact old cache is kept rather than rebuilt.
    """
    from ftlearn.files import json_problem, manifest_problem, read_manifest, safetensors_problem

    folder = Path(folder)
    try:
        manifest = read_manifest(folder)
    except ValueError as exc:
        return str(exc)
    if manifest is not None:
        missing = [name for name in BUILD_FILES if name not in manifest["files"]]
        return manifest_problem(folder, manifest) or (f"its manifest does not list {missing[0]}" if missing else None)
    for name in BUILD_FILES:
        problem = safetensors_problem(folder / name) if name.endswith(".safetensors") else json_problem(folder / name)
        if problem:
            return problem
    return None


def build_status(folder: str | Path) -> tuple[str, str | None]:
    """("missing", None) when nothing is built there, ("damaged", what) or ("ok", None)."""
    folder = Path(folder)
    if not folder.is_dir():
        return "missing", None
    problem = build_problem(folder)
    return ("damaged", problem) if problem else ("ok", None)


def is_built(folder: str | Path) -> bool:
    """True when `folder` holds a finished, intact build (see `build_problem`)."""
    return build_status(folder)[0] == "ok"


# ---------------------------------------------------------------- 1. the corpus

_SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "site-packages", "dist-packages", "turtledemo", "__pycache__"}
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")  # [text](url) -> text; images vanish with their alt text
_TAGS = re.compile(r"<[^>]+>")
_RST_ROLES = re.compile(r":[a-z]+:`([^`]*)`")  # :func:`len` -> `len`
_MARKUP = re.compile(r"[`*_#|=~^]{1,}")


def _is_prose(paragraph: str) -> bool:
    """Keep paragraphs that read like English sentences; drop code, tables, lists of options, URLs."""
    words = paragraph.split()
    if len(words) < 8 or len(paragraph) < 60 or "http" in paragraph or ">>>" in paragraph:
        return False
    letters = sum(c.isalpha() or c.isspace() for c in paragraph)
    return letters / len(paragraph) > 0.88 and paragraph[0].isupper() and paragraph.rstrip()[-1] in ".:!?"


def _paragraphs(text: str) -> list[str]:
    """Split on blank lines, strip markup, join each paragraph's lines into one, keep the prose ones."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = block.splitlines()
        if any(line.startswith(("    ", "\t", "```", "..", "$ ", "- ", "* ", "|")) for line in lines):
            continue  # code blocks, directives, shell lines, bullet lists, tables
        flat = " ".join(line.strip() for line in lines)
        flat = _MARKUP.sub("", _RST_ROLES.sub(r"\1", _TAGS.sub("", _MD_LINK.sub(r"\1", flat))))
        flat = re.sub(r"\s+", " ", flat).strip()
        if _is_prose(flat):
            out.append(flat)
    return out


def _stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(p for p in root.rglob("*.py") if not _SKIP_DIRS.intersection(p.relative_to(root).parts))


def stdlib_docstrings(max_chars: int) -> list[str]:
    """Prose paragraphs from the docstrings of the standard library (read with `ast`, nothing is imported)."""
    docs: list[str] = []
    total = 0
    for path in _stdlib_files():
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                for para in _paragraphs(doc) if doc else []:
                    docs.append(para)
                    total += len(para)
        if total >= max_chars:
            break
    return docs


def package_descriptions(max_chars: int, packages: tuple[str, ...] = CORPUS_PACKAGES) -> tuple[list[str], dict]:
    """Prose paragraphs from the METADATA descriptions of `packages`, in that order, and each one's version."""
    from importlib import metadata

    docs: list[str] = []
    versions: dict[str, str | None] = {}
    total = 0
    for name in packages:
        if total >= max_chars:
            break
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:  # a declared dependency that is missing: recorded as such
            versions[name] = None
            continue
        versions[name] = dist.version
        body = dist.metadata.get_payload() or dist.metadata.get("Description") or ""
        for para in _paragraphs(str(body)):
            docs.append(para)
            total += len(para)
    return docs, versions


def corpus_sha256(docs: list[str]) -> str:
    """The SHA-256 of a corpus (paragraphs joined by blank lines): builds with equal hashes read the same text."""
    return hashlib.sha256("\n\n".join(docs).encode("utf-8")).hexdigest()


def build_corpus(max_chars: int) -> tuple[list[str], dict[str, int], dict]:
    """Documents for pretraining (up to `max_chars` characters), characters per source, and the provenance record."""
    packages, versions = package_descriptions(max_chars // 2)
    stdlib = stdlib_docstrings(max_chars - sum(map(len, packages)))
    docs = stdlib + packages
    sources = {"stdlib docstrings": sum(map(len, stdlib)), "package descriptions": sum(map(len, packages))}
    provenance = {"python": sys.version.split()[0], "packages": versions, "sha256": corpus_sha256(docs)}
    return docs, sources, provenance


# ---------------------------------------------------------------- 2. the tokenizer


def train_tokenizer(docs: list[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer trained on `docs`, wrapped as a GPT2TokenizerFast (eos = bos = unk, no pad)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2TokenizerFast

    tok = Tokenizer(models.BPE())
    # GPT-2's scheme: text -> UTF-8 bytes, each byte shown as a printable character, spaces kept with the word.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: any text can be encoded
        show_progress=False,
    )
    tok.train_from_iterator(docs, trainer=trainer)
    return GPT2TokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, unk_token=EOS)


# ---------------------------------------------------------------- 3. pretraining


def _blocks(docs: list[str], tokenizer: Any, block_size: int) -> Any:
    """All documents as one token stream (eos between documents), cut into rows of `block_size`: (N, T)."""
    import torch

    ids: list[int] = []
    for encoded in tokenizer(docs, add_special_tokens=False)["input_ids"]:
        ids.extend(encoded)
        ids.append(tokenizer.eos_token_id)
    n = len(ids) // block_size
    return torch.tensor(ids[: n * block_size]).view(n, block_size)


def pretrain(config: BuildConfig, docs: list[str], tokenizer: Any, verbose: bool = True) -> tuple[Any, dict]:
    """A fresh GPT2LMHeadModel trained by `fit` on random blocks of the corpus; returns it and the losses."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from ftlearn.train import TrainConfig, fit

    torch.manual_seed(config.seed)
    blocks = _blocks(docs, tokenizer, config.block_size)
    n_val = max(2, len(blocks) // 50)
    val, train = blocks[:n_val], blocks[n_val:]  # (N_val, T), (N_train, T)
    gpt_config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=config.n_positions,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        # no dropout: a short pretraining run underfits, it does not overfit
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = GPT2LMHeadModel(gpt_config)
    # `steps` batches of blocks drawn at random with replacement, one pass: (B, T) each
    gen = torch.Generator().manual_seed(config.seed)
    rows = (train[torch.randint(len(train), (config.batch_size,), generator=gen)] for _ in range(config.steps))
    batches = [{"input_ids": r, "labels": r} for r in rows]  # the model shifts the labels itself

    # GPT-style pretraining settings: betas (0.9, 0.95), decay 0.1, warm-up then a cosine to 10% of the peak
    settings = TrainConfig(
        lr=config.lr,
        epochs=1,
        weight_decay=0.1,
        betas=(0.9, 0.95),
        warmup_ratio=0.1,
        decay="cosine",
        final_lr_ratio=0.1,
        mixed_precision="no",
        progress=verbose,  # fit's progress bar: step, loss and the time left
    )
    # on the CPU wherever it runs (the build is small, and the same everywhere), and in this process alone
    # even under torchrun (where only local rank 0 builds, see `ensure_built`)
    history = fit(model, batches, config=settings, device="cpu", ddp=False)
    model.eval()
    with torch.no_grad():
        val_loss = model(input_ids=val, labels=val).loss.item()
    losses = history.loss
    info = {
        "train_blocks": len(train),
        "train_tokens_seen": config.steps * config.batch_size * config.block_size,
        "first_loss": losses[0],
        "last_loss": sum(losses[-20:]) / len(losses[-20:]),
        "val_loss": val_loss,
        "val_perplexity": math.exp(val_loss),
    }
    return model, info


# ---------------------------------------------------------------- 4. build once, cache


def measured_build(build: str) -> dict | None:
    """The recorded time of the build `build`: {seconds, hardware, date, load_avg}, or None if never measured."""
    from ftlearn.course import load_timings

    record = load_timings().get(BUILD_TIMING_KEY, {}).get(build)
    return record if isinstance(record, dict) and "seconds" in record else None


def build_cost(build: str) -> str:
    """What building `build` costs, as measured: 'about 77 s measured on x86_64, 2 CPU cores, no GPU (2026-12-07)'."""
    record = measured_build(build)
    if record is None:
        return "its build time has not been measured yet"
    seconds = record["seconds"]
    took = f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
    return f"about {took}, measured on {record.get('hardware', 'an unnamed machine')} ({record.get('date', '?')})"


def first_lesson_needing_gpt2() -> str:
    """The course map's first lesson that loads GPT-2, as 'lesson 06 (The transformer, by hand)'."""
    from ftlearn.course import first_lesson_needing, lesson_label

    lesson = first_lesson_needing("gpt2")
    return lesson_label(lesson) if lesson else "the first GPT-2 lesson"


def announce_build(config: BuildConfig, target: Path) -> None:
    """One line before a build starts: what is built, why, where, and how long it took when measured."""
    from ftlearn.files import display_path

    print(
        f"The offline GPT-2 ('{config.name}' build) is not on this machine yet, so it is built now, once: a byte-level "
        f"BPE tokenizer and a {config.n_layer}-layer GPT-2 pretrained for {config.steps} steps on documentation text "
        f"({build_cost(config.name)}), saved in {display_path(target)}. Later lessons load it in seconds; "
        f"`ftlearn build-gpt2 --profile {config.name}` builds it ahead of time.",
        flush=True,
    )


def ensure_built(
    name: str | None = None, verbose: bool = True, force: bool = False, wait_s: float | None = None
) -> Path:
    """The folder of the offline GPT-2 build `name` (default: `default_build()`), building it first if needed.

    Under torchrun (or accelerate launch) only each machine's local rank 0 builds; the other ranks wait up to
    `wait_s` seconds (default `BUILD_WAIT_S`) for its build to appear, so that N processes do not build (and swap)
    the same folder at once.
    """
    import torch

    from ftlearn import distributed
    from ftlearn.files import read_manifest, write_manifest

    config = build_config(name)
    target = build_dir(config)
    if distributed.launched_world_size() > 1 and distributed.local_rank() != 0 and not force:
        return wait_for_build(target, config.name, BUILD_WAIT_S if wait_s is None else wait_s)
    remove_stale_temporaries(target)
    status, problem = build_status(target)
    if status == "ok" and not force:
        if read_manifest(target) is None:  # an intact build from before manifests: record it, keep it
            try:
                write_manifest(target, build=config.name)
            except OSError:  # a read-only shared cache: checked the cheap way each time instead
                pass
        return target
    if status == "damaged":  # said whether or not `verbose`: a rebuild takes minutes, and the user should know why
        from ftlearn.files import display_path

        print(f"The offline GPT-2 cache at {display_path(target)} is damaged ({problem}); rebuilding it.", flush=True)
    if verbose:
        announce_build(config, target)
    start = time.perf_counter()
    docs, sources, provenance = build_corpus(config.corpus_chars)
    tokenizer = train_tokenizer(docs, config.vocab_size)
    if verbose:
        print(
            f"  corpus: {len(docs):,} paragraphs, {sum(sources.values()):,} characters "
            f"({', '.join(f'{k} {v:,}' for k, v in sources.items())}); BPE vocabulary {len(tokenizer):,} "
            f"({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    model, info = pretrain(config, docs, tokenizer, verbose=verbose)
    info.update(
        config=asdict(config),
        corpus_sources=sources,
        corpus_paragraphs=len(docs),
        corpus_sha256=provenance["sha256"],
        corpus_python=provenance["python"],
        corpus_packages=provenance["packages"],
        parameters=sum(p.numel() for p in model.parameters()),
        seconds=round(time.perf_counter() - start, 1),
        python=sys.version.split()[0],
        torch=torch.__version__,
        builder=BUILDER_VERSION,
    )
    save_build(target, model, tokenizer, info, replace=force)
    if verbose:
        print(
            f"  done in {info['seconds']:.0f} s: {info['parameters'] / 1e6:.2f}M parameters, held-out perplexity "
            f"on documentation text {info['val_perplexity']:.1f}",
            flush=True,
        )
    return target


def wait_for_build(target: Path, build: str, wait_s: float = BUILD_WAIT_S, poll_s: float = 1.0) -> Path:
    """Wait until another process (local rank 0 under torchrun) has finished `build` at `target`; returns it.

    Raises `BuildWaitTimeout` after `wait_s` (`ftlearn.models.resolve_model` passes it on as the
    `ModelUnavailableError` that `ftlearn finetune` reports in one line).
    """
    deadline = time.monotonic() + wait_s
    while not is_built(target):
        if time.monotonic() > deadline:
            raise BuildWaitTimeout(
                f"Waited {wait_s:.0f} s for local rank 0 to build the offline GPT-2 at {target}, and it is still not "
                f'there. Build it once in a single process first: python -c "from ftlearn.offline_gpt2 import '
                f"ensure_built; ensure_built('{build}')\", then launch torchrun again."
            )
        time.sleep(poll_s)
    return target


def _temporary_owner(name: str, target: Path) -> int | None:
    """The process id in a temporary build folder's name (.NAME-PID-...), or None for an older unnamed one."""
    head = name.removeprefix(f".{target.name}-").split("-")[0]
    return int(head) if head.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale_temporaries(target: Path, max_age_s: float = 3600.0) -> list[Path]:
    """Delete temporary folders that killed builds left beside `target`; returns them.

    A temporary folder is named after the process that builds in it; it is stale once that process is
    gone (under torchrun several ranks may be building at once, each in its own). Older unnamed ones
    are stale after `max_age_s`.
    """
    removed = []
    if not target.parent.is_dir():
        return removed
    for path in target.parent.glob(f".{target.name}-*"):
        pid = _temporary_owner(path.name, target)
        stale = not _alive(pid) if pid is not None else time.time() - path.stat().st_mtime > max_age_s
        if stale and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def save_build(target: Path, model: Any, tokenizer: Any, info: dict, replace: bool = False) -> None:
    """Write a build into a temporary sibling, manifest last, and rename it into place.

    A damaged build already at `target` (any build, with `replace`) is moved aside first and deleted once the
    new one is in place.
    If another process (another torchrun rank) has put an intact build there meanwhile, that one is kept.
    """
    from ftlearn.files import write_json_atomic, write_manifest

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-{os.getpid()}-", dir=target.parent))
    aside = target.with_name(f".{target.name}-{os.getpid()}-old")
    try:
        model.save_pretrained(tmp)  # config.json + model.safetensors
        tokenizer.save_pretrained(tmp)
        write_json_atomic(tmp / "build_info.json", info)
        write_manifest(tmp, build=info.get("config", {}).get("name"))  # last: the build is complete
        if target.exists() and (replace or not is_built(target)):
            target.rename(aside)
        try:
            tmp.rename(target)  # atomic: a half-written build is never seen as done
        except OSError:  # another process finished the same build first; keep theirs
            pass
    finally:
        for leftover in (tmp, aside):
            if leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)


def build_info(folder: str | Path) -> dict | None:
    """What a build folder holds (settings, corpus sizes, losses, time), or None for a non-ftlearn model."""
    path = Path(folder) / "build_info.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None  # missing or damaged (`build_status` says which)
    return info if isinstance(info, dict) else None
