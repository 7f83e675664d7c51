/*
 * test_cache.c - unit tests for store/cache: reads (whole, partial, past
 * the end), LRU eviction order, the byte bound, refusals, drop, stats, table
 * growth, and readers and writers on several threads (meant to run under
 * ASan and TSan too). Ownership is checked by the sanitizers: every test
 * ends with stash_cache_free and must leak nothing.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cache.h"

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* A random-looking id for k, like the HMAC outputs the store uses. */
static void make_id(uint8_t id[STASH_ID_LEN], uint64_t k)
{
	for (int i = 0; i < STASH_ID_LEN; i += 8)
		stash_le64enc(id + i, mix(k * 4 + (uint64_t)i / 8 + 1));
}

static uint8_t pattern(uint64_t k, size_t i)
{
	return (uint8_t)(k * 131 + i * 7 + (i >> 8));
}

static void *make_data(uint64_t k, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	assert_non_null(p);
	for (size_t i = 0; i < len; i++)
		p[i] = pattern(k, i);
	return p;
}

static void put(struct stash_cache *c, uint64_t k, size_t len)
{
	uint8_t id[STASH_ID_LEN];

	make_id(id, k);
	stash_cache_put(c, id, make_data(k, len), len);
}

/* Whether k is cached (a read: it counts as a use and a hit or miss). */
static bool cached(struct stash_cache *c, uint64_t k)
{
	uint8_t id[STASH_ID_LEN], b;

	make_id(id, k);
	return stash_cache_read(c, id, 0, &b, 1) >= 0;
}

static struct stash_cache *cache_make(size_t max)
{
	struct stash_cache *c = NULL;

	assert_int_equal(stash_cache_new(&c, max), 0);
	assert_non_null(c);
	return c;
}

static struct stash_cache_stats stats(struct stash_cache *c)
{
	struct stash_cache_stats s;

	stash_cache_stats(c, &s);
	return s;
}

static void test_put_read(void **state)
{
	struct stash_cache *c = cache_make(1 << 20);
	uint8_t id[STASH_ID_LEN], other[STASH_ID_LEN], buf[5000];
	struct stash_cache_stats s;

	(void)state;
	make_id(id, 1);
	make_id(other, 2);
	assert_int_equal(stash_cache_read(c, id, 0, buf, 10), -ENOENT);
	put(c, 1, 4000);

	/* whole */
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(stash_cache_read(c, id, 0, buf, 4000), 4000);
	for (size_t i = 0; i < 4000; i++)
		assert_int_equal(buf[i], pattern(1, i));
	assert_int_equal(buf[4000], 0xee);
	/* partial, inside */
	memset(buf, 0xee, sizeof(buf));
	assert_int_equal(stash_cache_read(c, id, 1000, buf, 20), 20);
	for (size_t i = 0; i < 20; i++)
		assert_int_equal(buf[i], pattern(1, 1000 + i));
	assert_int_equal(buf[20], 0xee);
	/* crossing the end: short */
	assert_int_equal(stash_cache_read(c, id, 3990, buf, 100), 10);
	for (size_t i = 0; i < 10; i++)
		assert_int_equal(buf[i], pattern(1, 3990 + i));
	assert_int_equal(stash_cache_read(c, id, 0, buf, sizeof(buf)), 4000);
	/* at and past the end: 0, and still a hit */
	assert_int_equal(stash_cache_read(c, id, 4000, buf, 10), 0);
	assert_int_equal(stash_cache_read(c, id, 99999, buf, 10), 0);
	assert_int_equal(stash_cache_read(c, id, SIZE_MAX, buf, 10), 0);
	/* zero length */
	assert_int_equal(stash_cache_read(c, id, 0, NULL, 0), 0);
	/* another id */
	assert_int_equal(stash_cache_read(c, other, 0, buf, 10), -ENOENT);

	s = stats(c);
	assert_int_equal(s.hits, 8);
	assert_int_equal(s.misses, 2);
	assert_int_equal(s.bytes, 4000);
	assert_int_equal(s.entries, 1);
	assert_int_equal(s.max_bytes, 1 << 20);
	stash_cache_free(c);
	stash_cache_free(NULL);
}

