#!/usr/bin/env bash
# Build fastmlp with AddressSanitizer and UndefinedBehaviorSanitizer and run
# tests against that build (any memory error or undefined behaviour aborts).
#   scripts/sanitize.sh                 # the whole suite
#   scripts/sanitize.sh tests/test_kernels.py -k forward
# Needs gcc (or CC) with its sanitizer runtimes, and pip access to the build
# requirements.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python -m pip wheel --no-deps -q -w "$work/wheel" \
    -C cmake.define.FASTMLP_SANITIZE=ON -C build-dir="$work/build" "$root"
python -m pip install -q --no-deps --target "$work/site" "$work"/wheel/*.whl

cc="${CC:-gcc}"
export LD_PRELOAD="$("$cc" -print-file-name=libasan.so) $("$cc" -print-file-name=libubsan.so)"
# Python itself is not built with the sanitizers: leave its leaks alone. A
# huge allocation must fail as MemoryError (as without the sanitizers).
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export PYTHONPATH="$work/site"
export FASTMLP_SANITIZED=1
cd "$root"
if [ "$#" -eq 0 ]; then set -- tests; fi
python -m pytest -p no:cacheprovider -q "$@"
