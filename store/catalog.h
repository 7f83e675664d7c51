/*
 * catalog.h - the SQLite catalog: inodes, directory entries, symlink
 * targets, xattrs, file maps (ordered chunk lists), chunks with reference
 * counts, and packs. Opened only through store/sqlvfs, so every page on
 * disk is encrypted.
 *
 * The catalog knows SQL and the schema, nothing about FUSE, open files or
 * chunk contents. It is not thread-safe: the caller serialises every call
 * on one catalog (store.c holds one lock for it). Functions that change
 * rows run inside a transaction the caller opened with stash_cat_begin.
 */
#ifndef STASH_CATALOG_H
#define STASH_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "packs.h"
#include "util.h"

#define STASH_ROOT_INO 1
#define STASH_CAT_SCHEMA_VERSION 3

/*
 * Inode numbers. A live inode's number is its inodes row, always below
 * 2^40. The copy of inode i in snapshot s is numbered (s << 40) | i, so
 * numbers are stable across mounts and never collide with live ones or
 * with another snapshot's. Every function below that reads an inode
 * (getattr, lookup, readdir, readlink, xattrs, file maps) takes either
 * kind; functions that change rows take live numbers only.
 * Numbers with bit 62 or 63 set are never the catalog's (fs/ uses them
 * for virtual files).
 */
#define STASH_SNAP_SHIFT 40
#define STASH_SNAP_MAX ((UINT64_C(1) << 22) - 1) /* highest snapshot id */

static inline uint64_t stash_ino_snap(uint64_t ino)
{
	return ino >> STASH_SNAP_SHIFT;
}

static inline uint64_t stash_ino_base(uint64_t ino)
{
	return ino & ((UINT64_C(1) << STASH_SNAP_SHIFT) - 1);
}

static inline uint64_t stash_ino_make(uint64_t snap, uint64_t ino)
{
	return snap << STASH_SNAP_SHIFT | ino;
}

struct stash_cat;

struct stash_attr {
	uint64_t ino;	/* inode number */
	uint32_t mode;	/* type and permission bits */
	uint32_t nlink; /* hard links (directories: 2 + subdirectories) */
	uint32_t uid, gid;
	uint64_t size;		     /* bytes (symlinks: target length) */
	uint64_t rdev;		     /* device number for device nodes */
	int64_t atime, mtime, ctime; /* ns since the epoch */
};

/*
 * One piece of a file map: a whole chunk at a logical offset, or a hole
 * (zeros that were never written: stored as a row with chunk 0, so a
 * sparse file costs one row per hole, whatever its size).
 */
struct stash_extent {
	uint64_t off;		    /* logical offset in the file, bytes */
	uint64_t len;		    /* bytes: the chunk's plaintext length */
	bool hole;		    /* zeros; id and loc unused */
	uint8_t id[STASH_ID_LEN];   /* chunk id */
	struct stash_chunk_loc loc; /* where the sealed chunk lives */
};

struct stash_cat_stats {
	uint64_t inodes;	     /* inodes of every kind */
	uint64_t files;		     /* regular files */
	uint64_t logical_bytes;	     /* sum of regular file sizes */
	uint64_t chunks;	     /* chunks referenced at least once */
	uint64_t chunk_raw_bytes;    /* plaintext bytes of those chunks */
	uint64_t chunk_stored_bytes; /* sealed bytes of those chunks */
	uint64_t dead_chunks;	/* chunks no longer referenced (await gc) */
	uint64_t dead_bytes;	/* their sealed bytes */
	uint64_t packs;		/* pack files holding chunks */
	uint64_t snapshots;	/* snapshots taken and not dropped */
	uint64_t docs;		/* documents in the full-text index */
	uint64_t index_pending; /* files waiting for the indexer */
	uint64_t index_errors;	/* files not indexed as they should be
				 * (malformed JSON) */
};

/*
 * Open the catalog at path with key (see stash_sqlvfs_open), creating the
 * schema and the root directory when create is set, else applying forward
 * migrations. -EBADMSG: wrong key or damaged; -EPROTO: a newer schema.
 */
int stash_cat_open(struct stash_cat **out, const char *path,
		   const uint8_t key[STASH_KEY_LEN], int create);
int stash_cat_close(struct stash_cat *cat);

/* Transactions. commit(durable=1) syncs the WAL before returning. */
int stash_cat_begin(struct stash_cat *cat);
int stash_cat_commit(struct stash_cat *cat, int durable);
void stash_cat_rollback(struct stash_cat *cat);

int stash_cat_getattr(struct stash_cat *cat, uint64_t ino,
		      struct stash_attr *out);
/* Look a name up in a directory. -ENOENT if absent. */
int stash_cat_lookup(struct stash_cat *cat, uint64_t parent, const char *name,
		     struct stash_attr *out);
