/*
 * catalog_verify.c - the catalog's scans for store/verify.c (declared in
 * catalog.h for the live tree, in catalog_verify.h for what also knows
 * snapshots) and the few row changes `verify --repair` makes.
 *
 * These run rarely, so their statements are prepared per call rather than
 * cached; each finalizes its statement before returning. Nothing here
 * deletes a row that holds user data: repairs rewrite chunk locations and
 * reference counts, and set or clear damage marks (xattrs).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "catalog_int.h"
#include "catalog_verify.h"

/* Copy the name in column col of s's row into name (NUL-terminated);
 * -EBADMSG if it is empty or longer than a name can be. */
static int column_name(sqlite3_stmt *s, int col, char name[STASH_NAME_MAX + 1])
{
	size_t len = (size_t)sqlite3_column_bytes(s, col);

	if (len == 0 || len > STASH_NAME_MAX)
		return -EBADMSG;
	memcpy(name, sqlite3_column_blob(s, col), len);
	name[len] = '\0';
	return 0;
}

int stash_cat_integrity(struct stash_cat *cat,
			int (*fn)(void *arg, const char *msg), void *arg)
{
	sqlite3_stmt *s;
	int rc, ret, ok = 0, msgs = 0;

	ret = stash_cat_prepare(cat, "PRAGMA integrity_check", &s,
				"integrity check");
	if (ret)
		return ret;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *msg = (const char *)sqlite3_column_text(s, 0);

		if (msg && !strcmp(msg, "ok")) {
			ok = 1;
			continue;
		}
		msgs++;
		if (fn && fn(arg, msg ? msg : "(no message)"))
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = stash_cat_sql_err(cat, rc, "integrity check");
	else if (!ok || msgs)
		ret = -EBADMSG;
	sqlite3_finalize(s);
	return ret;
}

int stash_cat_scan_extents(struct stash_cat *cat,
			   int (*fn)(void *arg,
				     const struct stash_cat_extent_row *r),
			   void *arg)
{
	sqlite3_stmt *s;
	int rc, ret;

	/* (ino, off) is the primary key: no sort, one pass. */
	ret = stash_cat_prepare(cat,
				"SELECT e.ino, e.off, e.len, e.chunk,"
				" c.id IS NOT NULL, c.raw_len,"
				" i.ino IS NOT NULL, i.mode, i.size"
				" FROM extents e"
				" LEFT JOIN chunks c ON c.id = e.chunk"
				" LEFT JOIN inodes i ON i.ino = e.ino"
				" ORDER BY e.ino, e.off",
				&s, "scan extents");
	if (ret)
		return ret;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct stash_cat_extent_row r = {
			.ino = (uint64_t)sqlite3_column_int64(s, 0),
			.off = sqlite3_column_int64(s, 1),
			.len = sqlite3_column_int64(s, 2),
			.chunk = sqlite3_column_int64(s, 3),
			.chunk_found = sqlite3_column_int(s, 4) != 0,
			.raw_len = sqlite3_column_int64(s, 5),
			.ino_found = sqlite3_column_int(s, 6) != 0,
			.mode = (uint32_t)sqlite3_column_int64(s, 7),
			.size = sqlite3_column_int64(s, 8),
		};

		ret = fn(arg, &r);
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = stash_cat_sql_err(cat, rc, "scan extents");
	sqlite3_finalize(s);
	return ret;
}

int stash_cat_unmapped_files(struct stash_cat *cat,
			     int (*fn)(void *arg, uint64_t ino, int64_t size),
			     void *arg)
{
	sqlite3_stmt *s;
	int rc, ret;

	ret = stash_cat_prepare(cat,
				"SELECT ino, size FROM inodes i"
				" WHERE (mode & 61440) = 32768 AND size != 0"
				" AND NOT EXISTS (SELECT 1 FROM extents e"
				" WHERE e.ino = i.ino) ORDER BY ino",
				&s, "find unmapped files");
	if (ret)
		return ret;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		ret = fn(arg, (uint64_t)sqlite3_column_int64(s, 0),
			 sqlite3_column_int64(s, 1));
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = stash_cat_sql_err(cat, rc, "find unmapped files");
	sqlite3_finalize(s);
	return ret;
}

