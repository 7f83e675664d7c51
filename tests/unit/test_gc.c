/*
 * test_gc.c - unit tests for store/gc.c through store.h and gc.h, no
 * FUSE: dead chunks go and the space comes back; packs are rewritten
 * under the threshold and not above it; a handle opened before gc reads
 * and writes through chunks gc moved; leftovers of interrupted runs
 * (packs nothing names, second copies) are reclaimed and pack ids are not
 * given out again; a gc killed (SIGKILL) at each step in turn leaves a
 * store that verifies clean and reads back identical; gc runs while
 * other threads write and read.
 *
 * Each test works in its own mkdtemp directory under /tmp, removed after.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "crypto.h"
#include "gc.h"
#include "packs.h"
#include "store.h"
#include "verify.h"
#include "testutil.h"

#define KiB 1024u
#define MiB (1024u * 1024)
#define NFILES 8

struct ctx {
	struct test_store ts;	/* the scratch store's folder and secret */
	struct stash_store *st; /* open store, closed by teardown */
	uint64_t dir;		/* /t */
	uint64_t ino[NFILES];	/* /t/f0 .. /t/f7, 0 once deleted */
	uint8_t *data[NFILES];	/* what each file holds */
	size_t len[NFILES];
};

/* ---- helpers ---- */

static uint8_t *random_bytes(uint64_t seed, size_t len)
{
	uint8_t *buf = malloc(len ? len : 1);
	uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;

	assert_non_null(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(test_rng_next(&s) >> 56);
	return buf;
}

/* The config of every store here: defaults, but many packs from a few MiB. */
static void gc_config(struct stash_config *cfg)
{
	stash_config_defaults(cfg);
	cfg->pack_size = 1 * MiB;
}

static int make_store(const char *path, const struct stash_secret *secret)
{
	struct stash_config cfg;

	gc_config(&cfg);
	return stash_store_init(path, &cfg, secret);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	struct stash_config cfg;

	if (!c)
		return -1;
	gc_config(&cfg);
	if (test_store_make_open(&c->ts, "test_gc", &cfg, &c->st, &c->dir)) {
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	for (int i = 0; i < NFILES; i++)
		free(c->data[i]);
	test_store_remove(&c->ts, c->st);
	free(c);
	return 0;
}

static void store_close(struct ctx *c)
{
	assert_int_equal(stash_store_close(c->st), 0);
	c->st = NULL;
}

static void store_open(struct ctx *c)
{
	assert_int_equal(stash_store_open(&c->st, c->ts.path, &c->ts.secret),
			 0);
}

/* Create /t/fI holding len bytes from seed. */
static void put_file(struct ctx *c, int i, uint64_t seed, size_t len)
{
	struct stash_attr a;
	char name[16];

	snprintf(name, sizeof(name), "f%d", i);
	assert_int_equal(stash_store_mknod(c->st, c->dir, name, S_IFREG | 0644,
					   0, 0, 0, &a),
			 0);
	c->ino[i] = a.ino;
	free(c->data[i]);
	c->data[i] = random_bytes(seed, len);
	c->len[i] = len;
	test_file_put(c->st, a.ino, c->data[i], len, 0);
}

static void del_file(struct ctx *c, int i)
{
	char name[16];

	snprintf(name, sizeof(name), "f%d", i);
	assert_int_equal(stash_store_unlink(c->st, c->dir, name), 0);
	c->ino[i] = 0;
	free(c->data[i]);
	c->data[i] = NULL;
}

/* Rewrite all of /t/fI with new bytes from seed. */
static void overwrite_file(struct ctx *c, int i, uint64_t seed)
{
	free(c->data[i]);
	c->data[i] = random_bytes(seed, c->len[i]);
	test_file_put(c->st, c->ino[i], c->data[i], c->len[i], 0);
}

static void expect_file(struct stash_store *st, uint64_t ino,
			const uint8_t *data, size_t len)
{
	struct stash_file *f;
	uint8_t *buf = malloc(len + 1);
	struct stash_attr a;

	assert_non_null(buf);
	assert_int_equal(stash_store_getattr(st, ino, &a), 0);
	assert_int_equal(a.size, len);
	assert_int_equal(stash_file_open(st, ino, &f), 0);
	assert_int_equal(stash_file_read(st, f, buf, len + 1, 0), (ssize_t)len);
	assert_memory_equal(buf, data, len);
	assert_int_equal(stash_file_release(st, f), 0);
	free(buf);
}

static void expect_files(struct ctx *c)
{
	for (int i = 0; i < NFILES; i++)
		if (c->ino[i])
			expect_file(c->st, c->ino[i], c->data[i], c->len[i]);
}

static void expect_clean(struct stash_store *st)
{
	struct stash_verify_opts full = { .flags = STASH_VERIFY_FULL };
	struct stash_verify_result res;

	assert_int_equal(stash_store_verify(st, &full, &res), 0);
	assert_int_equal(res.problems, 0);
}

static uint64_t du_total;

static int du_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)path;
	(void)ftw;
	if (flag == FTW_F)
		du_total += (uint64_t)sb->st_size;
	return 0;
}

