/*
 * test_packs.c - unit tests for pack files (store/packs.c): appends across
 * packs, reads by location, trailers, reopening, damage to packs and
 * trailers, concurrent appends, sync and the read descriptor cache.
 *
 * Each test works in its own mkdtemp directory under /tmp, removed after.
 * No FUSE. The trailer format is rebuilt here independently from the
 * description in packs.c, so a test also pins the bytes on disk.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "chunk.h"
#include "codec.h"
#include "crypto.h"
#include "packs.h"
#include "testutil.h"

#define HDR_LEN 24
#define ENTRY_LEN 48
#define FOOTER_LEN 16

struct ctx {
	char root[64]; /* mkdtemp directory */
	char dir[128]; /* root/packs: the pack directory */
	uint8_t key[STASH_KEY_LEN];
};

/* One appended chunk, as the test remembers it. */
struct rec {
	uint8_t id[STASH_ID_LEN];
	uint32_t raw_len;
	uint8_t *data; /* the "sealed" bytes appended */
	struct stash_chunk_loc loc;
};

struct entries {
	struct stash_pack_entry *v;
	size_t n, cap;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	snprintf(c->root, sizeof(c->root), "/tmp/test_packs.XXXXXX");
	if (stash_crypto_random(c->key, sizeof(c->key)) < 0 ||
	    !mkdtemp(c->root)) {
		free(c);
		return -1;
	}
	snprintf(c->dir, sizeof(c->dir), "%s/packs", c->root);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	test_rmtree(c->root);
	free(c);
	return 0;
}

static void path_of(const struct ctx *c, uint64_t pack, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%s/%02x/%016llx", c->dir,
			 (unsigned)(pack & 0xff), (unsigned long long)pack);

	assert_true(n > 0 && (size_t)n < cap);
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

static uint8_t *read_file(const char *path, size_t *len)
{
	uint64_t size = file_size(path);
	uint8_t *buf = malloc(size ? size : 1);
	int fd = open(path, O_RDONLY);

	assert_non_null(buf);
	assert_true(fd >= 0);
	assert_int_equal(stash_pread_all(fd, buf, size, 0), 0);
	close(fd);
	*len = size;
	return buf;
}

static void write_file(const char *path, const uint8_t *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(stash_pwrite_all(fd, buf, len, 0), 0);
	close(fd);
}

