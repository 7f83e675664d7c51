/*
 * test_verify.c - unit tests for store/verify.c: a store made through the
 * store API verifies clean, quick and full; then each kind of damage is
 * made by hand and verify must find it and name the files it reaches, by
 * path: a truncated pack, a missing pack (with an unlinked file still
 * open), a flipped byte inside a sealed chunk (only --full sees it), and
 * catalog rows changed with SQL through the catalog's VFS (wrong refs, a
 * file size its map does not cover, a deleted chunk row).
 *
 * With snapshots (stash_snap_create): a store with snapshots verifies
 * clean; wrong refs are found and repaired, then clean; a chunk row
 * pointing at the wrong offset (or at a pack that is gone, whose bytes
 * are under another pack name) is relocated; a missing pack names the
 * damaged files in the live tree and in each snapshot that holds them,
 * --repair marks them (xattr), reads of the lost bytes fail with EIO and
 * the rest reads, and a second run says the damage is all marked and
 * changes nothing.
 *
 * Each test works in its own mkdtemp directory under /tmp, removed after.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"
#include "sqlvfs.h"
#include "store.h"
#include "verify.h"
#include "testutil.h"

#define KiB 1024u

/* Files made by setup, by name under /t. */
enum { F_A, F_B, F_SPARSE, F_EMPTY, NFILES };

struct ctx {
	struct test_store ts; /* the scratch store's folder and secret */
	uint64_t ino[NFILES]; /* /t/a, /t/d/b, /t/sparse, /t/empty */
	uint64_t t, d;	      /* /t and /t/d */
	char *text;	      /* the last report, lines joined by "\n" */
	size_t text_len;
	bool progress;	       /* ask for progress calls */
	unsigned progress_n;   /* calls seen */
	bool progress_done;    /* the last one had done set */
	uint64_t progress_max; /* the most chunks_done seen */
};

static uint64_t mkfile(struct stash_store *st, uint64_t parent,
		       const char *name)
{
	struct stash_attr a;

	assert_int_equal(stash_store_mknod(st, parent, name, S_IFREG | 0644, 0,
					   0, 0, &a),
			 0);
	return a.ino;
}

/* Write len random bytes to ino through the file API and close it. */
static void fill(struct stash_store *st, uint64_t ino, size_t len)
{
	uint8_t *buf = malloc(len);

	assert_non_null(buf);
	assert_int_equal(stash_crypto_random(buf, len), 0);
	test_file_put(st, ino, buf, len, 0);
	free(buf);
}

/*
 * /t/sparse (1 MiB, never written), /t/empty, /t/a (700 KiB), /t/d/b
 * (200 KiB) and /t/d/a2, a hard link to /t/a; written in that order, so
 * the chunks of b come after those of a in the pack.
 */
static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	struct stash_store *st = NULL;
	struct stash_attr a, size = { .size = 1024 * KiB };

	if (!c)
		return -1;
	if (test_store_make(&c->ts, "test_verify", NULL) != 0) {
		free(c);
		return -1;
	}
	if (stash_store_open(&st, c->ts.path, &c->ts.secret) != 0)
		return -1;
	assert_int_equal(
		stash_store_mkdir(st, STASH_ROOT_INO, "t", 0755, 0, 0, &a), 0);
	c->t = a.ino;
	assert_int_equal(stash_store_mkdir(st, c->t, "d", 0755, 0, 0, &a), 0);
	c->d = a.ino;
	c->ino[F_SPARSE] = mkfile(st, c->t, "sparse");
	assert_int_equal(stash_store_setattr(st, c->ino[F_SPARSE], &size,
					     STASH_SET_SIZE, &a),
			 0);
	c->ino[F_EMPTY] = mkfile(st, c->t, "empty");
	c->ino[F_A] = mkfile(st, c->t, "a");
	fill(st, c->ino[F_A], 700 * KiB);
	c->ino[F_B] = mkfile(st, c->d, "b");
	fill(st, c->ino[F_B], 200 * KiB);
	assert_int_equal(stash_store_link(st, c->ino[F_A], c->d, "a2", &a), 0);
	assert_int_equal(stash_store_close(st), 0);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	test_rmtree(c->ts.root);
	free(c->text);
	free(c);
	return 0;
}

