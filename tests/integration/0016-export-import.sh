#!/bin/bash
# `stashfs export` and `stashfs import`:
# - an export of a snapshot, unpacked by plain GNU tar (--xattrs), equals
#   the snapshot: bytes, types, modes, nanosecond mtimes, link counts,
#   symlink targets, xattrs; its MANIFEST.json passes sha256sum -c;
# - import reproduces the snapshot exactly, on a mount and into an
#   unmounted store; a full archive then an increment (--since) reproduce
#   the later snapshot; an increment on the wrong base is refused;
# - a sealed export (passphrase, key file) imports back; a wrong
#   passphrase fails with exit 3 and leaves nothing;
# - a flipped byte in a plain and in a sealed archive fails, naming the
#   damaged file, and leaves nothing behind;
# - archives made with python's tarfile holding ../x, /abs, symlinks or
#   hard links that lead out are refused, naming the entry; nothing is
#   written anywhere;
# - a mounted STORE is refused with exit 4 and a pointer to the mount.
. "$(dirname "$0")/../lib.sh"

gen=$STASH_TEST_TOOLS/genbytes
[ -x "$gen" ] || fail "genbytes not built: $gen"

# One line per entry under $1: path, type, mode, size, mtime (ns), link
# count, symlink target (directory sizes are the filesystem's own).
# Manifest files are not part of a tree.
listing() {
	(cd "$1" && find . -mindepth 1 ! -name 'MANIFEST.json*' \
		-printf '%P %y %m %s %T@ %n %l\n' |
		awk '$2 == "d" { $4 = "-" } 1' | LC_ALL=C sort)
}

# Every xattr under $1, by relative path.
xattrs() {
	(cd "$1" && find . -mindepth 1 ! -name 'MANIFEST.json*' -print0 |
		LC_ALL=C sort -z |
		xargs -0 getfattr -h -d -m - --absolute-names 2>/dev/null)
}

# $1 and $2 hold the same tree: bytes, metadata, xattrs.
same_tree() {
	diff -r --no-dereference -x 'MANIFEST.json*' -x fifo "$1" "$2" >&2 ||
		fail "$3: contents differ"
	diff <(listing "$1") <(listing "$2") >&2 || fail "$3: metadata differs"
	diff <(xattrs "$1") <(xattrs "$2") >&2 || fail "$3: xattrs differ"
}

# Nothing half-imported: no staging directory left at the root of $1.
no_staging() {
	if ls -a "$1" | grep -q '^\.stashfs-import'; then
		fail "a staging directory was left in $1"
	fi
}

flip_byte() {
	python3 -c 'import sys
f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2])); b = f.read(1)
f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 1]))' "$1" "$2"
}

stash_init
stash_mount
mkdir -p "$MNT/files/docs/deep" "$MNT/programs/tool"
"$gen" 1 3M >"$MNT/files/docs/big.bin"
echo hello >"$MNT/files/docs/hello.txt"
: >"$MNT/files/empty"
ln "$MNT/files/docs/hello.txt" "$MNT/programs/hello-link"
ln -s ../docs/hello.txt "$MNT/files/docs/deep/rel-link"
ln -s hello.txt "$MNT/files/docs/near-link"
printf '#!/bin/sh\necho run\n' >"$MNT/programs/tool/run.sh"
chmod 0751 "$MNT/programs/tool/run.sh"
chmod 0750 "$MNT/files/docs/deep"
setfattr -n user.color -v blue "$MNT/files/docs/hello.txt"
setfattr -n user.empty "$MNT/files/empty"
setfattr -n user.dir -v yes "$MNT/files/docs"
mkfifo "$MNT/files/fifo"
touch -h -d '2021-03-04 05:06:07.123456789' "$MNT/files/docs/near-link"
touch -d '2020-01-02 03:04:05.987654321' "$MNT/files/docs/hello.txt" \
	"$MNT/files/docs/deep"
"$STASHFS" snapshot create "$MNT" s1 >/dev/null
S1=$MNT/.backups/s1

# Plain tar reads the export; it is the snapshot.
"$STASHFS" export "$MNT" s1 "$T/s1.tar.gz" >/dev/null
mkdir "$T/tar"
tar --xattrs --xattrs-include='*' -xzf "$T/s1.tar.gz" -C "$T/tar"
same_tree "$S1" "$T/tar" "tar -xf of the export"
(cd "$T/tar" && sha256sum --quiet -c MANIFEST.json.sha256) ||
	fail "MANIFEST.json.sha256 does not check"
grep -q '"snapshot":[[:space:]]*"s1"' "$T/tar/MANIFEST.json" ||
	fail "the manifest does not name the snapshot"
