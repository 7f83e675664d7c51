/*
 * test_chunker.c - unit tests for store/chunker: what deduplication relies
 * on (sizes, determinism, resistance to shifted boundaries, equal cuts
 * however the data is fed), the exact format (an independent reference
 * implementation of the documented gear table and cut rule, plus known
 * answers), and parameter checks.
 *
 * Throughput is printed, never asserted: timing belongs to tools/bench/.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "chunker.h"

#define MiB (1024u * 1024)

static const struct stash_chunker_params defaults = {
	STASH_CHUNK_MIN_DEFAULT,
	STASH_CHUNK_AVG_DEFAULT,
	STASH_CHUNK_MAX_DEFAULT,
};

/* Small parameters give thousands of chunks from a few MiB. */
static const struct stash_chunker_params smallp = { 512, 2048, 8192 };

struct cuts {
	size_t *v; /* chunk lengths, in order */
	size_t n;  /* entries used */
	size_t cap;
};

static void cuts_push(struct cuts *cs, size_t len)
{
	if (cs->n == cs->cap) {
		cs->cap = cs->cap ? 2 * cs->cap : 1024;
		cs->v = realloc(cs->v, cs->cap * sizeof(*cs->v));
		assert_non_null(cs->v);
	}
	cs->v[cs->n++] = len;
}

static void cuts_release(struct cuts *cs)
{
	free(cs->v);
	memset(cs, 0, sizeof(*cs));
}

/* splitmix64: fast, reproducible test data. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint8_t *random_data(size_t len, uint64_t seed)
{
	uint8_t *p = malloc(len + 8);

	assert_non_null(p);
	for (size_t i = 0; i < len; i += 8)
		stash_le64enc(p + i, rng_next(&seed));
	return p;
}

static void key_fill(uint8_t key[STASH_KEY_LEN], uint8_t base)
{
	for (int i = 0; i < STASH_KEY_LEN; i++)
		key[i] = (uint8_t)(base + i);
}

static struct stash_chunker *chunker_make(const struct stash_chunker_params *p,
					  uint8_t keybase)
{
	struct stash_chunker *c = NULL;
	uint8_t key[STASH_KEY_LEN];

	key_fill(key, keybase);
	assert_int_equal(stash_chunker_new(&c, p, key), 0);
	assert_non_null(c);
	return c;
}

/* Cut a whole buffer the way a writer with all data at hand would. */
static void cut_all(const struct stash_chunker *c, const uint8_t *buf,
		    size_t len, struct cuts *cs)
{
	size_t off = 0;

	while (off < len) {
		size_t n = stash_chunker_cut(c, buf + off, len - off, true);

		assert_true(n > 0 && n <= len - off);
		cuts_push(cs, n);
		off += n;
	}
}

/* ---- reference implementation of the documented format ---- */

struct ref {
	uint64_t gear[256];
	uint64_t mask_s, mask_l;
	struct stash_chunker_params p;
};

static void ref_init(struct ref *r, const struct stash_chunker_params *p,
		     const uint8_t key[STASH_KEY_LEN])
{
	static const char label[] = "stashfs chunker gear v1";
	uint8_t msg[sizeof(label) - 1 + 4];
	uint8_t out[32];
	unsigned int outl;
	int bits = 0;

	memcpy(msg, label, sizeof(label) - 1);
	for (uint32_t j = 0; j < 64; j++) {
		stash_le32enc(msg + sizeof(label) - 1, j);
		assert_non_null(HMAC(EVP_sha256(), key, STASH_KEY_LEN, msg,
				     sizeof(msg), out, &outl));
		assert_int_equal(outl, 32);
		for (int k = 0; k < 4; k++)
			r->gear[4 * j + k] = stash_le64dec(out + 8 * k);
	}
	while ((1u << bits) < p->avg)
		bits++;
	r->mask_s = ~UINT64_C(0) << (64 - (bits + 2));
	r->mask_l = ~UINT64_C(0) << (64 - (bits - 2));
	r->p = *p;
}

