#!/bin/bash
# With allow_other, the kernel's permission checks (default_permissions,
# always on) hold for other users: modes and owners are enforced.
. "$(dirname "$0")/../lib.sh"

command -v setpriv >/dev/null || exit 77
chmod 755 "$T" # let the other user reach the mount point

as_nobody() {
	setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"
}

stash_init
stash_mount -o allow_other

echo secret >"$MNT/files/secret"
chmod 600 "$MNT/files/secret"
echo public >"$MNT/files/public"
chmod 644 "$MNT/files/public"
mkdir "$MNT/files/shared" && chmod 1777 "$MNT/files/shared"

[ "$(as_nobody cat "$MNT/files/public")" = public ] || fail "public file unreadable"
must_fail as_nobody cat "$MNT/files/secret" 2>/dev/null
must_fail as_nobody sh -c "echo x >>'$MNT/files/public'" 2>/dev/null
must_fail as_nobody touch "$MNT/files/new" 2>/dev/null
must_fail as_nobody rm -f "$MNT/files/public" 2>/dev/null
must_fail as_nobody chmod 777 "$MNT/files/public" 2>/dev/null

# Files a user creates are theirs; the sticky bit protects others' files.
as_nobody sh -c "echo mine >'$MNT/files/shared/mine'"
[ "$(stat -c %u:%g "$MNT/files/shared/mine")" = 65534:65534 ] || fail "owner of new file"
echo root >"$MNT/files/shared/roots"
must_fail as_nobody rm -f "$MNT/files/shared/roots" 2>/dev/null
as_nobody rm "$MNT/files/shared/mine"

# Root may hand a file over; then its new owner may change it.
chown 65534:65534 "$MNT/files/public"
as_nobody sh -c "echo changed >'$MNT/files/public'"

stash_remount -o allow_other
[ "$(stat -c %u:%a "$MNT/files/secret")" = 0:600 ] || fail "owner and mode after remount"
must_fail as_nobody cat "$MNT/files/secret" 2>/dev/null
[ "$(as_nobody cat "$MNT/files/public")" = changed ] || fail "handed-over file"
echo ok