/* Write every field of attr back to its inode row. */
int stash_cat_setattr(struct stash_cat *cat, const struct stash_attr *attr);
/* Create an inode from attr (attr->ino is set); target for symlinks. */
int stash_cat_create_inode(struct stash_cat *cat, struct stash_attr *attr,
			   const char *target);
/* Delete an inode with its xattrs, file map (chunk refs dropped) and
 * index documents. */
int stash_cat_delete_inode(struct stash_cat *cat, uint64_t ino);
/* Symlink target into buf (size bytes); returns its length or -errno. */
ssize_t stash_cat_readlink(struct stash_cat *cat, uint64_t ino, char *buf,
			   size_t size);

/* Directory entries. add: -EEXIST if the name is taken. */
int stash_cat_add_dirent(struct stash_cat *cat, uint64_t parent,
			 const char *name, uint64_t ino);
int stash_cat_del_dirent(struct stash_cat *cat, uint64_t parent,
			 const char *name);
/* Point an existing entry at another inode. */
int stash_cat_set_dirent(struct stash_cat *cat, uint64_t parent,
			 const char *name, uint64_t ino);
/* Move an entry to (newparent, newname), which must be free. */
int stash_cat_move_dirent(struct stash_cat *cat, uint64_t parent,
			  const char *name, uint64_t newparent,
			  const char *newname);
/* The directory holding the (first) entry of ino. -ENOENT if none. */
int stash_cat_parent_of(struct stash_cat *cat, uint64_t ino, uint64_t *parent);
/* 1 if the directory has no entries, 0 if it has, or -errno. */
int stash_cat_dir_is_empty(struct stash_cat *cat, uint64_t ino);

/*
 * List a directory from cookie off (0 = start). fn gets each entry with
 * its attributes and the cookie to resume after it; a non-zero return
 * from fn stops the listing (that value is not an error).
 */
typedef int (*stash_cat_dirent_fn)(void *arg, const char *name,
				   const struct stash_attr *attr,
				   uint64_t next_off);
int stash_cat_readdir(struct stash_cat *cat, uint64_t ino, uint64_t off,
		      stash_cat_dirent_fn fn, void *arg);

/* Extended attributes. flags: XATTR_CREATE / XATTR_REPLACE. */
int stash_cat_setxattr(struct stash_cat *cat, uint64_t ino, const char *name,
		       const void *value, size_t len, int flags);
/* Value into buf (size 0: just the length). -ENODATA, -ERANGE. */
ssize_t stash_cat_getxattr(struct stash_cat *cat, uint64_t ino,
			   const char *name, void *buf, size_t size);
/* NUL-separated names into buf (size 0: just the length). */
ssize_t stash_cat_listxattr(struct stash_cat *cat, uint64_t ino, char *buf,
			    size_t size);
int stash_cat_removexattr(struct stash_cat *cat, uint64_t ino,
			  const char *name);

/* Call fn for each extent of the file map, in offset order. */
int stash_cat_load_extents(struct stash_cat *cat, uint64_t ino,
			   int (*fn)(void *arg, const struct stash_extent *e),
			   void *arg);
/*
 * Replace the file map from offset from on: drop (and unreference) every
 * extent at or after from, then add ext[0..n) (which must start at or
 * after from), adding chunk rows as needed and referencing them.
 */
int stash_cat_replace_extents(struct stash_cat *cat, uint64_t ino,
			      uint64_t from, const struct stash_extent *ext,
			      size_t n);
/* Where a chunk lives, if the catalog knows it. -ENOENT if not. */
int stash_cat_find_chunk(struct stash_cat *cat, const uint8_t id[STASH_ID_LEN],
			 struct stash_chunk_loc *loc);

/*
 * Snapshots: a frozen copy of every inode, entry, xattr and file-map row
 * reachable in the live tree. A snapshot shares chunks with the live tree
 * and other snapshots: chunks.refs counts file-map rows of the live tree
 * and of every snapshot. Ids come from AUTOINCREMENT, never reused.
 */
struct stash_cat_snap {
	uint64_t id;		       /* 1..STASH_SNAP_MAX */
	char name[STASH_NAME_MAX + 1]; /* a file name */
	int64_t created;	       /* ns since the epoch */
};

/* Take a snapshot of the live tree named name at time created (ns): its
 * root directory's mtime is set to created. -EEXIST: name is taken;
 * -ENOSPC: no snapshot id left. *out gets the new snapshot. */
int stash_cat_snap_create(struct stash_cat *cat, const char *name,
			  int64_t created, struct stash_cat_snap *out);
/* Drop snapshot id with all its rows, unreferencing its chunks. */
int stash_cat_snap_delete(struct stash_cat *cat, uint64_t id);
/* -EEXIST if newname is taken, -ENOENT if id is unknown. */
int stash_cat_snap_rename(struct stash_cat *cat, uint64_t id,
			  const char *newname);
