/*
 * test_chunk.c - unit tests for the sealed chunk format (store/chunk.c):
 * round trips, the raw fallback, and -EBADMSG for every way a sealed
 * chunk can be damaged or presented under the wrong identity.
 *
 * Uses the real crypto and codec modules; no files, no FUSE.
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
#include <sys/types.h>

#include <cmocka.h>

#include "chunk.h"
#include "codec.h"
#include "crypto.h"

#define KEY_ID 7

struct fixture {
	uint8_t key[STASH_KEY_LEN];
	uint8_t id[STASH_ID_LEN];
	uint8_t *plain;	 /* test data */
	size_t len;	 /* its length */
	uint8_t *sealed; /* stash_chunk_sealed_max(len) bytes */
	size_t slen;	 /* sealed length after encode */
	uint8_t *out;	 /* decode target, len bytes (at least 1) */
};

static void make_text(uint8_t *buf, size_t len)
{
	static const char words[] =
		"the crawler fetched an article about filesystems and "
		"stored it as one JSON object per file, ";
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)words[i % (sizeof(words) - 1)];
}

static void fixture_init(struct fixture *f, size_t len, bool text)
{
	assert_int_equal(stash_crypto_random(f->key, sizeof(f->key)), 0);
	f->len = len;
	f->plain = malloc(len ? len : 1);
	f->sealed = malloc(stash_chunk_sealed_max(len));
	f->out = malloc(len ? len : 1);
	assert_non_null(f->plain);
	assert_non_null(f->sealed);
	assert_non_null(f->out);
	if (text)
		make_text(f->plain, len);
	else if (len)
		assert_int_equal(stash_crypto_random(f->plain, len), 0);
	assert_int_equal(stash_crypto_hmac(f->key, f->plain, len, f->id), 0);
}

static void fixture_encode(struct fixture *f, int codec)
{
	ssize_t n = stash_chunk_encode(f->key, KEY_ID, f->id, codec, 0,
				       f->plain, f->len, f->sealed);

	assert_true(n >= (ssize_t)STASH_CHUNK_OVERHEAD);
	assert_true((size_t)n <= stash_chunk_sealed_max(f->len));
	f->slen = (size_t)n;
}

static int fixture_decode(struct fixture *f)
{
	return stash_chunk_decode(f->key, KEY_ID, f->id, f->sealed, f->slen,
				  f->out, f->len);
}

static void fixture_release(struct fixture *f)
{
	free(f->plain);
	free(f->sealed);
	free(f->out);
}

static void round_trip(size_t len, bool text, int codec)
{
	struct fixture f;

	fixture_init(&f, len, text);
	fixture_encode(&f, codec);
	assert_int_equal(f.sealed[0], STASH_CHUNK_VERSION);
	assert_int_equal(fixture_decode(&f), 0);
	if (len)
		assert_memory_equal(f.out, f.plain, len);
	if (text && codec != STASH_CODEC_RAW) {
		/* Repetitive text must actually be compressed. */
		assert_int_equal(f.sealed[1], codec);
		assert_true(f.slen < len / 2);
	}
	fixture_release(&f);
}

static void test_round_trip_text(void **state)
{
	(void)state;
	round_trip(64 * 1024, true, STASH_CODEC_ZSTD);
	round_trip(64 * 1024, true, STASH_CODEC_ZLIB);
	round_trip(64 * 1024, true, STASH_CODEC_RAW);
	round_trip(1000, true, STASH_CODEC_ZSTD);
}

static void test_round_trip_random(void **state)
{
	(void)state;
	round_trip(64 * 1024, false, STASH_CODEC_ZSTD);
	round_trip(1, false, STASH_CODEC_ZSTD);
	round_trip(3, false, STASH_CODEC_ZLIB);
}

static void test_round_trip_empty(void **state)
{
	struct fixture f;

	(void)state;
	fixture_init(&f, 0, false);
	fixture_encode(&f, STASH_CODEC_ZSTD);
	assert_int_equal(f.slen, STASH_CHUNK_OVERHEAD);
	assert_int_equal(f.sealed[1], STASH_CODEC_RAW);
	assert_int_equal(fixture_decode(&f), 0);
	/* An empty chunk is authenticated too. */
	f.sealed[f.slen - 1] ^= 1;
	assert_int_equal(fixture_decode(&f), -EBADMSG);
	fixture_release(&f);
}

static void test_raw_fallback(void **state)
{
	struct fixture f;

	(void)state;
	fixture_init(&f, 16 * 1024, false);
	fixture_encode(&f, STASH_CODEC_ZSTD);
	/* Random data does not shrink: stored raw, exactly the overhead
	 * on top. */
	assert_int_equal(f.sealed[1], STASH_CODEC_RAW);
	assert_int_equal(f.slen, f.len + STASH_CHUNK_OVERHEAD);
	assert_int_equal(fixture_decode(&f), 0);
	assert_memory_equal(f.out, f.plain, f.len);
	fixture_release(&f);
}

static void test_fresh_nonce(void **state)
{
	struct fixture f;
	uint8_t *first;

	(void)state;
	fixture_init(&f, 4096, true);
	fixture_encode(&f, STASH_CODEC_ZSTD);
	first = malloc(f.slen);
	assert_non_null(first);
	memcpy(first, f.sealed, f.slen);
	fixture_encode(&f, STASH_CODEC_ZSTD);
	/* Same data, same key: a new nonce, so different bytes. */
	assert_memory_not_equal(first + 2, f.sealed + 2, STASH_NONCE_LEN);
	free(first);
	fixture_release(&f);
}

