"""Where every committed table under results/ comes from, and whether today's code still makes it.

For each table: the command(s) that made it (the provenance stamp of its records where they carry
one, else the command reconstructed from the script's docstring, docs/ and the arguments stored in
the records), the commit it was last written at (``git log -1``), and whether it is current: every
record's recorded config equals what its command resolves to through today's parsers and config
objects (``planned``/``recorded`` of each script; nothing is pruned). Tables known to be made under
older defaults carry a note saying under which; the test fails if such a table turns current (drop
the note) or a current one turns stale (re-run it, or add the note).

    python scripts/results_provenance.py        # writes results/PROVENANCE.md
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shlex
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from resolve_config import (  # noqa: E402
    MODULES,
    differences,
    effective,
    prune_report,
    resolve,
    split_program,
)

from crepe.io.provenance import file_commit  # noqa: E402

OLD_AUTO = ("made when `--proxy auto` meant recon (unstructured) / gini (N:M), before 067a04a made it e2e / "
            "e2e_seq; the rows are labelled by the proxy actually used; to reproduce now pass --proxy recon / gini")

MASK_ONLY = ("made when crepe's default was mask-only, before DEFAULT_UPDATE made sweep-admm (the CRePE sweep + "
             "ADMM) crepe's default update (2026-12-01); its crepe rows are the paper's mask-only CRePE: to reproduce "
             "now pass --update none")


SPEED_UPDATE = ("python scripts/bench_pho_speed.py --targets 2:4 --update sweep-admm --steps test --pho-variants mf,mf-warm "
                "--proxy e2e --pho-trials 16 --warm-start results/pho/speed/mf_2of4.json,default --paper-trials 6 "
                "--cheap-trials 10 --work-dir results/pho/speed_update --cache-root runs/pho-speed-update "
                "--out results/pho/speed_update.json")

# resolving the PHO records' commands re-reads their --params; the drop of act_power under today's default
# update is a warning for a user starting a search, not for this check or update_readme (once per record)
logging.getLogger("pho.study_cli").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Table:
    """A committed table (or record folder), the commands whose records make it, and, when it was made
    under older defaults, a note saying which."""

    path: str
    commands: tuple[str, ...]
    stale_note: str = ""
    readme: str = ""  # the README block that shows it, if any
    covers: tuple[str, ...] = ()  # glob patterns of the other committed files it accounts for

    def accounts_for(self, rel: str) -> bool:
        """Whether the committed file ``rel`` belongs to this table (itself, a same-stem file, ``covers``)."""
        stem = self.path.rsplit(".", 1)[0] if not self.path.endswith("/") else self.path
        return (rel == self.path or rel.startswith(stem + ".") or (self.path.endswith("/") and rel.startswith(self.path))
                or any(fnmatch(rel, pattern) for pattern in self.covers))


def bench_pho_commands(summary: str) -> tuple[str, ...]:
    """The bench_pho.py commands behind a summary: its stored arguments spelled out (a merge: those of
    the summaries it merged)."""
    from bench_pho import build_parser
    from resolve_config import command_from_args

    data = json.loads((ROOT / summary).read_text())
    if "provenance" in data:
        return (data["provenance"]["command"],)
    if data.get("merged_from"):
        return tuple(c for part in data["merged_from"] for c in bench_pho_commands(part))
    return (shlex.join(command_from_args(["python", "scripts/bench_pho.py"], build_parser(), data["args"])),)


def _pho(name: str, note: str = "", readme: str = "") -> Table:
    return Table(f"results/pho/{name}.md", bench_pho_commands(f"results/pho/{name}.json"), note, readme)


VARIANT_SOURCES = ("bench", "bench_s3", "bench_nogamma", "bench_e2e", "bench_e2eseq", "bench_e2e-w8_0p5",
                   "bench_e2eseq-w4")


def tables() -> list[Table]:
    """Every committed table. Commands: scripts' docstrings, docs/*.md and the stored arguments."""
    out = [
        Table("results/methods.md", ("python scripts/bench_methods.py",), MASK_ONLY, readme="methods-table",
              covers=("results/bench_methods/*",)),
        Table("results/cost.md", ("python scripts/bench_cost.py",), MASK_ONLY, readme="cost-table",
              covers=("results/cost/*",)),
        Table("results/bench_crepe_nbr/", ("python scripts/bench_methods.py --methods crepe --out-dir "
                                           "results/bench_crepe_nbr",),
              "made when CRePE's default was gamma=0.01 with k=7 (d2bbb6f, before 4305788 set gamma=0): the "
              "neighbourhood-term variant docs/crepe.md cites; to reproduce now run the crepe cells with --gamma 0.01"),
        Table("results/sweep_crepe.md", ("python scripts/sweep_crepe.py --stage2-top 2",), MASK_ONLY, readme="sweep-table"),
        Table("results/sweep_crepe_first_grid.json", (
            "python scripts/sweep_crepe.py --nsamples 32 --stage1-windows 12 --stage2-windows 32 --stage2-top 2 "
            "--out results/sweep_crepe_first_grid.json",),
              "the first grid (large gammas, 32 calibration windows), made by the candidates() of sweep_crepe.py "
              "before eb0c7d4 replaced them; kept as the record docs/crepe.md cites"),
        Table("results/compose/smollm2_small/table.md", (
            "OMP_NUM_THREADS=1 python scripts/bench_composition.py --nsamples 8 --max-eval-windows 8 "
            "--methods crepe,ria --out-dir results/compose/smollm2_small",), MASK_ONLY, readme="compose-table",
              covers=("results/compose/smollm2_small/*",)),
        Table("results/pho/proxy_validation.md", (
            "OMP_NUM_THREADS=1 python scripts/validate_pho_proxies.py --patterns unstructured,2:4,4:8",),
              readme="pho-proxy-table"),
        Table("results/pho/proxy_validation_sweep-admm.md", (  # the proxies against the PPL after crepe's update
            "python scripts/validate_pho_proxies.py --update sweep-admm --configs 16 --patterns 2:4 --strides 5 "
            "--e2e-windows '' --e2e-updates sweep --e2e-layer-strides 6",)),
        Table("results/pho/trial_cost.md", (
            "OMP_NUM_THREADS=1 python scripts/bench_pho_trial_cost.py --nsamples 8 --out results/pho/trial_cost.json",)),
        # PHO time to best vs the paper-protocol climb: the summary of the runs in results/pho/speed/ (docs/pho.md)
        Table("results/pho/speed.md", ("python scripts/bench_pho_speed.py --targets 0.5,2:4 --steps test "
                                       "--earlier-cheap 0.5=results/pho/bench/hillclimb_0p5.json",),
              readme="pho-speed-table", covers=("results/pho/speed/*",)),
        # the same under crepe's default update (sweep-admm): the runs in results/pho/speed_update/ (docs/pho.md)
        Table("results/pho/speed_update.md", (SPEED_UPDATE,), readme="pho-speed-update-table",
              covers=("results/pho/speed_update/*",)),
        _pho("bench", OLD_AUTO + " (its N:M half, bench_nm)"), _pho("bench_unstructured", MASK_ONLY), _pho("bench_nm", OLD_AUTO),
        _pho("bench_s3", OLD_AUTO), _pho("bench_nogamma", OLD_AUTO), *(_pho(name, MASK_ONLY) for name in (
            "bench_e2e", "bench_e2e_unstructured", "bench_e2e_nm", "bench_e2eseq", "bench_e2eseq_0p5",
            "bench_e2eseq_2of4", "bench_e2eseq_4of8", "bench_e2e-w8_0p5", "bench_e2eseq-w4", "bench_e2eseq-w4_0p5",
            "bench_e2eseq-w4_2of4")),
        Table("results/pho/variants.md",
              tuple(c for s in VARIANT_SOURCES for c in bench_pho_commands(f"results/pho/{s}.json")),
              "its per-linear-proxy rows (bench, bench_s3, bench_nogamma) were " + OLD_AUTO
              + "; all its rows were " + MASK_ONLY,
              readme="pho-variants-table", covers=("results/pho/bench/*",)),
        Table("results/vit/train.json", ("OMP_NUM_THREADS=1 python scripts/train_vit.py --threads 1",)),
        Table("results/vit/tables.md", ("OMP_NUM_THREADS=1 python scripts/bench_vit.py sweep --threads 1",
                                        "OMP_NUM_THREADS=1 python scripts/bench_vit.py latency --threads 1"),
              readme="vit-table", covers=("results/vit/sweep.json", "results/vit/latency.json", "results/vit/*.png")),
        Table("results/vit/macs_deit.json", ("python scripts/macs_vit.py",), readme="vit-macs-table"),
        Table("results/vit/cli.json", ("python -m crepe.vit --model ~/.cache/crepe/vit-mnist --head-sparsity 0.5 "
                                       "--fc2-ratios 0.5 --dense --report results/vit/cli.json",)),
        # stamped by their scripts (crepe.io.provenance), which have no planned()/recorded(): checked for stamps
        Table("results/quality/", ("python scripts/bench_quality.py",)),
        Table("results/scale/llama-2-7b.json", ("python scripts/bench_scale.py",), readme="scale-table",
              # variants of the run on record (e.g. without huge pages)
              covers=("results/scale/llama-2-7b_*.json", "results/scale/llama-2-7b_*.md")),
        Table("results/scale/memory.json", ("python scripts/bench_memory.py",), readme="memory-table"),
        # ecosystem (issue 13): zero-shot through crepe.prune --zeroshot, eval.speed, the PPL-vs-sparsity plot
        Table("results/zeroshot/", ("python -m crepe.prune --model smollm2-135m --sparsity 0.5 --eval-dataset none "
                                    "--zeroshot wikivital_describe --report results/zeroshot/smollm2-135m_crepe50.json",)),
        Table("results/speed/", ("python -m eval.speed",)),
        Table("results/plots/", ("python scripts/plot_ppl_sparsity.py",)),
    ]
    return out


