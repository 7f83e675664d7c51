/*
 * test_codec.c - unit tests for store/codec.c.
 *
 * Round trips for both codecs over text, zeros, random data, the empty and
 * the one-byte chunk and a 256 KiB chunk; "store raw" (-ENOSPC) whenever
 * compression does not pay; -EBADMSG for corrupt, truncated, padded or
 * mis-sized input, with guard bytes after every output buffer to prove
 * nothing is written past raw_len; spec parsing; and many threads at once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "codec.h"
#include "util.h"

#define GUARD 64		 /* canary bytes after each output buffer */
#define BIG ((size_t)256 * 1024) /* the largest chunk the chunker makes */

static const int codecs[] = { STASH_CODEC_ZSTD, STASH_CODEC_ZLIB };

/* Deterministic text-like data: words from a small vocabulary. */
static void fill_text(uint8_t *buf, size_t len, uint32_t seed)
{
	static const char *const words[] = {
		"the ",	    "crawler ", "fetched ", "article ", "about ",
		"storage ", "and ",	"wrote ",   "it ",	"to ",
		"disk, ",   "where ",	"stashfs ", "kept ",	"one ",
		"copy.\n",  "JSON ",	"lines ",   "of ",	"{\"url\": ",
	};
	size_t i = 0;

	while (i < len) {
		const char *w;
		size_t n;

		seed = seed * 1103515245u + 12345u;
		w = words[(seed >> 16) % STASH_ARRAY_SIZE(words)];
		n = STASH_MIN(strlen(w), len - i);
		memcpy(buf + i, w, n);
		i += n;
	}
}

/* xorshift: incompressible, deterministic. */
static void fill_random(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed | 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)(x >> 24);
	}
}

/* An output buffer of n bytes followed by GUARD canary bytes. */
static uint8_t *guarded(size_t n)
{
	uint8_t *p = test_malloc(n + GUARD);

	memset(p, 0xa5, n + GUARD);
	return p;
}

static void check_guard(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < GUARD; i++)
		assert_int_equal(p[n + i], 0xa5);
}

/*
 * Compress src with codec at level, expect it to shrink, decompress into an
 * exact-size buffer and compare. Returns the compressed length.
 */
static size_t round_trip(int codec, int level, const uint8_t *src, size_t len)
{
	uint8_t *comp = guarded(len);
	uint8_t *back = guarded(len);
	ssize_t clen;

	clen = stash_codec_compress(codec, level, src, len, comp, len);
	assert_true(clen > 0);
	assert_true((size_t)clen < len);
	check_guard(comp, len);
	assert_int_equal(
		stash_codec_decompress(codec, comp, (size_t)clen, back, len),
		0);
	assert_memory_equal(back, src, len);
	check_guard(back, len);
	test_free(comp);
	test_free(back);
	return (size_t)clen;
}

static void test_text(void **state)
{
	static const int zstd_levels[] = { 0, 1, 3, 9, 19 };
	static const int zlib_levels[] = { 0, 1, 6, 9 };
	uint8_t *src = test_malloc(65536);

	(void)state;
	fill_text(src, 65536, 1);
	for (size_t i = 0; i < STASH_ARRAY_SIZE(zstd_levels); i++)
		assert_true(round_trip(STASH_CODEC_ZSTD, zstd_levels[i], src,
				       65536) < 65536 / 2);
	for (size_t i = 0; i < STASH_ARRAY_SIZE(zlib_levels); i++)
		assert_true(round_trip(STASH_CODEC_ZLIB, zlib_levels[i], src,
				       65536) < 65536 / 2);
	test_free(src);
}

static void test_zeros(void **state)
{
	uint8_t *src = test_calloc(1, BIG);

	(void)state;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(codecs); i++)
		assert_true(round_trip(codecs[i], 0, src, BIG) < 1024);
	test_free(src);
}

static void test_big(void **state)
{
	uint8_t *src = test_malloc(BIG);

	(void)state;
	fill_text(src, BIG, 7);
	/* Some incompressible stretches, as in a real file. */
	fill_random(src + 1000, 20000, 3);
	fill_random(src + 200000, 5000, 4);
	for (size_t i = 0; i < STASH_ARRAY_SIZE(codecs); i++)
		round_trip(codecs[i], 0, src, BIG);
	test_free(src);
}

