/*
 * store.h - a stashfs store as a library: create, open and close a store,
 * and the filesystem operations on it (namespace, attributes, xattrs,
 * file data) in POSIX terms.
 *
 * This is the whole API fs/ and tools/ use; it holds every rule about
 * data. It knows nothing of FUSE: inode numbers are the catalog's, errors
 * are negative errnos. Every function is thread-safe.
 * Permission checks are not done here: the kernel does them when mounted
 * with default_permissions (which `stashfs mount` sets).
 */
#ifndef STASH_STORE_H
#define STASH_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include "catalog.h"
#include "config.h"
#include "retention.h"

struct stash_store;
struct stash_file;

/* The top-level folders every store has. */
extern const char *const stash_areas[];

/*
 * Create a store in the folder path (created if missing; it must be empty
 * otherwise) with the parameters in cfg (kdf, codec, chunker) and the
 * secret that will unlock it. -EEXIST if a store is there already.
 */
int stash_store_init(const char *path, struct stash_config *cfg,
		     const struct stash_secret *secret);

/*
 * Open the store at path: check the config, take the store lock (-EBUSY
 * when another process holds it), unlock the keys (-EACCES on a wrong
 * secret), open the catalog and the packs. *out set only on success.
 */
int stash_store_open(struct stash_store **out, const char *path,
		     const struct stash_secret *secret);
/* Commit every open file, finish the open pack, checkpoint, release the
 * lock, wipe the keys and free. Returns the first error met. */
int stash_store_close(struct stash_store *st);

/*
 * Names in the root directory that the mounted filesystem shows as
 * virtual entries (.backups, .search, .stats): creating, linking or
 * renaming to them fails with -EEXIST.
 */
bool stash_name_reserved(uint64_t parent, const char *name);

/* Flags for stash_store_setattr's valid. */
enum {
	STASH_SET_MODE = 1 << 0,
	STASH_SET_UID = 1 << 1,
	STASH_SET_GID = 1 << 2,
	STASH_SET_SIZE = 1 << 3,
	STASH_SET_ATIME = 1 << 4,
	STASH_SET_MTIME = 1 << 5,
	STASH_SET_CTIME = 1 << 6,
};

/* Flags for rename. */
enum {
	STASH_RENAME_NOREPLACE = 1 << 0,
	STASH_RENAME_EXCHANGE = 1 << 1,
};

int stash_store_getattr(struct stash_store *st, uint64_t ino,
			struct stash_attr *out);
int stash_store_lookup(struct stash_store *st, uint64_t parent,
		       const char *name, struct stash_attr *out);
/* Regular files, FIFOs, sockets and device nodes (mode has the type). */
int stash_store_mknod(struct stash_store *st, uint64_t parent, const char *name,
		      uint32_t mode, uint64_t rdev, uint32_t uid, uint32_t gid,
		      struct stash_attr *out);
int stash_store_mkdir(struct stash_store *st, uint64_t parent, const char *name,
		      uint32_t mode, uint32_t uid, uint32_t gid,
		      struct stash_attr *out);
int stash_store_symlink(struct stash_store *st, uint64_t parent,
			const char *name, const char *target, uint32_t uid,
			uint32_t gid, struct stash_attr *out);
int stash_store_link(struct stash_store *st, uint64_t ino, uint64_t newparent,
		     const char *newname, struct stash_attr *out);
int stash_store_unlink(struct stash_store *st, uint64_t parent,
		       const char *name);
int stash_store_rmdir(struct stash_store *st, uint64_t parent,
		      const char *name);
int stash_store_rename(struct stash_store *st, uint64_t parent,
		       const char *name, uint64_t newparent,
		       const char *newname, unsigned flags);
ssize_t stash_store_readlink(struct stash_store *st, uint64_t ino, char *buf,
			     size_t size);
/* See stash_cat_readdir; cookies are stable while entries come and go. */
int stash_store_readdir(struct stash_store *st, uint64_t ino, uint64_t off,
			stash_cat_dirent_fn fn, void *arg);
/* Apply the fields of in named by valid; *out gets the result. */
int stash_store_setattr(struct stash_store *st, uint64_t ino,
			const struct stash_attr *in, unsigned valid,
			struct stash_attr *out);

int stash_store_setxattr(struct stash_store *st, uint64_t ino, const char *name,
			 const void *value, size_t len, int flags);
ssize_t stash_store_getxattr(struct stash_store *st, uint64_t ino,
			     const char *name, void *buf, size_t size);
ssize_t stash_store_listxattr(struct stash_store *st, uint64_t ino, char *buf,
			      size_t size);
int stash_store_removexattr(struct stash_store *st, uint64_t ino,
			    const char *name);

/* Sizes and free space of the disk under the store, in store terms. */
int stash_store_statfs(struct stash_store *st, struct statvfs *out);

struct stash_store_stats {
	struct stash_cat_stats cat; /* what the catalog holds */
	uint64_t store_bytes;	    /* bytes of the store folder on disk */
	uint64_t cache_hits, cache_misses;
	uint64_t bytes_written;	 /* logical bytes written since open */
	uint64_t bytes_read;	 /* logical bytes read since open */
	uint64_t chunks_written; /* new chunks sealed since open */
	uint64_t chunks_deduped; /* chunks found already stored */
};
int stash_store_stats(struct stash_store *st, struct stash_store_stats *out);

/* The figures as a JSON document (malloc'd; the caller frees it). */
int stash_store_stats_json(struct stash_store *st, char **out);

/*
 * Snapshots (store/snapshot.c). A snapshot holds the live tree as of its
 * last commit: bytes an open file has not flushed are not in it. Its
 * tree is read through the calls above and the file calls below with its
 * inode numbers, starting at root; every change to it fails with -EROFS.
 * Names are file names: -EINVAL for "", ".", "..", a '/' or more than
 * STASH_NAME_MAX bytes; -EEXIST for a name taken; -ENOENT for none.
 */
