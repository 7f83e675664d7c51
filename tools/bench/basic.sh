#!/bin/bash
# basic.sh - sequential throughput, tree copy and space of stashfs against a
# plain directory on the same disk, measured in the same run.
#
#   tools/bench/basic.sh [--reps N] [--size MiB] [--quick] [--dir DIR]
#                        [--perf OUTDIR]
#
# Workloads (each repeated --reps times, plain and stashfs alternating):
#   random  a --size MiB file of random bytes: dd bs=1M conv=fsync write,
#           cold read (caches dropped; stashfs also unmounted and mounted
#           again so the daemon's cache is cold), warm read (read again).
#   text    the same for a text file made of the text files under /usr/include
#           and /usr/share: each pass takes them in a new order and shuffles
#           lines inside small random blocks, so content-defined chunks do not
#           repeat and the store has to compress rather than deduplicate.
#   tree    cp -a /usr/include; and cp -a until durable (plain: + sync;
#           stashfs: + stashfs umount, which waits for the daemon).
# Every stashfs repetition uses a fresh store, so nothing deduplicates
# against an earlier repetition. Stored/raw is the growth of the store
# folder (du -sb after unmount) over the logical bytes written.
#
# Not measured: random I/O, small-file metadata rates, concurrency.
# Not a test: it checks data only once (cmp after the first repetition).
#
# Needs root (drop_caches), /dev/fuse, and about 3 x --size of free disk
# plus the tree under DIR (default ${TMPDIR:-/tmp}).
set -eu
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -n "${STASHFS:-}" ]; then
	BUILT_FROM="binary $STASHFS"
else
	STASHFS=$here/../../build/stashfs
	BUILT_FROM="build of $(git -C "$here" describe --always --dirty 2>/dev/null || echo '?')"
fi
REPS=3
SIZE_MIB=1024
BASE=${TMPDIR:-/tmp}
PERF_DIR=
TREE_SRC=/usr/include

usage() {
	sed -n '2,/^set -eu/{/^set -eu/d;s/^# \{0,1\}//;p}' "$0"
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case $1 in
	--reps) REPS=$2; shift 2 ;;
	--size) SIZE_MIB=$2; shift 2 ;;
	--quick) REPS=1; SIZE_MIB=256; shift ;;
	--dir) BASE=$2; shift 2 ;;
	--perf) PERF_DIR=$2; shift 2 ;;
	-h | --help) usage 0 ;;
	*) echo "basic.sh: unknown argument: $1" >&2; usage 2 >&2 ;;
	esac
done
case $REPS$SIZE_MIB in *[!0-9]*) echo "basic.sh: --reps and --size take numbers" >&2; exit 2 ;; esac
[ "$REPS" -ge 1 ] && [ "$SIZE_MIB" -ge 1 ] || { echo "basic.sh: --reps and --size must be >= 1" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "basic.sh: needs root (drop_caches)" >&2; exit 1; }
[ -w /proc/sys/vm/drop_caches ] || { echo "basic.sh: cannot drop caches" >&2; exit 1; }
[ -e /dev/fuse ] || { echo "basic.sh: no /dev/fuse" >&2; exit 1; }
[ -x "$STASHFS" ] || { echo "basic.sh: no stashfs binary at $STASHFS (set STASHFS)" >&2; exit 1; }
for c in dd fuser flock shuf openssl awk mountpoint xargs; do
	command -v $c >/dev/null || { echo "basic.sh: needs $c" >&2; exit 1; }
done
[ -z "$PERF_DIR" ] || command -v perf >/dev/null ||
	{ echo "basic.sh: --perf needs perf (apt-get install linux-perf)" >&2; exit 1; }

BYTES=$((SIZE_MIB * 1048576))
GIB=1073741824
TICK=$(getconf CLK_TCK)
T0=$EPOCHREALTIME

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
# Time (us) some runnable task waited for a CPU: other work competing with us.
psi_cpu() { awk -F'total=' '/^some/ { print $2 }' /proc/pressure/cpu 2>/dev/null || echo 0; }
PSI0=$(psi_cpu)
awk '$1 > 0.5 { exit 1 }' /proc/loadavg ||
	echo "basic.sh: warning: load average $LOAD0: other work on this machine skews the numbers" >&2
