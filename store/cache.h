/*
 * cache.h - LRU cache of decoded (plaintext) chunks, bounded in bytes.
 *
 * Keyed by chunk id. Readers copy out the range they need, so an entry can
 * be evicted at any time without dangling pointers. Thread-safe (one mutex;
 * copies of at most one chunk happen under it).
 */
#ifndef STASH_CACHE_H
#define STASH_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util.h"

struct stash_cache;

struct stash_cache_stats {
	uint64_t hits;	    /* reads answered from the cache */
	uint64_t misses;    /* reads that found nothing */
	uint64_t bytes;	    /* bytes of chunk data held now */
	uint64_t entries;   /* chunks held now */
	uint64_t max_bytes; /* the bound */
};

/* max_bytes 0 makes a cache that holds nothing. */
int stash_cache_new(struct stash_cache **out, size_t max_bytes);
/* Frees every entry, wiping plaintext. Accepts NULL. */
void stash_cache_free(struct stash_cache *c);

/*
 * Copy len bytes at off of the cached chunk id into dst and mark it recently
 * used. Returns the number of bytes copied (less than len when the chunk
 * ends first), or -ENOENT when the chunk is not cached.
 */
ssize_t stash_cache_read(struct stash_cache *c, const uint8_t id[STASH_ID_LEN],
			 size_t off, void *dst, size_t len);

/*
 * Insert a chunk. Takes ownership of data (malloc'd, len bytes) in every
 * case: it is freed at once if the chunk is larger than the bound or
 * already cached. Evicts least recently used entries to stay in bounds.
 */
void stash_cache_put(struct stash_cache *c, const uint8_t id[STASH_ID_LEN],
		     void *data, size_t len);

/* Drop one chunk if cached. */
void stash_cache_drop(struct stash_cache *c, const uint8_t id[STASH_ID_LEN]);

void stash_cache_stats(struct stash_cache *c, struct stash_cache_stats *out);

#endif