def _library_program(program: str) -> SimpleNamespace:
    """planned/recorded for a library command that writes one report with a ``config`` entry."""
    def report(flags: list[str]) -> str:
        return str(flags[flags.index("--report") + 1])

    def recorded(flags: list[str]) -> dict:
        path = ROOT / report(flags)
        if not path.is_file():
            return {}
        rec = json.loads(path.read_text())
        return {report(flags): {"command": rec.get("provenance", {}).get("argv"),
                                "config": {"config": effective(rec["config"])}}}  # as the planned side

    return SimpleNamespace(planned=lambda flags: {report(flags): {"command": [program, *flags], "config": MODULES[
        program](flags)}}, recorded=recorded)


def program_module(program: str):
    """The module whose ``planned``/``recorded`` describe a command's records."""
    if program in MODULES:
        return _library_program(program)
    return importlib.import_module(Path(program).stem)


@dataclass
class Check:
    table: Table
    planned: int = 0
    records: int = 0
    differences: dict[str, list[str]] = field(default_factory=dict)
    resolvable: bool = True  # False: its script has no planned(); only the stamps are checked

    @property
    def stale(self) -> bool:
        return bool(self.differences)


@contextmanager
def _in_root():
    """The scripts name their records relative to the repository root, as their commands are run."""
    old = os.getcwd()
    os.chdir(ROOT)
    try:
        yield
    finally:
        os.chdir(old)


