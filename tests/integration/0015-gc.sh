#!/bin/bash
# `stashfs gc`:
# - on a mounted store, while one process keeps writing (and deleting)
#   files and another keeps reading: both see exactly their bytes, every
#   file is equal to its source after, `getfattr user.stashfs.gc` on the
#   root gives the report, and `verify --full` is clean after unmounting;
# - on an unmounted store, killed with kill -9 at random moments, again
#   and again: each time `verify --full` is clean and every file reads
#   back identical; then a gc that finishes gives the space back;
# - snapshots keep their data through gc; once they are deleted, gc
#   brings the store folder to within 5% of a store into which only the
#   live data was copied;
# - gc of a mounted store folder: exit 4, and stderr names the mount
#   point; a second gc while one runs: exit 4; usage: exit 2.
. "$(dirname "$0")/../lib.sh"

gen=$STASH_TEST_TOOLS/genbytes
[ -x "$gen" ] || fail "genbytes not built: $gen"

# gc ARGS...: exit code in $rc, stdout in $T/out, stderr in $T/err.
gc() {
	rc=0
	"$STASHFS" gc "$@" >"$T/out" 2>"$T/err" || rc=$?
	echo "gc $*: exit $rc"
}

verify_full() {
	local vrc=0
	"$STASHFS" verify --full "$STORE" >"$T/verify.out" 2>&1 || vrc=$?
	[ "$vrc" = 0 ] || { cat "$T/verify.out" >&2; fail "verify --full: exit $vrc ($1)"; }
	[ "$(tail -n 1 "$T/verify.out")" = clean ] || fail "verify not clean ($1)"
}

# Compare the live tree with the sources.
same_tree() {
	diff -r "$T/src" "$MNT/files/data" >/dev/null || fail "files differ from their sources ($1)"
}

stash_init
stash_mount

# 48 files of 1 MiB; then a third deleted and a third overwritten: dead
# bytes spread over every pack.
mkdir -p "$T/src" "$MNT/files/data"
for i in $(seq 1 48); do
	"$gen" "$i" 1M >"$T/src/f$i"
