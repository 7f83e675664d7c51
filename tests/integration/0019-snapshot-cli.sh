#!/bin/bash
# `stashfs snapshot` on a mount point and on an unmounted store:
# - create, list (text and --json), rename, delete, with the errors a user
#   meets: a taken name (exit 1, "File exists"), an invalid name (exit 2),
#   an unknown one; the mounted store folder refused (exit 4);
# - prune with restic's rules: --dry-run drops nothing, --keep-last keeps
#   the newest, --prefix limits it, no rule is a usage error;
# - automatic snapshots: -o snapshot_every=1s,keep_last=2 takes auto-*
#   snapshots and keeps the newest two, leaving other snapshots alone;
#   a bad interval is refused (exit 2); after a remount without the
#   option, no new automatic snapshot appears.
. "$(dirname "$0")/../lib.sh"

snap() {
	rc=0
	"$STASHFS" snapshot "$@" >"$T/out" 2>"$T/err" || rc=$?
}

names() { # the snapshot names listed by `snapshot list $1`, one line
	"$STASHFS" snapshot list "$1" | awk '{print $NF}' | tr '\n' ' '
}

stash_init
stash_mount
echo one >"$MNT/files/a"

# ---- on the mount ----
snap create "$MNT" first
[ $rc = 0 ] || fail "create on the mount: $(cat "$T/err")"
[ -d "$MNT/.backups/first" ] || fail "no .backups/first"
snap create "$MNT" first
[ $rc = 1 ] && grep -q "File exists" "$T/err" || fail "duplicate: exit $rc"
snap create "$MNT" "a/b"
[ $rc = 2 ] || fail "a name with a slash: exit $rc"
snap create "$MNT" second
snap rename "$MNT" second middle
[ $rc = 0 ] || fail "rename: $(cat "$T/err")"
snap rename "$MNT" middle first
[ $rc = 1 ] || fail "rename onto a taken name: exit $rc"
[ "$(names "$MNT")" = "first middle " ] || fail "list: $(names "$MNT")"
"$STASHFS" snapshot list "$MNT" --json | python3 -c '
import json, sys
snaps = json.load(sys.stdin)
assert [s["name"] for s in snaps] == ["first", "middle"], snaps
assert all(s["id"] > 0 and s["created"] for s in snaps), snaps
' || fail "list --json"
snap delete "$MNT" middle nosuch
[ $rc = 1 ] && grep -q "nosuch" "$T/err" || fail "delete of an unknown one: exit $rc"
[ "$(names "$MNT")" = "first " ] || fail "after delete: $(names "$MNT")"
snap list "$STORE"
[ $rc = 4 ] || fail "the mounted store folder: exit $rc"

# ---- prune ----
for n in p1 p2 p3 p4; do
	"$STASHFS" snapshot create "$MNT" "$n" >/dev/null
done
snap prune "$MNT"
[ $rc = 2 ] || fail "prune without a rule: exit $rc"
snap prune "$MNT" --keep-last 2 --prefix p --dry-run
[ $rc = 0 ] && grep -q "would drop p1" "$T/out" && grep -q "would drop p2" "$T/out" ||
	fail "dry run: $(cat "$T/out")"
[ "$(names "$MNT")" = "first p1 p2 p3 p4 " ] || fail "a dry run dropped something"
snap prune "$MNT" --keep-last 2 --prefix p
[ "$(names "$MNT")" = "first p3 p4 " ] || fail "prune --prefix: $(names "$MNT")"
snap prune "$MNT" --keep-last 1
[ "$(names "$MNT")" = "p4 " ] || fail "prune --keep-last 1: $(names "$MNT")"

# ---- on the unmounted store ----
stash_umount
snap create "$STORE" offline
[ $rc = 0 ] || fail "create on the store: $(cat "$T/err")"
snap rename "$STORE" offline off2
[ "$(names "$STORE")" = "p4 off2 " ] || fail "store list: $(names "$STORE")"
snap prune "$STORE" --keep-last 1
[ "$(names "$STORE")" = "off2 " ] || fail "store prune: $(names "$STORE")"
stash_mount
[ "$(cat "$MNT/.backups/off2/files/a")" = one ] || fail "offline snapshot content"

# ---- automatic snapshots ----
stash_umount
must_fail "$STASHFS" mount -o snapshot_every=soon "$STORE" "$MNT" 2>/dev/null
must_fail "$STASHFS" mount -o keep_last=2 "$STORE" "$MNT" 2>/dev/null
stash_mount -o snapshot_every=1s,keep_last=2
for _ in $(seq 100); do
	[ "$(ls "$MNT/.backups" | grep -c '^auto-')" -ge 2 ] && break
	sleep 0.1
done
first_auto=$(ls "$MNT/.backups" | grep '^auto-' | head -1)
sleep 2.5 # at least two more turns: the oldest must have been pruned
[ ! -e "$MNT/.backups/$first_auto" ] || fail "$first_auto was not pruned"
# Between a snapshot and its prune there may be three for a moment.
for _ in $(seq 50); do
	autos=$(ls "$MNT/.backups" | grep -c '^auto-')
	[ "$autos" = 2 ] && break
	sleep 0.1
done
[ "$autos" = 2 ] || fail "keep_last=2 kept $autos automatic snapshots"
[ -d "$MNT/.backups/off2" ] || fail "an automatic prune dropped a manual snapshot"
stash_remount
before=$(ls "$MNT/.backups" | tr '\n' ' ')
sleep 1.5
[ "$(ls "$MNT/.backups" | tr '\n' ' ')" = "$before" ] ||
	fail "snapshots taken without snapshot_every"
echo ok
