/*
 * chunker.h - content-defined chunking (FastCDC with normalised chunking)
 * over a gear table derived from a secret key.
 *
 * Keying the gear table means cut points, and so chunk sizes, reveal nothing
 * an attacker can match against known content. The parameters and the key
 * decide every chunk id, so they are fixed when a store is created.
 * The chunker keeps no state between calls: the caller buffers data and
 * asks for the next cut. A chunker is immutable once made: thread-safe.
 */
#ifndef STASH_CHUNKER_H
#define STASH_CHUNKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define STASH_CHUNK_MIN_DEFAULT (16u * 1024)
#define STASH_CHUNK_AVG_DEFAULT (64u * 1024)
#define STASH_CHUNK_MAX_DEFAULT (256u * 1024)
#define STASH_CHUNK_MAX_LIMIT (8u * 1024 * 1024) /* largest max we accept */

struct stash_chunker_params {
	uint32_t min; /* smallest chunk, bytes (except a file's last) */
	uint32_t avg; /* target mean size, bytes; a power of two */
	uint32_t max; /* largest chunk, bytes */
};

struct stash_chunker;

/*
 * Check params: 64 <= min < avg < max <= STASH_CHUNK_MAX_LIMIT, avg a power
 * of two. 0 or -EINVAL.
 */
int stash_chunker_params_check(const struct stash_chunker_params *p);

/* Make a chunker; the gear table comes from key (copied, then wiped). */
int stash_chunker_new(struct stash_chunker **out,
		      const struct stash_chunker_params *p,
		      const uint8_t key[STASH_KEY_LEN]);
void stash_chunker_free(struct stash_chunker *c);

/*
 * Length of the chunk that starts at buf[0]. When no cut point is found in
 * buf[0..len) and len < max: returns len if final (the data ends here), else
 * 0 (give more data). Never returns more than max, nor more than len.
 */
size_t stash_chunker_cut(const struct stash_chunker *c, const uint8_t *buf,
			 size_t len, bool final);

/*
 * For files of records, one per line (JSON Lines): cut at the end of the
 * first line that ends at or past STASH_RECORD_MIN bytes, so a record of
 * that size or more is a chunk of its own and editing one leaves its
 * neighbours' chunks as they were; smaller records are grouped. A record
 * longer than max is cut inside by content (stash_chunker_cut). Returns
 * as stash_chunker_cut does.
 */
#define STASH_RECORD_MIN 2048u
size_t stash_chunker_cut_records(const struct stash_chunker *c,
				 const uint8_t *buf, size_t len, bool final);

/* The parameters the chunker was made with. */
const struct stash_chunker_params *
stash_chunker_params(const struct stash_chunker *c);

#endif
