#!/bin/bash
# snapshot.sh - how long taking and dropping a snapshot takes on a store
# of many small files, against listing the same tree (ls -lR), measured in
# the same run.
#
#   tools/bench/snapshot.sh [--files N] [--reps R] [--dir DIR]
#
# Fills a fresh store through the mount with N files (default 100000) of
# 1-4 KiB in 100 directories, then R times (default 5): mkdir
# .backups/sN (timed), rmdir it again (timed), and ls -lR of the live
# tree (timed, with the kernel's caches dropped first) as the baseline.
# Prints medians, min and max, and the ratio snapshot / ls -lR. The target
# is a snapshot of 100,000 files well under a second.
#
# Needs root, /dev/fuse and about N x 8 KiB of disk under DIR.
set -eu
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STASHFS=${STASHFS:-$here/../../build/stashfs}
FILES=100000
REPS=5
BASE=${TMPDIR:-/tmp}

while [ $# -gt 0 ]; do
	case $1 in
	--files) FILES=$2; shift 2 ;;
	--reps) REPS=$2; shift 2 ;;
	--dir) BASE=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -eu/{/^set -eu/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
	*) echo "snapshot.sh: unknown argument: $1" >&2; exit 2 ;;
	esac
done

work=$(mktemp -d "$BASE/stashfs-bench.XXXXXX")
store=$work/store mnt=$work/mnt
export STASHFS_KEY_DIR=$work/keys
mkdir -p "$mnt"
cleanup() {
	mountpoint -q "$mnt" && { "$STASHFS" umount "$mnt" || umount -l "$mnt"; }
	rm -rf "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
# Median, min and max of the numbers on stdin.
stats() { sort -g | awk '{v[NR]=$1} END {printf "%.3f %.3f %.3f\n", v[int((NR+1)/2)], v[1], v[NR]}'; }

"$STASHFS" init "$store" >/dev/null
"$STASHFS" mount "$store" "$mnt"
echo "filling $FILES files..."
t0=$(now)
python3 - "$mnt/files/bench" "$FILES" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(1)
for d in range(100):
    os.makedirs(f"{root}/d{d:03}", exist_ok=True)
for i in range(n):
    with open(f"{root}/d{i % 100:03}/f{i:07}", "wb") as f:
        f.write(rng.randbytes(rng.randint(1024, 4096)))
EOF
t1=$(now)
echo "filled in $(echo "$t1 - $t0" | bc) s"

: >"$work/take" ; : >"$work/drop" ; : >"$work/ls"
for r in $(seq "$REPS"); do
	sync
	echo 3 >/proc/sys/vm/drop_caches
	t0=$(now); ls -lR "$mnt/files" >/dev/null; t1=$(now)
	echo "$t1 - $t0" | bc >>"$work/ls"
	t0=$(now); mkdir "$mnt/.backups/s$r"; t1=$(now)
	echo "$t1 - $t0" | bc >>"$work/take"
	n=$(find "$mnt/.backups/s$r/files/bench" -type f | wc -l)
	[ "$n" -eq "$FILES" ] || { echo "snapshot holds $n files, not $FILES" >&2; exit 1; }
	t0=$(now); rmdir "$mnt/.backups/s$r"; t1=$(now)
	echo "$t1 - $t0" | bc >>"$work/drop"
done

read -r take_med take_min take_max < <(stats <"$work/take")
read -r drop_med drop_min drop_max < <(stats <"$work/drop")
read -r ls_med ls_min ls_max < <(stats <"$work/ls")
echo
echo "stashfs $("$STASHFS" --help >/dev/null 2>&1; git -C "$here" describe --always --dirty 2>/dev/null || echo '?'), $FILES files, $REPS reps, median (min-max) seconds"
printf '%-28s %8s  (%s-%s)\n' "snapshot (mkdir .backups/X)" "$take_med" "$take_min" "$take_max"
printf '%-28s %8s  (%s-%s)\n' "drop (rmdir .backups/X)" "$drop_med" "$drop_min" "$drop_max"
printf '%-28s %8s  (%s-%s)\n' "baseline: ls -lR, cold" "$ls_med" "$ls_min" "$ls_max"
printf '%-28s %8.3f\n' "snapshot / ls -lR" "$(echo "$take_med / $ls_med" | bc -l)"
printf '%-28s %8.0f\n' "files per second snapshotted" "$(echo "$FILES / $take_med" | bc -l)"