static void collect(void *arg, const char *line)
{
	struct ctx *c = arg;
	size_t len = strlen(line);
	char *p = realloc(c->text, c->text_len + len + 2);

	assert_non_null(p);
	memcpy(p + c->text_len, line, len);
	p[c->text_len + len] = '\n';
	p[c->text_len + len + 1] = '\0';
	c->text = p;
	c->text_len += len + 1;
}

static void on_progress(void *arg, const struct stash_verify_progress *p)
{
	struct ctx *c = arg;

	assert_false(c->progress_done); /* done comes last, once */
	assert_true(p->chunks_done <= p->chunks_total);
	assert_true(p->bytes_done <= p->bytes_total);
	assert_true(p->chunks_done >= c->progress_max);
	c->progress_max = p->chunks_done;
	c->progress_done = p->done;
	c->progress_n++;
}

/* Open the store, verify it into c->text and *res, close it. */
static void verify_with(struct ctx *c, struct stash_store *st, unsigned flags,
			struct stash_verify_result *res)
{
	free(c->text);
	c->text = NULL;
	c->text_len = 0;
	struct stash_verify_opts o = { .flags = flags,
				       .report = collect,
				       .progress =
					       c->progress ? on_progress : NULL,
				       .arg = c };

	c->progress_n = 0;
	c->progress_done = false;
	c->progress_max = 0;
	assert_int_equal(stash_store_verify(st, &o, res), 0);
	/* Line by line: cmocka cuts long messages. */
	for (const char *p = c->text, *e; p && *p; p = e + 1) {
		e = strchr(p, '\n');
		print_message("%.*s\n", (int)(e - p), p);
	}
}

static void verify(struct ctx *c, unsigned flags,
		   struct stash_verify_result *res)
{
	struct stash_store *st;

	assert_int_equal(stash_store_open(&st, c->ts.path, &c->ts.secret), 0);
	verify_with(c, st, flags, res);
	assert_int_equal(stash_store_close(st), 0);
}

static bool has(const struct ctx *c, const char *s)
{
	return c->text && strstr(c->text, s);
}

/* The last line of the report. */
static const char *last_line(const struct ctx *c)
{
	const char *p;

	assert_non_null(c->text);
	assert_true(c->text_len >= 2);
	for (p = c->text + c->text_len - 2; p > c->text && p[-1] != '\n'; p--)
		;
	return p;
}

/* A line of the report that starts with prefix must end in "ok ...". */
static void expect_ok(const struct ctx *c, const char *prefix)
{
	char want[64];

	snprintf(want, sizeof(want), "\n%s: ok", prefix);
	if (!strstr(c->text, want) &&
	    strncmp(c->text, want + 1, strlen(want + 1)))
		fail_msg("no \"%s: ok\" in the report", prefix);
}

static void expect_clean(struct ctx *c, unsigned flags)
{
	struct stash_verify_result res;

	verify(c, flags, &res);
	assert_int_equal(res.problems, 0);
	assert_string_equal(last_line(c), "clean\n");
	expect_ok(c, "catalog");
	expect_ok(c, "chunk refs");
	expect_ok(c, "extents");
	expect_ok(c, "file maps");
	expect_ok(c, "chunk locations");
}

/* ---- the catalog, through the VFS (for the damage only SQL makes) ---- */

static sqlite3 *cat_open(struct ctx *c)
{
	struct stash_config cfg;
	struct stash_keys keys;
	char path[256];
	sqlite3 *db;

	assert_int_equal(stash_config_load(c->ts.path, &cfg), 0);
	assert_int_equal(stash_config_unlock(&cfg, &c->ts.secret, &keys), 0);
	snprintf(path, sizeof(path), "%s/catalog.db", c->ts.path);
	assert_int_equal(stash_sqlvfs_open(&db, path, keys.catalog, 0), 0);
	stash_keys_wipe(&keys);
	return db;
}

static void cat_exec(sqlite3 *db, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void cat_exec(sqlite3 *db, const char *fmt, ...)
{
	char sql[512], *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg ? msg : "error");
	assert_int_equal(sqlite3_changes(db) > 0, 1);
}

/* A chunk of file ino: the one at the lowest (or highest) offset in its
 * pack. Workers append a file's chunks in any order. */