T=$(mktemp -d "$BASE/stashfs-bench.XXXXXX")
MNT=$T/mnt
STORE=
PERF_PID=
export STASHFS_KEY_DIR=$T/keys
mkdir -p "$MNT" "$T/bin" "$T/src" "$T/plain"
# A private copy: a rebuild of the tree during the run must not change
# the daemon under test (and perf needs the file it ran from).
cp "$STASHFS" "$T/bin/stashfs"
SF=$T/bin/stashfs

cleanup() {
	local rc=$?
	set +e
	[ -z "$PERF_PID" ] || { kill -INT "$PERF_PID"; wait "$PERF_PID"; } 2>/dev/null
	if grep -qs " $MNT " /proc/mounts; then
		"$SF" umount "$MNT" 2>/dev/null ||
			fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT"
	fi
	if [ -n "$STORE" ] && [ -e "$STORE/lock" ]; then
		flock -w 60 "$STORE/lock" true 2>/dev/null
	fi
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }
now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", b - a }'; }
# MB/s (10^6 bytes) for $1 bytes in $2 seconds
mbps() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f", n / s / 1e6 }'; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
warm() { cat "$@" >/dev/null; }
tree_warm() { find "$1" -type f -exec cat {} + >/dev/null; }
bytes_of() { du -sb "$1" | cut -f1; }

# Samples: S[name] holds space-separated values.
declare -A S
add() { S[$1]="${S[$1]:-}$2 "; }

# "median min max" of the samples of $1
stats() {
	printf '%s' "${S[$1]:-}" | tr ' ' '\n' | grep . | sort -g | awk '
		{ a[NR] = $1 }
		END { if (!NR) { print "nan nan nan"; exit }
		      m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
		      print m, a[1], a[NR] }'
}

daemon_pid() { fuser "$STORE/lock" 2>/dev/null | awk '{ print $1 }'; }
# utime + stime of the whole process, in clock ticks
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
vm_hwm_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }

new_store() {
	STORE=$T/store
	rm -rf "$STORE" "$STASHFS_KEY_DIR"
	"$SF" init "$STORE" >/dev/null
	STORE_BASE=$(bytes_of "$STORE")
}
mount_store() {
	"$SF" mount "$STORE" "$MNT"
	mountpoint -q "$MNT" || { log "basic.sh: not mounted after stashfs mount"; exit 1; }
	PID=$(daemon_pid)
	[ -n "$PID" ] || { log "basic.sh: no daemon holds $STORE/lock"; exit 1; }
}
umount_store() { "$SF" umount "$MNT"; }
drop_store() { rm -rf "$STORE" "$STASHFS_KEY_DIR"; STORE=; }

# ---- inputs ---------------------------------------------------------------

RAND=$T/src/random
TEXT=$T/src/text

t=$(now)
head -c "$BYTES" /dev/urandom >"$RAND"
GEN_RAND=$(mbps "$BYTES" "$(elapsed "$t" "$(now)")")

# Text: every pass concatenates the corpus in a new file order and shuffles
# lines inside blocks of 2..32 lines (seeded: the same text every run).
find /usr/include /usr/share -type f -size -4M \( -name '*.h' -o -name '*.hpp' \
	-o -name '*.c' -o -name '*.txt' -o -name '*.py' -o -name '*.html' \
	-o -name '*.md' -o -name '*.rst' -o -name 'copyright' \) -print0 |
	sort -z >"$T/src/corpus.list"
