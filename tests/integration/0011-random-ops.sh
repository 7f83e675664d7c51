#!/bin/bash
# Seeded random writes, appends, truncates (shrink and grow), holes, reads,
# fsyncs and reopens on several files give the same bytes and sizes as the
# same operations on a local disk, after every step (randops checks), and
# after an unmount and a remount (cmp).
# Reproduce a failure with the seed it prints: STASH_SEED=N (STASH_OPS=N
# sets the number of steps; randops -v prints each).
. "$(dirname "$0")/../lib.sh"

randops=$STASH_TEST_TOOLS/randops
[ -x "$randops" ] || fail "randops not built: $randops"

seed=${STASH_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
ops=6000
# ASan+UBSan make the daemon several times slower: fewer steps.
[ "${STASH_TEST_SANITIZER:-0}" = 1 ] && ops=2000
ops=${STASH_OPS:-$ops}
echo "seed $seed, $ops steps (rerun: STASH_SEED=$seed)"

stash_init
stash_mount
mkdir "$MNT/files/rand" "$T/ref"

"$randops" -s "$seed" -n "$ops" "$MNT/files/rand" "$T/ref" ||
	fail "randops (seed $seed)"

stash_remount

for ref in "$T"/ref/*; do
	name=${ref##*/}
	cmp "$ref" "$MNT/files/rand/$name" ||
		fail "$name differs after remount (seed $seed)"
done
[ "$(ls "$MNT/files/rand" | wc -l)" = "$(ls "$T/ref" | wc -l)" ] ||
	fail "file count after remount (seed $seed)"
echo "ok"