ssize_t stash_cat_list_chunks(struct stash_cat *cat, int64_t after,
			      struct stash_cat_chunk *out, size_t max)
{
	sqlite3_stmt *s;
	size_t n = 0;
	int rc = SQLITE_DONE, ret;

	if (max == 0)
		return 0;
	/* Row order: the order chunks were first stored, so roughly the
	 * order of the packs and of the bytes in each. */
	ret = stash_cat_prepare(
		cat,
		"SELECT c.id, c.hash, c.pack, c.off, c.len, c.raw_len,"
		" c.refs, (SELECT count(*) FROM extents e"
		" WHERE e.chunk = c.id)"
		" FROM chunks c WHERE c.id > ?1 ORDER BY c.id LIMIT ?2",
		&s, "list chunks");
	if (ret)
		return ret;
	sqlite3_bind_int64(s, 1, after);
	sqlite3_bind_int64(s, 2, (int64_t)STASH_MIN(max, (size_t)INT64_MAX));
	while (n < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct stash_cat_chunk *c = &out[n++];
		int idlen = sqlite3_column_bytes(s, 1);
		int64_t off = sqlite3_column_int64(s, 3);
		int64_t len = sqlite3_column_int64(s, 4);
		int64_t raw = sqlite3_column_int64(s, 5);

		memset(c, 0, sizeof(*c));
		c->row = sqlite3_column_int64(s, 0);
		if (idlen > 0)
			memcpy(c->id, sqlite3_column_blob(s, 1),
			       STASH_MIN((size_t)idlen, sizeof(c->id)));
		c->loc.pack = (uint64_t)sqlite3_column_int64(s, 2);
		c->loc.off = (uint64_t)off;
		c->loc.len = (uint32_t)len;
		c->raw_len = (uint32_t)raw;
		c->refs = sqlite3_column_int64(s, 6);
		c->uses = (uint64_t)sqlite3_column_int64(s, 7);
		c->malformed = idlen != STASH_ID_LEN || off < 0 || len <= 0 ||
			       len > UINT32_MAX || raw <= 0 || raw > UINT32_MAX;
	}
	if (n < max && rc != SQLITE_DONE)
		ret = stash_cat_sql_err(cat, rc, "list chunks");
	sqlite3_finalize(s);
	return ret ? ret : (ssize_t)n;
}

int stash_cat_chunk_users(struct stash_cat *cat, int64_t chunk,
			  int (*fn)(void *arg, uint64_t ino, uint64_t off,
				    uint64_t len),
			  void *arg)
{
	sqlite3_stmt *s;
	int rc, ret;

	ret = stash_cat_prepare(
		cat,
		"SELECT ino, off, len FROM extents WHERE chunk = ?1"
		" ORDER BY ino, off",
		&s, "find chunk users");
	if (ret)
		return ret;
	sqlite3_bind_int64(s, 1, chunk);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		ret = fn(arg, (uint64_t)sqlite3_column_int64(s, 0),
			 (uint64_t)sqlite3_column_int64(s, 1),
			 (uint64_t)sqlite3_column_int64(s, 2));
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = stash_cat_sql_err(cat, rc, "find chunk users");
	sqlite3_finalize(s);
	return ret;
}

int stash_cat_names_of(struct stash_cat *cat, uint64_t ino,
		       int (*fn)(void *arg, uint64_t parent, const char *name),
		       void *arg)
{
	char name[STASH_NAME_MAX + 1];
	sqlite3_stmt *s;
	int rc, ret;

	ret = stash_cat_prepare(
		cat,
		"SELECT parent, name FROM dirents WHERE ino = ?1"
		" ORDER BY id",
		&s, "find names");
	if (ret)
		return ret;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		ret = column_name(s, 1, name);
		if (!ret)
			ret = fn(arg, (uint64_t)sqlite3_column_int64(s, 0),
				 name);
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = stash_cat_sql_err(cat, rc, "find names");
	sqlite3_finalize(s);
	return ret;
}

/* ---- snapshot-aware scans (catalog_verify.h) ---- */

/* Step s to its end, handing each row to row(); a non-zero return from
 * row stops and is returned. Finalizes s. */
static int each_row(struct stash_cat *cat, sqlite3_stmt *s,
		    int (*row)(sqlite3_stmt *s, void *ctx), void *ctx,
		    const char *what)
{
	int rc, ret = 0;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		ret = row(s, ctx);
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = stash_cat_sql_err(cat, rc, what);
	sqlite3_finalize(s);
	return ret;
}