cat >"$T/src/blocks.awk" <<'EOF'
BEGIN { srand(seed); n = 0; k = 2 + int(rand() * 31) }
{ b[n++] = $0; if (n >= k) flush() }
END { flush() }
function flush(   i, j, t) {
	for (i = n - 1; i > 0; i--) {
		j = int(rand() * (i + 1)); t = b[i]; b[i] = b[j]; b[j] = t
	}
	for (i = 0; i < n; i++)
		print b[i]
	n = 0; k = 2 + int(rand() * 31)
}
EOF
rsrc() { openssl enc -aes-128-ctr -pass "pass:stashfs-bench-$1" -nosalt -pbkdf2 </dev/zero 2>/dev/null; }
t=$(now)
: >"$TEXT"
pass=0
while [ "$(stat -c %s "$TEXT")" -lt "$BYTES" ]; do
	pass=$((pass + 1))
	shuf -z --random-source=<(rsrc "$pass") "$T/src/corpus.list" |
		xargs -0 cat -- | awk -v seed="$pass" -f "$T/src/blocks.awk" >>"$TEXT"
done
truncate -s "$BYTES" "$TEXT"
GEN_TEXT_S=$(elapsed "$t" "$(now)")
TREE_RAW=$(du -sb --apparent-size "$TREE_SRC" | cut -f1)
TREE_FILES=$(find "$TREE_SRC" -type f | wc -l)

# What feeds dd during a write: the source file, read warm.
warm "$RAND" "$TEXT"
t=$(now); dd if="$RAND" of=/dev/null bs=1M status=none
FEED_RAND=$(mbps "$BYTES" "$(elapsed "$t" "$(now)")")
t=$(now); dd if="$TEXT" of=/dev/null bs=1M status=none
FEED_TEXT=$(mbps "$BYTES" "$(elapsed "$t" "$(now)")")
log "inputs: random ${SIZE_MIB} MiB (urandom $GEN_RAND MB/s), text ${SIZE_MIB} MiB ($pass passes, ${GEN_TEXT_S}s), feed $FEED_RAND / $FEED_TEXT MB/s"

# ---- one repetition of one workload on one target -------------------------

# file_plain NAME SRC
file_plain() {
	local name=$1 src=$2 dst=$T/plain/f t
	rm -f "$dst"
	drop_caches
	warm "$src"
	t=$(now)
	dd if="$src" of="$dst" bs=1M conv=fsync status=none
	add "$name.write.plain" "$(mbps "$BYTES" "$(elapsed "$t" "$(now)")")"
	drop_caches
	t=$(now)
	dd if="$dst" of=/dev/null bs=1M status=none
	add "$name.cold.plain" "$(mbps "$BYTES" "$(elapsed "$t" "$(now)")")"
	t=$(now)
	dd if="$dst" of=/dev/null bs=1M status=none
	add "$name.warm.plain" "$(mbps "$BYTES" "$(elapsed "$t" "$(now)")")"
	rm -f "$dst"
}

# file_stash NAME SRC REP
file_stash() {
	local name=$1 src=$2 rep=$3 t c0 gib
	gib=$(awk -v n="$BYTES" -v g=$GIB 'BEGIN { print n / g }')
	new_store
	mount_store
	drop_caches
	warm "$src"
	c0=$(cpu_ticks "$PID")
	t=$(now)
	dd if="$src" of="$MNT/f" bs=1M conv=fsync status=none
	add "$name.write.stash" "$(mbps "$BYTES" "$(elapsed "$t" "$(now)")")"
	add "$name.cpuw" "$(awk -v d=$(($(cpu_ticks "$PID") - c0)) -v k="$TICK" -v g="$gib" 'BEGIN { printf "%.2f", d / k / g }')"
	add "$name.rssw" "$(vm_hwm_kib "$PID")"
	umount_store
	add "$name.stored" "$(awk -v a="$(bytes_of "$STORE")" -v b="$STORE_BASE" -v n="$BYTES" 'BEGIN { printf "%.4f", (a - b) / n }')"

	drop_caches
	mount_store
	c0=$(cpu_ticks "$PID")
	t=$(now)
	dd if="$MNT/f" of=/dev/null bs=1M status=none
	add "$name.cold.stash" "$(mbps "$BYTES" "$(elapsed "$t" "$(now)")")"
	t=$(now)
	dd if="$MNT/f" of=/dev/null bs=1M status=none
	add "$name.warm.stash" "$(mbps "$BYTES" "$(elapsed "$t" "$(now)")")"
	add "$name.cpur" "$(awk -v d=$(($(cpu_ticks "$PID") - c0)) -v k="$TICK" -v g="$gib" 'BEGIN { printf "%.2f", d / k / g / 2 }')"
	add "$name.rssr" "$(vm_hwm_kib "$PID")"
	if [ "$rep" = 1 ] && ! cmp -s "$src" "$MNT/f"; then
		log "basic.sh: $name: data read back differs from what was written"
		exit 1
	fi
	umount_store
	drop_store
}