/* Random data does not compress: the caller is told to store it raw. */
static void test_random(void **state)
{
	uint8_t *src = test_malloc(65536);
	uint8_t *dst = guarded(2 * (size_t)65536);

	(void)state;
	fill_random(src, 65536, 42);
	for (size_t i = 0; i < STASH_ARRAY_SIZE(codecs); i++) {
		/* Even with room to spare, a larger output is refused. */
		assert_int_equal(stash_codec_compress(codecs[i], 0, src, 65536,
						      dst, 2 * (size_t)65536),
				 -ENOSPC);
		check_guard(dst, 2 * (size_t)65536);
	}
	test_free(src);
	test_free(dst);
}

static void test_tiny(void **state)
{
	uint8_t dst[16], one = 'x';

	(void)state;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(codecs); i++) {
		assert_int_equal(stash_codec_compress(codecs[i], 0, "", 0, dst,
						      sizeof(dst)),
				 -ENOSPC);
		assert_int_equal(stash_codec_compress(codecs[i], 0, NULL, 0,
						      dst, sizeof(dst)),
				 -ENOSPC);
		assert_int_equal(stash_codec_compress(codecs[i], 0, &one, 1,
						      dst, sizeof(dst)),
				 -ENOSPC);
		/* Nothing decodes from nothing. */
		assert_int_equal(
			stash_codec_decompress(codecs[i], "", 0, dst, 0),
			-EBADMSG);
	}
	/* The empty chunk stored raw. */
	assert_int_equal(
		stash_codec_decompress(STASH_CODEC_RAW, NULL, 0, NULL, 0), 0);
}

/* An output buffer too small for the result also means "store raw". */
static void test_small_cap(void **state)
{
	uint8_t *src = test_malloc(65536);
	uint8_t dst[64 + GUARD];

	(void)state;
	fill_text(src, 65536, 5);
	for (size_t i = 0; i < STASH_ARRAY_SIZE(codecs); i++) {
		memset(dst, 0xa5, sizeof(dst));
		assert_int_equal(
			stash_codec_compress(codecs[i], 0, src, 65536, dst, 64),
			-ENOSPC);
		check_guard(dst, 64);
		assert_int_equal(
			stash_codec_compress(codecs[i], 0, src, 65536, NULL, 0),
			-ENOSPC);
	}
	test_free(src);
}

static void test_raw(void **state)
{
	uint8_t src[100], dst[100 + GUARD];

	(void)state;
	fill_text(src, sizeof(src), 9);
	assert_int_equal(stash_codec_compress(STASH_CODEC_RAW, 0, src,
					      sizeof(src), dst, sizeof(dst)),
			 -ENOSPC);
	memset(dst, 0xa5, sizeof(dst));
	assert_int_equal(stash_codec_decompress(STASH_CODEC_RAW, src,
						sizeof(src), dst, 100),
			 0);
	assert_memory_equal(dst, src, sizeof(src));
	check_guard(dst, 100);
	assert_int_equal(
		stash_codec_decompress(STASH_CODEC_RAW, src, 99, dst, 100),
		-EBADMSG);
	assert_int_equal(
		stash_codec_decompress(STASH_CODEC_RAW, src, 100, dst, 99),
		-EBADMSG);
}

static void test_bad_codec_or_level(void **state)
{
	uint8_t src[4096], dst[4096];

	(void)state;
	fill_text(src, sizeof(src), 11);
	assert_int_equal(
		stash_codec_compress(3, 0, src, sizeof(src), dst, sizeof(dst)),
		-EINVAL);
	assert_int_equal(
		stash_codec_compress(-1, 0, src, sizeof(src), dst, sizeof(dst)),
		-EINVAL);
	assert_int_equal(stash_codec_decompress(3, src, 10, dst, 10), -EINVAL);
	assert_int_equal(stash_codec_compress(STASH_CODEC_ZSTD, 20, src,
					      sizeof(src), dst, sizeof(dst)),
			 -EINVAL);
	assert_int_equal(stash_codec_compress(STASH_CODEC_ZSTD, -1, src,
					      sizeof(src), dst, sizeof(dst)),
			 -EINVAL);
	assert_int_equal(stash_codec_compress(STASH_CODEC_ZLIB, 10, src,
					      sizeof(src), dst, sizeof(dst)),
			 -EINVAL);
	assert_int_equal(stash_codec_compress(STASH_CODEC_RAW, 3, src,
					      sizeof(src), dst, sizeof(dst)),
			 -EINVAL);
}

