#!/bin/bash
# Search through MNT/.search (and `stashfs search`):
# 1. thousands of article JSON files, JSON Lines batches, text, HTML,
#    binary and empty files copied in with cp -a; for single words (every
#    language), phrases, AND/OR/NOT, prefixes, NEAR, each field and filter,
#    date ranges and combinations, .search lists exactly the set that
#    tests/tools/searchgen.py computes from the source files, in the order
#    of .results.json; ranking where it is certain; limit: and the default
#    cap of 1000; entries are the files (cat, grep, wc, cp, inode numbers),
#    records are read-only lines; bad queries fail with EINVAL and a reason
#    in .errors; find and du do not enter .search; `stashfs search` on the
#    mount and on the unmounted store agree;
# 2. the index follows rename, overwrite, unlink and truncate; gives the
#    same answers after a remount; after a kill -9 in the middle of a copy
#    every result is a file that matches, and after `stashfs reindex` the
#    answers are exactly those of what is on disk.
. "$(dirname "$0")/../lib.sh"

gen="python3 $(cd "$(dirname "$0")/../tools" && pwd)/searchgen.py"
command -v getfattr >/dev/null || { echo "no getfattr: skipping" >&2; exit 77; }

SRC=$T/src
$gen gen "$SRC" --seed 18 --articles 2000 --batches 4 --records 150 \
	--files 200 --prefix a || fail "generating the test data"

stash_init
stash_mount
S=$MNT/.search

# Exactly the expected answers for every query of searchgen.py, computed
# from the tree under $1. A difference fails the test at its end, so that
# one run reports every stage.
wrong=()
check_all() {
	$gen check "$MNT" "$1" --label "$2" "${@:3}" || wrong+=("$2")
}

# ---- 1. answers ----

cp -a "$SRC/articles/." "$MNT/articles/" || fail "cp -a articles"
cp -a "$SRC/files/." "$MNT/files/" || fail "cp -a files"
# Right after the copy: a lookup waits for the indexer.
[ "$(ls "$S/collisionword" | wc -l)" = 2 ] ||
	fail "collisionword right after cp: $(ls "$S/collisionword")"
check_all "$SRC" "1 after cp"

# .search is not in the root, but there for cd and ls
ls -a "$MNT" | grep -qx .search && fail ".search listed in the root"
[ -d "$S" ] || fail ".search is not a directory"
ls "$S" | grep -qx README || fail "no README in .search: $(ls "$S")"
ls -a "$S" | grep -qx .errors || fail "no .errors in .search"
grep -q 'author:' "$S/README" || fail "README does not explain fields"
ls "$S" | grep -qx 'collisionword' || fail "recent queries not listed"
[ -d "$S/collisionword" ] || fail "a recent query is not a directory"
timeout 60 find "$MNT" >"$T/find" || fail "find MNT"
grep -q '/\.search' "$T/find" && fail "find entered .search"
[ "$(grep -c '\.json$' "$T/find")" -gt 2000 ] || fail "find missed files"
timeout 60 du -s "$MNT" >/dev/null || fail "du -s MNT"

# Names: the file's own, ~2 before the extension on a collision; the
# entries are the files: same inode, same bytes, getfattr gives the path.
Q=$S/collisionword
[ "$(ls "$Q" | tr '\n' ' ')" = "report.txt report~2.txt " ] ||
	fail "collision names: $(ls "$Q")"
for e in report.txt report~2.txt; do
	p=$(getfattr --absolute-names --only-values -n user.stashfs.path "$Q/$e") ||
		fail "getfattr user.stashfs.path $e"
	case $p in /files/x/report.txt | /files/y/report.txt) ;;
	*) fail "user.stashfs.path of $e: $p" ;;
	esac
	[ "$(stat -c %i "$Q/$e")" = "$(stat -c %i "$MNT$p")" ] ||
		fail "$e is not the inode of $p"
	cmp -s "$Q/$e" "$MNT$p" || fail "cat $e differs from $p"
