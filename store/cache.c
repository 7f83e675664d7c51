/*
 * cache.c - LRU cache of decoded chunks, bounded in bytes of chunk data.
 *
 * Contents: the hash table (chained, power-of-two buckets, doubled when
 * entries outnumber buckets), the intrusive LRU list, the public calls.
 *
 * One mutex guards everything in struct stash_cache. Under it we only look
 * up, relink and copy out at most one chunk; entries leaving the cache are
 * unlinked under the lock and wiped and freed after it is dropped, so a
 * put that evicts many chunks does not stall readers while it wipes.
 *
 * Not here: decoding, I/O, any knowledge of what a chunk id means beyond
 * "32 uniformly random bytes" (ids are HMAC-SHA256 outputs, so their first
 * bytes serve as the hash without mixing; an attacker without the id key
 * cannot choose ids that collide). The per-entry bookkeeping (about 90
 * bytes) is not counted against the bound: the bound is of chunk data.
 */
#include "cache.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define BUCKETS_MIN 64 /* first table size; a power of two */

struct cache_ent {
	uint8_t id[STASH_ID_LEN];      /* chunk id: the key */
	void *data;		       /* plaintext, len bytes, owned */
	size_t len;		       /* bytes at data */
	uint64_t hash;		       /* first 8 bytes of id */
	struct cache_ent *hnext;       /* next in the same bucket */
	struct cache_ent *prev, *next; /* LRU list: prev is more recent */
};

struct stash_cache {
	size_t max_bytes;	  /* the bound on sum of len, bytes; set by
				   * new, read-only after, read unlocked */
	pthread_mutex_t lock;	  /* guards every field below */
	struct cache_ent **table; /* buckets, nbuckets of them */
	size_t nbuckets;	  /* a power of two, or 0 before first put */
	struct cache_ent lru;	  /* sentinel: lru.next most, lru.prev least
				   * recently used */
	size_t bytes;		  /* sum of len over entries, bytes */
	size_t entries;		  /* entries held */
	uint64_t hits;		  /* reads answered */
	uint64_t misses;	  /* reads that found nothing */
};

static uint64_t id_hash(const uint8_t id[STASH_ID_LEN])
{
	uint64_t h;

	memcpy(&h, id, sizeof(h));
	return h;
}

static void ent_free(struct cache_ent *e)
{
	if (e->data) {
		OPENSSL_cleanse(e->data, e->len);
		free(e->data);
	}
	free(e);
}

/* Wipe and free a list of entries chained through next; called unlocked. */
static void ent_free_list(struct cache_ent *e)
{
	while (e) {
		struct cache_ent *next = e->next;

		ent_free(e);
		e = next;
	}
}

static void wipe_free(void *data, size_t len)
{
	if (data) {
		OPENSSL_cleanse(data, len);
		free(data);
	}
}

static void lru_unlink(struct cache_ent *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
}

static void lru_push_front(struct stash_cache *c, struct cache_ent *e)
{
	e->prev = &c->lru;
	e->next = c->lru.next;
	c->lru.next->prev = e;
	c->lru.next = e;
}

/* Lock held. Returns the link that points at the entry for id, or at NULL. */
static struct cache_ent **
find_link(struct stash_cache *c, const uint8_t id[STASH_ID_LEN], uint64_t hash)
{
	struct cache_ent **link;

	if (!c->nbuckets)
		return NULL;
	link = &c->table[hash & (c->nbuckets - 1)];
	while (*link) {
		if ((*link)->hash == hash &&
		    !memcmp((*link)->id, id, STASH_ID_LEN))
			break;
		link = &(*link)->hnext;
	}
	return link;
}

static struct cache_ent *find(struct stash_cache *c,
			      const uint8_t id[STASH_ID_LEN])
{
	struct cache_ent **link = find_link(c, id, id_hash(id));

	return link ? *link : NULL;
}

/*
 * Lock held. Take e out of the table and the LRU list and account for it;
 * the caller frees it (after unlocking).
 */
static void detach(struct stash_cache *c, struct cache_ent *e)
{
	struct cache_ent **link = find_link(c, e->id, e->hash);

	*link = e->hnext;
	lru_unlink(e);
	c->bytes -= e->len;
	c->entries--;
}

/*
 * Lock held. Double the bucket array when entries outnumber buckets, so
 * chains stay short. Failing to grow is harmless (longer chains), so
 * allocation failure is ignored here.
 */
