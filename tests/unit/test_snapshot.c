/*
 * test_snapshot.c - unit tests for snapshots through the store API, no
 * FUSE (store/snapshot.c and store/catalog_snap.c under store.h): names
 * and their errors, ids never reused, the listing order and resuming it;
 * a snapshot's tree read through every read call equals the live tree at
 * snapshot time and stays so while the live tree changes; every write
 * call on a snapshot inode fails with -EROFS; unflushed writes and
 * unlinked open files are not in a snapshot, and snapshots taken while
 * a thread rewrites and appends hold whole commits only; chunk reference
 * counts as seen by stash_store_stats and by verify; persistence across
 * a close and reopen.
 *
 * The tree of a snapshot is compared with the live one as a "dump": one
 * byte string per tree (every attribute, xattr, link target and file
 * byte, in readdir order), so any difference shows as a mismatch at an
 * offset, printed with its context. Each test works in its own mkdtemp
 * directory under /tmp, removed after; STASH_TEST_FILTER=<test name>
 * runs one test.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"
#include "store.h"
#include "testutil.h"
#include "verify.h"

#define MiB (1024u * 1024u)
#define KiB 1024u

struct ctx {
	struct test_store ts;	/* the scratch store's folder and secret */
	struct stash_store *st; /* open store, closed by teardown */
	uint64_t dir;		/* "t" in the root: an empty directory */
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	if (test_store_make_open(&c->ts, "test_snapshot", NULL, &c->st,
				 &c->dir)) {
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

/* ---- helpers ---- */

/* Pseudo-random bytes from seed (xorshift64*), malloc'd. */
static uint8_t *random_bytes(uint64_t seed, size_t len)
{
	uint8_t *buf = malloc(len ? len : 1);
	uint64_t x = seed * 2 + 1;

	assert_non_null(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(test_rng_next(&x) >> 56);
	return buf;
}

static uint64_t mknode(struct ctx *c, uint64_t parent, const char *name,
		       uint32_t mode, uint64_t rdev)
{
	struct stash_attr a;

	assert_int_equal(stash_store_mknod(c->st, parent, name, mode, rdev,
					   1000, 1000, &a),
			 0);
	return a.ino;
}

static uint64_t mkfile(struct ctx *c, uint64_t parent, const char *name)
{
	return mknode(c, parent, name, S_IFREG | 0644, 0);
}

static uint64_t mkdir_in(struct ctx *c, uint64_t parent, const char *name)
{
	struct stash_attr a;

	assert_int_equal(
		stash_store_mkdir(c->st, parent, name, 0755, 1000, 1000, &a),
		0);
	return a.ino;
}

static uint64_t ino_of(struct ctx *c, uint64_t parent, const char *name)
{
	struct stash_attr a;

	assert_int_equal(stash_store_lookup(c->st, parent, name, &a), 0);
	return a.ino;
}

static struct stash_attr attr_of(struct ctx *c, uint64_t ino)
{
	struct stash_attr a;

	assert_int_equal(stash_store_getattr(c->st, ino, &a), 0);
	return a;
}

/* Write len bytes at off through a handle of its own, and release. */
static void put(struct ctx *c, uint64_t ino, const void *buf, size_t len,
		uint64_t off)
{
	test_file_put(c->st, ino, buf, len, off);
}

/* The whole content of ino, malloc'd; its length into *len. */
static uint8_t *get(struct ctx *c, uint64_t ino, size_t *len)
{
	struct stash_attr a = attr_of(c, ino);
	struct stash_file *f;
	uint8_t *buf = malloc(a.size + 1);
	size_t off = 0;

	assert_non_null(buf);
	assert_int_equal(stash_file_open(c->st, ino, &f), 0);
	while (off < a.size) {
		size_t step = STASH_MIN((size_t)100000, a.size - off);

		assert_int_equal(
			stash_file_read(c->st, f, buf + off, step, off),
			(ssize_t)step);
		off += step;
	}
	/* and nothing past the end */
	assert_int_equal(stash_file_read(c->st, f, buf + off, 1, off), 0);
	assert_int_equal(stash_file_release(c->st, f), 0);
	*len = off;
	return buf;
}

static void expect_content(struct ctx *c, uint64_t ino, const void *want,
			   size_t len)
{
	size_t got_len;
	uint8_t *got = get(c, ino, &got_len);

	assert_int_equal(got_len, len);
	if (len)
		assert_memory_equal(got, want, len);
	free(got);
}

static void stats(struct ctx *c, struct stash_store_stats *s)
{
	assert_int_equal(stash_store_stats(c->st, s), 0);
}

static void expect_intact(struct ctx *c)
{
	assert_int_equal(stash_store_check(c->st), 0);
}

static void print_line(void *arg, const char *line)
{
	(void)arg;
	print_message("  verify: %s\n", line);
}

/* verify must find nothing wrong: it counts chunk references too, and a
 * snapshot's file maps name chunks as the live tree's do. */
static void expect_verify_clean(struct ctx *c)
{
	struct stash_verify_opts full = { .flags = STASH_VERIFY_FULL };
	struct stash_verify_opts talk = { .report = print_line };
	struct stash_verify_result r;

	expect_intact(c);
	assert_int_equal(stash_store_verify(c->st, &full, &r), 0);
	if (r.problems) {
		print_message("verify: %" PRIu64 " problems (%" PRIu64
			      " reference counts wrong):\n",
			      r.problems, r.ref_mismatches);
		assert_int_equal(stash_store_verify(c->st, &talk, &r), 0);
	}
	assert_int_equal(r.problems, 0);
}

/* ---- dumps: a tree as one byte string ---- */

struct dump {
	char *buf;
	size_t len, cap;
};

static void dump_add(struct dump *d, const void *p, size_t n)
{
	if (d->len + n > d->cap) {
		size_t cap = STASH_MAX(2 * d->cap, d->len + n + 4096);

		d->buf = realloc(d->buf, cap);
		assert_non_null(d->buf);
		d->cap = cap;
	}
	memcpy(d->buf + d->len, p, n);
	d->len += n;
}

__attribute__((format(printf, 2, 3))) static void
dump_printf(struct dump *d, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(line));
	dump_add(d, line, (size_t)n);
}

struct entry {
	char name[STASH_NAME_MAX + 1];
	struct stash_attr attr;
	uint64_t next; /* cookie after it */
};

struct entries {
	struct entry *v;
	size_t n, cap;
	size_t stop_after; /* 0: all */
};

static int collect(void *arg, const char *name, const struct stash_attr *a,
		   uint64_t next)
{
	struct entries *l = arg;

	if (l->stop_after && l->n == l->stop_after)
		return 1;
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		assert_non_null(l->v);
	}
	snprintf(l->v[l->n].name, sizeof(l->v[0].name), "%s", name);
	l->v[l->n].attr = *a;
	l->v[l->n].next = next;
	l->n++;
	return 0;
}

static void assert_attr_equal(const struct stash_attr *a,
			      const struct stash_attr *b)
{
	assert_int_equal(a->ino, b->ino);
	assert_int_equal(a->mode, b->mode);
	assert_int_equal(a->nlink, b->nlink);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->gid, b->gid);
	assert_int_equal(a->size, b->size);
	assert_int_equal(a->rdev, b->rdev);
	assert_int_equal(a->atime, b->atime);
	assert_int_equal(a->mtime, b->mtime);
	assert_int_equal(a->ctime, b->ctime);
}