grep -q "\"sha256\":[[:space:]]*\"$(sha256sum <"$S1/files/docs/big.bin" |
	cut -d' ' -f1)\"" "$T/tar/MANIFEST.json" ||
	fail "the manifest lacks big.bin's SHA-256"

# Import on the mount: /s1 is the snapshot.
"$STASHFS" import "$T/s1.tar.gz" "$MNT" >/dev/null
same_tree "$S1" "$MNT/s1" "import on the mount"
no_staging "$MNT"
# A full archive never lands on an existing path.
must_fail "$STASHFS" import "$T/s1.tar.gz" "$MNT" 2>"$T/err"
grep -q 'exists' "$T/err" || fail "second import: $(cat "$T/err")"

# Changes, then an incremental export.
echo more >>"$MNT/files/docs/hello.txt"
echo new >"$MNT/files/docs/deep/new.txt"
rm "$MNT/files/empty" "$MNT/files/docs/near-link"
rm -r "$MNT/programs/tool"
chmod 0700 "$MNT/files/docs/deep"
setfattr -n user.color -v green "$MNT/files/docs/hello.txt"
setfattr -x user.dir "$MNT/files/docs"
ln "$MNT/files/docs/big.bin" "$MNT/files/big-link"
mkdir "$MNT/files/was-file"
"$STASHFS" snapshot create "$MNT" s2 >/dev/null
S2=$MNT/.backups/s2
"$STASHFS" export "$MNT" s2 "$T/s2-since-s1.tar.gz" --since s1 >/dev/null
tar -tzf "$T/s2-since-s1.tar.gz" >"$T/incr.list"
grep -qx 'files/docs/deep/new.txt' "$T/incr.list" || fail "increment lacks new.txt"
if grep -qx 'files/docs/deep/rel-link' "$T/incr.list"; then
	fail "increment holds an unchanged symlink"
fi
tar -xzOf "$T/s2-since-s1.tar.gz" MANIFEST.json >"$T/incr.json"
grep -q '"base":[[:space:]]*"s1"' "$T/incr.json" || fail "increment has no base"
for gone in files/empty files/docs/near-link programs/tool; do
	grep -q "\"$gone\"" "$T/incr.json" || fail "deleted list lacks $gone"
done

# Full + increment on the mount: /s1 becomes /s2, equal to the snapshot.
"$STASHFS" import "$T/s2-since-s1.tar.gz" "$MNT" >/dev/null
[ ! -e "$MNT/s1" ] || fail "/s1 was not renamed to /s2"
same_tree "$S2" "$MNT/s2" "full + incremental import on the mount"
no_staging "$MNT"
# The increment again: its base is gone.
must_fail "$STASHFS" import "$T/s2-since-s1.tar.gz" "$MNT" 2>"$T/err"
grep -q 'does not hold an import of snapshot s1' "$T/err" ||
	fail "out-of-order increment: $(cat "$T/err")"

# Sealed exports.
echo 'correct horse' >"$T/pass"
echo 'wrong horse' >"$T/wrong"
head -c 32 /dev/urandom >"$T/arc.key"
"$STASHFS" export "$MNT" s2 "$T/s2.sealed" --archive-passphrase-file "$T/pass" >/dev/null
[ "$(head -c 8 "$T/s2.sealed")" = STASHARC ] || fail "sealed archive has no magic"
if tar -tf "$T/s2.sealed" >/dev/null 2>&1; then
	fail "tar reads a sealed archive"
fi
"$STASHFS" import "$T/s2.sealed" "$MNT" --to sealed --archive-passphrase-file "$T/pass" >/dev/null
same_tree "$S2" "$MNT/sealed" "sealed import"
rc=0
"$STASHFS" import "$T/s2.sealed" "$MNT" --to sealed2 --archive-passphrase-file "$T/wrong" 2>"$T/err" || rc=$?
[ "$rc" = 3 ] || fail "wrong passphrase: exit $rc, expected 3"
grep -q 'wrong archive passphrase' "$T/err" || fail "wrong passphrase: $(cat "$T/err")"
[ ! -e "$MNT/sealed2" ] || fail "a wrong passphrase left /sealed2"
no_staging "$MNT"
STASHFS_ARCHIVE_PASSPHRASE='correct horse' \
	"$STASHFS" export "$MNT" s1 "$T/s1.env.tar.zst" --encrypt >/dev/null
"$STASHFS" export "$MNT" s1 "$T/s1.key.tar.zst" --archive-key-file "$T/arc.key" >/dev/null

