#!/bin/bash
# Nothing written shows in the store folder in the clear: a random marker
# put in file names, a directory name, file contents (compressible text,
# incompressible data, a tiny file), a symlink target, an xattr name and
# value is found by neither `grep -rao` nor `find -name` in the store
# folder, while mounted (after sync) and after unmounting. A remount shows
# every one of them again, so the store did keep them.
. "$(dirname "$0")/../lib.sh"

M=stash$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
echo "marker $M"

# Incompressible data with the marker at a few places, one of them across
# the 64 KiB boundary, so that neither compression nor chunking hides it.
head -c $((3 << 20)) /dev/urandom >"$T/random"
for off in 100 65530 1048576 3000000; do
	printf '%s' "$M" | dd of="$T/random" bs=1 seek=$off conv=notrunc status=none
done
{
	for i in $(seq 1 2000); do
		echo "line $i of a text file: the marker is $M, once a line"
	done
} >"$T/text"
printf '%s\n' "$M" >"$T/tiny"
grep -qa "$M" "$T/random" || fail "test set-up: no marker in the random file"

stash_init
stash_mount
D=$MNT/files/dir-$M
mkdir "$D"
cp "$T/random" "$D/random-$M.bin"
cp "$T/text" "$D/text-$M.txt"
cp "$T/tiny" "$MNT/files/tiny"
ln -s "target-$M" "$MNT/files/link"
ln "$MNT/files/tiny" "$D/hardlink-$M"
setfattr -n user.note -v "value-$M" "$MNT/files/tiny"
setfattr -n "user.name-$M" -v 1 "$D"
mkdir "$MNT/files/renamed"
echo "$M" >"$MNT/files/renamed/from-$M"
mv "$MNT/files/renamed/from-$M" "$MNT/files/renamed/to-$M"
sync

# All of it is in the store folder by now, not only in the daemon.
[ "$(store_bytes)" -gt $((3 << 20)) ] || fail "the data did not reach the store folder"

no_marker() { # when
	local out rc=0
	grep -rqa -- "$M" "$STORE" || rc=$?
	case $rc in
	0)
		grep -rao -- "$M" "$STORE" | head -5 >&2
		fail "marker in the store folder ($1)" ;;
	1) ;;
	*) fail "grep -r $STORE failed ($1)" ;;
	esac
	out=$(find "$STORE" -name "*$M*")
	[ -z "$out" ] || { printf '%s\n' "$out" >&2; fail "a file in the store folder is named like the marker ($1)"; }
}

no_marker "mounted, after sync"
stash_umount
no_marker "unmounted"

stash_mount
cmp "$T/random" "$D/random-$M.bin" || fail "random file after remount"
cmp "$T/text" "$D/text-$M.txt" || fail "text file after remount"
cmp "$T/tiny" "$MNT/files/tiny" || fail "tiny file after remount"
cmp "$T/tiny" "$D/hardlink-$M" || fail "hard link after remount"
[ "$(readlink "$MNT/files/link")" = "target-$M" ] || fail "symlink target after remount"
[ "$(getfattr --absolute-names --only-values -n user.note "$MNT/files/tiny")" = "value-$M" ] ||
	fail "xattr value after remount"
getfattr --absolute-names -n "user.name-$M" "$D" >/dev/null || fail "xattr name after remount"
[ "$(cat "$MNT/files/renamed/to-$M")" = "$M" ] || fail "renamed file after remount"
echo "ok"