/* Bytes of the files under path. */
static uint64_t du(const char *path)
{
	du_total = 0;
	assert_int_equal(nftw(path, du_one, 16, FTW_PHYS), 0);
	return du_total;
}

/* Pack ids present in the store's packs folder, highest first... */
struct ids {
	uint64_t id[4096];
	uint64_t size[4096];
	size_t n;
};

static struct ids *ids_seen;

static int note_pack(const char *path, const struct stat *sb, int flag,
		     struct FTW *ftw)
{
	const char *name = path + ftw->base;

	if (flag == FTW_F && strlen(name) == 16 && ids_seen->n < 4096) {
		ids_seen->id[ids_seen->n] = strtoull(name, NULL, 16);
		ids_seen->size[ids_seen->n++] = (uint64_t)sb->st_size;
	}
	return 0;
}

static void list_packs(struct ctx *c, struct ids *out)
{
	char dir[192];

	snprintf(dir, sizeof(dir), "%s/packs", c->ts.path);
	memset(out, 0, sizeof(*out));
	ids_seen = out;
	assert_int_equal(nftw(dir, note_pack, 16, FTW_PHYS), 0);
}

static uint64_t max_id(const struct ids *l)
{
	uint64_t m = 0;

	for (size_t i = 0; i < l->n; i++)
		m = l->id[i] > m ? l->id[i] : m;
	return m;
}

static bool has_id(const struct ids *l, uint64_t id)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->id[i] == id)
			return true;
	return false;
}

static struct stash_gc_opts opts(double threshold, double max_waste)
{
	struct stash_gc_opts o;

	stash_gc_opts_init(&o);
	o.threshold = threshold;
	o.max_waste = max_waste;
	return o;
}

/* Eight files of 1 MiB, then some deleted, overwritten, cut short. */
static void fill_and_churn(struct ctx *c)
{
	struct stash_attr a, in = { .size = 300 * KiB };

	for (int i = 0; i < NFILES; i++)
		put_file(c, i, 100 + (uint64_t)i, 1 * MiB);
	del_file(c, 1);
	del_file(c, 3);
	del_file(c, 5);
	overwrite_file(c, 6, 600);
	assert_int_equal(
		stash_store_setattr(c->st, c->ino[7], &in, STASH_SET_SIZE, &a),
		0);
	c->len[7] = 300 * KiB;
}

/* ---- tests ---- */

/*
 * Dead chunks go, the space comes back to within 5% of a store that only
 * ever held the live data, everything reads back, verify is clean, before
 * and after a reopen; a second run finds nothing to do.
 */
