/*
 * test_store.c - unit tests for the store API end to end, without FUSE
 * (store/store.c and store/file.c over every other store module): init,
 * open and close, the store lock and the secret; namespace operations and
 * their link counts; xattrs; file data through open/write/read/flush/
 * fsync/release, truncation and holes, persistence across a close and
 * reopen, deduplication, unlinked open files (also across a crash), more
 * dirty data than a file keeps in memory, several threads at once; and a
 * seeded randomized differential test of file data against an in-memory
 * model.
 *
 * Each test works in its own mkdtemp directory under /tmp, removed after.
 * The differential tests print their seed; rerun one with
 * STASH_TEST_SEED=<seed> (and STASH_TEST_OPS=<n> to change its length,
 * STASH_TEST_FILTER=<test name> to run only that test).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "codec.h"
#include "crypto.h"
#include "store.h"
#include "testutil.h"

/*
 * Under AddressSanitizer an allocation too large to make is an error that
 * stops the program; the store must see it fail (NULL) as it would
 * without the sanitizer, so test_huge_size tests the same path in both.
 */
const char *__asan_default_options(void);
__attribute__((used)) const char *__asan_default_options(void)
{
	return "allocator_may_return_null=1";
}

#define MiB (1024u * 1024u)
#define KiB 1024u

struct ctx {
	struct test_store ts;	/* the scratch store's folder and secret */
	struct stash_store *st; /* open store, closed by teardown */
	uint64_t dir;		/* an empty directory to work in */
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	if (test_store_make_open(&c->ts, "test_store", NULL, &c->st, &c->dir)) {
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	test_store_remove(&c->ts, c->st);
	free(c);
	return 0;
}

static void store_reopen(struct ctx *c)
{
	test_store_reopen(&c->ts, &c->st);
}

/* ---- a seeded PRNG (xorshift64*, test_rng_next) ---- */

/* Uniform in [0, n); n > 0. */
static uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return test_rng_next(s) % n;
}

static void rng_fill(uint64_t *s, uint8_t *buf, size_t len)
{
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		uint64_t v = test_rng_next(s);

		memcpy(buf + i, &v, 8);
	}
	if (i < len) {
		uint64_t v = test_rng_next(s);

		memcpy(buf + i, &v, len - i);
	}
}

static uint8_t *random_bytes(uint64_t seed, size_t len)
{
	uint8_t *buf = malloc(len ? len : 1);

	assert_non_null(buf);
	seed |= 1;
	rng_fill(&seed, buf, len);
	return buf;
}

/* ---- helpers ---- */

static uint64_t mkfile(struct ctx *c, uint64_t parent, const char *name)
{
	struct stash_attr a;

	assert_int_equal(stash_store_mknod(c->st, parent, name, S_IFREG | 0644,
					   0, 1000, 1000, &a),
			 0);
	assert_true(S_ISREG(a.mode));
	return a.ino;
}

static uint64_t mkdir_in(struct ctx *c, uint64_t parent, const char *name)
{
	struct stash_attr a;

	assert_int_equal(
		stash_store_mkdir(c->st, parent, name, 0755, 1000, 1000, &a),
		0);
	assert_true(S_ISDIR(a.mode));
	return a.ino;
}

static struct stash_attr attr_of(struct ctx *c, uint64_t ino)
{
	struct stash_attr a;

	assert_int_equal(stash_store_getattr(c->st, ino, &a), 0);
	return a;
}

static uint32_t nlink_of(struct ctx *c, uint64_t ino)
{
	return attr_of(c, ino).nlink;
}

static uint64_t ino_of(struct ctx *c, uint64_t parent, const char *name)
{
	struct stash_attr a;

	assert_int_equal(stash_store_lookup(c->st, parent, name, &a), 0);
	return a.ino;
}

static void expect_gone(struct ctx *c, uint64_t parent, const char *name)
{
	struct stash_attr a;

	assert_int_equal(stash_store_lookup(c->st, parent, name, &a), -ENOENT);
}

static void write_all(struct ctx *c, struct stash_file *f, const void *buf,
		      size_t len, uint64_t off)
{
	assert_int_equal(stash_file_write(c->st, f, buf, len, off),
			 (ssize_t)len);
}

/* Read [off, off + len) and compare with want[0..wantlen). */
static void expect_read(struct ctx *c, struct stash_file *f, uint64_t off,
			size_t len, const uint8_t *want, size_t wantlen)
{
	uint8_t *buf = malloc(len ? len : 1);

	assert_non_null(buf);
	assert_int_equal(stash_file_read(c->st, f, buf, len, off),
			 (ssize_t)wantlen);
	if (wantlen)
		assert_memory_equal(buf, want, wantlen);
	free(buf);
}

/* The whole file ino must be data[0..len), read in pieces of step. */
static void expect_file(struct ctx *c, uint64_t ino, const uint8_t *data,
			size_t len, size_t step)
{
	struct stash_file *f;
	uint8_t *buf = malloc(len + 1);

	assert_non_null(buf);
	assert_int_equal(attr_of(c, ino).size, len);
	assert_int_equal(stash_file_open(c->st, ino, &f), 0);
	for (size_t off = 0; off < len; off += step) {
		size_t n = STASH_MIN(step, len - off);

		assert_int_equal(
			stash_file_read(c->st, f, buf + off, step, off),
			(ssize_t)n);
	}
	if (len)
		assert_memory_equal(buf, data, len);
	assert_int_equal(stash_file_read(c->st, f, buf, 1, len), 0);
	assert_int_equal(stash_file_release(c->st, f), 0);
	free(buf);
}

struct names {
	char v[64][64];
	uint64_t ino[64];
	size_t n;
};

static int collect_name(void *arg, const char *name, const struct stash_attr *a,
			uint64_t next)
{
	struct names *l = arg;

	(void)next;
	if (l->n < STASH_ARRAY_SIZE(l->v)) {
		snprintf(l->v[l->n], sizeof(l->v[0]), "%s", name);
		l->ino[l->n] = a->ino;
	}
	l->n++;
	return 0;
}

static struct names *list_dir(struct ctx *c, uint64_t dir)
{
	struct names *l = calloc(1, sizeof(*l));

	assert_non_null(l);
	assert_int_equal(stash_store_readdir(c->st, dir, 0, collect_name, l),
			 0);
	return l;
}

static bool has_name(const struct names *l, const char *name)
{
	for (size_t i = 0; i < l->n && i < STASH_ARRAY_SIZE(l->v); i++)
		if (!strcmp(l->v[i], name))
			return true;
	return false;
}

/* The text of STORE/stashfs.json (malloc'd); its path into path. */
static char *slurp(char *path, size_t size, const char *store)
{
	struct stat sb;
	char *text;
	int fd;

	snprintf(path, size, "%s/stashfs.json", store);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	text = malloc((size_t)sb.st_size + 1);
	assert_non_null(text);
	assert_int_equal(stash_pread_all(fd, text, (size_t)sb.st_size, 0), 0);
	text[sb.st_size] = '\0';
	close(fd);
	return text;
}

static void spill_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_TRUNC);

	assert_true(fd >= 0);
	assert_int_equal(stash_pwrite_all(fd, text, strlen(text), 0), 0);
	close(fd);
}

/* ---- lifecycle ---- */