struct where {
	int64_t row; /* chunks.id */
	uint8_t id[STASH_ID_LEN];
	uint64_t pack, off;
	uint32_t len;
};

static struct where chunk_of(struct ctx *c, uint64_t ino, bool last)
{
	sqlite3 *db = cat_open(c);
	sqlite3_stmt *s;
	struct where w;
	char sql[256];

	snprintf(sql, sizeof(sql),
		 "SELECT c.id, c.hash, c.pack, c.off, c.len FROM extents e"
		 " JOIN chunks c ON c.id = e.chunk WHERE e.ino = %llu"
		 " ORDER BY c.off %s LIMIT 1",
		 (unsigned long long)ino, last ? "DESC" : "ASC");
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	w.row = sqlite3_column_int64(s, 0);
	assert_int_equal(sqlite3_column_bytes(s, 1), STASH_ID_LEN);
	memcpy(w.id, sqlite3_column_blob(s, 1), STASH_ID_LEN);
	w.pack = (uint64_t)sqlite3_column_int64(s, 2);
	w.off = (uint64_t)sqlite3_column_int64(s, 3);
	w.len = (uint32_t)sqlite3_column_int64(s, 4);
	sqlite3_finalize(s);
	assert_int_equal(stash_sqlvfs_close(db), 0);
	return w;
}

static void pack_path(const struct ctx *c, uint64_t pack, char *out,
		      size_t size)
{
	snprintf(out, size, "%s/packs/%02x/%016llx", c->ts.path,
		 (unsigned)(pack & 0xff), (unsigned long long)pack);
}

/* ---- tests ---- */

static void test_clean(void **state)
{
	struct ctx *c = *state;
	struct stash_verify_result res;

	expect_clean(c, 0);
	assert_true(has(c, "chunk contents: not checked"));
	expect_clean(c, STASH_VERIFY_FULL);
	expect_ok(c, "chunk contents");

	verify(c, STASH_VERIFY_FULL, &res);
	assert_int_equal(res.files, 3); /* a, b and sparse (holes or zeros) */
	assert_true(res.chunks_in_use >= 4);
	assert_int_equal(res.chunks_read, res.chunks_in_use);
	assert_true(res.bytes_decoded >= 900 * KiB);
	assert_true(res.bytes_read > 0);
	assert_int_equal(res.damaged_files, 0);
}

/* A pack cut short inside the last chunk in it, one of b's: quick verify
 * finds it and names b only (a's chunks lie before the cut). */
static void test_truncated_pack(void **state)
{
	struct ctx *c = *state;
	struct stash_verify_result res;
	struct where w = chunk_of(c, c->ino[F_B], true);
	char path[256];

	pack_path(c, w.pack, path, sizeof(path));
	assert_int_equal(truncate(path, (off_t)(w.off + w.len / 2)), 0);
	verify(c, 0, &res);
	assert_int_equal(res.missing_chunks, 1);
	assert_int_equal(res.problems, 1);
	assert_int_equal(res.damaged_files, 1);
	assert_true(has(c, "\n  /t/d/b: "));
	assert_false(has(c, "/t/a"));
	assert_true(has(c, "before the chunk does"));
	assert_string_equal(last_line(c), "damaged: 1 problem\n");
}

/* A byte flipped in the middle of a chunk of a: the chunk is where the
 * catalog says, so only a full verify sees it; both names of a are
 * reported, b is not. */
static void test_flipped_byte(void **state)
{
	struct ctx *c = *state;
	struct stash_verify_result res;
	struct where w = chunk_of(c, c->ino[F_A], false);
	char path[256];
	uint8_t byte;
	int fd;

	pack_path(c, w.pack, path, sizeof(path));
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &byte, 1, (off_t)(w.off + w.len / 2)), 1);
	byte ^= 0x10;
	assert_int_equal(pwrite(fd, &byte, 1, (off_t)(w.off + w.len / 2)), 1);
	close(fd);

	expect_clean(c, 0);
	verify(c, STASH_VERIFY_FULL, &res);
	assert_int_equal(res.corrupt_chunks, 1);
	assert_int_equal(res.missing_chunks, 0);
	assert_int_equal(res.problems, 1);
	assert_int_equal(res.damaged_files, 1);
	assert_true(has(c, "\n  /t/a (inode "));
	assert_true(has(c, "\n  /t/d/a2 (inode "));
	assert_true(has(c, "does not authenticate"));
	assert_false(has(c, "/t/d/b"));
	assert_string_equal(last_line(c), "damaged: 1 problem\n");
}