static void test_reclaim(void **state)
{
	struct ctx *c = *state;
	struct stash_store_stats s;
	struct stash_gc_report r, r2;
	struct stash_store *fresh;
	char fresh_path[160];
	uint64_t before, after, want;

	fill_and_churn(c);
	assert_int_equal(stash_store_stats(c->st, &s), 0);
	assert_true(s.cat.dead_chunks > 0);
	store_close(c);
	before = du(c->ts.path);
	store_open(c);

	assert_int_equal(stash_store_gc(c->st, NULL, &r), 0);
	assert_false(r.running);
	assert_int_equal(r.error, 0);
	assert_int_equal(r.chunks_dropped, s.cat.dead_chunks);
	assert_int_equal(r.dead_bytes, s.cat.dead_bytes);
	assert_true(r.packs_deleted + r.packs_rewritten > 0);
	assert_true(r.store_bytes_after < r.store_bytes_before);
	assert_int_equal(r.packs_done, r.packs_planned);
	assert_int_equal(r.packs_skipped, 0);
	assert_int_equal(stash_store_gc_status(c->st, &r2), 0);
	assert_int_equal(r2.chunks_dropped, r.chunks_dropped);

	assert_int_equal(stash_store_stats(c->st, &s), 0);
	assert_int_equal(s.cat.dead_chunks, 0);
	expect_files(c);
	expect_clean(c->st);

	/* Nothing left to do. */
	assert_int_equal(stash_store_gc(c->st, NULL, &r2), 0);
	assert_int_equal(r2.chunks_dropped, 0);
	assert_int_equal(r2.packs_rewritten, 0);
	assert_int_equal(r2.packs_deleted, 0);

	store_close(c);
	after = du(c->ts.path);
	assert_true(after < before);

	/* A store into which only the live data was ever written. */
	snprintf(fresh_path, sizeof(fresh_path), "%s/fresh", c->ts.root);
	assert_int_equal(make_store(fresh_path, &c->ts.secret), 0);
	assert_int_equal(stash_store_open(&fresh, fresh_path, &c->ts.secret),
			 0);
	for (int i = 0; i < NFILES; i++) {
		struct stash_attr a;
		char name[16];

		if (!c->ino[i])
			continue;
		snprintf(name, sizeof(name), "f%d", i);
		assert_int_equal(stash_store_mknod(fresh, STASH_ROOT_INO, name,
						   S_IFREG | 0644, 0, 0, 0, &a),
				 0);
		test_file_put(fresh, a.ino, c->data[i], c->len[i], 0);
	}
	assert_int_equal(stash_store_close(fresh), 0);
	want = du(fresh_path);
	print_message("store: %llu bytes before gc, %llu after; live data"
		      " alone: %llu\n",
		      (unsigned long long)before, (unsigned long long)after,
		      (unsigned long long)want);
	assert_true(after <= want + want / 20);

	store_open(c);
	expect_files(c);
	expect_clean(c->st);
}

/* Packs are rewritten below the threshold, and not above it. */
static void test_threshold(void **state)
{
	struct ctx *c = *state;
	struct stash_gc_opts o;
	struct stash_gc_report r;
	struct ids *old = malloc(sizeof(*old)), *now = malloc(sizeof(*now));

	assert_non_null(old);
	assert_non_null(now);
	fill_and_churn(c);

	/* Threshold 0 and no waste bound: no pack is worth a copy. */
	o = opts(0.0, 1.0);
	assert_int_equal(stash_store_gc(c->st, &o, &r), 0);
	assert_true(r.chunks_dropped > 0);
	assert_int_equal(r.packs_rewritten, 0);
	assert_int_equal(r.bytes_moved, 0);
	expect_files(c);

	/* Threshold 1: every pack that holds a chunk is copied. */
	list_packs(c, old);
	o = opts(1.0, 1.0);
	assert_int_equal(stash_store_gc(c->st, &o, &r), 0);
	assert_int_equal(r.chunks_dropped, 0);
	assert_true(r.packs_rewritten > 0);
	assert_true(r.bytes_moved > 0);
	assert_int_equal(r.bytes_moved, r.bytes_to_move);
	list_packs(c, now);
	/* Only new packs hold data now; the newest old id is kept as a
	 * header-only file. */
	for (size_t i = 0; i < now->n; i++)
		if (has_id(old, now->id[i]))
			assert_int_equal(now->size[i], STASH_PACK_HDR_LEN);
	expect_files(c);
	expect_clean(c->st);

	/* The waste bound alone: nothing is dead, so nothing moves. */
	o = opts(0.0, 0.0);
	assert_int_equal(stash_store_gc(c->st, &o, &r), 0);
	assert_int_equal(r.packs_rewritten, 0);
	assert_int_equal(r.packs_deleted, 0);
	expect_files(c);
	store_close(c);
	store_open(c);
	expect_files(c);
	expect_clean(c->st);
	free(old);
	free(now);
}

/*
 * A handle opened before gc holds the old places of its chunks: reads
 * find them again by id, and a commit that rewrites its map (naming the
 * old places) keeps the catalog's new ones.
 */
