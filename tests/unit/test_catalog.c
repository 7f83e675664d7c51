/*
 * test_catalog.c - unit tests for the SQLite catalog (store/catalog.c):
 * opening and reopening, inodes, directory entries, readdir cookies,
 * symlinks, xattrs, file maps with chunk reference counts, statistics,
 * orphans, the integrity check and a wrong key.
 *
 * Each test works in its own mkdtemp directory under /tmp, removed after.
 * No FUSE, no packs: extents point at made-up chunk locations, which the
 * catalog only records.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "catalog.h"
#include "crypto.h"
#include "sqlvfs.h"
#include "testutil.h"

struct ctx {
	char dir[64]; /* mkdtemp directory */
	char db[128]; /* dir/catalog.db */
	uint8_t key[STASH_KEY_LEN];
	struct stash_cat *cat; /* open catalog, closed by teardown */
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	snprintf(c->dir, sizeof(c->dir), "/tmp/test_catalog.XXXXXX");
	if (!mkdtemp(c->dir) ||
	    stash_crypto_random(c->key, sizeof(c->key)) < 0) {
		free(c);
		return -1;
	}
	snprintf(c->db, sizeof(c->db), "%s/catalog.db", c->dir);
	if (stash_cat_open(&c->cat, c->db, c->key, 1) != 0) {
		test_rmtree(c->dir);
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	if (c->cat)
		stash_cat_close(c->cat);
	test_rmtree(c->dir);
	free(c);
	return 0;
}

static void reopen(struct ctx *c)
{
	assert_int_equal(stash_cat_close(c->cat), 0);
	c->cat = NULL;
	assert_int_equal(stash_cat_open(&c->cat, c->db, c->key, 0), 0);
}

static void begin(struct ctx *c)
{
	assert_int_equal(stash_cat_begin(c->cat), 0);
}

static void commit(struct ctx *c)
{
	assert_int_equal(stash_cat_commit(c->cat, 0), 0);
}

/* A new inode of mode (type and bits) with its name in parent. */
static uint64_t mk(struct ctx *c, uint64_t parent, const char *name,
		   uint32_t mode)
{
	struct stash_attr a = {
		.mode = mode,
		.nlink = S_ISDIR(mode) ? 2 : 1,
		.uid = 1000,
		.gid = 100,
		.atime = 1,
		.mtime = 2,
		.ctime = 3,
	};

	assert_int_equal(stash_cat_create_inode(c->cat, &a, NULL), 0);
	assert_true(a.ino > STASH_ROOT_INO);
	if (name)
		assert_int_equal(
			stash_cat_add_dirent(c->cat, parent, name, a.ino), 0);
	return a.ino;
}

static int user_version(struct ctx *c)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	int v;

	assert_int_equal(stash_sqlvfs_open(&db, c->db, c->key, 0), 0);
	assert_int_equal(
		sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL),
		SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	assert_int_equal(stash_sqlvfs_close(db), 0);
	return v;
}

static void test_open_reopen(void **state)
{
	struct ctx *c = *state;
	struct stash_attr root, a;
	uint64_t ino;
	char other[160];
	struct stash_cat *cat = NULL;

	/* a new catalog has the root directory */
	assert_int_equal(stash_cat_getattr(c->cat, STASH_ROOT_INO, &root), 0);
	assert_int_equal(root.ino, STASH_ROOT_INO);
	assert_true(S_ISDIR(root.mode));
	assert_int_equal(root.nlink, 2);
	assert_int_equal(stash_cat_dir_is_empty(c->cat, STASH_ROOT_INO), 1);

	begin(c);
	ino = mk(c, STASH_ROOT_INO, "kept", S_IFREG | 0640);
	commit(c);
	assert_int_equal(stash_cat_close(c->cat), 0);
	c->cat = NULL;
	assert_int_equal(user_version(c), STASH_CAT_SCHEMA_VERSION);

	/* reopen, without create, and with create: nothing is redone */
	assert_int_equal(stash_cat_open(&c->cat, c->db, c->key, 0), 0);
	assert_int_equal(stash_cat_lookup(c->cat, STASH_ROOT_INO, "kept", &a),
			 0);
	assert_int_equal(a.ino, ino);
	assert_int_equal(a.mode, S_IFREG | 0640);
	assert_int_equal(a.uid, 1000);
	assert_int_equal(a.mtime, 2);
	assert_int_equal(stash_cat_getattr(c->cat, STASH_ROOT_INO, &a), 0);
	assert_int_equal(a.ctime, root.ctime);
	assert_int_equal(stash_cat_close(c->cat), 0);
	c->cat = NULL;
	assert_int_equal(stash_cat_open(&c->cat, c->db, c->key, 1), 0);
	assert_int_equal(stash_cat_lookup(c->cat, STASH_ROOT_INO, "kept", &a),
			 0);
	assert_int_equal(stash_cat_close(c->cat), 0);
	c->cat = NULL;
	assert_int_equal(user_version(c), STASH_CAT_SCHEMA_VERSION);

	/* inode numbers are never reused, even after a reopen */
	assert_int_equal(stash_cat_open(&c->cat, c->db, c->key, 0), 0);
	begin(c);
	assert_int_equal(stash_cat_del_dirent(c->cat, STASH_ROOT_INO, "kept"),
			 0);
	assert_int_equal(stash_cat_delete_inode(c->cat, ino), 0);
	commit(c);
	reopen(c);
	begin(c);
	assert_true(mk(c, STASH_ROOT_INO, "next", S_IFREG | 0600) > ino);
	commit(c);

	/* a missing catalog is not created without create */
	snprintf(other, sizeof(other), "%s/none.db", c->dir);
	assert_int_equal(stash_cat_open(&cat, other, c->key, 0), -ENOENT);
	assert_null(cat);

	/* a newer schema is refused */
	assert_int_equal(stash_cat_close(c->cat), 0);
	c->cat = NULL;
	{
		sqlite3 *db;

		assert_int_equal(stash_sqlvfs_open(&db, c->db, c->key, 0), 0);
		assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99",
					      NULL, NULL, NULL),
				 SQLITE_OK);
		assert_int_equal(stash_sqlvfs_close(db), 0);
	}
	assert_int_equal(stash_cat_open(&cat, c->db, c->key, 0), -EPROTO);
	assert_null(cat);
	assert_int_equal(stash_cat_close(NULL), 0);
}

