/*
 * catalog_snap.c - snapshots in the catalog: copying the live tree's rows
 * into the snap_* tables, dropping and renaming them, listing them.
 *
 * A snapshot is taken inside the caller's transaction, so it is atomic:
 * it holds exactly the committed live tree, never half of a commit. Only
 * inodes reachable from the root are copied (an unlinked file that is
 * still open has an inodes row but no entry), and every file-map row
 * copied takes a reference on its chunk, so chunks.refs keeps counting
 * every file-map row that names a chunk, live or frozen.
 */
#include <errno.h>
#include <string.h>

#include "catalog_int.h"

/* Run one statement with the snapshot id as ?1 (and an int64 as ?2). */
static int run(struct stash_cat *cat, const char *sql, uint64_t id, int64_t arg,
	       const char *what)
{
	sqlite3_stmt *s;
	int rc, ret = stash_cat_prepare(cat, sql, &s, what);

	if (ret)
		return ret;
	sqlite3_bind_int64(s, 1, (int64_t)id);
	if (sqlite3_bind_parameter_count(s) >= 2)
		sqlite3_bind_int64(s, 2, arg);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : stash_cat_sql_err(cat, rc, what);
}

static int bind_name(sqlite3_stmt *s, int col, const char *name)
{
	return sqlite3_bind_blob(s, col, name, (int)strlen(name),
				 SQLITE_TRANSIENT);
}

/* Fill out from a row of (id, name, created). */
static int read_snap(sqlite3_stmt *s, struct stash_cat_snap *out)
{
	int len = sqlite3_column_bytes(s, 1);

	if (len <= 0 || len > STASH_NAME_MAX)
		return -EBADMSG;
	out->id = (uint64_t)sqlite3_column_int64(s, 0);
	memcpy(out->name, sqlite3_column_blob(s, 1), (size_t)len);
	out->name[len] = '\0';
	out->created = sqlite3_column_int64(s, 2);
	return 0;
}

int stash_cat_snap_create(struct stash_cat *cat, const char *name,
			  int64_t created, struct stash_cat_snap *out)
{
	static const char *const copy[] = {
		"INSERT INTO snap_inodes(snap, ino, mode, nlink, uid, gid,"
		" size, rdev, atime, mtime, ctime, target)"
		" SELECT ?1, ino, mode, nlink, uid, gid, size, rdev, atime,"
		" CASE WHEN ino = 1 THEN ?2 ELSE mtime END, ctime, target"
		" FROM inodes WHERE ino = 1 OR ino IN (SELECT ino FROM dirents)",
		/* In primary-key order, so rows are appended. */
		"INSERT INTO snap_dirents(snap, parent, name, id, ino)"
		" SELECT ?1, parent, name, id, ino FROM dirents"
		" ORDER BY parent, name",
		"INSERT INTO snap_xattrs(snap, ino, name, value)"
		" SELECT ?1, ino, name, value FROM xattrs WHERE ino IN"
		" (SELECT ino FROM snap_inodes WHERE snap = ?1)",
		"INSERT INTO snap_extents(snap, ino, off, chunk, len)"
		" SELECT ?1, ino, off, chunk, len FROM extents WHERE ino IN"
		" (SELECT ino FROM snap_inodes WHERE snap = ?1)",
		"UPDATE chunks SET refs = refs + u.n FROM"
		" (SELECT chunk, count(*) AS n FROM snap_extents"
		" WHERE snap = ?1 AND chunk != 0 GROUP BY chunk) AS u"
		" WHERE chunks.id = u.chunk",
	};
	sqlite3_stmt *s;
	int rc, ret;

	ret = stash_cat_prepare(cat,
				"INSERT INTO snapshots(name, created)"
				" VALUES(?1, ?2)",
				&s, "add snapshot");
	if (ret)
		return ret;
	bind_name(s, 1, name);
	sqlite3_bind_int64(s, 2, created);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return stash_cat_sql_err(cat, rc, "add snapshot");
	out->id = (uint64_t)sqlite3_last_insert_rowid(stash_cat_db(cat));
	if (out->id == 0 || out->id > STASH_SNAP_MAX)
		return -ENOSPC; /* the caller rolls back */
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->created = created;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(copy); i++) {
		ret = run(cat, copy[i], out->id, created, "copy snapshot");
		if (ret)
			return ret;
	}
	return 0;
}