static void test_stale_handle(void **state)
{
	struct ctx *c = *state;
	struct stash_gc_opts o = opts(1.0, 1.0);
	struct stash_gc_report r;
	struct stash_file *f;
	uint8_t *buf = malloc(2 * MiB);

	assert_non_null(buf);
	put_file(c, 0, 1, 2 * MiB);
	put_file(c, 1, 2, 1 * MiB);
	/* Reopen: nothing of f0 in the chunk cache. */
	store_close(c);
	store_open(c);
	assert_int_equal(stash_file_open(c->st, c->ino[0], &f), 0);
	del_file(c, 1);
	assert_int_equal(stash_store_gc(c->st, &o, &r), 0);
	assert_true(r.packs_rewritten > 0);
	assert_true(r.packs_deleted > 0);

	assert_int_equal(stash_file_read(c->st, f, buf, 2 * MiB, 0),
			 (ssize_t)(2 * MiB));
	assert_memory_equal(buf, c->data[0], 2 * MiB);
	/* Rewrite the map from offset 0: every later extent goes back to
	 * the catalog with the location this handle knows. */
	c->data[0][0] ^= 0xff;
	assert_int_equal(stash_file_write(c->st, f, c->data[0], 1, 0), 1);
	assert_int_equal(stash_file_flush(c->st, f), 0);
	assert_int_equal(stash_file_release(c->st, f), 0);
	store_close(c);
	store_open(c);
	expect_files(c);
	expect_clean(c->st);
	free(buf);
}

/* Append n chunks of junk to a new pack that no catalog row names, as
 * a run killed after copying (or a crashed session) leaves. */
static void orphan_pack(struct ctx *c, int n)
{
	struct stash_packs *p;
	struct stash_chunk_loc loc;
	uint8_t key[STASH_KEY_LEN] = { 0 }, id[STASH_ID_LEN] = { 0 };
	char dir[192];

	snprintf(dir, sizeof(dir), "%s/packs", c->ts.path);
	assert_int_equal(stash_packs_open(&p, dir, key, 4 * MiB), 0);
	for (int i = 0; i < n; i++) {
		uint8_t *junk = random_bytes(1000 + (uint64_t)i, 100 * KiB);

		id[0] = (uint8_t)i;
		assert_int_equal(stash_packs_append(p, id, 100 * KiB, junk,
						    100 * KiB, &loc),
				 0);
		free(junk);
	}
	assert_int_equal(stash_packs_close(p), 0);
}

static void copy_file(const char *from, const char *to)
{
	int in = open(from, O_RDONLY), out;
	char buf[65536];
	ssize_t n;

	assert_true(in >= 0);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	close(in);
	close(out);
}

static void pack_file(struct ctx *c, uint64_t id, char *out, size_t size)
{
	snprintf(out, size, "%s/packs/%02x/%016llx", c->ts.path,
		 (unsigned)(id & 0xff), (unsigned long long)id);
}

/*
 * What an interrupted run leaves is reclaimed by the next: packs no row
 * names (copies never committed) and old packs whose rows all moved.
 * Pack ids are never handed out twice.
 */
static void test_leftovers(void **state)
{
	struct ctx *c = *state;
	struct stash_gc_opts o = opts(1.0, 1.0);
	struct stash_gc_report r;
	struct ids *l = malloc(sizeof(*l)), *l2 = malloc(sizeof(*l2));
	char from[256], to[256], saved[256];
	uint64_t top, old_id;

	assert_non_null(l);
	assert_non_null(l2);
	put_file(c, 0, 1, 1 * MiB);
	put_file(c, 1, 2, 1536 * KiB);
	store_close(c);
	orphan_pack(c, 3);
	orphan_pack(c, 2);
	list_packs(c, l);
	top = max_id(l);

	/* Keep a copy of the first pack (f0's chunks), to put back once
	 * its rows moved. */
	old_id = top;
	for (size_t i = 0; i < l->n; i++)
		old_id = l->id[i] < old_id ? l->id[i] : old_id;
	pack_file(c, old_id, from, sizeof(from));
	snprintf(saved, sizeof(saved), "%s/saved-pack", c->ts.root);
	copy_file(from, saved);

	store_open(c);
	assert_int_equal(stash_store_gc(c->st, NULL, &r), 0);
	/* The two orphans: the newest is cut to its header, not freed. */
	assert_int_equal(r.packs_deleted, 2);
	list_packs(c, l2);
	assert_true(has_id(l2, top));
	for (size_t i = 0; i < l2->n; i++)
		if (l2->id[i] == top)
			assert_int_equal(l2->size[i], STASH_PACK_HDR_LEN);
	assert_false(has_id(l2, top - 1));
	expect_files(c);

	/* Copy everything away, then put an old pack back: a second copy
	 * of chunks whose rows now point elsewhere. */
	assert_int_equal(stash_store_gc(c->st, &o, &r), 0);
	assert_true(r.packs_rewritten > 0);
	list_packs(c, l2);
	assert_false(has_id(l2, old_id));
	pack_file(c, old_id, to, sizeof(to));
	copy_file(saved, to);
	assert_int_equal(stash_store_gc(c->st, NULL, &r), 0);
	assert_int_equal(r.packs_deleted, 1);
	assert_int_equal(r.packs_rewritten, 0);
	list_packs(c, l2);
	assert_false(has_id(l2, old_id));
	expect_files(c);
	expect_clean(c->st);

	/* New data after a reopen goes to a pack id never seen before. */
	list_packs(c, l);
	top = max_id(l);
	store_close(c);
	store_open(c);
	put_file(c, 2, 3, 300 * KiB);
	store_close(c);
	list_packs(c, l2);
	assert_true(max_id(l2) > top);
	store_open(c);
	expect_files(c);
	expect_clean(c->st);
	free(l);
	free(l2);
}