static void test_init_open(void **state)
{
	struct ctx *c = *state;
	struct stash_store *st = NULL;
	struct stash_config cfg;
	struct stash_secret s;
	struct names *l;
	char other[160];
	uint8_t key[STASH_KEY_LEN];

	/* the areas exist in the root; root links: 2 + 3 areas + "t" */
	l = list_dir(c, STASH_ROOT_INO);
	for (int i = 0; stash_areas[i]; i++) {
		struct stash_attr a;

		assert_true(has_name(l, stash_areas[i]));
		assert_int_equal(stash_store_lookup(c->st, STASH_ROOT_INO,
						    stash_areas[i], &a),
				 0);
		assert_true(S_ISDIR(a.mode));
	}
	assert_int_equal(l->n, 4);
	assert_int_equal(nlink_of(c, STASH_ROOT_INO), 2 + 4);
	free(l);
	assert_int_equal(stash_store_check(c->st), 0);

	/* one process at a time */
	assert_int_equal(stash_store_open(&st, c->ts.path, &c->ts.secret),
			 -EBUSY);
	assert_null(st);
	/* a store is not made twice */
	stash_config_defaults(&cfg);
	assert_int_equal(stash_store_init(c->ts.path, &cfg, &c->ts.secret),
			 -EEXIST);

	store_reopen(c);
	assert_int_equal(stash_store_close(c->st), 0);
	c->st = NULL;

	/* the wrong key: -EACCES, and the lock is let go */
	assert_int_equal(stash_crypto_random(key, sizeof(key)), 0);
	stash_hex(key, sizeof(key), other);
	s = (struct stash_secret){ other, strlen(other) };
	assert_int_equal(stash_store_open(&st, c->ts.path, &s), -EACCES);
	assert_null(st);
	s = (struct stash_secret){ "garbage", 7 };
	assert_int_equal(stash_store_open(&st, c->ts.path, &s), -EACCES);
	/* the same key as raw bytes opens it */
	assert_int_equal(stash_unhex(c->ts.hex, key, sizeof(key)), 0);
	s = (struct stash_secret){ key, sizeof(key) };
	assert_int_equal(stash_store_open(&c->st, c->ts.path, &s), 0);
	assert_int_equal(stash_store_check(c->st), 0);

	/* no store here */
	snprintf(other, sizeof(other), "%s/nostore", c->ts.root);
	assert_int_equal(mkdir(other, 0700), 0);
	assert_int_equal(stash_store_open(&st, other, &c->ts.secret), -ENOENT);
	assert_null(st);
	/* init refuses a folder with something in it */
	{
		char junk[200];
		int fd;

		snprintf(junk, sizeof(junk), "%s/junk", other);
		fd = open(junk, O_WRONLY | O_CREAT, 0600);
		assert_true(fd >= 0);
		close(fd);
		stash_config_defaults(&cfg);
		assert_int_equal(stash_store_init(other, &cfg, &c->ts.secret),
				 -ENOTEMPTY);
	}
	assert_int_equal(stash_store_close(NULL), 0);

	/* a damaged store is refused, and opens again once repaired */
	assert_int_equal(stash_store_close(c->st), 0);
	c->st = NULL;
	{
		char db[200], aside[200];

		snprintf(db, sizeof(db), "%s/catalog.db", c->ts.path);
		snprintf(aside, sizeof(aside), "%s/catalog.aside", c->ts.root);
		assert_int_equal(rename(db, aside), 0);
		assert_int_equal(
			stash_store_open(&st, c->ts.path, &c->ts.secret),
			-EBADMSG);
		assert_null(st);
		assert_int_equal(rename(aside, db), 0);
	}
	{
		char json[200];
		char *text = slurp(json, sizeof(json), c->ts.path);
		cJSON *root = cJSON_Parse(text), *chunker;
		char *changed;

		assert_non_null(root);
		chunker = cJSON_GetObjectItemCaseSensitive(root, "chunker");
		cJSON_ReplaceItemInObjectCaseSensitive(
			chunker, "avg", cJSON_CreateNumber(32768));
		changed = cJSON_Print(root);
		cJSON_Delete(root);
		spill_text(json, changed);
		/* changed without the key: refused */
		assert_int_equal(
			stash_store_open(&st, c->ts.path, &c->ts.secret),
			-EBADMSG);
		assert_null(st);
		spill_text(json, text);
		free(changed);
		free(text);
	}
	assert_int_equal(stash_store_open(&c->st, c->ts.path, &c->ts.secret),
			 0);
	assert_int_equal(stash_store_check(c->st), 0);
}

/* A store unlocked by a passphrase (small scrypt cost for speed). */
static void test_passphrase_store(void **state)
{
	struct ctx *c = *state;
	struct stash_store *st = NULL;
	struct stash_config cfg;
	struct stash_secret pw = { "hunter2", 7 }, bad = { "hunter3", 7 };
	char path[160];

	snprintf(path, sizeof(path), "%s/pw", c->ts.root);
	stash_config_defaults(&cfg);
	cfg.kdf = STASH_KDF_SCRYPT;
	cfg.scrypt_n = 1024;
	assert_int_equal(stash_store_init(path, &cfg, &pw), 0);
	assert_int_equal(stash_store_open(&st, path, &bad), -EACCES);
	assert_int_equal(stash_store_open(&st, path, &c->ts.secret), -EACCES);
	assert_int_equal(stash_store_open(&st, path, &pw), 0);
	assert_int_equal(stash_store_check(st), 0);
	assert_int_equal(stash_store_close(st), 0);
}

/* ---- namespace ---- */

static void test_namespace(void **state)
{
	struct ctx *c = *state;
	struct stash_attr a, b;
	struct names *l;
	uint64_t f, d, sub, fifo, dev, ln;
	char buf[64], longname[STASH_NAME_MAX + 2];

	f = mkfile(c, c->dir, "file");
	a = attr_of(c, f);
	assert_int_equal(a.mode, S_IFREG | 0644);
	assert_int_equal(a.nlink, 1);
	assert_int_equal(a.uid, 1000);
	assert_int_equal(a.size, 0);
	assert_true(a.mtime > 0);
	assert_int_equal(ino_of(c, c->dir, "file"), f);
	/* a taken name */
	assert_int_equal(stash_store_mknod(c->st, c->dir, "file",
					   S_IFREG | 0600, 0, 0, 0, &b),
			 -EEXIST);
	/* mode without a type is a regular file */
	assert_int_equal(
		stash_store_mknod(c->st, c->dir, "plain", 0600, 0, 0, 0, &b),
		0);
	assert_true(S_ISREG(b.mode));
	assert_int_equal(stash_store_mknod(c->st, c->dir, "fifo",
					   S_IFIFO | 0600, 0, 0, 0, &b),
			 0);
	fifo = b.ino;
	assert_true(S_ISFIFO(attr_of(c, fifo).mode));
	assert_int_equal(stash_store_mknod(c->st, c->dir, "dev", S_IFCHR | 0600,
					   0x0103, 0, 0, &b),
			 0);
	dev = b.ino;
	assert_int_equal(attr_of(c, dev).rdev, 0x0103);
	/* mknod makes no directories or symlinks */
	assert_int_equal(stash_store_mknod(c->st, c->dir, "x", S_IFDIR | 0755,
					   0, 0, 0, &b),
			 -EINVAL);

	/* directories and their link counts */
	assert_int_equal(nlink_of(c, c->dir), 2);
	d = mkdir_in(c, c->dir, "d");
	assert_int_equal(nlink_of(c, d), 2);
	assert_int_equal(nlink_of(c, c->dir), 3);
	sub = mkdir_in(c, d, "sub");
	assert_int_equal(nlink_of(c, d), 3);
	assert_int_equal(nlink_of(c, c->dir), 3);
	assert_int_equal(stash_store_mkdir(c->st, c->dir, "d", 0755, 0, 0, &b),
			 -EEXIST);
	/* a file is not a directory */
	assert_int_equal(
		stash_store_mknod(c->st, f, "in", S_IFREG | 0644, 0, 0, 0, &b),
		-ENOTDIR);
	assert_int_equal(stash_store_mkdir(c->st, f, "in", 0755, 0, 0, &b),
			 -ENOTDIR);

	/* bad names */
	assert_int_equal(stash_store_mknod(c->st, c->dir, "", S_IFREG | 0644, 0,
					   0, 0, &b),
			 -EINVAL);
	assert_int_equal(stash_store_mknod(c->st, c->dir, "a/b", S_IFREG | 0644,
					   0, 0, 0, &b),
			 -EINVAL);
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(stash_store_mknod(c->st, c->dir, longname,
					   S_IFREG | 0644, 0, 0, 0, &b),
			 -ENAMETOOLONG);
	assert_int_equal(stash_store_lookup(c->st, c->dir, longname, &b),
			 -ENAMETOOLONG);
	longname[STASH_NAME_MAX] = '\0'; /* 255 bytes: fine */
	mkfile(c, c->dir, longname);
	assert_int_equal(stash_store_unlink(c->st, c->dir, longname), 0);
	expect_gone(c, c->dir, "nothing");

	/* symlinks */
	assert_int_equal(stash_store_symlink(c->st, c->dir, "ln",
					     "../some/where", 1000, 1000, &b),
			 0);
	ln = b.ino;
	a = attr_of(c, ln);
	assert_true(S_ISLNK(a.mode));
	assert_int_equal(a.size, strlen("../some/where"));
	assert_int_equal(stash_store_readlink(c->st, ln, buf, sizeof(buf)),
			 (ssize_t)strlen("../some/where"));
	assert_memory_equal(buf, "../some/where", strlen("../some/where"));
	assert_int_equal(
		stash_store_symlink(c->st, c->dir, "empty", "", 0, 0, &b),
		-ENOENT);
	assert_int_equal(stash_store_readlink(c->st, f, buf, sizeof(buf)),
			 -EINVAL);

	/* hard links */
	assert_int_equal(stash_store_link(c->st, f, d, "again", &b), 0);
	assert_int_equal(b.ino, f);
	assert_int_equal(b.nlink, 2);
	assert_int_equal(nlink_of(c, f), 2);
	assert_int_equal(ino_of(c, d, "again"), f);
	assert_int_equal(stash_store_link(c->st, f, d, "again", &b), -EEXIST);
	assert_int_equal(stash_store_link(c->st, d, c->dir, "dlink", &b),
			 -EPERM);
	assert_int_equal(stash_store_link(c->st, f, f, "x", &b), -ENOTDIR);
	assert_int_equal(stash_store_link(c->st, ln, d, "ln2", &b), 0);
	assert_int_equal(nlink_of(c, ln), 2);

	/* unlink */
	assert_int_equal(stash_store_unlink(c->st, c->dir, "file"), 0);
	expect_gone(c, c->dir, "file");
	assert_int_equal(nlink_of(c, f), 1);
	assert_int_equal(ino_of(c, d, "again"), f);
	assert_int_equal(stash_store_unlink(c->st, c->dir, "file"), -ENOENT);
	assert_int_equal(stash_store_unlink(c->st, c->dir, "d"), -EISDIR);
	assert_int_equal(stash_store_unlink(c->st, d, "again"), 0);
	assert_int_equal(stash_store_getattr(c->st, f, &b), -ENOENT);
	assert_int_equal(stash_store_unlink(c->st, c->dir, "fifo"), 0);
	assert_int_equal(stash_store_getattr(c->st, fifo, &b), -ENOENT);

	/* rmdir */
	assert_int_equal(stash_store_rmdir(c->st, c->dir, "d"), -ENOTEMPTY);
	assert_int_equal(stash_store_rmdir(c->st, c->dir, "dev"), -ENOTDIR);
	assert_int_equal(stash_store_rmdir(c->st, c->dir, "."), -EINVAL);
	assert_int_equal(stash_store_rmdir(c->st, c->dir, ".."), -ENOTEMPTY);
	assert_int_equal(stash_store_rmdir(c->st, c->dir, "nope"), -ENOENT);
	assert_int_equal(stash_store_rmdir(c->st, d, "sub"), 0);
	assert_int_equal(stash_store_getattr(c->st, sub, &b), -ENOENT);
	assert_int_equal(nlink_of(c, d), 2);
	assert_int_equal(stash_store_unlink(c->st, d, "ln2"), 0);
	assert_int_equal(stash_store_rmdir(c->st, c->dir, "d"), 0);
	assert_int_equal(nlink_of(c, c->dir), 2);
	/* nothing can be made in a removed directory */
	assert_int_equal(stash_store_mknod(c->st, d, "late", S_IFREG | 0644, 0,
					   0, 0, &b),
			 -ENOENT);

	/* what is left, listed and after a reopen */
	store_reopen(c);
	l = list_dir(c, c->dir);
	assert_int_equal(l->n, 3);
	assert_true(has_name(l, "plain"));
	assert_true(has_name(l, "dev"));
	assert_true(has_name(l, "ln"));
	assert_true(has_name(l, "t") == false);
	free(l);
	assert_int_equal(stash_store_readdir(c->st, ln, 0, collect_name, NULL),
			 -ENOTDIR);
	assert_int_equal(nlink_of(c, ln), 1);
	assert_int_equal(stash_store_check(c->st), 0);
}

