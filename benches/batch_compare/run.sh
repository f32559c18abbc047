#!/usr/bin/env bash
# Side-by-side benchmark of sidan's batch solver against SciPy
# (linear_sum_assignment, min_weight_full_bipartite_matching) and OR-Tools
# (SimpleMinCostFlow) on identical seeded instances. Checks that every optimum
# is equal and writes the table to docs/benchmarks.md (between the
# <!-- batch:begin --> / <!-- batch:end --> markers).
#
#   benches/batch_compare/run.sh [--quick] [--no-write] [--seed N] [--reps N] [--peer-reps N]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"

if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check numpy scipy ortools

target="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --quiet --release --example batch_timing)

# OpenBLAS picks its kernels from these; a value set for another machine
# skews SciPy, so drop them for the benchmark only.
cd "$here"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE \
    "$venv/bin/python" compare.py --timing-bin "$target/release/examples/batch_timing" "$@"
