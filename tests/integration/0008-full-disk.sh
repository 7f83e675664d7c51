#!/bin/bash
# A full disk under the store: the write that does not fit fails with
# ENOSPC (at write or at close), files written before stay intact, and the
# store still mounts and reads after the failure.
. "$(dirname "$0")/../lib.sh"

mkdir -p "$STORE"
mount -t tmpfs -o size=48m tmpfs "$STORE" || exit 77
on_cleanup 'umount -l "$STORE"'

stash_init
stash_mount

head -c 8M /dev/urandom >"$T/keep"
cp "$T/keep" "$MNT/files/keep"
sync "$MNT/files/keep"

# 100 MiB of random data cannot fit in 48 MiB.
if head -c 100M /dev/urandom >"$MNT/files/big" 2>"$T/err"; then
	fail "writing 100 MiB into a 48 MiB disk succeeded"
fi
grep -q "No space left on device" "$T/err" || fail "expected ENOSPC, got: $(cat "$T/err")"

cmp "$T/keep" "$MNT/files/keep" || fail "earlier file damaged while full"
rm -f "$MNT/files/big" || true

stash_umount || true
# The store must mount again and hold the earlier file.
stash_mount
cmp "$T/keep" "$MNT/files/keep" || fail "earlier file damaged after remount"
echo ok