/* Call fn for every file dir/XX/NAME; returns how many there were. */
static size_t walk_packs(const char *dir,
			 void (*fn)(void *arg, const char *path), void *arg)
{
	char path[512];
	struct dirent *de, *fe;
	DIR *top, *sub;
	size_t n = 0;
	int len;

	top = opendir(dir);
	assert_non_null(top);
	while ((de = readdir(top)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		len = snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		assert_true(len > 0 && (size_t)len < sizeof(path));
		sub = opendir(path);
		assert_non_null(sub);
		while ((fe = readdir(sub)) != NULL) {
			if (fe->d_name[0] == '.')
				continue;
			len = snprintf(path, sizeof(path), "%s/%s/%s", dir,
				       de->d_name, fe->d_name);
			assert_true(len > 0 && (size_t)len < sizeof(path));
			if (fn)
				fn(arg, path);
			n++;
		}
		closedir(sub);
	}
	closedir(top);
	return n;
}

static void sum_size(void *arg, const char *path)
{
	*(uint64_t *)arg += file_size(path);
}

static uint64_t total_size(const char *dir)
{
	uint64_t sum = 0;

	walk_packs(dir, sum_size, &sum);
	return sum;
}

/* Fill a record with a random id and size lo..hi random bytes. */
static void rec_make(struct rec *r, uint32_t lo, uint32_t hi)
{
	uint32_t span = hi - lo + 1, x;

	assert_int_equal(stash_crypto_random(&x, sizeof(x)), 0);
	r->loc.len = lo + x % span;
	r->raw_len = r->loc.len * 3;
	r->data = malloc(r->loc.len);
	assert_non_null(r->data);
	assert_int_equal(stash_crypto_random(r->data, r->loc.len), 0);
	assert_int_equal(stash_crypto_random(r->id, sizeof(r->id)), 0);
}

static void rec_append(struct stash_packs *p, struct rec *r)
{
	uint32_t len = r->loc.len;

	assert_int_equal(
		stash_packs_append(p, r->id, r->raw_len, r->data, len, &r->loc),
		0);
	assert_int_equal(r->loc.len, len);
}

static void rec_check(struct stash_packs *p, const struct rec *r)
{
	uint8_t *buf = malloc(r->loc.len);

	assert_non_null(buf);
	assert_int_equal(stash_packs_read(p, &r->loc, buf), 0);
	assert_memory_equal(buf, r->data, r->loc.len);
	free(buf);
}

static void recs_free(struct rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(r[i].data);
	free(r);
}

static int collect(void *arg, const struct stash_pack_entry *e)
{
	struct entries *es = arg;

	if (es->n == es->cap) {
		es->cap = es->cap ? 2 * es->cap : 64;
		es->v = realloc(es->v, es->cap * sizeof(*es->v));
		assert_non_null(es->v);
	}
	es->v[es->n++] = *e;
	return 0;
}

static int count_one(void *arg, const struct stash_pack_entry *e)
{
	(void)e;
	++*(size_t *)arg;
	return 0;
}

/* Read the trailer of pack only for its verdict. */
static int trailer_of(const struct ctx *c, uint64_t pack)
{
	size_t n = 0;

	return stash_packs_read_trailer(c->dir, c->key, pack, count_one, &n);
}

/* Append n records of lo..hi bytes to a fresh store with target size. */
static struct rec *fill(struct ctx *c, uint64_t target, size_t n, uint32_t lo,
			uint32_t hi)
{
	struct stash_packs *p;
	struct rec *r = calloc(n, sizeof(*r));

	assert_non_null(r);
	assert_int_equal(stash_packs_open(&p, c->dir, c->key, target), 0);
	for (size_t i = 0; i < n; i++) {
		rec_make(&r[i], lo, hi);
		rec_append(p, &r[i]);
	}
	assert_int_equal(stash_packs_close(p), 0);
	return r;
}

static void test_append_read_many(void **state)
{
	struct ctx *c = *state;
	struct stash_packs *p;
	struct entries es = { 0 };
	const size_t n = 300;
	struct rec *r = calloc(n, sizeof(*r));
	uint64_t first, last;
	size_t k = 0;

	assert_non_null(r);
	assert_int_equal(stash_packs_open(&p, c->dir, c->key, 8192), 0);
	for (size_t i = 0; i < n; i++) {
		rec_make(&r[i], 30, 2000);
		rec_append(p, &r[i]);
		/* A chunk is readable as soon as append returns. */
		rec_check(p, &r[i]);
	}
	for (size_t i = 0; i < n; i++)
		rec_check(p, &r[i]);
	first = r[0].loc.pack;
	last = r[n - 1].loc.pack;
	assert_int_equal(first, 1);
	assert_true(last - first >= 5);
	for (size_t i = 1; i < n; i++) {
		assert_true(r[i].loc.pack >= r[i - 1].loc.pack);
		if (r[i].loc.pack == r[i - 1].loc.pack)
			assert_int_equal(r[i].loc.off,
					 r[i - 1].loc.off + r[i - 1].loc.len);
		else
			assert_int_equal(r[i].loc.off, HDR_LEN);
	}
	assert_int_equal(stash_packs_bytes_written(p), total_size(c->dir));
	assert_int_equal(stash_packs_sync(p), 0);
	assert_int_equal(stash_packs_close(p), 0);

	/* The trailers, pack by pack, list exactly the appends in order. */
	for (uint64_t id = first; id <= last; id++)
		assert_int_equal(stash_packs_read_trailer(c->dir, c->key, id,
							  collect, &es),
				 0);
	assert_int_equal(es.n, n);
	for (uint64_t id = first; id <= last; id++) {
		for (; k < n && r[k].loc.pack == id; k++) {
			assert_memory_equal(es.v[k].id, r[k].id, STASH_ID_LEN);
			assert_int_equal(es.v[k].off, r[k].loc.off);
			assert_int_equal(es.v[k].len, r[k].loc.len);
			assert_int_equal(es.v[k].raw_len, r[k].raw_len);
		}
	}
	assert_int_equal(k, n);
	/* Every pack but the last reached the target. */
	for (uint64_t id = first; id < last; id++) {
		char path[256];

		path_of(c, id, path, sizeof(path));
		assert_true(file_size(path) >= 8192);
	}
	free(es.v);
	recs_free(r, n);
}

/* Real sealed chunks through a pack and back. */
static void test_real_chunks(void **state)
{
	struct ctx *c = *state;
	struct stash_packs *p;
	uint8_t dkey[STASH_KEY_LEN], id[STASH_ID_LEN];
	uint8_t plain[5000], out[5000], sealed[5000 + STASH_CHUNK_OVERHEAD];
	uint8_t got[sizeof(sealed)];
	struct stash_chunk_loc loc[20];

	assert_int_equal(stash_crypto_random(dkey, sizeof(dkey)), 0);
	assert_int_equal(stash_packs_open(&p, c->dir, c->key, 16384), 0);
	for (int i = 0; i < 20; i++) {
		ssize_t n;

		memset(plain, 'a' + i, sizeof(plain));
		stash_crypto_hmac(dkey, plain, sizeof(plain), id);
		n = stash_chunk_encode(dkey, 1, id, STASH_CODEC_ZSTD, 0, plain,
				       sizeof(plain), sealed);
		assert_true(n > 0);
		assert_int_equal(stash_packs_append(p, id, sizeof(plain),
						    sealed, (uint32_t)n,
						    &loc[i]),
				 0);
	}
	for (int i = 0; i < 20; i++) {
		memset(plain, 'a' + i, sizeof(plain));
		stash_crypto_hmac(dkey, plain, sizeof(plain), id);
		assert_int_equal(stash_packs_read(p, &loc[i], got), 0);
		assert_int_equal(stash_chunk_decode(dkey, 1, id, got,
						    loc[i].len, out,
						    sizeof(out)),
				 0);
		assert_memory_equal(out, plain, sizeof(plain));
	}
	assert_int_equal(stash_packs_close(p), 0);
}

struct digest {
	char path[512];
	uint8_t sha[32];
};

struct digests {
	struct digest v[64];
	size_t n;
};

static void digest_one(void *arg, const char *path)
{
	struct digests *d = arg;
	size_t len;
	uint8_t *buf = read_file(path, &len);

	assert_true(d->n < STASH_ARRAY_SIZE(d->v));
	snprintf(d->v[d->n].path, sizeof(d->v[d->n].path), "%s", path);
	assert_int_equal(stash_crypto_sha256(buf, len, d->v[d->n].sha), 0);
	d->n++;
	free(buf);
}

static void test_reopen(void **state)
{
	struct ctx *c = *state;
	struct stash_packs *p;
	struct digests *before = calloc(1, sizeof(*before));
	struct rec *old, fresh[5];
	char stray[256];
	uint64_t max_old = 0;

	assert_non_null(before);
	old = fill(c, 4096, 20, 100, 1500);
	for (size_t i = 0; i < 20; i++)
		max_old = STASH_MAX(max_old, old[i].loc.pack);

	/* A file in the way with a higher id: it must be skipped over. */
	snprintf(stray, sizeof(stray), "%s/40", c->dir);
	assert_int_equal(mkdir(stray, 0700), 0);
	snprintf(stray, sizeof(stray), "%s/40/0000000000000040", c->dir);
	write_file(stray, (const uint8_t *)"x", 1);

	walk_packs(c->dir, digest_one, before);
	assert_int_equal(before->n, max_old + 1);

	assert_int_equal(stash_packs_open(&p, c->dir, c->key, 4096), 0);
	/* Opening alone creates nothing. */
	assert_int_equal(walk_packs(c->dir, NULL, NULL), before->n);
	for (size_t i = 0; i < 20; i++)
		rec_check(p, &old[i]);
	for (size_t i = 0; i < 5; i++) {
		rec_make(&fresh[i], 100, 1500);
		rec_append(p, &fresh[i]);
		assert_true(fresh[i].loc.pack >= 0x41);
	}
	assert_int_equal(fresh[0].loc.pack, 0x41);
	for (size_t i = 0; i < 20; i++)
		rec_check(p, &old[i]);
	assert_int_equal(stash_packs_close(p), 0);

	/* The old files are byte for byte what they were. */
	for (size_t i = 0; i < before->n; i++) {
		size_t len;
		uint8_t *buf = read_file(before->v[i].path, &len);
		uint8_t sha[32];

		assert_int_equal(stash_crypto_sha256(buf, len, sha), 0);
		assert_memory_equal(sha, before->v[i].sha, sizeof(sha));
		free(buf);
	}
	assert_int_equal(stash_packs_open(&p, c->dir, c->key, 4096), 0);
	for (size_t i = 0; i < 5; i++)
		rec_check(p, &fresh[i]);
	assert_int_equal(stash_packs_close(p), 0);
	for (size_t i = 0; i < 5; i++)
		free(fresh[i].data);
	recs_free(old, 20);
	free(before);
}

static void test_missing(void **state)
{
	struct ctx *c = *state;
	struct stash_packs *p;
	struct stash_chunk_loc loc = { .pack = 999, .off = HDR_LEN, .len = 10 };
	struct rec r[3];
	uint8_t buf[16];

	assert_int_equal(stash_packs_open(&p, c->dir, c->key, 1024), 0);
	assert_int_equal(stash_packs_read(p, &loc, buf), -ENOENT);
	assert_int_equal(trailer_of(c, 999), -ENOENT);
	assert_int_equal(stash_packs_remove(p, 999), -ENOENT);

	for (int i = 0; i < 3; i++) {
		rec_make(&r[i], 600, 600);
		rec_append(p, &r[i]);
	}
	/* r[0] and r[1] filled pack 1; r[2] is in the open pack 2. */
	assert_int_equal(r[0].loc.pack, 1);
	assert_int_equal(r[2].loc.pack, 2);
	rec_check(p, &r[0]); /* caches a descriptor for pack 1 */
	assert_int_equal(stash_packs_remove(p, 2), -EBUSY);
	assert_int_equal(stash_packs_remove(p, 1), 0);
	assert_int_equal(stash_packs_read(p, &r[0].loc, buf), -ENOENT);
	assert_int_equal(trailer_of(c, 1), -ENOENT);
	rec_check(p, &r[2]);
	assert_int_equal(stash_packs_close(p), 0);
	for (int i = 0; i < 3; i++)
		free(r[i].data);
}

static void test_truncated_pack(void **state)
{
	struct ctx *c = *state;
	struct stash_packs *p;
	struct rec *r = fill(c, 1 << 20, 5, 1000, 1000);
	uint8_t buf[1000];
	char path[256];

	path_of(c, 1, path, sizeof(path));
	assert_int_equal(trailer_of(c, 1), 0);
	/* Lose the trailer and half of the last chunk. */
	assert_int_equal(truncate(path, (off_t)(r[4].loc.off + 500)), 0);
	assert_int_equal(stash_packs_open(&p, c->dir, c->key, 1 << 20), 0);
	for (int i = 0; i < 4; i++)
		rec_check(p, &r[i]);
	assert_int_equal(stash_packs_read(p, &r[4].loc, buf), -EBADMSG);
	assert_int_equal(trailer_of(c, 1), -EBADMSG);

	/* The same through a descriptor already cached. */
	assert_int_equal(truncate(path, (off_t)(r[3].loc.off + 1)), 0);
	assert_int_equal(stash_packs_read(p, &r[3].loc, buf), -EBADMSG);
	rec_check(p, &r[2]);
	assert_int_equal(stash_packs_close(p), 0);
	/* Reopening never builds on the torn pack. */
	assert_int_equal(file_size(path), r[3].loc.off + 1);
	recs_free(r, 5);
}

/* Build a trailer the way packs.c documents it, with any entries. */
static size_t make_trailer(const uint8_t key[STASH_KEY_LEN], uint64_t pack,
			   const struct stash_pack_entry *e, uint32_t count,
			   uint8_t *out)
{
	static const char label[] = "stashfs pack trailer v1";
	uint8_t aad[sizeof(label) - 1 + 12];
	size_t elen = (size_t)count * ENTRY_LEN, tlen = 28 + elen;
	uint8_t *q = out + 12;

	for (uint32_t i = 0; i < count; i++, q += ENTRY_LEN) {
		memcpy(q, e[i].id, STASH_ID_LEN);
		stash_le64enc(q + 32, e[i].off);
		stash_le32enc(q + 40, e[i].len);
		stash_le32enc(q + 44, e[i].raw_len);
	}
	memcpy(aad, label, sizeof(label) - 1);
	stash_le64enc(aad + sizeof(label) - 1, pack);
	stash_le32enc(aad + sizeof(label) - 1 + 8, count);
	assert_int_equal(stash_crypto_random(out, 12), 0);
	assert_int_equal(stash_crypto_seal(key, out, aad, sizeof(aad), out + 12,
					   elen, out + 12, out + 12 + elen),
			 0);
	stash_le32enc(out + tlen, count);
	stash_le32enc(out + tlen + 4, (uint32_t)tlen);
	memcpy(out + tlen + 8, "STASHEND", 8);
	return tlen + FOOTER_LEN;
}

/* A pack file: header, body_len bytes of body, trailer over e[]. */
static size_t make_pack(const uint8_t key[STASH_KEY_LEN], uint64_t pack,
			size_t body_len, const struct stash_pack_entry *e,
			uint32_t count, uint8_t *out)
{
	memcpy(out, "STASHPK1", 8);
	stash_le32enc(out + 8, 1);
	stash_le32enc(out + 12, 0);
	stash_le64enc(out + 16, pack);
	memset(out + HDR_LEN, 0xa5, body_len);
	return HDR_LEN + body_len +
	       make_trailer(key, pack, e, count, out + HDR_LEN + body_len);
}

static void test_trailer_format(void **state)
{
	struct ctx *c = *state;
	struct stash_pack_entry e[3] = {
		{ .off = HDR_LEN, .len = 100, .raw_len = 300 },
		{ .off = HDR_LEN + 100, .len = 50, .raw_len = 7 },
		{ .off = HDR_LEN + 150, .len = 50, .raw_len = 0 },
	};
	struct entries es = { 0 };
	uint8_t *file = malloc(4096);
	char path[256], sub[256];
	size_t len;

	assert_non_null(file);
	for (int i = 0; i < 3; i++)
		memset(e[i].id, i + 1, STASH_ID_LEN);
	snprintf(sub, sizeof(sub), "%s", c->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	snprintf(sub, sizeof(sub), "%s/05", c->dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	path_of(c, 5, path, sizeof(path));

	/* Written by hand from the documented format: accepted as is. */
	len = make_pack(c->key, 5, 200, e, 3, file);
	write_file(path, file, len);
	assert_int_equal(
		stash_packs_read_trailer(c->dir, c->key, 5, collect, &es), 0);
	assert_int_equal(es.n, 3);
	for (int i = 0; i < 3; i++) {
		assert_memory_equal(es.v[i].id, e[i].id, STASH_ID_LEN);
		assert_int_equal(es.v[i].off, e[i].off);
		assert_int_equal(es.v[i].len, e[i].len);
		assert_int_equal(es.v[i].raw_len, e[i].raw_len);
	}
	free(es.v);

	/* An empty pack has a valid, empty trailer. */
	len = make_pack(c->key, 5, 0, e, 0, file);
	write_file(path, file, len);
	assert_int_equal(trailer_of(c, 5), 0);

	/* Authentic trailers whose entries do not fit the file. */
	e[2].len = 51; /* runs into the trailer */
	len = make_pack(c->key, 5, 200, e, 3, file);
	write_file(path, file, len);
	assert_int_equal(trailer_of(c, 5), -EBADMSG);
	e[2].len = 50;
	e[1].off = HDR_LEN + 99; /* overlaps the previous chunk */
	len = make_pack(c->key, 5, 200, e, 3, file);
	write_file(path, file, len);
	assert_int_equal(trailer_of(c, 5), -EBADMSG);
	e[1].off = HDR_LEN + 100;
	e[0].off = HDR_LEN - 1; /* inside the header */
	len = make_pack(c->key, 5, 200, e, 3, file);
	write_file(path, file, len);
	assert_int_equal(trailer_of(c, 5), -EBADMSG);
	e[0].off = HDR_LEN;
	e[2].off = UINT64_MAX - 10; /* wraps around */
	len = make_pack(c->key, 5, 200, e, 3, file);
	write_file(path, file, len);
	assert_int_equal(trailer_of(c, 5), -EBADMSG);
	e[2].off = HDR_LEN + 150;
	e[1].len = 0;
	len = make_pack(c->key, 5, 200, e, 3, file);
	write_file(path, file, len);
	assert_int_equal(trailer_of(c, 5), -EBADMSG);
	e[1].len = 50;

	/* A count that disagrees with the trailer length. */
	len = make_pack(c->key, 5, 200, e, 3, file);
	stash_le32enc(file + len - 16, 2);
	write_file(path, file, len);
	assert_int_equal(trailer_of(c, 5), -EBADMSG);
	/* A trailer sealed for another pack id, in this pack's file. */
	len = make_pack(c->key, 5, 200, e, 3, file);
	make_trailer(c->key, 6, e, 3, file + HDR_LEN + 200);
	write_file(path, file, len);
	assert_int_equal(trailer_of(c, 5), -EBADMSG);
	free(file);
}

static void test_corrupt_trailer(void **state)
{
	struct ctx *c = *state;
	struct rec *r = fill(c, 1 << 20, 10, 50, 300);
	uint8_t other[STASH_KEY_LEN];
	char path[256], path2[256];
	size_t len, tstart, cnt = 0;
	uint8_t *orig, *grown;

	path_of(c, 1, path, sizeof(path));
	orig = read_file(path, &len);
	tstart = len - FOOTER_LEN - (28 + 10 * ENTRY_LEN);
	assert_int_equal(tstart, r[9].loc.off + r[9].loc.len);
	assert_int_equal(trailer_of(c, 1), 0);

	/* Any flipped bit in the trailer or the header. */
	for (size_t i = 0; i < len; i++) {
		if (i == HDR_LEN)
			i = tstart; /* the body is the chunks' business */
		if (i >= 12 && i < 16)
			continue; /* reserved: readers ignore it */
		for (int bit = 0; bit < 8; bit += 3) {
			orig[i] ^= (uint8_t)(1u << bit);
			write_file(path, orig, len);
			assert_int_equal(trailer_of(c, 1), -EBADMSG);
			orig[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* Truncated anywhere, or grown by a byte. */
	for (size_t n = 0; n < len; n++) {
		write_file(path, orig, n);
		assert_int_equal(trailer_of(c, 1), -EBADMSG);
	}
	grown = realloc(orig, len + 1);
	assert_non_null(grown);
	orig = grown;
	orig[len] = 0;
	write_file(path, orig, len + 1);
	assert_int_equal(trailer_of(c, 1), -EBADMSG);

	write_file(path, orig, len);
	assert_int_equal(trailer_of(c, 1), 0);
	assert_int_equal(stash_crypto_random(other, sizeof(other)), 0);
	assert_int_equal(
		stash_packs_read_trailer(c->dir, other, 1, count_one, &cnt),
		-EBADMSG);
	/* The same bytes under another pack id. */
	path_of(c, 0x101, path2, sizeof(path2));
	write_file(path2, orig, len);
	assert_int_equal(trailer_of(c, 0x101), -EBADMSG);
	free(orig);
	recs_free(r, 10);
}

static int stop_after_three(void *arg, const struct stash_pack_entry *e)
{
	int *calls = arg;

	(void)e;
	return ++*calls == 3 ? 42 : 0;
}

static void test_trailer_fn_stops(void **state)
{
	struct ctx *c = *state;
	struct rec *r = fill(c, 1 << 20, 6, 50, 60);
	int calls = 0;

	assert_int_equal(stash_packs_read_trailer(c->dir, c->key, 1,
						  stop_after_three, &calls),
			 42);
	assert_int_equal(calls, 3);
	recs_free(r, 6);
}

struct worker {
	struct stash_packs *p;
	struct rec *r; /* made by the main thread */
	size_t n;
	int idx;
	int fails; /* cmocka asserts belong to the main thread */
};

static void *work(void *arg)
{
	struct worker *w = arg;
	uint8_t buf[3000];

	for (size_t i = 0; i < w->n; i++) {
		struct rec *r = &w->r[i];
		uint32_t len = r->loc.len;

		if (stash_packs_append(w->p, r->id, r->raw_len, r->data, len,
				       &r->loc) != 0 ||
		    r->loc.len != len ||
		    stash_packs_read(w->p, &r->loc, buf) != 0 ||
		    memcmp(buf, r->data, len) != 0)
			w->fails++;
		if (i % 37 == (size_t)w->idx && stash_packs_sync(w->p) != 0)
			w->fails++;
		if (i % 11 == 0 && i > 0) {
			r = &w->r[i / 2];
			if (stash_packs_read(w->p, &r->loc, buf) != 0 ||
			    memcmp(buf, r->data, r->loc.len) != 0)
				w->fails++;
		}
	}
	return NULL;
}

static int cmp_loc(const void *a, const void *b)
{
	const struct rec *x = *(const struct rec *const *)a;
	const struct rec *y = *(const struct rec *const *)b;

	if (x->loc.pack != y->loc.pack)
		return x->loc.pack < y->loc.pack ? -1 : 1;
	if (x->loc.off != y->loc.off)
		return x->loc.off < y->loc.off ? -1 : 1;
	return 0;
}

static void test_concurrent(void **state)
{
	struct ctx *c = *state;
	enum { THREADS = 4, PER = 300, ALL = THREADS * PER };
	struct worker w[THREADS];
	pthread_t t[THREADS];
	struct rec **all = calloc(ALL, sizeof(*all));
	struct entries es = { 0 };
	struct stash_packs *p;
	uint64_t last = 0;

	assert_non_null(all);
	assert_int_equal(stash_packs_open(&p, c->dir, c->key, 16384), 0);
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .p = p, .n = PER, .idx = i };
		w[i].r = calloc(PER, sizeof(struct rec));
		assert_non_null(w[i].r);
		for (size_t j = 0; j < PER; j++)
			rec_make(&w[i].r[j], 20, 3000);
	}
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].fails, 0);
	}
	for (int i = 0; i < THREADS; i++) {
		for (size_t j = 0; j < PER; j++) {
			rec_check(p, &w[i].r[j]);
			all[i * PER + j] = &w[i].r[j];
		}
	}
	assert_int_equal(stash_packs_sync(p), 0);
	assert_int_equal(stash_packs_close(p), 0);

	/* No two chunks overlap, and the trailers list them all in order. */
	qsort(all, ALL, sizeof(*all), cmp_loc);
	for (size_t i = 1; i < ALL; i++)
		if (all[i]->loc.pack == all[i - 1]->loc.pack)
			assert_true(all[i]->loc.off >=
				    all[i - 1]->loc.off + all[i - 1]->loc.len);
	last = all[ALL - 1]->loc.pack;
	for (uint64_t id = 1; id <= last; id++)
		assert_int_equal(stash_packs_read_trailer(c->dir, c->key, id,
							  collect, &es),
				 0);
	assert_int_equal(es.n, ALL);
	for (size_t i = 0; i < ALL; i++) {
		assert_memory_equal(es.v[i].id, all[i]->id, STASH_ID_LEN);
		assert_int_equal(es.v[i].off, all[i]->loc.off);
		assert_int_equal(es.v[i].len, all[i]->loc.len);
		assert_int_equal(es.v[i].raw_len, all[i]->raw_len);
	}
	free(es.v);
	free(all);
	for (int i = 0; i < THREADS; i++)
		recs_free(w[i].r, PER);
}

static void test_sync(void **state)
{
	struct ctx *c = *state;
	struct stash_packs *p;
	struct rec r[4];
	char path[256];

	assert_int_equal(stash_packs_open(&p, c->dir, c->key, 2000), 0);
	/* Nothing written yet: sync is a no-op that succeeds. */
	assert_int_equal(stash_packs_sync(p), 0);
	assert_int_equal(stash_packs_bytes_written(p), 0);
	for (int i = 0; i < 4; i++) {
		rec_make(&r[i], 700, 700);
		rec_append(p, &r[i]);
		assert_int_equal(stash_packs_sync(p), 0);
		assert_int_equal(stash_packs_sync(p), 0);
		assert_int_equal(stash_packs_bytes_written(p),
				 total_size(c->dir));
	}
	/* Pack 1 finished (three chunks), pack 2 still open. */
	assert_int_equal(r[2].loc.pack, 1);
	assert_int_equal(r[3].loc.pack, 2);
	assert_int_equal(trailer_of(c, 1), 0);
	assert_int_equal(trailer_of(c, 2), -EBADMSG);
	path_of(c, 2, path, sizeof(path));
	assert_int_equal(file_size(path), HDR_LEN + 700);
	assert_int_equal(stash_packs_close(p), 0);
	assert_int_equal(trailer_of(c, 2), 0);
	for (int i = 0; i < 4; i++)
		free(r[i].data);
}

static size_t count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	size_t n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void test_fd_cache(void **state)
{
	struct ctx *c = *state;
	struct stash_packs *p;
	struct rec *r = calloc(150, sizeof(*r));
	size_t base = count_fds();

	assert_non_null(r);
	/* Target 1: every chunk finishes its own pack. */
	assert_int_equal(stash_packs_open(&p, c->dir, c->key, 1), 0);
	for (size_t i = 0; i < 150; i++) {
		rec_make(&r[i], 10, 40);
		rec_append(p, &r[i]);
		assert_int_equal(r[i].loc.pack, i + 1);
		/* Finished packs await fsync, but not without bound. */
		assert_true(count_fds() <= base + 32 + 1);
	}
	assert_int_equal(stash_packs_sync(p), 0);
	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < 150; i++)
			rec_check(p, &r[(i * 7 + (size_t)round) % 150]);
	assert_true(count_fds() <= base + 64 + 1);
	assert_int_equal(stash_packs_close(p), 0);
	assert_int_equal(count_fds(), base);
	recs_free(r, 150);
}

static void test_bad_args(void **state)
{
	struct ctx *c = *state;
	struct stash_packs *p = NULL;
	struct stash_chunk_loc loc = { .pack = 1, .off = 0, .len = 1 };
	uint8_t id[STASH_ID_LEN] = { 0 }, b[1] = { 0 };

	assert_int_equal(stash_packs_open(&p, c->dir, c->key, 0), -EINVAL);
	assert_null(p);
	assert_int_equal(stash_packs_open(&p, c->dir, c->key, 100), 0);
	assert_int_equal(stash_packs_append(p, id, 1, b, 0, &loc), -EINVAL);
	assert_int_equal(stash_packs_read(p, &loc, b), -EINVAL);
	assert_int_equal(stash_packs_close(p), 0);
	/* Nothing was appended, so no pack was created. */
	assert_int_equal(walk_packs(c->dir, NULL, NULL), 0);
	assert_int_equal(stash_packs_close(NULL), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_append_read_many), T(test_real_chunks),
		T(test_reopen),		  T(test_missing),
		T(test_truncated_pack),	  T(test_trailer_format),
		T(test_corrupt_trailer),  T(test_trailer_fn_stops),
		T(test_concurrent),	  T(test_sync),
		T(test_fd_cache),	  T(test_bad_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
