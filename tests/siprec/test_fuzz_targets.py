"""The fuzz entry points stay runnable without atheris and find nothing on a short run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"


def load(name: str) -> ModuleType:
    sys.path.insert(0, str(FUZZ))
    try:
        spec = importlib.util.spec_from_file_location(name, FUZZ / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(FUZZ))


@pytest.mark.parametrize("name", ["fuzz_sdp", "fuzz_metadata"])
def test_short_run_finds_nothing(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    module = load(name)
    assert module.main([name, "300", "5"]) == 0
    assert capsys.readouterr().out == "300 inputs, no failure (seed 5)\n"


def test_seeds_come_from_the_corpus() -> None:
    module = load("fuzz_sdp")
    sdps = module.corpus_bodies("application/sdp")
    assert len(sdps) == 24
    assert all(body.startswith(b"v=0") for body in sdps)


def test_a_crash_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    module = load("fuzz_sdp")

    def broken(data: bytes) -> None:
        raise KeyError("boom")

    assert module.run(5, 0, broken, [b"v=0"]) == 1
    assert capsys.readouterr().out.startswith("iteration 0: KeyError: 'boom'\ninput: b")
