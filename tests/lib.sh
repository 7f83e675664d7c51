# lib.sh - shared helpers for the integration tests (sourced, not run).
#
# Each test gets its own temporary folder with a store, a mount point and
# a key folder; a trap unmounts whatever the test mounted and removes the
# folder, even when the test fails. Exit 77 means "skipped".
#
#   . "$(dirname "$0")/../lib.sh"
#   stash_init            # make the store
#   stash_mount           # mount it at $MNT (returns once it answers)
#   stash_remount         # unmount (waiting for the daemon) and mount again
#   stash_umount

set -eu

STASHFS=${STASHFS:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/stashfs}
STASH_BUILD=${STASH_BUILD:-$(dirname "$STASHFS")}
STASH_TEST_TOOLS=$STASH_BUILD/tests
[ -x "$STASHFS" ] || { echo "stashfs binary not found: $STASHFS" >&2; exit 1; }
[ -e /dev/fuse ] || { echo "no /dev/fuse: skipping" >&2; exit 77; }

T=$(mktemp -d "${TMPDIR:-/tmp}/stashfs-test.XXXXXX")
STORE=$T/store
MNT=$T/mnt
export STASHFS_KEY_DIR=$T/keys
mkdir -p "$MNT"

_stash_cleanup() {
	local rc=$?
	if mountpoint -q "$MNT" 2>/dev/null || grep -q " $MNT " /proc/self/mounts; then
		fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
	fi
	# A daemon still closing the store holds its lock: wait for it.
	if [ -e "$STORE/lock" ]; then
		flock -w 60 "$STORE/lock" true 2>/dev/null || true
	fi
	rm -rf "$T"
	exit $rc
}
trap _stash_cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# Run a command that must fail; prints its stderr.
must_fail() {
	if "$@"; then
		fail "expected failure: $*"
	fi
}

stash_init() {
	"$STASHFS" init "$STORE" "$@" >/dev/null
}

stash_mount() {
	"$STASHFS" mount "$STORE" "$MNT" "$@"
	mountpoint -q "$MNT" || fail "not mounted after stashfs mount"
}

stash_umount() {
	"$STASHFS" umount "$MNT"
}

stash_remount() {
	stash_umount
	stash_mount "$@"
}

# The daemon's pid, from the mount's lock holder.
stash_pid() {
	fuser "$STORE/lock" 2>/dev/null | awk '{print $1}'
}

# Bytes used by the store folder.
store_bytes() {
	du -sb "$STORE" | cut -f1
}