static void test_wrong_key(void **state)
{
	struct ctx *c = *state;
	struct stash_cat *cat = NULL;
	uint8_t key[STASH_KEY_LEN];

	begin(c);
	mk(c, STASH_ROOT_INO, "f", S_IFREG | 0600);
	commit(c);
	assert_int_equal(stash_cat_close(c->cat), 0);
	c->cat = NULL;
	memcpy(key, c->key, sizeof(key));
	key[0] ^= 0x80;
	assert_int_equal(stash_cat_open(&cat, c->db, key, 0), -EBADMSG);
	assert_null(cat);
	assert_int_equal(stash_cat_open(&cat, c->db, key, 1), -EBADMSG);
	assert_null(cat);
	/* the right key still opens it: nothing was damaged */
	assert_int_equal(stash_cat_open(&c->cat, c->db, c->key, 0), 0);
	assert_int_equal(stash_cat_check(c->cat), 0);
}

static void test_inodes(void **state)
{
	struct ctx *c = *state;
	struct stash_attr a = {
		.mode = S_IFLNK | 0777, .nlink = 1, .uid = 5, .gid = 6,
		.size = 11, .atime = -7, .mtime = INT64_MAX - 1,
		.ctime = 1700000000123456789,
	}, b;
	char buf[64];

	begin(c);
	assert_int_equal(stash_cat_create_inode(c->cat, &a, "some/target"), 0);
	assert_int_equal(
		stash_cat_add_dirent(c->cat, STASH_ROOT_INO, "ln", a.ino), 0);
	commit(c);
	reopen(c);
	assert_int_equal(stash_cat_getattr(c->cat, a.ino, &b), 0);
	assert_int_equal(b.ino, a.ino);
	assert_int_equal(b.mode, a.mode);
	assert_int_equal(b.nlink, 1);
	assert_int_equal(b.uid, 5);
	assert_int_equal(b.gid, 6);
	assert_int_equal(b.size, 11);
	assert_int_equal(b.atime, -7);
	assert_int_equal(b.mtime, INT64_MAX - 1);
	assert_int_equal(b.ctime, 1700000000123456789);
	assert_int_equal(stash_cat_readlink(c->cat, a.ino, buf, sizeof(buf)),
			 11);
	assert_memory_equal(buf, "some/target", 11);
	/* a short buffer gets a prefix; the length is still the whole */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(stash_cat_readlink(c->cat, a.ino, buf, 4), 11);
	assert_memory_equal(buf, "some", 4);
	assert_int_equal(buf[4], 0);

	/* setattr writes every field */
	b.mode = S_IFLNK | 0700;
	b.nlink = 3;
	b.uid = 0;
	b.gid = 0;
	b.size = 1ull << 40;
	b.rdev = 0x1234;
	b.atime = b.mtime = b.ctime = 42;
	begin(c);
	assert_int_equal(stash_cat_setattr(c->cat, &b), 0);
	commit(c);
	assert_int_equal(stash_cat_getattr(c->cat, a.ino, &a), 0);
	assert_memory_equal(&a, &b, sizeof(a));

	/* a device node keeps rdev; a file has no link target */
	begin(c);
	a = (struct stash_attr){ .mode = S_IFCHR | 0600,
				 .nlink = 1,
				 .rdev = 0x0501 };
	assert_int_equal(stash_cat_create_inode(c->cat, &a, NULL), 0);
	commit(c);
	assert_int_equal(stash_cat_getattr(c->cat, a.ino, &b), 0);
	assert_int_equal(b.rdev, 0x0501);
	assert_int_equal(stash_cat_readlink(c->cat, a.ino, buf, sizeof(buf)),
			 -EINVAL);

	/* gone inodes */
	assert_int_equal(stash_cat_getattr(c->cat, 987654, &b), -ENOENT);
	assert_int_equal(stash_cat_readlink(c->cat, 987654, buf, sizeof(buf)),
			 -ENOENT);
	begin(c);
	assert_int_equal(stash_cat_delete_inode(c->cat, a.ino), 0);
	commit(c);
	assert_int_equal(stash_cat_getattr(c->cat, a.ino, &b), -ENOENT);

	/* a rolled back transaction leaves nothing */
	begin(c);
	a = (struct stash_attr){ .mode = S_IFREG | 0600, .nlink = 1 };
	assert_int_equal(stash_cat_create_inode(c->cat, &a, NULL), 0);
	assert_int_equal(
		stash_cat_add_dirent(c->cat, STASH_ROOT_INO, "tmp", a.ino), 0);
	stash_cat_rollback(c->cat);
	assert_int_equal(stash_cat_getattr(c->cat, a.ino, &b), -ENOENT);
	assert_int_equal(stash_cat_lookup(c->cat, STASH_ROOT_INO, "tmp", &b),
			 -ENOENT);
	/* rollback outside a transaction is harmless */
	stash_cat_rollback(c->cat);
}