tree_plain() {
	local dst=$T/plain/tree t t1
	rm -rf "$dst"
	drop_caches
	tree_warm "$TREE_SRC"
	t=$(now)
	cp -a "$TREE_SRC" "$dst"
	t1=$(now)
	sync
	add tree.cp.plain "$(elapsed "$t" "$t1")"
	add tree.durable.plain "$(elapsed "$t" "$(now)")"
	rm -rf "$dst"
}

tree_stash() {
	local t t1 c0
	new_store
	mount_store
	drop_caches
	tree_warm "$TREE_SRC"
	c0=$(cpu_ticks "$PID")
	t=$(now)
	cp -a "$TREE_SRC" "$MNT/tree"
	t1=$(now)
	add tree.cpuw "$(awk -v d=$(($(cpu_ticks "$PID") - c0)) -v k="$TICK" -v g="$(awk -v n="$TREE_RAW" -v g=$GIB 'BEGIN { print n / g }')" 'BEGIN { printf "%.2f", d / k / g }')"
	add tree.rssw "$(vm_hwm_kib "$PID")"
	umount_store
	add tree.cp.stash "$(elapsed "$t" "$t1")"
	add tree.durable.stash "$(elapsed "$t" "$(now)")"
	add tree.stored "$(awk -v a="$(bytes_of "$STORE")" -v b="$STORE_BASE" -v n="$TREE_RAW" 'BEGIN { printf "%.4f", (a - b) / n }')"
	drop_store
}

# ---- the run --------------------------------------------------------------

for rep in $(seq 1 "$REPS"); do
	for wl in random text tree; do
		# Alternate which target goes first, so drift does not favour one.
		if [ $((rep % 2)) = 1 ]; then order="plain stash"; else order="stash plain"; fi
		for tgt in $order; do
			case $wl/$tgt in
			random/plain) file_plain random "$RAND" ;;
			random/stash) file_stash random "$RAND" "$rep" ;;
			text/plain) file_plain text "$TEXT" ;;
			text/stash) file_stash text "$TEXT" "$rep" ;;
			tree/plain) tree_plain ;;
			tree/stash) tree_stash ;;
			esac
		done
		log "rep $rep/$REPS: $wl done ($(elapsed "$T0" "$(now)")s)"
	done
done

# ---- optional profile: one extra, untimed write per workload --------------

profile() {
	local name=$1
	shift
	new_store
	mount_store
	drop_caches
	case $name in tree) tree_warm "$TREE_SRC" ;; *) warm "$1" ;; esac
	perf record -g -o "$PERF_DIR/$name.data" -p "$PID" >/dev/null 2>&1 &
	PERF_PID=$!
	sleep 0.5 # perf attaches asynchronously; this is outside any timing
	case $name in
	tree) cp -a "$TREE_SRC" "$MNT/tree" ;;
	*) dd if="$1" of="$MNT/f" bs=1M conv=fsync status=none ;;
	esac
	kill -INT "$PERF_PID"
	wait "$PERF_PID" || true
	PERF_PID=
	perf report -i "$PERF_DIR/$name.data" --no-children --sort dso,symbol \
		--stdio -g none 2>/dev/null | grep -v '^#' | grep . | head -30 \
		>"$PERF_DIR/$name.txt"
	perf report -i "$PERF_DIR/$name.data" --no-children --sort dso \
		--stdio -g none 2>/dev/null | grep -v '^#' | grep . \
		>"$PERF_DIR/$name.dso.txt"
	umount_store
	drop_store
}
if [ -n "$PERF_DIR" ]; then
	mkdir -p "$PERF_DIR"
	profile random "$RAND"
	profile text "$TEXT"
	profile tree
	log "profiles in $PERF_DIR (*.txt: top symbols; *.data: perf report -i)"