/* Byte at a time, straight from the description in chunker.c. */
static size_t ref_cut(const struct ref *r, const uint8_t *buf, size_t len,
		      bool final)
{
	uint64_t fp = 0;

	for (size_t i = r->p.min; i < len && i < r->p.max; i++) {
		uint64_t mask = i < r->p.avg ? r->mask_s : r->mask_l;

		fp = (fp << 1) + r->gear[buf[i]];
		if ((fp & mask) == 0)
			return i + 1;
	}
	if (len >= r->p.max)
		return r->p.max;
	return final ? len : 0;
}

/* ---- tests ---- */

static void test_params_check(void **state)
{
	static const struct {
		struct stash_chunker_params p;
		int want;
	} cases[] = {
		{ { 16384, 65536, 262144 }, 0 },
		{ { 64, 128, 129 }, 0 },
		{ { 64, 4u * MiB, 8u * MiB }, 0 },
		{ { 1 * MiB, 4u * MiB, STASH_CHUNK_MAX_LIMIT }, 0 },
		{ { 63, 128, 256 }, -EINVAL },		   /* min too small */
		{ { 0, 128, 256 }, -EINVAL },		   /* min zero */
		{ { 128, 128, 256 }, -EINVAL },		   /* min == avg */
		{ { 256, 128, 512 }, -EINVAL },		   /* min > avg */
		{ { 64, 256, 256 }, -EINVAL },		   /* avg == max */
		{ { 64, 512, 256 }, -EINVAL },		   /* avg > max */
		{ { 64, 96, 256 }, -EINVAL },		   /* avg not 2^n */
		{ { 64, 65535, 1 * MiB }, -EINVAL },	   /* avg not 2^n */
		{ { 64, 1 * MiB, 8 * MiB + 1 }, -EINVAL }, /* max > limit */
		{ { 64, 8 * MiB, 16 * MiB }, -EINVAL },	   /* max > limit */
		{ { 64, 1u << 31, UINT32_MAX }, -EINVAL },
	};
	struct stash_chunker *c = (struct stash_chunker *)&c; /* sentinel */
	uint8_t key[STASH_KEY_LEN];

	(void)state;
	key_fill(key, 1);
	for (size_t i = 0; i < STASH_ARRAY_SIZE(cases); i++) {
		int ret = stash_chunker_params_check(&cases[i].p);

		if (ret != cases[i].want)
			fail_msg("case %zu: %d, want %d", i, ret,
				 cases[i].want);
		if (cases[i].want) {
			/* new refuses the same and leaves *out alone */
			assert_int_equal(
				stash_chunker_new(&c, &cases[i].p, key),
				-EINVAL);
			assert_ptr_equal(c, (struct stash_chunker *)&c);
		}
	}
	assert_int_equal(stash_chunker_params_check(NULL), -EINVAL);
	assert_int_equal(stash_chunker_new(&c, NULL, key), -EINVAL);
	assert_int_equal(stash_chunker_new(&c, &defaults, NULL), -EINVAL);
	assert_int_equal(stash_chunker_new(NULL, &defaults, key), -EINVAL);

	c = chunker_make(&defaults, 1);
	assert_memory_equal(stash_chunker_params(c), &defaults,
			    sizeof(defaults));
	stash_chunker_free(c);
	stash_chunker_free(NULL);
}

static void check_sizes(const struct stash_chunker_params *p, size_t len,
			uint64_t seed)
{
	struct stash_chunker *c = chunker_make(p, 7);
	uint8_t *buf = random_data(len, seed);
	struct cuts cs = { 0 };
	size_t total = 0;
	double mean;

	cut_all(c, buf, len, &cs);
	for (size_t i = 0; i < cs.n; i++) {
		if (i + 1 < cs.n) {
			assert_in_range(cs.v[i], p->min, p->max);
		} else {
			assert_in_range(cs.v[i], 1, p->max);
		}
		total += cs.v[i];
	}
	assert_int_equal(total, len);
	mean = (double)len / (double)cs.n;
	printf("    %u/%u/%u over %zu MiB: %zu chunks, mean %.0f (%.2f x avg)\n",
	       p->min, p->avg, p->max, len / MiB, cs.n, mean, mean / p->avg);
	assert_true(mean >= 0.5 * p->avg && mean <= 2.0 * p->avg);
	cuts_release(&cs);
	free(buf);
	stash_chunker_free(c);
}

