"""The benchmarks package: every module imports (no sys.path hack) and the README maps every one of them."""

import importlib
import pkgutil
from pathlib import Path

import benchmarks

README = Path(benchmarks.__file__).with_name("README.md").read_text()


def test_every_benchmark_module_imports_and_is_in_the_readme_map():
    names = [m.name for m in pkgutil.walk_packages(benchmarks.__path__, "benchmarks.") if not m.ispkg]
    assert len(names) > 15
    for name in names:
        importlib.import_module(name)
        assert f"`{name}`" in README or f"python -m {name}`" in README or name == "benchmarks.common", name