/*
 * Append the tree at ino (of snapshot snap, 0 for the live tree) to d:
 * its attributes with the live inode number (the snapshot's with the
 * snapshot id masked off; that the id is there is checked here), its
 * xattrs, its content, target or entries. The root's mtime is left out:
 * a snapshot's root has the snapshot's creation time.
 */
static void dump_tree(struct ctx *c, struct dump *d, uint64_t ino,
		      uint64_t snap, const char *path, bool root)
{
	struct stash_attr a = attr_of(c, ino);
	ssize_t n;
	char *names;

	assert_int_equal(a.ino, ino);
	assert_int_equal(stash_ino_snap(a.ino), snap);
	dump_printf(d,
		    "%s ino=%" PRIu64 " mode=%o nlink=%u uid=%u gid=%u"
		    " size=%" PRIu64 " rdev=%" PRIu64 " atime=%" PRId64
		    " mtime=%" PRId64 " ctime=%" PRId64 "\n",
		    path, stash_ino_base(a.ino), a.mode, a.nlink, a.uid, a.gid,
		    a.size, a.rdev, a.atime, root ? (int64_t)0 : a.mtime,
		    a.ctime);

	n = stash_store_listxattr(c->st, ino, NULL, 0);
	assert_true(n >= 0);
	names = malloc((size_t)n + 1);
	assert_non_null(names);
	assert_int_equal(stash_store_listxattr(c->st, ino, names, (size_t)n),
			 n);
	for (char *p = names; p < names + n; p += strlen(p) + 1) {
		ssize_t vlen = stash_store_getxattr(c->st, ino, p, NULL, 0);
		char *v;

		assert_true(vlen >= 0);
		v = malloc((size_t)vlen + 1);
		assert_non_null(v);
		assert_int_equal(
			stash_store_getxattr(c->st, ino, p, v, (size_t)vlen),
			vlen);
		if (vlen > 1) /* (size 0 asks for the length) */
			assert_int_equal(stash_store_getxattr(c->st, ino, p, v,
							      (size_t)vlen - 1),
					 -ERANGE);
		dump_printf(d, "  xattr %s len=%zd\n", p, vlen);
		dump_add(d, v, (size_t)vlen);
		free(v);
	}
	assert_int_equal(
		stash_store_getxattr(c->st, ino, "user.never-set", NULL, 0),
		-ENODATA);
	free(names);

	if (S_ISREG(a.mode)) {
		size_t len;
		uint8_t *data = get(c, ino, &len);

		assert_int_equal(len, a.size);
		dump_printf(d, "  data len=%zu\n", len);
		dump_add(d, data, len);
		free(data);
	} else if (S_ISLNK(a.mode)) {
		char target[4096];
		ssize_t tl = stash_store_readlink(c->st, ino, target,
						  sizeof(target));

		assert_true(tl > 0);
		assert_int_equal(tl, a.size);
		dump_printf(d, "  target len=%zd\n", tl);
		dump_add(d, target, (size_t)tl);
	} else if (S_ISDIR(a.mode)) {
		struct entries l = { 0 };

		assert_int_equal(
			stash_store_readdir(c->st, ino, 0, collect, &l), 0);
		dump_printf(d, "  entries=%zu\n", l.n);
		for (size_t i = 0; i < l.n; i++) {
			struct stash_attr b;
			char sub[4096];

			/* lookup agrees with readdir */
			assert_int_equal(
				stash_store_lookup(c->st, ino, l.v[i].name, &b),
				0);
			assert_attr_equal(&b, &l.v[i].attr);
			snprintf(sub, sizeof(sub), "%s/%s", path, l.v[i].name);
			dump_tree(c, d, l.v[i].attr.ino, snap, sub, false);
		}
		free(l.v);
	}
}

static void dump_live(struct ctx *c, struct dump *d)
{
	d->len = 0;
	dump_tree(c, d, STASH_ROOT_INO, 0, "", true);
}

static void dump_snap(struct ctx *c, const char *name, struct dump *d)
{
	struct stash_snapshot s;

	assert_int_equal(stash_snap_find(c->st, name, &s), 0);
	assert_int_equal(s.root, stash_ino_make(s.id, STASH_ROOT_INO));
	d->len = 0;
	dump_tree(c, d, s.root, s.id, "", true);
}

static bool dump_equal(const struct dump *a, const struct dump *b)
{
	size_t i = 0;

	if (a->len == b->len && !memcmp(a->buf, b->buf, a->len))
		return true;
	while (i < a->len && i < b->len && a->buf[i] == b->buf[i])
		i++;
	{
		size_t from = i > 300 ? i - 300 : 0;
		size_t na = STASH_MIN(a->len, i + 200) - from;
		size_t nb = STASH_MIN(b->len, i + 200) - from;

		print_message("dumps differ at byte %zu (lengths %zu, %zu):\n"
			      "--- first:\n%.*s\n--- second:\n%.*s\n",
			      i, a->len, b->len, (int)na, a->buf + from,
			      (int)nb, b->buf + from);
	}
	return false;
}

/* ---- a tree with one of everything ---- */

#define BIG_LEN (3 * MiB + 12345)
#define INNER_LEN (200 * KiB)
#define SPARSE_AT (5 * MiB)
#define SPARSE_SIZE (8 * MiB)

struct tree {
	uint64_t big, sparse, empty, small, sub, inner, deeper, x, sym, dangle,
		fifo, chr;
	uint8_t *big_data, *inner_data;
};

/*
 * Under t: big (several chunks, xattrs), sparse (data, a hole, data, a
 * trailing hole), empty, small (hard-linked as sub/small-link), sub/
 * (xattr) with inner and deeper/x, sym -> sub/inner, dangle -> nowhere,
 * a FIFO and a character device, modes and times set.
 */
static void make_tree(struct ctx *c, struct tree *t)
{
	struct stash_attr in = { 0 }, out;
	uint8_t bin[1000];

	t->big_data = random_bytes(1, BIG_LEN);
	t->inner_data = random_bytes(2, INNER_LEN);
	t->big = mkfile(c, c->dir, "big");
	put(c, t->big, t->big_data, BIG_LEN, 0);
	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (uint8_t)(i * 7);
	assert_int_equal(
		stash_store_setxattr(c->st, t->big, "user.a", "1", 1, 0), 0);
	assert_int_equal(stash_store_setxattr(c->st, t->big, "user.b", bin,
					      sizeof(bin), 0),
			 0);
	assert_int_equal(
		stash_store_setxattr(c->st, t->big, "trusted.empty", "", 0, 0),
		0);

	t->sparse = mkfile(c, c->dir, "sparse");
	put(c, t->sparse, t->big_data, 1000, 0);
	put(c, t->sparse, t->inner_data, 1000, SPARSE_AT);
	in.size = SPARSE_SIZE;
	assert_int_equal(stash_store_setattr(c->st, t->sparse, &in,
					     STASH_SET_SIZE, &out),
			 0);
	assert_int_equal(out.size, SPARSE_SIZE);

	t->empty = mkfile(c, c->dir, "empty");
	t->small = mkfile(c, c->dir, "small");
	put(c, t->small, "hello\n", 6, 0);
	in.mode = 0640;
	in.mtime = 981173106000000123; /* 2001-02-03, with nanoseconds */
	assert_int_equal(stash_store_setattr(c->st, t->small, &in,
					     STASH_SET_MODE | STASH_SET_MTIME,
					     &out),
			 0);

	t->sub = mkdir_in(c, c->dir, "sub");
	assert_int_equal(
		stash_store_setxattr(c->st, t->sub, "user.dir", "d", 1, 0), 0);
	t->inner = mkfile(c, t->sub, "inner");
	put(c, t->inner, t->inner_data, INNER_LEN, 0);
	assert_int_equal(
		stash_store_link(c->st, t->small, t->sub, "small-link", &out),
		0);
	assert_int_equal(out.nlink, 2);
	t->deeper = mkdir_in(c, t->sub, "deeper");
	t->x = mkfile(c, t->deeper, "x");
	put(c, t->x, "x", 1, 0);

	assert_int_equal(stash_store_symlink(c->st, c->dir, "sym", "sub/inner",
					     1000, 1000, &out),
			 0);
	t->sym = out.ino;
	assert_int_equal(stash_store_symlink(c->st, c->dir, "dangle",
					     "/nonexistent/x", 1000, 1000,
					     &out),
			 0);
	t->dangle = out.ino;
	t->fifo = mknode(c, c->dir, "fifo", S_IFIFO | 0600, 0);
	t->chr = mknode(c, c->dir, "null", S_IFCHR | 0666, makedev(1, 3));
}