done
[ "$(cat "$Q"/* | grep -c collisionword)" = 2 ] || fail "cat .search/Q/*"
[ "$(grep -l collisionword "$Q"/* | wc -l)" = 2 ] || fail "grep -l .search/Q/*"
[ "$(wc -l "$Q"/* | tail -1 | awk '{print $1}')" = 2 ] || fail "wc -l .search/Q/*"
mkdir "$T/out"
cp "$Q"/* "$T/out/" || fail "cp .search/Q/* DEST/"
[ "$(ls "$T/out" | wc -l)" = 2 ] || fail "cp copied $(ls "$T/out")"
grep -q "folder" "$T/out/report~2.txt" || fail "copied entry content"
# a write through an entry goes to the real file
p=$(getfattr --absolute-names --only-values -n user.stashfs.path "$Q/report.txt")
echo "appended line" >>"$Q/report.txt" || fail "append through an entry"
tail -1 "$MNT$p" | grep -qx "appended line" || fail "append did not reach $p"
[ "$(ls "$S/collisionword" | wc -l)" = 2 ] || fail "collisionword after append"

# ls -U is best first; plain ls sorts by name; a word in a title ranks
# above a word only in a body.
ls -U "$S/zephyrine" >"$T/rank" || fail "ls -U zephyrine"
[ "$(head -3 "$T/rank" | sort | tr '\n' ' ')" = \
	"rank-0.json rank-1.json rank-2.json " ] ||
	fail "title hits do not rank first: $(tr '\n' ' ' <"$T/rank")"
[ "$(ls "$S/zephyrine" | tr '\n' ' ')" = "$(sort "$T/rank" | tr '\n' ' ')" ] ||
	fail "plain ls is not sorted by name"
python3 - "$S/zephyrine/.results.json" <<'EOF' || fail ".results.json fields"
import json, sys
r = json.load(open(sys.argv[1]))
assert len(r) == 6, r
for o in r:
    for k in ("path", "name", "line", "title", "score", "snippet"):
        assert k in o, (k, o)
    assert "**zephyrine**" in o["snippet"].lower(), o["snippet"]
    assert o["published_at"].startswith("2022-02-02"), o
assert [o["score"] for o in r] == sorted((o["score"] for o in r),
                                         reverse=True), r
assert all(o["path"].startswith("/articles/rank/") for o in r[:3]), r
EOF

# A JSON Lines record: BATCH.L<line>.json, read-only, its line and "\n"
# (line 4 of batch 00 is blank, line 7 malformed: numbering counts them).
ls "$S/name:a-batch-00.jsonl limit:3000" >"$T/recs" || fail "ls records"
grep -qx 'a-batch-00.jsonl.L8.json' "$T/recs" || fail "no L8: $(head "$T/recs")"
grep -q 'L4.json\|L7.json' "$T/recs" && fail "blank or bad line listed"
R="$S/name:a-batch-00.jsonl limit:3000/a-batch-00.jsonl.L8.json"
sed -n 8p "$SRC/articles/batches/a-batch-00.jsonl" >"$T/line8"
cmp "$R" "$T/line8" || fail "record L8 is not line 8 and a newline"
[ "$(getfattr --absolute-names --only-values -n user.stashfs.path "$R")" = \
	/articles/batches/a-batch-00.jsonl ] || fail "record's user.stashfs.path"
[ "$(getfattr --absolute-names --only-values -n user.stashfs.line "$R")" = 8 ] ||
	fail "record's user.stashfs.line"
must_fail sh -c "echo x >>'$R'" 2>/dev/null
cmp "$R" "$T/line8" || fail "record changed by a write"

# Bad queries: EINVAL, the reason in .errors; nothing is an empty dir
for q in 'autor:smith' '(storage' '"storage' 'NOT storage' 'after:2024-13-01' \
	'limit:0' 'storage OR river after:2020-01-01'; do
	out=$(ls "$S/$q" 2>&1) && fail "bad query '$q' listed: $out"
	case $out in *"Invalid argument"*) ;; *) fail "bad query '$q': $out" ;; esac
	grep -qF "$q: " "$S/.errors" || fail ".errors does not name '$q'"
done
grep -q "unknown field 'autor:'" "$S/.errors" || fail ".errors reason"
grep -q "autor" "$STASHFS_LOG" || fail "bad query not logged"
[ -d "$S/qwertyuiop" ] && [ -z "$(ls -A "$S/qwertyuiop" | grep -v .results.json)" ] ||
	fail "a query matching nothing is not an empty directory"
[ "$(cat "$S/qwertyuiop/.results.json")" = "[]" ] || fail "empty .results.json"
# a '/' is written %2F
[ "$(ls "$S/url:news.example.com%2F2021%2F03" | wc -l)" -gt 0 ] ||
	fail "url with %2F"
must_fail ls "$S/url:news.example.com/2021" >/dev/null 2>&1

# limit: caps the listing; the default cap is 1000
[ "$(ls "$S/json limit:7" | wc -l)" = 7 ] || fail "limit:7"
[ "$(ls "$S/json" | wc -l)" = 1000 ] || fail "default cap of 1000"
[ "$(ls "$S/json limit:20000" | wc -l)" -gt 2000 ] || fail "limit:20000"

# The mount's index rebuilt (setfattr user.stashfs.reindex): same answers
"$STASHFS" reindex "$MNT" >/dev/null || fail "stashfs reindex MNT"
check_all "$SRC" "1 after reindex MNT" --only w00,ph1,author,url-slash,range,cap

# The date of a file with no date of its own is its mtime (cp -a keeps it)
touch -d 2001-02-03 "$T/old.txt"
echo "oldmtimeword" >"$T/old.txt"
touch -d 2001-02-03 "$T/old.txt"
cp -a "$T/old.txt" "$MNT/files/"
[ "$(ls "$S/oldmtimeword before:2002-01-01")" = old.txt ] ||
	echo "NOTE: cp -a file dated by its copy time, not its mtime" >&2

# stashfs search: lines PATH[:LINE]  TITLE, --json, a bad query exits 1
# with the reason, a mounted STORE exits 4 naming the mount point
"$STASHFS" search "$MNT" storage >"$T/cli" || fail "stashfs search MNT"
grep -q "^/articles/.*\.json  " "$T/cli" || fail "search output: $(head -3 "$T/cli")"
"$STASHFS" search "$MNT" 'name:a-batch-00.jsonl limit:3' | grep -q '^/articles/batches/a-batch-00.jsonl:[0-9]' ||
	fail "stashfs search: PATH:LINE for records"
"$STASHFS" search "$MNT" storage --json | python3 -c '
import json, sys; r = json.load(sys.stdin); assert len(r) > 100' ||
	fail "stashfs search --json on the mount"
rc=0
"$STASHFS" search "$MNT" autor:x >/dev/null 2>"$T/err" || rc=$?
[ $rc = 1 ] && grep -q "unknown field 'autor:'" "$T/err" ||
	fail "stashfs search of a bad query: rc $rc, $(cat "$T/err")"
rc=0
"$STASHFS" search "$STORE" storage >/dev/null 2>"$T/err" || rc=$?
[ $rc = 4 ] && grep -q "mount point" "$T/err" ||
	fail "search of a mounted STORE: rc $rc, $(cat "$T/err")"
rc=0
"$STASHFS" search "$MNT" >/dev/null 2>&1 || rc=$?
[ $rc = 2 ] || fail "stashfs search without a query: rc $rc"

# ---- 2. changes ----

A=$MNT/articles
# rename: found under its new name, in its new area
mv "$A/rank/rank-0.json" "$MNT/programs/moved-zephyrine.json"
# overwrite: old words go, new come
echo '{"title": "overwrittenword", "published_at": "2020-01-01"}' >"$A/rank/rank-1.json"
# unlink
rm "$A/rank/rank-2.json" "$MNT/files/y/report.txt"
# truncate: the content goes, the name stays
truncate -s 0 "$A/rank/rank-3.json"
# append a record to a batch, rewrite another batch
echo '{"title": "appendedrecord", "published_at": "2020-01-01"}' >>"$A/batches/a-batch-01.jsonl"
head -20 "$SRC/articles/batches/a-batch-02.jsonl" >"$A/batches/a-batch-02.jsonl"
# and a batch of renames within articles
for f in "$A"/2020/01/*.json; do mv "$f" "${f%.json}-r.json"; done
[ "$(ls "$S/zephyrine" | tr '\n' ' ')" = \
	"moved-zephyrine.json rank-4.json rank-5.json " ] ||
	fail "zephyrine after changes: $(ls "$S/zephyrine")"
[ "$(ls "$S/area:programs zephyrine")" = moved-zephyrine.json ] ||
	fail "renamed file not found in its new area"
[ "$(ls "$S/overwrittenword")" = rank-1.json ] || fail "overwritten file"
[ "$(ls "$S/name:rank-3.json")" = rank-3.json ] || fail "truncated file by name"
[ "$(ls "$S/appendedrecord")" = a-batch-01.jsonl.L151.json ] ||
	fail "appended record: $(ls "$S/appendedrecord")"
[ "$(ls "$S/collisionword")" = report.txt ] || fail "unlinked report.txt"
check_all "$MNT" "2 after changes"

# remount: the same answers; stashfs search on the mount and on the
# unmounted store give the same lines
cli_queries=(storage '"quick brown fox"' 'author:smith lang:en' 'tag:наука'
	'url:news.example.com/2021/03' 'name:*.html' 'after:2024-06-01 climate'
	'100%' 'zephyrine' 'autor:x')
cli_all() {
	local i rc
	for i in "${!cli_queries[@]}"; do
		rc=0
		"$STASHFS" search "$1" "${cli_queries[i]}" >"$T/cli-$2.$i" 2>&1 || rc=$?
		echo "rc=$rc" >>"$T/cli-$2.$i"
	done
}
cli_all "$MNT" mnt
stash_umount
cli_all "$STORE" store
for i in "${!cli_queries[@]}"; do
	cmp -s "$T/cli-mnt.$i" "$T/cli-store.$i" ||
		fail "stashfs search '${cli_queries[i]}': mount and store differ:
$(diff "$T/cli-mnt.$i" "$T/cli-store.$i" | head)"
done
stash_mount
check_all "$MNT" "2 after remount"

# kill -9 in the middle of a copy
$gen gen "$T/src2" --seed 19 --articles 2000 --batches 2 --records 100 \
	--files 0 --prefix k || fail "generating more data"
cp -a "$T/src2/articles/." "$A/" 2>/dev/null &
cpid=$!
for ((i = 0; i < 500; i++)); do
	[ "$(find "$A" -name 'k0*.json' 2>/dev/null | head -400 | wc -l)" -ge 300 ] && break
	sleep 0.02
done
pid=$(stash_pid)
kill -9 "$pid"
wait "$cpid" 2>/dev/null && fail "the copy finished before the kill"
wait_exit "$pid" 30 || fail "daemon $pid survived kill -9"
fusermount3 -u "$MNT" || fail "fusermount3 -u of the dead mount"
stash_mount
n=$(find "$A" -name 'k0*.json' | wc -l)
[ "$n" -gt 0 ] && [ "$n" -lt 2000 ] || fail "$n files copied before the kill"
# every result is a file on disk that matches
check_all "$MNT" "2 after kill -9 (every result matches)" --subset
# and the index caught up by itself (the queue survives a crash): the
# same answers as after a reindex
$gen check "$MNT" "$MNT" --label "2 after kill -9" >"$T/crash-check" || true
stash_umount
"$STASHFS" reindex "$STORE" >/dev/null || fail "stashfs reindex STORE"
stash_mount
$gen check "$MNT" "$MNT" --label "2 after kill -9 and reindex" \
	>"$T/reindex-check" || wrong+=("2 after kill -9 and reindex")
cat "$T/reindex-check"
diff <(grep -o '^FAIL [^]]*]' "$T/crash-check" | sed 's/^FAIL [^[]*//') \
	<(grep -o '^FAIL [^]]*]' "$T/reindex-check" | sed 's/^FAIL [^[]*//') ||
	fail "after kill -9 and remount the index did not catch up by itself:
$(cat "$T/crash-check")"
[ ${#wrong[@]} = 0 ] || fail "wrong answers (listed above) at: ${wrong[*]}"
echo "0018: ok"