/* A compressed 64 KiB text chunk for the corruption tests. */
struct comp_fixture {
	uint8_t src[65536];
	uint8_t comp[65536 + 64]; /* room to append junk */
	uint8_t out[65536 + 1024 + GUARD];
};

static int comp_setup(void **state)
{
	struct comp_fixture *f = test_calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	fill_text(f->src, sizeof(f->src), 13);
	*state = f;
	return 0;
}

static int comp_teardown(void **state)
{
	test_free(*state);
	return 0;
}

static size_t compress_into(struct comp_fixture *f, int codec)
{
	ssize_t n = stash_codec_compress(codec, 0, f->src, sizeof(f->src),
					 f->comp, sizeof(f->comp));

	assert_true(n > 0);
	return (size_t)n;
}

/* Decompress into f->out expecting raw_len bytes; check the guard. */
static int decode(struct comp_fixture *f, int codec, size_t clen,
		  size_t raw_len)
{
	int rc;

	assert_true(raw_len + GUARD <= sizeof(f->out));
	memset(f->out, 0xa5, raw_len + GUARD);
	rc = stash_codec_decompress(codec, f->comp, clen, f->out, raw_len);
	check_guard(f->out, raw_len);
	return rc;
}

static void test_wrong_raw_len(void **state)
{
	struct comp_fixture *f = *state;
	static const size_t wrong[] = { 0, 1, 65535, 65537, 65536 + 1024 };

	for (size_t c = 0; c < STASH_ARRAY_SIZE(codecs); c++) {
		size_t clen = compress_into(f, codecs[c]);

		for (size_t i = 0; i < STASH_ARRAY_SIZE(wrong); i++)
			assert_int_equal(decode(f, codecs[c], clen, wrong[i]),
					 -EBADMSG);
		assert_int_equal(decode(f, codecs[c], clen, 65536), 0);
		assert_memory_equal(f->out, f->src, 65536);
	}
}

static void test_truncated_and_trailing(void **state)
{
	struct comp_fixture *f = *state;

	for (size_t c = 0; c < STASH_ARRAY_SIZE(codecs); c++) {
		size_t clen = compress_into(f, codecs[c]);

		assert_int_equal(decode(f, codecs[c], clen - 1, 65536),
				 -EBADMSG);
		assert_int_equal(decode(f, codecs[c], clen / 2, 65536),
				 -EBADMSG);
		assert_int_equal(decode(f, codecs[c], 3, 65536), -EBADMSG);
		f->comp[clen] = 0;
		assert_int_equal(decode(f, codecs[c], clen + 1, 65536),
				 -EBADMSG);
		memset(f->comp + clen, 0x5a, 64);
		assert_int_equal(decode(f, codecs[c], clen + 64, 65536),
				 -EBADMSG);
	}
}

/* Two zstd frames back to back decode to twice the data: refused. */
static void test_zstd_two_frames(void **state)
{
	struct comp_fixture *f = *state;
	uint8_t small[1000];
	ssize_t n1, n2;

	fill_text(small, sizeof(small), 17);
	n1 = stash_codec_compress(STASH_CODEC_ZSTD, 0, small, 500, f->comp,
				  500);
	assert_true(n1 > 0);
	n2 = stash_codec_compress(STASH_CODEC_ZSTD, 0, small + 500, 500,
				  f->comp + n1, 500);
	assert_true(n2 > 0);
	assert_int_equal(decode(f, STASH_CODEC_ZSTD, (size_t)n1, 500), 0);
	assert_memory_equal(f->out, small, 500);
	assert_int_equal(decode(f, STASH_CODEC_ZSTD, (size_t)(n1 + n2), 1000),
			 -EBADMSG);
	assert_int_equal(decode(f, STASH_CODEC_ZSTD, (size_t)(n1 + n2), 500),
			 -EBADMSG);
}

/*
 * A zstd frame without a content size (not what we write, but what a
 * hostile store could hold): decoded within raw_len all the same.
 */