static void test_sizes(void **state)
{
	static const struct stash_chunker_params tiny = { 64, 128, 1024 };
	static const struct stash_chunker_params wide = { 64, 4096, 65536 };

	(void)state;
	check_sizes(&defaults, 64 * MiB, 1);
	check_sizes(&smallp, 8 * MiB, 2);
	check_sizes(&tiny, 2 * MiB, 3);
	check_sizes(&wide, 8 * MiB, 4);
}

static void test_throughput(void **state)
{
	const size_t len = 64 * MiB;
	struct stash_chunker *c = chunker_make(&defaults, 9);
	uint8_t *buf = random_data(len, 99);
	uint64_t best = UINT64_MAX;
	size_t chunks = 0;

	(void)state;
	for (int pass = 0; pass < 3; pass++) {
		uint64_t t0 = stash_now_ns(), dt;
		size_t off = 0;

		chunks = 0;
		while (off < len) {
			off += stash_chunker_cut(c, buf + off, len - off, true);
			chunks++;
		}
		dt = stash_now_ns() - t0;
		if (dt < best)
			best = dt;
	}
	printf("    throughput: %.0f MB/s (best of 3 over %zu MiB, %zu chunks)\n",
	       (double)len / 1e6 / ((double)best / 1e9), len / MiB, chunks);
	free(buf);
	stash_chunker_free(c);
}

static void test_matches_reference(void **state)
{
	static const struct stash_chunker_params ps[] = {
		{ STASH_CHUNK_MIN_DEFAULT, STASH_CHUNK_AVG_DEFAULT,
		  STASH_CHUNK_MAX_DEFAULT },
		{ 512, 2048, 8192 },
		{ 64, 128, 129 },
		{ 64, 128, 1000 },
		{ 100, 1024, 1027 },
		{ 1000, 1024, 100000 },
	};
	const size_t len = 4 * MiB;
	uint8_t *buf = random_data(len, 5);
	uint8_t key[STASH_KEY_LEN];
	struct ref *r = malloc(sizeof(*r));

	(void)state;
	assert_non_null(r);
	key_fill(key, 0x40);
	for (size_t k = 0; k < STASH_ARRAY_SIZE(ps); k++) {
		struct stash_chunker *c = chunker_make(&ps[k], 0x40);
		size_t off = 0, n = 0;

		ref_init(r, &ps[k], key);
		while (off < len) {
			size_t want = ref_cut(r, buf + off, len - off, true);
			size_t got = stash_chunker_cut(c, buf + off, len - off,
						       true);

			if (got != want)
				fail_msg(
					"params %zu chunk %zu at %zu: %zu, want %zu",
					k, n, off, got, want);
			/* also every short length, final or not, near a cut */
			for (size_t l = want > 8 ? want - 8 : 0;
			     l < want + 8 && off + l <= len; l++) {
				assert_int_equal(
					stash_chunker_cut(c, buf + off, l,
							  false),
					ref_cut(r, buf + off, l, false));
				assert_int_equal(
					stash_chunker_cut(c, buf + off, l,
							  true),
					ref_cut(r, buf + off, l, true));
			}
			off += want;
			n++;
		}
		stash_chunker_free(c);
	}
	free(r);
	free(buf);
}

/*
 * Known answers: the first cuts for key 00 01 .. 1f over splitmix64(seed 0)
 * data with the default parameters. These pin the store format; a change
 * here means stores made before it would chunk differently.
 */
static void test_known_answers(void **state)
{
	static const size_t want[] = {
		80959, 78673, 84157, 67176, 31457, 85781, 74525, 135067,
	};
	const size_t len = 2 * MiB;
	struct stash_chunker *c = chunker_make(&defaults, 0);
	uint8_t *buf = random_data(len, 0);
	struct cuts cs = { 0 };

	(void)state;
	cut_all(c, buf, len, &cs);
	assert_true(cs.n >= STASH_ARRAY_SIZE(want));
	for (size_t i = 0; i < STASH_ARRAY_SIZE(want); i++)
		assert_int_equal(cs.v[i], want[i]);
	cuts_release(&cs);
	free(buf);
	stash_chunker_free(c);
}

