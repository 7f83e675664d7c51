#!/bin/bash
# `stashfs snapshot diff` and `stashfs restore`:
# - diff between two snapshots, and between a snapshot and the live tree
#   (-), lists exactly the added (+), removed (-) and changed (M) paths,
#   sorted; the same on the mount and on the unmounted store; --json too;
# - restore --to DIR of a whole snapshot equals the snapshot (bytes,
#   modes, mtimes, link counts, symlinks, xattrs); a selective restore
#   holds only the paths asked for;
# - restore in place brings back changed and deleted files, keeps files
#   the snapshot does not have; on the mount and on the unmounted store,
#   after which diff against the live tree lists only those files.
. "$(dirname "$0")/../lib.sh"

listing() {
	(cd "$1" && find . -mindepth 1 -printf '%P %y %m %s %T@ %n %l\n' |
		awk '$2 == "d" { $4 = "-" } 1' | LC_ALL=C sort)
}

xattrs() {
	(cd "$1" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
		xargs -0 getfattr -h -d -m - --absolute-names 2>/dev/null)
}

same_tree() {
	diff -r --no-dereference "$1" "$2" >&2 || fail "$3: contents differ"
	diff <(listing "$1") <(listing "$2") >&2 || fail "$3: metadata differs"
	diff <(xattrs "$1") <(xattrs "$2") >&2 || fail "$3: xattrs differ"
}

# `stashfs snapshot diff ARGS` must print exactly the lines on stdin.
expect_diff() {
	local want
	want=$(cat)
	"$STASHFS" snapshot diff "$@" >"$T/diff.out" || fail "snapshot diff $* failed"
	[ "$(cat "$T/diff.out")" = "$want" ] || {
		echo "--- want"; echo "$want"; echo "--- got"; cat "$T/diff.out"
		fail "snapshot diff $*"
	} >&2
}

stash_init
stash_mount
mkdir -p "$MNT/files/keep" "$MNT/files/gone/sub" "$MNT/articles/2024"
echo same >"$MNT/files/keep/same.txt"
echo aaaa >"$MNT/files/keep/edit.txt"
echo mode >"$MNT/files/keep/mode.txt"
echo attr >"$MNT/files/keep/attr.txt"
echo old >"$MNT/files/gone/sub/old.txt"
echo '{"title":"a"}' >"$MNT/articles/2024/a.json"
ln "$MNT/files/keep/same.txt" "$MNT/files/same-link"
ln -s keep/same.txt "$MNT/files/sym"
setfattr -n user.tag -v one "$MNT/files/keep/attr.txt"
chmod 0640 "$MNT/files/keep/mode.txt"
touch -d '2022-02-02 02:02:02.5' "$MNT/files/keep/same.txt"
"$STASHFS" snapshot create "$MNT" s1 >/dev/null

# Same size, new bytes and mtime; a mode; an xattr; a symlink target;
# a subtree removed; files added.
echo bbbb >"$MNT/files/keep/edit.txt"
chmod 0600 "$MNT/files/keep/mode.txt"
setfattr -n user.tag -v two "$MNT/files/keep/attr.txt"
ln -sfn keep/edit.txt "$MNT/files/sym"
rm -r "$MNT/files/gone"
echo new >"$MNT/files/keep/new.txt"
echo '{"title":"b"}' >"$MNT/articles/2024/b.json"
"$STASHFS" snapshot create "$MNT" s2 >/dev/null
# Live changes after s2.
echo live >"$MNT/files/live-only.txt"
rm "$MNT/articles/2024/a.json"

