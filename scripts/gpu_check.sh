#!/usr/bin/env bash
# The one-command GPU check: a fresh venv under $OUT (it also sees the machine's own packages, so a CUDA
# torch already there is reused, not downloaded), this package and the offline assets installed into it by
# scripts/install.sh, then python -m benchmarks.gpu_check: a 7B-shaped checkpoint pruned streamed on the
# GPU with the default update and with --update none, eval.speed dense against 2:4, all as JSON under $OUT.
#   bash scripts/gpu_check.sh                          # JSON under ./gpu_check_out (or $OUT)
#   bash scripts/gpu_check.sh --nsamples 32            # options go to benchmarks/gpu_check.py (--help)
# Without CUDA it runs the CPU-sized variant (a tiny shape, few tokens), as CI does.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$PWD/gpu_check_out}
mkdir -p "$out"
python3 -m venv --system-site-packages "$out/venv"
# shellcheck disable=SC1091
source "$out/venv/bin/activate"
start=$SECONDS
bash scripts/install.sh
python -m benchmarks.gpu_check --out "$out" --install-seconds $((SECONDS - start)) "$@"
