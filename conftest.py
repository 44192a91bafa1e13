"""Test-suite settings (tests/, and nbval over notebooks/ and solutions/): smoke profile, hub offline, IMDB sample.

The IMDB sample is the one beside the checkout (../shared/data/imdb-sample).

Set before any notebook kernel starts, so nbval's kernels inherit them. Each one is a default:
an environment variable set by the caller wins.
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent
SAMPLE = ROOT.parent / "shared" / "data" / "imdb-sample"

os.environ.setdefault("FTLEARN_PROFILE", "smoke")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if SAMPLE.is_dir():
    os.environ.setdefault("FTLEARN_IMDB_DIR", str(SAMPLE))
os.environ.setdefault("FTLEARN_CHECKS_STRICT", "1")
