/*
 * catalog_search.c - documents, the indexing queue and queries over the
 * contentless FTS5 table (see catalog_search.h and docs/SEARCH.md).
 */
#include "catalog_search.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "catalog_int.h"
#include "textnorm.h"

/* Column weights for bm25, in docs_fts column order: a word in the title
 * counts ten times one in the body. */
#define RANK "bm25(docs_fts, 10.0, 1.0, 4.0, 4.0, 2.0, 1.0, 1.0, 5.0)"

/* Run sql (no rows) with ino as ?1 and, if the statement has it, n as ?2. */
static int run(struct stash_cat *cat, const char *sql, uint64_t ino, int64_t n)
{
	sqlite3_stmt *s;
	int rc, ret = stash_cat_prepare(cat, sql, &s, "index");

	if (ret)
		return ret;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	if (sqlite3_bind_parameter_count(s) >= 2)
		sqlite3_bind_int64(s, 2, n);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : stash_cat_sql_err(cat, rc, "index");
}

int stash_cat_index_touch(struct stash_cat *cat, uint64_t ino)
{
	int ret = run(cat, "DELETE FROM docs WHERE ino = ?1", ino, 0);

	if (!ret)
		ret = run(cat,
			  "INSERT INTO index_queue(ino, gen) VALUES(?1, 1)"
			  " ON CONFLICT(ino) DO UPDATE SET gen = gen + 1",
			  ino, 0);
	return ret;
}

int stash_cat_index_forget(struct stash_cat *cat, uint64_t ino)
{
	int ret = run(cat, "DELETE FROM docs WHERE ino = ?1", ino, 0);

	if (!ret)
		ret = run(cat, "DELETE FROM index_queue WHERE ino = ?1", ino,
			  0);
	return ret;
}

/* The integer columns of the one row sql selects for key (?1): -ENOENT
 * when there is none. */
static int int_row(struct stash_cat *cat, const char *sql, int64_t key,
		   int64_t *cols, int n, const char *what)
{
	sqlite3_stmt *s;
	int rc, ret = stash_cat_prepare(cat, sql, &s, what);

	if (ret)
		return ret;
	sqlite3_bind_int64(s, 1, key);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		for (int i = 0; i < n; i++)
			cols[i] = sqlite3_column_int64(s, i);
		ret = 0;
	} else {
		ret = rc == SQLITE_DONE ? -ENOENT
					: stash_cat_sql_err(cat, rc, what);
	}
	sqlite3_finalize(s);
	return ret;
}

int stash_cat_index_next(struct stash_cat *cat, uint64_t after, uint64_t *ino,
			 int64_t *gen)
{
	int64_t row[2];
	int ret = int_row(cat,
			  "SELECT ino, gen FROM index_queue WHERE ino > ?1"
			  " ORDER BY ino LIMIT 1",
			  (int64_t)after, row, 2, "index queue");

	if (!ret) {
		*ino = (uint64_t)row[0];
		*gen = row[1];
	}
	return ret;
}

int stash_cat_index_claim(struct stash_cat *cat, uint64_t ino, int64_t gen)
{
	int ret =
		run(cat, "DELETE FROM index_queue WHERE ino = ?1 AND gen = ?2",
		    ino, gen);

	return ret ? ret : sqlite3_changes(stash_cat_db(cat)) > 0;
}

static int count(struct stash_cat *cat, const char *sql, uint64_t *n)
{
	sqlite3_stmt *s;
	int rc, ret = stash_cat_prepare(cat, sql, &s, "count");

	if (ret)
		return ret;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*n = (uint64_t)sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : stash_cat_sql_err(cat, rc, "count");
}

int stash_cat_index_pending(struct stash_cat *cat, uint64_t *n)
{
	return count(cat, "SELECT count(*) FROM index_queue", n);
}

int stash_cat_index_all(struct stash_cat *cat)
{
	static const char *const sql[] = {
		"DELETE FROM docs",
		/* Contentless: the only way to drop rows is all of them. */
		"INSERT INTO docs_fts(docs_fts) VALUES('delete-all')",
		"INSERT INTO index_queue(ino, gen)"
		" SELECT ino, 1 FROM inodes WHERE (mode & 61440) = 32768"
		" ON CONFLICT(ino) DO UPDATE SET gen = gen + 1",
	};

	for (size_t i = 0; i < STASH_ARRAY_SIZE(sql); i++) {
		int ret = stash_cat_exec(cat, sql[i]);

		if (ret)
			return ret;
	}
	return 0;
}

