"""Weight reconstruction bench (issue 12): scorer x update x sparsity through the one engine.

One process loads the model once, restores the dense weights before every cell, prunes through
``crepe.engine.layerwise.run_layerwise`` with a callback that scores -> selects -> updates (or runs the CRePE
sweep), then evaluates on the wikivital test split and on a second text (the CPython language
reference shipped in ``pydoc_data.topics``, calibration staying on wikivital). One JSON report per
cell under ``--out-dir``; finished cells are skipped on re-run; ``--table`` rebuilds docs/quality.md.

    python scripts/bench_quality.py --settings 0.5,2:4,0.7 --cells sparsegpt,crepe+sweep,crepe+obs
    python scripts/bench_quality.py --cells crepe+sweep --diag-power 2 --tag p2   # a sweep variant
    python scripts/bench_quality.py --settings 2:4 --cells crepe+sweep-admm --admm-iterations 5 --tag it5
    python scripts/bench_quality.py --settings 2:4 --cells crepe+sweep-admm --compose permute --tag permute
    python scripts/bench_quality.py --table --out-dir results/quality/c16 --doc docs/quality.md

Prune cost: wall and process CPU time of the prune (OpenMP waits passive, so CPU time counts work).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep: CPU time counts work, not spinning
import torch  # noqa: E402  (after the OpenMP setting, which is read when torch loads)

from crepe.compose.allocation import allocate
from crepe.config import AllocationConfig, PermuteConfig, PruneConfig, RepruneConfig
from crepe.data.prepare import calibration_set, eval_set
from crepe.engine.layerwise import run_layerwise
from crepe.evaluation.perplexity import perplexity
from crepe.io.files import read_json, write_json_atomic
from crepe.io.provenance import current_command, markdown_stamp, provenance
from crepe.methods.params import CrepeParams, Pattern
from crepe.methods.sparsegpt import sparsegpt_prune
from crepe.methods.updates import (
    ADMM_ITERATIONS,
    SweepForm,
    admm_prune,
    admm_update,
    obs_update,
    sweep_prune,
)
from crepe.models.adapters import get_adapter, weight_view
from crepe.models.loading import load_model
from crepe.prune.linear import LinearSteps, prune_linear
from crepe.prune.model import prune_model

SETTINGS = ("0.5", "0.6", "0.7", "2:4", "4:8")
CELLS = ("sparsegpt", "sparsegpt+admm", "crepe+sweep", "crepe+sweep-admm", "crepe+admm-gradual", "crepe+obs",
         "crepe+admm", "crepe+none", "wanda+obs", "wanda+admm", "ria+obs", "ria+admm", "ria+none")
SECOND_TEXT = "python-reference"


def second_text_path() -> Path:
    """The CPython language reference (pydoc_data.topics, sorted topics joined by blank lines) as a
    text file: real English technical prose shipped with every Python, far from Wikipedia."""
    import pydoc_data.topics as topics
    import sys

    path = Path(tempfile.gettempdir()) / f"crepe_python_reference_{sys.version_info.major}{sys.version_info.minor}.txt"
    if not path.exists():
        path.write_text("\n\n".join(topics.topics[k] for k in sorted(topics.topics)))
    return path


def parse_setting(setting: str) -> tuple[float, Pattern]:
    pattern = Pattern.parse(setting) if ":" in setting else Pattern()
    return pattern.sparsity_or(0.0 if pattern.structured else float(setting)), pattern  # "2:4" is no float


def fixed_mask_update(update: str, cfg: PruneConfig, iterations: int):
    """The update step (unpruned weight, final mask, stats) -> new weight, or None for mask-only."""
    if update == "obs":
        return lambda w, mask, stats: obs_update(w, stats.hessian, mask, cfg.sparsegpt_blocksize, cfg.sparsegpt_damp)
    if update == "admm":
        return lambda w, mask, stats: admm_update(w, stats.hessian, mask, iterations, damp=cfg.sparsegpt_damp)
    return None


def prune(model, calib: torch.Tensor, cfg: PruneConfig, update: str, form: SweepForm,
          iterations: int) -> tuple[float, float]:
    """Prune ``model`` in place through the engine and the per-linear path: (wall, process CPU) seconds."""
    adapter = get_adapter(model)
    steps = LinearSteps(update=fixed_mask_update(update, cfg, iterations))
    needs = {"sq_sum"} | ({"hessian"} if update != "none" or cfg.method == "sparsegpt" else set())

    def callback(index, layer, linears, stats):
        for name, module in linears.items():
            weight = weight_view(module)
            hessian = stats[name].hessian
            if update == "admm-gradual":  # ADMM choosing its mask on the way by CRePE's relative importance
                params = cfg.crepe.for_projection(adapter.role(name))
                new, _ = admm_prune(weight, hessian, cfg.sparsity, cfg.pattern, params, cfg.resolved_group,
                                    damp=cfg.sparsegpt_damp)
                weight.copy_(new.to(weight.dtype))
            elif update.startswith("sweep") or cfg.method == "sparsegpt" and update == "admm":
                if cfg.method == "sparsegpt":
                    new, mask = sparsegpt_prune(weight, hessian, cfg.sparsity, cfg.pattern, cfg.sparsegpt_blocksize,
                                                cfg.sparsegpt_damp)
                else:
                    params = cfg.crepe.for_projection(adapter.role(name))
                    new, mask = sweep_prune(weight, hessian, cfg.sparsity, cfg.pattern, params, form,
                                            cfg.resolved_group, cfg.sparsegpt_blocksize, cfg.sparsegpt_damp)
                if update.endswith("admm"):  # re-solve the kept weights of that mask, from the sweep's result
                    new = admm_update(weight, hessian, mask, iterations, damp=cfg.sparsegpt_damp, init=new)
                weight.copy_(new.to(weight.dtype))
            else:
                prune_linear(weight, stats[name], cfg, role=adapter.role(name), steps=steps, name=name)
        return True

    start, cpu = time.perf_counter(), time.process_time()
    run_layerwise(model, calib, needs, callback, batch_size=8, progress=False)
    return time.perf_counter() - start, time.process_time() - cpu


COMPOSITIONS = ("permute", "owl", "dsnot")


def composed_config(cfg: PruneConfig, compose: str) -> PruneConfig:
    """``cfg`` with the composition steps named in ``compose`` (comma-separated COMPOSITIONS) turned on."""
    names = [c for c in compose.split(",") if c]
    unknown = set(names) - set(COMPOSITIONS)
    if unknown:
        raise SystemExit(f"unknown --compose {sorted(unknown)}; choose from {', '.join(COMPOSITIONS)}")
    return dataclasses.replace(cfg, permute=PermuteConfig() if "permute" in names else None,
                               allocation=AllocationConfig(method="owl") if "owl" in names else AllocationConfig(),
                               repruning=RepruneConfig() if "dsnot" in names else None)


def prune_library(model, calib: torch.Tensor, cfg: PruneConfig) -> tuple[float, float]:
    """Prune through the library's own pipeline (allocation plan, then ``prune_model`` with the steps
    the config asks for), as ``python -m crepe.prune`` does: (wall, process CPU) seconds."""
    start, cpu = time.perf_counter(), time.process_time()
    plan = allocate(model, calib, cfg.sparsity, cfg.allocation, cfg.pattern, 8)
    prune_model(model, calib, cfg, layer_sparsity=plan, batch_size=8, progress=False)
    return time.perf_counter() - start, time.process_time() - cpu


def cell_name(cell: str, setting: str, tag: str) -> str:
    return f"{cell.replace('+', '_')}__{setting.replace(':', '-')}" + (f"__{tag}" if tag else "")


def run(args: argparse.Namespace) -> None:
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, tok = load_model(args.model)
    get_adapter(model)
    dense_state = {k: v.clone() for k, v in model.state_dict().items()}
    calib, calib_spec = calibration_set(tok, args.dataset, args.nsamples, args.seqlen, 0)
    evals = {args.dataset: eval_set(tok, args.dataset, "test", args.eval_seqlen, args.max_eval_windows)}
    if not args.no_second_text:
        evals[SECOND_TEXT] = eval_set(tok, f"text:{second_text_path()}", "test", args.eval_seqlen,
                                      args.max_eval_windows)
    dense_path = out / "dense.json"
    if not dense_path.exists():
        dense = {k: perplexity(model, w, 4, progress=False) for k, (w, _) in evals.items()}
        protocols = {k: s.describe() for k, (_, s) in evals.items()}
        config = {"cell": "dense", "model": args.model, "eval": protocols}
        write_json_atomic(dense_path, {"ppl": dense, "protocol": protocols,
                                       "provenance": provenance(current_command(), config)})
    form = SweepForm(args.diag_power, args.act_power, args.row_scope)
    params = CrepeParams(alpha=args.alpha, beta=args.beta, gamma=args.gamma)
    for setting in args.settings.split(","):
        for cell in args.cells.split(","):
            path = out / (cell_name(cell, setting, args.tag) + ".json")
            if path.exists():
                continue
            method, _, update = cell.partition("+")
            sparsity, pattern = parse_setting(setting)
            cfg = PruneConfig(method=method, sparsity=sparsity, pattern=pattern,
                              crepe=params if method == "crepe" else CrepeParams())
            model.load_state_dict(dense_state)
            if args.compose:  # the library path: --update as a config field, ADMM at its default iterations
                cfg = composed_config(dataclasses.replace(cfg, update=update or None), args.compose)
                seconds, cpu_seconds = prune_library(model, calib, cfg)
            else:
                seconds, cpu_seconds = prune(model, calib, cfg, update or "none", form, args.admm_iterations)
            ppl = {k: perplexity(model, w, 4, progress=False) for k, (w, _) in evals.items()}
            config = {"cell": cell, "setting": setting, "tag": args.tag, "compose": args.compose,
                      "prune_config": cfg.to_dict(),
                      "update": update or "none", "admm_iterations": args.admm_iterations if "admm" in cell else None,
                      "sweep_form": vars(form) if update.startswith("sweep") else None,
                      "calibration": calib_spec.describe(), "model": args.model}
            protocols = {k: s.describe() for k, (_, s) in evals.items()}
            write_json_atomic(path, {"ppl": ppl, "prune_seconds": seconds, "prune_cpu_seconds": cpu_seconds,
                                     "eval": protocols,
                                     "provenance": provenance(current_command(), config)})
            figures = ", ".join(f"{k} {v:.2f}" for k, v in ppl.items())
            print(f"{path.stem}: {figures} ({seconds:.0f} s, {cpu_seconds:.0f} s CPU)", flush=True)


def _ratio(rep: dict, sgpt: dict) -> str:
    """Prune-time ratio to SparseGPT's: process CPU time, with wall time in brackets (older
    reports recorded wall time only: "wall x")."""
    wall = rep["prune_seconds"] / sgpt["prune_seconds"]
    if "prune_cpu_seconds" in rep and "prune_cpu_seconds" in sgpt:
        return f"{rep['prune_cpu_seconds'] / sgpt['prune_cpu_seconds']:.2f} ({wall:.2f})"
    return f"wall {wall:.2f}"


def _variant(config: dict) -> str:
    """What a tagged variant changes: the composition steps, else the ADMM iterations and sweep form."""
    if config.get("compose"):
        return f"composed with {config['compose']} (library pipeline)"
    return f"ADMM iterations {config.get('admm_iterations')}, sweep {config['sweep_form']}"


def table(out: Path, tag: str | None = "") -> str:
    """Markdown tables (one per eval text) of the cells of ``tag`` in ``out`` (None: every tag, a row
    per cell and tag); PPL and prune-time ratios to sparsegpt (of the same tag, else the untagged one)."""
    every = {p.stem: read_json(p) for p in sorted(out.glob("*__*.json"))}
    reports = {k: r for k, r in every.items() if tag is None or r["provenance"]["config"]["tag"] == tag}
    if not reports:
        return "no results yet"
    dense = read_json(out / "dense.json") if (out / "dense.json").exists() else {"ppl": {}}
    first = min(reports.values(), key=lambda r: r["provenance"]["date"])
    configs = [r["provenance"]["config"] for r in reports.values()]
    tags = {c["tag"]: c for c in sorted(configs, key=lambda c: c["tag"])}
    rows = [(c, t) for t in tags for c in CELLS if any((x["cell"], x["tag"]) == (c, t) for x in configs)]
    lines = [markdown_stamp(first["provenance"]) + f" ({len(reports)} cells, the earliest shown: each cell's JSON in "
             f"`{out}` records its own command and commit)", "",
             f"Calibration: {first['provenance']['config']['calibration']}."]
    lines += [f"Variant `{t}`: {_variant(c)}." for t, c in tags.items() if t]
    texts = [t for t in first["eval"] if any(t in r["ppl"] for r in reports.values())]

    def sparsegpt(setting: str, t: str) -> dict | None:
        return every.get(cell_name("sparsegpt", setting, t)) or every.get(cell_name("sparsegpt", setting, ""))

    def header() -> list[str]:
        return ["| scorer + update | " + " | ".join(SETTINGS) + " |", "|---" * (len(SETTINGS) + 1) + "|"]

    for text in texts:
        lines += ["", f"**{text}** ({first['eval'][text]}), dense {dense['ppl'].get(text, float('nan')):.2f}", "",
                  *header()]
        for cell, t in rows:
            row = [cell + (f" `{t}`" if t else "")]
            for s in SETTINGS:
                rep, sgpt = reports.get(cell_name(cell, s, t)), sparsegpt(s, t)
                if rep is None or text not in rep["ppl"]:
                    row.append("–")
                    continue
                ratio = (f" ({rep['ppl'][text] / sgpt['ppl'][text]:.3f}x)"
                         if sgpt and text in sgpt["ppl"] and rep is not sgpt else "")
                row.append(f"{rep['ppl'][text]:.2f}{ratio}")
            lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Prune time as a ratio to SparseGPT's at the same setting: process CPU time (wall time in "
              "brackets); separate processes, same machine:", "", *header()]
    for cell, t in rows:
        row = [cell + (f" `{t}`" if t else "")]
        for s in SETTINGS:
            rep, sgpt = reports.get(cell_name(cell, s, t)), sparsegpt(s, t)
            row.append(_ratio(rep, sgpt) if rep and sgpt else "–")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--cells", default=",".join(CELLS), help="scorer+update (none|obs|admm|sweep) or sparsegpt")
    ap.add_argument("--dataset", default="wikivital", help="calibration split and first eval text (test split)")
    ap.add_argument("--nsamples", type=int, default=16)
    ap.add_argument("--seqlen", type=int, default=512)
    ap.add_argument("--eval-seqlen", type=int, default=512)
    ap.add_argument("--max-eval-windows", type=int, default=24)
    ap.add_argument("--no-second-text", action="store_true", help="evaluate on the wikivital test split only")
    ap.add_argument("--out-dir", default="results/quality/c16")
    ap.add_argument("--tag", default="", help="suffix of the report names (sweep variants)")
    ap.add_argument("--compose", default="", help="prune through the library pipeline with these composition steps "
                    f"on (comma-separated: {', '.join(COMPOSITIONS)}); use with --tag")
    ap.add_argument("--admm-iterations", type=int, default=ADMM_ITERATIONS)
    ap.add_argument("--diag-power", type=float, default=SweepForm().diag_power)
    ap.add_argument("--act-power", type=float, default=SweepForm().act_power)
    ap.add_argument("--row-scope", default=SweepForm().row_scope, choices=("row", "block"))
    ap.add_argument("--alpha", type=float, default=CrepeParams().alpha)
    ap.add_argument("--beta", type=float, default=CrepeParams().beta)
    ap.add_argument("--gamma", type=float, default=CrepeParams().gamma)
    ap.add_argument("--table", action="store_true", help="only print the tables of --out-dir")
    ap.add_argument("--doc", default=None, help="also write every tag's tables of --out-dir into this markdown "
                    "file, between <!-- quality:DIR:start --> and <!-- quality:DIR:end --> (DIR: the folder name)")
    ap.add_argument("--untagged-only", action="store_true", help="--doc: write the untagged cells' tables only")
    args = ap.parse_args()
    if args.compose and args.admm_iterations != ADMM_ITERATIONS:
        raise SystemExit(f"--compose runs the library pipeline, whose ADMM runs {ADMM_ITERATIONS} iterations")
    torch.set_grad_enabled(False)
    if not args.table:
        run(args)
    print(table(Path(args.out_dir), args.tag))
    if args.doc:
        write_doc(Path(args.doc), Path(args.out_dir), args.untagged_only)


def write_doc(doc: Path, out: Path, untagged_only: bool = False) -> None:
    """Replace the generated block of ``out``'s tables (every tag, a row per cell and tag; or the
    untagged cells only) in the markdown file ``doc``."""
    body = table(out, "" if untagged_only else None)
    start, end = f"<!-- quality:{out.name}:start -->", f"<!-- quality:{out.name}:end -->"
    text = doc.read_text()
    if start not in text or end not in text:
        raise SystemExit(f"{doc} has no {start} ... {end} block")
    head, rest = text.split(start, 1)
    doc.write_text(head + start + "\n" + body + "\n" + end + rest.split(end, 1)[1])


if __name__ == "__main__":
    main()
