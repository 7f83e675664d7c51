#!/bin/bash
# `stashfs verify`:
# - a store written through the mount and unmounted verifies clean
#   (exit 0, last line "clean"), quick and --full; so does it once a
#   snapshot (mkdir MNT/.backups/s1) shares its chunks and files changed;
# - the second session's pack moved to another pack id: verify exits 1,
#   `verify --repair` finds the chunks there and exits 5 ("repaired"),
#   and the store verifies clean again;
# - a byte flipped in the middle of the first pack is not seen by the
#   quick check (the chunk is still where the catalog says, exit 0), but
#   `verify --full` exits 1, ends with "damaged: N problems" and names
#   the damaged file by each of its paths, live and in snapshot s1;
#   `--repair` cannot save it: exit 1, the file is marked (xattr
#   user.stashfs.damaged, live and in the snapshot) and a second run
#   says the damage is all marked and changes nothing; on the mount the
#   file's reads fail with EIO, the other files read;
# - a mounted store: exit 4, and stderr says to unmount;
# - a wrong key: exit 3; no store argument: exit 2.
. "$(dirname "$0")/../lib.sh"

gen=$STASH_TEST_TOOLS/genbytes
[ -x "$gen" ] || fail "genbytes not built: $gen"

# Run `stashfs verify ARGS...`; its exit code in $rc, stdout in $T/out,
# stderr in $T/err.
verify() {
	rc=0
	"$STASHFS" verify "$@" >"$T/out" 2>"$T/err" || rc=$?
	echo "verify $*: exit $rc"
}

# Flip the lowest bit of the byte at offset $2 of file $1.
flip_byte() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	# shellcheck disable=SC2059 # the format is the byte, on purpose
	printf "\\$(printf '%03o' $((b ^ 1)))" |
		dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

stash_init
stash_mount
# The big file first, closed before the others are written: its chunks
# fill the pack from the header to well past the middle.
mkdir -p "$MNT/files/docs"
"$gen" 1 4M >"$T/big"
cp "$T/big" "$MNT/files/docs/big file.bin"
ln "$MNT/files/docs/big file.bin" "$MNT/files/big-link"
echo hello >"$MNT/files/small.txt"
"$gen" 2 20K >"$MNT/articles/a.json"
stash_umount

verify "$STORE"
[ "$rc" = 0 ] || { cat "$T/out" "$T/err" >&2; fail "verify of a sound store"; }
[ "$(tail -n 1 "$T/out")" = clean ] || { cat "$T/out" >&2; fail "last line is not 'clean'"; }
grep -q '^catalog: ok' "$T/out" || fail "no catalog line"
grep -q '^chunk locations: ok' "$T/out" || fail "no chunk locations line"
verify --full "$STORE"
[ "$rc" = 0 ] || { cat "$T/out" "$T/err" >&2; fail "verify --full of a sound store"; }
grep -q '^chunk contents: ok' "$T/out" || { cat "$T/out" >&2; fail "no 'chunk contents: ok'"; }
[ "$(tail -n 1 "$T/out")" = clean ] || fail "--full: last line is not 'clean'"

# One pack so far: the big file's chunks fill it past the middle.
packs=$(find "$STORE/packs" -type f)
[ "$(echo "$packs" | wc -l)" = 1 ] || fail "expected one pack file: $packs"
pack1=$packs

# A snapshot shares every chunk; then files change (new data: pack 2).
stash_mount
mkdir "$MNT/.backups/s1"
echo more >>"$MNT/files/small.txt"
"$gen" 3 300K >"$MNT/files/new.bin"
stash_umount
verify --full "$STORE"
[ "$rc" = 0 ] || { cat "$T/out" "$T/err" >&2; fail "verify --full with a snapshot: exit $rc"; }
grep -q '^chunk refs: ok' "$T/out" || { cat "$T/out" >&2; fail "refs with a snapshot"; }
[ "$(tail -n 1 "$T/out")" = clean ] || fail "with a snapshot: last line is not 'clean'"