int stash_cat_doc_counts(struct stash_cat *cat, uint64_t *docs, uint64_t *stale)
{
	uint64_t rows = 0;
	int ret = count(cat, "SELECT count(*) FROM docs", docs);

	if (!ret)
		ret = count(cat, "SELECT count(*) FROM docs_fts_docsize",
			    &rows);
	if (!ret)
		*stale = rows > *docs ? rows - *docs : 0;
	return ret;
}

static void bind_text(sqlite3_stmt *s, int col, const char *text)
{
	if (text)
		sqlite3_bind_text(s, col, text, -1, SQLITE_STATIC);
}

int stash_doc_normalize(const struct stash_doc *d, char *norm[STASH_DOC_FIELDS])
{
	const char *fields[STASH_DOC_FIELDS] = { d->title,  d->content,
						 d->author, d->tags,
						 d->url,    d->lang,
						 d->meta,   d->name };
	int ret = 0;

	for (size_t i = 0; i < STASH_DOC_FIELDS; i++)
		norm[i] = NULL;
	for (size_t i = 0; !ret && i < STASH_DOC_FIELDS; i++)
		if (fields[i])
			ret = stash_textnorm(fields[i], strlen(fields[i]),
					     STASH_TEXTNORM_INDEX, &norm[i],
					     NULL);
	if (ret)
		stash_doc_norm_free(norm);
	return ret;
}

void stash_doc_norm_free(char *norm[STASH_DOC_FIELDS])
{
	for (size_t i = 0; i < STASH_DOC_FIELDS; i++) {
		free(norm[i]);
		norm[i] = NULL;
	}
}

int stash_cat_doc_add(struct stash_cat *cat, const struct stash_doc *d,
		      char *const norm[STASH_DOC_FIELDS])
{
	char *own[STASH_DOC_FIELDS] = { 0 };
	sqlite3_stmt *s = NULL;
	int64_t id;
	int rc, ret;

	if (!norm) {
		ret = stash_doc_normalize(d, own);
		if (ret)
			return ret;
		norm = own;
	}
	ret = stash_cat_prepare(cat,
				"INSERT INTO docs(ino, line, off, len, kind,"
				" title, url, author, tags, lang, published_at)"
				" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
				" ?10, ?11)",
				&s, "add document");
	if (ret)
		goto out;
	sqlite3_bind_int64(s, 1, (int64_t)d->ino);
	sqlite3_bind_int64(s, 2, (int64_t)d->line);
	sqlite3_bind_int64(s, 3, (int64_t)d->off);
	sqlite3_bind_int64(s, 4, (int64_t)d->len);
	sqlite3_bind_int(s, 5, d->kind);
	bind_text(s, 6, d->title);
	bind_text(s, 7, d->url);
	bind_text(s, 8, d->author);
	bind_text(s, 9, d->tags);
	bind_text(s, 10, d->lang);
	if (d->has_date)
		sqlite3_bind_int64(s, 11, d->date);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE) {
		ret = stash_cat_sql_err(cat, rc, "add document");
		goto out;
	}
	id = sqlite3_last_insert_rowid(stash_cat_db(cat));
	ret = stash_cat_prepare(cat,
				"INSERT INTO docs_fts(rowid, title, content,"
				" author, tags, url, lang, meta, name)"
				" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
				&s, "index document");
	if (ret)
		goto out;
	sqlite3_bind_int64(s, 1, id);
	for (size_t i = 0; i < STASH_DOC_FIELDS; i++)
		bind_text(s, (int)i + 2, norm[i]);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		ret = stash_cat_sql_err(cat, rc, "index document");
out:
	stash_doc_norm_free(own);
	return ret;
}

static const char *column_text(sqlite3_stmt *s, int col)
{
	return (const char *)sqlite3_column_text(s, col);
}