static void test_zstd_no_content_size(void **state)
{
	struct comp_fixture *f = *state;
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	size_t clen;

	assert_non_null(cctx);
	assert_false(ZSTD_isError(
		ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0)));
	clen = ZSTD_compress2(cctx, f->comp, sizeof(f->comp), f->src,
			      sizeof(f->src));
	assert_false(ZSTD_isError(clen));
	ZSTD_freeCCtx(cctx);
	assert_int_equal(ZSTD_getFrameContentSize(f->comp, clen),
			 ZSTD_CONTENTSIZE_UNKNOWN);

	assert_int_equal(decode(f, STASH_CODEC_ZSTD, clen, 65536), 0);
	assert_memory_equal(f->out, f->src, 65536);
	assert_int_equal(decode(f, STASH_CODEC_ZSTD, clen, 65535), -EBADMSG);
	assert_int_equal(decode(f, STASH_CODEC_ZSTD, clen, 100), -EBADMSG);
	assert_int_equal(decode(f, STASH_CODEC_ZSTD, clen, 65537), -EBADMSG);
}

/* Wrong magic, a skippable frame, junk and the other codec's data. */
static void test_garbage(void **state)
{
	struct comp_fixture *f = *state;
	size_t clen;

	for (size_t c = 0; c < STASH_ARRAY_SIZE(codecs); c++) {
		clen = compress_into(f, codecs[c]);
		f->comp[0] ^= 0x01;
		assert_int_equal(decode(f, codecs[c], clen, 65536), -EBADMSG);
		fill_random(f->comp, 4096, c + 100);
		assert_int_equal(decode(f, codecs[c], 4096, 65536), -EBADMSG);
	}
	clen = compress_into(f, STASH_CODEC_ZLIB);
	assert_int_equal(decode(f, STASH_CODEC_ZSTD, clen, 65536), -EBADMSG);
	clen = compress_into(f, STASH_CODEC_ZSTD);
	assert_int_equal(decode(f, STASH_CODEC_ZLIB, clen, 65536), -EBADMSG);

	/* Skippable frame: magic 0x184D2A50, length 4, 4 bytes. */
	memcpy(f->comp,
	       "\x50\x2a\x4d\x18\x04\x00\x00\x00"
	       "abcd",
	       12);
	assert_int_equal(decode(f, STASH_CODEC_ZSTD, 12, 0), -EBADMSG);
	assert_int_equal(decode(f, STASH_CODEC_ZSTD, 12, 4), -EBADMSG);
}

/*
 * Bit flips all over a small compressed chunk. zlib ends with an Adler-32 of
 * the output, so whatever it accepts must be the original bytes (a flip in
 * the padding bits before the trailer changes nothing and is accepted).
 * zstd frames carry no checksum (AES-GCM authenticates chunks before they
 * get here), so a changed literal can decode to other bytes of the right
 * length: all we ask of zstd is "raw_len bytes or -EBADMSG, never a byte
 * past the buffer".
 */
static void test_every_byte_flipped(void **state)
{
	struct comp_fixture *f = *state;
	const size_t raw = 2000;
	int bad = 0;

	for (size_t c = 0; c < STASH_ARRAY_SIZE(codecs); c++) {
		ssize_t n = stash_codec_compress(codecs[c], 0, f->src, raw,
						 f->comp, raw);

		assert_true(n > 0);
		for (size_t i = 0; i < (size_t)n; i++) {
			for (int bit = 0; bit < 8; bit++) {
				int rc;

				f->comp[i] ^= (uint8_t)(1u << bit);
				rc = decode(f, codecs[c], (size_t)n, raw);
				f->comp[i] ^= (uint8_t)(1u << bit);
				assert_true(rc == 0 || rc == -EBADMSG);
				if (rc == 0 && codecs[c] == STASH_CODEC_ZLIB)
					assert_memory_equal(f->out, f->src,
							    raw);
				bad += rc == -EBADMSG;
			}
		}
		assert_int_equal(decode(f, codecs[c], (size_t)n, raw), 0);
		assert_memory_equal(f->out, f->src, raw);
	}
	assert_true(bad > 0);
}