# A flipped byte, plain and sealed: the damaged file is named, nothing
# is left. The middle of the archive lies in big.bin's 3 MiB (in s2 they
# are stored under its first name, files/big-link).
for arc in s1.tar.gz s2.sealed; do
	cp "$T/$arc" "$T/bad-$arc"
	flip_byte "$T/bad-$arc" $(($(stat -c %s "$T/$arc") / 2))
	must_fail "$STASHFS" import "$T/bad-$arc" "$MNT" --to bad \
		--archive-passphrase-file "$T/pass" 2>"$T/err"
	cat "$T/err"
	grep -Eq 'files/(docs/big\.bin|big-link)' "$T/err" ||
		fail "$arc: the damaged file is not named"
	grep -q 'nothing was imported' "$T/err" || fail "$arc: no 'nothing was imported'"
	[ ! -e "$MNT/bad" ] || fail "$arc: a damaged archive left /bad"
	no_staging "$MNT"
done

# Crafted archives: each is refused by name, and nothing is written.
mkdir "$T/evil" "$T/evil/out"
python3 - "$T/evil" <<'EOF'
import io, sys, tarfile
d = sys.argv[1]
def add(tf, name, kind=tarfile.REGTYPE, link=""):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = link
    data = b"pwned\n" if kind == tarfile.REGTYPE else b""
    ti.size = len(data)
    tf.addfile(ti, io.BytesIO(data))
cases = {
    "dotdot": [("ok.txt",), ("../x",)],
    "abs": [("ok.txt",), ("/abs",)],
    "symlink": [("ok.txt",), ("evil", tarfile.SYMTYPE, "../../out")],
    "symlink-abs": [("ok.txt",), ("evil", tarfile.SYMTYPE, "/tmp")],
    "symlink-via": [("a/ok.txt",), ("a/up", tarfile.SYMTYPE, ".."),
                    ("a/evil", tarfile.SYMTYPE, "up/..")],
    "hardlink": [("ok.txt",), ("evil", tarfile.LNKTYPE, "../../etc/passwd")],
    "through-link": [("ok.txt",), ("a", tarfile.SYMTYPE, "."),
                     ("a/x", tarfile.REGTYPE)],
}
for name, entries in cases.items():
    with tarfile.open(f"{d}/{name}.tar", "w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            add(tf, *e)
EOF
cd "$T/evil/out"
for c in dotdot:../x abs:/abs symlink:evil symlink-abs:evil \
	symlink-via:a/evil hardlink:evil through-link:a/x; do
	arc=${c%%:*}
	entry=${c#*:}
	must_fail "$STASHFS" import "$T/evil/$arc.tar" "$MNT" --to "evil-$arc" 2>"$T/err"
	cat "$T/err"
	grep -qF "$entry" "$T/err" || fail "$arc: the entry $entry is not named"
	[ ! -e "$MNT/evil-$arc" ] || fail "$arc: /evil-$arc was created"
	no_staging "$MNT"
done
cd "$T"
[ -z "$(ls -A "$T/evil/out")" ] || fail "something was written outside"
[ ! -e "$MNT/x" ] && [ ! -e "$MNT/../x" ] && [ ! -e /abs ] ||
	fail "an entry landed outside its target"

# A mounted store: exit 4, and the user is pointed at the mount point.
rc=0
"$STASHFS" export "$STORE" s1 "$T/busy.tar.gz" 2>"$T/err" || rc=$?
[ "$rc" = 4 ] || fail "export of a mounted store: exit $rc, expected 4"
grep -q 'mount point' "$T/err" || fail "busy store: $(cat "$T/err")"
[ ! -e "$T/busy.tar.gz" ] || fail "a failed export left its file"

# The same with the store unmounted: export, full + increment import.
stash_umount
"$STASHFS" export "$STORE" s2 "$T/s2.store.tar.zst" >/dev/null
"$STASHFS" import "$T/s1.tar.gz" "$STORE" --to chain/here >/dev/null
"$STASHFS" import "$T/s2-since-s1.tar.gz" "$STORE" --to chain/here >/dev/null
"$STASHFS" import "$T/s1.key.tar.zst" "$STORE" --to keyed --archive-key-file "$T/arc.key" >/dev/null
STASHFS_ARCHIVE_PASSPHRASE='correct horse' \
	"$STASHFS" import "$T/s1.env.tar.zst" "$STORE" --to env >/dev/null
stash_mount
same_tree "$S2" "$MNT/chain/here" "full + incremental import into the store"
same_tree "$S1" "$MNT/keyed" "key-file sealed import into the store"
same_tree "$S1" "$MNT/env" "passphrase-sealed import into the store"
mkdir "$T/zst"
tar --zstd --xattrs --xattrs-include='*' -xf "$T/s2.store.tar.zst" -C "$T/zst"
same_tree "$S2" "$T/zst" "export of the unmounted store"
no_staging "$MNT"
no_staging "$MNT/chain"
echo "ok"
