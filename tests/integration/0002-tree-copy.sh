#!/bin/bash
# A real tree of thousands of files (/usr/share/doc and /usr/include, plus
# hard links, symlinks and user.* xattrs added to a scratch copy) copied in
# with `cp -a` reads back byte-identical, and `rsync -aHAX` finds nothing
# to change (modes, owners, times, symlinks, hard links, xattrs), before
# and after a remount.
. "$(dirname "$0")/../lib.sh"

# Under ASan the daemon is about 4x slower: a smaller tree is enough.
if [ "${STASH_TEST_SANITIZER:-0}" = 1 ]; then
	trees=(/usr/include)
else
	trees=(/usr/share/doc /usr/include)
fi
for t in "${trees[@]}"; do
	[ -d "$t" ] || { echo "no $t: skipping" >&2; exit 77; }
done

SRC=$T/src
DST=$MNT/files/tree
mkdir "$SRC"
cp -a "${trees[@]}" "$SRC/"
nfiles=$(find "$SRC" -type f | wc -l)
[ "$nfiles" -ge 2000 ] || { echo "only $nfiles files in ${trees[*]}: skipping" >&2; exit 77; }

start=$SECONDS
# The system tree has no hard links and no xattrs: add some. Every 50th
# file gets a second name in its own folder and a third one elsewhere;
# every 37th file and every 10th folder gets user.* attributes, a few of
# them binary or long (one setfattr --restore, for speed; names that
# would need escaping in its format are left out).
mkdir "$SRC/links"
long=$(head -c 1500 /dev/zero | tr '\0' L)
i=0
while IFS= read -r -d '' f; do
	i=$((i + 1))
	if [ $((i % 50)) = 0 ]; then
		ln "$f" "$f.hardlink"
		ln "$f" "$SRC/links/$i"
	fi
	[[ $f =~ ^[A-Za-z0-9._/+-]+$ ]] || continue
	if [ $((i % 37)) = 0 ]; then
		printf '# file: .%s\nuser.stash.test="file %d"\nuser.stash.other="%d"\n' \
			"${f#"$SRC"}" $i $i
		if [ $((i % 111)) = 0 ]; then
			printf 'user.stash.bin=0x00ff00fe0a0d\nuser.stash.long="%s"\n' "$long"
		fi
		echo
	fi
done < <(find "$SRC" -path "$SRC/links" -prune -o -type f -print0 | sort -z) >"$T/xattrs"
i=0
while IFS= read -r -d '' d; do
	i=$((i + 1))
	if [ $((i % 10)) = 0 ] && [[ $d =~ ^[A-Za-z0-9._/+-]+$ ]]; then
		printf '# file: .%s\nuser.stash.dir="dir %d"\n\n' "${d#"$SRC"}" $i
	fi
done < <(find "$SRC" -mindepth 1 -type d -print0 | sort -z) >>"$T/xattrs"
(cd "$SRC" && setfattr --restore="$T/xattrs")
setfattr -n user.stash.empty "$SRC/links"
mkdir "$SRC/symlinks"
ln -s ../links "$SRC/symlinks/to-dir"
ln -s /usr/include/stdio.h "$SRC/symlinks/absolute"
ln -s does/not/exist "$SRC/symlinks/dangling"
ln -s "$(printf 'x%.0s' $(seq 1 1000))" "$SRC/symlinks/long-target"
touch -h -d '2001-02-03 04:05:06.123456789' "$SRC/symlinks/dangling"
touch -d '1999-12-31 23:59:59.987654321' "$SRC/links"
chmod 1777 "$SRC/symlinks"

nlinked=$(find "$SRC" -type f -links +1 | wc -l)
nxattr=$(getfattr -R -h -d -m '^user\.' "$SRC" 2>/dev/null | grep -c '^user\.')
nsym=$(find "$SRC" -type l | wc -l)
echo "source: $nfiles files, $nlinked with hard links, $nxattr user xattrs, $nsym symlinks, $(du -sb "$SRC" | cut -f1) bytes"
[ "$nlinked" -ge 100 ] || fail "test set-up: only $nlinked hard-linked files"
[ "$nxattr" -ge 100 ] || fail "test set-up: only $nxattr xattrs"

# Every name with its type, mode, owner, link count, times (ns) and
# symlink target.
listing() {
	(cd "$1" && find . -printf '%y %m %U:%G %n %T@ %p -> %l\n') | LC_ALL=C sort
}

# The hard-link groups: the names of each inode with more than one, one
# group a line.
link_groups() {
	(cd "$1" && find . -type f -links +1 -printf '%i %p\n') |
		LC_ALL=C sort -k1,1n -k2 |
		awk '{ ino = $1; sub(/^[0-9]+ /, "");
		       if (ino != prev && NR > 1) print line;
		       line = (ino == prev) ? line " | " $0 : $0; prev = ino }
		     END { if (NR) print line }' | LC_ALL=C sort
}

echo "set-up: $((SECONDS - start)) s"
listing "$SRC" >"$T/src.list"
link_groups "$SRC" >"$T/src.links"

check_tree() { # when
	local out start=$SECONDS
	diff -r --no-dereference "$SRC" "$DST" >&2 || fail "contents differ ($1)"
	out=$(rsync -aHAX --dry-run --itemize-changes "$SRC/" "$DST/") ||
		fail "rsync failed ($1)"
	if [ -n "$out" ]; then
		printf '%s\n' "$out" | head -20 >&2
		fail "rsync -aHAX would change $(printf '%s\n' "$out" | wc -l) entries ($1)"
	fi
	listing "$DST" | diff "$T/src.list" - >&2 ||
		fail "modes, owners, link counts, times or symlinks differ ($1)"
	link_groups "$DST" | diff "$T/src.links" - >&2 ||
		fail "hard-link groups differ ($1)"
	echo "checked $1: $((SECONDS - start)) s"
}

stash_init
stash_mount
start=$SECONDS
cp -a "$SRC" "$DST"
echo "cp -a: $((SECONDS - start)) s"
check_tree "after cp -a"

stash_remount
check_tree "after remount"

# The comparison sees a difference when there is one.
f=$(find "$DST/links" -type f | head -1)
setfattr -n user.stash.test -v changed "$f"
out=$(rsync -aHAX --dry-run --itemize-changes "$SRC/" "$DST/")
[ -n "$out" ] || fail "rsync -X does not see a changed xattr"
echo "ok"