static void maybe_grow(struct stash_cache *c)
{
	size_t n = c->nbuckets ? 2 * c->nbuckets : BUCKETS_MIN;
	struct cache_ent **t;

	if (c->nbuckets && c->entries < c->nbuckets)
		return;
	if (n > SIZE_MAX / sizeof(*t))
		return;
	t = calloc(n, sizeof(*t));
	if (!t)
		return;
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct cache_ent *e = c->table[i], *next;

		for (; e; e = next) {
			next = e->hnext;
			e->hnext = t[e->hash & (n - 1)];
			t[e->hash & (n - 1)] = e;
		}
	}
	free(c->table);
	c->table = t;
	c->nbuckets = n;
}

int stash_cache_new(struct stash_cache **out, size_t max_bytes)
{
	struct stash_cache *c;
	int ret;

	if (!out)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	ret = pthread_mutex_init(&c->lock, NULL);
	if (ret) {
		free(c);
		return -ret;
	}
	c->lru.next = c->lru.prev = &c->lru;
	c->max_bytes = max_bytes;
	*out = c;
	return 0;
}

void stash_cache_free(struct stash_cache *c)
{
	struct cache_ent *e, *next;

	if (!c)
		return;
	for (e = c->lru.next; e != &c->lru; e = next) {
		next = e->next;
		ent_free(e);
	}
	free(c->table);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

ssize_t stash_cache_read(struct stash_cache *c, const uint8_t id[STASH_ID_LEN],
			 size_t off, void *dst, size_t len)
{
	struct cache_ent *e;
	size_t n = 0;

	pthread_mutex_lock(&c->lock);
	e = find(c, id);
	if (!e) {
		c->misses++;
		pthread_mutex_unlock(&c->lock);
		return -ENOENT;
	}
	c->hits++;
	lru_unlink(e);
	lru_push_front(c, e);
	if (off < e->len) {
		n = STASH_MIN(len, e->len - off);
		n = STASH_MIN(n, (size_t)SSIZE_MAX);
		if (n)
			memcpy(dst, (const uint8_t *)e->data + off, n);
	}
	pthread_mutex_unlock(&c->lock);
	return (ssize_t)n;
}

void stash_cache_put(struct stash_cache *c, const uint8_t id[STASH_ID_LEN],
		     void *data, size_t len)
{
	struct cache_ent *e, *old, **head, *evicted = NULL;

	/* Checked before locking: max_bytes never changes. A cache of 0
	 * bytes holds nothing, not even empty chunks. */
	if (c->max_bytes == 0 || len > c->max_bytes) {
		wipe_free(data, len);
		return;
	}
	e = malloc(sizeof(*e));
	if (!e) {
		/* A cache may always decline; the caller decodes again. */
		wipe_free(data, len);
		return;
	}
	memcpy(e->id, id, STASH_ID_LEN);
	e->data = data;
	e->len = len;
	e->hash = id_hash(id);

	pthread_mutex_lock(&c->lock);
	old = find(c, id);
	if (old) {
		/* Same id, same plaintext: keep ours, count it as a use. */
		lru_unlink(old);
		lru_push_front(c, old);
		pthread_mutex_unlock(&c->lock);
		ent_free(e);
		return;
	}
	maybe_grow(c);
	if (!c->nbuckets) {
		pthread_mutex_unlock(&c->lock);
		ent_free(e);
		return;
	}
	/* len <= max_bytes, so this stops before the list runs empty. */
	while (c->bytes + len > c->max_bytes) {
		old = c->lru.prev;
		detach(c, old);
		old->next = evicted;
		evicted = old;
	}
	head = &c->table[e->hash & (c->nbuckets - 1)];
	e->hnext = *head;
	*head = e;
	lru_push_front(c, e);
	c->bytes += len;
	c->entries++;
	pthread_mutex_unlock(&c->lock);
	ent_free_list(evicted);
}

void stash_cache_drop(struct stash_cache *c, const uint8_t id[STASH_ID_LEN])
{
	struct cache_ent *e;

	pthread_mutex_lock(&c->lock);
	e = find(c, id);
	if (e)
		detach(c, e);
	pthread_mutex_unlock(&c->lock);
	if (e)
		ent_free(e);
}

void stash_cache_stats(struct stash_cache *c, struct stash_cache_stats *out)
{
	pthread_mutex_lock(&c->lock);
	out->hits = c->hits;
	out->misses = c->misses;
	out->bytes = c->bytes;
	out->entries = c->entries;
	out->max_bytes = c->max_bytes;
	pthread_mutex_unlock(&c->lock);
}