static void test_setattr_xattr(void **state)
{
	struct ctx *c = *state;
	struct stash_attr in = { 0 }, out;
	uint64_t f = mkfile(c, c->dir, "f"), d = mkdir_in(c, c->dir, "d");
	char buf[64];
	struct statvfs sv;
	char *json = NULL;

	in.mode = 0600;
	in.uid = 7;
	in.gid = 8;
	in.atime = 111;
	in.mtime = 222;
	assert_int_equal(stash_store_setattr(c->st, f, &in,
					     STASH_SET_MODE | STASH_SET_UID |
						     STASH_SET_GID |
						     STASH_SET_ATIME |
						     STASH_SET_MTIME,
					     &out),
			 0);
	assert_int_equal(out.mode, S_IFREG | 0600);
	assert_int_equal(out.uid, 7);
	assert_int_equal(out.gid, 8);
	assert_int_equal(out.atime, 111);
	assert_int_equal(out.mtime, 222);
	store_reopen(c);
	out = attr_of(c, f);
	assert_int_equal(out.mode, S_IFREG | 0600);
	assert_int_equal(out.mtime, 222);
	/* sizes of directories do not change */
	in.size = 10;
	assert_int_equal(
		stash_store_setattr(c->st, d, &in, STASH_SET_SIZE, &out),
		-EISDIR);
	/* the type bits cannot be changed */
	in.mode = S_IFDIR | 0755;
	assert_int_equal(
		stash_store_setattr(c->st, f, &in, STASH_SET_MODE, &out), 0);
	assert_true(S_ISREG(out.mode));

	/* xattrs */
	assert_int_equal(
		stash_store_setxattr(c->st, f, "user.k", "v", 1, XATTR_CREATE),
		0);
	assert_int_equal(
		stash_store_setxattr(c->st, f, "user.k", "w", 1, XATTR_CREATE),
		-EEXIST);
	assert_int_equal(
		stash_store_setxattr(c->st, f, "user.n", "w", 1, XATTR_REPLACE),
		-ENODATA);
	assert_int_equal(
		stash_store_getxattr(c->st, f, "user.k", buf, sizeof(buf)), 1);
	assert_int_equal(stash_store_getxattr(c->st, f, "user.k", buf, 0), 1);
	assert_int_equal(
		stash_store_getxattr(c->st, f, "user.n", buf, sizeof(buf)),
		-ENODATA);
	assert_int_equal(
		stash_store_setxattr(c->st, d, "user.dir", "xyz", 3, 0), 0);
	assert_int_equal(stash_store_getxattr(c->st, d, "user.dir", buf, 2),
			 -ERANGE);
	assert_int_equal(stash_store_listxattr(c->st, f, buf, sizeof(buf)),
			 (ssize_t)sizeof("user.k"));
	assert_string_equal(buf, "user.k");
	/* POSIX ACLs are refused so tools fall back to the mode bits */
	assert_int_equal(stash_store_setxattr(c->st, f,
					      "system.posix_acl_access", "x", 1,
					      0),
			 -EOPNOTSUPP);
	assert_int_equal(stash_store_removexattr(c->st, f, "user.k"), 0);
	assert_int_equal(stash_store_removexattr(c->st, f, "user.k"), -ENODATA);
	assert_int_equal(stash_store_listxattr(c->st, f, buf, sizeof(buf)), 0);

	assert_int_equal(stash_store_statfs(c->st, &sv), 0);
	assert_int_equal(sv.f_namemax, STASH_NAME_MAX);
	assert_true(sv.f_blocks > 0);
	assert_int_equal(stash_store_stats_json(c->st, &json), 0);
	{
		cJSON *root = cJSON_Parse(json);

		assert_non_null(root);
		assert_true(cJSON_IsNumber(
			cJSON_GetObjectItemCaseSensitive(root, "chunks")));
		cJSON_Delete(root);
	}
	free(json);
}

/* ---- rename ---- */