/* By name; -ENOENT if none. */
int stash_cat_snap_find(struct stash_cat *cat, const char *name,
			struct stash_cat_snap *out);
/* By id; -ENOENT if none. */
int stash_cat_snap_get(struct stash_cat *cat, uint64_t id,
		       struct stash_cat_snap *out);
/* Call fn for each snapshot with id > after, oldest first; a non-zero
 * return from fn stops the listing and is returned. */
int stash_cat_snap_list(struct stash_cat *cat, uint64_t after,
			int (*fn)(void *arg, const struct stash_cat_snap *s),
			void *arg);

/* Inodes no directory entry points at any more (left by a crash). */
int stash_cat_purge_orphans(struct stash_cat *cat);

int stash_cat_stats(struct stash_cat *cat, struct stash_cat_stats *out);

/* Run PRAGMA integrity_check; 0 when it says ok, -EBADMSG otherwise. */
int stash_cat_check(struct stash_cat *cat);
/* Copy the WAL into the database and truncate the WAL. */
int stash_cat_checkpoint(struct stash_cat *cat);

/*
 * Read-only scans for store/verify.c. They look at rows as stored and do
 * not trust them: out-of-range values are handed over as they are (signed
 * where the schema is), for the caller to report.
 */

/* Run PRAGMA integrity_check: fn (may be NULL) gets each message other
 * than "ok"; a non-zero return from fn stops. 0 when the catalog is
 * intact, -EBADMSG when it is not, another negative errno when the check
 * could not run (a page that does not authenticate: -EBADMSG too). */
int stash_cat_integrity(struct stash_cat *cat,
			int (*fn)(void *arg, const char *msg), void *arg);

/* One extents row, with what verify needs of its inode and chunk. */
struct stash_cat_extent_row {
	uint64_t ino;	  /* extents.ino */
	int64_t off;	  /* logical offset in the file, bytes */
	int64_t len;	  /* bytes covered */
	int64_t chunk;	  /* extents.chunk: a chunks.id, or 0 for a hole */
	bool chunk_found; /* a chunks row with that id exists */
	int64_t raw_len;  /* that chunk's plaintext length, if found */
	bool ino_found;	  /* an inodes row for ino exists */
	uint32_t mode;	  /* its type and permission bits, if found */
	int64_t size;	  /* its size in bytes, if found */
};

/* Call fn for every extents row, ordered by inode, then offset. A
 * non-zero return from fn stops the scan and is returned. */
int stash_cat_scan_extents(struct stash_cat *cat,
			   int (*fn)(void *arg,
				     const struct stash_cat_extent_row *r),
			   void *arg);

/* Call fn for every regular file of non-zero size without any extents
 * row, in inode order. A non-zero return from fn stops and is returned. */
int stash_cat_unmapped_files(struct stash_cat *cat,
			     int (*fn)(void *arg, uint64_t ino, int64_t size),
			     void *arg);

/* A chunks row as verify sees it. */
struct stash_cat_chunk {
	int64_t row;		    /* chunks.id: what extents.chunk names */
	uint8_t id[STASH_ID_LEN];   /* chunk id (chunks.hash) */
	struct stash_chunk_loc loc; /* where the sealed chunk lives */
	uint32_t raw_len;	    /* plaintext length, bytes */
	int64_t refs;		    /* chunks.refs as stored */
	uint64_t uses;		    /* extents rows naming this chunk */
	bool malformed; /* hash not 32 bytes, or off, len or raw_len out of
			 * range: loc and raw_len are not to be used */
};

/*
 * Every chunks row (dead ones too) with row > after, in row order: up to
 * max rows into out. Returns how many (0 once past the last) or a
 * negative errno. Call again with the last row seen to go on; the
 * catalog lock may be dropped in between.
 */
ssize_t stash_cat_list_chunks(struct stash_cat *cat, int64_t after,
			      struct stash_cat_chunk *out, size_t max);

/* Call fn for every extents row naming chunk row chunk (its inode,
 * offset and length), by inode, then offset. A non-zero return from fn
 * stops and is returned. */
int stash_cat_chunk_users(struct stash_cat *cat, int64_t chunk,
			  int (*fn)(void *arg, uint64_t ino, uint64_t off,
				    uint64_t len),
			  void *arg);

/* Call fn for every directory entry naming ino: the directory holding it
 * and the name (NUL-terminated), oldest entry first. -EBADMSG for a
 * stored name that is empty or too long. A non-zero return from fn stops
 * and is returned. */
int stash_cat_names_of(struct stash_cat *cat, uint64_t ino,
		       int (*fn)(void *arg, uint64_t parent, const char *name),
		       void *arg);

#endif
