"""MAC counts of the DeiT configs under ToaSt settings, next to the figures ToaSt publishes.

    python -m benchmarks.vit_macs            # prints a table, writes results/vit/macs_deit.json
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from benchmarks.common import Table
from crepe.io.files import read_json, write_json_atomic
from crepe.io.provenance import current_command, provenance
from crepe.vit.macs import deit_spec, toast_head_keep, vit_macs

TABLES = [Table("results/vit/macs_deit.json", ("python -m benchmarks.vit_macs",))]

# (model, setting, published GMACs, kwargs for vit_macs given the spec)
CASES = [
    ("DeiT-T", "dense", 1.254, lambda s: {}),
    ("DeiT-S", "dense", 4.599, lambda s: {}),
    ("DeiT-S", "90% head-dim pruning", 3.144, lambda s: {"head_keep": toast_head_keep(s, 0.9)}),
    ("DeiT-S", "released '2.9' schedule (90% heads, fc1 0.3 on block 11, fc2 0.9 on blocks 10-11)", 2.8997,
     lambda s: {"head_keep": toast_head_keep(s, 0.9), "fc1_ratios": [0.0] * 11 + [0.3],
                "fc2_ratios": [0.0] * 10 + [0.9, 0.9]}),
    ("DeiT-B", "dense", 17.564, lambda s: {}),
]


SIZES = {"DeiT-T": "tiny", "DeiT-S": "small", "DeiT-B": "base"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("results/vit/macs_deit.json"))
    return p


def planned(argv: list[str]) -> dict[str, dict]:
    """{OUT#MODEL | SETTING: {command, config}}: the spec and the counter's arguments of every case."""
    out = build_parser().parse_args(argv).out
    return {f"{out}#{name} | {setting}": {"command": None, "config": {
        "spec": dataclasses.asdict(deit_spec(SIZES[name])), "kwargs": kwargs(deit_spec(SIZES[name]))}}
        for name, setting, _, kwargs in CASES}


def recorded(argv: list[str]) -> dict[str, dict]:
    out = build_parser().parse_args(argv).out
    if not out.is_file():
        return {}
    rec = read_json(out)
    prov = rec.get("provenance")
    return {key: {"command": prov["argv"], "config": config} for key, config in prov["config"].items()} if prov else {}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sizes = SIZES
    rows = []
    print("| model | setting | counted GMACs | published |\n|---|---|---|---|")
    for name, setting, published, kwargs in CASES:
        spec = deit_spec(sizes[name])
        counted = vit_macs(spec, **kwargs(spec)).gmacs
        rows.append({"model": name, "setting": setting, "gmacs": counted, "published": published})
        print(f"| {name} | {setting} | {counted:.4f} | {published} |")
    command = current_command()
    record = provenance(command, {k: v["config"] for k, v in planned(sys.argv[1:]).items()})
    write_json_atomic(args.out, {"script": "benchmarks.vit_macs", "rows": rows, "provenance": record})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