static void test_rename(void **state)
{
	struct ctx *c = *state;
	struct stash_attr b;
	uint64_t a, bdir, f1, f2, f3, d1, d2, d3, inner;
	struct stash_file *fh;
	const uint8_t data[] = "still here";

	a = mkdir_in(c, c->dir, "a");
	bdir = mkdir_in(c, c->dir, "b");
	f1 = mkfile(c, a, "f1");
	f2 = mkfile(c, a, "f2");
	f3 = mkfile(c, bdir, "f3");
	d1 = mkdir_in(c, a, "d1");
	d2 = mkdir_in(c, bdir, "d2");
	d3 = mkdir_in(c, bdir, "d3");
	inner = mkdir_in(c, d1, "inner");
	mkfile(c, d3, "content");
	assert_int_equal(nlink_of(c, a), 3);
	assert_int_equal(nlink_of(c, bdir), 4);

	/* plain rename in one directory */
	assert_int_equal(stash_store_rename(c->st, a, "f1", a, "g1", 0), 0);
	expect_gone(c, a, "f1");
	assert_int_equal(ino_of(c, a, "g1"), f1);
	/* a missing source */
	assert_int_equal(stash_store_rename(c->st, a, "f1", a, "h", 0),
			 -ENOENT);
	/* onto itself: nothing happens */
	assert_int_equal(stash_store_rename(c->st, a, "g1", a, "g1", 0), 0);
	assert_int_equal(ino_of(c, a, "g1"), f1);

	/* over an existing file: the old one goes */
	assert_int_equal(stash_store_rename(c->st, a, "g1", a, "f2", 0), 0);
	assert_int_equal(ino_of(c, a, "f2"), f1);
	expect_gone(c, a, "g1");
	assert_int_equal(stash_store_getattr(c->st, f2, &b), -ENOENT);

	/* NOREPLACE */
	assert_int_equal(stash_store_rename(c->st, bdir, "f3", a, "f2",
					    STASH_RENAME_NOREPLACE),
			 -EEXIST);
	assert_int_equal(ino_of(c, bdir, "f3"), f3);
	assert_int_equal(stash_store_rename(c->st, bdir, "f3", a, "f3",
					    STASH_RENAME_NOREPLACE),
			 0);
	assert_int_equal(ino_of(c, a, "f3"), f3);
	expect_gone(c, bdir, "f3");
	assert_int_equal(stash_store_rename(c->st, a, "f3", a, "x",
					    STASH_RENAME_NOREPLACE |
						    STASH_RENAME_EXCHANGE),
			 -EINVAL);

	/* a directory across parents: link counts follow */
	assert_int_equal(stash_store_rename(c->st, a, "d1", bdir, "d1", 0), 0);
	assert_int_equal(nlink_of(c, a), 2);
	assert_int_equal(nlink_of(c, bdir), 5);
	assert_int_equal(nlink_of(c, d1), 3);
	assert_int_equal(ino_of(c, bdir, "d1"), d1);
	assert_int_equal(ino_of(c, d1, "inner"), inner);

	/* a directory over an empty one (other parent): the empty one goes */
	assert_int_equal(stash_store_rename(c->st, bdir, "d1", a, "e", 0), 0);
	assert_int_equal(nlink_of(c, a), 3);
	assert_int_equal(nlink_of(c, bdir), 4);
	mkdir_in(c, c->dir, "empty");
	assert_int_equal(nlink_of(c, c->dir), 5);
	{
		uint64_t empty = ino_of(c, c->dir, "empty");

		assert_int_equal(
			stash_store_rename(c->st, a, "e", c->dir, "empty", 0),
			0);
		assert_int_equal(stash_store_getattr(c->st, empty, &b),
				 -ENOENT);
	}
	assert_int_equal(ino_of(c, c->dir, "empty"), d1);
	assert_int_equal(nlink_of(c, c->dir), 5);
	assert_int_equal(nlink_of(c, a), 2);
	/* and over an empty one in the same parent */
	assert_int_equal(stash_store_rename(c->st, bdir, "d2", bdir, "d4", 0),
			 0);
	mkdir_in(c, bdir, "d5");
	assert_int_equal(nlink_of(c, bdir), 5);
	assert_int_equal(stash_store_rename(c->st, bdir, "d4", bdir, "d5", 0),
			 0);
	assert_int_equal(nlink_of(c, bdir), 4);
	assert_int_equal(ino_of(c, bdir, "d5"), d2);

	/* over a non-empty directory; type mismatches */
	assert_int_equal(stash_store_rename(c->st, bdir, "d5", bdir, "d3", 0),
			 -ENOTEMPTY);
	assert_int_equal(stash_store_rename(c->st, a, "f2", bdir, "d3", 0),
			 -EISDIR);
	assert_int_equal(stash_store_rename(c->st, bdir, "d5", a, "f2", 0),
			 -ENOTDIR);
	assert_int_equal(ino_of(c, bdir, "d5"), d2);
	assert_int_equal(ino_of(c, a, "f2"), f1);
	assert_int_equal(nlink_of(c, bdir), 4);

	/* a directory below itself */
	assert_int_equal(stash_store_rename(c->st, c->dir, "empty", d1, "x", 0),
			 -EINVAL);
	assert_int_equal(
		stash_store_rename(c->st, c->dir, "empty", inner, "x", 0),
		-EINVAL);
	assert_int_equal(
		stash_store_rename(c->st, STASH_ROOT_INO, "t", inner, "x", 0),
		-EINVAL);
	assert_int_equal(ino_of(c, c->dir, "empty"), d1);
	/* into a file */
	assert_int_equal(stash_store_rename(c->st, a, "f3", f1, "x", 0),
			 -ENOTDIR);

	/* EXCHANGE: a file and a directory in different parents */
	assert_int_equal(stash_store_rename(c->st, a, "f3", bdir, "x",
					    STASH_RENAME_EXCHANGE),
			 -ENOENT);
	assert_int_equal(nlink_of(c, a), 2);
	assert_int_equal(nlink_of(c, bdir), 4);
	assert_int_equal(stash_store_rename(c->st, a, "f3", bdir, "d3",
					    STASH_RENAME_EXCHANGE),
			 0);
	assert_int_equal(ino_of(c, a, "f3"), d3);
	assert_int_equal(ino_of(c, bdir, "d3"), f3);
	assert_int_equal(nlink_of(c, a), 3);
	assert_int_equal(nlink_of(c, bdir), 3);
	/* two directories: counts stay */
	assert_int_equal(stash_store_rename(c->st, a, "f3", bdir, "d5",
					    STASH_RENAME_EXCHANGE),
			 0);
	assert_int_equal(ino_of(c, a, "f3"), d2);
	assert_int_equal(ino_of(c, bdir, "d5"), d3);
	assert_int_equal(nlink_of(c, a), 3);
	assert_int_equal(nlink_of(c, bdir), 3);
	/* exchanging a directory with one of its own descendants */
	assert_int_equal(stash_store_rename(c->st, c->dir, "empty", d1, "inner",
					    STASH_RENAME_EXCHANGE),
			 -EINVAL);
	/* in one directory */
	assert_int_equal(stash_store_rename(c->st, a, "f2", a, "f3",
					    STASH_RENAME_EXCHANGE),
			 0);
	assert_int_equal(ino_of(c, a, "f2"), d2);
	assert_int_equal(ino_of(c, a, "f3"), f1);
	assert_int_equal(nlink_of(c, a), 3);

	/* two links to one inode: rename does nothing, both stay */
	assert_int_equal(stash_store_link(c->st, f1, a, "hard", &b), 0);
	assert_int_equal(stash_store_rename(c->st, a, "f3", a, "hard", 0), 0);
	assert_int_equal(ino_of(c, a, "f3"), f1);
	assert_int_equal(ino_of(c, a, "hard"), f1);
	assert_int_equal(nlink_of(c, f1), 2);
	/* over one of two links of another inode: that inode stays */
	f2 = mkfile(c, a, "other");
	assert_int_equal(stash_store_rename(c->st, a, "other", a, "hard", 0),
			 0);
	assert_int_equal(ino_of(c, a, "hard"), f2);
	assert_int_equal(nlink_of(c, f1), 1);
	assert_int_equal(ino_of(c, a, "f3"), f1);

	/* over an open file: its data stays readable until release */
	assert_int_equal(stash_file_open(c->st, f1, &fh), 0);
	write_all(c, fh, data, sizeof(data), 0);
	assert_int_equal(stash_store_rename(c->st, a, "hard", a, "f3", 0), 0);
	assert_int_equal(ino_of(c, a, "f3"), f2);
	assert_int_equal(stash_store_getattr(c->st, f1, &b), 0);
	assert_int_equal(b.nlink, 0);
	expect_read(c, fh, 0, 100, data, sizeof(data));
	assert_int_equal(stash_file_release(c->st, fh), 0);
	assert_int_equal(stash_store_getattr(c->st, f1, &b), -ENOENT);

	store_reopen(c);
	assert_int_equal(nlink_of(c, a), 3);
	assert_int_equal(nlink_of(c, bdir), 3);
	assert_int_equal(nlink_of(c, c->dir), 5);
	assert_int_equal(ino_of(c, a, "f3"), f2);
	assert_int_equal(ino_of(c, d1, "inner"), inner);
	assert_int_equal(stash_store_check(c->st), 0);
}

/* ---- file data ---- */

static void test_sequential(void **state)
{
	struct ctx *c = *state;
	const size_t len = 9 * MiB + 12345;
	uint8_t *data = random_bytes(1, len);
	struct stash_file *f;
	struct stash_store_stats s;
	uint64_t ino = mkfile(c, c->dir, "big");
	size_t steps[] = { 7777, 4096, 65536 + 3, MiB, len };

	assert_int_equal(stash_file_open(c->st, ino, &f), 0);
	for (size_t off = 0; off < len; off += 128 * KiB)
		write_all(c, f, data + off, STASH_MIN(128 * KiB, len - off),
			  off);
	assert_int_equal(attr_of(c, ino).size, len);
	/* read back before any commit, in awkward pieces */
	expect_read(c, f, 0, len, data, len);
	expect_read(c, f, 3 * MiB - 7, 100000, data + 3 * MiB - 7, 100000);
	assert_int_equal(stash_file_flush(c->st, f), 0);
	expect_read(c, f, 0, len, data, len);
	/* past the end: short, then nothing */
	expect_read(c, f, len - 10, 100, data + len - 10, 10);
	expect_read(c, f, len, 100, NULL, 0);
	expect_read(c, f, len + MiB, 100, NULL, 0);
	assert_int_equal(stash_file_fsync(c->st, f), 0);
	assert_int_equal(stash_file_release(c->st, f), 0);
	for (size_t i = 0; i < STASH_ARRAY_SIZE(steps); i++)
		expect_file(c, ino, data, len, steps[i]);

	assert_int_equal(stash_store_stats(c->st, &s), 0);
	assert_int_equal(s.bytes_written, len);
	assert_true(s.chunks_written >= len / (256 * KiB));
	assert_int_equal(s.cat.logical_bytes, len);
	assert_int_equal(s.cat.chunk_raw_bytes, len);

	store_reopen(c);
	expect_file(c, ino, data, len, MiB);
	assert_int_equal(stash_store_check(c->st), 0);
	free(data);
}

static void test_overwrites(void **state)
{
	struct ctx *c = *state;
	const size_t len = 6 * MiB;
	uint8_t *data = random_bytes(2, len);
	uint8_t *patch = random_bytes(3, MiB);
	uint64_t seed = 99, ino = mkfile(c, c->dir, "f");
	struct stash_file *f;

	assert_int_equal(stash_file_open(c->st, ino, &f), 0);
	write_all(c, f, data, len, 0);
	assert_int_equal(stash_file_flush(c->st, f), 0);
	for (int i = 0; i < 300; i++) {
		size_t n = 1 + (size_t)rng_below(&seed, i % 10 ? 5000 : MiB);
		size_t off = (size_t)rng_below(&seed, len - n + 1);
		size_t from = (size_t)rng_below(&seed, MiB - n + 1);

		write_all(c, f, patch + from, n, off);
		memcpy(data + off, patch + from, n);
		if (i % 7 == 0) {
			size_t roff = (size_t)rng_below(&seed, len);
			size_t rn = STASH_MIN(len - roff, 300 * KiB);

			expect_read(c, f, roff, rn, data + roff, rn);
		}
		if (i % 50 == 49)
			assert_int_equal(stash_file_flush(c->st, f), 0);
		assert_int_equal(attr_of(c, ino).size, len);
	}
	expect_read(c, f, 0, len, data, len);
	assert_int_equal(stash_file_release(c->st, f), 0);
	expect_file(c, ino, data, len, 100000);
	store_reopen(c);
	expect_file(c, ino, data, len, len);
	free(data);
	free(patch);
}

