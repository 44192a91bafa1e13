"""The `ftlearn` command: doctor, lab, run, exercises, progress, headers, tidy, site, finetune, distill, predict,
compare."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

OK, FAIL, INFO = "ok", "FAIL", "--"


def _one_line(exc: BaseException) -> str:
    """An exception as `Type: first line of its message`."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def _row(status: str, what: str, detail: str) -> None:
    print(f"  [{status:^4}] {what:<12} {detail}")


def cmd_doctor(args: argparse.Namespace) -> int:
    """Report versions, device, profile, data and model sources; non-zero exit when the course cannot run."""
    from importlib.metadata import PackageNotFoundError

    from ftlearn.runtime import package_version, required_packages

    failures = 0
    print("ftlearn doctor\n")
    if sys.version_info < (3, 10):  # noqa: UP036 - an old interpreter can reach this through `python -m ftlearn.cli`
        _row(FAIL, "python", f"{sys.version.split()[0]} is too old: the course needs Python 3.10 or newer.")
        failures += 1
    else:
        _row(OK, "python", sys.version.split()[0])
    try:
        required = required_packages("ftlearn")  # pyproject's dependencies, as installed
    except PackageNotFoundError:
        _row(FAIL, "ftlearn", "the course package is not installed. Fix: pip install -e . (in the course folder)")
        return 1
    missing = [name for name in required if package_version(name) is None]
    for name in required:
        if name not in missing:
            _row(OK, name, package_version(name) or "")
    if missing:
        _row(FAIL, "packages", f"missing: {', '.join(missing)}. Fix: pip install -e . (in the course folder)")
        print("\nThe course cannot run until the packages above are installed.")
        return 1

    from ftlearn.data import DIR_ENV, HUB_NAME, IMDBDataError, imdb_source, load_local
    from ftlearn.files import display_path  # <imdb>, <cache>/…: the report names no machine's folders
    from ftlearn.models import ModelUnavailableError, locate_model
    from ftlearn.offline_gpt2 import build_for_profile
    from ftlearn.runtime import get_profile, hardware_summary, is_online, pick_device

    try:
        profile = get_profile(args.profile)
        from ftlearn.course import time_promise

        _row(OK, "profile", f"{profile.name}: {profile.description}; {time_promise(profile.name)}")
    except ValueError as exc:
        _row(FAIL, "profile", str(exc))
        return 1
    try:
        _row(OK, "device", f"{pick_device()} ({hardware_summary()})")
    except RuntimeError as exc:
        _row(FAIL, "device", str(exc))
        failures += 1
    online = is_online()
    _row(
        INFO,
        "network",
        "online: the hub is reachable" if online else "offline: the hub is not reachable (or HF_HUB_OFFLINE=1)",
    )

    source = imdb_source()
    if source == HUB_NAME:
        if online:
            _row(OK, "data", f"IMDB from the hub ({HUB_NAME}), cached after the first download")
        else:
            _row(
                FAIL,
                "data",
                f"offline and {DIR_ENV} is not set. Fix: export {DIR_ENV}=/path/to/imdb-folder (train.csv, test.csv)",
            )
            failures += 1
    else:
        try:
            dsd = load_local(source)
            sizes = f"{len(dsd['train']):,} train, {len(dsd['test']):,} test reviews"
            _row(OK, "data", f"IMDB from {display_path(source)}: {sizes}")
        except IMDBDataError as exc:
            _row(FAIL, "data", str(exc))
            failures += 1
        except Exception as exc:  # noqa: BLE001 - a case data.py does not name yet: report it, finish the report
            _row(FAIL, "data", f"{source} could not be loaded: {_one_line(exc)}")
            failures += 1

    # BERT must be loadable; GPT-2 only from the first lesson whose course-map entry needs it, which builds the
    # offline one if need be (its row says whether it is built and what building it costs).
    build = build_for_profile(profile.name)
    for family, name, required in (("bert", profile.bert_model, True), ("gpt2", profile.gpt2_model, False)):
        try:
            found = locate_model(family, name, online=online, build=build)  # looks only: never builds or loads
        except (ModelUnavailableError, ValueError) as exc:
            _row(FAIL if required else INFO, family, str(exc))
            failures += required
            continue
        except Exception as exc:  # noqa: BLE001 - never stop half-way through the report
            _row(FAIL if required else INFO, family, f"could not be located: {_one_line(exc)}")
            failures += required
            continue
        _row(OK if found.ready else INFO, family, f"{display_path(found.location)}: {found.note}")

    print()
    if failures:
        print(f"{failures} problem(s) above: fix them, then run `ftlearn doctor` again.")
        return 1
    print("All set: `ftlearn lab` opens the course.")
    return 0


def cmd_build_gpt2(args: argparse.Namespace) -> int:
    """Build the offline GPT-2 for a profile now (once per machine), with a progress bar; --record times it."""
    from ftlearn.course import BUILD_TIMING_KEY
    from ftlearn.files import display_path
    from ftlearn.offline_gpt2 import (
        build_config,
        build_dir,
        build_for_profile,
        ensure_built,
        is_built,
    )
    from ftlearn.runtime import get_profile

    try:
        config = build_config(build_for_profile(get_profile(args.profile).name))
    except ValueError as exc:
        print(f"ftlearn build-gpt2: {exc}", file=sys.stderr)
        return 2
    if is_built(build_dir(config)) and not args.force:
        print(f"The offline GPT-2 ('{config.name}' build) is already built: {display_path(build_dir(config))}.")
        print("Nothing to do (--force builds it again).")
        return 0
    from ftlearn.authoring.nbrun import LoadSampler

    with LoadSampler() as load:
        start = time.perf_counter()
        folder = ensure_built(config.name, force=args.force)
        seconds = time.perf_counter() - start
    if args.record:
        from ftlearn.authoring.nbrun import record_seconds
        from ftlearn.course import TIMINGS_FILE

        path = _root_or_exit() / "ftlearn" / TIMINGS_FILE
        record_seconds(BUILD_TIMING_KEY, config.name, seconds, path, load=load.summary())
        print(f"Recorded {seconds:.1f} s for the '{config.name}' build in {display_path(path)}.")
    print(f"Ready: {display_path(folder)}")
    return 0


def _root_or_exit() -> Path:
    from ftlearn.course import repo_root

    root = repo_root()
    if root is None:
        raise SystemExit("ftlearn: run this inside the course folder (the one with notebooks/ and ftlearn/).")
    return root


LAB_CONFIG = "jupyter_config"  # package data: a Jupyter config folder that `ftlearn lab` adds (`lab_env`)