static void test_parse(void **state)
{
	static const struct {
		const char *spec;
		int codec;
		int level;
	} good[] = {
		{ "none", STASH_CODEC_RAW, 0 },
		{ "zstd", STASH_CODEC_ZSTD, 0 },
		{ "zstd:1", STASH_CODEC_ZSTD, 1 },
		{ "zstd:3", STASH_CODEC_ZSTD, 3 },
		{ "zstd:19", STASH_CODEC_ZSTD, 19 },
		{ "zlib", STASH_CODEC_ZLIB, 0 },
		{ "zlib:1", STASH_CODEC_ZLIB, 1 },
		{ "zlib:9", STASH_CODEC_ZLIB, 9 },
	};
	static const char *const bad[] = {
		"",
		"zstd:",
		"zstd:0",
		"zstd:20",
		"zstd:-1",
		"zstd:+3",
		"zstd: 3",
		"zstd:3 ",
		"zstd:03",
		"zstd:3:4",
		"zstd:1x",
		"zstd:100",
		"zstd:99999999999999999999",
		"zlib:0",
		"zlib:10",
		"zlib:",
		"none:0",
		"none:1",
		"ZSTD",
		"zstd ",
		" zstd",
		"zst",
		"zstdx",
		"lz4",
		"raw",
		":3",
		"gzip",
	};

	(void)state;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(good); i++) {
		int codec = -1, level = -1;

		assert_int_equal(
			stash_codec_parse(good[i].spec, &codec, &level), 0);
		assert_int_equal(codec, good[i].codec);
		assert_int_equal(level, good[i].level);
	}
	for (size_t i = 0; i < STASH_ARRAY_SIZE(bad); i++) {
		int codec = -1, level = -1;

		if (stash_codec_parse(bad[i], &codec, &level) != -EINVAL)
			fail_msg("spec \"%s\" accepted", bad[i]);
		/* Outputs untouched on failure. */
		assert_int_equal(codec, -1);
		assert_int_equal(level, -1);
	}
	{
		int codec, level;

		assert_int_equal(stash_codec_parse(NULL, &codec, &level),
				 -EINVAL);
	}
}

static void test_name(void **state)
{
	(void)state;
	assert_string_equal(stash_codec_name(STASH_CODEC_RAW), "none");
	assert_string_equal(stash_codec_name(STASH_CODEC_ZSTD), "zstd");
	assert_string_equal(stash_codec_name(STASH_CODEC_ZLIB), "zlib");
	assert_string_equal(stash_codec_name(3), "?");
	assert_string_equal(stash_codec_name(-1), "?");
}

/* Several threads compressing at once, each with its own cached contexts. */
#define NTHREADS 8
#define ROUNDS 40

static void *codec_worker(void *arg)
{
	uintptr_t id = (uintptr_t)arg;
	size_t len = 65536;
	uint8_t *src = malloc(len), *comp = malloc(len), *back = malloc(len);
	void *res = NULL;

	if (src == NULL || comp == NULL || back == NULL) {
		res = (void *)1;
		goto out;
	}
	for (int r = 0; r < ROUNDS; r++) {
		int codec = codecs[(id + (uintptr_t)r) % 2];
		ssize_t n;

		fill_text(src, len, (uint32_t)(id * 1000 + (uintptr_t)r));
		n = stash_codec_compress(codec, (int)(r % 5), src, len, comp,
					 len);
		if (n <= 0 ||
		    stash_codec_decompress(codec, comp, (size_t)n, back, len) !=
			    0 ||
		    memcmp(src, back, len) != 0) {
			res = (void *)2;
			goto out;
		}
	}
out:
	free(src);
	free(comp);
	free(back);
	return res;
}

static void test_threads(void **state)
{
	pthread_t th[NTHREADS];

	(void)state;
	for (uintptr_t i = 0; i < NTHREADS; i++)
		assert_int_equal(
			pthread_create(&th[i], NULL, codec_worker, (void *)i),
			0);
	for (int i = 0; i < NTHREADS; i++) {
		void *res = (void *)-1;

		assert_int_equal(pthread_join(th[i], &res), 0);
		assert_null(res);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_zeros),
		cmocka_unit_test(test_big),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_tiny),
		cmocka_unit_test(test_small_cap),
		cmocka_unit_test(test_raw),
		cmocka_unit_test(test_bad_codec_or_level),
		cmocka_unit_test_setup_teardown(test_wrong_raw_len, comp_setup,
						comp_teardown),
		cmocka_unit_test_setup_teardown(test_truncated_and_trailing,
						comp_setup, comp_teardown),
		cmocka_unit_test_setup_teardown(test_zstd_two_frames,
						comp_setup, comp_teardown),
		cmocka_unit_test_setup_teardown(test_zstd_no_content_size,
						comp_setup, comp_teardown),
		cmocka_unit_test_setup_teardown(test_garbage, comp_setup,
						comp_teardown),
		cmocka_unit_test_setup_teardown(test_every_byte_flipped,
						comp_setup, comp_teardown),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_name),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