static void test_truncate_holes(void **state)
{
	struct ctx *c = *state;
	const size_t max = 4 * MiB;
	uint8_t *data = random_bytes(4, MiB);
	uint8_t *want = calloc(1, max);
	uint64_t ino = mkfile(c, c->dir, "t");
	struct stash_attr in = { 0 }, out;
	struct stash_file *f;

	assert_non_null(want);
	assert_int_equal(stash_file_open(c->st, ino, &f), 0);
	write_all(c, f, data, MiB, 0);
	memcpy(want, data, MiB);

	/* shrink into the middle of a chunk */
	in.size = 300000;
	assert_int_equal(
		stash_store_setattr(c->st, ino, &in, STASH_SET_SIZE, &out), 0);
	assert_int_equal(out.size, 300000);
	memset(want + 300000, 0, MiB - 300000);
	expect_read(c, f, 0, MiB, want, 300000);

	/* grow: the new part reads as zeros */
	in.size = 2 * MiB;
	assert_int_equal(
		stash_store_setattr(c->st, ino, &in, STASH_SET_SIZE, &out), 0);
	assert_int_equal(attr_of(c, ino).size, 2 * MiB);
	expect_read(c, f, 0, 2 * MiB, want, 2 * MiB);

	/* write past the end: a hole in between */
	write_all(c, f, data, 1000, 3 * MiB);
	memcpy(want + 3 * MiB, data, 1000);
	assert_int_equal(attr_of(c, ino).size, 3 * MiB + 1000);
	expect_read(c, f, 0, max, want, 3 * MiB + 1000);
	/* a write inside a hole */
	write_all(c, f, data + 5000, 777, 2 * MiB + 4321);
	memcpy(want + 2 * MiB + 4321, data + 5000, 777);
	expect_read(c, f, 0, max, want, 3 * MiB + 1000);
	assert_int_equal(stash_file_flush(c->st, f), 0);
	expect_read(c, f, 0, max, want, 3 * MiB + 1000);

	/* shrink to exactly a place where a write ended, then to zero */
	in.size = 2 * MiB + 4321 + 777;
	assert_int_equal(
		stash_store_setattr(c->st, ino, &in, STASH_SET_SIZE, &out), 0);
	expect_read(c, f, 0, max, want, 2 * MiB + 4321 + 777);
	assert_int_equal(stash_file_release(c->st, f), 0);
	expect_file(c, ino, want, 2 * MiB + 4321 + 777, 65536);
	store_reopen(c);
	expect_file(c, ino, want, 2 * MiB + 4321 + 777, 3 * MiB);

	in.size = 0;
	assert_int_equal(
		stash_store_setattr(c->st, ino, &in, STASH_SET_SIZE, &out), 0);
	expect_file(c, ino, NULL, 0, 4096);
	/* a file that is only a hole, without an open handle */
	in.size = 3 * MiB + 17;
	assert_int_equal(
		stash_store_setattr(c->st, ino, &in, STASH_SET_SIZE, &out), 0);
	memset(want, 0, max);
	expect_file(c, ino, want, 3 * MiB + 17, MiB);
	store_reopen(c);
	expect_file(c, ino, want, 3 * MiB + 17, 3 * MiB + 17);

	/* empty writes and reads change nothing */
	assert_int_equal(stash_file_open(c->st, ino, &f), 0);
	assert_int_equal(stash_file_write(c->st, f, data, 0, 10 * MiB), 0);
	assert_int_equal(attr_of(c, ino).size, 3 * MiB + 17);
	assert_int_equal(stash_file_read(c->st, f, data, 0, 0), 0);
	assert_int_equal(stash_file_release(c->st, f), 0);

	/* opening a directory as a file */
	assert_int_equal(stash_file_open(c->st, c->dir, &f), -EISDIR);
	assert_int_equal(stash_file_open(c->st, 999999, &f), -ENOENT);
	free(data);
	free(want);
}

static void test_dedup(void **state)
{
	struct ctx *c = *state;
	const size_t len = 4 * MiB;
	uint8_t *data = random_bytes(5, len + 1000);
	struct stash_store_stats s0, s1, s2, s3;
	struct stash_file *f;
	uint64_t a = mkfile(c, c->dir, "a"), b = mkfile(c, c->dir, "b");
	uint64_t cc = mkfile(c, c->dir, "c");
	uint64_t n;

	assert_int_equal(stash_store_stats(c->st, &s0), 0);
	assert_int_equal(s0.cat.chunks, 0);
	/* a: in 64 KiB writes */
	assert_int_equal(stash_file_open(c->st, a, &f), 0);
	for (size_t off = 0; off < len; off += 64 * KiB)
		write_all(c, f, data + off, 64 * KiB, off);
	assert_int_equal(stash_file_release(c->st, f), 0);
	assert_int_equal(stash_store_stats(c->st, &s1), 0);
	n = s1.chunks_written - s0.chunks_written;
	assert_true(n >= len / (256 * KiB));
	assert_int_equal(s1.cat.chunks, n);
	assert_int_equal(s1.cat.chunk_raw_bytes, len);

	/* b: the same bytes in one write: the same cuts, nothing new */
	assert_int_equal(stash_file_open(c->st, b, &f), 0);
	write_all(c, f, data, len, 0);
	assert_int_equal(stash_file_release(c->st, f), 0);
	assert_int_equal(stash_store_stats(c->st, &s2), 0);
	assert_int_equal(s2.chunks_written, s1.chunks_written);
	assert_int_equal(s2.chunks_deduped - s1.chunks_deduped, n);
	assert_int_equal(s2.cat.chunks, n);
	assert_int_equal(s2.cat.chunk_raw_bytes, len);
	assert_int_equal(s2.cat.logical_bytes, 2 * len);
	expect_file(c, b, data, len, MiB);

	/* c: the same bytes after 1000 others: content-defined cuts
	 * resynchronise, so only a few chunks near the start are new */
	assert_int_equal(stash_file_open(c->st, cc, &f), 0);
	write_all(c, f, data + len, 1000, 0);
	write_all(c, f, data, len, 1000);
	assert_int_equal(stash_file_release(c->st, f), 0);
	assert_int_equal(stash_store_stats(c->st, &s3), 0);
	assert_true(s3.chunks_written - s2.chunks_written <= n / 4);
	assert_true(s3.chunks_deduped - s2.chunks_deduped >= n - n / 4);

	/* after a reopen the counters start again, dedup still works */
	store_reopen(c);
	assert_int_equal(stash_file_open(c->st, b, &f), 0);
	write_all(c, f, data, len, len); /* b = data twice */
	assert_int_equal(stash_file_release(c->st, f), 0);
	assert_int_equal(stash_store_stats(c->st, &s1), 0);
	/*
	 * The seam of the two copies makes a few new chunks until the cuts
	 * fall in step again; how many depends on the store's random gear
	 * table, so the bound is the one used for case c above.
	 */
	assert_true(s1.chunks_written <= n / 4);
	assert_int_equal(s1.cat.chunks, s3.cat.chunks + s1.chunks_written);
	free(data);
}

static void test_unlink_open(void **state)
{
	struct ctx *c = *state;
	const size_t len = 3 * MiB;
	uint8_t *data = random_bytes(6, len + 100);
	struct stash_store_stats s;
	struct stash_file *f, *g;
	struct stash_attr a;
	uint64_t ino = mkfile(c, c->dir, "victim");

	assert_int_equal(stash_file_open(c->st, ino, &f), 0);
	write_all(c, f, data, len, 0);
	assert_int_equal(stash_file_flush(c->st, f), 0);
	assert_int_equal(stash_store_unlink(c->st, c->dir, "victim"), 0);
	expect_gone(c, c->dir, "victim");
	assert_int_equal(stash_store_getattr(c->st, ino, &a), 0);
	assert_int_equal(a.nlink, 0);
	assert_int_equal(a.size, len);
	expect_read(c, f, 0, len, data, len);
	/* still writable, and a second handle shares the state */
	write_all(c, f, data + len, 100, len);
	assert_int_equal(stash_file_open(c->st, ino, &g), 0);
	assert_int_equal(stash_file_release(c->st, f), 0);
	assert_int_equal(stash_store_getattr(c->st, ino, &a), 0);
	expect_read(c, g, 0, len + 100, data, len + 100);
	assert_int_equal(stash_file_release(c->st, g), 0);
	/* the last release: the inode and its chunk references are gone */
	assert_int_equal(stash_store_getattr(c->st, ino, &a), -ENOENT);
	assert_int_equal(stash_store_stats(c->st, &s), 0);
	assert_int_equal(s.cat.chunks, 0);
	assert_true(s.cat.dead_chunks > 0);
	assert_int_equal(s.cat.files, 0);
	assert_int_equal(stash_file_open(c->st, ino, &f), -ENOENT);

	/* an unlinked file still open when the store closes goes too */
	ino = mkfile(c, c->dir, "victim2");
	assert_int_equal(stash_file_open(c->st, ino, &f), 0);
	write_all(c, f, data, 1000, 0);
	assert_int_equal(stash_store_unlink(c->st, c->dir, "victim2"), 0);
	store_reopen(c); /* f is freed by close */
	assert_int_equal(stash_store_getattr(c->st, ino, &a), -ENOENT);
	assert_int_equal(stash_store_check(c->st), 0);
	free(data);
}

