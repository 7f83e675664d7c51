/*
 * catalog_gc.c - the SQL of garbage collection (catalog_gc.h).
 *
 * gc runs rarely, so statements are prepared per call, like the other
 * catalog_*.c scans; each is finalized before returning. Nothing here
 * decides what is garbage beyond the rows themselves: which packs to
 * rewrite and when it is safe to delete is gc.c's business.
 */
#include "catalog_gc.h"

#include <errno.h>
#include <string.h>

#include "catalog_int.h"
#include "chunk.h"
#include "chunker.h"

/*
 * Dead: no reference counted, and (belt and braces, since a wrong count
 * would lose data) no file-map row naming it. The NOT IN subqueries are
 * not correlated: SQLite builds each set once.
 */
#define DEAD_WHERE                                                             \
	" WHERE refs <= 0 AND id NOT IN (SELECT chunk FROM extents)"           \
	" AND id NOT IN (SELECT chunk FROM snap_extents)"

/* Run a statement with no parameters that returns no rows. */
static int run_plain(struct stash_cat *cat, const char *sql, const char *what)
{
	sqlite3_stmt *s;
	int rc, ret = stash_cat_prepare(cat, sql, &s, what);

	if (ret)
		return ret;
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : stash_cat_sql_err(cat, rc, what);
}

int stash_cat_gc_drop_dead(struct stash_cat *cat, uint64_t *count,
			   uint64_t *bytes)
{
	sqlite3_stmt *s;
	int rc, ret;

	ret = stash_cat_prepare(cat,
				"SELECT count(*), coalesce(sum(len), 0)"
				" FROM chunks" DEAD_WHERE,
				&s, "count dead chunks");
	if (ret)
		return ret;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*count = (uint64_t)sqlite3_column_int64(s, 0);
		*bytes = (uint64_t)sqlite3_column_int64(s, 1);
	}
	sqlite3_finalize(s);
	if (rc != SQLITE_ROW)
		return stash_cat_sql_err(cat, rc, "count dead chunks");
	if (*count == 0)
		return 0;
	return run_plain(cat, "DELETE FROM chunks" DEAD_WHERE,
			 "delete dead chunks");
}

int stash_cat_gc_pack_use(struct stash_cat *cat,
			  int (*fn)(void *arg,
				    const struct stash_cat_pack_use *u),
			  void *arg)
{
	sqlite3_stmt *s;
	int rc, ret;

	ret = stash_cat_prepare(
		cat,
		"SELECT p, sum(n), sum(b), max(l) FROM"
		" (SELECT pack AS p, count(*) AS n, sum(len) AS b, 0 AS l"
		"  FROM chunks GROUP BY pack"
		"  UNION ALL SELECT id, 0, 0, 1 FROM packs)"
		" GROUP BY p ORDER BY p",
		&s, "pack use");
	if (ret)
		return ret;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t pack = sqlite3_column_int64(s, 0);
		int64_t bytes = sqlite3_column_int64(s, 2);
		struct stash_cat_pack_use u = {
			.pack = (uint64_t)pack,
			.chunks = (uint64_t)sqlite3_column_int64(s, 1),
			.bytes = (uint64_t)bytes,
			.listed = sqlite3_column_int(s, 3) != 0,
		};

		if (pack <= 0 || bytes < 0) {
			ret = -EBADMSG;
			break;
		}
		ret = fn(arg, &u);
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = stash_cat_sql_err(cat, rc, "pack use");
	sqlite3_finalize(s);
	return ret;
}

