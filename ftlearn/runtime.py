"""Where and how big the course runs: profiles, device, seeding, versions, online check.

Introduced in notebook 00 (welcome); every later notebook starts with `get_profile()` and
`seed_everything()`.
"""

from __future__ import annotations

import os
import platform
import random
import re
import socket
import sys
import threading
from dataclasses import asdict, dataclass, replace
from importlib import metadata

PROFILE_ENV = "FTLEARN_PROFILE"
DEVICE_ENV = "FTLEARN_DEVICE"
HUB_HOST = "huggingface.co"


@dataclass(frozen=True)
class Profile:
    """How big a run is: data sizes, sequence length, epochs and which models to use."""

    name: str
    description: str
    n_train: int | None  # reviews taken from the train split; None = all of it
    n_test: int | None  # reviews taken from the test split; None = all of it
    max_length: int  # tokens per review after truncation
    batch_size: int
    epochs: int
    bert_model: str
    gpt2_model: str

    def as_dict(self) -> dict:
        """The profile as a plain dict (for printing and for metrics.json)."""
        return asdict(self)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        description="CI, a quick try: tiny subsets through the real code paths",
        n_train=64,
        n_test=32,
        max_length=64,
        batch_size=16,
        epochs=1,
        bert_model="bert-base-uncased",
        gpt2_model="gpt2",
    ),
    "cpu": Profile(
        name="cpu",
        description="a laptop: meaningful results on 2,000 training reviews",
        n_train=2000,
        n_test=500,
        max_length=256,
        batch_size=16,
        epochs=2,
        bert_model="bert-base-uncased",
        gpt2_model="gpt2",
    ),
    "gpu": Profile(
        name="gpu",
        description="one CUDA GPU: the full IMDB 25k/25k split with bert-base-uncased and gpt2",
        n_train=None,
        n_test=None,
        max_length=512,
        batch_size=32,
        epochs=2,
        bert_model="bert-base-uncased",
        gpt2_model="gpt2",
    ),
}


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def get_profile(name: str | None = "auto", **overrides) -> Profile:
    """Return a profile by name; `auto`/None reads FTLEARN_PROFILE, else gpu if CUDA else cpu.

    Keyword overrides replace fields, e.g. `get_profile("cpu", epochs=1)`.
    """
    if name in (None, "", "auto"):
        name = os.environ.get(PROFILE_ENV, "").strip().lower() or "auto"
    if name == "auto":
        name = "gpu" if _cuda_available() else "cpu"
    if name not in PROFILES:
        raise ValueError(
            f"Unknown profile {name!r}. Choose one of {', '.join(PROFILES)} or 'auto' "
            f"(set it in the notebook's parameters cell or with {PROFILE_ENV}=...)."
        )
    profile = PROFILES[name]
    return replace(profile, **overrides) if overrides else profile


def pick_device(preference: str | None = None):
    """Pick the torch device: FTLEARN_DEVICE or `preference` if given, else CUDA -> MPS -> CPU."""
    import torch

    wanted = preference or os.environ.get(DEVICE_ENV, "").strip().lower() or "auto"
    if wanted != "auto":
        try:
            device = torch.device(wanted)
        except RuntimeError:
            raise RuntimeError(
                f"{DEVICE_ENV}={wanted!r} is not a device torch knows: use cpu, cuda, cuda:1 or mps, or unset it "
                "to let ftlearn choose."
            ) from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"{DEVICE_ENV}={wanted} asks for CUDA, but torch sees no CUDA GPU here: unset {DEVICE_ENV} "
                "(or set it to cpu)."
            )
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise RuntimeError(f"{DEVICE_ENV}={wanted} asks for MPS, but it is not available here.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int = 0, deterministic: bool = True) -> None:
    """Seed python, numpy and torch (all devices); ask torch for deterministic kernels where it can."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA and MPS generators
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    if deterministic:
        # warn_only: a few CUDA kernels have no deterministic version; we'd rather run than stop.
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        if hasattr(torch.backends, "cudnn"):
            torch.backends.cudnn.benchmark = False


def hub_address() -> tuple[str, int]:
    """Host and port of the Hugging Face hub this process downloads from: $HF_ENDPOINT's, else huggingface.co:443."""
    from urllib.parse import urlsplit

    endpoint = urlsplit(os.environ.get("HF_ENDPOINT", "").strip() or f"https://{HUB_HOST}")
    default_port = 443 if endpoint.scheme == "https" else 80
    try:
        port = endpoint.port or default_port
    except ValueError:  # a malformed port: probe the default and let huggingface_hub report the address
        port = default_port
    return endpoint.hostname or HUB_HOST, port


def is_online(timeout: float = 1.5, host: str | None = None) -> bool:
    """True when the Hugging Face hub ($HF_ENDPOINT if set) answers; False at once when HF_HUB_OFFLINE is set."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return False
    address = (host, 443) if host is not None else hub_address()
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection(address, timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    # DNS look-ups ignore socket timeouts, so the probe runs in a thread we stop waiting for.
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def package_version(name: str) -> str | None:
    """Installed version of a distribution, or None when it is not installed."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


_EXTRA_MARKER = re.compile(r"\bextra\s*==")
_REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def required_packages(distribution: str = "ftlearn") -> list[str]:
    """The packages an installed distribution needs, read from its metadata (extras' requirements left out)."""
    names = []
    for requirement in metadata.requires(distribution) or []:  # e.g. 'torch>=2.4', 'pytest>=8.0; extra == "test"'
        marker = requirement.partition(";")[2]
        if _EXTRA_MARKER.search(marker):
            continue
        found = _REQUIREMENT_NAME.match(requirement)
        if found and found.group(1) not in names:
            names.append(found.group(1))
    return names


CORE_PACKAGES = ("ftlearn", "torch", "transformers", "datasets", "accelerate", "tokenizers")


def hardware_summary() -> str:
    """One line naming the CPU cores and the accelerator, e.g. '2 CPU cores, no GPU'."""
    import torch

    cores = os.cpu_count() or 1
    if torch.cuda.is_available():
        accel = torch.cuda.get_device_name(0)
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        accel = "Apple MPS"
    else:
        accel = "no GPU"
    return f"{platform.machine()}, {cores} CPU cores, {accel}"


def env_report(packages: tuple[str, ...] = CORE_PACKAGES) -> dict[str, str]:
    """Versions of python and the core packages, plus device and hardware, as a dict of strings."""
    report = {"python": sys.version.split()[0]}
    for name in packages:
        report[name] = package_version(name) or "not installed"
    report["device"] = str(pick_device())
    report["hardware"] = hardware_summary()
    return report


def print_env(profile: Profile | None = None) -> None:
    """Print the environment report (and the profile) the way every notebook's setup cell does."""
    report = env_report()
    if profile is not None:  # how long the lessons take is in the course map (00), measured after the fact
        report["profile"] = f"{profile.name} ({profile.description})"
    width = max(map(len, report))
    for key, value in report.items():
        print(f"{key:<{width}} : {value}")