/*
 * A process that dies with an unlinked file open leaves an inode without
 * a name; the next open of the store removes it. Data flushed before the
 * death of a process is there after it.
 */
static void test_crash_orphan(void **state)
{
	struct ctx *c = *state;
	uint8_t *data = random_bytes(7, MiB);
	uint64_t kept = mkfile(c, c->dir, "kept");
	uint64_t doomed = mkfile(c, c->dir, "doomed");
	struct stash_attr a;
	struct stash_store_stats s;
	int status;
	pid_t pid;

	assert_int_equal(stash_store_close(c->st), 0);
	c->st = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct stash_store *st;
		struct stash_file *f, *g;

		if (stash_store_open(&st, c->ts.path, &c->ts.secret) ||
		    stash_file_open(st, kept, &f) ||
		    stash_file_write(st, f, data, MiB, 0) != (ssize_t)MiB ||
		    stash_file_flush(st, f) ||
		    stash_file_open(st, doomed, &g) ||
		    stash_file_write(st, g, data, 5000, 0) != 5000 ||
		    stash_file_flush(st, g) ||
		    stash_store_unlink(st, c->dir, "doomed"))
			_exit(1);
		_exit(0); /* no close, no release: a crash */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);

	assert_int_equal(stash_store_open(&c->st, c->ts.path, &c->ts.secret),
			 0);
	assert_int_equal(stash_store_getattr(c->st, doomed, &a), -ENOENT);
	expect_file(c, kept, data, MiB, 100000);
	assert_int_equal(stash_store_stats(c->st, &s), 0);
	assert_int_equal(s.cat.files, 1);
	assert_int_equal(stash_store_check(c->st), 0);
	free(data);
}

/*
 * More dirty data than one file may hold in memory: scattered overwrites
 * of a large committed file reopen chunks all over it, so the write path
 * must chunk runs in the middle of the file before the next commit.
 */
static void test_many_dirty(void **state)
{
	struct ctx *c = *state;
	const size_t len = 40 * MiB;
	uint8_t *data = random_bytes(8, len);
	uint8_t *patch = random_bytes(9, 64 * KiB);
	uint64_t seed = 12345, ino = mkfile(c, c->dir, "large");
	struct stash_file *f;

	assert_int_equal(stash_file_open(c->st, ino, &f), 0);
	write_all(c, f, data, len, 0);
	assert_int_equal(stash_file_flush(c->st, f), 0);
	/* ~600 small writes 64 KiB apart: each reopens a whole chunk */
	for (size_t off = 1000; off + 100 < len; off += 64 * KiB) {
		size_t n = 1 + (size_t)rng_below(&seed, 100);

		write_all(c, f, patch + (off / 7) % (60 * KiB), n, off);
		memcpy(data + off, patch + (off / 7) % (60 * KiB), n);
		if (off % (4 * MiB) < 64 * KiB) {
			size_t roff = (size_t)rng_below(&seed, len - MiB);

			expect_read(c, f, roff, MiB, data + roff, MiB);
		}
	}
	/* and an append while all that is in flight */
	write_all(c, f, patch, 64 * KiB, len);
	expect_read(c, f, 0, len, data, len);
	expect_read(c, f, len, 64 * KiB, patch, 64 * KiB);
	assert_int_equal(stash_file_release(c->st, f), 0);
	store_reopen(c);
	assert_int_equal(attr_of(c, ino).size, len + 64 * KiB);
	assert_int_equal(stash_file_open(c->st, ino, &f), 0);
	expect_read(c, f, 0, len, data, len);
	expect_read(c, f, len, 64 * KiB, patch, 64 * KiB);
	assert_int_equal(stash_file_release(c->st, f), 0);
	free(data);
	free(patch);
}

/*
 * Holes cost one catalog row whatever their size: a file grown to 2^60
 * bytes by truncate, with a few bytes written near its end, keeps its
 * data, reads zeros elsewhere, and survives a reopen.
 */
static void test_huge_size(void **state)
{
	struct ctx *c = *state;
	struct stash_attr in = { 0 }, out;
	uint64_t ino = mkfile(c, c->dir, "huge");
	const uint64_t huge = 1ull << 60;
	struct stash_file *f;
	uint8_t data[1000], tail[16], buf[4096], zeros[4096] = { 0 };

	memset(data, 'q', sizeof(data));
	memset(tail, 't', sizeof(tail));
	assert_int_equal(stash_file_open(c->st, ino, &f), 0);
	write_all(c, f, data, sizeof(data), 0);
	assert_int_equal(stash_file_release(c->st, f), 0);
	in.size = huge;
	assert_int_equal(
		stash_store_setattr(c->st, ino, &in, STASH_SET_SIZE, &out), 0);
	assert_int_equal(out.size, huge);
	assert_int_equal(stash_file_open(c->st, ino, &f), 0);
	write_all(c, f, tail, sizeof(tail), huge - 100);
	assert_int_equal(stash_file_release(c->st, f), 0);

	store_reopen(c);
	assert_int_equal(attr_of(c, ino).size, huge);
	assert_int_equal(stash_file_open(c->st, ino, &f), 0);
	expect_read(c, f, 0, sizeof(data), data, sizeof(data));
	expect_read(c, f, 1ull << 40, sizeof(buf), zeros, sizeof(buf));
	expect_read(c, f, huge - 100, sizeof(tail), tail, sizeof(tail));
	expect_read(c, f, huge - 84, 84, zeros, 84);
	/* and a write in the middle of the hole splits it */
	write_all(c, f, tail, sizeof(tail), 1ull << 50);
	assert_int_equal(stash_file_release(c->st, f), 0);
	store_reopen(c);
	assert_int_equal(stash_file_open(c->st, ino, &f), 0);
	expect_read(c, f, 1ull << 50, sizeof(tail), tail, sizeof(tail));
	expect_read(c, f, (1ull << 50) + sizeof(tail), sizeof(buf), zeros,
		    sizeof(buf));
	expect_read(c, f, huge - 100, sizeof(tail), tail, sizeof(tail));
	assert_int_equal(stash_file_release(c->st, f), 0);
	assert_int_equal(stash_store_check(c->st), 0);
}

/* ---- threads ---- */

#define THREADS 4

struct worker {
	struct ctx *c;
	uint64_t ino;  /* the file this worker uses */
	int idx;       /* stripe number, for the shared file */
	size_t stripe; /* bytes per stripe */
	uint8_t *want; /* own file: the model */
	size_t size;   /* own file: the model's size */
	int fails;     /* cmocka asserts belong to the main thread */
	char why[96];
};

static void wfail(struct worker *w, const char *what, long long v)
{
	if (!w->fails++)
		snprintf(w->why, sizeof(w->why), "%s: %lld", what, v);
}

/* Random writes, truncates, reads and flushes on the worker's own file. */
static void *own_file(void *arg)
{
	struct worker *w = arg;
	const size_t max = 3 * MiB;
	uint64_t seed = 0x9e3779b97f4a7c15ull * (uint64_t)(w->idx + 1);
	uint8_t *buf = malloc(max + 1);
	struct stash_file *f;
	struct stash_attr in = { 0 }, out;

	if (!buf || stash_file_open(w->c->st, w->ino, &f)) {
		free(buf);
		wfail(w, "open", 0);
		return NULL;
	}
	for (int i = 0; i < 300 && !w->fails; i++) {
		uint64_t r = rng_below(&seed, 100);
		size_t off = (size_t)rng_below(&seed, w->size + 200 * KiB);
		size_t n = 1 + (size_t)rng_below(&seed, r < 10 ? 1536 * KiB
							       : 64 * KiB);
		ssize_t got;

		off = STASH_MIN(off, max - n);
		if (r < 50) {
			rng_fill(&seed, buf, n);
			if (rng_below(&seed, 4) == 0)
				memset(buf, 0, n);
			got = stash_file_write(w->c->st, f, buf, n, off);
			if (got != (ssize_t)n)
				wfail(w, "write", got);
			if (off > w->size)
				memset(w->want + w->size, 0, off - w->size);
			memcpy(w->want + off, buf, n);
			w->size = STASH_MAX(w->size, off + n);
		} else if (r < 60) {
			in.size = STASH_MIN(off, max);
			if (stash_store_setattr(w->c->st, w->ino, &in,
						STASH_SET_SIZE, &out))
				wfail(w, "truncate", 0);
			if (in.size > w->size)
				memset(w->want + w->size, 0, in.size - w->size);
			w->size = in.size;
		} else if (r < 90) {
			got = stash_file_read(w->c->st, f, buf, max + 1, 0);
			if (got != (ssize_t)w->size)
				wfail(w, "read length", got);
			else if (memcmp(buf, w->want, w->size))
				wfail(w, "read bytes", i);
		} else if (stash_file_flush(w->c->st, f)) {
			wfail(w, "flush", i);
		}
	}
	if (stash_file_release(w->c->st, f))
		wfail(w, "release", 0);
	free(buf);
	return NULL;
}

