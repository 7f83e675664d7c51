#!/bin/bash
# The areas exist after init; files, folders, links, xattrs, renames and
# removals behave as on a disk and survive a remount.
. "$(dirname "$0")/../lib.sh"

stash_init
stash_mount

for area in articles files programs; do
	[ -d "$MNT/$area" ] || fail "area $area missing"
done

echo hello >"$MNT/files/a.txt"
[ "$(cat "$MNT/files/a.txt")" = hello ] || fail "read back"
mkdir -p "$MNT/files/d/e"
ln -s ../a.txt "$MNT/files/d/link"
ln "$MNT/files/a.txt" "$MNT/files/hard"
setfattr -n user.color -v blue "$MNT/files/a.txt"
setfattr -n user.gone -v soon "$MNT/files/a.txt"
[ "$(getfattr --absolute-names -d "$MNT/files/a.txt" | grep -c '^user\.')" = 2 ] ||
	fail "listxattr"
setfattr -x user.gone "$MNT/files/a.txt"
must_fail getfattr -n user.gone "$MNT/files/a.txt" 2>/dev/null
must_fail setfattr -n system.posix_acl_access -v x "$MNT/files/a.txt" 2>/dev/null
chmod 640 "$MNT/files/a.txt"
touch -d '2001-02-03 04:05:06' "$MNT/files/a.txt"
printf 'x%.0s' $(seq 1 5000) >"$MNT/files/b.txt"
mv "$MNT/files/b.txt" "$MNT/files/d/e/b.txt"
echo gone >"$MNT/files/gone" && rm "$MNT/files/gone"
mkdir "$MNT/files/empty" && rmdir "$MNT/files/empty"

stash_remount

[ "$(cat "$MNT/files/a.txt")" = hello ] || fail "content after remount"
[ "$(readlink "$MNT/files/d/link")" = ../a.txt ] || fail "symlink"
[ "$(cat "$MNT/files/d/link")" = hello ] || fail "symlink resolves"
[ "$(stat -c %h "$MNT/files/a.txt")" = 2 ] || fail "link count"
[ "$(stat -c %i "$MNT/files/a.txt")" = "$(stat -c %i "$MNT/files/hard")" ] || fail "hard link inode"
[ "$(getfattr --only-values -n user.color "$MNT/files/a.txt")" = blue ] || fail "xattr"
[ "$(getfattr --absolute-names -d "$MNT/files/a.txt" | grep -c '^user\.')" = 1 ] ||
	fail "removed xattr is back"
[ "$(stat -c %a "$MNT/files/a.txt")" = 640 ] || fail "mode"
[ "$(stat -c %Y "$MNT/files/a.txt")" = "$(date -d '2001-02-03 04:05:06' +%s)" ] || fail "mtime"
[ "$(stat -c %s "$MNT/files/d/e/b.txt")" = 5000 ] || fail "size after rename"
[ ! -e "$MNT/files/gone" ] || fail "unlinked file is back"
[ ! -e "$MNT/files/empty" ] || fail "removed dir is back"
must_fail rmdir "$MNT/files/d" 2>/dev/null
[ "$(stat -c %h "$MNT/files/d")" = 3 ] || fail "directory link count"
echo "ok"