static void tree_free(struct tree *t)
{
	free(t->big_data);
	free(t->inner_data);
}

/* ---- names, ids, listing ---- */

struct snaps {
	struct stash_snapshot v[128];
	size_t n;
	size_t stop_after; /* 0: all */
};

static int collect_snap(void *arg, const struct stash_snapshot *s)
{
	struct snaps *l = arg;

	if (l->stop_after && l->n == l->stop_after)
		return 42;
	assert_true(l->n < STASH_ARRAY_SIZE(l->v));
	l->v[l->n++] = *s;
	return 0;
}

static void list_snaps(struct ctx *c, uint64_t after, struct snaps *l)
{
	memset(l, 0, sizeof(*l));
	assert_int_equal(stash_snap_list(c->st, after, collect_snap, l), 0);
}

static void test_names(void **state)
{
	struct ctx *c = *state;
	struct stash_snapshot a, b, s, d;
	struct snaps l;
	char long_name[STASH_NAME_MAX + 2];
	const char *bad[] = { "", ".", "..", "a/b", "/", "a/", long_name };
	int64_t before = stash_wall_ns(), after;

	memset(long_name, 'n', STASH_NAME_MAX + 1);
	long_name[STASH_NAME_MAX + 1] = '\0';

	list_snaps(c, 0, &l);
	assert_int_equal(l.n, 0);
	assert_int_equal(stash_snap_create(c->st, "a", &a), 0);
	after = stash_wall_ns();
	assert_string_equal(a.name, "a");
	assert_true(a.id >= 1);
	assert_int_equal(a.root, stash_ino_make(a.id, STASH_ROOT_INO));
	assert_true(a.created >= before && a.created <= after);
	/* its root carries the creation time as mtime */
	assert_int_equal(attr_of(c, a.root).mtime, a.created);
	assert_true(S_ISDIR(attr_of(c, a.root).mode));

	assert_int_equal(stash_snap_find(c->st, "a", &s), 0);
	assert_int_equal(s.id, a.id);
	assert_string_equal(s.name, "a");
	assert_int_equal(s.created, a.created);
	assert_int_equal(s.root, a.root);

	/* bad names: refused, nothing made */
	for (size_t i = 0; i < STASH_ARRAY_SIZE(bad); i++) {
		assert_int_equal(stash_snap_create(c->st, bad[i], &s), -EINVAL);
		assert_int_equal(stash_snap_rename(c->st, "a", bad[i]),
				 -EINVAL);
		/* no snapshot can have such a name */
		assert_true(stash_snap_find(c->st, bad[i], &s) < 0);
		assert_true(stash_snap_delete(c->st, bad[i]) < 0);
	}
	/* the longest name and odd bytes are fine */
	long_name[STASH_NAME_MAX] = '\0';
	assert_int_equal(stash_snap_create(c->st, long_name, &s), 0);
	assert_int_equal(stash_snap_find(c->st, long_name, &d), 0);
	assert_int_equal(d.id, s.id);
	assert_int_equal(stash_snap_delete(c->st, long_name), 0);
	assert_int_equal(stash_snap_create(c->st, " sp\tace\n\xff", &s), 0);
	assert_int_equal(stash_snap_find(c->st, " sp\tace\n\xff", &d), 0);
	assert_int_equal(stash_snap_delete(c->st, " sp\tace\n\xff"), 0);
	list_snaps(c, 0, &l);
	assert_int_equal(l.n, 1);

	/* taken names, unknown names */
	assert_int_equal(stash_snap_create(c->st, "a", &s), -EEXIST);
	assert_int_equal(stash_snap_find(c->st, "nope", &s), -ENOENT);
	assert_int_equal(stash_snap_delete(c->st, "nope"), -ENOENT);
	assert_int_equal(stash_snap_rename(c->st, "nope", "other"), -ENOENT);
	assert_int_equal(stash_snap_create(c->st, "b", &b), 0);
	assert_true(b.id > a.id);
	assert_int_equal(stash_snap_rename(c->st, "a", "b"), -EEXIST);
	assert_int_equal(stash_snap_find(c->st, "a", &s), 0);
	assert_int_equal(s.id, a.id);
	/* a rename onto itself changes nothing */
	assert_int_equal(stash_snap_rename(c->st, "a", "a"), 0);

	/* rename keeps id, time and tree */
	assert_int_equal(stash_snap_rename(c->st, "a", "a2"), 0);
	assert_int_equal(stash_snap_find(c->st, "a", &s), -ENOENT);
	assert_int_equal(stash_snap_find(c->st, "a2", &s), 0);
	assert_int_equal(s.id, a.id);
	assert_int_equal(s.created, a.created);
	assert_int_equal(s.root, a.root);
	assert_int_equal(attr_of(c, s.root).mtime, a.created);
	/* the old name is free again */
	assert_int_equal(stash_snap_create(c->st, "a", &d), 0);
	assert_true(d.id > b.id);

	/* delete: gone, its inodes too, and its id is not reused */
	assert_int_equal(stash_snap_delete(c->st, "a"), 0);
	assert_int_equal(stash_snap_find(c->st, "a", &s), -ENOENT);
	assert_int_equal(stash_snap_delete(c->st, "a"), -ENOENT);
	{
		struct stash_attr x;

		assert_int_equal(stash_store_getattr(c->st, d.root, &x),
				 -ENOENT);
		assert_int_equal(stash_store_lookup(c->st, d.root, "t", &x),
				 -ENOENT);
	}
	assert_int_equal(stash_snap_create(c->st, "a", &s), 0);
	assert_true(s.id > d.id);
	/* also not after a reopen (AUTOINCREMENT) */
	assert_int_equal(stash_snap_delete(c->st, "a"), 0);
	store_reopen(c);
	assert_int_equal(stash_snap_create(c->st, "a", &d), 0);
	assert_true(d.id > s.id);

	/* listing: oldest first, names and times as made */
	list_snaps(c, 0, &l);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.v[0].name, "a2");
	assert_int_equal(l.v[0].id, a.id);
	assert_int_equal(l.v[0].created, a.created);
	assert_int_equal(l.v[0].root, a.root);
	assert_string_equal(l.v[1].name, "b");
	assert_int_equal(l.v[1].id, b.id);
	assert_string_equal(l.v[2].name, "a");
	assert_int_equal(l.v[2].id, d.id);
	/* resumed after an id */
	list_snaps(c, a.id, &l);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.v[0].id, b.id);
	list_snaps(c, b.id, &l);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].id, d.id);
	list_snaps(c, d.id, &l);
	assert_int_equal(l.n, 0);
	/* an id between two (deleted ones) resumes at the next */
	list_snaps(c, b.id + 1, &l);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.v[0].id, d.id);
	/* fn stops the listing; its value comes back */
	memset(&l, 0, sizeof(l));
	l.stop_after = 1;
	assert_int_equal(stash_snap_list(c->st, 0, collect_snap, &l), 42);
	assert_int_equal(l.n, 1);
}