/* Writes to this worker's stripes of one shared file, own handle. */
static void *shared_file(void *arg)
{
	struct worker *w = arg;
	uint64_t seed = 77 + (uint64_t)w->idx;
	uint8_t *buf = malloc(w->stripe);
	struct stash_file *f;

	if (!buf || stash_file_open(w->c->st, w->ino, &f)) {
		free(buf);
		wfail(w, "open", 0);
		return NULL;
	}
	/* stripe k of every round of THREADS stripes is worker k's */
	for (int round = 0; round < 6 && !w->fails; round++) {
		size_t base =
			((size_t)round * THREADS + (size_t)w->idx) * w->stripe;

		for (size_t done = 0; done < w->stripe;) {
			size_t n = 1 + (size_t)rng_below(&seed, 100 * KiB);

			n = STASH_MIN(n, w->stripe - done);

			memset(buf, 'a' + w->idx + round, n);
			if (stash_file_write(w->c->st, f, buf, n,
					     base + done) != (ssize_t)n)
				wfail(w, "write", (long long)(base + done));
			done += n;
		}
		if (round % 2 && stash_file_flush(w->c->st, f))
			wfail(w, "flush", round);
	}
	if (stash_file_release(w->c->st, f))
		wfail(w, "release", 0);
	free(buf);
	return NULL;
}

static void test_threads(void **state)
{
	struct ctx *c = *state;
	struct worker w[THREADS], s[THREADS];
	pthread_t t[2 * THREADS];
	const size_t stripe = 300 * KiB + 13;
	const size_t shared_len = 6 * THREADS * stripe;
	uint64_t shared = mkfile(c, c->dir, "shared");
	uint8_t *want = malloc(shared_len);
	char name[16];

	assert_non_null(want);
	for (int i = 0; i < THREADS; i++) {
		snprintf(name, sizeof(name), "own%d", i);
		w[i] = (struct worker){ .c = c,
					.ino = mkfile(c, c->dir, name),
					.idx = i };
		w[i].want = calloc(1, 3 * MiB);
		assert_non_null(w[i].want);
		s[i] = (struct worker){
			.c = c, .ino = shared, .idx = i, .stripe = stripe
		};
	}
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_create(&t[i], NULL, own_file, &w[i]),
				 0);
		assert_int_equal(pthread_create(&t[THREADS + i], NULL,
						shared_file, &s[i]),
				 0);
	}
	for (int i = 0; i < 2 * THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	for (int i = 0; i < THREADS; i++) {
		if (w[i].fails || s[i].fails)
			print_error("worker %d: %s %s\n", i, w[i].why,
				    s[i].why);
		assert_int_equal(w[i].fails, 0);
		assert_int_equal(s[i].fails, 0);
	}
	for (int round = 0; round < 6; round++)
		for (int k = 0; k < THREADS; k++)
			memset(want + ((size_t)round * THREADS + (size_t)k) *
					       stripe,
			       'a' + k + round, stripe);
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < THREADS; i++)
			expect_file(c, w[i].ino, w[i].want, w[i].size, MiB);
		expect_file(c, shared, want, shared_len, 777 * KiB);
		store_reopen(c);
	}
	assert_int_equal(stash_store_check(c->st), 0);
	for (int i = 0; i < THREADS; i++)
		free(w[i].want);
	free(want);
}

/* ---- the differential test ---- */

struct model {
	uint8_t *data; /* the file's bytes */
	size_t size;
};

struct dfile {
	uint64_t ino;
	struct stash_file *f;  /* a handle, or NULL */
	struct stash_file *f2; /* a second handle, or NULL */
	struct model m;
};

struct dtest {
	struct ctx *c;
	uint64_t rng;
	size_t max_size;  /* files never grow beyond this */
	size_t big_write; /* largest write */
	struct dfile files[3];
	uint8_t *buf;	  /* read buffer, max_size + slack */
	char log[16][96]; /* the last operations, for a failure report */
	unsigned nlog;
	unsigned long op;
};

static void dlog(struct dtest *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void dlog(struct dtest *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->log[t->nlog++ % 16], sizeof(t->log[0]), fmt, ap);
	va_end(ap);
}

static void dfail(struct dtest *t, const char *what, long long a, long long b)
{
	print_error("differential test failed at op %lu: %s (%lld vs %lld)\n",
		    t->op, what, a, b);
	print_error("last operations, oldest first:\n");
	for (unsigned i = t->nlog > 16 ? t->nlog - 16 : 0; i < t->nlog; i++)
		print_error("  %s\n", t->log[i % 16]);
	fail();
}

static struct stash_file *dhandle(struct dtest *t, struct dfile *df)
{
	if (!df->f) {
		int ret = stash_file_open(t->c->st, df->ino, &df->f);

		if (ret)
			dfail(t, "open", ret, 0);
	}
	return df->f;
}

/* Compare [off, off + len) of the file through h with the model. */
static void dcompare(struct dtest *t, struct dfile *df, struct stash_file *h,
		     uint64_t off, size_t len)
{
	size_t want = off >= df->m.size ? 0 : STASH_MIN(len, df->m.size - off);
	ssize_t n = stash_file_read(t->c->st, h, t->buf, len, off);

	if (n != (ssize_t)want)
		dfail(t, "read length", n, (long long)want);
	if (want && memcmp(t->buf, df->m.data + off, want)) {
		size_t i = 0;

		while (t->buf[i] == df->m.data[off + i])
			i++;
		dfail(t, "bytes differ at offset", (long long)(off + i),
		      (long long)df->m.size);
	}
}

/* The size the store reports, then every byte. */
static void dcheck(struct dtest *t, struct dfile *df)
{
	struct stash_attr a;
	struct stash_file *h = df->f ? df->f : df->f2;
	int ret = stash_store_getattr(t->c->st, df->ino, &a);

	if (ret)
		dfail(t, "getattr", ret, 0);
	if (a.size != df->m.size)
		dfail(t, "size", (long long)a.size, (long long)df->m.size);
	if (h) {
		dcompare(t, df, h, 0, df->m.size + 1);
		return;
	}
	/* no handle: open one, which also checks the committed file map */
	ret = stash_file_open(t->c->st, df->ino, &h);
	if (ret)
		dfail(t, "open to check", ret, 0);
	dcompare(t, df, h, 0, df->m.size + 1);
	ret = stash_file_release(t->c->st, h);
	if (ret)
		dfail(t, "release after check", ret, 0);
}

static void dclose_handles(struct dtest *t, struct dfile *df)
{
	int ret;

	if (df->f2) {
		ret = stash_file_release(t->c->st, df->f2);
		df->f2 = NULL;
		if (ret)
			dfail(t, "release f2", ret, 0);
	}
	if (df->f) {
		ret = stash_file_release(t->c->st, df->f);
		df->f = NULL;
		if (ret)
			dfail(t, "release", ret, 0);
	}
}

static void dwrite(struct dtest *t, struct dfile *df)
{
	uint64_t r = rng_below(&t->rng, 100);
	size_t len, off, kind;
	uint8_t *src = t->buf;
	struct stash_file *h;
	ssize_t n;

	if (r < 60)
		len = 1 + (size_t)rng_below(&t->rng, 8 * KiB);
	else if (r < 90)
		len = 1 + (size_t)rng_below(&t->rng, 256 * KiB);
	else
		len = 1 + (size_t)rng_below(&t->rng, t->big_write);
	len = STASH_MIN(len, t->max_size);
	r = rng_below(&t->rng, 100);
	if (r < 45) /* anywhere inside */
		off = (size_t)rng_below(&t->rng, df->m.size + 1);
	else if (r < 75) /* an append */
		off = df->m.size;
	else if (r < 90) /* past the end: a hole */
		off = df->m.size + (size_t)rng_below(&t->rng, 300 * KiB);
	else /* near the start */
		off = (size_t)rng_below(&t->rng, 4096);
	if (off + len > t->max_size) {
		if (len > t->max_size - STASH_MIN(off, t->max_size))
			off = (size_t)rng_below(&t->rng, t->max_size - len + 1);
	}
	kind = (size_t)rng_below(&t->rng, 10);
	if (kind < 6) {
		rng_fill(&t->rng, src, len);
	} else if (kind < 8 && df->m.size > 0) {
		/* bytes the store already has: another file's, or this one's
		 * at another offset */
		struct dfile *from = &t->files[rng_below(&t->rng, 3)];

		if (from->m.size == 0)
			from = df;
		len = STASH_MIN(len, from->m.size);
		memcpy(src,
		       from->m.data +
			       rng_below(&t->rng, from->m.size - len + 1),
		       len);
	} else {
		memset(src, kind == 9 ? 0 : 'z', len);
	}
	h = df->f2 && rng_below(&t->rng, 2) ? df->f2 : dhandle(t, df);
	dlog(t, "%lu: write ino %" PRIu64 " off %zu len %zu kind %zu", t->op,
	     df->ino, off, len, kind);
	n = stash_file_write(t->c->st, h, src, len, off);
	if (n != (ssize_t)len)
		dfail(t, "write", n, (long long)len);
	if (off > df->m.size)
		memset(df->m.data + df->m.size, 0, off - df->m.size);
	memcpy(df->m.data + off, src, len);
	df->m.size = STASH_MAX(df->m.size, off + len);
}