# Pack 2 moved to pack id 9: its trailer names pack 2 and does not count;
# the chunks are found at the offsets their rows say.
pack2=$STORE/packs/02/0000000000000002
[ -f "$pack2" ] || fail "no pack 2"
mkdir -p "$STORE/packs/09"
mv "$pack2" "$STORE/packs/09/0000000000000009"
verify "$STORE"
[ "$rc" = 1 ] || { cat "$T/out" "$T/err" >&2; fail "verify of a moved pack: exit $rc, expected 1"; }
grep -q 'the pack file is missing' "$T/out" || { cat "$T/out" >&2; fail "moved pack not reported"; }
grep -q '^  /files/new\.bin: ' "$T/out" || { cat "$T/out" >&2; fail "moved pack: /files/new.bin not named"; }
verify --repair "$STORE"
cat "$T/out"
[ "$rc" = 5 ] || { cat "$T/err" >&2; fail "verify --repair of a moved pack: exit $rc, expected 5"; }
tail -n 1 "$T/out" | grep -Eq '^repaired: [0-9]+ problems?$' || fail "--repair: last line is not 'repaired: N problems'"
grep -q 'relocated to pack 0000000000000009' "$T/out" || fail "--repair does not say where chunks went"
verify --full "$STORE"
[ "$rc" = 0 ] || { cat "$T/out" "$T/err" >&2; fail "verify --full after the repair: exit $rc"; }
# Progress goes to stderr only when it is a terminal.
[ ! -s "$T/err" ] || { cat "$T/err" >&2; fail "verify --full wrote to stderr (not a terminal)"; }
if command -v script >/dev/null; then
	script -qec "$STASHFS verify --full $STORE >/dev/null" /dev/null >"$T/tty" ||
		fail "verify --full on a terminal failed"
	grep -aq 'verify: [0-9]*/[0-9]* chunks, .* MiB/s, ETA' "$T/tty" ||
		{ cat -v "$T/tty" >&2; fail "no progress line on a terminal"; }
fi

# A byte in the middle of pack 1 belongs to a chunk of the big file.
size=$(stat -c %s "$pack1")
flip_byte "$pack1" $((size / 2))

verify "$STORE"
[ "$rc" = 0 ] || { cat "$T/out" "$T/err" >&2; fail "quick verify: exit $rc, expected 0"; }
[ "$(tail -n 1 "$T/out")" = clean ] || fail "quick verify: last line is not 'clean'"

verify --full "$STORE"
cat "$T/out"
[ "$rc" = 1 ] || { cat "$T/err" >&2; fail "verify --full of a damaged store: exit $rc, expected 1"; }
tail -n 1 "$T/out" | grep -Eq '^damaged: [0-9]+ problems?$' ||
	fail "--full: last line is not 'damaged: N problems'"
grep -q '^  /files/docs/big file\.bin[ :]' "$T/out" ||
	fail "--full does not name /files/docs/big file.bin"
grep -q '^  /files/big-link[ :]' "$T/out" ||
	fail "--full does not name the hard link /files/big-link"
grep -q '^  snapshot s1: /files/docs/big file\.bin[ :]' "$T/out" ||
	fail "--full does not name the big file in snapshot s1"
grep -q '^  snapshot s1: /files/big-link[ :]' "$T/out" ||
	fail "--full does not name the hard link in snapshot s1"
if grep -Eq '^  (snapshot s1: )?/(files/small\.txt|files/new\.bin|articles/a\.json)' "$T/out"; then
	fail "--full names a file that is not damaged"
fi

# No other copy of that chunk: --repair marks the file, exit 1.
verify --full --repair "$STORE"
cat "$T/out"
[ "$rc" = 1 ] || { cat "$T/err" >&2; fail "--repair of lost data: exit $rc, expected 1"; }
grep -q 'no good copy found' "$T/out" || fail "--repair: no 'no good copy found'"
grep -q '^  /files/docs/big file\.bin .*marked as damaged now' "$T/out" ||
	fail "--repair does not say it marked the big file"