/* More snapshots than one batch of the listing (64). */
static void test_many(void **state)
{
	struct ctx *c = *state;
	struct stash_snapshot s[140];
	struct snaps l;
	char name[32];
	size_t n = 0;

	for (int i = 0; i < 140; i++) {
		snprintf(name, sizeof(name), "s%03d", i);
		assert_int_equal(stash_snap_create(c->st, name, &s[i]), 0);
		if (i)
			assert_true(s[i].id > s[i - 1].id);
	}
	/* drop every third, so ids have gaps */
	for (int i = 0; i < 140; i += 3) {
		snprintf(name, sizeof(name), "s%03d", i);
		assert_int_equal(stash_snap_delete(c->st, name), 0);
	}
	list_snaps(c, 0, &l);
	for (int i = 0; i < 140; i++) {
		if (i % 3 == 0)
			continue;
		assert_true(n < l.n);
		assert_int_equal(l.v[n].id, s[i].id);
		assert_string_equal(l.v[n].name, s[i].name);
		assert_int_equal(l.v[n].created, s[i].created);
		if (n)
			assert_true(l.v[n].created >= l.v[n - 1].created);
		n++;
	}
	assert_int_equal(l.n, n);
	/* resumed from the middle of a batch */
	list_snaps(c, s[70].id, &l);
	assert_int_equal(l.v[0].id, s[71].id);
	assert_int_equal(l.n, n - 47); /* s001..s070 less every third */
	/* stopped past the first batch */
	memset(&l, 0, sizeof(l));
	l.stop_after = 70;
	assert_int_equal(stash_snap_list(c->st, 0, collect_snap, &l), 42);
	assert_int_equal(l.n, 70);
}

/* ---- the tree of a snapshot ---- */

static void test_tree(void **state)
{
	struct ctx *c = *state;
	struct dump live0 = { 0 }, snap0 = { 0 }, d = { 0 };
	struct stash_snapshot s;
	struct stash_attr a, b, in = { 0 };
	struct tree t;
	uint64_t t_snap;

	make_tree(c, &t);
	dump_live(c, &live0);
	assert_int_equal(stash_snap_create(c->st, "one", &s), 0);
	dump_snap(c, "one", &snap0);
	assert_true(dump_equal(&live0, &snap0));
	/* taking it changed nothing in the live tree */
	dump_live(c, &d);
	assert_true(dump_equal(&live0, &d));

	/* inode numbers: (id << 40) | live number, never a live one */
	t_snap = ino_of(c, s.root, "t");
	assert_int_equal(t_snap, stash_ino_make(s.id, c->dir));
	assert_int_equal(stash_ino_snap(t_snap), s.id);
	assert_true(t_snap >> 40 != 0);
	assert_int_equal(ino_of(c, t_snap, "big"), stash_ino_make(s.id, t.big));
	assert_int_equal(attr_of(c, stash_ino_make(s.id, t.big)).size, BIG_LEN);
	/* a hard link: one inode for both names inside the snapshot */
	{
		uint64_t sub = ino_of(c, t_snap, "sub");
		uint64_t l1 = ino_of(c, t_snap, "small");
		uint64_t l2 = ino_of(c, sub, "small-link");

		assert_int_equal(l1, l2);
		assert_int_equal(l1, stash_ino_make(s.id, t.small));
		assert_int_equal(attr_of(c, l1).nlink, 2);
		/* a directory's links: 2 + subdirectories */
		assert_int_equal(attr_of(c, sub).nlink, 3);
	}
	/* the special files keep type and device */
	a = attr_of(c, stash_ino_make(s.id, t.chr));
	assert_true(S_ISCHR(a.mode));
	assert_int_equal(a.rdev, makedev(1, 3));
	assert_true(S_ISFIFO(attr_of(c, stash_ino_make(s.id, t.fifo)).mode));
	/* reads inside the holes and across the data */
	{
		struct stash_file *f;
		uint8_t buf[3000], zero[3000] = { 0 };

		assert_int_equal(stash_file_open(c->st,
						 stash_ino_make(s.id, t.sparse),
						 &f),
				 0);
		assert_int_equal(
			stash_file_read(c->st, f, buf, 3000, SPARSE_AT - 2000),
			3000);
		assert_memory_equal(buf, zero, 2000);
		assert_memory_equal(buf + 2000, t.inner_data, 1000);
		assert_int_equal(stash_file_read(c->st, f, buf, 3000,
						 SPARSE_SIZE - 1000),
				 1000);
		assert_memory_equal(buf, zero, 1000);
		assert_int_equal(stash_file_release(c->st, f), 0);
	}
	/* a listing resumes from any cookie */
	{
		struct entries all = { 0 }, part = { 0 }, rest = { 0 };

		assert_int_equal(
			stash_store_readdir(c->st, t_snap, 0, collect, &all),
			0);
		assert_int_equal(all.n, 9);
		part.stop_after = 4;
		assert_int_equal(
			stash_store_readdir(c->st, t_snap, 0, collect, &part),
			0);
		assert_int_equal(part.n, 4);
		assert_int_equal(stash_store_readdir(c->st, t_snap,
						     part.v[3].next, collect,
						     &rest),
				 0);
		assert_int_equal(rest.n, all.n - 4);
		for (size_t i = 0; i < rest.n; i++)
			assert_string_equal(rest.v[i].name, all.v[i + 4].name);
		free(all.v);
		free(part.v);
		free(rest.v);
	}
	/* readdir of a file is refused as in the live tree */
	assert_int_equal(stash_store_readdir(c->st, stash_ino_make(s.id, t.big),
					     0, collect, NULL),
			 -ENOTDIR);
	assert_int_equal(stash_store_lookup(c->st, t_snap, "nope", &a),
			 -ENOENT);

	/* change every kind of thing in the live tree */
	{
		uint8_t patch[100];
		struct stash_file *f;

		memset(patch, 0xab, sizeof(patch));
		put(c, t.big, patch, sizeof(patch), MiB); /* overwrite */
		put(c, t.small, "more\n", 5, 6);	  /* append */
		in.size = 500;				  /* truncate */
		assert_int_equal(stash_store_setattr(c->st, t.sparse, &in,
						     STASH_SET_SIZE, &b),
				 0);
		/* emptied by O_TRUNC-like truncate, then rewritten */
		in.size = 0;
		assert_int_equal(stash_store_setattr(c->st, t.inner, &in,
						     STASH_SET_SIZE, &b),
				 0);
		put(c, t.inner, "new", 3, 0);
		/* an open handle with dirty data across the checks below */
		assert_int_equal(stash_file_open(c->st, t.x, &f), 0);
		assert_int_equal(stash_file_write(c->st, f, "yy", 2, 0), 2);
		assert_int_equal(stash_store_unlink(c->st, t.sub, "small-link"),
				 0);
		assert_int_equal(stash_store_unlink(c->st, c->dir, "dangle"),
				 0);
		assert_int_equal(stash_store_rename(c->st, c->dir, "sub",
						    c->dir, "sub2", 0),
				 0);
		in.mode = 0600;
		assert_int_equal(stash_store_setattr(c->st, t.empty, &in,
						     STASH_SET_MODE, &b),
				 0);
		assert_int_equal(
			stash_store_setxattr(c->st, t.big, "user.a", "2", 1, 0),
			0);
		assert_int_equal(
			stash_store_removexattr(c->st, t.big, "user.b"), 0);
		assert_int_equal(stash_store_setxattr(c->st, t.sub, "user.new",
						      "n", 1, 0),
				 0);
		mkfile(c, c->dir, "newfile");
		mkdir_in(c, t.deeper, "newdir");

		dump_snap(c, "one", &d);
		assert_true(dump_equal(&snap0, &d));
		assert_int_equal(stash_file_release(c->st, f), 0);
	}
	/* the live tree did change, the snapshot did not */
	dump_live(c, &d);
	assert_false(d.len == live0.len && !memcmp(d.buf, live0.buf, d.len));
	dump_snap(c, "one", &d);
	assert_true(dump_equal(&snap0, &d));
	/* removed from the live tree: gone there, still in the snapshot */
	assert_int_equal(stash_store_unlink(c->st, t.deeper, "x"), 0);
	assert_int_equal(stash_store_rmdir(c->st, t.deeper, "newdir"), 0);
	assert_int_equal(stash_store_rmdir(c->st, t.sub, "deeper"), 0);
	assert_int_equal(stash_store_getattr(c->st, t.x, &a), -ENOENT);
	assert_int_equal(stash_store_getattr(c->st, t.dangle, &a), -ENOENT);
	expect_content(c, stash_ino_make(s.id, t.x), "x", 1);
	{
		char target[64];

		assert_int_equal(stash_store_readlink(
					 c->st, stash_ino_make(s.id, t.dangle),
					 target, sizeof(target)),
				 14);
		assert_memory_equal(target, "/nonexistent/x", 14);
	}
	expect_content(c, stash_ino_make(s.id, t.big), t.big_data, BIG_LEN);

	/* a second snapshot holds the changed tree */
	dump_live(c, &live0);
	assert_int_equal(stash_snap_create(c->st, "two", &s), 0);
	dump_snap(c, "two", &d);
	assert_true(dump_equal(&live0, &d));

	/* both persist */
	store_reopen(c);
	dump_snap(c, "one", &d);
	assert_true(dump_equal(&snap0, &d));
	dump_snap(c, "two", &d);
	assert_true(dump_equal(&live0, &d));
	expect_intact(c);

	free(live0.buf);
	free(snap0.buf);
	free(d.buf);
	tree_free(&t);
}