static void test_determinism(void **state)
{
	const size_t len = 16 * MiB;
	uint8_t *buf = random_data(len, 11);
	struct stash_chunker *a = chunker_make(&smallp, 1);
	struct stash_chunker *b = chunker_make(&smallp, 1);
	struct stash_chunker *o = chunker_make(&smallp, 2);
	struct cuts ca = { 0 }, cb = { 0 }, co = { 0 };
	size_t shared = 0, ia = 0, io = 0, pa = 0, po = 0;

	(void)state;
	cut_all(a, buf, len, &ca);
	cut_all(b, buf, len, &cb);
	cut_all(o, buf, len, &co);
	assert_int_equal(ca.n, cb.n);
	assert_memory_equal(ca.v, cb.v, ca.n * sizeof(*ca.v));

	/* Another key: cut offsets should coincide only by chance. */
	while (ia < ca.n && io < co.n) {
		if (pa == po)
			shared++;
		if (pa <= po)
			pa += ca.v[ia++];
		else
			po += co.v[io++];
	}
	printf("    other key: %zu of %zu cut offsets shared\n", shared, ca.n);
	assert_true(shared < ca.n / 20);

	cuts_release(&ca);
	cuts_release(&cb);
	cuts_release(&co);
	stash_chunker_free(a);
	stash_chunker_free(b);
	stash_chunker_free(o);
	free(buf);
}

static int cmp_size(const void *x, const void *y)
{
	size_t a = *(const size_t *)x, b = *(const size_t *)y;

	return (a > b) - (a < b);
}

/*
 * Cut d1 and d2, and count the chunks of d2 that are byte-identical to some
 * chunk of d1. For the edits tested, an equal chunk can only sit at the
 * same offset (shifted by delta), which a binary search over d1's chunk
 * starts finds; memcmp confirms it.
 */
static size_t count_shared(const struct stash_chunker *c, const uint8_t *d1,
			   size_t l1, const uint8_t *d2, size_t l2,
			   size_t *n2_out)
{
	struct cuts c1 = { 0 }, c2 = { 0 };
	size_t *start1, shared = 0, off1 = 0, off2 = 0;

	cut_all(c, d1, l1, &c1);
	cut_all(c, d2, l2, &c2);
	start1 = malloc(c1.n * sizeof(*start1));
	assert_non_null(start1);
	for (size_t i = 0; i < c1.n; i++) {
		start1[i] = off1;
		off1 += c1.v[i];
	}
	for (size_t i = 0; i < c2.n; off2 += c2.v[i], i++) {
		for (long delta = -1; delta <= 1; delta++) {
			size_t s = off2 + (size_t)delta;
			const size_t *hit;
			size_t j;

			if (off2 == 0 && delta < 0)
				continue;
			hit = bsearch(&s, start1, c1.n, sizeof(*start1),
				      cmp_size);
			if (!hit)
				continue;
			j = (size_t)(hit - start1);
			if (c1.v[j] == c2.v[i] &&
			    !memcmp(d1 + s, d2 + off2, c2.v[i])) {
				shared++;
				break;
			}
		}
	}
	*n2_out = c2.n;
	free(start1);
	cuts_release(&c1);
	cuts_release(&c2);
	return shared;
}

static void check_shift(const struct stash_chunker_params *p, size_t len)
{
	struct stash_chunker *c = chunker_make(p, 3);
	uint8_t *d = random_data(len, 21);
	uint8_t *x = malloc(len + 1);
	size_t n2, shared, mid = len / 2;

	assert_non_null(x);
	/* one byte inserted at the front */
	x[0] = 'X';
	memcpy(x + 1, d, len);
	shared = count_shared(c, d, len, x, len + 1, &n2);
	printf("    %u/%u/%u insert at front: %zu of %zu chunks shared\n",
	       p->min, p->avg, p->max, shared, n2);
	assert_true(shared * 100 > n2 * 95);
	assert_true(n2 - shared <= 2);

	/* one byte inserted in the middle */
	memcpy(x, d, mid);
	x[mid] = 'X';
	memcpy(x + mid + 1, d + mid, len - mid);
	shared = count_shared(c, d, len, x, len + 1, &n2);
	printf("    %u/%u/%u insert in middle: %zu of %zu chunks shared\n",
	       p->min, p->avg, p->max, shared, n2);
	assert_true(shared * 100 > n2 * 95);
	assert_true(n2 - shared <= 3);

	/* one byte deleted in the middle */
	memcpy(x, d, mid);
	memcpy(x + mid, d + mid + 1, len - mid - 1);
	shared = count_shared(c, d, len, x, len - 1, &n2);
	printf("    %u/%u/%u delete in middle: %zu of %zu chunks shared\n",
	       p->min, p->avg, p->max, shared, n2);
	assert_true(shared * 100 > n2 * 95);
	assert_true(n2 - shared <= 3);

	free(x);
	free(d);
	stash_chunker_free(c);
}

