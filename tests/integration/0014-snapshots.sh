#!/bin/bash
# Snapshots through the mount (mkdir/rmdir/mv in MNT/.backups):
# 1. taken while writers append to and rewrite files, each snapshot holds
#    every file exactly as one of its closes left it, the last close
#    before the mkdir returned (or one under way), and stays so while the
#    live tree goes on changing;
# 2. every write path into a snapshot fails with EROFS and changes nothing;
# 3. the listing, times, renames, errors, .backups hidden from the root,
#    copies with cp -a / rsync -a / getfattr equal to the tree at
#    snapshot time, inode numbers;
# 4. snapshots persist across a remount, rmdir drops one for good, and
#    the chunks only a dropped snapshot held become dead bytes;
# 5. a snapshot is durable when mkdir returns (kill -9 right after), and
#    one taken after the crash is consistent.
. "$(dirname "$0")/../lib.sh"

sw=$STASH_TEST_TOOLS/snapwriter
gen=$STASH_TEST_TOOLS/genbytes
[ -x "$sw" ] || fail "snapwriter not built: $sw"
[ -x "$gen" ] || fail "genbytes not built: $gen"

stash_init
stash_mount
B=$MNT/.backups

# Every entry under $1 (not following links): type, mode, owner, size,
# mtime, link count and target of each, the sha256 of each file and the
# user.* xattrs, in name order. Directory sizes and link counts are left
# out (they differ from disk filesystems).
# Fail with what differs when the dump of $1 is not $2.
same_tree() {
	local now
	now=$(tree_dump "$1")
	[ "$now" = "$2" ] && return 0
	diff <(printf '%s\n' "$2") <(printf '%s\n' "$now") | head -20 >&2
	fail "$3"
}

tree_dump() {
	(
		cd "$1" || exit 1
		find . -type d -printf '%p d %m %U:%G %T@\n' | LC_ALL=C sort
		find . ! -type d -printf '%p %y %m %U:%G %s %T@ %n %l\n' |
			LC_ALL=C sort
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum
		find . -print0 | LC_ALL=C sort -z |
			xargs -0r getfattr -h -d -m '^user\.' --absolute-names 2>&1
	) || fail "dumping $1"
}

lines() {
	wc -l <"$1"
}

# ---- 1. snapshots while files are written ----

W=$MNT/files/w
mkdir -p "$W"
"$sw" init append "$W" 3
"$sw" init rewrite "$W" 3
: >"$T/a.log"
: >"$T/r.log"
"$sw" run append "$W" 3 "$T/a.log" &
apid=$!
"$sw" run rewrite "$W" 3 "$T/r.log" &
rpid=$!

# Wait until both logs have at least $1 and $2 lines.
wait_logs() {
	local i
	for ((i = 0; i < 6000; i++)); do
		[ "$(lines "$T/a.log")" -ge "$1" ] &&
			[ "$(lines "$T/r.log")" -ge "$2" ] && return 0
		kill -0 "$apid" "$rpid" 2>/dev/null || fail "a writer stopped"
		sleep 0.02
	done
	fail "the writers stalled"
}

# The last state of file $3 that log $1 records in its first $2 lines
# (0: the state before the first round).
state_at() {
	head -n "$2" "$1" | awk -v i="$3" '$1 == i { k = $2 } END { print k + 0 }'
}

nsnap=6
declare -a a0 a1 r0 r1 t0 t1
for n in $(seq 1 $nsnap); do
	# a few rounds of each writer between two snapshots
	wait_logs $(($(lines "$T/a.log") + 4)) $(($(lines "$T/r.log") + 4))
	t0[n]=$(date +%s)
	a0[n]=$(lines "$T/a.log")
	r0[n]=$(lines "$T/r.log")
	mkdir "$B/snap$n" || fail "mkdir $B/snap$n"
	# one more round of each may have committed before mkdir returned
	# and not be logged yet
	a1[n]=$(($(lines "$T/a.log") + 1))
	r1[n]=$(($(lines "$T/r.log") + 1))
	t1[n]=$(date +%s)