/* ---- read-only ---- */

static void test_readonly(void **state)
{
	struct ctx *c = *state;
	struct dump live0 = { 0 }, snap0 = { 0 }, d = { 0 };
	struct stash_snapshot s;
	struct stash_attr in = { 0 }, out;
	struct stash_file *f;
	struct tree t;
	uint64_t T, big, sub, deeper, root;
	const unsigned set[] = {
		STASH_SET_MODE,	 STASH_SET_UID,	  STASH_SET_GID,
		STASH_SET_SIZE,	 STASH_SET_ATIME, STASH_SET_MTIME,
		STASH_SET_CTIME,
	};

	make_tree(c, &t);
	assert_int_equal(stash_snap_create(c->st, "ro", &s), 0);
	dump_live(c, &live0);
	dump_snap(c, "ro", &snap0);
	root = s.root;
	T = stash_ino_make(s.id, c->dir);
	big = stash_ino_make(s.id, t.big);
	sub = stash_ino_make(s.id, t.sub);
	deeper = stash_ino_make(s.id, t.deeper);

	/* creating anything, in its root and in a directory below */
	for (int i = 0; i < 2; i++) {
		uint64_t dir = i ? T : root;

		assert_int_equal(stash_store_mknod(c->st, dir, "n",
						   S_IFREG | 0644, 0, 0, 0,
						   &out),
				 -EROFS);
		assert_int_equal(stash_store_mknod(c->st, dir, "p",
						   S_IFIFO | 0644, 0, 0, 0,
						   &out),
				 -EROFS);
		assert_int_equal(
			stash_store_mkdir(c->st, dir, "d", 0755, 0, 0, &out),
			-EROFS);
		assert_int_equal(
			stash_store_symlink(c->st, dir, "l", "big", 0, 0, &out),
			-EROFS);
		/* also over an existing name */
		assert_int_equal(
			stash_store_mkdir(c->st, dir, "t", 0755, 0, 0, &out),
			-EROFS);
	}
	/* links: from a snapshot into the live tree, from live into it,
	 * inside it */
	assert_int_equal(stash_store_link(c->st, big, c->dir, "l", &out),
			 -EROFS);
	assert_int_equal(stash_store_link(c->st, t.big, T, "l", &out), -EROFS);
	assert_int_equal(stash_store_link(c->st, big, T, "l", &out), -EROFS);
	/* removing */
	assert_int_equal(stash_store_unlink(c->st, T, "big"), -EROFS);
	assert_int_equal(stash_store_unlink(c->st, T, "sym"), -EROFS);
	assert_int_equal(stash_store_unlink(c->st, sub, "small-link"), -EROFS);
	assert_int_equal(stash_store_rmdir(c->st, sub, "deeper"), -EROFS);
	assert_int_equal(stash_store_unlink(c->st, deeper, "x"), -EROFS);
	assert_int_equal(stash_store_rmdir(c->st, deeper, "x"), -EROFS);
	assert_int_equal(stash_store_rmdir(c->st, root, "t"), -EROFS);
	/* renames: within, out of, into, over */
	assert_int_equal(stash_store_rename(c->st, T, "big", T, "big2", 0),
			 -EROFS);
	assert_int_equal(stash_store_rename(c->st, T, "big", sub, "big", 0),
			 -EROFS);
	assert_int_equal(stash_store_rename(c->st, T, "big", T, "small",
					    STASH_RENAME_EXCHANGE),
			 -EROFS);
	assert_int_equal(stash_store_rename(c->st, T, "big", c->dir, "out", 0),
			 -EROFS);
	assert_int_equal(stash_store_rename(c->st, c->dir, "big", T, "in", 0),
			 -EROFS);
	assert_int_equal(stash_store_rename(c->st, c->dir, "big", T, "big",
					    STASH_RENAME_NOREPLACE),
			 -EROFS);
	assert_int_equal(
		stash_store_rename(c->st, c->dir, "small", T, "big", 0),
		-EROFS);
	/* attributes, every field, on files, directories, links, the root */
	in.mode = 0777;
	in.uid = in.gid = 1;
	in.size = 1;
	in.atime = in.mtime = in.ctime = 1;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(set); i++) {
		uint64_t inos[] = { big,
				    stash_ino_make(s.id, t.empty),
				    sub,
				    root,
				    stash_ino_make(s.id, t.sym),
				    stash_ino_make(s.id, t.fifo) };

		for (size_t j = 0; j < STASH_ARRAY_SIZE(inos); j++)
			assert_int_equal(stash_store_setattr(c->st, inos[j],
							     &in, set[i], &out),
					 -EROFS);
	}
	/* xattrs: new, replaced, removed */
	assert_int_equal(stash_store_setxattr(c->st, big, "user.a", "x", 1, 0),
			 -EROFS);
	assert_int_equal(stash_store_setxattr(c->st, big, "user.c", "x", 1,
					      XATTR_CREATE),
			 -EROFS);
	assert_int_equal(stash_store_setxattr(c->st, sub, "user.dir", "x", 1,
					      XATTR_REPLACE),
			 -EROFS);
	assert_int_equal(stash_store_setxattr(c->st, root, "user.r", "x", 1, 0),
			 -EROFS);
	assert_int_equal(stash_store_removexattr(c->st, big, "user.a"), -EROFS);
	assert_int_equal(stash_store_removexattr(c->st, sub, "user.dir"),
			 -EROFS);
	/* file data: a handle opens for reading; writes fail, at any
	 * offset, also of nothing past the end */
	assert_int_equal(stash_file_open(c->st, big, &f), 0);
	assert_int_equal(stash_file_write(c->st, f, "z", 1, 0), -EROFS);
	assert_int_equal(stash_file_write(c->st, f, "z", 1, BIG_LEN), -EROFS);
	assert_int_equal(stash_file_write(c->st, f, "z", 1, 100 * MiB), -EROFS);
	assert_int_equal(stash_file_flush(c->st, f), 0);
	assert_int_equal(stash_file_fsync(c->st, f), 0);
	{
		uint8_t buf[100];

		assert_int_equal(stash_file_read(c->st, f, buf, 100, 0), 100);
		assert_memory_equal(buf, t.big_data, 100);
	}
	assert_int_equal(stash_file_release(c->st, f), 0);
	assert_int_equal(
		stash_file_open(c->st, stash_ino_make(s.id, t.empty), &f), 0);
	assert_int_equal(stash_file_write(c->st, f, "z", 1, 0), -EROFS);
	assert_int_equal(stash_file_release(c->st, f), 0);

	/* nothing changed, in the snapshot or in the live tree */
	dump_snap(c, "ro", &d);
	assert_true(dump_equal(&snap0, &d));
	dump_live(c, &d);
	assert_true(dump_equal(&live0, &d));
	store_reopen(c);
	dump_snap(c, "ro", &d);
	assert_true(dump_equal(&snap0, &d));
	expect_intact(c);

	free(live0.buf);
	free(snap0.buf);
	free(d.buf);
	tree_free(&t);
}

