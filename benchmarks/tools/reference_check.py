"""Check crepe's ADMM-Grad and ALPS against their official per-layer functions on real SmolLM2 linears.

The official code is not part of crepe: clone it yourself and pass the folders (the files are
imported as they are; ALPS hard-codes ``cuda:0``, so on a machine without CUDA its tensor moves to
``cuda:0`` are redirected to the CPU for the duration of the call)::

    git clone https://github.com/fmfi-compbio/admm-pruning /tmp/ref/admm-pruning   # lib/admm.py
    git clone https://github.com/mazumder-lab/ALPS /tmp/ref/ALPS                    # alps.py
    python -m benchmarks.tools.reference_check --admm-grad /tmp/ref/admm-pruning/lib/admm.py \\
        --alps /tmp/ref/ALPS/alps.py --out results/reference_check.json

The Hessians are those of the dense model's layers (hooks on the inputs of q, o, gate and down in
layers 0, 14 and 29 over the calibration windows). For each linear and setting it records the
sparsity and the relative output error ||(W - W_hat) X||^2 / ||W X||^2 = tr(E H E^T) / tr(W H W^T)
of the official function and of crepe's (``crepe.methods.registry.get_method(name).prune``, the
per-linear hook that ``crepe.prune`` runs), and their ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from benchmarks.common import Table, parse_setting, record, require_clean
from crepe.config import PruneConfig
from crepe.data.prepare import calibration_set
from crepe.io.files import write_json_atomic
from crepe.methods.registry import get_method
from crepe.methods.scorers import InputStats
from crepe.run.open import open_model
from crepe.run.options import RunOptions

log = logging.getLogger(__name__)
LAYERS = (0, 14, 29)
ROLES = ("self_attn.q_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.down_proj")
TABLES = [Table("results/reference_check.json", (
    "python -m benchmarks.tools.reference_check --admm-grad /tmp/ref/admm/admm.py --alps /tmp/ref/alps/alps.py",))]


def load_module(path: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def cuda_on_cpu():
    """Without CUDA: ``.to('cuda:0')`` and ``torch.cuda.synchronize`` become CPU no-ops (ALPS hard-codes them)."""
    if torch.cuda.is_available():
        yield
        return
    original_to, original_sync = torch.Tensor.to, torch.cuda.synchronize

    def to(self, *args, **kwargs):
        args = tuple("cpu" if isinstance(a, str) and a.startswith("cuda") else a for a in args)
        if isinstance(kwargs.get("device"), str) and kwargs["device"].startswith("cuda"):
            kwargs["device"] = "cpu"
        return original_to(self, *args, **kwargs)

    torch.Tensor.to, torch.cuda.synchronize = to, lambda *a, **k: None
    try:
        yield
    finally:
        torch.Tensor.to, torch.cuda.synchronize = original_to, original_sync


def hessians(model: torch.nn.Module, windows: torch.Tensor) -> dict[str, torch.Tensor]:
    """name -> sum X^T X [in, in] over the calibration windows, for the linears of LAYERS x ROLES."""
    found: dict[str, torch.Tensor] = {}
    hooks = []
    for layer in LAYERS:
        for role in ROLES:
            name = f"model.layers.{layer}.{role}"
            module = model.get_submodule(name)

            def hook(mod, inputs, _out, name=name):
                x = inputs[0].reshape(-1, inputs[0].shape[-1]).double()
                found[name] = found.get(name, 0) + x.T @ x

            hooks.append(module.register_forward_hook(hook))
    with torch.no_grad():
        for window in windows:
            model(window.unsqueeze(0))
    for h in hooks:
        h.remove()
    return {k: v.float() for k, v in found.items()}


def output_error(w: torch.Tensor, new: torch.Tensor, h: torch.Tensor) -> float:
    """||(W - W_hat) X||^2 / ||W X||^2 from H = X^T X (float64)."""
    e, w, h = (new - w).double(), w.double(), h.double()
    return float(((e @ h) * e).sum() / ((w @ h) * w).sum())


def official_admm_grad(module: ModuleType, w: torch.Tensor, h: torch.Tensor, sparsity: float, structured: bool) -> torch.Tensor:
    layer = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
    layer.weight.data = w.clone()
    pruner = module.AdmmPruner(layer)
    pruner.XX = h.clone()
    with contextlib.redirect_stdout(sys.stderr):
        pruner.fasterprune(sparsity, prune_n=2 if structured else 0, prune_m=4 if structured else 0)
    return layer.weight.data.float()


def official_alps(module: ModuleType, w: torch.Tensor, h: torch.Tensor, sparsity: float, structured: bool) -> torch.Tensor:
    layer = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
    layer.weight.data = w.clone()
    with cuda_on_cpu():
        module.dev = "cuda:0" if torch.cuda.is_available() else "cpu"
        pruner = module.ALPS_prune(layer, 1, 1)
        pruner.XtX = h.clone()
        pruner.ALPS_admm(sparsity, 2 if structured else 0, 4 if structured else 0)
    return layer.weight.data.float().cpu()


def check(name: str, method: str, official, w: torch.Tensor, h: torch.Tensor, setting: str) -> dict[str, Any]:
    sparsity, pattern = parse_setting(setting)
    cfg = PruneConfig(method=method, sparsity=sparsity, pattern=pattern)
    t = time.process_time()
    ref = official(w, h, sparsity, pattern.structured)
    ref_cpu = time.process_time() - t
    t = time.process_time()
    ours, _, _ = get_method(method).prune(w, InputStats(sq_sum=h.diagonal().clone(), hessian=h), sparsity, pattern, cfg, None)
    ours_cpu = time.process_time() - t
    row = {"linear": name, "method": method, "setting": setting,
           "official": {"sparsity": float((ref == 0).float().mean()), "error": output_error(w, ref, h), "cpu_s": ref_cpu},
           "crepe": {"sparsity": float((ours == 0).float().mean()), "error": output_error(w, ours, h), "cpu_s": ours_cpu}}
    row["error_ratio"] = row["crepe"]["error"] / row["official"]["error"]
    log.info("%s %s %s: official %.5f, crepe %.5f (x%.3f)", name, method, setting, row["official"]["error"],
             row["crepe"]["error"], row["error_ratio"])
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--admm-grad", required=True, help="the official lib/admm.py of fmfi-compbio/admm-pruning")
    ap.add_argument("--alps", required=True, help="the official alps.py of mazumder-lab/ALPS")
    ap.add_argument("--settings", default="0.5,0.7,2:4")
    ap.add_argument("--nsamples", type=int, default=16)
    ap.add_argument("--out", default="results/reference_check.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_grad_enabled(False)
    require_clean(Path(args.out))
    opts = RunOptions()
    opened = open_model(opts.model)
    windows, spec = calibration_set(opened.tokenizer, opts.calib_dataset, args.nsamples, opts.seqlen, opts.seed)
    hs = hessians(opened.model, windows)
    officials = {"admm-grad": lambda *a: official_admm_grad(load_module(args.admm_grad, "official_admm"), *a),
                 "alps": lambda *a: official_alps(load_module(args.alps, "official_alps"), *a)}
    rows = [check(name, method, officials[method], opened.model.get_submodule(name).weight.detach().float(), h, s)
            for name, h in hs.items() for s in args.settings.split(",") for method in officials]
    summary = {m: {"error_ratio_mean": sum(r["error_ratio"] for r in rows if r["method"] == m) / len(LAYERS) / len(ROLES)
                   / len(args.settings.split(",")),
                   "error_ratio_max": max(r["error_ratio"] for r in rows if r["method"] == m)} for m in officials}
    config = {"settings": args.settings, "nsamples": args.nsamples, "seqlen": opts.seqlen, "calibration": spec.describe(),
              "layers": LAYERS, "roles": ROLES, "admm_grad_file": args.admm_grad, "alps_file": args.alps}
    write_json_atomic(Path(args.out), record(config, rows=rows, summary=summary))
    print(summary)


if __name__ == "__main__":
    main()
