/*
 * chunk.c - seal and open one chunk: compress, then AES-256-GCM with the
 * chunk id, key id, format version and codec bound in as associated data.
 *
 *   sealed = version u8 | codec u8 | nonce[12] | ciphertext | tag[16]
 *   associated data = id[32] | key_id u32le | version u8 | codec u8
 *
 * It does not choose keys, compute chunk ids or know where chunks are
 * stored: callers pass the data key and the id (HMAC of the plaintext).
 * No state, no locks: safe from any thread.
 */
#include "chunk.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "crypto.h"

#define AAD_LEN (STASH_ID_LEN + 4 + 1 + 1)

static void chunk_aad(uint8_t aad[AAD_LEN], const uint8_t id[STASH_ID_LEN],
		      uint32_t key_id, uint8_t version, uint8_t codec)
{
	memcpy(aad, id, STASH_ID_LEN);
	stash_le32enc(aad + STASH_ID_LEN, key_id);
	aad[STASH_ID_LEN + 4] = version;
	aad[STASH_ID_LEN + 5] = codec;
}

ssize_t stash_chunk_encode(const uint8_t key[STASH_KEY_LEN], uint32_t key_id,
			   const uint8_t id[STASH_ID_LEN], int codec, int level,
			   const void *plain, size_t len, uint8_t *out)
{
	static const uint8_t empty[1];
	uint8_t aad[AAD_LEN];
	uint8_t *body = out + STASH_CHUNK_HDR_LEN;
	const void *src = plain;
	size_t clen = len;
	int ret;

	/* The codec byte is one byte on disk; refuse what cannot be stored
	 * even when the data is empty and the codec is never called. */
	if (codec < STASH_CODEC_RAW || codec > STASH_CODEC_ZLIB)
		return -EINVAL;
	if (len > (size_t)SSIZE_MAX - STASH_CHUNK_OVERHEAD)
		return -EINVAL;
	if (len == 0)
		src = empty; /* never hand NULL to memcpy or OpenSSL */

	/*
	 * Compress straight into the output with a cap of len: the codec
	 * answers -ENOSPC when that would not shrink the chunk, and a chunk
	 * that does not shrink is stored raw (never grows by more than the
	 * fixed overhead, as stash_chunk_sealed_max promises).
	 */
	if (codec != STASH_CODEC_RAW && len > 0) {
		ssize_t n =
			stash_codec_compress(codec, level, src, len, body, len);
		if (n >= 0) {
			src = body; /* sealed in place below */
			clen = (size_t)n;
		} else if (n == -ENOSPC) {
			codec = STASH_CODEC_RAW;
		} else {
			return n;
		}
	} else {
		codec = STASH_CODEC_RAW;
	}

	out[0] = STASH_CHUNK_VERSION;
	out[1] = (uint8_t)codec;
	ret = stash_crypto_random(out + 2, STASH_NONCE_LEN);
	if (ret < 0)
		return ret;
	chunk_aad(aad, id, key_id, STASH_CHUNK_VERSION, (uint8_t)codec);
	ret = stash_crypto_seal(key, out + 2, aad, sizeof(aad), src, clen, body,
				body + clen);
	if (ret < 0)
		return ret;
	return (ssize_t)(STASH_CHUNK_OVERHEAD + clen);
}

int stash_chunk_decode(const uint8_t key[STASH_KEY_LEN], uint32_t key_id,
		       const uint8_t id[STASH_ID_LEN], const uint8_t *sealed,
		       size_t sealed_len, void *out, size_t raw_len)
{
	uint8_t aad[AAD_LEN];
	uint8_t scratch[1];
	const uint8_t *nonce, *ct, *tag;
	uint8_t *tmp = NULL;
	size_t clen;
	int codec, ret;

	if (sealed_len < STASH_CHUNK_OVERHEAD)
		return -EBADMSG;
	if (sealed[0] != STASH_CHUNK_VERSION)
		return -EBADMSG;
	codec = sealed[1];
	nonce = sealed + 2;
	ct = sealed + STASH_CHUNK_HDR_LEN;
	clen = sealed_len - STASH_CHUNK_OVERHEAD;
	tag = ct + clen;
	if (out == NULL)
		out = scratch; /* raw_len == 0: still authenticate */

	chunk_aad(aad, id, key_id, STASH_CHUNK_VERSION, (uint8_t)codec);

	if (codec == STASH_CODEC_RAW) {
		if (clen != raw_len)
			return -EBADMSG;
		/*
		 * GCM writes plaintext before it checks the tag; wipe it on
		 * failure so no caller ever sees unauthenticated bytes.
		 * crypto.h promises -EBADMSG for every mismatch; any other
		 * code is the library failing, not the data, and passes.
		 */
		ret = stash_crypto_open(key, nonce, aad, sizeof(aad), ct, clen,
					out, tag);
		if (ret < 0)
			memset(out, 0, raw_len);
		return ret;
	}

	tmp = malloc(clen ? clen : 1);
	if (!tmp)
		return -ENOMEM;
	ret = stash_crypto_open(key, nonce, aad, sizeof(aad), ct, clen, tmp,
				tag);
	if (ret < 0)
		goto out;
	/*
	 * The bytes authenticated, so a decoding failure means a codec bug
	 * or an unknown codec written by a newer version: either way the
	 * chunk cannot be read as stored, which is -EBADMSG. Only a lack of
	 * memory is not about the data.
	 */
	ret = stash_codec_decompress(codec, tmp, clen, out, raw_len);
	if (ret < 0 && ret != -ENOMEM)
		ret = -EBADMSG;
	if (ret < 0)
		memset(out, 0, raw_len);
out:
	free(tmp);
	return ret;
}