static void test_lru_order(void **state)
{
	struct stash_cache *c = cache_make(4000);

	(void)state;
	for (uint64_t k = 0; k < 4; k++)
		put(c, k, 1000);
	assert_int_equal(stats(c).entries, 4);
	/* use 0 and 1: now 2 is least recently used, then 3 */
	assert_true(cached(c, 0));
	assert_true(cached(c, 1));
	put(c, 4, 1000);
	assert_int_equal(stats(c).entries, 4);
	assert_false(cached(c, 2));
	/* order now, least recent first: 3 0 1 4 */
	put(c, 5, 1500); /* evicts 3 and 0 */
	assert_false(cached(c, 3));
	assert_false(cached(c, 0));
	assert_true(cached(c, 1));
	assert_true(cached(c, 4));
	assert_true(cached(c, 5));
	assert_int_equal(stats(c).bytes, 3500);
	/* a put of a cached id counts as a use: 1 4 5 -> 4 5 1 */
	put(c, 1, 1000);
	assert_int_equal(stats(c).bytes, 3500);
	put(c, 6, 1000); /* evicts 4 */
	assert_false(cached(c, 4));
	assert_true(cached(c, 5));
	assert_true(cached(c, 1));
	assert_true(cached(c, 6));
	stash_cache_free(c);
}

static void test_byte_bound(void **state)
{
	const size_t max = 100000;
	struct stash_cache *c = cache_make(max);
	uint64_t seed = 42;

	(void)state;
	for (uint64_t k = 0; k < 3000; k++) {
		size_t len = (size_t)(mix(seed++) % 20000);
		struct stash_cache_stats s;

		put(c, k, len);
		s = stats(c);
		assert_true(s.bytes <= max);
		/* the newest entry always survives its own put */
		assert_true(cached(c, k));
		/* and the bound is used: room for the next put was needed */
		assert_true(s.bytes + 20000 > max || s.entries == k + 1);
	}
	stash_cache_free(c);
}

static void test_refusals(void **state)
{
	struct stash_cache *c = cache_make(1000);
	struct stash_cache *z = cache_make(0);
	uint8_t id[STASH_ID_LEN], buf[1100];
	void *p;

	(void)state;
	put(c, 1, 400);
	put(c, 2, 400);
	/* larger than the bound: refused, nothing evicted */
	put(c, 3, 1001);
	assert_false(cached(c, 3));
	assert_true(cached(c, 1));
	assert_true(cached(c, 2));
	assert_int_equal(stats(c).bytes, 800);
	/* exactly the bound: taken, everything else goes */
	put(c, 4, 1000);
	assert_int_equal(stats(c).entries, 1);
	assert_int_equal(stats(c).bytes, 1000);
	assert_true(cached(c, 4));
	assert_false(cached(c, 1));
	/* already cached: the new buffer is freed, the old one kept */
	make_id(id, 4);
	p = malloc(10);
	assert_non_null(p);
	memset(p, 0x55, 10);
	stash_cache_put(c, id, p, 10);
	assert_int_equal(stats(c).bytes, 1000);
	assert_int_equal(stash_cache_read(c, id, 0, buf, sizeof(buf)), 1000);
	assert_int_equal(buf[5], pattern(4, 5));
	/* empty chunks are fine, NULL data included */
	make_id(id, 5);
	stash_cache_put(c, id, NULL, 0);
	assert_int_equal(stash_cache_read(c, id, 0, buf, 10), 0);
	assert_int_equal(stats(c).entries, 2);
	assert_true(cached(c, 4));

	/* a 0-byte cache holds nothing */
	put(z, 1, 1);
	make_id(id, 2);
	stash_cache_put(z, id, NULL, 0);
	assert_false(cached(z, 1));
	assert_int_equal(stash_cache_read(z, id, 0, buf, 1), -ENOENT);
	assert_int_equal(stats(z).entries, 0);
	assert_int_equal(stats(z).bytes, 0);
	assert_int_equal(stats(z).misses, 2);

	assert_int_equal(stash_cache_new(NULL, 10), -EINVAL);
	stash_cache_free(c);
	stash_cache_free(z);
}

static void test_drop(void **state)
{
	struct stash_cache *c = cache_make(10000);
	uint8_t id[STASH_ID_LEN];

	(void)state;
	put(c, 1, 100);
	put(c, 2, 200);
	put(c, 3, 300);
	make_id(id, 2);
	stash_cache_drop(c, id);
	assert_int_equal(stats(c).entries, 2);
	assert_int_equal(stats(c).bytes, 400);
	assert_false(cached(c, 2));
	assert_true(cached(c, 1));
	assert_true(cached(c, 3));
	/* dropping what is not there is a no-op */
	stash_cache_drop(c, id);
	make_id(id, 99);
	stash_cache_drop(c, id);
	assert_int_equal(stats(c).entries, 2);
	/* put again after a drop */
	put(c, 2, 250);
	assert_true(cached(c, 2));
	assert_int_equal(stats(c).bytes, 650);
	/* drop everything, the LRU list stays sound */
	for (uint64_t k = 1; k <= 3; k++) {
		make_id(id, k);
		stash_cache_drop(c, id);
	}
	assert_int_equal(stats(c).entries, 0);
	assert_int_equal(stats(c).bytes, 0);
	put(c, 7, 10);
	assert_true(cached(c, 7));
	stash_cache_free(c);
}

