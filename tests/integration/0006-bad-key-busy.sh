#!/bin/bash
# Refusals a user meets, and what they leave behind:
# - a wrong key (another store's key file, garbage, 64 non-hex digits, an
#   empty file) or a wrong passphrase: `stashfs mount` prints exactly one
#   line on stderr, exits with 3, mounts nothing, and the store folder is
#   byte for byte as it was;
# - a second mount of a mounted store: exit 4, "the store is in use",
#   and the first mount keeps working;
# - `stashfs passwd`: afterwards the old passphrase fails with 3, the new
#   one mounts and the data is intact.
. "$(dirname "$0")/../lib.sh"

MNT2=$T/mnt2
mkdir "$MNT2"

# Every name in the store folder with its type and size, then the SHA-256
# of every file.
snapshot() {
	(cd "$STORE" && find . -printf '%y %s %p\n' | LC_ALL=C sort &&
		find . -type f -exec sha256sum {} + | LC_ALL=C sort -k2)
}

# Run `stashfs mount STORE MNT ARGS...`, with the environment assignments
# that come first (as for env): it must fail with exit code $1 and one line
# on stderr (kept in $T/err), mount nothing and print nothing on stdout.
# A timeout guards against a -f mount that wrongly succeeds and serves.
mount_fails() { # exit code, [VAR=value...], [mount args...]
	local want=$1 rc=0 envs=() what
	shift
	while [ $# -gt 0 ] && [[ $1 == [A-Z]*=* ]]; do
		envs+=("$1")
		shift
	done
	what="${envs[*]}${envs[*]:+ }mount${*:+ }$*"
	env "${envs[@]}" timeout 120 "$STASHFS" mount "$STORE" "$MNT" "$@" \
		>"$T/out" 2>"$T/err" || rc=$?
	if mountpoint -q "$MNT"; then
		"$STASHFS" umount "$MNT"
		fail "mounted with $what"
	fi
	[ "$rc" = "$want" ] ||
		{ cat "$T/err" >&2; fail "exit code $rc, expected $want ($what)"; }
	[ "$(grep -c '' "$T/err")" = 1 ] ||
		{ cat "$T/err" >&2; fail "$(grep -c '' "$T/err") lines on stderr, expected 1 ($what)"; }
	[ ! -s "$T/out" ] || { cat "$T/out" >&2; fail "output on stdout ($what)"; }
	echo "$what: exit $rc: $(cat "$T/err")"
}

# Wrong keys: the mount is refused and nothing in the store changes.
stash_init
stash_mount
head -c $((1 << 20)) /dev/urandom >"$T/data"
cp "$T/data" "$MNT/files/data"
stash_umount
snapshot >"$T/before"

"$STASHFS" init "$T/other" --key-file "$T/other.key" >/dev/null
head -c 200 /dev/urandom >"$T/garbage.key"
printf '%064d\n' 0 | tr 0 z >"$T/text.key"
: >"$T/empty.key"
for key in "$T/other.key" "$T/garbage.key" "$T/text.key" "$T/empty.key"; do
	mount_fails 3 --key-file "$key"
	grep -q 'wrong key' "$T/err" || fail "stderr does not say the key is wrong"
	mount_fails 3 -f --key-file "$key"
	snapshot | diff "$T/before" - >&2 || fail "store folder changed by a mount with $key"
done

# The right key still opens it, and the data is intact.
stash_mount
cmp "$T/data" "$MNT/files/data" || fail "data after the refused mounts"

# A second mount of a mounted store is refused; the first keeps working.
rc=0
"$STASHFS" mount "$STORE" "$MNT2" >"$T/out" 2>"$T/err" || rc=$?
if mountpoint -q "$MNT2"; then
	"$STASHFS" umount "$MNT2" || fusermount3 -u -z "$MNT2"
	fail "a mounted store was mounted a second time"
fi
echo "second mount: exit $rc: $(cat "$T/err")"
[ "$rc" = 4 ] || { cat "$T/err" >&2; fail "second mount: exit code $rc, expected 4"; }
grep -q 'the store is in use (already mounted?)' "$T/err" ||
	fail "second mount: stderr does not say the store is in use"
[ "$(grep -c '' "$T/err")" = 1 ] || fail "second mount: more than one line on stderr"
cmp "$T/data" "$MNT/files/data" || fail "first mount: read after the second mount"
echo after >"$MNT/files/after"
[ "$(cat "$MNT/files/after")" = after ] || fail "first mount: write after the second mount"
ls "$MNT/files" | grep -qx after || fail "first mount: listing after the second mount"
stash_remount
cmp "$T/data" "$MNT/files/data" || fail "data after remount"
[ "$(cat "$MNT/files/after")" = after ] || fail "file written by the first mount, after remount"
stash_umount

# A passphrase store: a wrong passphrase is refused like a wrong key.
STORE=$T/pstore
printf 'wrong\n' >"$T/wrong.pass"
STASHFS_PASSPHRASE='old pass phrase' stash_init --passphrase
STASHFS_PASSPHRASE='old pass phrase' stash_mount
cp "$T/data" "$MNT/files/data"
stash_umount
snapshot >"$T/before"
mount_fails 3 STASHFS_PASSPHRASE='Old pass phrase'
grep -q 'wrong key or passphrase' "$T/err" || fail "stderr does not say the passphrase is wrong"
mount_fails 3 --passphrase-file "$T/wrong.pass"
snapshot | diff "$T/before" - >&2 || fail "store folder changed by a mount with a wrong passphrase"

# passwd with a wrong old passphrase changes nothing.
rc=0
STASHFS_PASSPHRASE=wrong STASHFS_NEW_PASSPHRASE=new "$STASHFS" passwd "$STORE" \
	>/dev/null 2>"$T/err" || rc=$?
[ "$rc" = 3 ] || { cat "$T/err" >&2; fail "passwd with a wrong passphrase: exit $rc, expected 3"; }
snapshot | diff "$T/before" - >&2 || fail "store folder changed by passwd with a wrong passphrase"

# passwd: the old passphrase fails, the new one opens the same data.
STASHFS_PASSPHRASE='old pass phrase' STASHFS_NEW_PASSPHRASE='new pass phrase' \
	"$STASHFS" passwd "$STORE" >/dev/null
snapshot >"$T/before"
mount_fails 3 STASHFS_PASSPHRASE='old pass phrase'
snapshot | diff "$T/before" - >&2 || fail "store folder changed by a mount with the old passphrase"
STASHFS_PASSPHRASE='new pass phrase' stash_mount
cmp "$T/data" "$MNT/files/data" || fail "data after passwd"
stash_umount
printf 'new pass phrase\n' >"$T/new.pass"
stash_mount --passphrase-file "$T/new.pass"
cmp "$T/data" "$MNT/files/data" || fail "data after passwd (passphrase file)"
echo "ok"