static void test_dirents(void **state)
{
	struct ctx *c = *state;
	struct stash_attr a;
	uint64_t d1, d2, f1, f2, parent;

	begin(c);
	d1 = mk(c, STASH_ROOT_INO, "d1", S_IFDIR | 0755);
	d2 = mk(c, STASH_ROOT_INO, "d2", S_IFDIR | 0755);
	f1 = mk(c, d1, "f1", S_IFREG | 0644);
	f2 = mk(c, d1, "f2", S_IFREG | 0644);
	commit(c);

	assert_int_equal(stash_cat_lookup(c->cat, d1, "f1", &a), 0);
	assert_int_equal(a.ino, f1);
	assert_int_equal(stash_cat_lookup(c->cat, d1, "f3", &a), -ENOENT);
	assert_int_equal(stash_cat_lookup(c->cat, d2, "f1", &a), -ENOENT);
	/* names are bytes: no case folding, no prefix match */
	assert_int_equal(stash_cat_lookup(c->cat, d1, "F1", &a), -ENOENT);
	assert_int_equal(stash_cat_lookup(c->cat, d1, "f", &a), -ENOENT);
	assert_int_equal(stash_cat_dir_is_empty(c->cat, d1), 0);
	assert_int_equal(stash_cat_dir_is_empty(c->cat, d2), 1);
	assert_int_equal(stash_cat_parent_of(c->cat, f1, &parent), 0);
	assert_int_equal(parent, d1);
	assert_int_equal(stash_cat_parent_of(c->cat, d2, &parent), 0);
	assert_int_equal(parent, STASH_ROOT_INO);
	assert_int_equal(stash_cat_parent_of(c->cat, STASH_ROOT_INO, &parent),
			 -ENOENT);

	begin(c);
	/* a taken name */
	assert_int_equal(stash_cat_add_dirent(c->cat, d1, "f1", f2), -EEXIST);
	/* the same name in another directory is fine; a second link */
	assert_int_equal(stash_cat_add_dirent(c->cat, d2, "f1", f1), 0);
	/* a name that is not UTF-8 is just bytes */
	assert_int_equal(stash_cat_add_dirent(c->cat, d2, "\xff\xfe", f2), 0);
	/* missing entries */
	assert_int_equal(stash_cat_del_dirent(c->cat, d1, "nope"), -ENOENT);
	assert_int_equal(stash_cat_set_dirent(c->cat, d1, "nope", f1), -ENOENT);
	assert_int_equal(stash_cat_move_dirent(c->cat, d1, "nope", d2, "x"),
			 -ENOENT);
	/* move onto a taken name */
	assert_int_equal(stash_cat_move_dirent(c->cat, d1, "f2", d2, "f1"),
			 -EEXIST);
	/* the failed statements left the transaction usable */
	commit(c);

	assert_int_equal(stash_cat_lookup(c->cat, d2, "\xff\xfe", &a), 0);
	assert_int_equal(a.ino, f2);
	assert_int_equal(stash_cat_lookup(c->cat, d1, "f2", &a), 0);
	assert_int_equal(a.ino, f2);

	begin(c);
	/* move across directories, renaming */
	assert_int_equal(stash_cat_move_dirent(c->cat, d1, "f2", d2, "g2"), 0);
	/* point an entry at another inode (what rename-exchange does) */
	assert_int_equal(stash_cat_set_dirent(c->cat, d2, "f1", f2), 0);
	/* and delete one */
	assert_int_equal(stash_cat_del_dirent(c->cat, d2, "\xff\xfe"), 0);
	commit(c);
	reopen(c);

	assert_int_equal(stash_cat_lookup(c->cat, d1, "f2", &a), -ENOENT);
	assert_int_equal(stash_cat_lookup(c->cat, d2, "g2", &a), 0);
	assert_int_equal(a.ino, f2);
	assert_int_equal(stash_cat_lookup(c->cat, d2, "f1", &a), 0);
	assert_int_equal(a.ino, f2);
	assert_int_equal(stash_cat_lookup(c->cat, d2, "\xff\xfe", &a), -ENOENT);
	assert_int_equal(stash_cat_lookup(c->cat, d1, "f1", &a), 0);
	assert_int_equal(a.ino, f1);

	begin(c);
	assert_int_equal(stash_cat_del_dirent(c->cat, d1, "f1"), 0);
	commit(c);
	assert_int_equal(stash_cat_dir_is_empty(c->cat, d1), 1);
	/* f1 now has no name at all */
	assert_int_equal(stash_cat_parent_of(c->cat, f1, &parent), -ENOENT);
}

/* ---- readdir ---- */

#define NAMES 200

