"""ftlearn.runtime: profiles, device choice, seeding, online check."""

import time

import pytest
import torch

from ftlearn import runtime


def test_auto_profile_reads_environment(monkeypatch):
    monkeypatch.setenv("FTLEARN_PROFILE", "smoke")
    assert runtime.get_profile().name == "smoke"
    assert runtime.get_profile("auto").name == "smoke"
    assert runtime.get_profile("cpu").name == "cpu"  # an explicit name wins over the variable


def test_auto_profile_without_environment_follows_cuda(monkeypatch):
    monkeypatch.delenv("FTLEARN_PROFILE", raising=False)
    expected = "gpu" if torch.cuda.is_available() else "cpu"
    assert runtime.get_profile().name == expected
    monkeypatch.setattr(runtime, "_cuda_available", lambda: True)
    assert runtime.get_profile().name == "gpu"


def test_profile_overrides_and_unknown_name():
    before = runtime.PROFILES["cpu"]
    assert runtime.get_profile("cpu", epochs=7).epochs == 7
    assert runtime.PROFILES["cpu"] == before  # the table itself is untouched
    with pytest.raises(ValueError, match="Unknown profile 'huge'"):
        runtime.get_profile("huge")


def test_profiles_grow_from_smoke_to_gpu():
    smoke, cpu, gpu = (runtime.PROFILES[n] for n in ("smoke", "cpu", "gpu"))
    assert smoke.n_train < cpu.n_train and gpu.n_train is None
    assert smoke.max_length <= cpu.max_length <= gpu.max_length


def test_device_choice(monkeypatch):
    monkeypatch.delenv("FTLEARN_DEVICE", raising=False)
    device = runtime.pick_device()
    if torch.cuda.is_available():
        assert device.type == "cuda"
    else:
        assert device.type in ("mps", "cpu")
    monkeypatch.setenv("FTLEARN_DEVICE", "cpu")
    assert runtime.pick_device().type == "cpu"
    if not torch.cuda.is_available():
        monkeypatch.setenv("FTLEARN_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            runtime.pick_device()


def test_seed_everything_repeats_random_streams():
    import random

    import numpy as np

    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    runtime.seed_everything(123)
    first = draw()
    runtime.seed_everything(123)
    assert draw() == first
    runtime.seed_everything(124)
    assert draw() != first


def test_online_check_is_fast_when_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    assert runtime.is_online() is False
    assert time.perf_counter() - start < 0.1


def test_online_check_gives_up_within_its_timeout(monkeypatch):
    """A look-up that hangs (as DNS does on some offline machines) must not hold the caller."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def hanging_connect(*args, **kwargs):
        time.sleep(5)
        raise OSError("timed out")

    monkeypatch.setattr(runtime.socket, "create_connection", hanging_connect)
    start = time.perf_counter()
    assert runtime.is_online(timeout=0.5) is False
    assert time.perf_counter() - start < 1.5


def test_online_check_probes_the_hub_that_hf_endpoint_names(monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert runtime.hub_address() == ("huggingface.co", 443)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:8123")
    assert runtime.hub_address() == ("127.0.0.1", 8123)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example.org")
    assert runtime.hub_address() == ("hub.example.org", 443)


def test_env_report_names_versions_and_device():
    report = runtime.env_report()
    assert report["torch"] == torch.__version__
    assert report["device"] in ("cpu", "cuda", "mps")
    assert "CPU cores" in report["hardware"]