static void dtruncate(struct dtest *t, struct dfile *df)
{
	struct stash_attr in = { 0 }, out;
	size_t size;
	uint64_t r = rng_below(&t->rng, 100);
	int ret;

	if (r < 40)
		size = (size_t)rng_below(&t->rng, df->m.size + 1);
	else if (r < 70)
		size = df->m.size + (size_t)rng_below(&t->rng, 512 * KiB);
	else if (r < 80)
		size = 0;
	else
		size = df->m.size > 0
			       ? df->m.size - 1 -
					 (size_t)rng_below(
						 &t->rng,
						 STASH_MIN(df->m.size, 64))
			       : 1;
	size = STASH_MIN(size, t->max_size);
	in.size = size;
	dlog(t, "%lu: truncate ino %" PRIu64 " from %zu to %zu", t->op, df->ino,
	     df->m.size, size);
	ret = stash_store_setattr(t->c->st, df->ino, &in, STASH_SET_SIZE, &out);
	if (ret)
		dfail(t, "truncate", ret, 0);
	if (out.size != size)
		dfail(t, "size after truncate", (long long)out.size,
		      (long long)size);
	if (size > df->m.size)
		memset(df->m.data + df->m.size, 0, size - df->m.size);
	df->m.size = size;
}

static void dread(struct dtest *t, struct dfile *df)
{
	size_t off = (size_t)rng_below(&t->rng, df->m.size + 64 * KiB);
	size_t len = (size_t)rng_below(&t->rng, 512 * KiB);
	struct stash_file *h =
		df->f2 && rng_below(&t->rng, 2) ? df->f2 : dhandle(t, df);

	dlog(t, "%lu: read ino %" PRIu64 " off %zu len %zu", t->op, df->ino,
	     off, len);
	dcompare(t, df, h, off, len);
}

static void dstep(struct dtest *t)
{
	struct dfile *df = &t->files[rng_below(&t->rng, 3)];
	uint64_t r = rng_below(&t->rng, 1000);
	int ret = 0;

	if (r < 420) {
		dwrite(t, df);
	} else if (r < 500) {
		dtruncate(t, df);
	} else if (r < 720) {
		dread(t, df);
	} else if (r < 800) {
		dlog(t, "%lu: flush ino %" PRIu64, t->op, df->ino);
		ret = stash_file_flush(t->c->st, dhandle(t, df));
	} else if (r < 805) {
		dlog(t, "%lu: fsync ino %" PRIu64, t->op, df->ino);
		ret = stash_file_fsync(t->c->st, dhandle(t, df));
	} else if (r < 880) {
		dlog(t, "%lu: release ino %" PRIu64, t->op, df->ino);
		dclose_handles(t, df);
	} else if (r < 920) {
		if (df->f2) {
			dlog(t, "%lu: release f2 ino %" PRIu64, t->op, df->ino);
			ret = stash_file_release(t->c->st, df->f2);
			df->f2 = NULL;
		} else {
			dlog(t, "%lu: open f2 ino %" PRIu64, t->op, df->ino);
			ret = stash_file_open(t->c->st, df->ino, &df->f2);
		}
	} else if (r < 995) {
		dlog(t, "%lu: check ino %" PRIu64, t->op, df->ino);
	} else {
		/* close and reopen the store, sometimes with files open */
		bool forced = rng_below(&t->rng, 2);

		dlog(t, "%lu: reopen store%s", t->op,
		     forced ? " with files open" : "");
		for (int i = 0; i < 3 && !forced; i++)
			dclose_handles(t, &t->files[i]);
		ret = stash_store_close(t->c->st);
		t->c->st = NULL;
		for (int i = 0; i < 3; i++)
			t->files[i].f = t->files[i].f2 = NULL;
		if (!ret)
			ret = stash_store_open(&t->c->st, t->c->ts.path,
					       &t->c->ts.secret);
		if (ret)
			dfail(t, "close/reopen", ret, 0);
		for (int i = 0; i < 3; i++)
			dcheck(t, &t->files[i]);
	}
	if (ret)
		dfail(t, "operation", ret, 0);
	dcheck(t, df);
}

static uint64_t test_seed(void)
{
	const char *env = getenv("STASH_TEST_SEED");
	struct timespec ts;

	if (env && *env)
		return strtoull(env, NULL, 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
	       ((uint64_t)getpid() << 40);
}

static unsigned long test_ops(unsigned long dflt)
{
	const char *env = getenv("STASH_TEST_OPS");

	return env && *env ? strtoul(env, NULL, 0) : dflt;
}

/*
 * Run ops random operations on three files of a store made with the given
 * chunker parameters (0: the defaults for everything).
 */
static void differential(struct ctx *c, const char *name, uint32_t min,
			 uint32_t avg, uint32_t max, size_t max_size,
			 size_t big_write, unsigned long ops)
{
	struct dtest *t = calloc(1, sizeof(*t));
	struct stash_config cfg;
	struct stash_store_stats s;
	uint64_t seed = test_seed();
	char fname[16];

	assert_non_null(t);
	print_message("%s: seed %" PRIu64 " (STASH_TEST_SEED=%" PRIu64
		      "), %lu operations\n",
		      name, seed, seed, ops);
	t->c = c;
	t->rng = seed ? seed : 1;
	t->max_size = max_size;
	t->big_write = big_write;
	t->buf = malloc(max_size + 1024 * KiB);
	assert_non_null(t->buf);

	/* a store of its own, with these chunker parameters */
	assert_int_equal(stash_store_close(c->st), 0);
	c->st = NULL;
	snprintf(c->ts.path, sizeof(c->ts.path), "%s/%s", c->ts.root, name);
	stash_config_defaults(&cfg);
	if (min) {
		cfg.chunker.min = min;
		cfg.chunker.avg = avg;
		cfg.chunker.max = max;
		/* and the rest off the default path too: zlib, small packs
		 * (a new pack every MiB or so) */
		cfg.codec = STASH_CODEC_ZLIB;
		cfg.level = 1;
		cfg.pack_size = MiB;
	}
	assert_int_equal(stash_store_init(c->ts.path, &cfg, &c->ts.secret), 0);
	assert_int_equal(stash_store_open(&c->st, c->ts.path, &c->ts.secret),
			 0);
	c->dir = mkdir_in(c, STASH_ROOT_INO, "t");
	for (int i = 0; i < 3; i++) {
		snprintf(fname, sizeof(fname), "f%d", i);
		t->files[i].ino = mkfile(c, c->dir, fname);
		t->files[i].m.data = calloc(1, max_size);
		assert_non_null(t->files[i].m.data);
	}

	for (t->op = 0; t->op < ops; t->op++)
		dstep(t);

	for (int i = 0; i < 3; i++)
		dclose_handles(t, &t->files[i]);
	store_reopen(c);
	for (int i = 0; i < 3; i++)
		dcheck(t, &t->files[i]);
	assert_int_equal(stash_store_check(c->st), 0);
	assert_int_equal(stash_store_stats(c->st, &s), 0);
	{
		uint64_t total = 0;

		for (int i = 0; i < 3; i++)
			total += t->files[i].m.size;
		assert_int_equal(s.cat.logical_bytes, total);
	}
	for (int i = 0; i < 3; i++)
		free(t->files[i].m.data);
	free(t->buf);
	free(t);
}

/* Small chunks: many segments, cuts and chunk boundaries per file. */
static void test_differential_small(void **state)
{
	differential(*state, "small", 256, 1024, 4096, 2 * MiB, 1536 * KiB,
		     test_ops(3000));
}

/* The default chunker: spills of the tail, pending chunks. */
static void test_differential_default(void **state)
{
	differential(*state, "default", 0, 0, 0, 6 * MiB, 3 * MiB,
		     test_ops(1200));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_init_open),
		T(test_passphrase_store),
		T(test_namespace),
		T(test_setattr_xattr),
		T(test_rename),
		T(test_sequential),
		T(test_overwrites),
		T(test_truncate_holes),
		T(test_dedup),
		T(test_unlink_open),
		T(test_crash_orphan),
		T(test_many_dirty),
		T(test_huge_size),
		T(test_threads),
		T(test_differential_small),
		T(test_differential_default),
	};
	const char *filter = getenv("STASH_TEST_FILTER");

	/* STASH_TEST_FILTER=test_differential_small runs just that test */
	if (filter && *filter)
		cmocka_set_test_filter(filter);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