int stash_cat_search(struct stash_cat *cat, const struct stash_query *q,
		     int (*fn)(void *arg, const struct stash_hit *h), void *arg,
		     char *err, size_t errlen)
{
	/* ?2 and ?3 are the date range, NULL where open. */
	static const char with_match[] =
		"SELECT d.id, d.ino, d.line, d.off, d.len, d.kind, " RANK ","
		" d.title, d.url, d.author, d.tags, d.lang, d.published_at"
		" FROM docs_fts JOIN docs d ON d.id = docs_fts.rowid"
		" WHERE docs_fts MATCH ?1"
		" AND (?2 IS NULL OR d.published_at >= ?2)"
		" AND (?3 IS NULL OR d.published_at < ?3) ORDER BY 7";
	static const char filters_only[] =
		"SELECT d.id, d.ino, d.line, d.off, d.len, d.kind, 0.0,"
		" d.title, d.url, d.author, d.tags, d.lang, d.published_at"
		" FROM docs d WHERE (?2 IS NULL OR d.published_at >= ?2)"
		" AND (?3 IS NULL OR d.published_at < ?3)"
		" ORDER BY d.published_at DESC, d.id";
	sqlite3_stmt *s;
	int rc, ret;

	ret = stash_cat_prepare(cat, q->match ? with_match : filters_only, &s,
				"search");
	if (ret)
		return ret;
	if (q->match)
		sqlite3_bind_text(s, 1, q->match, -1, SQLITE_STATIC);
	if (q->after_ns != INT64_MIN)
		sqlite3_bind_int64(s, 2, q->after_ns);
	if (q->before_ns != INT64_MAX)
		sqlite3_bind_int64(s, 3, q->before_ns);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct stash_hit h = {
			.doc = (uint64_t)sqlite3_column_int64(s, 0),
			.ino = (uint64_t)sqlite3_column_int64(s, 1),
			.line = (uint64_t)sqlite3_column_int64(s, 2),
			.off = (uint64_t)sqlite3_column_int64(s, 3),
			.len = (uint64_t)sqlite3_column_int64(s, 4),
			.kind = (enum stash_doc_kind)sqlite3_column_int(s, 5),
			.score = sqlite3_column_double(s, 6),
			.title = column_text(s, 7),
			.url = column_text(s, 8),
			.author = column_text(s, 9),
			.tags = column_text(s, 10),
			.lang = column_text(s, 11),
			.has_date = sqlite3_column_type(s, 12) != SQLITE_NULL,
			.date = sqlite3_column_int64(s, 12),
		};

		if (fn(arg, &h))
			break;
	}
	ret = 0;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		/* FTS5 refuses an expression only when it runs it. */
		if (err && errlen)
			snprintf(err, errlen, "%s",
				 sqlite3_errmsg(stash_cat_db(cat)));
		ret = rc == SQLITE_ERROR ? -EINVAL
					 : stash_cat_sql_err(cat, rc, "search");
	}
	sqlite3_finalize(s);
	return ret;
}

struct walk {
	uint64_t parent;
	char *name; /* where to copy the name, or NULL */
};

static int first_entry(void *arg, uint64_t parent, const char *name)
{
	struct walk *w = arg;

	w->parent = parent;
	if (w->name)
		snprintf(w->name, STASH_NAME_MAX + 1, "%s", name);
	return 1;
}

int stash_cat_name_area(struct stash_cat *cat, uint64_t ino, char *name,
			char *area)
{
	struct walk w = { 0, name };
	uint64_t dir;
	int ret, depth = 0;

	name[0] = area[0] = '\0';
	ret = stash_cat_names_of(cat, ino, first_entry, &w);
	if (ret != 1)
		return ret; /* 0: no name (unlinked) */
	/* Up to the folder just below the root; its name is the area. */
	dir = ino;
	while (w.parent != STASH_ROOT_INO && depth++ < 4096) {
		dir = w.parent;
		w.name = NULL;
		ret = stash_cat_names_of(cat, dir, first_entry, &w);
		if (ret != 1)
			return ret;
	}
	if (dir == ino) {
		snprintf(area, STASH_NAME_MAX + 1, "%s", name);
		return 0;
	}
	w.name = area;
	ret = stash_cat_names_of(cat, dir, first_entry, &w);
	return ret == 1 ? 0 : ret;
}

int stash_cat_doc_get(struct stash_cat *cat, uint64_t id, uint64_t *ino,
		      uint64_t *line, uint64_t *off, uint64_t *len)
{
	int64_t row[4];
	int ret = int_row(cat,
			  "SELECT ino, line, off, len FROM docs WHERE id = ?1",
			  (int64_t)id, row, 4, "find document");

	if (!ret) {
		*ino = (uint64_t)row[0];
		*line = (uint64_t)row[1];
		*off = (uint64_t)row[2];
		*len = (uint64_t)row[3];
	}
	return ret;
}