/* ---- killed at every step ---- */

static int kill_at;

static void die_at(void *arg, const struct stash_gc_report *r)
{
	(void)arg;
	(void)r;
	if (--kill_at == 0)
		raise(SIGKILL);
}

/*
 * Run gc in a child killed at its n-th progress report (after the dead
 * rows went, after each batch of copies committed, after each pack was
 * removed). 1 if it was killed, 0 if it finished first.
 */
static int gc_killed_at(struct ctx *c, int n)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct stash_store *st;
		struct stash_gc_opts o = opts(0.9, 0.0);

		o.progress = die_at;
		kill_at = n;
		if (stash_store_open(&st, c->ts.path, &c->ts.secret))
			_exit(2);
		if (stash_store_gc(st, &o, NULL))
			_exit(3);
		_exit(stash_store_close(st) ? 4 : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status)) {
		assert_int_equal(WTERMSIG(status), SIGKILL);
		return 1;
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	return 0;
}

static void test_killed(void **state)
{
	struct ctx *c = *state;
	struct stash_store_stats s;
	struct stash_gc_report r;
	int n;

	fill_and_churn(c);
	store_close(c);
	for (n = 1;; n++) {
		assert_true(n < 200);
		int killed = gc_killed_at(c, n);

		store_open(c);
		expect_files(c);
		expect_clean(c->st);
		if (!killed)
			break;
		/* Churn a little between runs. */
		overwrite_file(c, 0, 1000 + (uint64_t)n);
		store_close(c);
	}
	print_message("gc killed at %d points in turn\n", n - 1);
	assert_true(n > 3);
	assert_int_equal(stash_store_gc(c->st, NULL, &r), 0);
	assert_int_equal(stash_store_stats(c->st, &s), 0);
	assert_int_equal(s.cat.dead_chunks, 0);
	expect_files(c);
	expect_clean(c->st);
}

/* ---- with writers and readers ---- */

struct worker {
	struct ctx *c;
	pthread_t thread;
	_Atomic bool *stop;
	int id;
	unsigned long rounds;
	char failure[128];
};

static void wfail(struct worker *w, const char *what, long long v)
{
	if (!w->failure[0])
		snprintf(w->failure, sizeof(w->failure), "%s: %lld", what, v);
}

#define WSIZE (2560 * KiB)
#define WPIECE (128 * KiB)

/*
 * Create, write, overwrite and delete its own files, and check them.
 * Files are written in pieces with pauses, and are larger than what a
 * file keeps unchunked: chunks sit in packs, not yet committed, while gc
 * runs.
 */
