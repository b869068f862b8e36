"""On-disk statistics cache: ONE dense calibration pass per (model, data, seed), reused by every trial.

For every decoder linear ``layers.<i>.<name>`` the cache stores ``sq_sum`` [in] (sum over the
calibration tokens of X_j^2, what every activation-aware score needs) and a fixed random subsample
of ``x_tokens`` of its input rows, ``x`` [t, in], for the reconstruction proxy. Token positions
are drawn once from a seeded generator and are the same for every linear.

The file is ``<cache_dir>/<key>.safetensors`` where ``key`` hashes the model (resolved location
and a fingerprint of its first decoder weight), the dataset, nsamples, seqlen, seed, BOS choice
and x_tokens (and whether it holds Hessians). The sparsity pattern is deliberately not part of the key:
the statistics come from the dense model, so one cache serves every sparsity and pattern. With
``hessian`` it also stores each linear's input Hessian X^T X [in, in], which a weight update needs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from crepe.engine.layerwise import iterate_layers
from crepe.io.files import atomic_path
from crepe.models.adapters import decoder_linears, get_adapter, weight_view
from crepe.prune.cached import collect_input_stats
from pho.proxies import LayerData

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheKey:
    """Everything the cached statistics depend on."""

    model: str
    weights: str
    dataset: str
    nsamples: int
    seqlen: int
    seed: int
    bos_per_window: bool
    x_tokens: int
    hessian: bool = False

    def __post_init__(self) -> None:
        if self.x_tokens < 0:
            raise ValueError(f"x_tokens must be >= 0, got {self.x_tokens}")

    def fields(self) -> dict:
        """The key's fields; ``hessian`` only when set, so caches written before it existed keep their key."""
        d = asdict(self)
        return d if self.hessian else {k: v for k, v in d.items() if k != "hessian"}

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.fields(), sort_keys=True).encode()).hexdigest()[:16]


def weights_fingerprint(model: nn.Module) -> str:
    """Short hash of the first decoder linear's weight: tells apart models stored at the same path. The
    first layer is read through the engine's layer store, so a streamed model loads that layer only."""
    layers = iterate_layers(model)
    try:
        _, layer = next(layers)
        first = next(iter(get_adapter(model).linears(layer).values()))
        data = weight_view(first).detach().float().contiguous().cpu().numpy().tobytes()
    finally:
        layers.close()  # releases the layer (a streamed one drops its weights again)
    return hashlib.sha256(data).hexdigest()[:16]


def token_subsample(total: int, count: int, seed: int) -> torch.Tensor:
    """Sorted distinct flat token positions [min(count, total)] drawn from a seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(total, generator=generator)[:count].sort().values


class _InputSampler:
    """Forward hook keeping the rows at fixed flat token positions of a linear's input [..., in]."""

    def __init__(self, positions: torch.Tensor):
        self.positions = positions
        self.seen = 0
        self.rows: list[torch.Tensor] = []

    def __call__(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        x = inputs[0].detach()
        x = x.reshape(-1, x.shape[-1])
        lo, hi = self.seen, self.seen + x.shape[0]
        here = self.positions[(self.positions >= lo) & (self.positions < hi)] - lo
        if here.numel():
            self.rows.append(x[here.to(x.device)].float().cpu())
        self.seen = hi


def collect_layer_data(model: nn.Module, windows: torch.Tensor, x_tokens: int, seed: int,
                       batch_size: int = 8, progress: bool = True, hessian: bool = False) -> dict[str, LayerData]:
    """One dense pass over calibration ``windows`` [n, seq] through the crepe engine: LayerData per
    decoder linear (``sq_sum`` [in], ``x`` [min(x_tokens, n*seq), in] or None, ``hessian`` [in, in] or None)."""
    positions = token_subsample(windows.numel(), x_tokens, seed) if x_tokens else None
    linears = decoder_linears(model)
    samplers = {name: _InputSampler(positions) for name in linears} if x_tokens else {}
    handles = [mod.register_forward_hook(samplers[name]) for name, mod in linears.items() if name in samplers]
    try:
        needs = frozenset({"sq_sum", "hessian"} if hessian else {"sq_sum"})
        stats = collect_input_stats(model, windows, needs, batch_size=batch_size, progress=progress)
    finally:
        for handle in handles:
            handle.remove()
    return {name: LayerData(s.sq_sum.float().cpu(), torch.cat(samplers[name].rows) if name in samplers else None,
                            s.hessian.float().cpu() if hessian else None)
            for name, s in stats.items()}


def cache_path(cache_dir: str | Path, key: CacheKey) -> Path:
    return Path(cache_dir) / f"{key.digest()}.safetensors"


def save_cache(path: str | Path, key: CacheKey, data: dict[str, LayerData]) -> None:
    """Write the cache atomically as safetensors, with the key in the metadata."""
    from safetensors.torch import save_file

    # linears that read one input (q/k/v, gate/up) share its statistics tensor: safetensors stores copies
    tensors = {f"sq_sum/{name}": d.sq_sum.clone() for name, d in data.items()}
    tensors.update({f"x/{name}": d.x.clone() for name, d in data.items() if d.x is not None})
    tensors.update({f"hessian/{name}": d.hessian.clone() for name, d in data.items() if d.hessian is not None})
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"key": json.dumps(key.fields(), sort_keys=True)})


def load_cache(path: str | Path, key: CacheKey) -> dict[str, LayerData]:
    """Read a cache written by :func:`save_cache`; a key mismatch or unreadable file raises ValueError."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            stored = json.loads((handle.metadata() or {}).get("key", "null"))
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 (safe_open is not a dict)
    except Exception as exc:  # safetensors raises several types on a corrupt file
        raise ValueError(f"cannot read statistics cache {path}: {exc}") from exc
    if stored != key.fields():
        raise ValueError(f"statistics cache {path} was built for {stored}, not {key.fields()}")
    names = [k.split("/", 1)[1] for k in tensors if k.startswith("sq_sum/")]
    return {name: LayerData(tensors[f"sq_sum/{name}"], tensors.get(f"x/{name}"), tensors.get(f"hessian/{name}"))
            for name in names}


def load_or_collect(model: nn.Module, windows: torch.Tensor, key: CacheKey, cache_dir: str | Path,
                    batch_size: int = 8, progress: bool = True) -> tuple[dict[str, LayerData], bool]:
    """(LayerData per linear, True if it came from disk). Collects and saves on a miss."""
    path = cache_path(cache_dir, key)
    if path.is_file():
        log.info("statistics cache hit: %s", path)
        return load_cache(path, key), True
    log.info("statistics cache miss: one dense calibration pass (%d windows)", windows.shape[0])
    data = collect_layer_data(model, windows, key.x_tokens, key.seed, batch_size, progress, key.hessian)
    save_cache(path, key, data)
    log.info("statistics cache written: %s", path)
    return data, False
