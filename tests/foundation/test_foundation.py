"""Config, hashing, pickle-free storage, backend choice and the CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from core.backend import resolve_backend, resolve_device
from core.config import REPO_ROOT, home
from core.hashing import content_key
from core.pipeline.cli import main
from core.storage import ArtifactError, load_npz, save_npz


def test_home_is_the_test_folder(test_home):
    assert home() == test_home.resolve()


def test_third_party_config_points_inside_home(test_home):
    for var in ("XDG_CONFIG_HOME", "HF_HOME", "NILEARN_DATA", "MPLCONFIGDIR"):
        assert os.environ[var].startswith(str(test_home)), var
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_pycortex_writes_its_config_inside_home(test_home):
    import cortex  # noqa: F401

    cfg = test_home / "env" / "xdg" / "pycortex" / "options.cfg"
    assert cfg.exists()


def test_content_key_is_stable_and_sensitive():
    a = content_key("response", {"model": "m", "instruction": "What is in this image?", "image": 3})
    b = content_key("response", {"image": 3, "instruction": "What is in this image?", "model": "m"})
    c = content_key(
        "response", {"model": "m", "instruction": "What is in this image? ", "image": 3}
    )
    assert a == b and a != c


def test_npz_round_trip_without_pickle(tmp_path, rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    save_npz(tmp_path / "a.npz", x=x)
    assert np.array_equal(load_npz(tmp_path / "a.npz")["x"], x)


def test_object_arrays_are_refused(tmp_path):
    with pytest.raises(TypeError, match="pickle"):
        save_npz(tmp_path / "a.npz", x=np.array([{"a": 1}], dtype=object))


def test_corrupt_npz_is_an_artifact_error(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="bad.npz"):
        load_npz(tmp_path / "bad.npz")


def test_resolve_device_cpu_and_unknown():
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")


def test_resolve_backend_auto_is_valid():
    assert resolve_backend("auto") in ("numpy", "torch_cuda")
    with pytest.raises(ValueError, match="unknown backend"):
        resolve_backend("jax")


def test_cli_demo_build_rejects_unknown_size(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "build", "--size", "huge"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_cli_demo_build_prints_summary(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "demo",
            "build",
            "--size",
            "small",
            "--quiet",
            "--root",
            str(tmp_path / "d"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "300 (240 train, 60 shared test)" in out.stdout
    assert "median noise ceiling" in out.stdout
    assert "targets per ROI: V1" in out.stdout