/* Inode numbers of snapshots that do not exist (any more) are not
 * found, and changes to them are refused all the same. */
static void test_unknown_snapshot_inodes(void **state)
{
	struct ctx *c = *state;
	struct stash_snapshot s;
	struct stash_attr a;
	struct stash_file *f;
	char buf[16];
	uint64_t gone, never = stash_ino_make(4000, c->dir);

	assert_int_equal(stash_snap_create(c->st, "s", &s), 0);
	gone = stash_ino_make(s.id, c->dir);
	assert_int_equal(stash_store_getattr(c->st, gone, &a), 0);
	assert_int_equal(stash_snap_delete(c->st, "s"), 0);
	for (int i = 0; i < 2; i++) {
		uint64_t ino = i ? never : gone;
		struct entries l = { 0 };

		assert_int_equal(stash_store_getattr(c->st, ino, &a), -ENOENT);
		assert_int_equal(stash_store_lookup(c->st, ino, "x", &a),
				 -ENOENT);
		assert_true(stash_store_readdir(c->st, ino, 0, collect, &l) <
			    0);
		assert_true(stash_store_readlink(c->st, ino, buf, sizeof(buf)) <
			    0);
		assert_true(stash_store_listxattr(c->st, ino, buf,
						  sizeof(buf)) <= 0);
		assert_true(stash_store_getxattr(c->st, ino, "user.a", buf,
						 sizeof(buf)) < 0);
		assert_int_equal(stash_file_open(c->st, ino, &f), -ENOENT);
		assert_int_equal(
			stash_store_mkdir(c->st, ino, "d", 0755, 0, 0, &a),
			-EROFS);
		assert_int_equal(
			stash_store_setxattr(c->st, ino, "user.a", "x", 1, 0),
			-EROFS);
		free(l.v);
	}
}

/* ---- what a snapshot holds of files being written ---- */

static void test_unflushed(void **state)
{
	struct ctx *c = *state;
	const size_t big = 6 * MiB; /* more than a file keeps unchunked */
	uint8_t *first = random_bytes(10, MiB), *more = random_bytes(11, big);
	uint64_t ino = mkfile(c, c->dir, "w"), ino2 = mkfile(c, c->dir, "o");
	struct stash_snapshot s1, s2, s3;
	struct stash_file *f, *g;
	struct stash_attr a;

	/* appended after a flush: the snapshot has the flushed bytes */
	assert_int_equal(stash_file_open(c->st, ino, &f), 0);
	assert_int_equal(stash_file_write(c->st, f, first, MiB, 0),
			 (ssize_t)MiB);
	assert_int_equal(stash_file_flush(c->st, f), 0);
	assert_int_equal(stash_file_write(c->st, f, more, big, MiB),
			 (ssize_t)big);
	/* overwritten after a flush, in place, not flushed */
	assert_int_equal(stash_file_open(c->st, ino2, &g), 0);
	assert_int_equal(stash_file_write(c->st, g, first, 5000, 0), 5000);
	assert_int_equal(stash_file_flush(c->st, g), 0);
	assert_int_equal(stash_file_write(c->st, g, more, 100, 1000), 100);

	assert_int_equal(stash_snap_create(c->st, "s1", &s1), 0);
	/* the live size includes the dirty bytes; the snapshot's not */
	assert_int_equal(attr_of(c, ino).size, MiB + big);
	a = attr_of(c, stash_ino_make(s1.id, ino));
	assert_int_equal(a.size, MiB);
	assert_int_equal(stash_store_lookup(
				 c->st, stash_ino_make(s1.id, c->dir), "w", &a),
			 0);
	assert_int_equal(a.size, MiB);
	expect_content(c, stash_ino_make(s1.id, ino), first, MiB);
	expect_content(c, stash_ino_make(s1.id, ino2), first, 5000);

	/* now flushed: later snapshots have it, the first still not */
	assert_int_equal(stash_file_flush(c->st, f), 0);
	assert_int_equal(stash_file_flush(c->st, g), 0);
	assert_int_equal(stash_snap_create(c->st, "s2", &s2), 0);
	expect_content(c, stash_ino_make(s1.id, ino), first, MiB);
	expect_content(c, stash_ino_make(s1.id, ino2), first, 5000);
	{
		size_t len;
		uint8_t *got = get(c, stash_ino_make(s2.id, ino), &len);

		assert_int_equal(len, MiB + big);
		assert_memory_equal(got, first, MiB);
		assert_memory_equal(got + MiB, more, big);
		free(got);
		got = get(c, stash_ino_make(s2.id, ino2), &len);
		assert_int_equal(len, 5000);
		assert_memory_equal(got, first, 1000);
		assert_memory_equal(got + 1000, more, 100);
		assert_memory_equal(got + 1100, first + 1100, 3900);
		free(got);
	}
	/* a truncate is a commit of its own */
	assert_int_equal(stash_file_write(c->st, f, "tail", 4, MiB + big), 4);
	{
		struct stash_attr in = { .size = 10 }, out;

		assert_int_equal(stash_store_setattr(c->st, ino, &in,
						     STASH_SET_SIZE, &out),
				 0);
	}
	assert_int_equal(stash_snap_create(c->st, "s3", &s3), 0);
	expect_content(c, stash_ino_make(s3.id, ino), first, 10);
	assert_int_equal(stash_file_release(c->st, f), 0);
	assert_int_equal(stash_file_release(c->st, g), 0);
	expect_content(c, ino, first, 10);
	expect_content(c, stash_ino_make(s1.id, ino), first, MiB);

	store_reopen(c);
	expect_content(c, stash_ino_make(s1.id, ino), first, MiB);
	expect_content(c, stash_ino_make(s1.id, ino2), first, 5000);
	expect_content(c, stash_ino_make(s3.id, ino), first, 10);
	expect_intact(c);
	free(first);
	free(more);
}

