#!/bin/bash
# A tree of text (/usr/include) is stored in well under half its size: the
# store folder grows by less than half the apparent size of the source,
# and `stashfs stats MNT --json` reports a compression ratio above 2. The
# tree reads back identical after a remount.
. "$(dirname "$0")/../lib.sh"

SRC=/usr/include
[ -d "$SRC" ] || { echo "no $SRC: skipping" >&2; exit 77; }
src_bytes=$(du -sb --apparent-size "$SRC" | cut -f1)
[ "$src_bytes" -ge $((20 << 20)) ] ||
	{ echo "$SRC holds only $src_bytes bytes: skipping" >&2; exit 77; }

stash_init
before=$(store_bytes)
stash_mount
cp -a "$SRC" "$MNT/files/include"
# Unmounting finishes the open pack and checkpoints the catalog: every
# byte the copy costs is now in the store folder.
stash_remount
added=$(($(store_bytes) - before))
ratio=$(awk -v a="$added" -v s="$src_bytes" 'BEGIN { printf "%.3f", a / s }')
echo "source $src_bytes bytes, store grew by $added bytes: $ratio of the source"
[ $((added * 2)) -lt "$src_bytes" ] ||
	fail "store grew by $added bytes for $src_bytes bytes of text (ratio $ratio, limit 0.5)"

diff -r --no-dereference "$SRC" "$MNT/files/include" >&2 || fail "tree differs after remount"

json=$("$STASHFS" stats "$MNT" --json)
cr=$(printf '%s\n' "$json" |
	sed -n 's/^[[:space:]]*"compression_ratio":[[:space:]]*\([0-9.eE+-]*\),\{0,1\}[[:space:]]*$/\1/p')
[ -n "$cr" ] || { printf '%s\n' "$json" >&2; fail "no compression_ratio in stats --json"; }
echo "stats: compression_ratio $cr"
awk -v r="$cr" 'BEGIN { exit !(r > 2) }' || fail "compression_ratio $cr, expected > 2"
echo "ok"