int stash_cat_snap_delete(struct stash_cat *cat, uint64_t id)
{
	static const char *const drop[] = {
		"UPDATE chunks SET refs = refs - u.n FROM"
		" (SELECT chunk, count(*) AS n FROM snap_extents"
		" WHERE snap = ?1 AND chunk != 0 GROUP BY chunk) AS u"
		" WHERE chunks.id = u.chunk",
		"DELETE FROM snap_extents WHERE snap = ?1",
		"DELETE FROM snap_xattrs WHERE snap = ?1",
		"DELETE FROM snap_dirents WHERE snap = ?1",
		"DELETE FROM snap_inodes WHERE snap = ?1",
		"DELETE FROM snapshots WHERE id = ?1",
	};
	struct stash_cat_snap snap;
	int ret = stash_cat_snap_get(cat, id, &snap);

	for (size_t i = 0; !ret && i < STASH_ARRAY_SIZE(drop); i++)
		ret = run(cat, drop[i], id, 0, "drop snapshot");
	return ret;
}

int stash_cat_snap_rename(struct stash_cat *cat, uint64_t id,
			  const char *newname)
{
	sqlite3_stmt *s;
	int rc, ret;

	ret = stash_cat_prepare(cat,
				"UPDATE snapshots SET name = ?2 WHERE id = ?1",
				&s, "rename snapshot");
	if (ret)
		return ret;
	sqlite3_bind_int64(s, 1, (int64_t)id);
	bind_name(s, 2, newname);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		return stash_cat_sql_err(cat, rc, "rename snapshot");
	return sqlite3_changes(stash_cat_db(cat)) ? 0 : -ENOENT;
}

/* One snapshot by a key bound to ?1 of sql. */
static int get_one(struct stash_cat *cat, sqlite3_stmt *s,
		   struct stash_cat_snap *out)
{
	int rc = sqlite3_step(s), ret;

	if (rc == SQLITE_ROW)
		ret = read_snap(s, out);
	else if (rc == SQLITE_DONE)
		ret = -ENOENT;
	else
		ret = stash_cat_sql_err(cat, rc, "find snapshot");
	sqlite3_finalize(s);
	return ret;
}

int stash_cat_snap_find(struct stash_cat *cat, const char *name,
			struct stash_cat_snap *out)
{
	sqlite3_stmt *s;
	int ret = stash_cat_prepare(cat,
				    "SELECT id, name, created FROM snapshots"
				    " WHERE name = ?1",
				    &s, "find snapshot");

	if (ret)
		return ret;
	bind_name(s, 1, name);
	return get_one(cat, s, out);
}

int stash_cat_snap_get(struct stash_cat *cat, uint64_t id,
		       struct stash_cat_snap *out)
{
	sqlite3_stmt *s;
	int ret = stash_cat_prepare(cat,
				    "SELECT id, name, created FROM snapshots"
				    " WHERE id = ?1",
				    &s, "find snapshot");

	if (ret)
		return ret;
	sqlite3_bind_int64(s, 1, (int64_t)id);
	return get_one(cat, s, out);
}

int stash_cat_snap_list(struct stash_cat *cat, uint64_t after,
			int (*fn)(void *arg, const struct stash_cat_snap *s),
			void *arg)
{
	sqlite3_stmt *s;
	int rc, ret = stash_cat_prepare(cat,
					"SELECT id, name, created FROM"
					" snapshots WHERE id > ?1 ORDER BY id",
					&s, "list snapshots");

	if (ret)
		return ret;
	sqlite3_bind_int64(s, 1, (int64_t)after);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct stash_cat_snap snap;

		ret = read_snap(s, &snap);
		if (!ret)
			ret = fn(arg, &snap);
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = stash_cat_sql_err(cat, rc, "list snapshots");
	sqlite3_finalize(s);
	return ret;
}