static void test_shift_resistance(void **state)
{
	(void)state;
	check_shift(&defaults, 32 * MiB);
	check_shift(&smallp, 8 * MiB);
}

/*
 * A writer that gets data in pieces: it keeps what has not been cut yet and
 * asks again after each piece. Each call sees an exact-size heap copy, so
 * ASan catches any read past len.
 */
static void cut_streaming(const struct stash_chunker *c, const uint8_t *data,
			  size_t len, size_t max_piece, uint64_t seed,
			  struct cuts *cs)
{
	size_t start = 0, avail = 0;

	while (start < len) {
		bool final = avail == len;
		size_t have = avail - start, n;
		uint8_t *win = malloc(have ? have : 1);

		assert_non_null(win);
		memcpy(win, data + start, have);
		n = stash_chunker_cut(c, win, have, final);
		free(win);
		assert_true(n <= have);
		if (n) {
			cuts_push(cs, n);
			start += n;
		} else {
			assert_false(final);
			avail += 1 + rng_next(&seed) % max_piece;
			if (avail > len)
				avail = len;
		}
	}
}

static void check_streaming(const struct stash_chunker_params *p, size_t len,
			    size_t max_piece)
{
	struct stash_chunker *c = chunker_make(p, 4);
	uint8_t *d = random_data(len, 31);
	struct cuts whole = { 0 }, pieces = { 0 };

	cut_all(c, d, len, &whole);
	cut_streaming(c, d, len, max_piece, 77 + max_piece, &pieces);
	assert_int_equal(whole.n, pieces.n);
	assert_memory_equal(whole.v, pieces.v, whole.n * sizeof(*whole.v));
	cuts_release(&whole);
	cuts_release(&pieces);
	free(d);
	stash_chunker_free(c);
}

static void test_streaming(void **state)
{
	static const struct stash_chunker_params tiny = { 64, 256, 1024 };

	(void)state;
	check_streaming(&defaults, 8 * MiB, 100000);
	check_streaming(&defaults, 4 * MiB, 4096);
	check_streaming(&smallp, 2 * MiB, 3000);
	check_streaming(&tiny, 256 * 1024, 1);
	check_streaming(&tiny, 1 * MiB, 37);
}