/* Many entries: the table grows; ids sharing their hash bytes still work. */
static void test_growth(void **state)
{
	const uint64_t n = 20000;
	struct stash_cache *c = cache_make(64u << 20);
	uint8_t id[STASH_ID_LEN], buf[64];

	(void)state;
	for (uint64_t k = 0; k < n; k++)
		put(c, k, 16 + k % 48);
	/* ids equal in the bytes the hash uses, different after */
	for (uint64_t k = 0; k < 100; k++) {
		memset(id, 0xab, sizeof(id));
		id[STASH_ID_LEN - 1] = (uint8_t)k;
		stash_cache_put(c, id, make_data(n + k, 32), 32);
	}
	assert_int_equal(stats(c).entries, n + 100);
	for (uint64_t k = 0; k < n; k += 2) {
		make_id(id, k);
		stash_cache_drop(c, id);
	}
	for (uint64_t k = 0; k < n; k++) {
		ssize_t r;

		make_id(id, k);
		r = stash_cache_read(c, id, 0, buf, sizeof(buf));
		if (k % 2 == 0) {
			assert_int_equal(r, -ENOENT);
			continue;
		}
		assert_int_equal(r, 16 + k % 48);
		assert_int_equal(buf[r - 1], pattern(k, (size_t)r - 1));
	}
	for (uint64_t k = 0; k < 100; k++) {
		memset(id, 0xab, sizeof(id));
		id[STASH_ID_LEN - 1] = (uint8_t)k;
		assert_int_equal(stash_cache_read(c, id, 0, buf, 32), 32);
		assert_int_equal(buf[7], pattern(n + k, 7));
	}
	assert_int_equal(stats(c).entries, n / 2 + 100);
	stash_cache_free(c); /* frees what is left */
}

#define THREADS 4
#define IDS 512
#define OPS 100000

struct worker {
	struct stash_cache *c;
	uint64_t seed;
	uint64_t reads; /* reads done by this thread */
};

/* Every id k always maps to the same size and bytes, as chunks do. */
static size_t size_of(uint64_t k)
{
	return 1 + (size_t)(mix(k) % 8192);
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	uint8_t id[STASH_ID_LEN], buf[256];

	for (int i = 0; i < OPS; i++) {
		uint64_t r = mix(w->seed++);
		uint64_t k = (r >> 8) % IDS;
		size_t len = size_of(k), off;
		ssize_t got;

		make_id(id, k);
		switch (r % 8) {
		case 0:
		case 1:
			stash_cache_put(w->c, id, make_data(k, len), len);
			break;
		case 2:
			stash_cache_drop(w->c, id);
			break;
		default:
			off = (size_t)(r >> 32) % (len + 10);
			got = stash_cache_read(w->c, id, off, buf, sizeof(buf));
			w->reads++;
			if (got == -ENOENT)
				break;
			/* any answer must be the chunk's own bytes */
			if (got < 0 ||
			    (size_t)got != (off < len ? STASH_MIN(len - off,
								  sizeof(buf))
						      : 0))
				return (void *)1;
			for (ssize_t j = 0; j < got; j++)
				if (buf[j] != pattern(k, off + (size_t)j))
					return (void *)1;
		}
	}
	return NULL;
}

static void test_threads(void **state)
{
	const size_t max = 1024 * 1024; /* half the working set */
	struct stash_cache *c = cache_make(max);
	struct worker w[THREADS];
	pthread_t t[THREADS];
	struct stash_cache_stats s;
	uint64_t reads = 0;

	(void)state;
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ c, (uint64_t)i << 40, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]),
				 0);
	}
	for (int i = 0; i < THREADS; i++) {
		void *ret = (void *)1;

		assert_int_equal(pthread_join(t[i], &ret), 0);
		assert_null(ret);
		reads += w[i].reads;
	}
	s = stats(c);
	printf("    %d threads: %llu hits, %llu misses, %llu entries, %llu bytes\n",
	       THREADS, (unsigned long long)s.hits,
	       (unsigned long long)s.misses, (unsigned long long)s.entries,
	       (unsigned long long)s.bytes);
	assert_int_equal(s.hits + s.misses, reads);
	assert_true(s.hits > 0 && s.misses > 0);
	assert_true(s.bytes <= max);
	stash_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_read),
		cmocka_unit_test(test_lru_order),
		cmocka_unit_test(test_byte_bound),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_drop),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