ssize_t stash_cat_gc_pack_chunks(struct stash_cat *cat, uint64_t pack,
				 int64_t after, struct stash_cat_gc_chunk *out,
				 size_t max)
{
	sqlite3_stmt *s;
	size_t n = 0;
	int rc = SQLITE_DONE, ret;

	if (max == 0)
		return 0;
	ret = stash_cat_prepare(cat,
				"SELECT id, hash, off, len, raw_len FROM chunks"
				" WHERE pack = ?1 AND id > ?2 ORDER BY id"
				" LIMIT ?3",
				&s, "list pack chunks");
	if (ret)
		return ret;
	sqlite3_bind_int64(s, 1, (int64_t)pack);
	sqlite3_bind_int64(s, 2, after);
	sqlite3_bind_int64(s, 3, (int64_t)STASH_MIN(max, (size_t)INT64_MAX));
	while (n < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct stash_cat_gc_chunk *c = &out[n++];
		int64_t off = sqlite3_column_int64(s, 2);
		int64_t len = sqlite3_column_int64(s, 3);
		int64_t raw = sqlite3_column_int64(s, 4);

		/* Every value read from disk is checked before use. */
		if (sqlite3_column_bytes(s, 1) != STASH_ID_LEN ||
		    off < STASH_PACK_HDR_LEN || off > INT64_MAX / 2 ||
		    len <= 0 ||
		    len > (int64_t)stash_chunk_sealed_max(
				  STASH_CHUNK_MAX_LIMIT) ||
		    raw <= 0 || raw > STASH_CHUNK_MAX_LIMIT) {
			ret = -EBADMSG;
			break;
		}
		c->row = sqlite3_column_int64(s, 0);
		memcpy(c->id, sqlite3_column_blob(s, 1), STASH_ID_LEN);
		c->loc.pack = pack;
		c->loc.off = (uint64_t)off;
		c->loc.len = (uint32_t)len;
		c->raw_len = (uint32_t)raw;
	}
	if (!ret && n < max && rc != SQLITE_DONE)
		ret = stash_cat_sql_err(cat, rc, "list pack chunks");
	sqlite3_finalize(s);
	return ret ? ret : (ssize_t)n;
}

int stash_cat_gc_move_chunk(struct stash_cat *cat, int64_t row,
			    const struct stash_chunk_loc *from,
			    const struct stash_chunk_loc *to)
{
	sqlite3_stmt *s;
	int rc, ret;

	ret = stash_cat_prepare(
		cat,
		"UPDATE chunks SET pack = ?2, off = ?3, len = ?4"
		" WHERE id = ?1 AND pack = ?5 AND off = ?6"
		" AND len = ?7",
		&s, "move chunk");
	if (ret)
		return ret;
	sqlite3_bind_int64(s, 1, row);
	sqlite3_bind_int64(s, 2, (int64_t)to->pack);
	sqlite3_bind_int64(s, 3, (int64_t)to->off);
	sqlite3_bind_int64(s, 4, to->len);
	sqlite3_bind_int64(s, 5, (int64_t)from->pack);
	sqlite3_bind_int64(s, 6, (int64_t)from->off);
	sqlite3_bind_int64(s, 7, from->len);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return stash_cat_sql_err(cat, rc, "move chunk");
	if (sqlite3_changes(stash_cat_db(cat)) == 0)
		return -ESTALE;

	ret = stash_cat_prepare(cat,
				"INSERT OR IGNORE INTO packs(id)"
				" VALUES(?1)",
				&s, "add pack");
	if (ret)
		return ret;
	sqlite3_bind_int64(s, 1, (int64_t)to->pack);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : stash_cat_sql_err(cat, rc, "add pack");
}

int stash_cat_gc_drop_pack(struct stash_cat *cat, uint64_t pack)
{
	sqlite3_stmt *s;
	int rc, ret;

	ret = stash_cat_prepare(cat,
				"SELECT 1 FROM chunks WHERE pack = ?1 LIMIT 1",
				&s, "find pack chunks");
	if (ret)
		return ret;
	sqlite3_bind_int64(s, 1, (int64_t)pack);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc == SQLITE_ROW)
		return -EBUSY;
	if (rc != SQLITE_DONE)
		return stash_cat_sql_err(cat, rc, "find pack chunks");

	ret = stash_cat_prepare(cat, "DELETE FROM packs WHERE id = ?1", &s,
				"drop pack");
	if (ret)
		return ret;
	sqlite3_bind_int64(s, 1, (int64_t)pack);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : stash_cat_sql_err(cat, rc, "drop pack");
}