fi

# ---- report ---------------------------------------------------------------

row() { # label unit key-prefix
	local p s
	p=$(stats "$3.plain")
	s=$(stats "$3.stash")
	echo "$p $s" | awk -v l="$1" -v u="$2" '{
		printf "%-22s %-5s %9.1f (%7.1f-%7.1f) %9.1f (%7.1f-%7.1f) %7.2f\n",
			l, u, $1, $2, $3, $4, $5, $6, ($1 > 0 ? $4 / $1 : 0) }'
}
one() { # label unit key format
	stats "$3" | awk -v l="$1" -v u="$2" -v f="$4" '{
		printf "%-22s %-5s " f " (" f "-" f ")\n", l, u, $1, $2, $3 }'
}

WALL=$(elapsed "$T0" "$(now)")
PSI=$(awk -v a="$PSI0" -v b="$(psi_cpu)" -v w="$WALL" 'BEGIN { if (a && b) printf "%.0f%%", (b - a) / 1e6 / w * 100; else print "n/a" }')
echo "stashfs basic benchmark: $BUILT_FROM, $(uname -r), $(nproc) cpus, $(df -T "$T" | awk 'NR == 2 { print $2 " on " $1 }')"
echo "size $SIZE_MIB MiB, $REPS reps; load average before $LOAD0, after $(cut -d' ' -f1-3 /proc/loadavg); CPU pressure during the run $PSI (share of time something waited for a CPU)"
echo "median (min-max); ratio = stashfs median / plain median"
echo "tree: $TREE_SRC, $TREE_FILES files, $TREE_RAW bytes"
printf '%-22s %-5s %-27s %-27s %7s\n' workload unit plain stashfs ratio
row "random write"          MB/s random.write
row "random read cold"      MB/s random.cold
row "random read warm"      MB/s random.warm
row "text write"            MB/s text.write
row "text read cold"        MB/s text.cold
row "text read warm"        MB/s text.warm
row "tree cp -a"            s    tree.cp
row "tree cp -a +sync/umnt" s    tree.durable
echo
echo "stashfs only"
one "stored/logical random" x     random.stored %.3f
one "stored/logical text"   x     text.stored   %.3f
one "stored/raw tree"       x     tree.stored   %.3f
one "CPU write random"      s/GiB random.cpuw   %.2f
one "CPU write text"        s/GiB text.cpuw     %.2f
one "CPU write tree"        s/GiB tree.cpuw     %.2f
one "CPU read random"       s/GiB random.cpur   %.2f
one "CPU read text"         s/GiB text.cpur     %.2f
one "peak RSS write random" KiB   random.rssw   %.0f
one "peak RSS write text"   KiB   text.rssw     %.0f
one "peak RSS write tree"   KiB   tree.rssw     %.0f
one "peak RSS read random"  KiB   random.rssr   %.0f
one "peak RSS read text"    KiB   text.rssr     %.0f
echo
echo "inputs: urandom generator $GEN_RAND MB/s (once, into a file); source file feeding dd (warm): random $FEED_RAND MB/s, text $FEED_TEXT MB/s; text built in ${GEN_TEXT_S}s ($pass passes)"
echo "notes: warm = read again at once (plain: page cache; stashfs: the kernel page cache too, kept across opens with keep_cache); CPU read is per GiB over cold+warm; stored = store folder growth after umount"
echo "run time ${WALL%.*} s"
