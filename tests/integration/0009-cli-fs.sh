#!/bin/bash
# The stashfs command as a person uses it (--help, exit codes, the
# passphrase prompt, stats, foreground mounts) and the filesystem calls a
# shell rarely makes: renameat2 flags, FIFOs, unlink of an open file, df.
. "$(dirname "$0")/../lib.sh"

# --help for every command, and usage errors exit 2.
for cmd in init mount umount stats passwd verify; do
	"$STASHFS" "$cmd" --help | grep -q "^usage: stashfs $cmd" ||
		fail "$cmd --help"
done
"$STASHFS" --help | grep -q "^usage:" || fail "stashfs --help"
rc=0; "$STASHFS" frobnicate 2>/dev/null || rc=$?
[ $rc = 2 ] || fail "unknown command exits $rc, not 2"
rc=0; "$STASHFS" mount 2>/dev/null || rc=$?
[ $rc = 2 ] || fail "mount without arguments exits $rc, not 2"

# The passphrase prompt, on a terminal: answered when it asks, and what is
# typed is not echoed.
on_tty() { # answer each "Passphrase" prompt of a command with $1
	python3 - "$@" <<'PY'
import os, pty, sys
answer, argv = sys.argv[1].encode() + b"\n", sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
out = b""
while True:
    try:
        data = os.read(fd, 1024)
    except OSError:
        break
    if not data:
        break
    out += data
    if out.rstrip().endswith(b":") and b"assphrase" in out.splitlines()[-1]:
        os.write(fd, answer)
        out += b"\n"
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
PY
}
if command -v python3 >/dev/null; then
	out=$(on_tty sesame-42 "$STASHFS" init "$T/prompted" --passphrase)
	echo "$out" | grep -q "Created store" || fail "init with a prompt: $out"
	echo "$out" | grep -q "sesame-42" && fail "the passphrase was echoed: $out"
	out=$(on_tty sesame-42 "$STASHFS" stats "$T/prompted")
	echo "$out" | grep -q "logical_bytes" || fail "stats after a prompt: $out"
	rc=0; on_tty wrong "$STASHFS" stats "$T/prompted" >/dev/null || rc=$?
	[ $rc = 3 ] || fail "a wrong passphrase at the prompt exits $rc, not 3"
fi

stash_init

# stats on the store folder, then on the mount; the folder says it is busy
# while mounted.
"$STASHFS" stats "$STORE" | grep -q "^files  *0$" || fail "stats STORE"
stash_mount
head -c 300000 /dev/urandom >"$MNT/files/r"
"$STASHFS" stats "$MNT" --json | grep -q '"logical_bytes":.*300000' ||
	fail "stats MNT"
rc=0; "$STASHFS" stats "$STORE" 2>/dev/null || rc=$?
[ $rc = 4 ] || fail "stats of a mounted store folder exits $rc, not 4"

# df shows the disk under the store.
want=$(df --output=size "$STORE" | tail -1)
got=$(df --output=size "$MNT" | tail -1)
[ "$want" = "$got" ] || fail "df size $got, disk under the store $want"

# renameat2: RENAME_NOREPLACE and RENAME_EXCHANGE.
cd "$MNT/files"
echo a >a && echo b >b && mkdir d
[ "$("$STASH_TEST_TOOLS/rename2" noreplace a b)" = EEXIST ] ||
	fail "RENAME_NOREPLACE over a file"
"$STASH_TEST_TOOLS/rename2" exchange a b || fail "RENAME_EXCHANGE"
[ "$(cat a)$(cat b)" = ba ] || fail "exchanged contents"
"$STASH_TEST_TOOLS/rename2" exchange a d || fail "RENAME_EXCHANGE file/dir"
[ -d a ] && [ "$(cat d)" = b ] || fail "exchanged file and directory"
[ "$("$STASH_TEST_TOOLS/rename2" exchange a nothing)" = ENOENT ] ||
	fail "RENAME_EXCHANGE with a missing target"
"$STASH_TEST_TOOLS/rename2" noreplace b c || fail "RENAME_NOREPLACE to a free name"

# A FIFO works across two processes.
mkfifo pipe
(echo through >pipe) &
[ "$(cat pipe)" = through ] || fail "FIFO"
wait

# Unlink of an open file keeps its data until the last close.
head -c 200000 /dev/urandom >"$T/open"
cp "$T/open" open
exec 3<open
rm open
[ ! -e open ] || fail "unlinked file still has a name"
cmp - "$T/open" <&3 || fail "data of an open unlinked file"
exec 3<&-
cd /

stash_umount
# Foreground mount: stays until unmounted. It says "serving" on stderr
# once mounted; the FIFO is held open both ways so it never blocks it.
mkfifo "$T/fg"
exec 4<>"$T/fg"
"$STASHFS" mount -f "$STORE" "$MNT" 2>&4 &
fg=$!
while read -r -t 20 line <&4; do
	case $line in *serving*) break ;; esac
done
mountpoint -q "$MNT" || fail "foreground mount did not appear"
[ "$(cat "$MNT/files/c")" = a ] || fail "data after a foreground mount"
kill -0 $fg || fail "foreground daemon left"
"$STASHFS" umount "$MNT"
wait $fg || fail "foreground daemon exit status $?"
echo ok