struct stash_snapshot {
	uint64_t id;		       /* never reused */
	char name[STASH_NAME_MAX + 1]; /* unique */
	int64_t created;	       /* ns since the epoch */
	uint64_t root;		       /* inode number of its root directory */
};
typedef int (*stash_snap_fn)(void *arg, const struct stash_snapshot *s);

/* Take a snapshot now; durable when it returns. */
int stash_snap_create(struct stash_store *st, const char *name,
		      struct stash_snapshot *out);
int stash_snap_delete(struct stash_store *st, const char *name);
int stash_snap_rename(struct stash_store *st, const char *name,
		      const char *newname);
int stash_snap_find(struct stash_store *st, const char *name,
		    struct stash_snapshot *out);
/* Each snapshot with id > after, oldest first; a non-zero return from fn
 * stops the listing and is returned. */
int stash_snap_list(struct stash_store *st, uint64_t after, stash_snap_fn fn,
		    void *arg);

/*
 * Drop the snapshots keep does not keep (retention.h), among those whose
 * name starts with prefix (NULL: all). fn (may be NULL) hears of each
 * one dropped or, with dry_run, each one that would be. A policy with no
 * rule drops nothing.
 */
int stash_snap_prune(struct stash_store *st, const struct stash_retention *keep,
		     const char *prefix, bool dry_run, stash_snap_fn fn,
		     void *arg);

/* The prefix of automatic snapshots' names: auto-YYYYMMDD-HHMMSS (UTC). */
#define STASH_AUTO_SNAP_PREFIX "auto-"

/*
 * Take a snapshot every every_ns nanoseconds from now on (the first at
 * once if the newest automatic one is older than that), pruning the
 * automatic snapshots with keep after each. Runs on a thread until the
 * store closes; failures are logged and retried at the next turn.
 */
int stash_snap_auto_start(struct stash_store *st, int64_t every_ns,
			  const struct stash_retention *keep);

/*
 * Search (docs/SEARCH.md). The indexer thread (started by the mount)
 * indexes each change moments after it commits.
 */
int stash_index_start(struct stash_store *st);
/* Wait until every file queued so far is indexed: 0, -ETIMEDOUT, or
 * -ESRCH when the indexer does not run. */
int stash_index_wait(struct stash_store *st, int timeout_ms);

/* A search result. Strings are valid during the callback only. */
struct stash_search_hit {
	uint64_t doc;	   /* the index document (stash_store_doc) */
	uint64_t ino;	   /* the live file */
	uint64_t line;	   /* 0: the whole file; a JSON Lines record's line */
	uint64_t off, len; /* the record's bytes in the file */
	double score;	   /* bm25: lower is better */
	const char *name;  /* the file's name */
	const char *area;  /* the top-level folder it is in */
	const char *title, *url, *author, *tags, *lang; /* NULL if none */
	int64_t date; /* published_at, or the file's mtime when indexed */
	bool has_date;
};

/*
 * Run query (the syntax of query.h): fn gets each hit, best first, at
 * most the query's limit; a non-zero return from fn stops (not an error).
 * Waits for the indexer first, so files committed before the call are
 * found. -EINVAL with a one-line reason in err for a query that does not
 * parse or that FTS5 refuses.
 */
int stash_store_search(struct stash_store *st, const char *query,
		       int (*fn)(void *arg, const struct stash_search_hit *h),
		       void *arg, char *err, size_t errlen);

/*
 * The same results as JSON (malloc'd), as .search/QUERY/.results.json
 * holds them: an array, best first, of objects with "path", "name",
 * "line" (JSON Lines records; 0 for a whole file), "title", "url",
 * "author", "tags", "lang", "published_at" (ISO 8601, UTC; absent when
 * unknown), "score" (higher is better) and "snippet": text around the
 * first place a word of the query appears, the word between ** and **.
 */
int stash_store_search_json(struct stash_store *st, const char *query,
			    char **out, char *err, size_t errlen);

/* The path of a live inode from the root, by its first name
 * ("/articles/a.json"). -ENOENT for an unlinked inode. */
int stash_store_path(struct stash_store *st, uint64_t ino, char *buf,
		     size_t size);

/* An index document: its file and its record's bytes. -ENOENT when the
 * file changed since (the document is gone). */
int stash_store_doc(struct stash_store *st, uint64_t doc, uint64_t *ino,
		    uint64_t *line, uint64_t *off, uint64_t *len);

/* Drop the whole index and queue every file again (stashfs reindex). */
int stash_store_reindex(struct stash_store *st);

/* Verify the catalog's integrity (PRAGMA integrity_check). */
int stash_store_check(struct stash_store *st);

/*
 * File data. open takes a reference on the inode's open state (shared by
 * every handle of the inode); release commits and drops it. Dirty data is
 * held in memory, bounded, and committed by flush (visible after a crash
 * of the daemon), fsync (durable) and release. A write error (ENOSPC, EIO)
 * is reported by that write or by the next flush/fsync.
 */
int stash_file_open(struct stash_store *st, uint64_t ino,
		    struct stash_file **out);
ssize_t stash_file_read(struct stash_store *st, struct stash_file *f, void *buf,
			size_t size, uint64_t off);
ssize_t stash_file_write(struct stash_store *st, struct stash_file *f,
			 const void *buf, size_t size, uint64_t off);
int stash_file_flush(struct stash_store *st, struct stash_file *f);
int stash_file_fsync(struct stash_store *st, struct stash_file *f);
int stash_file_release(struct stash_store *st, struct stash_file *f);

#endif
