#!/usr/bin/env bash
# Longer fuzzing, on demand: builds every fuzz target with clang and libFuzzer (ASan + UBSan)
# and runs each for SECONDS (default 60) on a scratch copy of its corpus. New inputs that
# reach new code are left in build/fuzz/corpus/NAME; copy the interesting ones into
# tests/fuzz/corpus/NAME so the test suite replays them.
#   ./scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
seconds=${1:-60}
shift || true
build=build/fuzz
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DENCLAVE_FUZZ=ON -DENCLAVE_SANITIZE=ON -DENCLAVE_TESTS=ON -DENCLAVE_BENCH=OFF >/dev/null
targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in tests/fuzz/fuzz_*.cpp; do targets+=("$(basename "${f%.cpp}" | sed 's/^fuzz_//')"); done
fi
for t in "${targets[@]}"; do
  cmake --build "$build" --target "fuzz_$t"
  mkdir -p "$build/corpus/$t"
  cp -n tests/fuzz/corpus/"$t"/* "$build/corpus/$t/" 2>/dev/null || true
  echo "== fuzz_$t for ${seconds}s"
  "$build/bin/fuzz_$t" -max_total_time="$seconds" -print_final_stats=1 "$build/corpus/$t"
done