expect_diff "$MNT" s1 s2 <<'EOF'
+ /articles/2024/b.json
- /files/gone
- /files/gone/sub
- /files/gone/sub/old.txt
M /files/keep/attr.txt
M /files/keep/edit.txt
M /files/keep/mode.txt
+ /files/keep/new.txt
M /files/sym
EOF
cp "$T/diff.out" "$T/mnt-s1-s2"
expect_diff "$MNT" s2 - <<'EOF'
- /articles/2024/a.json
+ /files/live-only.txt
EOF
expect_diff "$MNT" s1 s1 </dev/null
"$STASHFS" snapshot diff "$MNT" s2 - --json >"$T/diff.json"
python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
assert d == {"added": ["/files/live-only.txt"],
             "removed": ["/articles/2024/a.json"], "changed": []}, d' \
	"$T/diff.json" || fail "snapshot diff --json"
must_fail "$STASHFS" snapshot diff "$MNT" s1 nosuch 2>"$T/err"
grep -q 'no snapshot named nosuch' "$T/err" || fail "diff with an unknown snapshot: $(cat "$T/err")"

# Whole and selective restores into a directory.
"$STASHFS" restore "$MNT" s1 --to "$T/r1" >/dev/null
same_tree "$MNT/.backups/s1" "$T/r1" "restore --to DIR"
"$STASHFS" restore "$MNT" s1 /files/keep/edit.txt files/gone --to "$T/r2" >/dev/null
[ "$(cd "$T/r2" && find . | LC_ALL=C sort | tr '\n' ' ')" = \
	". ./files ./files/gone ./files/gone/sub ./files/gone/sub/old.txt ./files/keep ./files/keep/edit.txt " ] ||
	fail "selective restore: $(cd "$T/r2" && find .)"
[ "$(cat "$T/r2/files/keep/edit.txt")" = aaaa ] || fail "selective restore: wrong bytes"
[ "$(stat -c %Y "$T/r2/files/keep")" = "$(stat -c %Y "$MNT/.backups/s1/files/keep")" ] ||
	fail "selective restore: the parent's mtime is not the snapshot's"
must_fail "$STASHFS" restore "$MNT" s1 files/nosuch --to "$T/r3" 2>"$T/err"
grep -q 'has no /files/nosuch' "$T/err" || fail "restore of a missing path: $(cat "$T/err")"
must_fail "$STASHFS" restore "$MNT" s1 ../etc --to "$T/r3" 2>/dev/null

# In place, on the mount: s1's files/keep/edit.txt and files/gone come
# back; what s1 does not have stays.
"$STASHFS" restore "$MNT" s1 files/keep/edit.txt files/gone >/dev/null
cmp "$MNT/files/keep/edit.txt" "$MNT/.backups/s1/files/keep/edit.txt" ||
	fail "in-place restore: edit.txt"
same_tree "$MNT/.backups/s1/files/gone" "$MNT/files/gone" "in-place restore of a subtree"
[ -e "$MNT/files/keep/new.txt" ] || fail "in-place restore removed new.txt"
if ls -a "$MNT/files/keep" | grep -q stashfs-restore; then
	fail "a temporary file was left"
fi

# Unmounted: diff gives the same, and a whole restore in place leaves
# only what s1 does not have.
stash_umount
expect_diff "$STORE" s1 s2 <"$T/mnt-s1-s2"
expect_diff "$STORE" s2 - <<'EOF'
- /articles/2024/a.json
+ /files/gone
+ /files/gone/sub
+ /files/gone/sub/old.txt
M /files/keep/edit.txt
+ /files/live-only.txt
EOF
"$STASHFS" restore "$STORE" s1 >/dev/null
expect_diff "$STORE" s1 - <<'EOF'
+ /articles/2024/b.json
+ /files/keep/new.txt
+ /files/live-only.txt
EOF
stash_mount
same_tree "$MNT/.backups/s1/files/gone" "$MNT/files/gone" "restore of the unmounted store"
[ "$(stat -c %h "$MNT/files/same-link")" = 2 ] || fail "restore lost a hard link"
[ "$(getfattr --absolute-names --only-values -n user.tag "$MNT/files/keep/attr.txt")" = one ] ||
	fail "restore did not bring the xattr back"
[ "$(readlink "$MNT/files/sym")" = keep/same.txt ] || fail "restore: symlink target"
echo "ok"
