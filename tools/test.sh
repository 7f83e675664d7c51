#!/bin/bash
# Install what is needed, build, and run every test: unit and integration
# tests on a normal build, then all of them again on an ASan+UBSan build.
# Usage: tools/test.sh [--quick]   (--quick: skip the sanitizer build)
set -eu
cd "$(dirname "$0")/.."

tools/deps.sh
jobs=$(nproc)

build() { # dir, extra cmake args...
	local dir=$1
	shift
	cmake -S . -B "$dir" "$@" >/dev/null
	cmake --build "$dir" -j"$jobs"
}

# store/ is a library with no FUSE in it.
if grep -rlE '#include *[<"]fuse' store; then
	echo "store/ must not include FUSE headers" >&2
	exit 1
fi

tools/lint.sh

build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
ctest --test-dir build --output-on-failure --timeout 900

if [ "${1:-}" != --quick ]; then
	build build-asan -DCMAKE_BUILD_TYPE=Debug -DSTASH_SANITIZE=ON
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	export STASH_TEST_SANITIZER=1
	ctest --test-dir build-asan --output-on-failure --timeout 1800
fi
