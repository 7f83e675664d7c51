/*
 * chunk.h - the sealed chunk format: compress, then encrypt and
 * authenticate one chunk on its own.
 *
 *   sealed = version u8 | codec u8 | nonce[12] | ciphertext | tag[16]
 *   associated data = id[32] | key_id u32le | version u8 | codec u8
 *
 * Binding the id, key id, version and codec into the tag means a chunk
 * cannot be swapped for another, replayed under another id, or have its
 * codec or version byte changed without failing to open.
 * Stateless and thread-safe.
 */
#ifndef STASH_CHUNK_H
#define STASH_CHUNK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

#define STASH_CHUNK_VERSION 1
#define STASH_CHUNK_HDR_LEN (2 + STASH_NONCE_LEN)
#define STASH_CHUNK_OVERHEAD (STASH_CHUNK_HDR_LEN + STASH_TAG_LEN)

/* Largest sealed size of a chunk of raw_len bytes (raw + overhead). */
static inline size_t stash_chunk_sealed_max(size_t raw_len)
{
	return raw_len + STASH_CHUNK_OVERHEAD;
}

/*
 * Compress plain with codec/level (falling back to raw when that does not
 * shrink it), seal it into out (at least stash_chunk_sealed_max(len) bytes)
 * and return the sealed length, or a negative errno.
 */
ssize_t stash_chunk_encode(const uint8_t key[STASH_KEY_LEN], uint32_t key_id,
			   const uint8_t id[STASH_ID_LEN], int codec, int level,
			   const void *plain, size_t len, uint8_t *out);

/*
 * Authenticate, decrypt and decompress a sealed chunk into exactly raw_len
 * bytes of out. -EBADMSG for anything that does not authenticate or decode
 * (wrong key, id, version, codec, truncated or flipped bytes, wrong size).
 */
int stash_chunk_decode(const uint8_t key[STASH_KEY_LEN], uint32_t key_id,
		       const uint8_t id[STASH_ID_LEN], const uint8_t *sealed,
		       size_t sealed_len, void *out, size_t raw_len);

#endif