struct listing {
	int seen[NAMES + 100]; /* times each entry "nNNN" was listed */
	size_t calls;	       /* entries given to the callback */
	size_t stop_after;     /* stop after this many (0: never) */
	uint64_t cookie;       /* resume point after the last entry */
	uint64_t last_cookie;  /* to check cookies increase */
	int bad;	       /* a malformed entry */
	const uint64_t *ino;   /* expected inode of each "nNNN" */
};

static int on_entry(void *arg, const char *name, const struct stash_attr *a,
		    uint64_t next_off)
{
	struct listing *l = arg;
	unsigned n;

	if (sscanf(name, "n%u", &n) != 1 || n >= STASH_ARRAY_SIZE(l->seen) ||
	    next_off <= l->last_cookie || a->ino != l->ino[n])
		l->bad++;
	else
		l->seen[n]++;
	l->last_cookie = next_off;
	l->cookie = next_off;
	l->calls++;
	return l->stop_after && l->calls == l->stop_after ? 1 : 0;
}

static void name_of(unsigned i, char *buf, size_t size)
{
	snprintf(buf, size, "n%03u", i);
}

static void test_readdir(void **state)
{
	struct ctx *c = *state;
	struct listing l;
	uint64_t dir, ino[NAMES + 100];
	char name[16];

	begin(c);
	dir = mk(c, STASH_ROOT_INO, "dir", S_IFDIR | 0755);
	for (unsigned i = 0; i < NAMES; i++) {
		name_of(i, name, sizeof(name));
		ino[i] = mk(c, dir, name,
			    i % 3 ? S_IFREG | 0644 : S_IFDIR | 0755);
	}
	commit(c);

	/* the whole listing in one go */
	memset(&l, 0, sizeof(l));
	l.ino = ino;
	assert_int_equal(stash_cat_readdir(c->cat, dir, 0, on_entry, &l), 0);
	assert_int_equal(l.calls, NAMES);
	assert_int_equal(l.bad, 0);
	for (unsigned i = 0; i < NAMES; i++)
		assert_int_equal(l.seen[i], 1);

	/* in pieces of 7: stopping is not an error, cookies resume */
	memset(&l, 0, sizeof(l));
	l.ino = ino;
	for (int rounds = 0;; rounds++) {
		size_t before = l.calls;

		assert_true(rounds < NAMES);
		l.stop_after = l.calls + 7;
		assert_int_equal(
			stash_cat_readdir(c->cat, dir, l.cookie, on_entry, &l),
			0);
		if (l.calls == before)
			break;
	}
	assert_int_equal(l.calls, NAMES);
	assert_int_equal(l.bad, 0);
	for (unsigned i = 0; i < NAMES; i++)
		assert_int_equal(l.seen[i], 1);

	/* attributes come with the entries */
	{
		struct listing one = { .stop_after = 1, .ino = ino };

		assert_int_equal(
			stash_cat_readdir(c->cat, dir, 0, on_entry, &one), 0);
		assert_int_equal(one.calls, 1);
	}

	/*
	 * Stable while entries come and go: list half, then remove entries
	 * on both sides of the cookie, rename one, add new ones, and resume.
	 * Every entry present throughout is listed exactly once; removed
	 * entries not yet listed are not listed.
	 */
	memset(&l, 0, sizeof(l));
	l.ino = ino;
	l.stop_after = NAMES / 2;
	assert_int_equal(stash_cat_readdir(c->cat, dir, 0, on_entry, &l), 0);
	assert_int_equal(l.calls, NAMES / 2);
	{
		int listed_before[NAMES];
		unsigned gone_seen = 0, gone_unseen = 0, added;

		memcpy(listed_before, l.seen, sizeof(listed_before));
		begin(c);
		for (unsigned i = 0; i < NAMES; i += 5) {
			name_of(i, name, sizeof(name));
			assert_int_equal(
				stash_cat_del_dirent(c->cat, dir, name), 0);
			if (listed_before[i])
				gone_seen++;
			else
				gone_unseen++;
		}
		assert_true(gone_seen > 0 && gone_unseen > 0);
		for (added = NAMES; added < NAMES + 20; added++) {
			name_of(added, name, sizeof(name));
			ino[added] = mk(c, dir, name, S_IFREG | 0644);
		}
		commit(c);

		l.stop_after = 0;
		assert_int_equal(
			stash_cat_readdir(c->cat, dir, l.cookie, on_entry, &l),
			0);
		assert_int_equal(l.bad, 0);
		for (unsigned i = 0; i < NAMES; i++) {
			if (i % 5 == 0)
				assert_int_equal(l.seen[i], listed_before[i]);
			else
				assert_int_equal(l.seen[i], 1);
		}
		/* entries added during the listing: at most once each */
		for (unsigned i = NAMES; i < added; i++)
			assert_true(l.seen[i] <= 1);
		{
			size_t total = 0;

			for (unsigned i = 0; i < added; i++)
				total += (size_t)l.seen[i];
			assert_int_equal(l.calls, total);
			/* what was listed before plus what was left */
			assert_true(total >= NAMES - gone_unseen);
		}
	}

	/* an empty directory and a cookie past the end list nothing */
	memset(&l, 0, sizeof(l));
	l.ino = ino;
	begin(c);
	{
		uint64_t empty = mk(c, STASH_ROOT_INO, "empty", S_IFDIR | 0755);

		commit(c);
		assert_int_equal(
			stash_cat_readdir(c->cat, empty, 0, on_entry, &l), 0);
	}
	assert_int_equal(
		stash_cat_readdir(c->cat, dir, UINT32_MAX, on_entry, &l), 0);
	assert_int_equal(l.calls, 0);
}

