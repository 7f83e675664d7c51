/*
 * testutil.h - small helpers shared by the unit tests: a scratch folder
 * under /tmp, removed with everything in it at the end; a scratch store
 * in such a folder, keyed with a random key; writing a file through the
 * file API in one call; a seeded pseudo-random generator; the rows an
 * FTS5 MATCH selects.
 *
 * Everything is static inline so that a test that uses none of it pays
 * nothing; the store helpers fail the running test (cmocka) on an error,
 * except those made for setup functions, which return -1.
 */
#ifndef STASH_TESTUTIL_H
#define STASH_TESTUTIL_H

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "crypto.h"
#include "store.h"

static inline int testutil_rm_one(const char *path, const struct stat *st,
				  int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove path and everything below it (symlinks are not followed). */
static inline void test_rmtree(const char *path)
{
	nftw(path, testutil_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* xorshift64*: the next pseudo-random number from the state *s (not 0),
 * reproducible test data. */
static inline uint64_t test_rng_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* A scratch store: its folder, its path and its secret. */
struct test_store {
	char root[64];			 /* mkdtemp directory */
	char path[128];			 /* root/store */
	char hex[2 * STASH_KEY_LEN + 1]; /* the key file's content */
	struct stash_secret secret;	 /* hex, as the store's secret */
};

/*
 * Make the folder /tmp/<name>.XXXXXX and a store in it (ts->path) with cfg,
 * or the defaults if cfg is NULL, keyed with a new random key. 0, or -1
 * with nothing left behind.
 */
static inline int test_store_make(struct test_store *ts, const char *name,
				  struct stash_config *cfg)
{
	struct stash_config dflt;
	uint8_t key[STASH_KEY_LEN];

	snprintf(ts->root, sizeof(ts->root), "/tmp/%s.XXXXXX", name);
	if (!mkdtemp(ts->root))
		return -1;
	if (stash_crypto_random(key, sizeof(key)) < 0) {
		test_rmtree(ts->root);
		return -1;
	}
	stash_hex(key, sizeof(key), ts->hex);
	ts->secret = (struct stash_secret){ ts->hex, strlen(ts->hex) };
	snprintf(ts->path, sizeof(ts->path), "%s/store", ts->root);
	if (!cfg) {
		stash_config_defaults(&dflt);
		cfg = &dflt;
	}
	if (stash_store_init(ts->path, cfg, &ts->secret) != 0) {
		test_rmtree(ts->root);
		return -1;
	}
	return 0;
}

/*
 * test_store_make, then open the store into *st and make the empty
 * directory "t" in its root (mode 0755, owner 0:0), whose inode goes into
 * *dir. 0, or -1 with nothing left behind and *st NULL.
 */
static inline int test_store_make_open(struct test_store *ts, const char *name,
				       struct stash_config *cfg,
				       struct stash_store **st, uint64_t *dir)
{
	struct stash_attr a;

	*st = NULL;
	if (test_store_make(ts, name, cfg) != 0)
		return -1;
	if (stash_store_open(st, ts->path, &ts->secret) != 0 ||
	    stash_store_mkdir(*st, STASH_ROOT_INO, "t", 0755, 0, 0, &a)) {
		stash_store_close(*st);
		*st = NULL;
		test_rmtree(ts->root);
		return -1;
	}
	*dir = a.ino;
	return 0;
}

/* Close st (NULL: not open) and remove the store's folder. */
static inline void test_store_remove(struct test_store *ts,
				     struct stash_store *st)
{
	if (st)
		stash_store_close(st);
	test_rmtree(ts->root);
}

/* Close *st, which must succeed, and open the store again into *st. */
static inline void test_store_reopen(const struct test_store *ts,
				     struct stash_store **st)
{
	assert_int_equal(stash_store_close(*st), 0);
	*st = NULL;
	assert_int_equal(stash_store_open(st, ts->path, &ts->secret), 0);
}

/* Write buf[0..len) at off in ino through a handle of its own, release. */
static inline void test_file_put(struct stash_store *st, uint64_t ino,
				 const void *buf, size_t len, uint64_t off)
{
	struct stash_file *f;

	assert_int_equal(stash_file_open(st, ino, &f), 0);
	assert_int_equal(stash_file_write(st, f, buf, len, off), (ssize_t)len);
	assert_int_equal(stash_file_release(st, f), 0);
}

/* The rowids that MATCH match selects in the FTS5 table table of db, in
 * order, as "1,3" in out (cap bytes). */
static inline void test_fts_rows(sqlite3 *db, const char *table,
				 const char *match, char *out, size_t cap)
{
	sqlite3_stmt *st;
	char sql[128];
	size_t len = 0;
	int rc;

	out[0] = '\0';
	snprintf(sql, sizeof(sql),
		 "SELECT rowid FROM %s WHERE %s MATCH ?1 ORDER BY rowid", table,
		 table);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, match, -1, SQLITE_TRANSIENT);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int w = snprintf(out + len, cap - len, "%s%lld", len ? "," : "",
				 (long long)sqlite3_column_int64(st, 0));

		assert_true(w > 0 && (size_t)w < cap - len);
		len += (size_t)w;
	}
	if (rc != SQLITE_DONE)
		fail_msg("MATCH '%s': %s", match, sqlite3_errmsg(db));
	sqlite3_finalize(st);
}

#endif
