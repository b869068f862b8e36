"""Small documented sweep that chooses CRePE's default configuration, on the VALIDATION split.

Stage 1 (cheap): input statistics are collected once from the dense model; every candidate
config prunes one-shot with them and is scored by validation PPL on a few windows.
Later patterns only re-run the best --followup-top configs of the first one.
Stage 2 (faithful): the best stage-1 configs and RIA are pruned with the real sequential
engine and scored on more validation windows. The test split is never touched here.
Results go to one JSON (resumable: finished entries are skipped when re-run).

    python -m benchmarks.sweep_crepe --out results/sweep_crepe.json
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import sys
import time
from pathlib import Path

from benchmarks.resolve import effective
from crepe.config import PruneConfig
from crepe.data.prepare import calibration_set, eval_set
from crepe.evaluation.perplexity import perplexity
from crepe.io.files import read_json, write_json_atomic
from crepe.io.provenance import current_command, markdown_stamp, provenance
from crepe.methods.params import CrepeParams, Pattern
from crepe.models.adapters import model_target
from crepe.models.loading import load_model
from crepe.prune.cached import collect_input_stats, prune_from_stats
from crepe.prune.model import prune_model
from crepe.run.options import RunOptions, default_of

log = logging.getLogger("sweep_crepe")


def candidates() -> list[tuple[str, PruneConfig]]:
    """(label, config) pairs; sparsity/pattern are filled in per pattern.

    Scale matters: unscaled, A/boxsum(A) is ~1/k^2 while RIA's terms are ~1/C_in, so gamma >= 0.5
    drowns the row/column terms (results/sweep_crepe_first_grid.json: validation PPL 60.9 vs RIA 40.4 at 50%), and
    dividing every term by its mean changes RIA's row/column balance (worse here). Hence small
    unscaled gammas.
    """
    def crepe(**values) -> PruneConfig:  # every field explicit: labels must not follow CrepeParams defaults
        base = dict(alpha=1.0, beta=1.0, gamma=0.0, kernel=3, act_power=1.0, nbr_form="relative", padding="zero",
                    term_scale="none")
        return PruneConfig(method="crepe", crepe=CrepeParams(**{**base, **values}))

    out = [("wanda", PruneConfig(method="wanda")), ("ria", PruneConfig(method="ria"))]
    for a in (0.5, 0.75, 1.0):
        out.append((f"crepe a={a} g=0", crepe(act_power=a)))
    out.append(("crepe a=1.0 g=0 mean-scaled", crepe(term_scale="mean")))
    out.append(("crepe a=1.0 k=3 g=0.25 mean-scaled", crepe(kernel=3, gamma=0.25, term_scale="mean")))
    # unscaled, gamma sized against RIA's terms: gamma/k^2 vs ~1/C_in (C_in = 576 or 1536 here)
    for k, g in ((3, 0.003), (3, 0.01), (7, 0.01), (7, 0.03)):
        out.append((f"crepe a=1.0 k={k} g={g}", crepe(kernel=k, gamma=g)))
    return out


def with_pattern(cfg: PruneConfig, pattern: Pattern) -> PruneConfig:
    sparsity = pattern.sparsity_or(0.5)
    return dataclasses.replace(cfg, pattern=pattern, sparsity=sparsity)


def markdown(results: dict) -> str:
    """Both stages as markdown tables (validation PPL; lower is better)."""
    lines = [f"Stage 1 (one-shot, dense statistics): {results['protocol']['stage1']}", "",
             "| pattern | config | val PPL |", "|---|---|---|"]
    lines += [f"| {k.split(' | ')[0]} | {k.split(' | ')[1]} | {v['val_ppl']:.3f} |" for k, v in results["stage1"].items()]
    lines += ["", f"Stage 2 (sequential engine): {results['protocol']['stage2']}", "",
              "| pattern | config | val PPL | prune s |", "|---|---|---|---|"]
    lines += [f"| {k.split(' | ')[0]} | {k.split(' | ')[1]} | {v['val_ppl']:.3f} | {v['prune_seconds']:.0f} |"
              for k, v in results["stage2"].items()]
    if "chosen" in results:
        c = results["chosen"]
        lines += ["", f"Chosen default: **{c['label']}** (mean log PPL ratio vs RIA {c['mean_log_ppl_ratio_vs_ria']:+.4f})"]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--patterns", default="unstructured,2:4")
    ap.add_argument("--nsamples", type=int, default=default_of(RunOptions, "nsamples"))
    ap.add_argument("--seqlen", type=int, default=default_of(RunOptions, "seqlen"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stage1-windows", type=int, default=8)
    ap.add_argument("--stage2-windows", type=int, default=24)
    ap.add_argument("--stage2-top", type=int, default=1)
    ap.add_argument("--followup-top", type=int, default=4, help="configs carried from the first pattern to the others")
    ap.add_argument("--out", default="results/sweep_crepe.json")
    return ap


def planned(argv: list[str]) -> dict[str, dict]:
    """``OUT#stageN/PATTERN | LABEL`` -> {command, config it resolves to now} of every entry this command
    may write (stage 2 runs a subset, chosen from stage 1's figures)."""
    args = build_parser().parse_args(argv)
    run = {"model": args.model, "nsamples": args.nsamples, "seqlen": args.seqlen, "seed": args.seed}
    out = {}
    for stage in (1, 2):
        for pattern in args.patterns.split(","):
            for label, cfg in candidates():
                config = effective(with_pattern(cfg, Pattern.parse(pattern)).to_dict())
                out[f"{args.out}#stage{stage}/{pattern} | {label}"] = {"command": None, "config": {
                    "config": config, "run": {**run, "windows": getattr(args, f"stage{stage}_windows")}}}
    return out


def recorded(argv: list[str]) -> dict[str, dict]:
    args = build_parser().parse_args(argv)
    if not Path(args.out).is_file():
        return {}
    results = read_json(args.out)
    s = results.get("provenance", {}).get("config", {}).get("settings") or results["settings"]
    run = {"model": s["model"], "nsamples": s["nsamples"], "seqlen": s["seqlen"], "seed": s["seed"]}
    return {f"{args.out}#{stage}/{key}": {"command": results.get("provenance", {}).get("argv"), "config": {
        "config": effective(entry["config"]), "run": {**run, "windows": s[f"{stage}_windows"]}}}
        for stage in ("stage1", "stage2") for key, entry in results[stage].items()}


def main() -> None:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    out = Path(args.out)
    results = read_json(out) if out.exists() else {"settings": vars(args), "stage1": {}, "stage2": {}}
    model, tok = load_model(args.model)
    calib, _ = calibration_set(tok, "wikivital", args.nsamples, args.seqlen, args.seed)
    val1, spec1 = eval_set(tok, "wikivital", "validation", args.seqlen, args.stage1_windows)
    val2, spec2 = eval_set(tok, "wikivital", "validation", args.seqlen, args.stage2_windows)
    results["protocol"] = {"stage1": spec1.describe(), "stage2": spec2.describe()}
    command = current_command()
    results["provenance"] = provenance(command, {"settings": vars(args), "entries": {
        k: v["config"] for k, v in planned(sys.argv[1:]).items()}})
    target = model_target(model)
    snapshot = target.snapshot()
    stats = None
    patterns = [Pattern.parse(p) for p in args.patterns.split(",")]
    cands = candidates()

    for index, pattern in enumerate(patterns):
        todo = cands
        if index > 0:  # later patterns: only the best configs of the first pattern (and the baselines)
            first = sorted((results["stage1"][f"{patterns[0]} | {label}"]["val_ppl"], label)
                           for label, _ in cands if label.startswith("crepe"))
            keep = {label for _, label in first[: args.followup_top]}
            todo = [(label, c) for label, c in cands if not label.startswith("crepe") or label in keep]
        for label, base in todo:
            key = f"{pattern} | {label}"
            if key in results["stage1"]:
                continue
            stats = stats or collect_input_stats(model, calib)
            cfg = with_pattern(base, pattern)
            prune_from_stats(model, stats, cfg)
            ppl = perplexity(model, val1, progress=False)
            target.restore(snapshot)
            results["stage1"][key] = {"config": cfg.to_dict(), "val_ppl": ppl}
            write_json_atomic(out, results)
            log.info("stage1 %-50s val PPL %.3f", key, ppl)

    # stage 2 candidates: best mean log validation PPL over the patterns in stage 1
    ranked = sorted((sum(math.log(results["stage1"][f"{p} | {label}"]["val_ppl"]) for p in patterns), label)
                    for label, _ in cands if label.startswith("crepe")
                    and all(f"{p} | {label}" in results["stage1"] for p in patterns))
    chosen = [label for _, label in ranked[: args.stage2_top]]
    with_nbr = [label for _, label in ranked if dict(cands)[label].crepe.gamma > 0]
    if with_nbr and with_nbr[0] not in chosen:  # always test the best neighbourhood config faithfully
        chosen.append(with_nbr[0])
    chosen.append("ria")
    for pattern in patterns:
        for label in chosen:
            key = f"{pattern} | {label}"
            if key in results["stage2"]:
                continue
            cfg = with_pattern(dict(cands)[label], pattern)
            start = time.perf_counter()
            prune_model(model, calib, cfg, progress=False)
            seconds = time.perf_counter() - start
            ppl = perplexity(model, val2, progress=False)
            target.restore(snapshot)
            results["stage2"][key] = {"config": cfg.to_dict(), "val_ppl": ppl, "prune_seconds": seconds}
            write_json_atomic(out, results)
            log.info("stage2 %-50s val PPL %.3f", key, ppl)

    # the default: best mean log-PPL ratio to RIA over the patterns, among crepe configs run in stage 2
    scores = {}
    for label, _ in cands:
        keys = [f"{p} | {label}" for p in patterns]
        if label.startswith("crepe") and all(k in results["stage2"] for k in keys):
            scores[label] = sum(math.log(results["stage2"][k]["val_ppl"] / results["stage2"][f"{p} | ria"]["val_ppl"])
                                for k, p in zip(keys, patterns)) / len(patterns)
    if scores:
        best = min(scores, key=scores.get)
        results["chosen"] = {"label": best, "mean_log_ppl_ratio_vs_ria": scores[best],
                             "crepe": dataclasses.asdict(dict(cands)[best].crepe)}
        log.info("chosen default: %s (mean log PPL ratio vs RIA %.4f)", best, scores[best])
    write_json_atomic(out, results)
    out.with_suffix(".md").write_text(markdown_stamp(results["provenance"]) + "\n\n" + markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
