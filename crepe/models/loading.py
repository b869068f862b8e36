"""Load a causal LM and its tokenizer from an alias, a local folder, a ``.gguf`` file or a hub id.

GGUF files are dequantised once by transformers and cached as a float32 safetensors folder under
``$CREPE_CACHE`` (default ``~/.cache/crepe``), so later loads take about a second. The offline
aliases (``smollm2-135m``, ``gemma-3-270m``) point at GGUF files installed from the package registry
(:mod:`crepe.models.offline`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from crepe.io.files import temp_folder
from crepe.models.offline import OFFLINE_MODELS, offline_gguf

log = logging.getLogger(__name__)

HUB_ALIASES = {
    "llama-2-7b": "meta-llama/Llama-2-7b-hf",
    "llama-2-13b": "meta-llama/Llama-2-13b-hf",
    "llama-2-70b": "meta-llama/Llama-2-70b-hf",
    "llama-3-8b": "meta-llama/Meta-Llama-3-8B",
    "llama-3.1-8b": "meta-llama/Llama-3.1-8B",
    "mistral-7b": "mistralai/Mistral-7B-v0.1",
    "qwen2.5-7b": "Qwen/Qwen2.5-7B",
    "gemma-2-9b": "google/gemma-2-9b",
    "opt-125m": "facebook/opt-125m",
    "opt-6.7b": "facebook/opt-6.7b",
    "gpt2": "openai-community/gpt2",
    "pythia-160m": "EleutherAI/pythia-160m",
}
OFFLINE_ALIASES = tuple(OFFLINE_MODELS)


@dataclass(frozen=True)
class ModelSource:
    """kind: "gguf" | "folder" | "hub"; location: file path, folder path or hub id."""

    kind: str
    location: str


def cache_root() -> Path:
    return Path(os.environ.get("CREPE_CACHE", Path.home() / ".cache" / "crepe"))


def resolve(spec: str) -> ModelSource:
    """Map a ``--model`` value to where the weights come from. Missing local paths raise ValueError."""
    if spec in OFFLINE_ALIASES:
        return ModelSource("gguf", str(offline_gguf(spec, cache_root())))
    if spec in HUB_ALIASES:
        return ModelSource("hub", HUB_ALIASES[spec])
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ValueError(f"model file not found: {spec}")
        return ModelSource("gguf", str(path))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(f"{spec} is a folder but holds no config.json: not a Hugging Face model folder")
        return ModelSource("folder", str(path))
    if spec.startswith((".", "/", "~")) or path.exists() or spec.count("/") > 1:
        raise ValueError(f"model path not found or not a model: {spec}")
    return ModelSource("hub", spec)


def local_sources(spec: str) -> list[Path]:
    """The local files and folders ``spec`` is read from (a GGUF file and its converted cache folder);
    none for a hub id. An output must never be, or contain, one of them."""
    source = resolve(spec)
    if source.kind == "hub":
        return []
    path = Path(source.location)
    return [path, _gguf_cache_dir(path)] if source.kind == "gguf" else [path]


def _gguf_cache_dir(gguf: Path) -> Path:
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{int(stat.st_mtime)}".encode()).hexdigest()[:12]
    return cache_root() / "models" / f"{gguf.stem}-{key}"


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantise ``gguf`` with transformers and save it as a float32 HF folder at ``target`` (atomic)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("dequantising %s once (cached at %s)", gguf.name, target)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32,
                                                     trust_remote_code=False)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, trust_remote_code=False)
    except Exception as exc:  # transformers raises many types for a corrupt file
        raise ValueError(f"cannot read GGUF file {gguf}: {exc}") from exc
    model.hf_quantizer = None  # the weights are plain float now; let save_pretrained write them
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = temp_folder(target)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def local_folder(spec: str) -> str:
    """A loadable folder or hub id for ``spec``: GGUF sources are converted and cached first."""
    source = resolve(spec)
    if source.kind != "gguf":
        return source.location
    target = _gguf_cache_dir(Path(source.location))
    if not (target / "config.json").is_file():
        _convert_gguf(Path(source.location), target)
    return str(target)


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
OFFLOADS = ("auto", "none", "disk")


def checkpoint_dtype(folder: str | Path) -> torch.dtype:
    """The dtype a folder's config declares (``dtype``/``torch_dtype``), float32 if none."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return torch.float32
    name = config.get("dtype") or config.get("torch_dtype") or "float32"
    return DTYPES.get(str(name).removeprefix("torch."), torch.float32)


def resolve_dtype(choice: str | torch.dtype | None, where: str) -> torch.dtype:
    """``auto``/None: the checkpoint's own dtype (GGUF sources are dequantised to float32: their
    4-bit grid times fp16 scales is not exactly representable in bf16); else the named dtype."""
    if isinstance(choice, torch.dtype):
        return choice
    if choice in (None, "auto"):
        return checkpoint_dtype(where) if Path(where).is_dir() else torch.float32
    if choice not in DTYPES:
        raise ValueError(f"unknown dtype {choice!r}; choose from auto, {', '.join(DTYPES)}")
    return DTYPES[choice]


def available_memory() -> int:
    """MemAvailable from /proc/meminfo in bytes (total physical memory where it is missing)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def should_stream(offload: str, weight_bytes: int, dtype: torch.dtype, stored: torch.dtype) -> bool:
    """``disk``: always; ``none``: never; ``auto``: when the weights in ``dtype`` would take more than
    half of the memory available now (the rest is for the calibration activations and one layer in
    float32)."""
    if offload not in OFFLOADS:
        raise ValueError(f"unknown offload {offload!r}; choose from {', '.join(OFFLOADS)}")
    if offload != "auto":
        return offload == "disk"
    in_memory = weight_bytes * torch.empty((), dtype=dtype).element_size() / torch.empty((), dtype=stored).element_size()
    return in_memory > 0.5 * available_memory()


def load_model(spec: str, dtype: str | torch.dtype | None = None, device: str | None = None):
    """(model in eval mode, tokenizer) for ``spec``, fully in memory. Any load failure raises ValueError."""
    from transformers import AutoModelForCausalLM

    where = local_folder(spec)
    try:
        model = AutoModelForCausalLM.from_pretrained(where, dtype=resolve_dtype(dtype, where), trust_remote_code=False)
    except Exception as exc:
        raise load_error(spec, exc) from exc
    if device:
        model.to(device)
    return model.eval(), load_tokenizer(spec, where)


def load_tokenizer(spec: str, where: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(where, trust_remote_code=False)
    except Exception as exc:
        raise load_error(spec, exc) from exc


def load_error(spec: str, exc: Exception) -> ValueError:
    hint = (f" (is the hub reachable? offline, use a local folder, a .gguf file or an offline alias: "
            f"{', '.join(OFFLINE_ALIASES)})" if resolve(spec).kind == "hub" else "")
    return ValueError(f"cannot load model {spec!r}{hint}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")


def load_dispatched(spec: str, device_map: str = "auto", dtype: str | None = "auto"):
    """(model, tokenizer) spread over the available devices by accelerate (``device_map="auto"``):
    for evaluating a model larger than one GPU with its own forward pass."""
    from transformers import AutoModelForCausalLM

    where = local_folder(spec)
    try:
        model = AutoModelForCausalLM.from_pretrained(where, dtype=resolve_dtype(dtype, where), device_map=device_map,
                                                     trust_remote_code=False)
    except Exception as exc:
        raise load_error(spec, exc) from exc
    return model.eval(), load_tokenizer(spec, where)
