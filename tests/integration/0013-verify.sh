#!/bin/bash
# `stashfs verify`:
# - a store written through the mount and unmounted verifies clean
#   (exit 0, last line "clean"), quick and --full;
# - a byte flipped in the middle of its pack file is not seen by the quick
#   check (the chunk is still where the catalog says, exit 0), but
#   `verify --full` exits 1, ends with "damaged: N problems" and names the
#   damaged file by each of its paths; that file's reads fail with EIO on
#   the mount, the other files read;
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

# One pack; a byte in its middle belongs to a chunk of the big file.
packs=$(find "$STORE/packs" -type f)
[ "$(echo "$packs" | wc -l)" = 1 ] || fail "expected one pack file: $packs"
size=$(stat -c %s "$packs")
flip_byte "$packs" $((size / 2))

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
if grep -Eq '^  /(files/small\.txt|articles/a\.json)' "$T/out"; then
	fail "--full names a file that is not damaged"
fi

# What the report says, the mount shows: EIO there, the rest reads.
stash_mount
must_fail cat "$MNT/files/docs/big file.bin" >/dev/null 2>"$T/cat.err"
grep -q 'Input/output error' "$T/cat.err" || fail "reading the damaged file: $(cat "$T/cat.err")"
[ "$(cat "$MNT/files/small.txt")" = hello ] || fail "an undamaged file does not read"
cmp <("$gen" 2 20K) "$MNT/articles/a.json" || fail "an undamaged file differs"

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