/* each_row over the statements sql[0..n) in turn, the live tree's and
 * the snapshots', until one fails. */
static int each_row_of(struct stash_cat *cat, const char *const *sql, size_t n,
		       int (*row)(sqlite3_stmt *s, void *ctx), void *ctx,
		       const char *what)
{
	int ret = 0;

	for (size_t i = 0; i < n && !ret; i++) {
		sqlite3_stmt *s;

		ret = stash_cat_prepare(cat, sql[i], &s, what);
		if (!ret)
			ret = each_row(cat, s, row, ctx, what);
	}
	return ret;
}

struct map_ctx {
	int (*fn)(void *arg, const struct stash_cat_map_row *r);
	void *arg;
};

static int map_row(sqlite3_stmt *s, void *ctx)
{
	struct map_ctx *m = ctx;
	struct stash_cat_map_row r = {
		.snap = sqlite3_column_int64(s, 0),
		.snap_found = sqlite3_column_int(s, 1) != 0,
		.ino = sqlite3_column_int64(s, 2),
		.off = sqlite3_column_int64(s, 3),
		.len = sqlite3_column_int64(s, 4),
		.chunk = sqlite3_column_int64(s, 5),
		.chunk_found = sqlite3_column_int(s, 6) != 0,
		.raw_len = sqlite3_column_int64(s, 7),
		.ino_found = sqlite3_column_int(s, 8) != 0,
		.mode = (uint32_t)sqlite3_column_int64(s, 9),
		.size = sqlite3_column_int64(s, 10),
	};

	return m->fn(m->arg, &r);
}

int stash_cat_verify_scan_maps(struct stash_cat *cat,
			       int (*fn)(void *arg,
					 const struct stash_cat_map_row *r),
			       void *arg)
{
	/* Each in its table's primary-key order: one pass, no sort. */
	static const char *const sql[] = {
		"SELECT 0, 1, e.ino, e.off, e.len, e.chunk,"
		" c.id IS NOT NULL, c.raw_len,"
		" i.ino IS NOT NULL, i.mode, i.size"
		" FROM extents e"
		" LEFT JOIN chunks c ON c.id = e.chunk"
		" LEFT JOIN inodes i ON i.ino = e.ino"
		" ORDER BY e.ino, e.off",
		"SELECT e.snap, s.id IS NOT NULL, e.ino, e.off, e.len, e.chunk,"
		" c.id IS NOT NULL, c.raw_len,"
		" i.ino IS NOT NULL, i.mode, i.size"
		" FROM snap_extents e"
		" LEFT JOIN snapshots s ON s.id = e.snap"
		" LEFT JOIN chunks c ON c.id = e.chunk"
		" LEFT JOIN snap_inodes i ON i.snap = e.snap AND i.ino = e.ino"
		" ORDER BY e.snap, e.ino, e.off",
	};
	struct map_ctx m = { fn, arg };

	return each_row_of(cat, sql, STASH_ARRAY_SIZE(sql), map_row, &m,
			   "scan file maps");
}

struct unmapped_ctx {
	int (*fn)(void *arg, int64_t snap, int64_t ino, int64_t size);
	void *arg;
};

static int unmapped_row(sqlite3_stmt *s, void *ctx)
{
	struct unmapped_ctx *u = ctx;

	return u->fn(u->arg, sqlite3_column_int64(s, 0),
		     sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2));
}

int stash_cat_verify_unmapped(struct stash_cat *cat,
			      int (*fn)(void *arg, int64_t snap, int64_t ino,
					int64_t size),
			      void *arg)
{
	static const char *const sql[] = {
		"SELECT 0, ino, size FROM inodes i"
		" WHERE (mode & 61440) = 32768 AND size != 0"
		" AND NOT EXISTS (SELECT 1 FROM extents e"
		" WHERE e.ino = i.ino) ORDER BY ino",
		"SELECT snap, ino, size FROM snap_inodes i"
		" WHERE (mode & 61440) = 32768 AND size != 0"
		" AND NOT EXISTS (SELECT 1 FROM snap_extents e"
		" WHERE e.snap = i.snap AND e.ino = i.ino)"
		" ORDER BY snap, ino",
	};
	struct unmapped_ctx u = { fn, arg };

	return each_row_of(cat, sql, STASH_ARRAY_SIZE(sql), unmapped_row, &u,
			   "find unmapped files");
}