/* ---- xattrs ---- */

static void test_xattrs(void **state)
{
	struct ctx *c = *state;
	uint64_t ino;
	char buf[256];
	const uint8_t bin[] = { 0, 1, 2, 0, 255, 0 };

	begin(c);
	ino = mk(c, STASH_ROOT_INO, "x", S_IFREG | 0644);
	assert_int_equal(
		stash_cat_getxattr(c->cat, ino, "user.a", buf, sizeof(buf)),
		-ENODATA);
	assert_int_equal(stash_cat_listxattr(c->cat, ino, buf, sizeof(buf)), 0);
	/* replace needs an existing one, create needs a free name */
	assert_int_equal(stash_cat_setxattr(c->cat, ino, "user.a", "1", 1,
					    XATTR_REPLACE),
			 -ENODATA);
	assert_int_equal(stash_cat_setxattr(c->cat, ino, "user.a", "one", 3,
					    XATTR_CREATE),
			 0);
	assert_int_equal(stash_cat_setxattr(c->cat, ino, "user.a", "uno", 3,
					    XATTR_CREATE),
			 -EEXIST);
	assert_int_equal(
		stash_cat_setxattr(c->cat, ino, "user.b", bin, sizeof(bin), 0),
		0);
	assert_int_equal(
		stash_cat_setxattr(c->cat, ino, "user.empty", NULL, 0, 0), 0);
	assert_int_equal(
		stash_cat_setxattr(c->cat, ino, "trusted.c", "c", 1, 0), 0);
	commit(c);
	reopen(c);

	assert_int_equal(
		stash_cat_getxattr(c->cat, ino, "user.a", buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "one", 3);
	assert_int_equal(
		stash_cat_getxattr(c->cat, ino, "user.b", buf, sizeof(buf)),
		sizeof(bin));
	assert_memory_equal(buf, bin, sizeof(bin));
	/* size 0 asks for the length; too small a buffer is -ERANGE */
	assert_int_equal(stash_cat_getxattr(c->cat, ino, "user.b", NULL, 0),
			 sizeof(bin));
	assert_int_equal(
		stash_cat_getxattr(c->cat, ino, "user.b", buf, sizeof(bin) - 1),
		-ERANGE);
	assert_int_equal(
		stash_cat_getxattr(c->cat, ino, "user.empty", buf, sizeof(buf)),
		0);
	assert_int_equal(stash_cat_getxattr(c->cat, ino, "user.empty", NULL, 0),
			 0);
	/* names are exact */
	assert_int_equal(
		stash_cat_getxattr(c->cat, ino, "user.", buf, sizeof(buf)),
		-ENODATA);

	/* the list: sorted, NUL-separated */
	{
		const char want[] = "trusted.c\0user.a\0user.b\0user.empty";

		assert_int_equal(stash_cat_listxattr(c->cat, ino, NULL, 0),
				 sizeof(want));
		assert_int_equal(
			stash_cat_listxattr(c->cat, ino, buf, sizeof(buf)),
			sizeof(want));
		assert_memory_equal(buf, want, sizeof(want));
		assert_int_equal(
			stash_cat_listxattr(c->cat, ino, buf, sizeof(want) - 1),
			-ERANGE);
		assert_int_equal(stash_cat_listxattr(c->cat, ino, buf, 3),
				 -ERANGE);
	}

	begin(c);
	/* replace, and upsert over an existing one */
	assert_int_equal(stash_cat_setxattr(c->cat, ino, "user.a", "eins", 4,
					    XATTR_REPLACE),
			 0);
	assert_int_equal(stash_cat_setxattr(c->cat, ino, "user.b", "B", 1, 0),
			 0);
	assert_int_equal(stash_cat_removexattr(c->cat, ino, "trusted.c"), 0);
	assert_int_equal(stash_cat_removexattr(c->cat, ino, "trusted.c"),
			 -ENODATA);
	assert_int_equal(stash_cat_removexattr(c->cat, ino, "user.zz"),
			 -ENODATA);
	commit(c);
	assert_int_equal(
		stash_cat_getxattr(c->cat, ino, "user.a", buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "eins", 4);
	assert_int_equal(
		stash_cat_getxattr(c->cat, ino, "user.b", buf, sizeof(buf)), 1);
	assert_int_equal(
		stash_cat_getxattr(c->cat, ino, "trusted.c", buf, sizeof(buf)),
		-ENODATA);

	/* xattrs belong to one inode and go with it */
	{
		uint64_t other;

		begin(c);
		other = mk(c, STASH_ROOT_INO, "y", S_IFREG | 0644);
		commit(c);
		assert_int_equal(
			stash_cat_listxattr(c->cat, other, buf, sizeof(buf)),
			0);
		assert_int_equal(stash_cat_getxattr(c->cat, other, "user.a",
						    buf, sizeof(buf)),
				 -ENODATA);
	}
	begin(c);
	assert_int_equal(stash_cat_del_dirent(c->cat, STASH_ROOT_INO, "x"), 0);
	assert_int_equal(stash_cat_delete_inode(c->cat, ino), 0);
	commit(c);
	assert_int_equal(stash_cat_listxattr(c->cat, ino, buf, sizeof(buf)), 0);
	assert_int_equal(
		stash_cat_getxattr(c->cat, ino, "user.a", buf, sizeof(buf)),
		-ENODATA);
}

/* ---- file maps and reference counts ---- */

/* A made-up chunk: id from a tag, location in pack 1 + tag % 3. */
struct fake {
	uint8_t id[STASH_ID_LEN];
	uint32_t raw; /* plaintext length */
	struct stash_chunk_loc loc;
};

static struct fake fake_chunk(unsigned tag, uint32_t raw)
{
	struct fake f;

	memset(&f, 0, sizeof(f));
	memset(f.id, (int)tag, sizeof(f.id));
	stash_le32enc(f.id, tag * 2654435761u);
	f.raw = raw;
	f.loc.pack = 1 + tag % 3;
	f.loc.off = 24 + 1000 * tag;
	f.loc.len = raw / 2 + tag; /* "compressed" */
	return f;
}

/* Build a file map from a list of chunks laid end to end from off. */
static size_t map_of(struct stash_extent *ext, uint64_t off,
		     const struct fake *const *chunks, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ext[i].off = off;
		ext[i].len = chunks[i]->raw;
		ext[i].hole = false;
		memcpy(ext[i].id, chunks[i]->id, STASH_ID_LEN);
		ext[i].loc = chunks[i]->loc;
		off += chunks[i]->raw;
	}
	return n;
}

struct got {
	struct stash_extent v[32];
	size_t n;
};

static int got_one(void *arg, const struct stash_extent *e)
{
	struct got *g = arg;

	if (g->n == STASH_ARRAY_SIZE(g->v))
		return -E2BIG;
	g->v[g->n++] = *e;
	return 0;
}

/* The file map of ino must be exactly chunks[] laid from 0. */
static void expect_map(struct ctx *c, uint64_t ino,
		       const struct fake *const *chunks, size_t n)
{
	struct got g = { .n = 0 };
	uint64_t off = 0;

	assert_int_equal(stash_cat_load_extents(c->cat, ino, got_one, &g), 0);
	assert_int_equal(g.n, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(g.v[i].off, off);
		assert_int_equal(g.v[i].len, chunks[i]->raw);
		assert_memory_equal(g.v[i].id, chunks[i]->id, STASH_ID_LEN);
		assert_int_equal(g.v[i].loc.pack, chunks[i]->loc.pack);
		assert_int_equal(g.v[i].loc.off, chunks[i]->loc.off);
		assert_int_equal(g.v[i].loc.len, chunks[i]->loc.len);
		off += chunks[i]->raw;
	}
}

/* Expected figures, from the list of chunks and their live/dead state. */
static void expect_stats(struct ctx *c, const struct fake *all, size_t n,
			 const int *refs, uint64_t packs)
{
	struct stash_cat_stats s;
	uint64_t live = 0, raw = 0, stored = 0, dead = 0, dead_bytes = 0;

	for (size_t i = 0; i < n; i++) {
		if (refs[i] > 0) {
			live++;
			raw += all[i].raw;
			stored += all[i].loc.len;
		} else if (refs[i] == 0) {
			dead++;
			dead_bytes += all[i].loc.len;
		}
		/* refs < 0: never added to the catalog */
	}
	assert_int_equal(stash_cat_stats(c->cat, &s), 0);
	assert_int_equal(s.chunks, live);
	assert_int_equal(s.chunk_raw_bytes, raw);
	assert_int_equal(s.chunk_stored_bytes, stored);
	assert_int_equal(s.dead_chunks, dead);
	assert_int_equal(s.dead_bytes, dead_bytes);
	assert_int_equal(s.packs, packs);
}

static void set_size(struct ctx *c, uint64_t ino, uint64_t size)
{
	struct stash_attr a;

	assert_int_equal(stash_cat_getattr(c->cat, ino, &a), 0);
	a.size = size;
	assert_int_equal(stash_cat_setattr(c->cat, &a), 0);
}

static void test_extents_refcount(void **state)
{
	struct ctx *c = *state;
	struct fake k[8];
	const struct fake *A[] = { &k[0], &k[1], &k[2] };
	const struct fake *B[] = { &k[1], &k[2], &k[3] };
	const struct fake *Z[] = { &k[4], &k[4], &k[4], &k[4] };
	const struct fake *A2[] = { &k[0], &k[5] };
	const struct fake *Z2[] = { &k[4], &k[4] };
	const struct fake *B2[] = { &k[3], &k[6] };
	/* -1: not in the catalog; else the expected reference count */
	int refs[8] = { -1, -1, -1, -1, -1, -1, -1, -1 };
	struct stash_extent ext[8];
	struct stash_cat_stats s;
	uint64_t a, b, z;
	size_t n;

	for (unsigned i = 0; i < 8; i++)
		k[i] = fake_chunk(i + 1, 4096 * (i + 1));
	/* k[4] a "chunk of zeros" used again and again */
	begin(c);
	a = mk(c, STASH_ROOT_INO, "a", S_IFREG | 0644);
	b = mk(c, STASH_ROOT_INO, "b", S_IFREG | 0644);
	z = mk(c, STASH_ROOT_INO, "z", S_IFREG | 0644);
	/* an empty file map is fine */
	assert_int_equal(stash_cat_replace_extents(c->cat, a, 0, NULL, 0), 0);
	commit(c);
	expect_map(c, a, NULL, 0);
	expect_stats(c, k, 8, refs, 0);
	assert_int_equal(stash_cat_find_chunk(c->cat, k[0].id, &ext[0].loc),
			 -ENOENT);

	/* two files sharing two chunks */
	begin(c);
	n = map_of(ext, 0, A, 3);
	assert_int_equal(stash_cat_replace_extents(c->cat, a, 0, ext, n), 0);
	set_size(c, a, ext[2].off + ext[2].len);
	n = map_of(ext, 0, B, 3);
	assert_int_equal(stash_cat_replace_extents(c->cat, b, 0, ext, n), 0);
	set_size(c, b, ext[2].off + ext[2].len);
	/* one file using one chunk four times */
	n = map_of(ext, 0, Z, 4);
	assert_int_equal(stash_cat_replace_extents(c->cat, z, 0, ext, n), 0);
	set_size(c, z, 4 * k[4].raw);
	commit(c);
	refs[0] = 1;
	refs[1] = refs[2] = 2;
	refs[3] = 1;
	refs[4] = 4;
	expect_map(c, a, A, 3);
	expect_map(c, b, B, 3);
	expect_map(c, z, Z, 4);
	/* packs 1 + tag % 3 for tags 1..5: 2, 3, 1 */
	expect_stats(c, k, 8, refs, 3);
	assert_int_equal(stash_cat_stats(c->cat, &s), 0);
	assert_int_equal(s.inodes, 4);
	assert_int_equal(s.files, 3);
	assert_int_equal(s.logical_bytes,
			 (k[0].raw + k[1].raw + k[2].raw) +
				 (k[1].raw + k[2].raw + k[3].raw) +
				 4 * k[4].raw);
	{
		struct stash_chunk_loc loc;

		assert_int_equal(stash_cat_find_chunk(c->cat, k[3].id, &loc),
				 0);
		assert_int_equal(loc.pack, k[3].loc.pack);
		assert_int_equal(loc.off, k[3].loc.off);
		assert_int_equal(loc.len, k[3].loc.len);
	}

	/* replace a from its second chunk on: k[1], k[2] lose one ref */
	begin(c);
	n = map_of(ext, k[0].raw, A2 + 1, 1);
	assert_int_equal(stash_cat_replace_extents(c->cat, a, k[0].raw, ext, n),
			 0);
	commit(c);
	refs[1] = refs[2] = 1;
	refs[5] = 1;
	expect_map(c, a, A2, 2);
	expect_stats(c, k, 8, refs, 3);

	/* a replace from an offset inside an extent keeps that extent */
	begin(c);
	assert_int_equal(stash_cat_replace_extents(c->cat, a, 1, NULL, 0), 0);
	commit(c);
	refs[5] = 0;
	{
		const struct fake *only[] = { &k[0] };

		expect_map(c, a, only, 1);
	}
	expect_stats(c, k, 8, refs, 3);
	/* and a dead chunk comes back to life when used again */
	begin(c);
	n = map_of(ext, k[0].raw, A2 + 1, 1);
	assert_int_equal(stash_cat_replace_extents(c->cat, a, k[0].raw, ext, n),
			 0);
	commit(c);
	refs[5] = 1;
	expect_map(c, a, A2, 2);
	expect_stats(c, k, 8, refs, 3);

	/* z drops two of its four uses of the same chunk */
	begin(c);
	assert_int_equal(
		stash_cat_replace_extents(c->cat, z, 2 * k[4].raw, NULL, 0), 0);
	commit(c);
	refs[4] = 2;
	expect_map(c, z, Z2, 2);
	expect_stats(c, k, 8, refs, 3);

	/* b: replace from 0 with a map that keeps one chunk */
	begin(c);
	n = map_of(ext, 0, B2, 2);
	assert_int_equal(stash_cat_replace_extents(c->cat, b, 0, ext, n), 0);
	commit(c);
	refs[1] = refs[2] = 0;
	refs[3] = 1;
	refs[6] = 1;
	expect_map(c, b, B2, 2);
	expect_stats(c, k, 8, refs, 3);
	reopen(c);
	expect_stats(c, k, 8, refs, 3);

	/* deleting inodes drops every reference they held */
	begin(c);
	assert_int_equal(stash_cat_del_dirent(c->cat, STASH_ROOT_INO, "z"), 0);
	assert_int_equal(stash_cat_delete_inode(c->cat, z), 0);
	commit(c);
	refs[4] = 0;
	expect_stats(c, k, 8, refs, 3);
	expect_map(c, z, NULL, 0);

	begin(c);
	assert_int_equal(stash_cat_del_dirent(c->cat, STASH_ROOT_INO, "b"), 0);
	assert_int_equal(stash_cat_delete_inode(c->cat, b), 0);
	assert_int_equal(stash_cat_del_dirent(c->cat, STASH_ROOT_INO, "a"), 0);
	assert_int_equal(stash_cat_delete_inode(c->cat, a), 0);
	commit(c);
	for (int i = 0; i < 8; i++)
		if (refs[i] > 0)
			refs[i] = 0;
	expect_stats(c, k, 8, refs, 3);
	assert_int_equal(stash_cat_stats(c->cat, &s), 0);
	assert_int_equal(s.inodes, 1);
	assert_int_equal(s.files, 0);
	assert_int_equal(s.logical_bytes, 0);
	/* dead chunks are still found, for gc and dedup to decide */
	assert_int_equal(stash_cat_find_chunk(c->cat, k[0].id, &ext[0].loc), 0);
	assert_int_equal(stash_cat_check(c->cat), 0);
}

/* A rolled back replace leaves the references as they were. */
static void test_extents_rollback(void **state)
{
	struct ctx *c = *state;
	struct fake k[3];
	const struct fake *A[] = { &k[0], &k[1] };
	const struct fake *B[] = { &k[2], &k[2] };
	int refs[3] = { 1, 1, -1 };
	struct stash_extent ext[4];
	uint64_t a;
	size_t n;

	for (unsigned i = 0; i < 3; i++)
		k[i] = fake_chunk(40 + i, 1000 + i);
	begin(c);
	a = mk(c, STASH_ROOT_INO, "a", S_IFREG | 0644);
	n = map_of(ext, 0, A, 2);
	assert_int_equal(stash_cat_replace_extents(c->cat, a, 0, ext, n), 0);
	commit(c);
	begin(c);
	n = map_of(ext, 0, B, 2);
	assert_int_equal(stash_cat_replace_extents(c->cat, a, 0, ext, n), 0);
	stash_cat_rollback(c->cat);
	expect_map(c, a, A, 2);
	expect_stats(c, k, 3, refs, 2);
}

static void test_purge_orphans(void **state)
{
	struct ctx *c = *state;
	struct fake k[2];
	const struct fake *M[] = { &k[0], &k[1] };
	struct stash_extent ext[2];
	struct stash_attr a;
	uint64_t named, orphan, odir;
	int refs[2];
	char buf[8];

	k[0] = fake_chunk(70, 5000);
	k[1] = fake_chunk(71, 6000);
	begin(c);
	named = mk(c, STASH_ROOT_INO, "named", S_IFREG | 0644);
	orphan = mk(c, 0, NULL, S_IFREG | 0644);
	/* an (empty) directory without a name */
	odir = mk(c, 0, NULL, S_IFDIR | 0755);
	map_of(ext, 0, M, 2);
	assert_int_equal(stash_cat_replace_extents(c->cat, named, 0, ext, 1),
			 0);
	assert_int_equal(stash_cat_replace_extents(c->cat, orphan, 0, ext, 2),
			 0);
	assert_int_equal(
		stash_cat_setxattr(c->cat, orphan, "user.x", "1", 1, 0), 0);
	commit(c);
	refs[0] = 2;
	refs[1] = 1;
	expect_stats(c, k, 2, refs, 2);

	/* nothing to do is fine too */
	begin(c);
	assert_int_equal(stash_cat_purge_orphans(c->cat), 0);
	commit(c);
	assert_int_equal(stash_cat_getattr(c->cat, orphan, &a), -ENOENT);
	assert_int_equal(stash_cat_getattr(c->cat, odir, &a), -ENOENT);
	assert_int_equal(
		stash_cat_getxattr(c->cat, orphan, "user.x", buf, sizeof(buf)),
		-ENODATA);
	refs[0] = 1;
	refs[1] = 0;
	expect_stats(c, k, 2, refs, 2);
	/* the named file and the root stay */
	assert_int_equal(stash_cat_getattr(c->cat, named, &a), 0);
	assert_int_equal(stash_cat_getattr(c->cat, STASH_ROOT_INO, &a), 0);
	/* a second pass finds nothing more */
	begin(c);
	assert_int_equal(stash_cat_purge_orphans(c->cat), 0);
	commit(c);
	assert_int_equal(stash_cat_getattr(c->cat, named, &a), 0);
	assert_int_equal(stash_cat_check(c->cat), 0);
}

static void test_check(void **state)
{
	struct ctx *c = *state;
	char name[32];

	begin(c);
	for (int i = 0; i < 500; i++) {
		snprintf(name, sizeof(name), "file-%04d", i);
		mk(c, STASH_ROOT_INO, name, S_IFREG | 0644);
	}
	commit(c);
	assert_int_equal(stash_cat_check(c->cat), 0);
	assert_int_equal(stash_cat_checkpoint(c->cat), 0);
	/* a durable commit */
	begin(c);
	mk(c, STASH_ROOT_INO, "durable", S_IFREG | 0644);
	assert_int_equal(stash_cat_commit(c->cat, 1), 0);
	reopen(c);
	assert_int_equal(stash_cat_check(c->cat), 0);
	{
		struct stash_attr a;

		assert_int_equal(
			stash_cat_lookup(c->cat, STASH_ROOT_INO, "durable", &a),
			0);
		assert_int_equal(stash_cat_lookup(c->cat, STASH_ROOT_INO,
						  "file-0499", &a),
				 0);
	}
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_open_reopen),	  T(test_wrong_key),
		T(test_inodes),		  T(test_dirents),
		T(test_readdir),	  T(test_xattrs),
		T(test_extents_refcount), T(test_extents_rollback),
		T(test_purge_orphans),	  T(test_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