/* A file unlinked while open has no name: no snapshot holds it. */
static void test_unlinked_open(void **state)
{
	struct ctx *c = *state;
	uint64_t ino = mkfile(c, c->dir, "doomed");
	struct stash_snapshot s;
	struct stash_store_stats s0, s1;
	struct stash_file *f;
	struct stash_attr a;
	struct entries l = { 0 };
	uint8_t *data = random_bytes(20, MiB);

	assert_int_equal(stash_file_open(c->st, ino, &f), 0);
	assert_int_equal(stash_file_write(c->st, f, data, MiB, 0),
			 (ssize_t)MiB);
	assert_int_equal(stash_file_flush(c->st, f), 0);
	assert_int_equal(stash_store_unlink(c->st, c->dir, "doomed"), 0);
	assert_int_equal(attr_of(c, ino).nlink, 0); /* still there */
	assert_int_equal(stash_snap_create(c->st, "s", &s), 0);
	assert_int_equal(
		stash_store_getattr(c->st, stash_ino_make(s.id, ino), &a),
		-ENOENT);
	assert_int_equal(stash_store_readdir(c->st,
					     stash_ino_make(s.id, c->dir), 0,
					     collect, &l),
			 0);
	assert_int_equal(l.n, 0);
	free(l.v);
	/* its last release frees its chunks: no snapshot holds them */
	stats(c, &s0);
	assert_int_equal(stash_file_release(c->st, f), 0);
	stats(c, &s1);
	assert_int_equal(s1.cat.chunks, 0);
	assert_int_equal(s1.cat.dead_chunks,
			 s0.cat.dead_chunks + s0.cat.chunks);
	assert_int_equal(stash_file_open(c->st, stash_ino_make(s.id, ino), &f),
			 -ENOENT);
	expect_intact(c);
	free(data);
}

/* ---- chunk references ---- */

static void test_refcounts(void **state)
{
	struct ctx *c = *state;
	struct stash_store_stats s0, s1, s2, s3, s4, s5;
	uint8_t *a_data = random_bytes(30, 2 * MiB);
	uint8_t *b_data = random_bytes(31, MiB);
	uint8_t *b_new = random_bytes(32, MiB);
	uint64_t a = mkfile(c, c->dir, "a"), b = mkfile(c, c->dir, "b");
	uint64_t a_chunks, a_bytes, b_chunks, b_bytes;
	struct stash_snapshot sn1, sn2;

	put(c, b, b_data, MiB, 0);
	stats(c, &s0);
	b_chunks = s0.cat.chunks;
	b_bytes = s0.cat.chunk_stored_bytes;
	put(c, a, a_data, 2 * MiB, 0);
	stats(c, &s1);
	a_chunks = s1.cat.chunks - s0.cat.chunks;
	a_bytes = s1.cat.chunk_stored_bytes - s0.cat.chunk_stored_bytes;
	assert_true(a_chunks >= 8); /* at most 256 KiB each */
	assert_int_equal(s1.cat.dead_chunks, 0);

	/* a snapshot adds no chunk and no byte */
	assert_int_equal(stash_snap_create(c->st, "sn1", &sn1), 0);
	stats(c, &s2);
	assert_int_equal(s2.cat.chunks, s1.cat.chunks);
	assert_int_equal(s2.cat.chunk_raw_bytes, s1.cat.chunk_raw_bytes);
	assert_int_equal(s2.cat.chunk_stored_bytes, s1.cat.chunk_stored_bytes);
	assert_int_equal(s2.cat.dead_chunks, 0);
	assert_int_equal(s2.cat.packs, s1.cat.packs);
	assert_int_equal(s2.chunks_written, s1.chunks_written);
	assert_int_equal(s2.bytes_written, s1.bytes_written);
	/* logical bytes and files are the live tree's */
	assert_int_equal(s2.cat.logical_bytes, s1.cat.logical_bytes);
	assert_int_equal(s2.cat.files, s1.cat.files);
	assert_int_equal(stash_snap_create(c->st, "sn2", &sn2), 0);
	stats(c, &s2);
	assert_int_equal(s2.cat.chunks, s1.cat.chunks);
	assert_int_equal(s2.cat.chunk_stored_bytes, s1.cat.chunk_stored_bytes);
	expect_intact(c);

	/* a deleted (and b overwritten) in the live tree: the snapshots
	 * hold their chunks, nothing is dead */
	assert_int_equal(stash_store_unlink(c->st, c->dir, "a"), 0);
	put(c, b, b_new, MiB, 0);
	stats(c, &s3);
	assert_int_equal(s3.cat.dead_chunks, 0);
	assert_int_equal(s3.cat.dead_bytes, 0);
	assert_int_equal(s3.cat.logical_bytes, MiB);
	assert_true(s3.cat.chunks > s1.cat.chunks); /* b_new's */
	expect_content(c, stash_ino_make(sn1.id, a), a_data, 2 * MiB);
	expect_content(c, stash_ino_make(sn2.id, b), b_data, MiB);
	expect_intact(c);

	/* one of two snapshots dropped: still held */
	assert_int_equal(stash_snap_delete(c->st, "sn1"), 0);
	stats(c, &s4);
	assert_int_equal(s4.cat.dead_chunks, 0);
	assert_int_equal(s4.cat.chunks, s3.cat.chunks);
	expect_content(c, stash_ino_make(sn2.id, a), a_data, 2 * MiB);
	expect_intact(c);

	/* the last one dropped: a's and the old b's chunks are dead, exactly
	 * those */
	assert_int_equal(stash_snap_delete(c->st, "sn2"), 0);
	stats(c, &s5);
	assert_int_equal(s5.cat.dead_chunks, a_chunks + b_chunks);
	assert_int_equal(s5.cat.dead_bytes, a_bytes + b_bytes);
	assert_int_equal(s5.cat.chunks, s3.cat.chunks - a_chunks - b_chunks);
	expect_content(c, b, b_new, MiB);
	expect_intact(c);
	store_reopen(c);
	stats(c, &s4);
	assert_int_equal(s4.cat.dead_chunks, s5.cat.dead_chunks);
	assert_int_equal(s4.cat.chunks, s5.cat.chunks);
	free(a_data);
	free(b_data);
	free(b_new);
}