static void flip_every_bit(size_t len, bool text)
{
	struct fixture f;

	fixture_init(&f, len, text);
	fixture_encode(&f, STASH_CODEC_ZSTD);
	for (size_t i = 0; i < f.slen; i++) {
		for (int bit = 0; bit < 8; bit++) {
			f.sealed[i] ^= (uint8_t)(1u << bit);
			assert_int_equal(fixture_decode(&f), -EBADMSG);
			f.sealed[i] ^= (uint8_t)(1u << bit);
		}
	}
	assert_int_equal(fixture_decode(&f), 0);
	fixture_release(&f);
}

static void test_flipped_bit(void **state)
{
	(void)state;
	flip_every_bit(2000, true); /* compressed */
	flip_every_bit(300, false); /* raw */
}

static void test_wrong_identity(void **state)
{
	struct fixture f;
	uint8_t other[STASH_KEY_LEN];

	(void)state;
	fixture_init(&f, 8192, true);
	fixture_encode(&f, STASH_CODEC_ZSTD);

	f.id[5] ^= 0x40;
	assert_int_equal(fixture_decode(&f), -EBADMSG);
	f.id[5] ^= 0x40;

	assert_int_equal(stash_chunk_decode(f.key, KEY_ID + 1, f.id, f.sealed,
					    f.slen, f.out, f.len),
			 -EBADMSG);
	assert_int_equal(stash_chunk_decode(f.key, 0, f.id, f.sealed, f.slen,
					    f.out, f.len),
			 -EBADMSG);

	assert_int_equal(stash_crypto_random(other, sizeof(other)), 0);
	assert_int_equal(stash_chunk_decode(other, KEY_ID, f.id, f.sealed,
					    f.slen, f.out, f.len),
			 -EBADMSG);

	assert_int_equal(fixture_decode(&f), 0);
	fixture_release(&f);
}

static void test_truncated(void **state)
{
	struct fixture f;

	(void)state;
	fixture_init(&f, 3000, true);
	fixture_encode(&f, STASH_CODEC_ZSTD);
	for (size_t n = 0; n < f.slen; n++)
		assert_int_equal(stash_chunk_decode(f.key, KEY_ID, f.id,
						    f.sealed, n, f.out, f.len),
				 -EBADMSG);
	fixture_release(&f);
}

static void test_header_bytes(void **state)
{
	struct fixture f;
	uint8_t orig;

	(void)state;
	fixture_init(&f, 5000, true);
	fixture_encode(&f, STASH_CODEC_ZLIB);

	orig = f.sealed[0];
	for (int v = 0; v < 256; v++) {
		if (v == orig)
			continue;
		f.sealed[0] = (uint8_t)v;
		assert_int_equal(fixture_decode(&f), -EBADMSG);
	}
	f.sealed[0] = orig;

	/* Every other codec byte, known or not: the tag binds it. */
	orig = f.sealed[1];
	for (int c = 0; c < 256; c++) {
		if (c == orig)
			continue;
		f.sealed[1] = (uint8_t)c;
		assert_int_equal(fixture_decode(&f), -EBADMSG);
	}
	f.sealed[1] = orig;
	assert_int_equal(fixture_decode(&f), 0);
	fixture_release(&f);
}

static void wrong_raw_len(size_t len, bool text)
{
	struct fixture f;
	uint8_t *big;

	fixture_init(&f, len, text);
	fixture_encode(&f, STASH_CODEC_ZSTD);
	big = malloc(len + 100);
	assert_non_null(big);
	assert_int_equal(stash_chunk_decode(f.key, KEY_ID, f.id, f.sealed,
					    f.slen, big, len - 1),
			 -EBADMSG);
	assert_int_equal(stash_chunk_decode(f.key, KEY_ID, f.id, f.sealed,
					    f.slen, big, len + 1),
			 -EBADMSG);
	assert_int_equal(stash_chunk_decode(f.key, KEY_ID, f.id, f.sealed,
					    f.slen, big, len + 100),
			 -EBADMSG);
	assert_int_equal(stash_chunk_decode(f.key, KEY_ID, f.id, f.sealed,
					    f.slen, big, 0),
			 -EBADMSG);
	assert_int_equal(stash_chunk_decode(f.key, KEY_ID, f.id, f.sealed,
					    f.slen, big, len),
			 0);
	assert_memory_equal(big, f.plain, len);
	free(big);
	fixture_release(&f);
}

static void test_wrong_raw_len(void **state)
{
	(void)state;
	wrong_raw_len(4096, true);  /* compressed */
	wrong_raw_len(4096, false); /* raw */
}

static void test_bad_codec(void **state)
{
	struct fixture f;

	(void)state;
	fixture_init(&f, 100, true);
	assert_int_equal(stash_chunk_encode(f.key, KEY_ID, f.id, 3, 0, f.plain,
					    f.len, f.sealed),
			 -EINVAL);
	assert_int_equal(stash_chunk_encode(f.key, KEY_ID, f.id, -1, 0, f.plain,
					    0, f.sealed),
			 -EINVAL);
	fixture_release(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_text),
		cmocka_unit_test(test_round_trip_random),
		cmocka_unit_test(test_round_trip_empty),
		cmocka_unit_test(test_raw_fallback),
		cmocka_unit_test(test_fresh_nonce),
		cmocka_unit_test(test_flipped_bit),
		cmocka_unit_test(test_wrong_identity),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_header_bytes),
		cmocka_unit_test(test_wrong_raw_len),
		cmocka_unit_test(test_bad_codec),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