def lab_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment JupyterLab starts in: `environ` with ftlearn's config folder added to JUPYTER_CONFIG_PATH.

    The folder's labconfig/default_setting_overrides.json (read by jupyterlab_server) changes two defaults of
    `@jupyterlab/apputils-extension:notification`, the settings of JupyterLab 4's announcements plugin:
    fetchNews "false" (its default, "none", opens on "Would you like to get notified about official Jupyter
    news?") and checkForUpdates false (no request to PyPI at every start). Defaults only: a choice made in
    Settings still wins. No command-line option does this: `--LabApp.news_url=None` stops the server's fetch,
    but the page asks all the same. The folder goes after any the user put on JUPYTER_CONFIG_PATH: theirs win.
    """
    from importlib.resources import files

    env = dict(os.environ if environ is None else environ)
    ours = str(files("ftlearn").joinpath(LAB_CONFIG))
    paths = [p for p in env.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p and p != ours]
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join([*paths, ours])
    return env


def cmd_lab(args: argparse.Namespace) -> int:
    """Open JupyterLab on the course, starting at the welcome notebook, without the Jupyter news prompt."""
    root = _root_or_exit()
    print(f"Serving the course checkout at {root}")  # the current folder's checkout, else the package's
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        f"--ServerApp.root_dir={root}",
        "--LabApp.default_url=/lab/tree/notebooks/00_welcome.ipynb",
        *args.jupyter_args,
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in command:
        command.append("--allow-root")  # containers and cloud VMs often run as root; Jupyter refuses without it
    print("Starting:", " ".join(command))
    return subprocess.call(command, env=lab_env())


def cmd_run(args: argparse.Namespace) -> int:
    """Execute notebooks headless and print a table of time and status per notebook."""
    from ftlearn.authoring.nbrun import execute, notebook_problem, record_timing
    from ftlearn.course import TIMINGS_FILE

    paths = [Path(p) for p in args.notebooks]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        print(f"ftlearn run: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    for path in paths:  # all read before the first one runs, which may take an hour
        problem = notebook_problem(path)
        if problem:
            print(f"ftlearn run: {problem}", file=sys.stderr)
            return 2
    if args.profile:
        from ftlearn.runtime import get_profile

        try:
            get_profile(args.profile)
        except ValueError as exc:
            print(f"ftlearn run: {exc}", file=sys.stderr)
            return 2
    results = []
    for path in paths:
        print(f"running {path} ...", flush=True)
        result = execute(path, profile=args.profile, inplace=args.inplace, timeout=args.timeout)
        results.append(result)
        if args.record and result.ok and path.resolve().parent.name == "notebooks":  # the course map lists lessons only
            # into the package data of the checkout the lesson sits in (the profile the run resolved)
            record_timing(result, result.profile, path.resolve().parent.parent / "ftlearn" / TIMINGS_FILE)
    width = max(len(str(r.path)) for r in results)
    print(f"\n{'notebook':<{width}}  {'seconds':>8}  status")
    for r in results:
        print(f"{str(r.path):<{width}}  {r.seconds:>8.1f}  {'ok' if r.ok else 'FAILED: ' + r.error}")
    return 0 if all(r.ok for r in results) else 1


def cmd_exercises(args: argparse.Namespace) -> int:
    """Regenerate exercises/ from solutions/ (or, with --check, fail when it is stale)."""
    import nbformat

    from ftlearn.authoring.exercises import ExerciseFormatError, count_stubs, sync

    root = _root_or_exit()
    try:
        stale = sync(root / "solutions", root / "exercises", check_only=args.check)
    except ExerciseFormatError as exc:
        print(f"ftlearn exercises: {exc}", file=sys.stderr)
        return 2
    if args.check and stale:
        print(f"exercises/ is out of date for: {', '.join(stale)}. Run `ftlearn exercises`.")
        return 1
    notebooks = sorted((root / "exercises").glob("*.ipynb"))
    stubs = sum(count_stubs(nbformat.read(path, as_version=4)) for path in notebooks)
    summary = f"{len(notebooks)} notebooks, {stubs} exercises to write"
    print(f"exercises/ is up to date: {summary}." if not stale else f"regenerated: {', '.join(stale)} ({summary})")
    return 0


def cmd_progress(args: argparse.Namespace) -> int:
    """Run every exercise notebook of a folder headless and print each check's verdict (or --json)."""
    from ftlearn.progress import as_json, as_table, folder_progress
    from ftlearn.runtime import get_profile

    folder = Path(args.folder) if args.folder else _root_or_exit() / "exercises"
    if not folder.is_dir():
        print(f"ftlearn progress: no such folder: {folder}", file=sys.stderr)
        return 2
    if not any(folder.glob("*.ipynb")):
        print(f"ftlearn progress: no notebooks (*.ipynb) in {folder}", file=sys.stderr)
        return 2
    try:
        profile = get_profile(args.profile).name
    except ValueError as exc:
        print(f"ftlearn progress: {exc}", file=sys.stderr)
        return 2
    if args.timeout <= 0:
        print("ftlearn progress: --timeout must be a positive number of seconds", file=sys.stderr)
        return 2
    results = folder_progress(folder, profile=profile, timeout=args.timeout, echo=not args.json)
    if args.json:
        print(json.dumps(as_json(results, folder, profile), indent=1))
    else:
        print()
        print(as_table(results))
    return 1 if any(r.error for r in results) else 0


def cmd_headers(args: argparse.Namespace) -> int:
    """Write the Colab link and install cell into every notebook, README's course map from LESSONS, and the
    generated parts of docs/instructors.md (ftlearn.authoring.headers, .guide).

    With --check, only list what is stale; with --repo-url, write that repository's address instead of REPO_URL.
    """
    from ftlearn.authoring.headers import refresh_headers
    from ftlearn.course import REPO_URL

    repo_url = args.repo_url or REPO_URL
    if not repo_url.startswith("https://github.com/"):
        print(
            f"ftlearn headers: --repo-url must be https://github.com/OWNER/NAME (Colab opens GitHub notebooks), "
            f"not {repo_url!r}",
            file=sys.stderr,
        )
        return 2
    root = _root_or_exit()
    try:
        stale = refresh_headers(root, repo_url, check=args.check)
    except ValueError as exc:
        print(f"ftlearn headers: {exc}", file=sys.stderr)
        return 2
    if args.check and stale:
        print(f"stale headers or course map: {', '.join(stale)}. Run `ftlearn headers`.")
        return 1
    print("headers and course map are current." if not stale else f"updated: {', '.join(stale)}")
    return 0


def cmd_tidy(args: argparse.Namespace) -> int:
    """Make every committed notebook render without a kernel (ftlearn.authoring.tidy); --check only lists the untidy."""
    import nbformat

    from ftlearn.authoring.nbrun import update_old_stamp, write_notebook
    from ftlearn.authoring.tidy import tidy
    from ftlearn.course import NOTEBOOK_DIRS

    root = _root_or_exit()
    untidy = []
    for folder in NOTEBOOK_DIRS:
        for path in sorted((root / folder).glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            changes = tidy(nb)
            if update_old_stamp(nb):
                changes.append("run stamp's code hash updated (header cells no longer hashed)")
            if not changes:
                continue
            rel = path.relative_to(root).as_posix()
            untidy.append(rel)
            print(f"{rel}: {'; '.join(changes)}")
            if not args.check:
                write_notebook(nb, path)
    if args.check and untidy:
        print(f"{len(untidy)} notebook(s) need tidying. Run `ftlearn tidy`.")
        return 1
    print("every notebook is tidy." if not untidy else f"tidied {len(untidy)} notebook(s).")
    return 0


def cmd_site(args: argparse.Namespace) -> int:
    """Build the course as a static website (ftlearn.authoring.site) from the committed notebooks, offline."""
    from ftlearn.authoring.site import SiteError, build_site
    from ftlearn.files import OutputPathError

    if args.repo_url is not None and not args.repo_url.startswith("https://github.com/"):
        print(f"ftlearn site: --repo-url must be https://github.com/OWNER/NAME, not {args.repo_url!r}", file=sys.stderr)
        return 2
    try:
        report = build_site(args.out, root=_root_or_exit(), repo_url=args.repo_url, site_url=args.site_url)
    except OutputPathError as exc:
        print(f"ftlearn site: {exc}", file=sys.stderr)
        return 2
    except SiteError as exc:
        print(f"ftlearn site: {exc}", file=sys.stderr)
        return 1
    for warning in report.warnings:
        print(f"ftlearn site: mkdocs warned: {warning}", file=sys.stderr)
    print(f"built {report.pages} pages in {report.seconds:.1f} s into {args.out} (launch links: {report.repo_url})")
    print(f"preview: python -m http.server -d {args.out}   then open http://127.0.0.1:8000")
    return 0


CLASSIFIER_FOLDERS = (
    "the --out folder of `ftlearn finetune bert`, `ftlearn finetune gpt2-cls` or `ftlearn finetune distill` "
    "(not gpt2-lm's, which writes text)"
)
PROFILE_HELP = (
    "smoke (a pipeline check of a few steps: the model it saves is not usable), cpu, gpu, or auto (default: "
    "$FTLEARN_PROFILE, else gpu with CUDA, else cpu)"
)
FINETUNE_TARGETS = {
    "bert": "BERT as a sentiment classifier (lesson 07)",
    "gpt2-lm": "GPT-2 as a language model on IMDB review text (lesson 09)",
    "gpt2-cls": "GPT-2 as a sentiment classifier (lesson 10)",
    "distill": "a smaller BERT student taught by a fine-tuned BERT's soft targets (lesson 12; --teacher DIR)",
}

OWN_DATA_TARGETS = ("bert", "gpt2-cls")  # the classifiers that train on your own labelled texts (--train FILE)


def _report_run(target: str, metrics: dict, out: Path, show: Any) -> None:
    """Print what a finished run measured, the same shape for every target."""
    from ftlearn.metrics import format_metrics
    from ftlearn.runfolder import METRICS_FILE

    if target == "distill":
        show(f"student {metrics['parameters']:,} parameters, teacher {metrics['teacher_parameters']:,}; "
             f"test inference {metrics['test_reviews_per_second']:,.1f} reviews/s")  # fmt: skip
    if target == "gpt2-lm":
        show(f"\nheld-out perplexity: {metrics['perplexity_before']:.1f} -> {metrics['perplexity_after']:.1f}")
    elif "data" in metrics or len(metrics.get("classes", ())) > 2:  # your own classes, by name
        show(f"\n{_class_lines(metrics)}")
    else:
        show(f"\ntest ({metrics['n_test']} reviews): {format_metrics(metrics)}")
        show(f"confusion matrix [[TN, FP], [FN, TP]]: {metrics['confusion_matrix']}")
    trainable, total = metrics["trainable_parameters"], metrics["parameters"]
    show(f"trainable parameters: {trainable:,} of {total:,} ({trainable / total:.2%})")
    processes = f", {metrics['world_size']} processes" if metrics["world_size"] > 1 else ""
    show(
        f"training: {metrics['train_seconds']:.0f} s ({metrics['optimizer_steps']} steps{processes}), "
        f"model {metrics['model']}"
    )
    if metrics.get("saved_as") == "adapter":  # a LoRA run: what must be saved, beside the base it needs
        show(f"saved the LoRA adapter (peft's format, {metrics['saved_weights_bytes']:,} bytes), tokenizer and "
             f"{METRICS_FILE} to {out}; it loads on its base, {metrics['base_model']['model']} (--merge: the whole "
             "model instead)")  # fmt: skip
    else:
        show(f"saved the model, tokenizer and {METRICS_FILE} to {out}")


def _class_lines(metrics: dict) -> str:
    """A classifier's test figures for any number of classes: accuracy, macro-F1, each class, the confusion matrix."""
    from ftlearn.metrics import format_confusion

    lines = [
        f"test ({metrics['n_test']} texts): accuracy {metrics['accuracy']:.3f} · macro-F1 {metrics['macro_f1']:.3f}"
    ]
    width = max(len(name) for name in metrics["classes"])
    for name, row in metrics["per_class"].items():
        lines.append(
            f"  {name:<{width}}  precision {row['precision']:.3f} · recall {row['recall']:.3f} · f1 {row['f1']:.3f}"
            f" ({row['support']} texts)"
        )
    lines.append("confusion matrix (rows: true class, columns: predicted):")
    lines.append(format_confusion(metrics["confusion_matrix"], metrics["classes"]))
    return "\n".join(lines)


# The flags that decide what a run computes: a resumed run must be given the same ones (`_resume_settings`).
RUN_FLAGS = (
    "model",
    "lr",
    "epochs",
    "max_length",
    "pooling",
    "init",
    "method",
    "lora_rank",
    "lora_alpha",
    "sentiment_prefix",
    "val_rows",
    "patience",
    "teacher",
    "layers",
    "temperature",
    "soft_weight",
    "train",
    "test",
    "text_column",
    "label_column",
    "class_weights",
)
RUN_FLAGS_FILE = "run_flags.json"  # written into OUT.checkpoints beside the checkpoints


def _run_flags(args: argparse.Namespace, profile_name: str) -> dict:
    """What this run computes, as its checkpoints record it: target, resolved profile, seed and RUN_FLAGS."""
    flags = {"target": args.target, "profile": profile_name, "seed": args.seed}
    return {**flags, **{flag: getattr(args, flag, None) for flag in RUN_FLAGS}}


def _flag_text(name: str, value: Any) -> str:
    """One flag as typed on the command line ("--lr 0.0001", "--no-sentiment-prefix"), or "--lr not given"."""
    if name == "target":
        return str(value)
    if value is None:
        return f"--{name.replace('_', '-')} not given"
    if isinstance(value, bool):
        return f"--{'' if value else 'no-'}{name.replace('_', '-')}"
    return f"--{name.replace('_', '-')} {value}"


def _finetune_command(args: argparse.Namespace, out: Path, resume: bool) -> str:
    """The `ftlearn finetune` command line of this run (with --resume: the one that continues it)."""
    parts = ["ftlearn finetune", args.target, "--profile", args.profile, "--seed", str(args.seed), "--out", str(out)]
    for flag in (*RUN_FLAGS, "checkpoint_every", "merge"):
        value = getattr(args, flag, None)
        if value is not None:
            parts.append(_flag_text(flag, value))
    if resume:
        parts.append("--resume" if args.resume in (None, True) else f"--resume {args.resume}")
    return " ".join(parts)


def _resume_settings(args: argparse.Namespace, out: Path, profile_name: str) -> Any:
    """The run's checkpoint settings from --checkpoint-every and --resume, or one line saying why they are unusable.

    A run with --checkpoint-every records its flags (`RUN_FLAGS_FILE`) beside its checkpoints; --resume refuses
    checkpoints whose recorded flags differ from this command's, since the continued run would silently mix two
    recipes. Checkpoints without the record (written before it existed) are resumed unchecked.
    """
    from ftlearn.checkpoints import INFO_FILE, checkpoint_problem, intact_checkpoint, list_checkpoints
    from ftlearn.distributed import is_main_process
    from ftlearn.files import write_json_atomic
    from ftlearn.finetune import Resume, checkpoint_dir_for
    from ftlearn.runfolder import read_json_object

    folder = checkpoint_dir_for(out)
    flags = _run_flags(args, profile_name)
    resume_from = None
    if args.resume is not None:
        where = folder if args.resume is True else Path(args.resume).expanduser()
        single = (where / INFO_FILE).is_file()  # one checkpoint, named: used as given, or refused
        found = [where] if single else list_checkpoints(where)
        if not found:
            return (
                f"--resume: no complete checkpoint in {where} (checkpoint-N folders, written by --checkpoint-every N). "
                "Run without --resume to start afresh."
            )
        record = found[-1].parent / RUN_FLAGS_FILE
        if record.is_file():
            recorded = read_json_object(record)  # {} if unreadable: nothing to compare, as for older checkpoints
            differ = [name for name in flags if recorded.get(name, flags[name]) != flags[name]]
            if differ:
                was = ", ".join(_flag_text(name, recorded.get(name)) for name in differ)
                now = ", ".join(_flag_text(name, flags[name]) for name in differ)
                return (
                    f"--resume: the checkpoints in {found[-1].parent} were written with {was}; this command "
                    f"has {now}. Resume with the same flags, or start afresh without --resume."
                )
        if single:
            problem = checkpoint_problem(where)
            if problem:
                return (
                    f"--resume: the checkpoint {where} is damaged ({problem}); give its folder, {where.parent}, to "
                    "resume from the newest intact one, or run without --resume to start afresh."
                )
            resume_from = where
        else:  # a folder of them: the newest intact one, saying which were passed over
            resume_from, skipped = intact_checkpoint(where)
            damaged = "; ".join(f"{path.name} is damaged ({problem})" for path, problem in skipped)
            if resume_from is None:
                return f"--resume: no intact checkpoint in {where}: {damaged}. Run without --resume to start afresh."
            if damaged and is_main_process():
                print(f"{damaged}: resuming from {resume_from.name}, the newest intact checkpoint.")
    if args.checkpoint_every and is_main_process():  # under torchrun, rank 0 writes for all
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(folder / RUN_FLAGS_FILE, flags)
    return Resume(args.checkpoint_every, folder, resume_from)


def _model_problem(
    family: str, name: str | None, build: str, max_length: int | None, folder: Path | None = None
) -> str | None:
    """Why --model or --max-length cannot work, found from the model's config.json before anything loads; or None.

    `folder` is a model folder that takes the place of --model (gpt2-cls's --init DIR, distill's teacher). A --model
    that names nothing here is refused (never replaced by the offline model); without --model, a missing default is
    left to the run, which says what to install.
    """
    from ftlearn.files import display_path
    from ftlearn.models import ModelSource, ModelUnavailableError, locate_model, model_positions
    from ftlearn.recipes import max_length_problem

    if folder is not None:
        source = ModelSource(str(folder), str(folder), "local", "")
    else:
        try:
            source = locate_model(family, name, build=build)  # looks only: never builds or loads
        except ModelUnavailableError as exc:
            return str(exc) if name is not None else None  # it names the model
    if max_length is None:
        return None
    shown = source.requested if source.kind in ("hub", "cache") else display_path(source.location)
    return max_length_problem(max_length, model_positions(source), shown)


def _drop_checkpoints(folder: Path) -> None:
    """Delete the run's checkpoints once its folder is saved (they are big), and their folder if it is left empty."""
    import shutil

    from ftlearn.checkpoints import list_checkpoints

    for checkpoint in list_checkpoints(folder):
        shutil.rmtree(checkpoint, ignore_errors=True)
    (folder / RUN_FLAGS_FILE).unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass


def _report_interrupt(args: argparse.Namespace, out: Path, resume: Any) -> None:
    """After Ctrl-C: one line saying what was saved (the last checkpoint) and the command that continues."""
    import gc

    from ftlearn.checkpoints import latest_checkpoint

    gc.collect()  # the interrupted loop's progress bar prints its last state now, not after this line
    newest = latest_checkpoint(resume.checkpoint_dir) if resume.checkpoint_every else None
    kept = f"nothing was saved to {out}" + (" (its previous contents are untouched)" if out.exists() else "")
    if newest is not None:
        advice = f"the last checkpoint is {newest}; continue with `{_finetune_command(args, out, resume=True)}`."
    elif resume.checkpoint_every:
        advice = "no checkpoint was written yet."
    else:
        advice = "no checkpoint was written; add --checkpoint-every N (steps) to be able to resume a long run."
    print(f"\nftlearn {args.command}: interrupted; {kept}; {advice}", file=sys.stderr, flush=True)


def _data_flags_problem(args: argparse.Namespace) -> str | None:
    """Why --test, --text-column or --label-column cannot be used as given (they need --train), or None."""
    if args.train is None:
        given = [flag for flag, value in (("--test", args.test), ("--text-column", args.text_column),
                                          ("--label-column", args.label_column)) if value is not None]  # fmt: skip
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            return (
                f"{' and '.join(given)} {verb} to your own data: add --train FILE (without it, the run trains on IMDB)."
            )
    for flag, value in (("--text-column", args.text_column), ("--label-column", args.label_column)):
        if value is not None and not value.strip():
            return f"{flag} is empty: give the name of a column in your file."
    return None


def _data_files(args: argparse.Namespace) -> Any:
    """The --train/--test files and their columns, or None for IMDB."""
    if getattr(args, "train", None) is None:
        return None
    from ftlearn.labelled import LabelledFiles

    return LabelledFiles(args.train, args.test, args.text_column or "text", args.label_column or "label")


def cmd_finetune(args: argparse.Namespace) -> int:
    """Fine-tune BERT or GPT-2 on IMDB, or distil a BERT student, exactly as its lesson does; print the test figures;
    save the run folder. `ftlearn distill` is this command for the distill target."""
    from ftlearn.distributed import is_main_process
    from ftlearn.files import OutputPathError, writer_lock
    from ftlearn.offline_gpt2 import build_for_profile
    from ftlearn.predict import FinetunedModelError, check_teacher
    from ftlearn.recipes import SettingError, check_settings
    from ftlearn.runfolder import InitError, check_init, check_out
    from ftlearn.runtime import get_profile, pick_device

    name = f"ftlearn {args.command}"  # finetune, or distill
    n_train = getattr(args, "n_train", None)  # lesson 12's smaller training set, from the profile's reviews
    if n_train is not None and getattr(args, "train", None) is not None:
        print(f"{name}: --n-train picks IMDB reviews; with --train FILE the file's texts are the training set.",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        check_settings({"n_train": n_train})
        profile = get_profile(args.profile) if n_train is None else get_profile(args.profile, n_train=n_train)
    except SettingError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    overrides = {"epochs": args.epochs, "lr": args.lr, "max_length": args.max_length}
    if args.target == "bert":
        overrides["pooling"] = args.pooling
        overrides.update(method=args.method, lora_rank=args.lora_rank, lora_alpha=args.lora_alpha)
        if (args.lora_rank is not None or args.lora_alpha is not None) and args.method != "lora":
            print(f"{name}: --lora-rank and --lora-alpha apply to --method lora only.", file=sys.stderr)
            return 2
        if args.merge and args.method != "lora":
            print(f"{name}: --merge applies to --method lora only (the other methods save the whole model).",
                  file=sys.stderr)  # fmt: skip
            return 2
    if args.target in OWN_DATA_TARGETS:
        overrides["class_weights"] = args.class_weights
        problem = _data_flags_problem(args)
        if problem:
            print(f"ftlearn finetune: {problem}", file=sys.stderr)
            return 2
    if args.target == "gpt2-lm":
        overrides["sentiment_prefix"] = args.sentiment_prefix  # None keeps the recipe's (on)
        overrides.update(val_rows=args.val_rows, patience=args.patience)  # None: no validation, as lesson 09
        if args.patience is not None and args.val_rows is None:
            print(f"{name}: --patience needs validation rows: add --val-rows N.", file=sys.stderr)
            return 2
    if args.target == "distill":
        overrides.update(student_layers=args.layers, temperature=args.temperature, soft_weight=args.soft_weight)
        if args.teacher is None:
            print(
                f"{name}: --teacher DIR is required to distil: the folder of a fine-tuned BERT classifier "
                "(`ftlearn finetune bert --out DIR` writes one).",
                file=sys.stderr,
            )
            return 2
    try:  # every number in its range (ftlearn.recipes.SETTINGS): NaN, inf, 0, -1 and 100000 never reach a run
        check_settings({**overrides, "seed": args.seed, "checkpoint_every": args.checkpoint_every})
    except SettingError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out).expanduser() if args.out else Path("runs") / f"{args.target}-{profile.name}"
    # Everything that can be checked is checked before minutes of loading and training: the output folder,
    # the device, the model and whether --max-length fits it (from its config.json), the checkpoints to resume from.
    try:
        check_out(out)
        pick_device()
        init = args.init or "pretrained"
        model_folder = check_init(args.target, init)  # gpt2-cls --init DIR: the LM run the classifier starts from
    except (OutputPathError, RuntimeError, InitError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    if args.target == "distill":
        try:  # a BERT classifier, checked against its manifest, before any data or model is loaded
            teacher_folder = check_teacher(args.teacher)
        except FinetunedModelError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 1
        # the student is cut from --model, else from the teacher's checkpoint: the teacher's positions are the student's
        model_folder = None if args.model else teacher_folder
    family = "gpt2" if args.target.startswith("gpt2") else "bert"
    problem = _model_problem(family, args.model, build_for_profile(profile.name), args.max_length, model_folder)
    if problem:
        print(f"{name}: {problem}", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as held:
        if is_main_process():  # the only writer of OUT until the run ends: a second run to it is refused now
            try:
                held.enter_context(writer_lock(out))
            except OutputPathError as exc:
                print(f"{name}: {exc}", file=sys.stderr)
                return 2
        return _finetune_run(args, profile, out, init, overrides)


def _finetune_run(args: argparse.Namespace, profile: Any, out: Path, init: str, overrides: dict) -> int:
    """`cmd_finetune` once its flags are checked and OUT is this process's: resume settings, the run, the report."""
    from ftlearn.data import IMDBDataError
    from ftlearn.distributed import is_main_process
    from ftlearn.files import DiskFullError, OutputPathError
    from ftlearn.finetune import RUNS
    from ftlearn.models import ModelUnavailableError
    from ftlearn.predict import FinetunedModelError
    from ftlearn.recipes import SettingError

    name = f"ftlearn {args.command}"
    extra = {"init": init}  # every target takes --init
    if getattr(args, "merge", None):  # bert --method lora: saved merged rather than as an adapter
        extra["merge"] = True
    data = _data_files(args)
    if data is not None:  # the classifiers' own data: --train FILE
        extra["data"] = data
    resume = _resume_settings(args, out, profile.name)
    if isinstance(resume, str):
        print(f"{name}: {resume}", file=sys.stderr)
        return 2
    # Under torchrun every rank runs this command; rank 0 reports for all of them (notebook 11).
    show = print if is_main_process() else (lambda *_: None)
    what = f"Distilling {args.teacher} into a student" if args.target == "distill" else f"Fine-tuning {args.target}"
    show(f"{what}, profile {profile.name}, seed {args.seed}, into {out}")
    if resume.checkpoint_every:
        show(f"checkpoints every {resume.checkpoint_every} steps into {resume.checkpoint_dir}")
    from ftlearn.authoring.nbrun import LoadSampler  # a run record says how busy the machine was

    load = LoadSampler()
    try:
        if args.target == "distill":  # the teacher in memory, and what its run recorded (metrics.json keeps both)
            from ftlearn.predict import load_teacher

            extra["teacher"], extra["teacher_info"] = load_teacher(args.teacher)
        with load:
            result = RUNS[args.target](
                profile=profile,
                out=out,
                seed=args.seed,
                model_name=args.model,
                overrides=overrides,
                resume=resume,
                **extra,
            )
    except (FinetunedModelError, IMDBDataError, ModelUnavailableError, DiskFullError) as exc:
        kept = ""
        if isinstance(exc, DiskFullError) and resume.checkpoint_every:
            kept = f" The checkpoints in {resume.checkpoint_dir} are kept: add --resume to continue from them."
        print(f"{name}: {exc}{kept}", file=sys.stderr)
        return 1
    except (OutputPathError, SettingError) as exc:  # the folder changed while the run trained; a model too short
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        result = None
    if result is None:  # Ctrl-C; outside the except block, so the run's objects are gone (its bar is closed)
        _report_interrupt(args, out, resume)
        return 130
    if resume.checkpoint_every and is_main_process():
        _drop_checkpoints(Path(resume.checkpoint_dir))
    show(f"recipe: {result.metrics['recipe']}")
    _report_run(args.target, result.metrics, out, show)
    if getattr(args, "record", None) and is_main_process():
        from ftlearn.files import display_path
        from ftlearn.records import make_record, write_record

        flags = {"profile": profile.name, "n_train": getattr(args, "n_train", None), "seed": args.seed, "init": init,
                 **overrides}  # fmt: skip
        command = f"ftlearn finetune {args.target} " + " ".join(
            f"--{name.replace('_', '-')} {value}" for name, value in flags.items() if value is not None
        )
        path = write_record(args.record, {**make_record(result, command), "load_during": load.summary()})
        show(f"run record: {display_path(path)}")
    return 0


def _warn_if_smoke(command: str, warning: str | None) -> None:
    """Say on stderr, before the results, that a model was trained in the smoke profile (`smoke_warning`)."""
    if warning:
        print(f"ftlearn {command}: {warning}", file=sys.stderr, flush=True)


def cmd_predict(args: argparse.Namespace) -> int:
    """Label one review, or a CSV file of them, with a classifier saved by `ftlearn finetune bert|gpt2-cls|distill`.

    Empty reviews are refused in both forms (README, "Command line"): a model still answers for an
    empty text, and that answer would read as a prediction.
    """
    from ftlearn.files import OutputPathError
    from ftlearn.predict import (
        FinetunedModelError,
        class_names,
        class_probabilities,
        empty_text_problem,
        is_sentiment_model,
        load_finetuned,
        predict_file,
        smoke_warning,
        top_classes,
    )
    from ftlearn.runfolder import saved_task
    from ftlearn.windows import StrideError, default_windows

    if (args.text is None) == (args.file is None):
        print(
            "ftlearn predict: give either a review in quotes or --file reviews.csv (with --out preds.csv).",
            file=sys.stderr,
        )
        return 2
    from_stdin = args.text == "-"
    if from_stdin:  # the review from standard input: `cat review.txt | ftlearn predict DIR -`
        if sys.stdin.isatty():
            print("reading the review from standard input; end it with Ctrl-D", file=sys.stderr, flush=True)
        args.text = sys.stdin.read()
    if args.top_k is not None and (args.top_k < 1 or args.file is not None):
        why = (
            "a positive number of classes"
            if args.top_k < 1
            else "for one text; --file writes every class's probability"
        )
        print(f"ftlearn predict: --top-k is {why}.", file=sys.stderr)
        return 2
    if args.stride is not None and args.stride < 1:
        print(f"ftlearn predict: --stride must be a positive number of tokens, got {args.stride}.", file=sys.stderr)
        return 2
    if args.stride is not None and args.windows == "off":
        print("ftlearn predict: --stride sets the windows' spacing; add --windows mean or confident.", file=sys.stderr)
        return 2
    # not given: what was measured to help this kind of model (a folder that cannot be read is reported below)
    windows = args.windows or default_windows(saved_task(Path(args.model_dir)))
    if args.stride is not None and windows == "off":
        print(
            "ftlearn predict: --stride sets the windows' spacing, and this model reads head+tail by default; "
            "add --windows mean or confident.",
            file=sys.stderr,
        )
        return 2
    reading = {"windows": windows, "stride": args.stride}
    try:
        if args.file is not None:
            if args.out is None:
                print("ftlearn predict: --file needs --out, the CSV to write the predictions to.", file=sys.stderr)
                return 2
            n = predict_file(args.model_dir, args.file, args.out, progress=True, **reading)
            _warn_if_smoke("predict", smoke_warning(args.model_dir))
            print(f"wrote {n} predictions to {args.out}")
            return 0
        if empty_text_problem([args.text], "the review"):
            where = "standard input (-) was empty" if from_stdin else "give the review in quotes"
            print(f"ftlearn predict: the review text is empty; {where}.", file=sys.stderr)
            return 2
        model, tokenizer, settings = load_finetuned(args.model_dir)
        probs = class_probabilities(model, tokenizer, [args.text], settings, **reading)[0]
    except OutputPathError as exc:
        print(f"ftlearn predict: {exc}", file=sys.stderr)
        return 2
    except FinetunedModelError as exc:
        print(f"ftlearn predict: {exc}", file=sys.stderr)
        return 1
    except StrideError as exc:  # a stride longer than the model's window: known only once its settings are read
        print(f"ftlearn predict: {exc}", file=sys.stderr)
        return 2
    _warn_if_smoke("predict", smoke_warning(args.model_dir))
    names = class_names(model)
    ranked = top_classes(probs, names, args.top_k or 1)
    if is_sentiment_model(names):  # IMDB's two classes, answered as they always were
        shown = dict(zip(names, ("negative", "positive"), strict=True))
        print(f"{shown[names[int(probs.argmax())]]} (p_positive = {probs[1]:.3f})")
        ranked = [(shown[name], p) for name, p in ranked]
    else:
        print(f"{ranked[0][0]} (p = {ranked[0][1]:.3f})")
    for rank, (name, p) in enumerate(ranked[1:], start=2):
        print(f"  {rank}. {name} (p = {p:.3f})")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare two saved classifiers (`ftlearn finetune bert|gpt2-cls|distill`) on the same test reviews."""
    from ftlearn.data import IMDBDataError
    from ftlearn.predict import FinetunedModelError, compare_finetuned, smoke_warning

    try:
        out = compare_finetuned(args.model_a, args.model_b, args.profile, windows=args.windows)
    except (FinetunedModelError, IMDBDataError, ValueError) as exc:
        print(f"ftlearn compare: {exc}", file=sys.stderr)
        return 1
    _warn_if_smoke("compare", smoke_warning(args.model_a, args.model_b))
    where = f"{out['data']}, " if out["data"] else ""
    print(f"test {'texts' if out['data'] else 'reviews'} ({where}{out['profile']} profile): {out['n']}")
    print(f"A {args.model_a}: accuracy {out['accuracy_a']:.3f}")
    print(f"B {args.model_b}: accuracy {out['accuracy_b']:.3f}")
    print(
        f"A - B: {out['difference']:+.3f} ± {out['se']:.3f} (paired standard error); "
        f"right only with A: {out['a_only_right']}, "
        f"only with B: {out['b_only_right']}; {out['verdict']}"
    )
    from ftlearn.metrics import format_confusion

    for name, folder in (("a", args.model_a), ("b", args.model_b)):
        print(f"\n{name.upper()} {folder}, confusion matrix (rows: true class, columns: predicted):")
        print(format_confusion(out[f"confusion_{name}"], out["classes"]))
    return 0


class OptionsAnywhere(argparse.ArgumentParser):
    """A command whose options may come before, between or after its positionals.

    argparse fills an optional positional (`predict`'s review, nargs="?") when it meets the first option, so in
    `ftlearn predict DIR --windows off "A review"` the review was left over as "unrecognized arguments".
    `parse_known_intermixed_args` reads the options first, then the positionals, wherever they stand.
    """

    def parse_known_args(
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if getattr(self, "_intermixing", False):  # called back by parse_known_intermixed_args itself
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def _add_run_flags(cmd: argparse.ArgumentParser, target: str) -> None:
    """Give `ftlearn finetune TARGET` (and `ftlearn distill`, its other name) the common flags and the target's own."""
    from ftlearn.recipes import METHODS

    cmd.add_argument("--profile", default="auto", help=PROFILE_HELP)
    seeded = "data order and dropout" if target == "gpt2-lm" else "data order, head init and dropout"
    cmd.add_argument("--seed", type=int, default=0, help=f"seed for {seeded} (default 0)")
    cmd.add_argument(
        "--out",
        default=None,
        help=f"folder for the model, tokenizer and metrics.json (default runs/{target}-PROFILE)",
    )
    family = "BERT" if target == "bert" else "GPT-2"
    cmd.add_argument(
        "--model",
        default=None,
        help="the pretrained BERT the student's layers are cut from: a hub name or a folder (default: the teacher's "
        "pretrained checkpoint)"
        if target == "distill"
        else f"the pretrained {family}: a hub name or a folder (default: the profile's)",
    )
    cmd.add_argument("--lr", type=float, default=None, help="override the recipe's peak learning rate")
    cmd.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    cmd.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="override the recipe's tokens per training row (the reviews are joined, eos between them, and cut "
        "into rows this long)"
        if target == "gpt2-lm"
        else "override the recipe's tokens per review (longer reviews are truncated)",
    )
    cmd.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="N",
        help="save a checkpoint every N optimizer steps into OUT.checkpoints (deleted when the run ends)",
    )
    cmd.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        metavar="DIR",
        help="continue a killed run from its newest checkpoint (in OUT.checkpoints, or DIR), with the same flags",
    )
    whose = "the student's" if target == "distill" else "the"
    cmd.add_argument(
        "--init",
        default=None,
        metavar="pretrained|random" + ("|DIR" if target == "gpt2-cls" else ""),
        help=f"where {whose} weights start: the pretrained checkpoint (default), random weights of its shape "
        "(what pretraining buys)"
        + (", or the folder of a `ftlearn finetune gpt2-lm` run" if target == "gpt2-cls" else ""),
    )
    if target in OWN_DATA_TARGETS:  # your own labelled texts instead of IMDB (--train FILE)
        _add_data_flags(cmd)
    if target != "gpt2-lm":
        cmd.add_argument(
            "--n-train",
            type=int,
            default=None,
            metavar="N",
            help="train on N IMDB reviews instead of the profile's number (a tenth of them held out for validation), "
            "as lesson 12 trains on 800",
        )
        cmd.add_argument(
            "--record",
            default=None,
            metavar="FILE",
            help="also write a run record to FILE (JSON: recipe, data hash, commit, date, hardware, history and "
            "every test review's probabilities), which a lesson loads instead of training this run live",
        )
    if target == "gpt2-lm":
        cmd.add_argument(
            "--sentiment-prefix",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="start each training review with its label, 'Review (positive):' (default); "
            "--no-sentiment-prefix trains on the text alone, as ULMFiT's adaptation step does (lesson 10)",
        )
        cmd.add_argument(
            "--val-rows",
            type=int,
            default=None,
            metavar="N",
            help="hold out N rows of training text, just after the training rows (which stay the same), for "
            "validation: the best weights are kept (default: none, as lesson 09)",
        )
        cmd.add_argument(
            "--patience",
            type=int,
            default=None,
            metavar="N",
            help="with --val-rows: stop after N evaluations without a better validation loss",
        )
    if target == "bert":
        cmd.add_argument(
            "--pooling",
            choices=("auto", "cls", "mean"),
            default=None,
            help="what the head reads: the [CLS] pooler, the mean of the tokens, "
            "or auto (as the checkpoint was trained)",
        )
        cmd.add_argument(
            "--method",
            choices=METHODS,
            default=None,
            help="what is trained (lesson 12): every weight (full, default), LoRA adapters and the head (lora, "
            "saved as an adapter in peft's format, which loads on the pretrained model; --merge: merged into the "
            "weights), or the head alone on a frozen body (head)",
        )
        cmd.add_argument(
            "--merge",
            action="store_true",
            default=None,
            help="with --method lora: save the model with the adapter merged into its weights (W + alpha/r BA), "
            "the whole model, instead of the adapter alone",
        )
        cmd.add_argument("--lora-rank", type=int, default=None, metavar="R", help="LoRA's rank r (default 8)")
        cmd.add_argument(
            "--lora-alpha",
            type=float,
            default=None,
            metavar="A",
            help="LoRA's update is scaled by A / R (default 16)",
        )
    if target == "distill":
        cmd.add_argument(
            "--teacher",
            default=None,
            metavar="DIR",
            help="required: the folder of a fine-tuned BERT classifier (`ftlearn finetune bert --out DIR`)",
        )
        cmd.add_argument("--layers", type=int, default=None, help="the student keeps the first N layers (default 2)")
        cmd.add_argument("--temperature", type=float, default=None, help="T of the soft targets (default 2)")
        cmd.add_argument(
            "--soft-weight",
            type=float,
            default=None,
            help="share of the soft-target loss, 0 to 1; 0 = labels alone (default 0.5)",
        )
    cmd.set_defaults(func=cmd_finetune, target=target)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `ftlearn` command."""
    from ftlearn.windows import PREDICT_WINDOWS, WINDOW_MODES

    parser = argparse.ArgumentParser(prog="ftlearn", description="Full-parameter fine-tuning, from first principles.")
    sub = parser.add_subparsers(
        dest="command", required=True, help="what to do; `ftlearn COMMAND --help` describes a command's arguments"
    )

    doctor = sub.add_parser("doctor", help="check that the course can run here, and say what to fix")
    doctor.add_argument(
        "--profile", default="auto", help="smoke, cpu, gpu or auto (default; FTLEARN_PROFILE overrides auto)"
    )
    doctor.set_defaults(func=cmd_doctor)

    build = sub.add_parser(
        "build-gpt2",
        help="build the offline GPT-2 now, once per machine (otherwise the first lesson that needs it builds it)",
        description="Build ftlearn's small offline GPT-2 (a BPE tokenizer and a GPT-2-architecture model pretrained "
        "on documentation text) into the ftlearn cache, with a progress bar. Used when the Hugging Face hub is out of "
        "reach; the lessons that load GPT-2 build it themselves when it is missing.",
    )
    build.add_argument(
        "--profile",
        default="auto",
        help="the profile whose build to make: smoke (seconds, a pipeline check) or cpu/gpu (the lessons' build); "
        "default auto ($FTLEARN_PROFILE, else gpu with CUDA, else cpu)",
    )
    build.add_argument("--force", action="store_true", help="build again even if an intact build is there")
    build.add_argument(
        "--record",
        action="store_true",
        help="write the build's time to ftlearn/timings.json (course authors: the estimate learners are shown)",
    )
    build.set_defaults(func=cmd_build_gpt2)

    lab = sub.add_parser(
        "lab",
        help="open JupyterLab on the course (other options go on to `jupyter lab`)",
        usage="ftlearn lab [-h] [JUPYTER_LAB_OPTION ...]",
        description="Open JupyterLab on the course checkout (the current folder's, else the installed package's) at "
        "notebooks/00_welcome.ipynb, with JupyterLab's news prompt and its news and update checks off by default "
        "(they would reach the internet). Every other option goes on to `jupyter lab` unchanged, e.g. `ftlearn lab "
        "--no-browser --port 8890`; `jupyter lab --help` lists them.",
    )
    lab.set_defaults(func=cmd_lab)

    run = sub.add_parser("run", help="execute notebooks headless and print time and status")
    run.add_argument(
        "notebooks",
        nargs="+",
        metavar="NOTEBOOK",
        help="the .ipynb files to execute, in this order (every one is read and checked before the first runs)",
    )
    run.add_argument("--profile", help="inject PROFILE into the parameters cell (smoke, cpu, gpu, auto)")
    run.add_argument("--inplace", action="store_true", help="save outputs and a run stamp into the notebook")
    run.add_argument(
        "--record",
        action="store_true",
        help="add the run time to ftlearn/timings.json (the course map; lessons in notebooks/ only)",
    )
    run.add_argument("--timeout", type=int, default=3600, help="seconds allowed per cell (default 3600)")
    run.set_defaults(func=cmd_run)

    exercises = sub.add_parser("exercises", help="regenerate exercises/ from solutions/")
    exercises.add_argument("--check", action="store_true", help="only report whether exercises/ is up to date")
    exercises.set_defaults(func=cmd_exercises)

    progress = sub.add_parser(
        "progress",
        help="run the exercise notebooks of a folder headless and list each exercise and quiz: correct, wrong, "
        "not attempted",
    )
    progress.add_argument("folder", nargs="?", default=None, help="a folder of exercise notebooks (default exercises/)")
    progress.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    progress.add_argument(
        "--profile", default="smoke", help="profile the notebooks run in (default smoke: the checks do not need more)"
    )
    progress.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    progress.set_defaults(func=cmd_progress)

    headers = sub.add_parser(
        "headers",
        help="write the Colab badge and install cell into every notebook, README's course map, and the generated "
        "parts of docs/instructors.md",
    )
    headers.add_argument("--check", action="store_true", help="only report stale headers and course map")
    headers.add_argument(
        "--repo-url",
        default=None,
        help="the GitHub repository the course is published at (default: REPO_URL in ftlearn/course.py, "
        "which the tests expect; change it there to make a new address the default)",
    )
    headers.set_defaults(func=cmd_headers)

    tidy = sub.add_parser(
        "tidy",
        help="make saved notebooks render without a kernel: widget views to static outputs, ipykernel's kernelspec",
    )
    tidy.add_argument("--check", action="store_true", help="only list the notebooks that need it")
    tidy.set_defaults(func=cmd_tidy)

    site = sub.add_parser(
        "site",
        help="build the course as a static website from the executed notebooks (needs the [site] extra)",
        description="Build the course as a static website into --out, offline: a home page with the course map and "
        "its measured run times, every lesson with the outputs of its committed run (nothing is executed), every "
        "exercise notebook as the learner gets it, the instructors' guide and the notation, full-text search, and "
        "Colab and `ftlearn lab` links on every lesson and exercise page. MkDocs with Material and mkdocs-jupyter "
        '(pip install -e ".[site]"). Preview it with `python -m http.server -d DIR`.',
    )
    site.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="the folder to write: created, or replaced if a site was built there; any other non-empty one is refused",
    )
    site.add_argument(
        "--repo-url",
        default=None,
        help="the GitHub repository the launch links open (default: the one the notebooks' headers carry, which "
        "`ftlearn headers --repo-url` writes)",
    )
    site.add_argument(
        "--site-url",
        default=None,
        help="the address the site is published at (default: the repository's GitHub Pages address, "
        "https://OWNER.github.io/NAME/); the 404 page and sitemap.xml use it",
    )
    site.set_defaults(func=cmd_site)

    finetune = sub.add_parser(
        "finetune", help="fine-tune a model on IMDB (the lessons' code), or a classifier on your own labelled texts"
    )
    targets = finetune.add_subparsers(
        dest="target",
        required=True,
        metavar="{" + ",".join(FINETUNE_TARGETS) + "}",
        help="what to fine-tune; `ftlearn finetune TARGET --help` lists its flags",
    )
    for target, help_text in FINETUNE_TARGETS.items():
        _add_run_flags(targets.add_parser(target, help=help_text, description=help_text), target)

    distill = sub.add_parser(
        "distill",
        help="the same as `ftlearn finetune distill`: a smaller BERT student of a teacher saved by `ftlearn finetune "
        "bert` (lesson 12)",
    )
    _add_run_flags(distill, "distill")

    predict = sub.add_parser(
        "predict",
        help="label reviews with a classifier saved by `ftlearn finetune bert|gpt2-cls|distill`",
    )
    predict.add_argument("model_dir", metavar="FOLDER", help=f"a saved classifier: {CLASSIFIER_FOLDERS}")
    predict.__class__ = OptionsAnywhere  # `ftlearn predict DIR --windows off "review"`, as README writes it
    predict.add_argument("text", nargs="?", default=None, help="one review, in quotes; - reads it from standard input")
    predict.add_argument("--file", default=None, help="a CSV with a `text` column")
    predict.add_argument(
        "--out",
        default=None,
        help="where to write the CSV with `pred` and `p_positive` added (a model of your own classes: `pred`, the "
        "class name, and one column p_NAME per class)",
    )
    predict.add_argument(
        "--top-k",
        type=int,
        default=None,
        metavar="K",
        help="also show the next most probable classes, K in all (one text)",
    )
    measured = ", ".join(f"{mode} for {task}" for task, mode in PREDICT_WINDOWS.items())
    predict.add_argument(
        "--windows",
        choices=WINDOW_MODES,
        default=None,
        help="read a review longer than the model's input whole, as overlapping windows whose logits are averaged "
        f"(mean) or taken from the most confident window (confident); off: the truncation it was trained with "
        f"(default: {measured}, where lesson 07 measured that it helps; off for other models)",
    )
    predict.add_argument(
        "--stride", type=int, default=None, help="text tokens between window starts (default: half a window)"
    )
    predict.set_defaults(func=cmd_predict)

    compare = sub.add_parser(
        "compare",
        help="two saved classifiers (BERT or GPT-2) on the same test reviews: accuracies and their paired difference",
    )
    compare.add_argument("model_a", metavar="A", help=f"a saved classifier: {CLASSIFIER_FOLDERS}")
    compare.add_argument("model_b", metavar="B", help="another saved classifier, of either kind")
    compare.add_argument(
        "--profile",
        default=None,
        help="the profile whose test reviews to use: smoke, cpu, gpu or auto (default: the one in A's metrics.json)",
    )
    compare.add_argument(
        "--windows", choices=WINDOW_MODES, default="off", help="how both models read long reviews (as in predict)"
    )
    compare.set_defaults(func=cmd_compare)
    for commands in (sub, targets):
        _describe(commands)
    return parser


def _add_data_flags(cmd: argparse.ArgumentParser) -> None:
    """A classifier's own-data flags: --train, --test, --text-column, --label-column, --class-weights."""
    from ftlearn.recipes import CLASS_WEIGHTS

    cmd.add_argument(
        "--train",
        default=None,
        metavar="FILE",
        help="train on your own labelled texts instead of IMDB: a .csv, .tsv or .jsonl file, or a folder with one "
        "subfolder per class (each file in it one text); labels may be names or numbers, 2 classes or more",
    )
    cmd.add_argument(
        "--test",
        default=None,
        metavar="FILE",
        help="with --train: the test texts, same format (default: a stratified 20%% of --train held out)",
    )
    cmd.add_argument("--text-column", default=None, metavar="NAME", help="with --train: the text column (default text)")
    cmd.add_argument(
        "--label-column", default=None, metavar="NAME", help="with --train: the label column (default label)"
    )
    cmd.add_argument(
        "--class-weights",
        choices=CLASS_WEIGHTS,
        default=None,
        help="balanced: weigh each class equally in the loss, N / (classes x its count), for imbalanced data "
        "(default none)",
    )


def _describe(commands: argparse._SubParsersAction) -> None:
    """Give each command without a description its one-line help, so that `ftlearn COMMAND --help` says what it does."""
    for choice in commands._choices_actions:
        command = commands.choices[choice.dest]
        if not command.description and choice.help:
            command.description = f"{choice.help[0].upper()}{choice.help[1:]}."


def _flag_of_other_targets(parser: argparse.ArgumentParser, extra: list[str], target: str | None) -> str | None:
    """Why a flag left over from `ftlearn finetune TARGET` (or `ftlearn distill`) is not TARGET's, when another
    target has it: "--layers is a flag of `ftlearn finetune distill` only, not of bert."; else None."""
    if target is None:
        return None
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    targets = next(a for a in commands["finetune"]._actions if isinstance(a, argparse._SubParsersAction)).choices
    for flag in (item.split("=", 1)[0] for item in extra if item.startswith("--")):
        owners = [name for name, cmd in targets.items() if flag in cmd._option_string_actions]
        if owners:
            listed = " and ".join(f"`ftlearn finetune {owner}`" for owner in owners)
            return f"{flag} is a flag of {listed} only, not of {target}."
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `ftlearn` command."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "lab":
        elsewhere = _flag_of_other_targets(parser, extra, getattr(args, "target", None))
        if elsewhere:  # `ftlearn finetune bert --layers 3`: one line naming where the flag belongs
            print(f"ftlearn {args.command}: {elsewhere}", file=sys.stderr)
            return 2
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.jupyter_args = extra  # e.g. `ftlearn lab --no-browser --port 8890`
    try:
        return args.func(args)
    except KeyboardInterrupt:  # Ctrl-C: one line, not a page of traceback (finetune says more: what was saved)
        print(f"\nftlearn {args.command}: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # `python -m ftlearn.cli ...`, the form torchrun's `-m` launches
    raise SystemExit(main())