done

# Each file of each snapshot is a state in its window, checked while the
# writers go on.
check_snapshots() {
	local n i lo hi
	for n in $(seq 1 $nsnap); do
		for i in 0 1 2; do
			lo=$(state_at "$T/a.log" "${a0[n]}" $i)
			hi=$(state_at "$T/a.log" "${a1[n]}" $i)
			"$sw" check append "$B/snap$n/files/w/a$i" $i "$lo" "$hi" \
				>/dev/null || fail "snap$n/files/w/a$i"
			lo=$(state_at "$T/r.log" "${r0[n]}" $i)
			hi=$(state_at "$T/r.log" "${r1[n]}" $i)
			"$sw" check rewrite "$B/snap$n/files/w/r$i" $i "$lo" "$hi" \
				>/dev/null || fail "snap$n/files/w/r$i"
		done
		[ "$(ls "$B/snap$n/files/w" | wc -l)" = 6 ] ||
			fail "snap$n/files/w: $(ls "$B/snap$n/files/w")"
	done
}
check_snapshots

# Hash the snapshots and the live files, let the writers run on for a
# few seconds and a few rounds more, hash again: only the live tree moved.
snap_sums() {
	(cd "$B" && find . -type f -print0 | LC_ALL=C sort -z |
		xargs -0r sha256sum) || fail "hashing the snapshots"
}
h1=$(snap_sums)
live1=$(cat "$W"/* | sha256sum)
start=$(date +%s)
while [ $(($(date +%s) - start)) -lt 3 ]; do
	wait_logs $(($(lines "$T/a.log") + 3)) $(($(lines "$T/r.log") + 3))
done
h2=$(snap_sums)
kill "$apid" "$rpid"
wait "$apid" "$rpid" 2>/dev/null || true
live2=$(cat "$W"/* | sha256sum)
[ "$h1" = "$h2" ] || fail "a snapshot changed while the live tree was written"
[ "$live1" != "$live2" ] || fail "the live files did not change"
check_snapshots
echo "1: $nsnap snapshots under writers ($(lines "$T/a.log") appends," \
	"$(lines "$T/r.log") rewrites): ok"

# ---- 3 (first part). the listing, names, times ----

for n in $(seq 1 $nsnap); do
	m=$(stat -c %Y "$B/snap$n")
	[ "$m" -ge "${t0[n]}" ] && [ "$m" -le "${t1[n]}" ] ||
		fail "snap$n mtime $m, mkdir ran in [${t0[n]}, ${t1[n]}]"
done
# ls -l lists them oldest first, with those times
ls -l --time-style=+%s "$B" >"$T/ls" || fail "ls -l .backups"
[ "$(awk 'NF > 2 { print $NF }' "$T/ls" | tr '\n' ' ')" = \
	"$(for n in $(seq 1 $nsnap); do printf 'snap%d ' "$n"; done)" ] ||
	fail "ls -l .backups: $(cat "$T/ls")"
[ "$(awk '$NF == "snap3" { print $(NF - 1) }' "$T/ls")" = \
	"$(stat -c %Y "$B/snap3")" ] || fail "ls -l time of snap3"
[ "$(awk '$NF == "snap3" { print substr($1, 1, 1) }' "$T/ls")" = d ] ||
	fail "a snapshot is not listed as a directory"

# duplicate names, bad names
out=$(mkdir "$B/snap1" 2>&1) && fail "mkdir of a taken name"
case $out in *"File exists"*) ;; *) fail "mkdir of a taken name: $out" ;; esac
long=$(printf 'n%.0s' $(seq 1 256))
out=$(mkdir "$B/$long" 2>&1) && fail "mkdir of a 256-byte name"
[ ! -e "$B/$long" ] || fail "a 256-byte name exists"
mkdir "$B/${long:1}" || fail "mkdir of a 255-byte name"
rmdir "$B/${long:1}" || fail "rmdir of a 255-byte name"
if command -v python3 >/dev/null; then
	out=$(python3 -c 'import os, sys; os.mkdir(sys.argv[1])' "$B/$long" 2>&1) &&
		fail "os.mkdir of a 256-byte name"
	case $out in *Error*) ;; *) fail "os.mkdir of a 256-byte name: $out" ;; esac
fi

# renames
mv "$B/snap6" "$B/renamed" || fail "mv of a snapshot"
[ ! -e "$B/snap6" ] && [ -d "$B/renamed/files/w" ] || fail "renamed snapshot"
h=$(cd "$B/renamed" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
[ "$h" = "$(printf '%s\n' "$h2" | grep '^[0-9a-f]*  \./snap6/' |
	sed 's|\./snap6/|./|')" ] || fail "content of the renamed snapshot"
must_fail mv -T "$B/renamed" "$B/snap5" 2>/dev/null
[ -d "$B/renamed" ] && [ -d "$B/snap5" ] || fail "mv onto a snapshot changed one"
mv "$B/renamed" "$B/snap6" || fail "mv back"
# .backups itself is not in the root's listing, nor a name to take
ls -a "$MNT" | grep -qx '\.backups' && fail "ls -a lists .backups"
must_fail mkdir "$MNT/.backups" 2>/dev/null
must_fail touch "$MNT/.backups" 2>/dev/null
must_fail mv "$MNT/files/w" "$MNT/.backups" 2>/dev/null
[ -d "$W" ] || fail "mv onto .backups lost the folder"
must_fail rmdir "$MNT/.backups" 2>/dev/null
must_fail mv "$MNT/.backups" "$MNT/files/bk" 2>/dev/null
[ -d "$B/snap1/files/w" ] && [ ! -e "$MNT/files/bk" ] ||
	fail "rmdir or mv of .backups did something"
find "$MNT" | grep -q '\.backups' && fail "find enters .backups"
du -a "$MNT" | grep -q '\.backups' && fail "du enters .backups"
# a listing longer than one readdir reply resumes where it stopped
pad=$(printf 'x%.0s' $(seq 1 200))
for n in $(seq -w 1 60); do
	mkdir "$B/many-$n-$pad" || fail "mkdir many-$n"
done
rmdir "$B/many-30-$pad"
ls -f "$B" | grep '^many-' | sed 's/-x*$//' >"$T/many"
[ "$(wc -l <"$T/many")" = 59 ] && [ "$(sort -u "$T/many" | wc -l)" = 59 ] ||
	fail "listing 59 snapshots: $(wc -l <"$T/many") names"
[ "$(head -1 "$T/many")" = many-01 ] && [ "$(tail -1 "$T/many")" = many-60 ] ||
	fail "snapshots not listed oldest first"
for n in $(seq -w 1 60); do
	[ "$n" = 30 ] || rmdir "$B/many-$n-$pad" || fail "rmdir many-$n"
done
[ "$(ls "$B" | tr '\n' ' ')" = "$(for n in $(seq 1 $nsnap); do printf 'snap%d ' "$n"; done)" ] ||
	fail "after dropping many: $(ls "$B")"
echo "3: listing, times, names, renames, hidden: ok"

# ---- 2. a snapshot is read-only ----

S0=$MNT/files/tree
mkdir -p "$S0/dir/empty" "$S0/dir/sub"
echo hello >"$S0/a.txt"
"$gen" 7 300K >"$S0/dir/sub/big"
ln "$S0/a.txt" "$S0/dir/hard"
ln -s ../a.txt "$S0/dir/sym"
: >"$S0/empty"
mkfifo "$S0/fifo"
setfattr -n user.color -v blue "$S0/a.txt"
setfattr -n user.dir -v d "$S0/dir"
chmod 640 "$S0/a.txt"
touch -d '2001-02-03 04:05:06.123456789' "$S0/dir/sub/big"
# Times in a past second: rsync leaves a time alone when it is in the
# same second as the copy's own, so "now" would make its copies differ.
find "$S0" -depth ! -path "$S0/dir/sub/big" \
	-exec touch -h -d '2002-03-04 05:06:07.5' {} +
cp -a "$S0" "$T/ref" # the tree at snapshot time
mkdir "$B/ro"
S=$B/ro/files/tree
before=$(tree_dump "$S")
[ "$before" = "$(tree_dump "$T/ref")" ] ||
	fail "snapshot differs from the tree: $(diff <(tree_dump "$T/ref") <(echo "$before"))"
live_before=$(tree_dump "$S0")

# $@ must fail with "Read-only file system".
erofs() {
	local out
	if out=$("$@" 2>&1 </dev/null); then
		fail "succeeded in a snapshot: $*"
	fi
	case $out in
	*"Read-only file system"*) ;;
	*) fail "$*: '$out', not EROFS" ;;
	esac
}
erofs touch "$S/new"
erofs sh -c ': >"$1"' _ "$S/new"
erofs sh -c ': >"$1"' _ "$S/a.txt"
erofs sh -c 'echo more >>"$1"' _ "$S/a.txt"
erofs sh -c 'exec 5<>"$1"' _ "$S/a.txt"
erofs sh -c 'exec 5>"$1"' _ "$S/empty"
if command -v python3 >/dev/null; then
	erofs python3 -c 'import sys; open(sys.argv[1], "r+")' "$S/a.txt"
	erofs python3 -c 'import os, sys; os.open(sys.argv[1], os.O_RDONLY | os.O_TRUNC)' "$S/a.txt"
fi
erofs dd if=/dev/zero of="$S/dir/sub/big" bs=1 count=1 conv=notrunc status=none
erofs truncate -s 0 "$S/a.txt"
erofs truncate -s 1M "$S/empty"
erofs chmod 600 "$S/a.txt"
erofs chmod 700 "$S/dir"
erofs chown 123:456 "$S/a.txt"
erofs chown -h 123 "$S/dir/sym"
erofs touch -d '2000-01-01' "$S/a.txt"
erofs touch "$S/a.txt"
erofs touch -h "$S/dir/sym"
erofs mkdir "$S/newdir"
erofs mkfifo "$S/newfifo"
erofs cp /etc/hostname "$S/copied"
erofs rm "$S/a.txt"
erofs rm -f "$S/dir/sym"
erofs rm -rf "$S/dir/sub"
erofs rmdir "$S/dir/empty"
erofs mv "$S/a.txt" "$S/b.txt"
erofs mv "$S/a.txt" "$S/dir/a.txt"
erofs mv "$S/dir/empty" "$S/moved"
erofs mv "$S/a.txt" "$MNT/files/out.txt"
erofs mv "$S0/a.txt" "$S/in.txt"
erofs mv "$S0/a.txt" "$S/empty"
erofs ln "$S/a.txt" "$MNT/files/hl"
erofs ln "$S0/a.txt" "$S/hl"
erofs ln "$S/a.txt" "$S/hl"
erofs ln -s anything "$S/sl"
erofs setfattr -n user.new -v 1 "$S/a.txt"
erofs setfattr -n user.color -v red "$S/a.txt"
erofs setfattr -x user.color "$S/a.txt"
erofs setfattr -x user.dir "$S/dir"
# the snapshot's root too
erofs touch "$B/ro/new"
erofs mkdir "$B/ro/new"
erofs chmod 700 "$B/ro"
erofs touch -d '2000-01-01' "$B/ro"
erofs setfattr -n user.x -v 1 "$B/ro"
erofs rmdir "$B/ro/articles"
erofs mv "$B/ro/files" "$B/ro/files2"
# .backups holds snapshots only
must_fail touch "$B/file" 2>/dev/null
must_fail ln -s x "$B/link" 2>/dev/null
must_fail mkfifo "$B/fifo" 2>/dev/null
must_fail mv "$S0/empty" "$B/empty" 2>/dev/null
must_fail mv "$B/ro" "$MNT/files/ro" 2>/dev/null
[ ! -e "$B/file" ] && [ ! -e "$B/link" ] && [ ! -e "$B/empty" ] ||
	fail "a file was made in .backups"
# reading and syncing a snapshot's file work
cmp "$S/dir/sub/big" "$T/ref/dir/sub/big" || fail "reading a snapshot's file"
sync "$S/dir/sub/big" || fail "sync of a snapshot's file"

[ "$before" = "$(tree_dump "$S")" ] ||
	fail "the snapshot changed: $(diff <(echo "$before") <(tree_dump "$S"))"
[ "$live_before" = "$(tree_dump "$S0")" ] ||
	fail "the live tree changed: $(diff <(echo "$live_before") <(tree_dump "$S0"))"
[ ! -e "$MNT/files/out.txt" ] && [ ! -e "$MNT/files/hl" ] &&
	[ ! -e "$MNT/files/ro" ] || fail "a refused change left a file"
echo "2: every write path into a snapshot fails with EROFS: ok"

# ---- 3 (second part). copies, xattrs, inode numbers ----

# change the live tree every way
echo changed >"$S0/a.txt"
"$gen" 8 100K >>"$S0/dir/sub/big"
rm "$S0/dir/hard" "$S0/empty"
mv "$S0/dir/sym" "$S0/sym2"
setfattr -n user.color -v red "$S0/a.txt"
setfattr -x user.dir "$S0/dir"
chmod 600 "$S0/dir/sub/big"
rmdir "$S0/dir/empty"
[ "$before" = "$(tree_dump "$S")" ] || fail "the snapshot follows the live tree"
[ "$(cat "$S/a.txt")" = hello ] || fail "snapshot a.txt"
[ "$(cat "$S/dir/sym")" = hello ] || fail "a symlink inside the snapshot"

mkdir "$T/cp" "$T/rsync"
cp -a "$B/ro/." "$T/cp/" || fail "cp -a from a snapshot"
diff -r --no-dereference -x fifo "$T/ref" "$T/cp/files/tree" || fail "diff -r of the cp -a copy"
same_tree "$T/cp/files/tree" "$before" "cp -a copy metadata"
rsync -aHX "$B/ro/" "$T/rsync/" || fail "rsync -aHX from a snapshot"
diff -r --no-dereference -x fifo "$T/ref" "$T/rsync/files/tree" || fail "diff -r of the rsync copy"
same_tree "$T/rsync/files/tree" "$before" "rsync copy metadata"
# user.color on a.txt and its hard link, user.dir on dir
[ "$(cd "$S" && getfattr -h -d -R . 2>/dev/null | grep -c '^user\.')" = 3 ] ||
	fail "getfattr -d -R in the snapshot"
[ "$(getfattr --absolute-names --only-values -n user.color "$S/a.txt")" = blue ] ||
	fail "xattr of the snapshot's file"
[ "$(getfattr --absolute-names --only-values -n user.color "$S0/a.txt")" = red ] ||
	fail "xattr of the live file"

# inode numbers: (snapshot id << 40) | live number; hard links share one
inos() {
	(cd "$1" && find . -printf '%p %i\n' | LC_ALL=C sort)
}
root_ino=$(stat -c %i "$B/ro")
id=$((root_ino >> 40))
[ "$id" -gt 0 ] && [ "$root_ino" = $(((id << 40) | 1)) ] ||
	fail "snapshot root inode $root_ino"
for f in . dir dir/sub dir/sub/big a.txt; do
	i=$(stat -c %i "$S/$f")
	l=$(stat -c %i "$S0/$f")
	[ "$i" = $(((id << 40) | l)) ] || fail "inode of $f: $i, live $l"
done
[ "$(stat -c %i "$S/a.txt")" = "$(stat -c %i "$S/dir/hard")" ] ||
	fail "hard links in a snapshot have two inode numbers"
[ "$(stat -c %h "$S/a.txt")" = 2 ] || fail "link count in a snapshot"
comm -12 <(inos "$S" | awk '{ print $2 }' | sort) \
	<(inos "$MNT" | awk '{ print $2 }' | sort) | grep -q . &&
	fail "a snapshot inode number is also a live one"
inos "$B" >"$T/inos.before"
echo "3: cp -a, rsync -aHX, getfattr, inode numbers: ok"

# ---- 4. persistence, rmdir, dead bytes ----

snaps_before=$(ls "$B")
sums_before=$(snap_sums)
stash_remount
[ "$(ls "$B")" = "$snaps_before" ] || fail "snapshots after a remount: $(ls "$B")"
[ "$(snap_sums)" = "$sums_before" ] || fail "snapshot content after a remount"
[ "$before" = "$(tree_dump "$S")" ] || fail "snapshot metadata after a remount"
inos "$B" | cmp -s - "$T/inos.before" || fail "inode numbers changed on remount"
[ "$(stat -c %Y "$B/snap3")" = "$(awk '$NF == "snap3" { print $(NF - 1) }' "$T/ls")" ] ||
	fail "creation time after a remount"
ls -a "$MNT" | grep -qx '\.backups' && fail "ls -a lists .backups after a remount"

rmdir "$B/snap2" || fail "rmdir of a snapshot"
[ ! -e "$B/snap2" ] || fail "snap2 still there"
must_fail rmdir "$B/snap2" 2>/dev/null
stash_remount
[ ! -e "$B/snap2" ] || fail "a dropped snapshot is back after a remount"
[ "$(ls "$B" | grep -c .)" = $(($(echo "$snaps_before" | wc -l) - 1)) ] ||
	fail "snapshots after rmdir and remount: $(ls "$B")"

stat_field() { # name: a number from stashfs stats --json
	"$STASHFS" stats "$MNT" --json |
		sed -n "s/.*\"$1\":[[:space:]]*\([0-9.e+]*\).*/\1/p"
}
"$gen" 9 4M >"$MNT/files/doomed"
dead0=$(stat_field dead_bytes)
[ -n "$dead0" ] || fail "no dead_bytes in stats --json"
mkdir "$B/holds"
rm "$MNT/files/doomed"
dead1=$(stat_field dead_bytes)
[ "$dead1" = "$dead0" ] || fail "dead bytes $dead0 -> $dead1 while a snapshot holds them"
cmp <("$gen" 9 4M) "$B/holds/files/doomed" || fail "a deleted file in a snapshot"
rmdir "$B/holds"
dead2=$(stat_field dead_bytes)
[ "$dead2" -ge $((dead0 + (4 << 20))) ] ||
	fail "dead bytes $dead0 -> $dead2 after the last snapshot holding 4 MiB went"
