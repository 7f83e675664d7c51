#!/bin/bash
# Deduplication as a user sees it in the store folder: the same random
# data written again under a second name grows the store by less than 1%
# of its size; a random file written again with one byte inserted at the
# front grows it by less than 2% (content-defined chunks find the old cut
# points again). Every copy reads back identical after a remount.
#
# Sizes are taken after `stashfs umount`, which returns once the daemon has
# finished the open pack (trailer), checkpointed the catalog and exited:
# nothing is left in memory or in the WAL to skew the figure.
. "$(dirname "$0")/../lib.sh"

if [ "${STASH_TEST_SANITIZER:-0}" = 1 ]; then
	big_mib=64
else
	big_mib=256
fi
small_mib=64

head -c $((big_mib << 20)) /dev/urandom >"$T/big"
head -c $((small_mib << 20)) /dev/urandom >"$T/small"
{ printf 'X'; cat "$T/small"; } >"$T/small+1"

stash_init
before=$(store_bytes)

# Unmount, measure the store folder, mount again: sets $grew (bytes added
# since the last call) and prints it as a share of $2 bytes.
measure() { # label, bytes
	local after
	stash_umount
	after=$(store_bytes)
	grew=$((after - before))
	before=$after
	echo "$1: store grew by $grew bytes, $(awk -v g="$grew" -v n="$2" \
		'BEGIN { printf "%.3f", 100 * g / n }')% of $2"
	stash_mount
}

big=$((big_mib << 20))
small=$((small_mib << 20))
stash_mount

# Random data does not compress: a first copy adds at least its size, or
# the store did not keep it and the figures below would mean nothing.
cp "$T/big" "$MNT/files/big"
measure "first copy of $big_mib MiB" $big
[ "$grew" -ge "$big" ] || fail "first copy added only $grew bytes"

cp "$T/big" "$MNT/files/big-again"
measure "same $big_mib MiB under a second name" $big
[ $((grew * 100)) -lt "$big" ] || fail "second copy grew the store by $grew bytes (>= 1%)"

cp "$T/small" "$MNT/files/small"
measure "first copy of $small_mib MiB" $small
[ "$grew" -ge "$small" ] || fail "first copy added only $grew bytes"

cp "$T/small+1" "$MNT/files/small+1"
measure "$small_mib MiB with one byte inserted at the front" $small
[ $((grew * 100)) -lt $((2 * small)) ] || fail "shifted copy grew the store by $grew bytes (>= 2%)"

stash_remount
cmp "$T/big" "$MNT/files/big" || fail "big differs"
cmp "$T/big" "$MNT/files/big-again" || fail "big-again differs"
cmp "$T/small" "$MNT/files/small" || fail "small differs"
cmp "$T/small+1" "$MNT/files/small+1" || fail "small+1 differs"
echo "ok"
