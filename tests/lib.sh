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
# The daemon logs here; sanitizer reports of every process land in $T too,
# and any of them fails the test.
export STASHFS_LOG=$T/daemon.log
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:log_path=$T/sanitizer"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-}:log_path=$T/sanitizer"
mkdir -p "$MNT"

_stash_cleanup() {
	local rc=$? pid
	pid=$(stash_pid)
	if mountpoint -q "$MNT" 2>/dev/null || grep -q " $MNT " /proc/self/mounts; then
		fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
	fi
	# Wait for the daemon to finish writing and exit.
	[ -z "$pid" ] || wait_exit "$pid" 60 || true
	if ls "$T"/sanitizer.* >/dev/null 2>&1; then
		echo "FAIL: sanitizer reports:" >&2
		cat "$T"/sanitizer.* >&2
		rc=1
	fi
	if [ $rc != 0 ] && [ $rc != 77 ] && [ -s "$STASHFS_LOG" ]; then
		echo "--- daemon log (last 40 lines) ---" >&2
		tail -n 40 "$STASHFS_LOG" >&2
	fi
	local hook
	for hook in "${_stash_hooks[@]}"; do
		eval "$hook" || true
	done
	rm -rf "$T"
	exit $rc
}
# Commands to run at exit after the mount is gone (e.g. unmount a tmpfs
# the test put under the store).
_stash_hooks=()
on_cleanup() {
	_stash_hooks+=("$1")
}
trap _stash_cleanup EXIT
trap 'exit 130' INT TERM

# Wait up to $2 seconds for process $1 (not our child) to exit. A zombie
# has exited: whoever adopted the daemon may reap it late.
wait_exit() {
	local i state
	for ((i = 0; i < $2 * 50; i++)); do
		state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
		[ -n "$state" ] && [ "$state" != Z ] || return 0
		sleep 0.02
	done
	return 1
}

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

# Unmount and wait until the daemon has exited (and so has written
# everything, and any sanitizer report).
stash_umount() {
	local pid
	pid=$(stash_pid)
	"$STASHFS" umount "$MNT"
	[ -z "$pid" ] || wait_exit "$pid" 60 || fail "daemon $pid did not exit"
}

stash_remount() {
	stash_umount
	stash_mount "$@"
}

# The pid of the daemon serving $STORE (it writes it into its lock file),
# or nothing when no process holds the lock.
stash_pid() {
	[ -e "$STORE/lock" ] || return 0
	flock -n "$STORE/lock" true 2>/dev/null && return 0
	cat "$STORE/lock"
}

# Bytes used by the store folder.
store_bytes() {
	du -sb "$STORE" | cut -f1
}