static void *writer(void *arg)
{
	struct worker *w = arg;
	struct stash_store *st = w->c->st;
	uint8_t *buf = malloc(WSIZE + 1);

	while (!*w->stop && !w->failure[0]) {
		struct stash_attr a;
		struct stash_file *f;
		char name[32];
		uint8_t *data =
			random_bytes(w->rounds * 31 + (uint64_t)w->id, WSIZE);
		ssize_t n;
		int ret;

		snprintf(name, sizeof(name), "w%d-%lu", w->id, w->rounds);
		ret = stash_store_mknod(st, w->c->dir, name, S_IFREG | 0644, 0,
					0, 0, &a);
		if (!ret)
			ret = stash_file_open(st, a.ino, &f);
		if (ret) {
			wfail(w, "create", ret);
			free(data);
			break;
		}
		for (size_t off = 0; off < WSIZE; off += WPIECE) {
			n = stash_file_write(st, f, data + off, WPIECE, off);
			if (n != (ssize_t)WPIECE)
				wfail(w, "write", n);
			usleep(1000);
		}
		/* The first half again: a second version, dead bytes. */
		data[0] ^= 1;
		n = stash_file_write(st, f, data, WSIZE / 2, 0);
		if (n != (ssize_t)(WSIZE / 2))
			wfail(w, "rewrite", n);
		ret = stash_file_release(st, f);
		if (ret)
			wfail(w, "release", ret);
		ret = stash_file_open(st, a.ino, &f);
		if (ret) {
			wfail(w, "open", ret);
			free(data);
			break;
		}
		n = stash_file_read(st, f, buf, WSIZE + 1, 0);
		if (n != (ssize_t)WSIZE || memcmp(buf, data, WSIZE))
			wfail(w, "read back", n);
		stash_file_release(st, f);
		free(data);
		if (w->rounds % 2) {
			snprintf(name, sizeof(name), "w%d-%lu", w->id,
				 w->rounds - 1);
			ret = stash_store_unlink(st, w->c->dir, name);
			if (ret)
				wfail(w, "unlink", ret);
		}
		w->rounds++;
	}
	free(buf);
	return NULL;
}

/* Read the files f0..f3 again and again through one long-lived handle
 * each and fresh ones. */
static void *reader(void *arg)
{
	struct worker *w = arg;
	struct ctx *c = w->c;
	struct stash_file *keep[4];
	uint8_t *buf = malloc(1 * MiB + 1);

	for (int i = 0; i < 4; i++)
		if (stash_file_open(c->st, c->ino[i], &keep[i]))
			wfail(w, "open", i);
	while (!*w->stop && !w->failure[0]) {
		int i = (int)(w->rounds % 4);
		struct stash_file *f = keep[i];
		ssize_t n;

		if (w->rounds % 8 >= 4 && stash_file_open(c->st, c->ino[i], &f))
			wfail(w, "open", i);
		n = stash_file_read(c->st, f, buf, 1 * MiB + 1, 0);
		if (n != (ssize_t)c->len[i] ||
		    memcmp(buf, c->data[i], c->len[i]))
			wfail(w, "read", n);
		if (f != keep[i])
			stash_file_release(c->st, f);
		w->rounds++;
	}
	for (int i = 0; i < 4; i++)
		stash_file_release(c->st, keep[i]);
	free(buf);
	return NULL;
}

static void test_concurrent(void **state)
{
	struct ctx *c = *state;
	struct stash_gc_opts o = opts(0.95, 0.0);
	struct stash_gc_report r;
	struct worker w[3];
	_Atomic bool stop = false;
	uint64_t moved = 0;

	for (int i = 0; i < 4; i++)
		put_file(c, i, 50 + (uint64_t)i, 1 * MiB);
	/* Cold cache: the readers go to the packs. */
	store_close(c);
	store_open(c);
	memset(w, 0, sizeof(w));
	for (int i = 0; i < 3; i++) {
		w[i].c = c;
		w[i].stop = &stop;
		w[i].id = i;
		assert_int_equal(pthread_create(&w[i].thread, NULL,
						i < 2 ? writer : reader, &w[i]),
				 0);
	}
	for (int round = 0; round < 12; round++) {
		assert_int_equal(stash_store_gc(c->st, &o, &r), 0);
		moved += r.bytes_moved;
		usleep(20 * 1000);
	}
	stop = true;
	for (int i = 0; i < 3; i++) {
		pthread_join(w[i].thread, NULL);
		if (w[i].failure[0])
			fail_msg("worker %d: %s", i, w[i].failure);
	}
	print_message("gc moved %llu bytes while %lu + %lu writes and %lu"
		      " reads ran\n",
		      (unsigned long long)moved, w[0].rounds, w[1].rounds,
		      w[2].rounds);
	assert_true(moved > 0);
	assert_true(w[2].rounds > 0);
	expect_files(c);
	assert_int_equal(stash_store_gc(c->st, NULL, &r), 0);
	store_close(c);
	store_open(c);
	expect_files(c);
	expect_clean(c->st);
}

