#!/bin/bash
# The daemon's memory stays bounded by its buffers, not by the size of a
# file: while a 4 GiB file streams in, and while it is read back after a
# remount, the daemon's peak resident size (VmHWM) stays under 256 MiB;
# the file reads back with the sha256 computed while it was written.
. "$(dirname "$0")/../lib.sh"

# ASan's shadow memory and quarantine inflate the resident size many
# times over: the figure would say nothing about the daemon.
if [ "${STASH_TEST_SANITIZER:-0}" = 1 ]; then
	echo "skipped: resident size means nothing under ASan"
	exit 77
fi

gen=$STASH_TEST_TOOLS/genbytes
[ -x "$gen" ] || fail "genbytes not built: $gen"
size=4G
limit_kib=$((256 * 1024))

# Random data neither compresses nor deduplicates: the store grows by
# the whole file, and the reference sum needs none of it on disk.
avail_kib=$(df -Pk "$T" | awk 'NR == 2 { print $4 }')
if [ "$avail_kib" -lt $((6 << 20)) ]; then
	echo "skipped: needs 6 GiB free under $T, has $((avail_kib >> 20)) GiB"
	exit 77
fi

# sha256 through openssl: it uses the CPU's SHA instructions, several
# times faster than sha256sum, which would be the bottleneck.
sha256() {
	openssl dgst -sha256 -r | cut -d' ' -f1
}

hwm_kib() {
	awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"
}

stash_init
stash_mount
pid=$(stash_pid)
[ -n "$pid" ] || fail "no daemon pid"

mkfifo "$T/tee"
sha256 <"$T/tee" >"$T/sum.write" &
summer=$!
t0=$(date +%s%N)
"$gen" 4096 "$size" | tee "$T/tee" |
	dd of="$MNT/files/big" bs=1M iflag=fullblock status=none
t1=$(date +%s%N)
wait "$summer"
write_kib=$(hwm_kib "$pid")

stash_remount
pid=$(stash_pid)
[ -n "$pid" ] || fail "no daemon pid after the remount"
t2=$(date +%s%N)
sha256 <"$MNT/files/big" >"$T/sum.read"
t3=$(date +%s%N)
read_kib=$(hwm_kib "$pid")

bytes=$(stat -c %s "$MNT/files/big")
echo "wrote $size in $(((t1 - t0) / 1000000)) ms," \
	"$((bytes / ((t1 - t0) / 1000))) MB/s," \
	"peak RSS $((write_kib / 1024)) MiB"
echo "read it back in $(((t3 - t2) / 1000000)) ms," \
	"$((bytes / ((t3 - t2) / 1000))) MB/s," \
	"peak RSS $((read_kib / 1024)) MiB"

[ "$bytes" = $((4 << 30)) ] || fail "size $bytes, want $((4 << 30))"
grep -qE '^[0-9a-f]{64}$' "$T/sum.write" || fail "no sha256 of what was written"
cmp -s "$T/sum.write" "$T/sum.read" ||
	fail "sha256 read back $(cat "$T/sum.read"), written $(cat "$T/sum.write")"
[ "$write_kib" -lt "$limit_kib" ] ||
	fail "peak RSS while writing: $((write_kib / 1024)) MiB (limit 256)"
[ "$read_kib" -lt "$limit_kib" ] ||
	fail "peak RSS while reading: $((read_kib / 1024)) MiB (limit 256)"
echo "ok"
