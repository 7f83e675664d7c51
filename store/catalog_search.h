/*
 * catalog_search.h - the full-text index in the catalog (schema 3; see
 * docs/SEARCH.md): documents, the queue of files to (re)index, and
 * queries.
 *
 * A document is a whole file (line 0) or one record of a JSON Lines file
 * (line >= 1). Its fields go through textnorm before FTS5 sees them. The
 * FTS5 table is contentless, so a changed or removed document only loses
 * its `docs` row: the index row it leaves is never returned (searches join
 * on `docs`) and `stashfs reindex` drops such rows.
 *
 * Indexing is queued: a change to a file drops its documents and queues
 * it, in the caller's transaction, so the index never describes data that
 * is gone; the indexer (store/indexer.c) reads the file later and adds the
 * new documents if the file was not queued again meanwhile (gen).
 * Like the rest of the catalog, not thread-safe: the caller holds the
 * catalog lock, and functions that change rows run in its transaction.
 */
#ifndef STASH_CATALOG_SEARCH_H
#define STASH_CATALOG_SEARCH_H

#include <stdbool.h>
#include <stdint.h>

#include "catalog.h"
#include "query.h"

enum stash_doc_kind {
	STASH_DOC_NAME = 1,    /* a file known by its name only */
	STASH_DOC_TEXT = 2,    /* a text file: name and content */
	STASH_DOC_ARTICLE = 3, /* an article, or a JSON Lines record */
};

/* A document to add. Strings are UTF-8 text or NULL. */
struct stash_doc {
	uint64_t ino;
	uint64_t line;	   /* 0: the whole file; JSON Lines: 1-based */
	uint64_t off, len; /* the record's bytes in the file */
	enum stash_doc_kind kind;
	const char *name; /* the file's name */
	const char *title, *content, *author, *tags, *url, *lang, *meta;
	int64_t date; /* published_at (articles) or mtime, ns */
	bool has_date;
};

/* A search result, best first. Strings are valid during the callback. */
struct stash_hit {
	uint64_t doc; /* docs.id */
	uint64_t ino, line, off, len;
	enum stash_doc_kind kind;
	double score; /* bm25: lower is better */
	const char *title, *url, *author, *tags, *lang;
	int64_t date;
	bool has_date;
};

/* Drop ino's documents and queue it for indexing. */
int stash_cat_index_touch(struct stash_cat *cat, uint64_t ino);
/* Drop ino's documents and any queue entry (the inode is going away). */
int stash_cat_index_forget(struct stash_cat *cat, uint64_t ino);
/* A queued inode with ino > after, and its generation; -ENOENT if none. */
int stash_cat_index_next(struct stash_cat *cat, uint64_t after, uint64_t *ino,
			 int64_t *gen);
/* Take ino off the queue if it is still at generation gen: 1 if it was
 * (the caller then adds its documents in the same transaction), 0 if it
 * was queued again meanwhile (its documents would be stale). */
int stash_cat_index_claim(struct stash_cat *cat, uint64_t ino, int64_t gen);
/* How many inodes wait in the queue. */
int stash_cat_index_pending(struct stash_cat *cat, uint64_t *n);
/* Queue every regular file (stashfs reindex), dropping every document. */
int stash_cat_index_all(struct stash_cat *cat);

/* ino's first name and its area (the name of the folder below the root
 * it lives in; for an entry of the root itself, its own name), each in a
 * buffer of STASH_NAME_MAX + 1 bytes; both "" for an unlinked inode. */
int stash_cat_name_area(struct stash_cat *cat, uint64_t ino, char *name,
			char *area);

/* The document's fields (title, content, author, tags, url, lang, meta,
 * name) as the index takes them (textnorm); NULL where a field is. Done
 * before taking the catalog lock, it keeps the lock short. */
#define STASH_DOC_FIELDS 8
int stash_doc_normalize(const struct stash_doc *d,
			char *norm[STASH_DOC_FIELDS]);
void stash_doc_norm_free(char *norm[STASH_DOC_FIELDS]);
/* Add d; norm from stash_doc_normalize, or NULL to normalize here. */
int stash_cat_doc_add(struct stash_cat *cat, const struct stash_doc *d,
		      char *const norm[STASH_DOC_FIELDS]);
/* A document's file and record bytes; -ENOENT if there is none. */
int stash_cat_doc_get(struct stash_cat *cat, uint64_t id, uint64_t *ino,
		      uint64_t *line, uint64_t *off, uint64_t *len);
/* Documents indexed, and index rows left by changed documents. */
int stash_cat_doc_counts(struct stash_cat *cat, uint64_t *docs,
			 uint64_t *stale);

/*
 * Run q's MATCH expression and date range; fn gets each hit, best first,
 * until it returns non-zero (that is not an error). Without a MATCH
 * expression every dated document in the range matches, newest first.
 * -EINVAL with FTS5's message in err for an expression FTS5 refuses.
 */
int stash_cat_search(struct stash_cat *cat, const struct stash_query *q,
		     int (*fn)(void *arg, const struct stash_hit *h), void *arg,
		     char *err, size_t errlen);

#endif