def check(table: Table) -> Check:
    """Compare every record of ``table`` with what its command resolves to now (and, where a record
    carries its own command, with what that command resolves to)."""
    with _in_root():
        return _check(table)


def committed_json(folder: str) -> list[str]:
    """The JSON files git tracks under ``folder`` (all on disk outside a git checkout): another
    helper's uncommitted work in progress is not a committed result."""
    listed = subprocess.run(["git", "ls-files", "--", folder], cwd=ROOT, capture_output=True, text=True, check=False)
    if listed.returncode == 0:
        return sorted(f for f in listed.stdout.split() if f.endswith(".json"))
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / folder).rglob("*.json"))


def _stamped_only(table: Table, result: Check) -> Check:
    """A folder of records whose script has no ``planned``: each must carry a provenance stamp, and one
    made by a library command (``crepe.prune``...) must still resolve to its recorded config."""
    result.resolvable = False
    for rel in committed_json(table.path):
        path = ROOT / rel
        result.records += 1
        prov = json.loads(path.read_text()).get("provenance")
        if not prov:
            result.differences[rel] = ["carries no provenance"]
        elif split_program(prov["argv"])[0] in MODULES and split_program(prov["argv"])[0] != "crepe.vit":
            own = differences((prune_report(path) or {}).get("config", {}), resolve(prov["argv"]))
            result.differences.update({rel: own} if own else {})
    return result


def _check(table: Table) -> Check:
    result = Check(table)
    if not hasattr(program_module(split_program(shlex.split(table.commands[0]))[0]), "planned"):
        return _stamped_only(table, result)
    for command in table.commands:
        program, flags = split_program(shlex.split(command))
        module = program_module(program)
        plan, rec = module.planned(flags), module.recorded(flags)
        result.planned += len(plan)
        result.records += len(rec)
        for key, record in rec.items():
            diff = (differences(record["config"], plan[key]["config"]) if key in plan
                    else ["not made by this command any more"])
            own = record.get("command")
            if own and split_program(own)[0] in MODULES and split_program(own)[0] != "crepe.vit":
                diff += [f"own command: {d}" for d in differences(record["config"], resolve(own))]
            if diff:
                result.differences[key] = diff
    return result


def markdown(checks: list[Check]) -> str:
    lines = ["# Provenance of the committed results", "",
             "Written by `python scripts/results_provenance.py`; checked by tests/test_results_provenance.py. "
             "*current*: every record's config equals what its command resolves to with today's code; "
             "**stale**: made under older defaults (which, and the first differences, are given).", "",
             "| table | command(s) | last written at | records | status |", "|---|---|---|---|---|"]
    for c in checks:
        t = c.table
        commands = "<br>".join(f"`{cmd}`" for cmd in t.commands)
        status = "current"
        if c.stale:
            first = next(iter(c.differences.items()))
            note = t.stale_note or "no note says under which defaults it was made"
            status = (f"**stale**: {note}. {len(c.differences)} of {c.records} records "
                      f"differ, e.g. `{first[0]}`: {'; '.join(first[1][:2])}")
        if not c.resolvable and not c.stale:
            status = "stamped (its script has no planned(): the stamps are checked, the configs not re-resolved)"
        planned = c.planned if c.resolvable else c.records
        lines.append(f"| {t.path} | {commands} | {file_commit(ROOT / t.path, ROOT)} | {c.records} of {planned} "
                     f"| {status} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    text = markdown([check(t) for t in tables()])
    (ROOT / "results" / "PROVENANCE.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
