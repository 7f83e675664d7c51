/*
 * catalog_verify.c - the catalog's read-only scans for store/verify.c.
 *
 * These run rarely, so their statements are prepared per call rather than
 * cached; each finalizes its statement before returning.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "catalog_int.h"

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
		size_t len = (size_t)sqlite3_column_bytes(s, 1);

		if (len == 0 || len > STASH_NAME_MAX) {
			ret = -EBADMSG;
			break;
		}
		memcpy(name, sqlite3_column_blob(s, 1), len);
		name[len] = '\0';
		ret = fn(arg, (uint64_t)sqlite3_column_int64(s, 0), name);
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = stash_cat_sql_err(cat, rc, "find names");
	sqlite3_finalize(s);
	return ret;
}