tail -n 1 "$T/out" | grep -Eq '^damaged: [0-9]+ problems?; all in files marked as damaged \(2\)$' ||
	fail "--repair: last line does not say the damage is marked"
cp "$T/out" "$T/out.repair"
# Again: the same damage, already marked; a repair changes nothing.
verify --full "$STORE"
[ "$rc" = 1 ] || fail "verify after --repair: exit $rc, expected 1"
grep -q 'marked as damaged by an earlier repair' "$T/out" || fail "second verify does not say the file is marked"
[ "$(tail -n 1 "$T/out")" = "$(tail -n 1 "$T/out.repair")" ] || fail "second verify: another last line"
verify --full --repair "$STORE"
[ "$rc" = 1 ] || fail "second --repair: exit $rc, expected 1"
grep -q '^repair: nothing to change' "$T/out" || { cat "$T/out" >&2; fail "second --repair changed something"; }

# What the report says, the mount shows: EIO there, the rest reads.
stash_mount
must_fail cat "$MNT/files/docs/big file.bin" >/dev/null 2>"$T/cat.err"
grep -q 'Input/output error' "$T/cat.err" || fail "reading the damaged file: $(cat "$T/cat.err")"
getfattr --only-values -n user.stashfs.damaged "$MNT/files/docs/big file.bin" >"$T/mark"
grep -Eq '^[0-9]+-[0-9]+(,[0-9]+-[0-9]+)*$' "$T/mark" || fail "mark on the live file: $(cat "$T/mark")"
getfattr --only-values -n user.stashfs.damaged "$MNT/.backups/s1/files/docs/big file.bin" >"$T/mark.s1"
cmp "$T/mark" "$T/mark.s1" || fail "the snapshot's copy has another mark"
# Bytes well before the damaged range read (kernel readahead makes a
# read just before it fail too).
first=$(cut -d- -f1 "$T/mark")
[ "$first" -gt $((1 << 20)) ] || fail "the damage starts at $first, expected past 1 MiB"
head -c $((512 << 10)) "$MNT/files/docs/big file.bin" | cmp - <(head -c $((512 << 10)) "$T/big") ||
	fail "bytes before the damage differ"
[ "$(cat "$MNT/files/small.txt")" = "$(printf "hello\nmore")" ] || fail "an undamaged file does not read"
cmp <("$gen" 2 20K) "$MNT/articles/a.json" || fail "an undamaged file differs"
cmp <("$gen" 3 300K) "$MNT/files/new.bin" || fail "a relocated file differs"

# Mounted: busy, and the user is told to unmount.
verify "$STORE"
[ "$rc" = 4 ] || { cat "$T/out" "$T/err" >&2; fail "verify of a mounted store: exit $rc, expected 4"; }
grep -q 'unmount' "$T/err" || { cat "$T/err" >&2; fail "stderr does not say to unmount"; }
stash_umount

# A wrong key: exit 3, one line on stderr.
"$STASHFS" init "$T/other" --key-file "$T/other.key" >/dev/null
verify "$STORE" --key-file "$T/other.key"
[ "$rc" = 3 ] || { cat "$T/out" "$T/err" >&2; fail "verify with a wrong key: exit $rc, expected 3"; }
grep -q 'wrong key' "$T/err" || { cat "$T/err" >&2; fail "stderr does not say the key is wrong"; }

# Usage errors: exit 2.
verify
[ "$rc" = 2 ] || fail "verify without a store: exit $rc, expected 2"
verify "$STORE" --no-such-option
[ "$rc" = 2 ] || fail "verify with an unknown option: exit $rc, expected 2"
"$STASHFS" verify --help | grep -q 'stashfs verify STORE' || fail "verify --help"
echo "ok"