/* Chunks shared by the live tree and a snapshot, with dedup inside. */
static void test_refcounts_shared(void **state)
{
	struct ctx *c = *state;
	struct stash_store_stats sa, s0, s1;
	uint8_t *data = random_bytes(40, MiB);
	uint64_t a = mkfile(c, c->dir, "a"), b = mkfile(c, c->dir, "b");
	struct stash_snapshot sn;

	put(c, a, data, MiB, 0);
	stats(c, &sa);
	put(c, b, data, MiB, 0);   /* the same chunks twice */
	put(c, b, data, MiB, MiB); /* (and a few new across the seam) */
	stats(c, &s0);
	assert_int_equal(stash_snap_create(c->st, "sn", &sn), 0);
	/* the live tree lets go of everything */
	assert_int_equal(stash_store_unlink(c->st, c->dir, "a"), 0);
	assert_int_equal(stash_store_unlink(c->st, c->dir, "b"), 0);
	stats(c, &s1);
	assert_int_equal(s1.cat.chunks, s0.cat.chunks);
	assert_int_equal(s1.cat.dead_chunks, 0);
	expect_intact(c);
	store_reopen(c);
	expect_content(c, stash_ino_make(sn.id, a), data, MiB);
	{
		size_t len;
		uint8_t *got = get(c, stash_ino_make(sn.id, b), &len);

		assert_int_equal(len, 2 * MiB);
		assert_memory_equal(got, data, MiB);
		assert_memory_equal(got + MiB, data, MiB);
		free(got);
	}
	/* written again while the snapshot holds them: deduplicated */
	put(c, mkfile(c, c->dir, "again"), data, MiB, 0);
	stats(c, &s1);
	assert_int_equal(s1.chunks_written, 0);
	assert_int_equal(s1.cat.chunks, s0.cat.chunks);
	assert_int_equal(stash_snap_delete(c->st, "sn"), 0);
	stats(c, &s1);
	/* "again" holds a's; the seam's of b are dead */
	assert_int_equal(s1.cat.chunks, sa.cat.chunks);
	assert_int_equal(s1.cat.dead_chunks, s0.cat.chunks - sa.cat.chunks);
	assert_int_equal(stash_store_unlink(c->st, c->dir, "again"), 0);
	stats(c, &s1);
	assert_int_equal(s1.cat.chunks, 0);
	assert_int_equal(s1.cat.dead_chunks, s0.cat.chunks);
	expect_intact(c);
	free(data);
}

/* ---- snapshots while files are written ---- */

#define OVER_LEN (300 * KiB)
#define ROUNDS 12

struct writer {
	struct ctx *c;
	uint64_t over, app;    /* rewritten whole each time; appended to */
	_Atomic uint64_t done; /* rounds released (so committed) */
	_Atomic bool stop;
	int error;
};

/* Round k's bytes: k in the first 8 bytes, then bytes from seed k. */
static uint8_t *over_bytes(uint64_t k)
{
	uint8_t *buf = random_bytes(1000 + k, OVER_LEN);

	stash_le64enc(buf, k);
	return buf;
}

/* The size of append k (1, 2, ...): from a byte to 100 KiB or so. */
static size_t app_len(uint64_t k)
{
	return (size_t)(k * 7919 % (100 * KiB)) + 1;
}

static size_t app_total(uint64_t k)
{
	size_t n = 0;

	for (uint64_t i = 1; i <= k; i++)
		n += app_len(i);
	return n;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct stash_store *st = w->c->st;
	uint64_t k;

	for (k = 1; !atomic_load(&w->stop) && !w->error; k++) {
		uint8_t *over = over_bytes(k),
			*app = random_bytes(k, app_len(k));
		struct stash_file *f, *g;
		struct stash_attr a;

		if (stash_file_open(st, w->over, &f) ||
		    stash_file_write(st, f, over, OVER_LEN, 0) != OVER_LEN ||
		    stash_file_release(st, f) ||
		    stash_store_getattr(st, w->app, &a) ||
		    stash_file_open(st, w->app, &g) ||
		    stash_file_write(st, g, app, app_len(k), a.size) !=
			    (ssize_t)app_len(k) ||
		    stash_file_release(st, g))
			w->error = -EIO;
		else
			atomic_store(&w->done, k);
		free(over);
		free(app);
	}
	return NULL;
}

/*
 * A writer rewrites one file whole and appends to another, one open,
 * write and release per round, while snapshots are taken: each snapshot
 * holds for each file exactly what a round left (never half of one),
 * and at least what the rounds released before it began.
 */
static void test_concurrent(void **state)
{
	struct ctx *c = *state;
	struct writer w = { .c = c };
	struct stash_snapshot s[ROUNDS];
	uint64_t before[ROUNDS], after[ROUNDS];
	char name[16];
	pthread_t th;

	w.over = mkfile(c, c->dir, "over");
	w.app = mkfile(c, c->dir, "app");
	assert_int_equal(pthread_create(&th, NULL, writer_main, &w), 0);
	for (int i = 0; i < ROUNDS; i++) {
		uint64_t k = atomic_load(&w.done);

		/* a new round between two snapshots, at least */
		while (atomic_load(&w.done) == k && !w.error)
			sched_yield();
		snprintf(name, sizeof(name), "s%d", i);
		before[i] = atomic_load(&w.done);
		assert_int_equal(stash_snap_create(c->st, name, &s[i]), 0);
		after[i] = atomic_load(&w.done) + 1; /* one may be committing */
	}
	atomic_store(&w.stop, true);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.error, 0);

	for (int i = 0; i < ROUNDS; i++) {
		size_t len;
		uint8_t *got = get(c, stash_ino_make(s[i].id, w.over), &len);
		uint8_t *want;
		uint64_t k = 0;

		assert_int_equal(len, OVER_LEN);
		k = stash_le64dec(got);
		assert_true(k >= before[i] && k <= after[i]);
		want = over_bytes(k);
		assert_memory_equal(got, want, OVER_LEN);
		free(want);
		free(got);

		got = get(c, stash_ino_make(s[i].id, w.app), &len);
		for (k = 0; app_total(k) < len; k++)
			;
		assert_int_equal(app_total(k), len); /* whole appends */
		assert_true(k >= before[i] && k <= after[i]);
		for (uint64_t j = 1, off = 0; j <= k; off += app_len(j), j++) {
			want = random_bytes(j, app_len(j));
			assert_memory_equal(got + off, want, app_len(j));
			free(want);
		}
		free(got);
		if (i)
			assert_true(s[i].created > s[i - 1].created);
	}
	expect_intact(c);
}

/*
 * verify (what `stashfs verify` runs) on a store with snapshots: every
 * chunk reference is a file-map row of the live tree or of a snapshot,
 * so a store with snapshots is clean, while the live tree changes and
 * after the snapshots are dropped.
 */
static void test_verify(void **state)
{
	struct ctx *c = *state;
	uint8_t *data = random_bytes(50, 2 * MiB);
	uint64_t a = mkfile(c, c->dir, "a"), b = mkfile(c, c->dir, "b");

	put(c, a, data, 2 * MiB, 0);
	put(c, b, data, MiB, 0);
	expect_verify_clean(c);
	/* held by the live tree and a snapshot */
	assert_int_equal(stash_snap_create(c->st, "s1", NULL), 0);
	expect_verify_clean(c);
	/* held by the snapshot only */
	assert_int_equal(stash_store_unlink(c->st, c->dir, "a"), 0);
	put(c, b, data + MiB, MiB, 0);
	expect_verify_clean(c);
	assert_int_equal(stash_snap_create(c->st, "s2", NULL), 0);
	expect_verify_clean(c);
	assert_int_equal(stash_snap_delete(c->st, "s1"), 0);
	expect_verify_clean(c);
	assert_int_equal(stash_snap_delete(c->st, "s2"), 0);
	expect_verify_clean(c);
	free(data);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_names),
		T(test_many),
		T(test_tree),
		T(test_readonly),
		T(test_unknown_snapshot_inodes),
		T(test_unflushed),
		T(test_unlinked_open),
		T(test_refcounts),
		T(test_refcounts_shared),
		T(test_concurrent),
		T(test_verify),
	};
	const char *filter = getenv("STASH_TEST_FILTER");

	if (filter && *filter)
		cmocka_set_test_filter(filter);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