/* A missing pack, and a file unlinked while open whose data was in it:
 * the file has no name left, and verify says so. */
static void test_missing_pack_unlinked(void **state)
{
	struct ctx *c = *state;
	struct stash_verify_result res;
	struct stash_store *st;
	struct stash_file *f;
	struct stash_attr a;
	uint8_t buf[100 * KiB];
	char path[256];
	uint64_t ino;

	assert_int_equal(stash_store_open(&st, c->ts.path, &c->ts.secret), 0);
	ino = mkfile(st, c->t, "u");
	assert_int_equal(stash_crypto_random(buf, sizeof(buf)), 0);
	assert_int_equal(stash_file_open(st, ino, &f), 0);
	assert_int_equal(stash_file_write(st, f, buf, sizeof(buf), 0),
			 (ssize_t)sizeof(buf));
	assert_int_equal(stash_file_flush(st, f), 0);
	assert_int_equal(stash_store_unlink(st, c->t, "u"), 0);
	assert_int_equal(stash_store_getattr(st, ino, &a), 0);
	assert_int_equal(a.nlink, 0);

	/* This session writes a new pack: the one file in it is u. */
	pack_path(c, 2, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	verify_with(c, st, 0, &res);
	assert_true(res.missing_chunks >= 1);
	assert_int_equal(res.damaged_files, 1);
	assert_true(has(c, "the pack file is missing"));
	assert_true(has(c, "unlinked"));
	assert_false(has(c, "/t/"));
	assert_int_equal(stash_file_release(st, f), 0);
	stash_store_close(st);

	/* Released, the unlinked file is gone and so is the damage. */
	expect_clean(c, STASH_VERIFY_FULL);
}

/* refs of one of b's chunks raised by one: refs check, short id. */
static void test_wrong_refs(void **state)
{
	struct ctx *c = *state;
	struct stash_verify_result res;
	struct where w = chunk_of(c, c->ino[F_B], false);
	char hex[2 * STASH_ID_LEN + 1], want[128];
	sqlite3 *db = cat_open(c);

	cat_exec(db, "UPDATE chunks SET refs = refs + 1 WHERE id = %lld",
		 (long long)w.row);
	assert_int_equal(stash_sqlvfs_close(db), 0);
	verify(c, 0, &res);
	assert_int_equal(res.ref_mismatches, 1);
	assert_int_equal(res.problems, 1);
	stash_hex(w.id, 8, hex);
	snprintf(want, sizeof(want), "%s (refs 2, 1 file-map row)", hex);
	assert_true(has(c, want));
	assert_string_equal(last_line(c), "damaged: 1 problem\n");
}

/* b's size one byte larger than its map: the map check names b. */
static void test_size_not_covered(void **state)
{
	struct ctx *c = *state;
	struct stash_verify_result res;
	sqlite3 *db = cat_open(c);

	cat_exec(db, "UPDATE inodes SET size = size + 1 WHERE ino = %llu",
		 (unsigned long long)c->ino[F_B]);
	assert_int_equal(stash_sqlvfs_close(db), 0);
	verify(c, 0, &res);
	assert_int_equal(res.bad_maps, 1);
	assert_int_equal(res.problems, 1);
	assert_true(has(c, "\n  /t/d/b: its file map is broken: its extents"
			   " cover 204800 bytes but its size is 204801"));
}

/* A chunk row of a deleted: its extent dangles (and a's map names it). */
static void test_dangling_extent(void **state)
{
	struct ctx *c = *state;
	struct stash_verify_result res;
	struct where w = chunk_of(c, c->ino[F_A], true);
	sqlite3 *db = cat_open(c);

	cat_exec(db, "DELETE FROM chunks WHERE id = %lld", (long long)w.row);
	assert_int_equal(stash_sqlvfs_close(db), 0);
	verify(c, STASH_VERIFY_FULL, &res);
	assert_int_equal(res.dangling_extents, 1);
	assert_int_equal(res.ref_mismatches, 0);
	assert_int_equal(res.problems, 1);
	assert_true(has(c, "which does not exist"));
	assert_true(has(c, "\n  /t/a (inode "));
	assert_true(has(c, "\n  /t/d/a2 (inode "));
}

/* ---- snapshots and repair ---- */

static void verify_repair(struct ctx *c, unsigned flags,
			  struct stash_verify_result *res)
{
	verify(c, flags | STASH_VERIFY_REPAIR, res);
}

/*
 * Session 2 on the setup store: snapshot s1; rewrite all of /t/d/b (its
 * old chunks stay in s1 only) and write /t/n; snapshot s2. New data goes
 * to pack 2; pack 1 holds a and b as setup wrote them.
 */
static void two_snapshots(struct ctx *c)
{
	struct stash_store *st;
	struct stash_snapshot snap;
	struct stash_attr a;

	assert_int_equal(stash_store_open(&st, c->ts.path, &c->ts.secret), 0);
	assert_int_equal(stash_snap_create(st, "s1", &snap), 0);
	fill(st, c->ino[F_B], 200 * KiB);
	assert_int_equal(
		stash_store_mknod(st, c->t, "n", S_IFREG | 0644, 0, 0, 0, &a),
		0);
	fill(st, a.ino, 50 * KiB);
	assert_int_equal(stash_snap_create(st, "s2", &snap), 0);
	assert_int_equal(stash_store_close(st), 0);
}

/* The inode of /t/NAME or /t/d/NAME (sub) in snapshot name, or live. */
static uint64_t find(struct stash_store *st, const char *snap, bool sub,
		     const char *name)
{
	struct stash_snapshot s;
	struct stash_attr a;
	uint64_t dir = STASH_ROOT_INO;

	if (snap) {
		assert_int_equal(stash_snap_find(st, snap, &s), 0);
		dir = s.root;
	}
	assert_int_equal(stash_store_lookup(st, dir, "t", &a), 0);
	if (sub)
		assert_int_equal(stash_store_lookup(st, a.ino, "d", &a), 0);
	assert_int_equal(stash_store_lookup(st, a.ino, name, &a), 0);
	return a.ino;
}

/* The damage mark of ino, as a string ("" if none). */
static void get_mark(struct stash_store *st, uint64_t ino, char *buf,
		     size_t size)
{
	ssize_t n = stash_store_getxattr(st, ino, STASH_VERIFY_MARK_XATTR, buf,
					 size - 1);

	if (n == -ENODATA)
		n = 0;
	assert_true(n >= 0);
	buf[n] = '\0';
}

/* Cut ino to 0 bytes (its lost data is not read back), fill it anew. */
static void rewrite(struct stash_store *st, uint64_t ino, size_t len)
{
	struct stash_attr a, zero = { .size = 0 };

	assert_int_equal(
		stash_store_setattr(st, ino, &zero, STASH_SET_SIZE, &a), 0);
	fill(st, ino, len);
}

/* Snapshots share chunks: every row of every snapshot holds a reference,
 * and verify counts them all. Progress comes with --full. */
static void test_snapshots_clean(void **state)
{
	struct ctx *c = *state;
	struct stash_verify_result res;

	two_snapshots(c);
	expect_clean(c, 0);
	c->progress = true;
	expect_clean(c, STASH_VERIFY_FULL);
	assert_true(c->progress_n >= 1);
	assert_true(c->progress_done);
	verify(c, STASH_VERIFY_FULL, &res);
	assert_int_equal(res.files, 4);	     /* a, b, sparse, n */
	assert_int_equal(res.snap_files, 7); /* s1: a b sparse, s2: + n */
	assert_true(has(c, "file maps: ok (4 files, 7 more in snapshots)"));
	/* A repair of a clean store changes nothing. */
	verify_repair(c, STASH_VERIFY_FULL, &res);
	assert_int_equal(res.problems, 0);
	assert_true(has(c, "repair: nothing to change"));
	assert_string_equal(last_line(c), "clean\n");
}

/* refs of a chunk of a (used by the live tree, s1 and s2) lowered and
 * of one only s1 holds raised: found, repaired, then clean. */
static void test_refs_repaired(void **state)
{
	struct ctx *c = *state;
	struct stash_verify_result res;
	struct where wa = chunk_of(c, c->ino[F_A], false);
	struct where wb = chunk_of(c, c->ino[F_B], false);
	sqlite3 *db;

	two_snapshots(c);
	db = cat_open(c);
	/* b's old chunk: its only rows are s1's (and s2 no more). */
	cat_exec(db, "UPDATE chunks SET refs = 7 WHERE id = %lld",
		 (long long)wb.row);
	cat_exec(db, "UPDATE chunks SET refs = 1 WHERE id = %lld",
		 (long long)wa.row);
	assert_int_equal(stash_sqlvfs_close(db), 0);

	verify(c, 0, &res);
	assert_int_equal(res.ref_mismatches, 2);
	assert_int_equal(res.problems, 2);
	assert_int_equal(res.repaired, 0);
	assert_true(has(c, "(refs 1, 3 file-map rows)")); /* live, s1, s2 */
	assert_true(has(c, "(refs 7, 1 file-map row)"));  /* s1 */
	assert_string_equal(last_line(c), "damaged: 2 problems\n");

	verify_repair(c, 0, &res);
	assert_int_equal(res.problems, 2);
	assert_int_equal(res.refs_fixed, 2);
	assert_int_equal(res.repaired, 2);
	assert_true(has(c, "repair: relocated 0 chunks, set the refs of 2"
			   " chunks"));
	assert_string_equal(last_line(c), "repaired: 2 problems\n");
	expect_clean(c, STASH_VERIFY_FULL);

	/* The counts are right: dropping both snapshots frees b's chunk. */
	{
		struct stash_store *st;
		struct stash_store_stats stats;

		assert_int_equal(
			stash_store_open(&st, c->ts.path, &c->ts.secret), 0);
		assert_int_equal(stash_snap_delete(st, "s1"), 0);
		assert_int_equal(stash_snap_delete(st, "s2"), 0);
		assert_int_equal(stash_store_stats(st, &stats), 0);
		assert_true(stats.cat.dead_chunks >= 1);
		assert_int_equal(stash_store_close(st), 0);
	}
	expect_clean(c, STASH_VERIFY_FULL);
}

/* A chunk row of a pointing a few bytes past its chunk: quick verify
 * cannot tell, --full finds it corrupt and --repair puts it back where
 * the pack trailer says. */
static void test_wrong_offset_relocated(void **state)
{
	struct ctx *c = *state;
	struct stash_verify_result res;
	struct where w = chunk_of(c, c->ino[F_A], false), after;
	char want[128];
	sqlite3 *db;

	two_snapshots(c);
	db = cat_open(c);
	cat_exec(db, "UPDATE chunks SET off = off + 5 WHERE id = %lld",
		 (long long)w.row);
	assert_int_equal(stash_sqlvfs_close(db), 0);

	verify(c, STASH_VERIFY_FULL, &res);
	assert_int_equal(res.corrupt_chunks, 1);
	assert_true(has(c, "\n  /t/a (inode "));
	assert_true(has(c, "\n  snapshot s1: /t/a (inode "));
	assert_true(has(c, "\n  snapshot s2: /t/d/a2 (inode "));

	verify_repair(c, STASH_VERIFY_FULL, &res);
	assert_int_equal(res.problems, 1);
	assert_int_equal(res.relocated, 1);
	assert_int_equal(res.repaired, 1);
	assert_int_equal(res.damaged_files, 0);
	snprintf(want, sizeof(want),
		 "; relocated to pack %016llx at offset"
		 " %llu (%u bytes)",
		 (unsigned long long)w.pack, (unsigned long long)w.off, w.len);
	assert_true(has(c, want));
	assert_string_equal(last_line(c), "repaired: 1 problem\n");
	after = chunk_of(c, c->ino[F_A], false);
	assert_int_equal(after.row, w.row);
	assert_int_equal(after.off, w.off);
	expect_clean(c, STASH_VERIFY_FULL);
}

/* Pack 1 under another name (pack 9): its trailer names pack 1, so it
 * does not count; the scan finds the chunks at the offset their rows say
 * or, for rows that are off too, where the chunk before them ends, and a
 * quick --repair points the rows there. */
static void test_renamed_pack_relocated(void **state)
{
	struct ctx *c = *state;
	struct stash_verify_result res;
	char from[256], to[256], dir[256];
	sqlite3 *db;

	two_snapshots(c);
	pack_path(c, 1, from, sizeof(from));
	pack_path(c, 9, to, sizeof(to));
	snprintf(dir, sizeof(dir), "%s/packs/09", c->ts.path);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(rename(from, to), 0);
	/* Half the rows also a few bytes off: those are found by walking
	 * from the header, chunk after chunk. */
	db = cat_open(c);
	cat_exec(db, "UPDATE chunks SET off = off + 3 WHERE pack = 1"
		     " AND id %% 2 = 0");
	assert_int_equal(stash_sqlvfs_close(db), 0);

	verify(c, 0, &res);
	assert_true(res.missing_chunks >= 4);
	assert_true(has(c, "the pack file is missing"));
	verify_repair(c, 0, &res);
	assert_int_equal(res.relocated, res.missing_chunks);
	assert_int_equal(res.repaired, res.problems);
	assert_true(has(c, "(1 pack without a readable trailer)"));
	assert_true(has(c, "; relocated to pack 0000000000000009"));
	expect_clean(c, STASH_VERIFY_FULL);
}

/*
 * Pack 1 gone. Lost: a everywhere (live, s1, s2; two names each) and b
 * as s1 holds it; not b as it is now or in s2 (pack 2), not n. A repair
 * finds no copy, marks the files (xattr with the lost ranges, live and
 * snapshot copies), and reads of lost bytes fail with EIO while the rest
 * reads. A second run (plain, then --repair) reports the same damage as
 * marked and changes nothing.
 */
static void test_missing_pack_snapshots(void **state)
{
	struct ctx *c = *state;
	struct stash_verify_result res, again;
	struct stash_store *st;
	struct stash_file *f;
	char path[256], mark[256], want[128], buf[4096];

	two_snapshots(c);
	pack_path(c, 1, path, sizeof(path));
	assert_int_equal(unlink(path), 0);

	verify(c, 0, &res);
	assert_true(res.missing_chunks >= 4);
	assert_int_equal(res.problems, res.missing_chunks);
	assert_int_equal(res.damaged_files, 4); /* a, s1:a, s1:b, s2:a */
	assert_int_equal(res.damaged_snap, 3);
	assert_int_equal(res.marked_files, 0);
	assert_int_equal(res.unmarked_files, 4);
	assert_true(has(c, "\n  /t/a (inode "));
	assert_true(has(c, "\n  /t/d/a2 (inode "));
	assert_true(has(c, "\n  snapshot s1: /t/a (inode "));
	assert_true(has(c, "\n  snapshot s1: /t/d/a2 (inode "));
	assert_true(has(c, "\n  snapshot s1: /t/d/b: 200.0 KiB in "));
	assert_true(has(c, "\n  snapshot s2: /t/a (inode "));
	assert_true(has(c, "\n  snapshot s2: /t/d/a2 (inode "));
	assert_false(has(c, "\n  /t/d/b"));
	assert_false(has(c, "snapshot s2: /t/d/b"));
	assert_false(has(c, "/t/n"));
	assert_false(has(c, "/t/sparse"));
	assert_false(has(c, "all in files marked"));

	verify_repair(c, 0, &res);
	assert_int_equal(res.relocated, 0);
	assert_int_equal(res.repaired, 0);
	assert_int_equal(res.marked_files, 4);
	assert_int_equal(res.unmarked_files, 0);
	assert_true(has(c, "marked 4 files as damaged"));
	assert_true(has(c, "; no good copy found"));
	assert_true(has(c, "\n  snapshot s1: /t/d/b: 200.0 KiB in "));
	assert_true(
		has(c, "marked as damaged now (" STASH_VERIFY_MARK_XATTR ")"));
	snprintf(want, sizeof(want),
		 "damaged: %llu problems; all in files"
		 " marked as damaged (4)\n",
		 (unsigned long long)res.problems);
	assert_string_equal(last_line(c), want);

	/* The marks, and what reads. */
	assert_int_equal(stash_store_open(&st, c->ts.path, &c->ts.secret), 0);
	get_mark(st, c->ino[F_A], mark, sizeof(mark));
	assert_string_equal(mark, "0-716799");
	get_mark(st, find(st, "s2", true, "a2"), mark, sizeof(mark));
	assert_string_equal(mark, "0-716799");
	get_mark(st, find(st, "s1", true, "b"), mark, sizeof(mark));
	assert_string_equal(mark, "0-204799");
	get_mark(st, c->ino[F_B], mark, sizeof(mark));
	assert_string_equal(mark, "");
	get_mark(st, find(st, "s2", true, "b"), mark, sizeof(mark));
	assert_string_equal(mark, "");
	assert_int_equal(stash_file_open(st, c->ino[F_A], &f), 0);
	assert_int_equal(stash_file_read(st, f, buf, sizeof(buf), 4096), -EIO);
	assert_int_equal(stash_file_release(st, f), 0);
	assert_int_equal(stash_file_open(st, c->ino[F_B], &f), 0);
	assert_int_equal(stash_file_read(st, f, buf, sizeof(buf), 4096),
			 (ssize_t)sizeof(buf));
	assert_int_equal(stash_file_release(st, f), 0);
	assert_int_equal(stash_store_close(st), 0);

	/* Again: the same damage, all marked; a repair changes nothing. */
	verify(c, 0, &again);
	assert_int_equal(again.problems, res.problems);
	assert_int_equal(again.marked_files, 4);
	assert_int_equal(again.unmarked_files, 0);
	assert_true(has(c, "marked as damaged by an earlier repair"));
	assert_string_equal(last_line(c), want);
	verify_repair(c, 0, &again);
	assert_true(has(c, "repair: nothing to change"));
	assert_int_equal(again.problems, res.problems);
	assert_int_equal(again.repaired, 0);
	assert_string_equal(last_line(c), want);

	/* Once s1 and s2 are dropped and a is deleted, nothing is lost;
	 * marks left on nothing are stale, and a repair removes them. */
	assert_int_equal(stash_store_open(&st, c->ts.path, &c->ts.secret), 0);
	assert_int_equal(stash_snap_delete(st, "s1"), 0);
	assert_int_equal(stash_snap_delete(st, "s2"), 0);
	assert_int_equal(stash_store_unlink(st, c->t, "a"), 0);
	assert_int_equal(stash_store_unlink(st, c->d, "a2"), 0);
	assert_int_equal(stash_store_close(st), 0);
	expect_clean(c, 0);
}

/* A file that was marked, then rewritten whole: its mark is stale. A
 * plain verify says so (clean), a repair removes it (clean). */
static void test_stale_mark(void **state)
{
	struct ctx *c = *state;
	struct stash_verify_result res;
	struct stash_store *st;
	char path[256], mark[64];

	pack_path(c, 1, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	verify_repair(c, 0, &res);
	assert_true(res.marked_files >= 2);
	assert_int_equal(stash_store_open(&st, c->ts.path, &c->ts.secret), 0);
	rewrite(st, c->ino[F_B], 200 * KiB);
	rewrite(st, c->ino[F_A], 700 * KiB);
	get_mark(st, c->ino[F_B], mark, sizeof(mark));
	assert_string_equal(mark, "0-204799");
	assert_int_equal(stash_store_close(st), 0);

	verify(c, 0, &res);
	assert_int_equal(res.stale_marks, 0); /* not a problem: no count */
	assert_true(has(c, "damage marks: 2 files are marked as damaged but"
			   " are not any more"));
	assert_true(has(c, "chunk refs: ok"));
	assert_string_equal(last_line(c), "clean\n");
	verify_repair(c, 0, &res);
	assert_true(has(c, "removed 2 stale marks"));
	assert_string_equal(last_line(c), "clean\n");
	assert_int_equal(stash_store_open(&st, c->ts.path, &c->ts.secret), 0);
	get_mark(st, c->ino[F_B], mark, sizeof(mark));
	assert_string_equal(mark, "");
	assert_int_equal(stash_store_close(st), 0);
	verify(c, 0, &res);
	assert_false(has(c, "damage marks"));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_clean),
		T(test_truncated_pack),
		T(test_flipped_byte),
		T(test_missing_pack_unlinked),
		T(test_wrong_refs),
		T(test_size_not_covered),
		T(test_dangling_extent),
		T(test_snapshots_clean),
		T(test_refs_repaired),
		T(test_wrong_offset_relocated),
		T(test_renamed_pack_relocated),
		T(test_missing_pack_snapshots),
		T(test_stale_mark),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