echo "4: persistence, rmdir, dead bytes ($dead0 -> $dead2): ok"

# ---- 5. kill -9 right after a snapshot ----

"$gen" 10 2M >"$MNT/files/late"
mkdir "$B/pre-crash"
late_dump=$(tree_dump "$B/pre-crash/files")
pid=$(stash_pid)
{ [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm")" = stashfs ]; } ||
	fail "no daemon found (pid '$pid')"
kill -9 "$pid"
tail -s 0.05 --pid="$pid" -f /dev/null
fusermount3 -u "$MNT" || fail "fusermount3 -u of the dead mount"
stash_mount
[ -d "$B/pre-crash" ] || fail "a snapshot taken before kill -9 is gone"
[ "$late_dump" = "$(tree_dump "$B/pre-crash/files")" ] ||
	fail "a snapshot taken before kill -9 differs"
mkdir "$B/post-crash"
diff -r --no-dereference -x fifo "$MNT/files" "$B/post-crash/files" || fail "a snapshot after the crash"
[ "$(tree_dump "$MNT/files")" = "$(tree_dump "$B/post-crash/files")" ] ||
	fail "a snapshot after the crash: metadata"
[ "$before" = "$(tree_dump "$S")" ] || fail "an old snapshot after the crash"
echo "5: snapshots and kill -9: ok"

stash_umount
if ! "$STASHFS" verify "$STORE" >"$T/verify" 2>&1; then
	cat "$T/verify" >&2
	fail "stashfs verify on a store with snapshots"
fi
echo ok