/* What a progress callback saw: a nested run's result, the status. */
struct nested {
	struct stash_store *st;
	int ret;	/* 1 until the nested run was tried */
	bool running;	/* the status said a run is under way */
	uint64_t calls; /* progress reports */
};

static void nested_gc(void *arg, const struct stash_gc_report *r)
{
	struct nested *n = arg;
	struct stash_gc_report now;

	n->calls++;
	if (!r->running || n->ret != 1)
		return;
	n->ret = stash_store_gc(n->st, NULL, NULL);
	n->running = stash_store_gc_status(n->st, &now) == 0 && now.running;
}

static bool cancel_now(void *arg)
{
	int *left = arg;

	return --*left < 0;
}

/* Cancelled between steps: -EINTR, a sound store, and the next run
 * finishes the work. */
static void test_cancel(void **state)
{
	struct ctx *c = *state;
	struct stash_gc_opts o = opts(1.0, 1.0);
	struct stash_gc_report r;
	int left = 2;

	fill_and_churn(c);
	o.cancelled = cancel_now;
	o.arg = &left;
	assert_int_equal(stash_store_gc(c->st, &o, &r), -EINTR);
	assert_int_equal(r.error, -EINTR);
	assert_true(r.chunks_dropped > 0);
	assert_true(r.packs_done < r.packs_planned);
	expect_files(c);
	expect_clean(c->st);
	o.cancelled = NULL;
	assert_int_equal(stash_store_gc(c->st, &o, &r), 0);
	assert_int_equal(r.chunks_dropped, 0);
	assert_int_equal(r.packs_done, r.packs_planned);
	expect_files(c);
	expect_clean(c->st);
}

/* Options: JSON, bounds; one run at a time; the status while running. */
static void test_options(void **state)
{
	struct ctx *c = *state;
	struct stash_gc_opts o;
	struct stash_gc_report r;
	struct nested n = { .st = c->st, .ret = 1 };
	char *json;

	assert_int_equal(stash_store_gc_status(c->st, &r), -ENODATA);
	assert_int_equal(stash_gc_opts_from_json("", 0, &o), 0);
	assert_true(o.threshold == STASH_GC_THRESHOLD_DEFAULT);
	assert_true(o.max_waste == STASH_GC_MAX_WASTE_DEFAULT);
	assert_int_equal(
		stash_gc_opts_from_json("{\"threshold\":0.25}", 18, &o), 0);
	assert_true(o.threshold == 0.25);
	assert_true(o.max_waste == STASH_GC_MAX_WASTE_DEFAULT);
	assert_int_equal(stash_gc_opts_from_json("{\"threshold\":2}", 15, &o),
			 -EINVAL);
	assert_int_equal(stash_gc_opts_from_json("{\"other\":0.1}", 13, &o),
			 -EINVAL);
	assert_int_equal(stash_gc_opts_from_json("[1]", 3, &o), -EINVAL);
	assert_int_equal(stash_gc_opts_from_json("{\"max_waste\":", 13, &o),
			 -EINVAL);
	o = opts(-0.1, 0.5);
	assert_int_equal(stash_store_gc(c->st, &o, &r), -EINVAL);
	assert_int_equal(stash_store_gc_json(c->st, "{\"max_waste\":1}", 15),
			 0);
	assert_int_equal(stash_store_gc_status_json(c->st, &json), 0);
	assert_non_null(strstr(json, "\"running\":false"));
	assert_non_null(strstr(json, "\"store_bytes_after\":"));
	free(json);

	put_file(c, 0, 1, 100 * KiB);
	stash_gc_opts_init(&o);
	o.progress = nested_gc;
	o.arg = &n;
	assert_int_equal(stash_store_gc(c->st, &o, &r), 0);
	assert_int_equal(n.ret, -EALREADY);
	assert_true(n.running);
	assert_true(n.calls >= 3); /* start, plan, end */
	assert_int_equal(stash_store_gc_status(c->st, &r), 0);
	assert_false(r.running);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_reclaim),   T(test_threshold), T(test_stale_handle),
		T(test_leftovers), T(test_killed),    T(test_concurrent),
		T(test_cancel),	   T(test_options),
	};
	const char *filter = getenv("STASH_TEST_FILTER");

	if (filter && *filter)
		cmocka_set_test_filter(filter);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