int stash_cat_verify_totals(struct stash_cat *cat, uint64_t *chunks,
			    uint64_t *bytes)
{
	sqlite3_stmt *s;
	int rc, ret;

	ret = stash_cat_prepare(
		cat,
		"SELECT count(*), total(max(len, 0)) FROM chunks"
		" WHERE refs > 0",
		&s, "count chunks");
	if (ret)
		return ret;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		double b = sqlite3_column_double(s, 1);

		*chunks = (uint64_t)sqlite3_column_int64(s, 0);
		*bytes = b > 0 && b < 1.8e19 ? (uint64_t)b : 0;
	} else {
		ret = stash_cat_sql_err(cat, rc, "count chunks");
	}
	sqlite3_finalize(s);
	return ret;
}

struct pack_rows_ctx {
	int (*fn)(void *arg, int64_t row, int64_t off, int64_t len);
	void *arg;
};

static int pack_row(sqlite3_stmt *s, void *ctx)
{
	struct pack_rows_ctx *p = ctx;

	return p->fn(p->arg, sqlite3_column_int64(s, 0),
		     sqlite3_column_int64(s, 1), sqlite3_column_int64(s, 2));
}

int stash_cat_verify_pack_rows(struct stash_cat *cat, uint64_t pack,
			       int (*fn)(void *arg, int64_t row, int64_t off,
					 int64_t len),
			       void *arg)
{
	struct pack_rows_ctx p = { fn, arg };
	sqlite3_stmt *s;
	int ret;

	ret = stash_cat_prepare(
		cat,
		"SELECT id, off, len FROM chunks WHERE pack = ?1"
		" ORDER BY off",
		&s, "list a pack's chunks");
	if (ret)
		return ret;
	sqlite3_bind_int64(s, 1, (int64_t)pack);
	return each_row(cat, s, pack_row, &p, "list a pack's chunks");
}

struct dirents_ctx {
	int (*fn)(void *arg, uint64_t parent, const char *name, uint64_t ino,
		  bool is_dir);
	void *arg;
};

static int dirent_row(sqlite3_stmt *s, void *ctx)
{
	struct dirents_ctx *d = ctx;
	char name[STASH_NAME_MAX + 1];
	int ret = column_name(s, 1, name);

	if (ret)
		return ret;
	return d->fn(d->arg, (uint64_t)sqlite3_column_int64(s, 0), name,
		     (uint64_t)sqlite3_column_int64(s, 2),
		     sqlite3_column_int(s, 3) != 0);
}

int stash_cat_verify_snap_dirents(struct stash_cat *cat, uint64_t snap,
				  int (*fn)(void *arg, uint64_t parent,
					    const char *name, uint64_t ino,
					    bool is_dir),
				  void *arg)
{
	struct dirents_ctx d = { fn, arg };
	sqlite3_stmt *s;
	int ret;

	/* Primary-key order (snap, parent, name): a range, no sort. */
	ret = stash_cat_prepare(cat,
				"SELECT d.parent, d.name, d.ino,"
				" coalesce((i.mode & 61440) = 16384, 0)"
				" FROM snap_dirents d LEFT JOIN snap_inodes i"
				" ON i.snap = d.snap AND i.ino = d.ino"
				" WHERE d.snap = ?1 ORDER BY d.parent, d.name",
				&s, "list snapshot entries");
	if (ret)
		return ret;
	sqlite3_bind_int64(s, 1, (int64_t)snap);
	return each_row(cat, s, dirent_row, &d, "list snapshot entries");
}

struct marks_ctx {
	int (*fn)(void *arg, int64_t snap, int64_t ino, const void *value,
		  size_t len);
	void *arg;
};

static int mark_row(sqlite3_stmt *s, void *ctx)
{
	struct marks_ctx *m = ctx;

	return m->fn(m->arg, sqlite3_column_int64(s, 0),
		     sqlite3_column_int64(s, 1), sqlite3_column_blob(s, 2),
		     (size_t)sqlite3_column_bytes(s, 2));
}

