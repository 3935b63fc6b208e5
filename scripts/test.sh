#!/usr/bin/env bash
# The README's test command: installs what it needs, builds the ASan+UBSan test build and runs
# every test (unit, integration with real processes, brief fuzz replays). Long fuzzing and
# benchmarks are separate (scripts/fuzz.sh, scripts/bench.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
build=build/test
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DENCLAVE_SANITIZE=ON -DENCLAVE_BENCH=OFF >/dev/null
cmake --build "$build"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" --timeout 600 "$@"
