"""Rank correlation (Spearman rho) of each PHO proxy with real validation perplexity.

Protocol (printed at start and stored in the JSON): RIA's point plus ``--configs`` random points of
the default PHO search space (seeded ``torch.Generator``; log-uniform alpha/beta/gamma, uniform r and
activation exponent), the same points for every pattern. Each config is evaluated twice from the
SAME cached dense statistics: (1) every proxy, averaged over all decoder linears (the PHO trial);
(2) one-shot pruning with those statistics, then perplexity on the first ``--val-windows`` windows
of the VALIDATION split (the test split is never read). Both are timed. rho is computed with
scipy.stats.spearmanr over all evaluated configs of a pattern. Resumable: finished entries are kept.

With ``--update U`` (e.g. sweep-admm; not admm-grad, which reads no CRePE parameter) the PPL side
prunes with that weight update (one-shot, from cached dense Hessians), ``e2e`` runs it too, and
``e2e/none`` is the mask-only e2e; the per-linear proxies still score the masks (they cannot see an update): the question is which
proxy still ranks the configs by the PPL that the update leaves; ``ppl/none`` is each config's PPL
without the update, read from the mask-only run's JSON in ``--out-dir`` where it has the same point.
``out_error`` (and ``out_error@sK``) is the per-linear proxy that runs the update; ``--e2e-updates U``
adds ``e2e/U``, e2e under a cheaper update U, to see whether a trial could run U instead;
``--e2e-layer-strides K`` adds ``e2e@lK``, e2e with only every K-th decoder layer pruned.
Written to ``proxy_validation_U.json/.md/.png``.

    OMP_NUM_THREADS=1 python -m benchmarks.pho_proxies --patterns unstructured,2:4
    python -m benchmarks.pho_proxies --update sweep-admm --configs 16 --patterns 2:4 --strides 5 \
        --e2e-windows "" --e2e-updates sweep --e2e-layer-strides 6
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import sys
import time
from pathlib import Path

import torch

from benchmarks.common import Table
from crepe.data.prepare import eval_set
from crepe.io.environment import versions
from crepe.io.files import read_json, write_json_atomic
from crepe.io.provenance import current_command, markdown_stamp, provenance
from crepe.methods.params import Pattern
from crepe.run.options import RunOptions, default_of
from pho.objective import (
    EndToEndProxy,
    PplObjective,
    base_config,
    proxy_values,
    with_params,
)
from pho.proxies import MASK_PROXIES, PROXIES, get_proxy
from pho.space import SearchSpace
from pho.workspace import SetupConfig, open_workspace

TABLES = [Table("results/pho/proxy_validation.md", ("OMP_NUM_THREADS=1 python -m benchmarks.pho_proxies --patterns unstructured,2:4,4:8",))]

log = logging.getLogger("validate_pho_proxies")
NEAR = 1.2
E2E_WINDOWS = get_proxy("e2e").windows
AFTER = "out_error"  # the per-linear proxy that sees the update (run with it under --update)
TRIAL_PROXIES = ("recon", "gini")  # what a PHO trial computes by default (auto); also timed alone and strided


def mask_only(cfg):
    """``cfg`` without its weight update: what the per-linear proxies score."""
    return dataclasses.replace(cfg, update="none")


def points(space: SearchSpace, count: int, seed: int) -> list[tuple[str, dict]]:
    generator = torch.Generator().manual_seed(seed)
    return [("ria", space.ria_point())] + [(f"random-{i}", space.sample(generator)) for i in range(count)]


def proxy_names(results: dict) -> list[str]:
    """The proxies every config holds: those of PROXIES, then estimates such as recon@s3 or e2e@w2."""
    rows = list(results["configs"].values())
    held = set.intersection(*(set(r["proxies"]) for r in rows)) if rows else set()
    return [p for p in PROXIES if p in held] + sorted(held - set(PROXIES))


def spearman_table(results: dict, patterns: list[str], near: float | None = None) -> dict:
    """rho per proxy and pattern; with ``near``, only configs whose PPL is <= near x RIA's (the
    region a search has to rank well)."""
    from scipy.stats import spearmanr

    table = {}
    for pattern in patterns:
        rows = [r for r in results["configs"].values() if r["pattern"] == pattern]
        ria = [r["val_ppl"] for r in rows if r["label"] == "ria"]
        if near is not None and ria:
            rows = [r for r in rows if r["val_ppl"] <= near * ria[0]]
        if len(rows) < 3:
            continue
        ppl = [r["val_ppl"] for r in rows]
        table[pattern] = {"n_configs": len(rows)}
        for name in proxy_names(results):
            rho, p = spearmanr([r["proxies"][name] for r in rows], ppl)
            table[pattern][name] = {"rho": None if math.isnan(rho) else float(rho), "p": None if math.isnan(p) else float(p)}
    return table


def markdown(results: dict) -> str:
    names = proxy_names(results)
    lines = [f"Protocol: {results['protocol']['summary']}", "",
             "| pattern | configs | " + " | ".join(f"rho({p}, PPL)" for p in names) + " |",
             "|---|---|" + "---|" * len(names)]
    for pattern, row in results["spearman"].items():
        cells = [f"{row[p]['rho']:+.3f} (p={row[p]['p']:.2g})" if row[p]["rho"] is not None else "n/a" for p in names]
        lines.append(f"| {pattern} | {row['n_configs']} | " + " | ".join(cells) + " |")
        near = results.get("spearman_near_ria", {}).get(pattern)
        if near:
            cells = [f"{near[p]['rho']:+.3f} (p={near[p]['p']:.2g})" if near[p]["rho"] is not None else "n/a" for p in names]
            lines.append(f"| {pattern}, only PPL <= {NEAR} x RIA | {near['n_configs']} | " + " | ".join(cells) + " |")
    t = results["timing"]
    alone = ", ".join(f"{key.replace('@s', ' at layer stride ')} {v:.2f}" for key, v in t.get("trial_seconds", {}).items())
    lines += ["", (f"Mean seconds per config: all four proxies {t['proxy_seconds']:.1f}, one-shot prune + PPL "
              f"{t['ppl_seconds']:.1f}" + (f"; one proxy alone (what a PHO trial computes): {alone}" if alone else "")
              + f" (machine shared with other jobs; OMP threads {results['versions']['threads']}).")]
    return "\n".join(lines) + "\n"


def scatter(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = proxy_names(results)
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.6))
    for ax, name in zip(axes, names):
        for pattern, marker in zip(results["spearman"], "os^v"):
            rows = [r for r in results["configs"].values() if r["pattern"] == pattern]
            ax.scatter([r["proxies"][name] for r in rows], [r["val_ppl"] for r in rows], marker=marker, alpha=0.7,
                       label=f"{pattern} (rho={results['spearman'][pattern][name]['rho'] or float('nan'):+.2f})")
            ria = [r for r in rows if r["label"] == "ria"]
            ax.scatter([r["proxies"][name] for r in ria], [r["val_ppl"] for r in ria], marker="*", s=160, c="k")
        ax.set_yscale("log")
        ax.set_xlabel(name)
        ax.set_ylabel("validation PPL (one-shot)")
        ax.legend(fontsize=7)
    fig.suptitle("PHO proxies vs validation PPL, SmolLM2-135M (star = RIA)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--patterns", default="unstructured,2:4")
    ap.add_argument("--sparsity", type=float, default=0.5, help="sparsity of the unstructured pattern")
    ap.add_argument("--configs", type=int, default=16, help="random configs (RIA's point is added)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dataset", default="wikivital")
    ap.add_argument("--nsamples", type=int, default=default_of(RunOptions, "nsamples"))
    ap.add_argument("--seqlen", type=int, default=default_of(RunOptions, "seqlen"))
    ap.add_argument("--cache-dir", default="", help="statistics cache (default $CREPE_CACHE/pho)")
    ap.add_argument("--val-windows", type=int, default=8)
    ap.add_argument("--update", default="none", help="weight update of the PPL side and of e2e (none: mask-only)")
    ap.add_argument("--skip-e2e-update", action="store_true", help="with --update: only the mask-only e2e/none, not "
                    "e2e with the update (which costs one more pruning with the update per config)")
    ap.add_argument("--e2e-updates", default="", help="with --update: cheaper updates under which e2e is also "
                    "evaluated (e2e/U, e.g. sweep: the sweep without ADMM), to rank what --update leaves")
    ap.add_argument("--e2e-layer-strides", default="", help="layer strides K at which e2e is also evaluated with "
                    "only every K-th decoder layer pruned (e2e@lK; the others dense)")
    ap.add_argument("--val-seqlen", type=int, default=512)
    ap.add_argument("--out-dir", default="results/pho")
    ap.add_argument("--strides", default="3", help="layer strides K > 1 at which recon and gini alone are also "
                    "evaluated and timed (recon@sK: every K-th linear); added to finished configs without new PPLs")
    ap.add_argument("--e2e-windows", default="2", help=f"calibration window counts at which e2e is also evaluated "
                    f"(e2e@wN; e2e itself uses {E2E_WINDOWS}, the pho.search default)")
    return ap


def _setup(args: argparse.Namespace) -> SetupConfig:
    return SetupConfig(model=args.model, dataset=args.dataset, nsamples=args.nsamples, seqlen=args.seqlen,
                       seed=args.seed, cache_dir=args.cache_dir)


def planned(argv: list[str]) -> dict[str, dict]:
    """``JSON#PATTERN | LABEL`` -> {command, config it resolves to now}: the point evaluated, the target,
    the setup, the search space and the validation protocol. No model is loaded."""
    args = build_parser().parse_args(argv)
    space = SearchSpace()
    common = {"setup": dataclasses.asdict(_setup(args)), "space": space.to_dict(),
              "val": {"windows": args.val_windows, "seqlen": args.val_seqlen}}
    json_path = output_path(args)
    return {f"{json_path}#{pattern} | {label}": {"command": None, "config": {
        **common, "point": point, "sparsity": args.sparsity if pattern == "unstructured" else None,
        **({"update": args.update} if args.update != "none" else {})}}
        for pattern in args.patterns.split(",") for label, point in points(space, args.configs, args.seed)}


def recorded(argv: list[str]) -> dict[str, dict]:
    args = build_parser().parse_args(argv)
    json_path = output_path(args)
    if not json_path.is_file():
        return {}
    results = read_json(json_path)
    proto, prov = results["protocol"], results.get("provenance", {})
    common = {"setup": proto["setup"], "space": proto["space"],
              "val": {"windows": proto["args"]["val_windows"], "seqlen": proto["args"]["val_seqlen"]}}
    return {f"{json_path}#{key}": {"command": prov.get("argv"), "config": {
        **common, "point": row["point"],
        "sparsity": proto["args"]["sparsity"] if row["pattern"] == "unstructured" else None,
        **({"update": proto["args"]["update"]} if proto["args"].get("update", "none") != "none" else {})}}
        for key, row in results["configs"].items()}


def attach_mask_only_ppl(results: dict, mask_only: Path) -> None:
    """Under an update: each config's validation PPL without it (the mask-only run's, same point) as the
    pseudo-proxy ``ppl/none``, so the table shows whether the masks' order carries over to the update's."""
    if not mask_only.exists():
        return
    before = read_json(mask_only)["configs"]
    for key, row in results["configs"].items():
        if key in before and before[key]["point"] == row["point"]:
            row["proxies"]["ppl/none"] = before[key]["val_ppl"]


def output_path(args: argparse.Namespace) -> Path:
    """The results JSON: proxy_validation.json (mask-only), proxy_validation_UPDATE.json with an update."""
    return Path(args.out_dir) / ("proxy_validation.json" if args.update == "none" else
                                 f"proxy_validation_{args.update}.json")


def main() -> None:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    json_path = output_path(args)
    results = read_json(json_path) if json_path.exists() else {"configs": {}}
    setup = _setup(args)
    command = current_command()
    results["provenance"] = provenance(command, {k: v["config"] for k, v in planned(sys.argv[1:]).items()})
    ws = open_workspace(setup, progress=False, hessian=args.update != "none")
    val, spec = eval_set(ws.tokenizer, setup.dataset, "validation", args.val_seqlen, args.val_windows, ws.bos_per_window)
    space = SearchSpace()
    note = " (4-bit GGUF weights dequantised to fp32)" if args.model == "smollm2-135m" else ""
    summary = (f"model={args.model}{note} calibration={setup.dataset} nsamples={setup.nsamples} "
               f"seqlen={setup.seqlen} seed={setup.seed} x_tokens={setup.x_tokens}; PPL: one-shot prune"
               + (f" with the {args.update} weight update ({'' if args.skip_e2e_update else 'e2e too; '}e2e/none: "
                  "the mask-only e2e; e2e/U: e2e under the update U; e2e@lK: e2e with every K-th decoder layer pruned; out_error: the per-linear output error after "
                  "the update; the other per-linear proxies: the masks)" if args.update != "none" else "") + f", {spec.describe()}; "
               f"configs: RIA + {args.configs} random points of the default space (generator seed {args.seed})")
    print("protocol:", summary, flush=True)
    results.update({"protocol": {"summary": summary, "eval": spec.describe(), "setup": dataclasses.asdict(setup),
                                 "space": space.to_dict(), "args": vars(args)}, "versions": versions()})
    ppl = PplObjective(ws.model, ws.data, val)
    patterns = args.patterns.split(",")
    for pattern in patterns:
        pat = Pattern.parse(pattern)
        target = base_config(pat.sparsity_or(args.sparsity), pat, args.update)
        for label, point in points(space, args.configs, args.seed):
            key = f"{pattern} | {label}"
            if key in results["configs"]:
                continue
            cfg = with_params(target, space.to_crepe(point))
            start = time.perf_counter()
            proxies = proxy_values(ws.linears, ws.data, mask_only(cfg), list(MASK_PROXIES))
            mid = time.perf_counter()
            value, realised = ppl(cfg)
            results["configs"][key] = {"pattern": pattern, "label": label, "point": point, "proxies": proxies.values,
                                       "val_ppl": value, "realised_sparsity": realised,
                                       "proxy_seconds": mid - start, "ppl_seconds": time.perf_counter() - mid}
            write_json_atomic(json_path, results)
            log.info("%-28s PPL %8.3f  %s", key, value, {k: round(v, 5) for k, v in proxies.values.items()})
    strides = [int(k) for k in args.strides.split(",") if k]
    if any(k < 2 for k in strides):
        raise SystemExit("--strides takes layer strides >= 2 (stride 1 is the proxy itself)")
    for key, row in results["configs"].items():
        seconds = row.setdefault("trial_seconds", {})
        if row["pattern"] not in patterns or all(f"{n}@s{k}" in seconds for n in TRIAL_PROXIES for k in strides):
            continue
        pat = Pattern.parse(row["pattern"])
        cfg = with_params(base_config(pat.sparsity_or(args.sparsity), pat, "none"), space.to_crepe(row["point"]))
        for name in TRIAL_PROXIES:
            for k in strides:
                start = time.perf_counter()
                value = proxy_values(ws.linears, ws.data, cfg, [name], layer_stride=k).values[name]
                seconds[f"{name}@s{k}"] = time.perf_counter() - start
                row["proxies"][f"{name}@s{k}"] = value
        write_json_atomic(json_path, results)
    if args.update != "none":  # out_error sees the update: on every linear, and on every K-th
        for key, row in results["configs"].items():
            seconds = row.setdefault("trial_seconds", {})
            names = {1: AFTER, **{k: f"{AFTER}@s{k}" for k in strides}}
            if row["pattern"] not in patterns or all(name in seconds for name in names.values()):
                continue
            pat = Pattern.parse(row["pattern"])
            cfg = with_params(base_config(pat.sparsity_or(args.sparsity), pat, args.update), space.to_crepe(row["point"]))
            for k, name in names.items():
                start = time.perf_counter()
                row["proxies"][name] = proxy_values(ws.linears, ws.data, cfg, [AFTER], layer_stride=k).values[AFTER]
                seconds[name] = time.perf_counter() - start
            write_json_atomic(json_path, results)
            log.info("%-28s %s", key, {name: round(row["proxies"][name], 5) for name in names.values()})
    windows = sorted({E2E_WINDOWS, *(int(k) for k in args.e2e_windows.split(",") if k)})
    layer_strides = [int(k) for k in args.e2e_layer_strides.split(",") if k]
    e2e = {(n, 1): EndToEndProxy(ws.model, ws.data, ws.calib[:n]) for n in windows}
    e2e.update({(E2E_WINDOWS, k): EndToEndProxy(ws.model, ws.data, ws.calib[:E2E_WINDOWS], layer_stride=k)
                for k in layer_strides})
    names = {} if args.update != "none" and args.skip_e2e_update else {
        (n, args.update, 1): "e2e" if n == E2E_WINDOWS else f"e2e@w{n}" for n in windows}
    names.update({(E2E_WINDOWS, args.update, k): f"e2e@l{k}" for k in layer_strides})
    if args.update != "none":  # the mask-only e2e too: does it still rank what the update leaves?
        names[(E2E_WINDOWS, "none", 1)] = "e2e/none"
        names.update({(E2E_WINDOWS, u, 1): f"e2e/{u}" for u in args.e2e_updates.split(",") if u})
    for key, row in results["configs"].items():
        seconds = row.setdefault("trial_seconds", {})
        if row["pattern"] not in patterns or all(name in seconds for name in names.values()):
            continue
        pat = Pattern.parse(row["pattern"])
        for (n, update, k), name in names.items():
            if name in seconds:  # resumed: only what this row lacks
                continue
            cfg = with_params(base_config(pat.sparsity_or(args.sparsity), pat, update), space.to_crepe(row["point"]))
            start = time.perf_counter()
            row["proxies"][name] = e2e[(n, k)](cfg).values["e2e"]
            seconds[name] = time.perf_counter() - start
        write_json_atomic(json_path, results)
        log.info("%-28s e2e %s", key, {name: round(row["proxies"][name], 4) for name in names.values()})
    rows = [r for r in results["configs"].values() if r["pattern"] in patterns]
    results["timing"] = {"proxy_seconds": sum(r["proxy_seconds"] for r in rows) / len(rows),
                         "ppl_seconds": sum(r["ppl_seconds"] for r in rows) / len(rows),
                         "trial_seconds": {key: sum(r["trial_seconds"][key] for r in rows) / len(rows)
                                           for key in rows[0]["trial_seconds"]}}
    if args.update != "none":
        attach_mask_only_ppl(results, Path(args.out_dir) / "proxy_validation.json")
    results["spearman"] = spearman_table(results, patterns)
    results["spearman_near_ria"] = spearman_table(results, patterns, near=NEAR)
    write_json_atomic(json_path, results)
    json_path.with_suffix(".md").write_text(markdown_stamp(results["provenance"]) + "\n\n" + markdown(results))
    scatter(results, json_path.with_suffix(".png"))
    print(markdown(results))


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