int stash_cat_verify_marks(struct stash_cat *cat, const char *name,
			   int (*fn)(void *arg, int64_t snap, int64_t ino,
				     const void *value, size_t len),
			   void *arg)
{
	struct marks_ctx m = { fn, arg };
	sqlite3_stmt *s;
	int ret;

	/* Names are stored as BLOBs: bind as one, or nothing matches. */
	ret = stash_cat_prepare(cat,
				"SELECT 0, ino, value FROM xattrs"
				" WHERE name = ?1 UNION ALL"
				" SELECT snap, ino, value FROM snap_xattrs"
				" WHERE name = ?1",
				&s, "find damage marks");
	if (ret)
		return ret;
	sqlite3_bind_blob(s, 1, name, (int)strlen(name), SQLITE_STATIC);
	return each_row(cat, s, mark_row, &m, "find damage marks");
}

/* ---- repairs ---- */

/* Step a statement that changes rows; -ENOENT if it changed none. */
static int change(struct stash_cat *cat, sqlite3_stmt *s, bool must_change,
		  const char *what)
{
	int rc = sqlite3_step(s);

	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return stash_cat_sql_err(cat, rc, what);
	if (must_change && sqlite3_changes(stash_cat_db(cat)) == 0)
		return -ENOENT;
	return 0;
}

int stash_cat_verify_relocate(struct stash_cat *cat, int64_t row,
			      const struct stash_chunk_loc *loc,
			      uint32_t raw_len)
{
	sqlite3_stmt *s;
	int ret;

	ret = stash_cat_prepare(cat,
				"INSERT OR IGNORE INTO packs(id) VALUES(?1)",
				&s, "add pack");
	if (ret)
		return ret;
	sqlite3_bind_int64(s, 1, (int64_t)loc->pack);
	ret = change(cat, s, false, "add pack");
	if (ret)
		return ret;
	ret = stash_cat_prepare(
		cat,
		"UPDATE chunks SET pack = ?2, off = ?3, len = ?4,"
		" raw_len = ?5 WHERE id = ?1",
		&s, "relocate chunk");
	if (ret)
		return ret;
	sqlite3_bind_int64(s, 1, row);
	sqlite3_bind_int64(s, 2, (int64_t)loc->pack);
	sqlite3_bind_int64(s, 3, (int64_t)loc->off);
	sqlite3_bind_int64(s, 4, loc->len);
	sqlite3_bind_int64(s, 5, raw_len);
	return change(cat, s, true, "relocate chunk");
}

int stash_cat_verify_set_refs(struct stash_cat *cat, int64_t row, int64_t refs)
{
	sqlite3_stmt *s;
	int ret;

	ret = stash_cat_prepare(cat,
				"UPDATE chunks SET refs = ?2 WHERE id = ?1", &s,
				"set chunk refs");
	if (ret)
		return ret;
	sqlite3_bind_int64(s, 1, row);
	sqlite3_bind_int64(s, 2, refs);
	return change(cat, s, true, "set chunk refs");
}

int stash_cat_verify_set_mark(struct stash_cat *cat, int64_t snap, int64_t ino,
			      const char *name, const void *value, size_t len)
{
	static const char *const sql[2][2] = {
		{ "DELETE FROM xattrs WHERE ino = ?2 AND name = ?3",
		  "INSERT INTO xattrs(ino, name, value) VALUES(?2, ?3, ?4)"
		  " ON CONFLICT(ino, name) DO UPDATE SET value = excluded.value" },
		{ "DELETE FROM snap_xattrs"
		  " WHERE snap = ?1 AND ino = ?2 AND name = ?3",
		  "INSERT INTO snap_xattrs(snap, ino, name, value)"
		  " VALUES(?1, ?2, ?3, ?4) ON CONFLICT(snap, ino, name)"
		  " DO UPDATE SET value = excluded.value" },
	};
	sqlite3_stmt *s;
	int ret;

	if (len > INT32_MAX)
		return -E2BIG;
	ret = stash_cat_prepare(cat, sql[snap != 0][value != NULL], &s,
				"set damage mark");
	if (ret)
		return ret;
	if (snap)
		sqlite3_bind_int64(s, 1, snap);
	sqlite3_bind_int64(s, 2, ino);
	sqlite3_bind_blob(s, 3, name, (int)strlen(name), SQLITE_TRANSIENT);
	if (value)
		sqlite3_bind_blob(s, 4, len ? value : "", (int)len,
				  SQLITE_TRANSIENT);
	return change(cat, s, false, "set damage mark");
}