done
cp "$T/src"/* "$MNT/files/data/"
for i in $(seq 1 3 48); do
	rm "$T/src/f$i" "$MNT/files/data/f$i"
done
for i in $(seq 2 3 48); do
	"$gen" $((1000 + i)) 1M >"$T/src/f$i"
	cp "$T/src/f$i" "$MNT/files/data/f$i"
done
same_tree "before gc"

# ---- mounted: a writer and a reader keep going while gc runs ----

mkdir -p "$MNT/files/w" "$T/w"
writer() {
	local n=0
	while [ ! -e "$T/stop" ]; do
		n=$((n + 1))
		echo "$n" >"$T/written"
		"$gen" $((5000 + n)) 1536K >"$T/w/$n"
		cp "$T/w/$n" "$MNT/files/w/$n" || { echo "write $n" >>"$T/fail"; return; }
		cmp -s "$T/w/$n" "$MNT/files/w/$n" || { echo "read back $n" >>"$T/fail"; return; }
		if [ $((n % 2)) = 0 ]; then
			rm "$MNT/files/w/$((n - 1))" "$T/w/$((n - 1))"
		fi
	done
}
reader() {
	(cd "$T/src" && md5sum -- *) >"$T/src.md5"
	while [ ! -e "$T/stop" ]; do
		(cd "$MNT/files/data" && md5sum -c --quiet "$T/src.md5") >/dev/null 2>&1 ||
			{ echo "read" >>"$T/fail"; return; }
	done
}
writer &
wpid=$!
reader &
rpid=$!

# The first run reclaims what was deleted; the others (threshold 1) copy
# every pack again, so chunks move under the writer's and reader's feet.
for i in $(seq 1 15); do
	if [ "$i" = 1 ]; then gc "$MNT"; else gc "$MNT" --threshold 1; fi
	[ "$rc" = 0 ] || { cat "$T/out" "$T/err" >&2; fail "mounted gc $i: exit $rc"; }
	grep -q '^store: ' "$T/out" || fail "no 'store:' line in the report"
	[ "$i" != 1 ] || { cat "$T/out"; grep -q '^dropped [1-9]' "$T/out" || fail "nothing dropped"; }
done
cat "$T/out"
touch "$T/stop"
wait "$wpid" "$rpid"
[ ! -e "$T/fail" ] || fail "while gc ran: $(cat "$T/fail")"
echo "the writer wrote $(cat "$T/written") files while gc ran 15 times"
diff -r "$T/w" "$MNT/files/w" >/dev/null || fail "the writer's files differ"
same_tree "after a mounted gc"

# The report is on the root, as JSON.
getfattr --only-values -n user.stashfs.gc "$MNT" >"$T/report.json"
grep -q '"running":false' "$T/report.json" || fail "report: $(cat "$T/report.json")"
grep -q '"chunks_dropped":' "$T/report.json" || fail "report: $(cat "$T/report.json")"
gc "$MNT" --json
[ "$rc" = 0 ] || fail "gc --json: exit $rc"
grep -q '"store_bytes_after":' "$T/out" || fail "gc --json: $(cat "$T/out")"

# The folder of a mounted store: busy, and the way out is named.
gc "$STORE"
[ "$rc" = 4 ] || { cat "$T/err" >&2; fail "gc of a mounted store folder: exit $rc, expected 4"; }
grep -q 'mount point' "$T/err" || { cat "$T/err" >&2; fail "stderr does not name the mount point"; }
# One gc at a time: a second one while the first runs (threshold 1
# copies everything, which takes a while).
"$STASHFS" gc "$MNT" --threshold 1 >/dev/null 2>&1 &
gpid=$!
for _ in $(seq 1 200); do
	grep -q '"running":true' <(getfattr --only-values -n user.stashfs.gc "$MNT" 2>/dev/null) && break
	sleep 0.01
done
gc "$MNT"
if [ "$rc" != 0 ]; then
	[ "$rc" = 4 ] || fail "gc while another runs: exit $rc, expected 4 (or 0 if it was over)"
	grep -q 'already running' "$T/err" || fail "stderr: $(cat "$T/err")"
fi
wait "$gpid" || fail "the first gc failed"

stash_umount
verify_full "after the mounted gc"

# ---- offline: kill -9 at random moments ----

stash_mount
rm -r "$MNT/files/w"
for i in $(seq 3 3 48); do
	"$gen" $((2000 + i)) 1M >"$T/src/f$i"
	cp "$T/src/f$i" "$MNT/files/data/f$i"
done
stash_umount
before=$(store_bytes)
# How long a run that copies every pack takes (threshold 1), in ms; the
# kills land at random moments within that.
start=$(date +%s%N)
gc --threshold 1 --max-waste 1 "$STORE"
[ "$rc" = 0 ] || { cat "$T/out" "$T/err" >&2; fail "offline gc --threshold 1: exit $rc"; }
span=$((($(date +%s%N) - start) / 1000000 + 1))
echo "a full copy takes $span ms"
killed=0
for i in $(seq 1 10); do
	"$STASHFS" gc --threshold 1 "$STORE" >/dev/null 2>&1 &
	gpid=$!
	ms=$((RANDOM % span))
	sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
	if kill -9 "$gpid" 2>/dev/null; then
		killed=$((killed + 1))
	fi
	wait "$gpid" 2>/dev/null || true
	verify_full "gc killed after $ms ms"
	stash_mount
	same_tree "gc killed after $ms ms"
	stash_umount
done
echo "gc killed $killed times in 10 runs"
[ "$killed" -ge 3 ] || fail "only $killed of 10 runs were killed while running"
# SIGTERM (or Ctrl-C) stops it at the next step, with a word and exit 1.
"$STASHFS" gc --threshold 1 "$STORE" >"$T/out" 2>"$T/err" &
gpid=$!
ms=$((span / 2))
sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
kill -TERM "$gpid" 2>/dev/null || true
rc=0
wait "$gpid" || rc=$?
echo "gc sent SIGTERM after $ms ms: exit $rc"
if [ "$rc" != 0 ]; then
	[ "$rc" = 1 ] || fail "gc stopped by SIGTERM: exit $rc, expected 1"
	grep -q 'stopped: run it again' "$T/err" || fail "stderr: $(cat "$T/err")"
fi
verify_full "gc stopped by SIGTERM"
gc "$STORE"
[ "$rc" = 0 ] || { cat "$T/out" "$T/err" >&2; fail "offline gc: exit $rc"; }
cat "$T/out"
after=$(store_bytes)
echo "store: $before bytes before, $after after the killed runs and a full gc"
[ "$after" -lt "$before" ] || fail "gc did not shrink the store ($before -> $after)"
verify_full "after the offline gc"

# ---- snapshots: kept through gc, reclaimed once deleted ----

stash_mount
same_tree "before snapshots"
cp -r "$T/src" "$T/snap1"
mkdir "$MNT/.backups/s1"
for i in $(seq 1 2 48); do
	[ -e "$T/src/f$i" ] || continue
	"$gen" $((3000 + i)) 1M >"$T/src/f$i"
	cp "$T/src/f$i" "$MNT/files/data/f$i"
done
mkdir "$MNT/.backups/s2"
for i in $(seq 2 4 48); do
	rm -f "$T/src/f$i" "$MNT/files/data/f$i"
done
gc "$MNT" --threshold 1
[ "$rc" = 0 ] || { cat "$T/out" "$T/err" >&2; fail "gc with snapshots: exit $rc"; }
diff -r "$T/snap1" "$MNT/.backups/s1/files/data" >/dev/null ||
	fail "snapshot s1 differs after gc"
same_tree "with snapshots, after gc"
rmdir "$MNT/.backups/s1" "$MNT/.backups/s2"
gc "$MNT"
[ "$rc" = 0 ] || { cat "$T/out" "$T/err" >&2; fail "gc after deleting the snapshots: exit $rc"; }
cat "$T/out"
same_tree "after the snapshots went"
stash_umount
verify_full "after the snapshots went"
got=$(store_bytes)

# The same live data, copied into a store that never held anything else.
FRESH=$T/fresh
FMNT=$T/fmnt
mkdir -p "$FMNT"
"$STASHFS" init "$FRESH" >/dev/null
"$STASHFS" mount "$FRESH" "$FMNT"
on_cleanup "fusermount3 -u -z '$FMNT' 2>/dev/null"
mkdir -p "$FMNT/files/data"
cp "$T/src"/* "$FMNT/files/data/"
"$STASHFS" umount "$FMNT"
want=$(du -sb "$FRESH" | cut -f1)
echo "store after gc: $got bytes; live data alone: $want bytes"
[ "$got" -le $((want + want / 20)) ] ||
	fail "the store is $got bytes, more than 5% above the $want of its live data"

# Usage errors: exit 2.
gc
[ "$rc" = 2 ] || fail "gc without a path: exit $rc, expected 2"
gc "$STORE" --threshold 2
[ "$rc" = 2 ] || fail "gc --threshold 2: exit $rc, expected 2"
"$STASHFS" gc --help | grep -q 'stashfs gc STORE|MNT' || fail "gc --help"
echo "ok"
