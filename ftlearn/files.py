"""Files written whole and checked before use: atomic writes, folder manifests, cheap structural checks;
and paths as printed (`display_path`: `<cache>/…`, `<course>/…`, never this machine's folders).

Introduced in notebook 07, where a fine-tuned model is saved and reloaded; `ftlearn.finetune`, `ftlearn.predict`,
`ftlearn.offline_gpt2` and `ftlearn.authoring.nbrun` write through here. Two habits, borrowed from Git:
- a file or folder is written next to its destination under a temporary name, then renamed into place
  (`os.replace`), so a run killed half-way leaves the previous version or nothing, never half of one;
- a folder gets a manifest, written last: every file's name, size and sha256. Before a saved model is used,
  the manifest is checked, so a truncated or half-copied folder is refused with one clear line instead of
  a traceback, or worse, a wrong answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path

MANIFEST_FILE = "ftlearn_manifest.json"
MANIFEST_FORMAT = 1


class OutputPathError(ValueError):
    """An output path that cannot be written (a folder where a file should go, no permission...); says why."""


class DiskFullError(OutputPathError):
    """The disk has no room for what is being saved; says where and how much is needed. Nothing was replaced."""


# ---------------------------------------------------------------- writing whole


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (a no-op where directories cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary sibling of `path` to write into; renamed onto `path` only if the block ends without error.

    `with atomic_path("preds.csv") as tmp: frame.to_csv(tmp)`: readers of preds.csv see the old file
    or the new one, never a half-written one, even if the process is killed.
    """
    path = Path(path)
    # named, not created: the writer creates it, with the usual permissions (mkstemp's would be 0600)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:  # on disk before it gets the real name
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt too: leave no temporary behind
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` through a temporary sibling and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | Path, data: dict) -> None:
    """`data` as indented JSON, written atomically."""
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")


def replace_folder(new: Path, folder: Path) -> None:
    """Move the finished folder `new` to `folder`, replacing a previous one only now that `new` is complete.

    Two renames: the previous folder aside, the new one in; then the previous one is deleted. (A folder
    cannot be renamed over a non-empty one.) Between the renames, microseconds, neither is at `folder`;
    a crash there leaves the previous one whole at `.NAME.old`.
    """
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    new.rename(folder)
    _fsync_dir(folder.parent)
    shutil.rmtree(old, ignore_errors=True)


def temporary_sibling(path: Path) -> Path:
    """`.NAME.PID.tmp` beside `path`: this process's own, so that two writers never share a temporary."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def remove_stale_temporaries(path: Path) -> None:
    """Delete temporaries of `path` that killed writers left (`.NAME.tmp`, `.NAME.PID.tmp`); call with its lock held."""
    prefix = f".{path.name}."
    for leftover in path.parent.iterdir() if path.parent.is_dir() else ():
        rest = leftover.name[len(prefix) :] if leftover.name.startswith(prefix) else None
        if rest is not None and (rest == "tmp" or (rest.endswith(".tmp") and rest[: -len(".tmp")].isdigit())):
            shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink(missing_ok=True)


_HELD_LOCKS: dict[Path, int] = {}  # lock file -> how many nested `writer_lock` blocks of this process hold it


@contextlib.contextmanager
def writer_lock(path: str | Path, flag: str = "--out") -> Iterator[None]:
    """Be the only process writing `path` for the block, or raise OutputPathError naming the one that is.

    The lock is an flock on `.NAME.lock` beside `path`, which the kernel releases when its process ends, however
    it ends (a killed run never leaves a stale lock). Nested blocks in one process share it: `ftlearn finetune`
    holds it from the start of the run, so a second run to the same --out is refused before it trains, and
    `save_finetuned` takes it again for the save. Where flock does not exist (Windows), the block runs unlocked.
    """
    path = Path(path).expanduser().resolve()  # one key per folder, however it is spelled (relative, a symlink)
    lock = path.with_name(f".{path.name}.lock")
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        fcntl = None
    if lock in _HELD_LOCKS or fcntl is None:
        _HELD_LOCKS[lock] = _HELD_LOCKS.get(lock, 0) + 1
        try:
            yield
        finally:
            _HELD_LOCKS[lock] -= 1
            if not _HELD_LOCKS[lock]:
                del _HELD_LOCKS[lock]
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise OutputPathError(
                f"{flag} {path} is being written by another ftlearn run (process {holder}); wait for it to finish "
                "or choose another folder. Nothing was changed."
            ) from None
        except OSError:  # a filesystem without flock (some network mounts): go on unlocked
            os.close(fd)
            fd = None
            break
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not the file of a holder that unlinked it as we opened it: ours
            break
        os.close(fd)
    if fd is not None:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
    _HELD_LOCKS[lock] = 1
    try:
        yield
    finally:
        del _HELD_LOCKS[lock]
        if fd is not None:
            lock.unlink(missing_ok=True)  # still held: a process that opened it meanwhile sees another inode, retries
            os.close(fd)


def is_disk_full(exc: BaseException) -> bool:
    """True for "No space left on device", as an OSError (errno ENOSPC) or as safetensors' SafetensorError."""
    import errno

    if isinstance(exc, OSError):
        return exc.errno == errno.ENOSPC
    text = str(exc)
    return "No space left on device" in text or "StorageFull" in text


def megabytes(n: int) -> str:
    """A byte count as "91 MB" (or "1.4 GB")."""
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{max(1, round(n / 1e6))} MB"


def check_free_space(path: str | Path, needed: int, what: str = "the model") -> None:
    """Raise DiskFullError when the disk that `path` goes on has less than `needed` bytes free."""
    path = Path(path).expanduser()
    free = shutil.disk_usage(_nearest_existing(path.parent)).free
    if free < needed:
        raise DiskFullError(
            f"no room to save {what} to {path}: it needs about {megabytes(needed)} and the disk has {megabytes(free)} "
            "free. Free some space or choose another --out; nothing was changed."
        )


# ---------------------------------------------------------------- manifests


def file_digest(path: Path) -> str:
    """sha256 of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: str | Path, **extra: object) -> dict:
    """Record every file of `folder` (name, size, sha256) in its manifest, written last; `extra` keys too."""
    folder = Path(folder)
    files = {}
    for path in sorted(p for p in folder.iterdir() if p.is_file() and p.name != MANIFEST_FILE):
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())  # the files are on disk before the manifest says they are complete
        files[path.name] = {"size": path.stat().st_size, "sha256": file_digest(path)}
    manifest = {"format": MANIFEST_FORMAT, **extra, "files": files}
    write_json_atomic(folder / MANIFEST_FILE, manifest)
    return manifest


def read_manifest(folder: str | Path) -> dict | None:
    """The folder's manifest; None when it has none. Raises ValueError when the manifest itself is damaged."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"its {MANIFEST_FILE} is not valid JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ValueError(f"its {MANIFEST_FILE} does not list the folder's files")
    return manifest


def manifest_problem(folder: str | Path, manifest: dict, hashes: bool = True) -> str | None:
    """What differs between `folder` and its manifest (a missing file, a size, a hash), or None when nothing does."""
    folder = Path(folder)
    for name, entry in sorted(manifest["files"].items()):
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        size = path.stat().st_size
        if size != entry.get("size"):
            return f"{name} is {size:,} bytes where {entry.get('size', 0):,} were saved (truncated or replaced)"
        if hashes and file_digest(path) != entry.get("sha256"):
            return f"{name} has changed since it was saved (its sha256 differs)"
    return None


# ---------------------------------------------------------------- cheap structural checks


def json_problem(path: Path) -> str | None:
    """Why `path` is not a readable JSON object, or None."""
    if not path.is_file():
        return f"{path.name} is missing"
    if path.stat().st_size == 0:
        return f"{path.name} is empty (0 bytes)"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return f"{path.name} is not valid JSON ({str(exc).splitlines()[0]})"
    if not isinstance(data, dict):
        return f"{path.name} does not hold a JSON object"
    return None


def safetensors_problem(path: Path) -> str | None:
    """Why `path` is not a complete safetensors file, read from its header alone (no tensor is loaded), or None.

    The format: 8 bytes giving the header's length n, n bytes of JSON naming each tensor's byte range, then the
    data; a complete file is exactly 8 + n + the end of the last range long.
    """
    if not path.is_file():
        return f"{path.name} is missing"
    size = path.stat().st_size
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                return f"{path.name} is {size} bytes: too short to hold weights"
            (n,) = struct.unpack("<Q", head)
            if 8 + n > size:
                return f"{path.name} is truncated ({size:,} bytes, its header alone needs {8 + n:,})"
            header = json.loads(handle.read(n))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, IndexError, AttributeError):
        return f"{path.name} is not a safetensors file (its header cannot be read)"
    if size != 8 + n + end:
        return f"{path.name} is {size:,} bytes where its header says {8 + n + end:,} (truncated or damaged)"
    return None


# ---------------------------------------------------------------- output paths, checked before any work


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe_writable(folder: Path, what: str) -> None:
    """Create and delete a temporary file in `folder`: the only test of writability that does not lie (root, /proc)."""
    if not folder.is_dir():
        raise OutputPathError(f"{what}: {folder} is a file, so nothing can be created under it.")
    try:
        fd, name = tempfile.mkstemp(prefix=".ftlearn-probe-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise OutputPathError(f"{what}: cannot write in {folder} ({exc.strerror or exc}).") from None


def check_output_file(path: str | Path, flag: str = "--out") -> Path:
    """Raise OutputPathError unless `path` can be written as a file: not a folder, in a writable place."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise OutputPathError(f"{flag} {path} is a folder; give a file name, e.g. {path / 'predictions.csv'}.")
    _probe_writable(_nearest_existing(path.parent), f"{flag} {path}")
    return path


def check_output_folder(
    path: str | Path, is_ours: bool, flag: str = "--out", foreign: list[str] | tuple[str, ...] = ()
) -> Path:
    """Raise OutputPathError unless `path` can receive a run folder.

    `is_ours` says whether an existing folder there is one ftlearn wrote (it will be replaced); any other
    non-empty folder is refused, so that a mistyped --out never deletes someone's files. `foreign` names what a
    folder of ours holds that ftlearn did not write (a user's notes): refused too, naming them, since the folder
    is replaced whole.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{flag} {path} is a file; give a folder name (it is created, or replaced if a run).")
    if path.is_dir() and any(path.iterdir()) and not is_ours:
        raise OutputPathError(
            f"{flag} {path} is a folder that ftlearn did not write; it would be replaced, so choose another "
            "name or empty it first."
        )
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise OutputPathError(
            f"{flag} {path} holds files ftlearn did not write ({shown}); a new run replaces the whole folder, so "
            "move them out first or choose another --out. Nothing was changed."
        )
    _probe_writable(_nearest_existing(path.parent), f"{flag} {path}")
    return path


# ---------------------------------------------------------------- paths as printed

# Outputs are committed and read on other machines: a path prints relative to a named root, so that the
# notebooks show `<cache>/offline-gpt2/cpu-3668f779df`, never the author's home, checkout or venv.
PACKAGES_ROOT = "<site-packages>"
# the settings that place the roots, named here so that files.py imports nothing of ftlearn (ftlearn.data and
# ftlearn.offline_gpt2 print through it); tests/test_files.py checks they match `data.DIR_ENV`, `offline_gpt2.CACHE_ENV`
IMDB_DIR_ENV = "FTLEARN_IMDB_DIR"
CACHE_ENV = "FTLEARN_CACHE"
_PACKAGES_DIRS = ("site-packages", "dist-packages")


def cache_root() -> Path:
    """Where ftlearn keeps per-machine builds: $FTLEARN_CACHE, else ~/.cache/ftlearn (as `offline_gpt2.cache_root`)."""
    return Path(os.environ.get(CACHE_ENV, "").strip() or Path.home() / ".cache" / "ftlearn").expanduser()


def _course_root() -> Path | None:
    """`ftlearn.course.repo_root()` without its import of nbformat (a second, to print one path): the checkout
    above the current folder, else above this file."""
    for base in (Path.cwd().resolve(), Path(__file__).resolve().parent):
        for folder in [base, *base.parents]:
            if (folder / "notebooks").is_dir() and (folder / "ftlearn").is_dir():
                return folder
    return None


def _hf_roots() -> list[tuple[str, str]]:
    """The Hugging Face folders, by huggingface_hub's rules: $HF_HOME, else $XDG_CACHE_HOME/huggingface, else
    ~/.cache/huggingface; its hub cache ($HF_HUB_CACHE) may live elsewhere."""
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    home = os.environ.get("HF_HOME") or os.path.join(xdg, "huggingface")
    roots = [("<hf-home>", home)]
    hub = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if hub:
        roots.append(("<hf-hub>", hub))
    return roots


def path_roots() -> list[tuple[str, str]]:
    """(name, absolute folder) for each root a printed path is shown under, on this machine: the ftlearn and
    Hugging Face caches, $FTLEARN_IMDB_DIR, the course checkout, the temporary folder, the home folder.
    site-packages folders are found in the path itself (`display_path`)."""
    named: list[tuple[str, str | os.PathLike]] = [("<cache>", cache_root()), *_hf_roots()]
    imdb = os.environ.get(IMDB_DIR_ENV, "").strip()
    if imdb and (os.path.isabs(os.path.expanduser(imdb)) or os.path.isdir(imdb)):  # else a hub name
        named.append(("<imdb>", imdb))
    course = _course_root()
    if course is not None:
        named.append(("<course>", course))
    named += [("<tmp>", tempfile.gettempdir()), ("~", Path.home())]
    roots = []
    for name, folder in named:
        folder = os.path.abspath(os.path.expanduser(os.fspath(folder)))
        for form in dict.fromkeys((folder, os.path.realpath(folder))):  # /tmp and /private/tmp on macOS
            if os.path.dirname(form) != form:  # a filesystem root would swallow every path
                roots.append((name, form))
    return roots


def _under(path: str, folder: str) -> str | None:
    """The rest of `path` below `folder` ("" for the folder itself), or None when `path` is not under it."""
    if path == folder:
        return ""
    for sep in {os.sep, "/"}:
        if path.startswith(folder.rstrip(sep) + sep):
            return path[len(folder.rstrip(sep)) + 1 :]
    return None


def display_path(path: str | os.PathLike) -> str:
    """`path` as printed: below its longest named root (`<cache>/…`, `<site-packages>/…`, `~/…`), else as given."""
    text = os.fspath(path)
    if not os.path.isabs(text):
        return text
    absolute = os.path.normpath(text)
    found = [
        (len(absolute) - len(rest), name, rest)
        for name, root in path_roots()
        if (rest := _under(absolute, root)) is not None
    ]
    parts = Path(absolute).parts
    for index in range(len(parts) - 1, 0, -1):  # the deepest site-packages folder
        if parts[index] in _PACKAGES_DIRS:
            rest = "/".join(parts[index + 1 :])
            found.append((len(absolute) - len(rest), PACKAGES_ROOT, rest))
            break
    if not found:
        return text
    _, name, rest = max(found)
    rest = rest.replace(os.sep, "/")
    return f"{name}/{rest}" if rest else name


# an absolute path's site-packages folder, in text: "/x/.venv/lib/python3.11/site-packages", "C:\\Py\\dist-packages";
# not inside a longer token (a relative path, a URL: "https://host/a/site-packages" starts after "host")
_PATH_START = r"(?<![\w.~/\\:-])"
_PATH_END = r"(?=[/\\]|[^\w.-]|$)"
_PACKAGES_IN_TEXT = re.compile(
    _PATH_START + r"(?:[A-Za-z]:)?[/\\][^\s\"'<>|,;:()\[\]{}]*[/\\](?:site|dist)-packages" + _PATH_END
)

_ANSI_ESCAPE = re.compile(r"(\x1b\[[0-9;]*[A-Za-z])")


def redact_paths(text: str, roots: list[tuple[str, str]] | None = None) -> str:
    """`text` with each absolute path under a root shown below it, as `display_path` would print it.

    `roots` defaults to this machine's (`path_roots`); pass another machine's to clean outputs made there.
    Any folder named site-packages or dist-packages is a root wherever it lives. Where roots nest, the
    longest wins: a venv inside the checkout shows as `<site-packages>/…`, not `<course>/.venv/…`.
    """
    roots = path_roots() if roots is None else roots
    # a coloured traceback: in "\x1b[0;32m/x/site-packages/..." the path starts after the escape
    return "".join(p if i % 2 else _redact_plain(p, roots) for i, p in enumerate(_ANSI_ESCAPE.split(text)))


def _redact_plain(text: str, roots: list[tuple[str, str]]) -> str:
    spans = [(m.start(), m.end(), PACKAGES_ROOT) for m in _PACKAGES_IN_TEXT.finditer(text)]
    for name, root in roots:
        pattern = _PATH_START + re.escape(root.rstrip("/\\")) + _PATH_END
        spans += [(m.start(), m.end(), name) for m in re.finditer(pattern, text)]
    out, done = [], 0
    for start, end, name in sorted(spans, key=lambda span: (span[0], span[0] - span[1])):  # longest first
        if start >= done:
            out += [text[done:start], name]
            done = end
    return "".join(out) + text[done:]