static void test_final(void **state)
{
	/* below avg a cut is unlikely, so many buffers end at max */
	static const struct stash_chunker_params p = { 64, 4096, 4160 };
	struct stash_chunker *c = chunker_make(&p, 5);
	struct stash_chunker *d = chunker_make(&defaults, 5);
	uint8_t *buf = random_data(2 * p.max, 0);
	uint8_t *zero = calloc(1, 3 * defaults.max);
	size_t at_max = 0, inside = 0, cut;
	uint64_t seed = 1234;

	(void)state;
	assert_non_null(zero);
	/* nothing, or less than min: 0 unless final, then all of it */
	assert_int_equal(stash_chunker_cut(c, buf, 0, false), 0);
	assert_int_equal(stash_chunker_cut(c, buf, 0, true), 0);
	assert_int_equal(stash_chunker_cut(c, buf, 1, false), 0);
	assert_int_equal(stash_chunker_cut(c, buf, 1, true), 1);
	assert_int_equal(stash_chunker_cut(c, buf, p.min, false), 0);
	assert_int_equal(stash_chunker_cut(c, buf, p.min, true), p.min);

	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < 2 * p.max; i += 8)
			stash_le64enc(buf + i, rng_next(&seed));
		cut = stash_chunker_cut(c, buf, 2 * p.max, false);
		assert_in_range(cut, p.min + 1, p.max);
		/* data behind the cut does not move it */
		assert_int_equal(stash_chunker_cut(c, buf, cut, false), cut);
		assert_int_equal(stash_chunker_cut(c, buf, cut, true), cut);
		assert_int_equal(stash_chunker_cut(c, buf, p.max, false), cut);
		/* one byte short of the cut: no cut in sight */
		assert_int_equal(stash_chunker_cut(c, buf, cut - 1, false), 0);
		assert_int_equal(stash_chunker_cut(c, buf, cut - 1, true),
				 cut - 1);
		if (cut == p.max) {
			/* no cut at all: max, whether final or not */
			at_max++;
			assert_int_equal(stash_chunker_cut(c, buf, p.max, true),
					 p.max);
			assert_int_equal(
				stash_chunker_cut(c, buf, p.max + 1, false),
				p.max);
		} else {
			inside++;
		}
	}
	/* both branches above were taken */
	assert_true(at_max > 0 && inside > 0);

	/* data with no cut point: chunks of exactly max, then the rest */
	cut = stash_chunker_cut(d, zero, 3 * defaults.max, false);
	if (cut == defaults.max) {
		struct cuts cs = { 0 };

		cut_all(d, zero, 3 * defaults.max - 5, &cs);
		assert_int_equal(cs.n, 3);
		assert_int_equal(cs.v[0], defaults.max);
		assert_int_equal(cs.v[1], defaults.max);
		assert_int_equal(cs.v[2], defaults.max - 5);
		cuts_release(&cs);
	}
	free(zero);
	free(buf);
	stash_chunker_free(c);
	stash_chunker_free(d);
}

/* Records: cut at record ends once past the minimum; long ones inside. */
static void test_records(void **state)
{
	const struct stash_chunker_params p = { 1024, 4096, 16384 };
	struct stash_chunker *c = chunker_make(&p, 7);
	size_t big = STASH_RECORD_MIN + 100, len = 0, n;
	uint8_t *buf = malloc(64 * 1024);

	(void)state;
	assert_non_null(buf);
	/* Three records of 2148 bytes: one chunk each. */
	for (int r = 0; r < 3; r++) {
		memset(buf + len, 'a' + r, big - 1);
		buf[len + big - 1] = '\n';
		len += big;
	}
	assert_int_equal(stash_chunker_cut_records(c, buf, len, false), big);
	assert_int_equal(
		stash_chunker_cut_records(c, buf + big, len - big, false), big);
	/* The last one: a cut only once the data is known to end here. */
	assert_int_equal(
		stash_chunker_cut_records(c, buf + 2 * big, big - 1, false), 0);
	assert_int_equal(
		stash_chunker_cut_records(c, buf + 2 * big, big - 1, true),
		big - 1);

	/* Small records are grouped: 300-byte lines, cut at the first line
	 * end at or past 2048 bytes (7 lines = 2100). */
	for (size_t i = 0; i < 20 * 300; i++)
		buf[i] = (i % 300 == 299) ? '\n' : 'x';
	n = stash_chunker_cut_records(c, buf, 20 * 300, false);
	assert_int_equal(n, 7 * 300);
	/* Editing a later record leaves the first chunk as it was. */
	memset(buf + 10 * 300, 'y', 100);
	assert_int_equal(stash_chunker_cut_records(c, buf, 20 * 300, false), n);

	/* One record longer than max: cut inside it, as for any data. */
	memset(buf, 'z', 64 * 1024); /* no line end anywhere */
	for (size_t i = 0; i < 64 * 1024; i += 7)
		buf[i] = (uint8_t)(i >> 3) | 1; /* never '\n' (even 10) */
	n = stash_chunker_cut_records(c, buf, 64 * 1024, false);
	assert_int_equal(n, stash_chunker_cut(c, buf, 64 * 1024, false));
	assert_true(n > 0 && n <= p.max);
	free(buf);
	stash_chunker_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_params_check),
		cmocka_unit_test(test_matches_reference),
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_determinism),
		cmocka_unit_test(test_shift_resistance),
		cmocka_unit_test(test_streaming),
		cmocka_unit_test(test_final),
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_throughput),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
