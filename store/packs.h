/*
 * packs.h - append-only pack files holding many sealed chunks.
 *
 *   STORE/packs/XX/<16 hex digits of the pack id>   (XX = last two digits)
 *
 * A pack starts with a short header, then sealed chunks back to back; when
 * a pack is finished (it reached the target size, or the store closes) an
 * encrypted trailer listing every chunk (id, offset, sealed and raw length)
 * is appended so `verify --repair` can rebuild chunk locations without the
 * catalog. A pack is never appended to once finished, and a reopened store
 * always starts a new pack: a torn tail from a crash is never built upon.
 *
 * Durability: stash_packs_sync() fsyncs every pack (and new directory
 * entry) written since the last sync; callers sync before committing a
 * catalog transaction that references new chunks.
 * Thread-safe: appends, reads and syncs may come from any thread.
 */
#ifndef STASH_PACKS_H
#define STASH_PACKS_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define STASH_PACK_TARGET_DEFAULT (32u * 1024 * 1024)
#define STASH_PACK_HDR_LEN 24 /* bytes before the first sealed chunk */

/* Bytes of a finished pack that are not chunks: header, trailer listing
 * entries chunks, footer. */
static inline uint64_t stash_pack_overhead(uint64_t entries)
{
	return STASH_PACK_HDR_LEN + 12 + 48 * entries + 16 + 16;
}

struct stash_packs;

struct stash_chunk_loc {
	uint64_t pack; /* pack id */
	uint64_t off;  /* byte offset of the sealed chunk in the pack file */
	uint32_t len;  /* sealed length in bytes */
};

/* One chunk as listed in a pack trailer. */
struct stash_pack_entry {
	uint8_t id[STASH_ID_LEN]; /* chunk id */
	uint64_t off;		  /* offset of the sealed chunk */
	uint32_t len;		  /* sealed length */
	uint32_t raw_len;	  /* plaintext length */
};

/*
 * Open the pack directory dir (created if missing). key seals the
 * trailers (copied; wiped on close). target_size: a pack is finished once
 * it reaches this many bytes. 0 or a negative errno.
 */
int stash_packs_open(struct stash_packs **out, const char *dir,
		     const uint8_t key[STASH_KEY_LEN], uint64_t target_size);

/*
 * Finish the open pack (trailer), sync everything and free. Returns the
 * first error met; frees in any case. Accepts NULL.
 */
int stash_packs_close(struct stash_packs *p);

/* Append a sealed chunk of len bytes; *loc tells where it went. */
int stash_packs_append(struct stash_packs *p, const uint8_t id[STASH_ID_LEN],
		       uint32_t raw_len, const void *sealed, uint32_t len,
		       struct stash_chunk_loc *loc);

/* Read the sealed chunk at loc into buf (loc->len bytes). -EBADMSG when
 * the pack is shorter than loc says, -ENOENT when the pack is missing. */
int stash_packs_read(struct stash_packs *p, const struct stash_chunk_loc *loc,
		     void *buf);

/* The size in bytes of pack file id: -ENOENT when it is missing. */
int stash_packs_size(struct stash_packs *p, uint64_t pack, uint64_t *size);

/* Make every append so far durable. */
int stash_packs_sync(struct stash_packs *p);

/* Bytes appended to pack files since open, headers and trailers included. */
uint64_t stash_packs_bytes_written(struct stash_packs *p);

/*
 * Read the trailer of pack id in dir: calls fn for each entry, in pack
 * order. -ENOENT (no such pack), -EBADMSG (no trailer, or one that does not
 * authenticate), or the first non-zero value fn returns.
 */
int stash_packs_read_trailer(
	const char *dir, const uint8_t key[STASH_KEY_LEN], uint64_t pack,
	int (*fn)(void *arg, const struct stash_pack_entry *e), void *arg);

/*
 * Delete pack id from disk (for gc). The newest pack id given out (or
 * found at open) is never freed: that file is cut to its header instead,
 * so that the next open, which starts at the highest id present + 1,
 * cannot hand the id out again. Returns 0 when the file is gone, 1 when
 * it was cut to its header, -EBUSY for the pack being appended to, or
 * another negative errno (-ENOENT: no such pack).
 */
int stash_packs_remove(struct stash_packs *p, uint64_t pack);

/*
 * Finish the pack being appended to, if any (trailer), so that every
 * later append goes to a new pack. *last gets the highest pack id given
 * out so far (or found at open): every pack created from now on has a
 * larger id. 0 or a negative errno (the pack is retired in any case).
 */
int stash_packs_rollover(struct stash_packs *p, uint64_t *last);

/*
 * Call fn for every pack file in the directory (file names of 16 hex
 * digits), in no particular order, with its id and size in bytes. A
 * non-zero return from fn stops the listing and is returned.
 */
int stash_packs_list(struct stash_packs *p,
		     int (*fn)(void *arg, uint64_t pack, uint64_t size),
		     void *arg);

#endif
