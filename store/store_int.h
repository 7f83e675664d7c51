/*
 * store_int.h - the store's internals shared by store.c (namespace and
 * lifecycle) and file.c (file data). Not part of the public API.
 *
 * Lock order, outermost first:
 *   files_lock -> file.lock -> cat_lock -> pending_lock
 * file.job_lock is a leaf: held only to flag a finished chunk job.
 * Workers in the pool take cat_lock, pending_lock and job_lock, one at a
 * time, never a file's lock: a thread holding a file's lock may wait for
 * its jobs. Only gc's quiesce (file.c) holds several file locks at once,
 * and only under files_lock, so no two threads ever do.
 */
#ifndef STASH_STORE_INT_H
#define STASH_STORE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "cache.h"
#include "catalog.h"
#include "chunker.h"
#include "config.h"
#include "gc.h"
#include "packs.h"
#include "pool.h"
#include "retention.h"
#include "store.h"

#define FILE_BUCKETS 1024
#define PENDING_BUCKETS 4096

/* A chunk written to a pack this session and not yet in the catalog, so
 * that writers find it for deduplication before it is committed. */
struct pending_chunk {
	uint8_t id[STASH_ID_LEN];
	struct stash_chunk_loc loc;
	struct pending_chunk *next;
};

struct stash_store {
	char *path;		       /* the store folder */
	int lock_fd;		       /* flock'ed STORE/lock */
	struct stash_config cfg;       /* stashfs.json */
	struct stash_keys keys;	       /* wiped on close */
	struct stash_chunker *chunker; /* immutable */
	struct stash_cache *cache;     /* thread-safe */
	struct stash_packs *packs;     /* thread-safe */
	struct stash_pool *pool;       /* chunk jobs */

	pthread_mutex_t cat_lock; /* guards cat */
	struct stash_cat *cat;

	pthread_mutex_t files_lock; /* guards files[] and stash_file.refs */
	struct stash_file *files[FILE_BUCKETS]; /* open state by inode */

	pthread_mutex_t pending_lock; /* guards pending[] */
	struct pending_chunk *pending[PENDING_BUCKETS];

	pthread_t flusher;	      /* periodic pack sync + checkpoint */
	pthread_mutex_t flusher_lock; /* guards flusher_stop, commits */
	pthread_cond_t flusher_cond;
	bool flusher_stop;
	bool flusher_running;
	uint64_t commits; /* catalog commits since the last sync */

	/* The indexer thread (indexer.c); flags under index_lock. */
	pthread_t indexer;
	pthread_mutex_t index_lock;
	pthread_cond_t index_cond;
	bool index_running, index_stop, index_idle, index_kicked;

	/* Automatic snapshots (snapshot.c); stop under flusher_lock. */
	pthread_t autosnap;
	pthread_cond_t autosnap_cond;
	bool autosnap_running, autosnap_stop;
	int64_t autosnap_every; /* ns between snapshots */
	struct stash_retention autosnap_keep;

	atomic_uint_fast64_t bytes_written, bytes_read;
	atomic_uint_fast64_t chunks_written, chunks_deduped;

	/* gc.c, under files_lock (zero at open: no gc yet). */
	bool gc_running;		/* a run is under way */
	bool gc_ran;			/* gc_last holds a report */
	struct stash_gc_report gc_last; /* progress, else the last report */
};

/* file.c, for store.c. */
/* The open state of ino, loaded if needed; a reference is taken. */
int stash_file_get(struct stash_store *st, uint64_t ino,
		   struct stash_file **out);
/* Drop a reference; the last one commits and frees. */
int stash_file_put(struct stash_store *st, struct stash_file *f);
/* Find the open state of ino without loading; files_lock must be held. */
struct stash_file *stash_file_find_locked(struct stash_store *st, uint64_t ino);
/* Overlay the in-memory size and times of an open file onto attr. */
void stash_file_overlay(struct stash_store *st, struct stash_attr *attr);
/* Truncate or extend to size and commit. */
int stash_file_truncate(struct stash_store *st, struct stash_file *f,
			uint64_t size);
/* Commit pending changes (f->lock not held by the caller). */
int stash_file_commit(struct stash_store *st, struct stash_file *f,
		      int durable);
/* Set times kept in memory for an open file after a setattr. */
void stash_file_set_times(struct stash_file *f, const struct stash_attr *a);
/* Drop every pending chunk entry (after a commit of everything). */
void stash_pending_clear(struct stash_store *st);
/*
 * For gc: take files_lock and every open file's lock, commit every open
 * file and clear the pending map. On success (0) the locks stay held
 * until stash_files_resume, and until then every chunk location held in
 * memory names a catalog row and no chunk job is in flight. On failure
 * nothing is held, and the file that could not be committed keeps the
 * error for its writer's next flush.
 */
int stash_files_quiesce(struct stash_store *st);
void stash_files_resume(struct stash_store *st);
/* file.c: copy len bytes at off of a stored chunk into dst (cache). */
int stash_chunk_read(struct stash_store *st, const uint8_t *id,
		     const struct stash_chunk_loc *loc, uint32_t raw_len,
		     uint64_t off, void *dst, size_t len);
/* indexer.c: stop the indexer (before the store closes); wake it after a
 * commit that queued files. */
void stash_index_stop(struct stash_store *st);
void stash_index_kick(struct stash_store *st);
/* snapshot.c: stop automatic snapshots (before the store closes). */
void stash_snap_auto_stop(struct stash_store *st);
/* Note a catalog commit, for the flusher. */
void stash_store_note_commit(struct stash_store *st);
/*
 * store.c: run fn(st, arg) inside one catalog transaction under the
 * catalog lock; commit (not durably) and note the commit if it returns 0,
 * roll back otherwise. Returns fn's error or the catalog's.
 */
int stash_store_in_txn(struct stash_store *st,
		       int (*fn)(struct stash_store *st, void *arg), void *arg);
/*
 * store.c: make everything committed so far durable: packs first, then
 * the WAL, under the catalog lock so that no commit slips in between and
 * is made durable before the pack bytes it names (FORMAT.md, I4).
 */
int stash_store_sync_all(struct stash_store *st);

#endif
