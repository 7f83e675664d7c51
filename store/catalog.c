/*
 * catalog.c - the catalog schema, its migrations and every SQL statement
 * stashfs runs.
 *
 * Statements are prepared once and cached by number. Times are stored in
 * nanoseconds since the epoch; names as BLOBs (a file name is bytes, not
 * necessarily UTF-8). Chunk rows are only ever added in the transaction
 * that first references them, after their pack data was written, so a
 * chunk row never points at bytes that were not handed to the kernel.
 */
#include "catalog.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "catalog_int.h"
#include "sqlvfs.h"

/* Forward migrations: migrations[i] takes user_version i to i + 1. */
static const char *const migrations[] = {
	/* AUTOINCREMENT: an inode number is never reused, so the kernel
	 * can never mistake a new file for one it still remembers. */
	"CREATE TABLE inodes("
	"  ino INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  mode INTEGER NOT NULL, nlink INTEGER NOT NULL,"
	"  uid INTEGER NOT NULL, gid INTEGER NOT NULL,"
	"  size INTEGER NOT NULL, rdev INTEGER NOT NULL DEFAULT 0,"
	"  atime INTEGER NOT NULL, mtime INTEGER NOT NULL,"
	"  ctime INTEGER NOT NULL, target BLOB);"
	"CREATE TABLE dirents("
	"  id INTEGER PRIMARY KEY,"
	"  parent INTEGER NOT NULL, name BLOB NOT NULL, ino INTEGER NOT NULL);"
	"CREATE UNIQUE INDEX dirents_by_name ON dirents(parent, name);"
	"CREATE INDEX dirents_by_parent ON dirents(parent);"
	"CREATE INDEX dirents_by_ino ON dirents(ino);"
	"CREATE TABLE xattrs("
	"  ino INTEGER NOT NULL, name BLOB NOT NULL, value BLOB NOT NULL,"
	"  PRIMARY KEY(ino, name)) WITHOUT ROWID;"
	"CREATE TABLE packs(id INTEGER PRIMARY KEY);"
	"CREATE TABLE chunks("
	"  id INTEGER PRIMARY KEY,"
	"  hash BLOB NOT NULL UNIQUE, pack INTEGER NOT NULL,"
	"  off INTEGER NOT NULL, len INTEGER NOT NULL,"
	"  raw_len INTEGER NOT NULL, refs INTEGER NOT NULL);"
	"CREATE INDEX chunks_by_pack ON chunks(pack);"
	"CREATE TABLE extents("
	"  ino INTEGER NOT NULL, off INTEGER NOT NULL,"
	"  chunk INTEGER NOT NULL, len INTEGER NOT NULL,"
	"  PRIMARY KEY(ino, off)) WITHOUT ROWID;"
	"CREATE INDEX extents_by_chunk ON extents(chunk);",
	/* Snapshots: frozen copies of the rows above, keyed by snapshot. */
	"CREATE TABLE snapshots("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  name BLOB NOT NULL UNIQUE, created INTEGER NOT NULL);"
	"CREATE TABLE snap_inodes("
	"  snap INTEGER NOT NULL, ino INTEGER NOT NULL,"
	"  mode INTEGER NOT NULL, nlink INTEGER NOT NULL,"
	"  uid INTEGER NOT NULL, gid INTEGER NOT NULL,"
	"  size INTEGER NOT NULL, rdev INTEGER NOT NULL,"
	"  atime INTEGER NOT NULL, mtime INTEGER NOT NULL,"
	"  ctime INTEGER NOT NULL, target BLOB,"
	"  PRIMARY KEY(snap, ino)) WITHOUT ROWID;"
	"CREATE TABLE snap_dirents("
	"  snap INTEGER NOT NULL, parent INTEGER NOT NULL, name BLOB NOT NULL,"
	"  id INTEGER NOT NULL, ino INTEGER NOT NULL,"
	"  PRIMARY KEY(snap, parent, name)) WITHOUT ROWID;"
	"CREATE INDEX snap_dirents_by_id ON snap_dirents(snap, parent, id);"
	"CREATE TABLE snap_xattrs("
	"  snap INTEGER NOT NULL, ino INTEGER NOT NULL, name BLOB NOT NULL,"
	"  value BLOB NOT NULL, PRIMARY KEY(snap, ino, name)) WITHOUT ROWID;"
	"CREATE TABLE snap_extents("
	"  snap INTEGER NOT NULL, ino INTEGER NOT NULL, off INTEGER NOT NULL,"
	"  chunk INTEGER NOT NULL, len INTEGER NOT NULL,"
	"  PRIMARY KEY(snap, ino, off)) WITHOUT ROWID;",
	/* The full-text index (catalog_search.c, docs/SEARCH.md). */
	"CREATE TABLE docs("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  ino INTEGER NOT NULL, line INTEGER NOT NULL,"
	"  off INTEGER NOT NULL, len INTEGER NOT NULL, kind INTEGER NOT NULL,"
	"  title TEXT, url TEXT, author TEXT, tags TEXT, lang TEXT,"
	"  published_at INTEGER);"
	"CREATE INDEX docs_by_ino ON docs(ino, line);"
	"CREATE INDEX docs_by_date ON docs(published_at);"
	"CREATE TABLE index_queue("
	"  ino INTEGER PRIMARY KEY, gen INTEGER NOT NULL);"
	"CREATE VIRTUAL TABLE docs_fts USING fts5("
	"  title, content, author, tags, url, lang, meta, name,"
	"  content='', tokenize='unicode61 remove_diacritics 2');"
	/* Files stored before the index: queued, indexed at next mount. */
	"INSERT INTO index_queue(ino, gen)"
	"  SELECT ino, 1 FROM inodes WHERE (mode & 61440) = 32768;",
};

enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_GETATTR,
	ST_GETATTR_SNAP, /* ST_GETATTR for a snapshot inode */
	ST_LOOKUP,
	ST_LOOKUP_SNAP, /* ST_LOOKUP for a snapshot inode */
	ST_SETATTR,
	ST_CREATE_INODE,
	ST_DELETE_INODE,
	ST_DELETE_XATTRS,
	ST_DELETE_DOCS,
	ST_UNQUEUE,
	ST_READLINK,
	ST_READLINK_SNAP, /* ST_READLINK for a snapshot inode */
	ST_ADD_DIRENT,
	ST_DEL_DIRENT,
	ST_SET_DIRENT,
	ST_MOVE_DIRENT,
	ST_DIR_HAS_ENTRY,
	ST_PARENT_OF,
	ST_READDIR,
	ST_READDIR_SNAP, /* ST_READDIR for a snapshot inode */
	ST_GETXATTR,
	ST_GETXATTR_SNAP, /* ST_GETXATTR for a snapshot inode */
	ST_INSERT_XATTR,
	ST_UPSERT_XATTR,
	ST_UPDATE_XATTR,
	ST_LISTXATTR,
	ST_LISTXATTR_SNAP, /* ST_LISTXATTR for a snapshot inode */
	ST_REMOVEXATTR,
	ST_LOAD_EXTENTS,
	ST_LOAD_EXTENTS_SNAP, /* ST_LOAD_EXTENTS for a snapshot inode */
	ST_UNREF_EXTENTS,
	ST_DELETE_EXTENTS,
	ST_UPSERT_CHUNK,
	ST_INSERT_EXTENT,
	ST_INSERT_PACK,
	ST_FIND_CHUNK,
	ST_COUNT,
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_GETATTR] = "SELECT ino, mode, nlink, uid, gid, size, rdev, atime,"
		       " mtime, ctime FROM inodes WHERE ino = ?1",
	[ST_GETATTR_SNAP] = "SELECT ino, mode, nlink, uid, gid, size, rdev,"
			    " atime, mtime, ctime FROM snap_inodes"
			    " WHERE snap = ?9 AND ino = ?1",
	[ST_LOOKUP] = "SELECT i.ino, i.mode, i.nlink, i.uid, i.gid, i.size,"
		      " i.rdev, i.atime, i.mtime, i.ctime FROM dirents d"
		      " JOIN inodes i ON i.ino = d.ino"
		      " WHERE d.parent = ?1 AND d.name = ?2",
	[ST_LOOKUP_SNAP] =
		"SELECT i.ino, i.mode, i.nlink, i.uid, i.gid, i.size,"
		" i.rdev, i.atime, i.mtime, i.ctime FROM snap_dirents d"
		" JOIN snap_inodes i ON i.snap = d.snap AND i.ino = d.ino"
		" WHERE d.snap = ?9 AND d.parent = ?1 AND d.name = ?2",
	[ST_SETATTR] = "UPDATE inodes SET mode = ?2, nlink = ?3, uid = ?4,"
		       " gid = ?5, size = ?6, rdev = ?7, atime = ?8,"
		       " mtime = ?9, ctime = ?10 WHERE ino = ?1",
	[ST_CREATE_INODE] = "INSERT INTO inodes(mode, nlink, uid, gid, size,"
			    " rdev, atime, mtime, ctime, target)"
			    " VALUES(?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	[ST_DELETE_INODE] = "DELETE FROM inodes WHERE ino = ?1",
	[ST_DELETE_XATTRS] = "DELETE FROM xattrs WHERE ino = ?1",
	[ST_DELETE_DOCS] = "DELETE FROM docs WHERE ino = ?1",
	[ST_UNQUEUE] = "DELETE FROM index_queue WHERE ino = ?1",
	[ST_READLINK] = "SELECT target FROM inodes WHERE ino = ?1",
	[ST_READLINK_SNAP] = "SELECT target FROM snap_inodes"
			     " WHERE snap = ?9 AND ino = ?1",
	[ST_ADD_DIRENT] = "INSERT INTO dirents(parent, name, ino)"
			  " VALUES(?1, ?2, ?3)",
	[ST_DEL_DIRENT] = "DELETE FROM dirents WHERE parent = ?1 AND name = ?2",
	[ST_SET_DIRENT] = "UPDATE dirents SET ino = ?3"
			  " WHERE parent = ?1 AND name = ?2",
	[ST_MOVE_DIRENT] = "UPDATE dirents SET parent = ?3, name = ?4"
			   " WHERE parent = ?1 AND name = ?2",
	[ST_DIR_HAS_ENTRY] = "SELECT 1 FROM dirents WHERE parent = ?1 LIMIT 1",
	[ST_PARENT_OF] = "SELECT parent FROM dirents WHERE ino = ?1 LIMIT 1",
	[ST_READDIR] = "SELECT d.id, d.name, i.ino, i.mode, i.nlink, i.uid,"
		       " i.gid, i.size, i.rdev, i.atime, i.mtime, i.ctime"
		       " FROM dirents d JOIN inodes i ON i.ino = d.ino"
		       " WHERE d.parent = ?1 AND d.id > ?2 ORDER BY d.id",
	[ST_READDIR_SNAP] =
		"SELECT d.id, d.name, i.ino, i.mode, i.nlink, i.uid,"
		" i.gid, i.size, i.rdev, i.atime, i.mtime, i.ctime"
		" FROM snap_dirents d JOIN snap_inodes i"
		" ON i.snap = d.snap AND i.ino = d.ino"
		" WHERE d.snap = ?9 AND d.parent = ?1 AND d.id > ?2"
		" ORDER BY d.id",
	[ST_GETXATTR] = "SELECT value FROM xattrs WHERE ino = ?1 AND name = ?2",
	[ST_GETXATTR_SNAP] = "SELECT value FROM snap_xattrs"
			     " WHERE snap = ?9 AND ino = ?1 AND name = ?2",
	[ST_INSERT_XATTR] = "INSERT INTO xattrs(ino, name, value)"
			    " VALUES(?1, ?2, ?3)",
	[ST_UPSERT_XATTR] = "INSERT OR REPLACE INTO xattrs(ino, name, value)"
			    " VALUES(?1, ?2, ?3)",
	[ST_UPDATE_XATTR] = "UPDATE xattrs SET value = ?3"
			    " WHERE ino = ?1 AND name = ?2",
	[ST_LISTXATTR] = "SELECT name FROM xattrs WHERE ino = ?1 ORDER BY name",
	[ST_LISTXATTR_SNAP] = "SELECT name FROM snap_xattrs"
			      " WHERE snap = ?9 AND ino = ?1 ORDER BY name",
	[ST_REMOVEXATTR] = "DELETE FROM xattrs WHERE ino = ?1 AND name = ?2",
	[ST_LOAD_EXTENTS] = "SELECT e.off, e.len, c.hash, c.pack, c.off, c.len,"
			    " e.chunk FROM extents e"
			    " LEFT JOIN chunks c ON c.id = e.chunk"
			    " WHERE e.ino = ?1 ORDER BY e.off",
	[ST_LOAD_EXTENTS_SNAP] =
		"SELECT e.off, e.len, c.hash, c.pack, c.off,"
		" c.len, e.chunk FROM snap_extents e"
		" LEFT JOIN chunks c ON c.id = e.chunk"
		" WHERE e.snap = ?9 AND e.ino = ?1 ORDER BY e.off",
	/* One file may use a chunk many times (zeros): count each use. */
	[ST_UNREF_EXTENTS] =
		"UPDATE chunks SET refs = refs - (SELECT count(*) FROM extents e"
		" WHERE e.ino = ?1 AND e.off >= ?2 AND e.chunk = chunks.id)"
		" WHERE id IN (SELECT chunk FROM extents"
		" WHERE ino = ?1 AND off >= ?2)",
	[ST_DELETE_EXTENTS] =
		"DELETE FROM extents WHERE ino = ?1 AND off >= ?2",
	[ST_UPSERT_CHUNK] = "INSERT INTO chunks(hash, pack, off, len, raw_len,"
			    " refs) VALUES(?1, ?2, ?3, ?4, ?5, 1)"
			    " ON CONFLICT(hash) DO UPDATE SET refs = refs + 1"
			    " RETURNING id",
	[ST_INSERT_EXTENT] = "INSERT INTO extents(ino, off, chunk, len)"
			     " VALUES(?1, ?2, ?3, ?4)",
	/* The pack the row names: after gc moved a chunk, not the one the
	 * writer remembered. */
	[ST_INSERT_PACK] = "INSERT OR IGNORE INTO packs(id)"
			   " SELECT pack FROM chunks WHERE id = ?1",
	[ST_FIND_CHUNK] = "SELECT pack, off, len FROM chunks WHERE hash = ?1",
};

struct stash_cat {
	sqlite3 *db;		       /* the encrypted catalog */
	sqlite3_stmt *stmts[ST_COUNT]; /* prepared on first use */
};

static sqlite3_stmt *stmt(struct stash_cat *cat, enum stmt_id id)
{
	sqlite3_stmt *s = cat->stmts[id];

	if (!s) {
		int rc = sqlite3_prepare_v3(cat->db, stmt_sql[id], -1,
					    SQLITE_PREPARE_PERSISTENT,
					    &cat->stmts[id], NULL);
		if (rc != SQLITE_OK) {
			stash_log(STASH_LOG_ERR, "catalog: cannot prepare: %s",
				  sqlite3_errmsg(cat->db));
			return NULL;
		}
		s = cat->stmts[id];
	}
	return s;
}

/*
 * The statement that reads inode ino: id for a live inode, or id's _SNAP
 * variant (the next id) for a snapshot's, with the snapshot bound to ?9.
 * *row gets the inode's number within its tree.
 */
static sqlite3_stmt *stmt_ino(struct stash_cat *cat, enum stmt_id id,
			      uint64_t ino, uint64_t *row)
{
	uint64_t snap = stash_ino_snap(ino);
	sqlite3_stmt *s = stmt(cat, snap ? id + 1 : id);

	if (s && snap)
		sqlite3_bind_int64(s, 9, (int64_t)snap);
	*row = stash_ino_base(ino);
	return s;
}

/* Reset a statement after use: results and bindings. */
static void done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

static int sql_err(struct stash_cat *cat, int rc, const char *what)
{
	int err = stash_sqlite_errno(rc);

	if (err != -EEXIST)
		stash_log(STASH_LOG_ERR, "catalog: %s: %s", what,
			  sqlite3_errmsg(cat->db));
	return err;
}

/* Step a statement that returns no rows. */
static int exec_stmt(struct stash_cat *cat, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);

	done(s);
	if (rc != SQLITE_DONE)
		return sql_err(cat, rc, what);
	return 0;
}

/* Step a statement that must change a row; none when it changed none. */
static int exec_change(struct stash_cat *cat, sqlite3_stmt *s, const char *what,
		       int none)
{
	int ret = exec_stmt(cat, s, what);

	if (!ret && sqlite3_changes(cat->db) == 0)
		ret = none;
	return ret;
}

static int exec_sql(struct stash_cat *cat, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(cat->db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		stash_log(STASH_LOG_ERR, "catalog: %s", msg ? msg : "error");
		sqlite3_free(msg);
		return stash_sqlite_errno(rc);
	}
	return 0;
}

static int bind_name(sqlite3_stmt *s, int col, const char *name)
{
	return sqlite3_bind_blob(s, col, name, (int)strlen(name),
				 SQLITE_STATIC);
}

/* Read the ten attribute columns from col on; the inode number is made
 * that of snapshot snap (0: live). */
static void read_attr(sqlite3_stmt *s, int col, uint64_t snap,
		      struct stash_attr *a)
{
	a->ino = stash_ino_make(snap, (uint64_t)sqlite3_column_int64(s, col));
	a->mode = (uint32_t)sqlite3_column_int64(s, col + 1);
	a->nlink = (uint32_t)sqlite3_column_int64(s, col + 2);
	a->uid = (uint32_t)sqlite3_column_int64(s, col + 3);
	a->gid = (uint32_t)sqlite3_column_int64(s, col + 4);
	a->size = (uint64_t)sqlite3_column_int64(s, col + 5);
	a->rdev = (uint64_t)sqlite3_column_int64(s, col + 6);
	a->atime = sqlite3_column_int64(s, col + 7);
	a->mtime = sqlite3_column_int64(s, col + 8);
	a->ctime = sqlite3_column_int64(s, col + 9);
}

static int migrate(struct stash_cat *cat, int create)
{
	sqlite3_stmt *s;
	int version, ret;
	char sql[64];

	if (sqlite3_prepare_v2(cat->db, "PRAGMA user_version", -1, &s, NULL))
		return sql_err(cat, sqlite3_errcode(cat->db), "user_version");
	sqlite3_step(s);
	version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);

	if (version > (int)STASH_ARRAY_SIZE(migrations)) {
		stash_log(STASH_LOG_ERR,
			  "catalog schema %d is newer than this stashfs (%d)",
			  version, (int)STASH_ARRAY_SIZE(migrations));
		return -EPROTO;
	}
	if (version == 0 && !create) {
		stash_log(STASH_LOG_ERR, "catalog is empty");
		return -EBADMSG;
	}
	for (; version < (int)STASH_ARRAY_SIZE(migrations); version++) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
			 version + 1);
		ret = exec_sql(cat, "BEGIN IMMEDIATE");
		if (!ret)
			ret = exec_sql(cat, migrations[version]);
		if (!ret)
			ret = exec_sql(cat, sql);
		if (!ret && version == 0) {
			/* The root directory. */
			int64_t now = stash_wall_ns();
			struct stash_attr root = {
				.mode = S_IFDIR | 0755,
				.nlink = 2,
				.atime = now,
				.mtime = now,
				.ctime = now,
			};

			ret = stash_cat_create_inode(cat, &root, NULL);
			if (!ret && root.ino != STASH_ROOT_INO)
				ret = -EIO;
		}
		if (!ret)
			ret = exec_sql(cat, "COMMIT");
		if (ret) {
			exec_sql(cat, "ROLLBACK");
			return ret;
		}
	}
	return 0;
}

int stash_cat_open(struct stash_cat **out, const char *path,
		   const uint8_t key[STASH_KEY_LEN], int create)
{
	struct stash_cat *cat = calloc(1, sizeof(*cat));
	int ret;

	if (!cat)
		return -ENOMEM;
	ret = stash_sqlvfs_open(&cat->db, path, key, create);
	if (ret)
		goto fail;
	/* Checkpoints are ours: after the packs they depend on are synced. */
	ret = exec_sql(cat, "PRAGMA wal_autocheckpoint = 0;"
			    "PRAGMA foreign_keys = OFF;"
			    "PRAGMA cache_size = -16384");
	if (!ret)
		ret = migrate(cat, create);
	if (ret)
		goto fail;
	*out = cat;
	return 0;
fail:
	stash_cat_close(cat);
	return ret;
}

int stash_cat_close(struct stash_cat *cat)
{
	int ret;

	if (!cat)
		return 0;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(cat->stmts[i]);
	ret = stash_sqlvfs_close(cat->db);
	free(cat);
	return ret;
}

int stash_cat_begin(struct stash_cat *cat)
{
	sqlite3_stmt *s = stmt(cat, ST_BEGIN);

	return s ? exec_stmt(cat, s, "begin") : -EIO;
}

int stash_cat_commit(struct stash_cat *cat, int durable)
{
	sqlite3_stmt *s = stmt(cat, ST_COMMIT);
	sqlite3_file *wal = NULL;
	int ret, rc;

	if (!s)
		return -EIO;
	ret = exec_stmt(cat, s, "commit");
	if (ret || !durable)
		return ret;
	/*
	 * synchronous=NORMAL commits are not synced; one fsync of the WAL
	 * makes this commit and every earlier one durable (the safety level
	 * cannot change inside a transaction, so it is not raised instead).
	 */
	rc = sqlite3_file_control(cat->db, "main", SQLITE_FCNTL_JOURNAL_POINTER,
				  &wal);
	if (rc == SQLITE_OK && wal && wal->pMethods)
		rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL);
	return rc == SQLITE_OK ? 0 : sql_err(cat, rc, "sync");
}

void stash_cat_rollback(struct stash_cat *cat)
{
	sqlite3_stmt *s = stmt(cat, ST_ROLLBACK);

	if (s && sqlite3_get_autocommit(cat->db) == 0)
		exec_stmt(cat, s, "rollback");
}

static int get_one_attr(struct stash_cat *cat, sqlite3_stmt *s, uint64_t snap,
			struct stash_attr *out)
{
	int rc = sqlite3_step(s), ret = 0;

	if (rc == SQLITE_ROW)
		read_attr(s, 0, snap, out);
	else if (rc == SQLITE_DONE)
		ret = -ENOENT;
	else
		ret = sql_err(cat, rc, "read inode");
	done(s);
	return ret;
}

int stash_cat_getattr(struct stash_cat *cat, uint64_t ino,
		      struct stash_attr *out)
{
	uint64_t row;
	sqlite3_stmt *s = stmt_ino(cat, ST_GETATTR, ino, &row);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)row);
	return get_one_attr(cat, s, stash_ino_snap(ino), out);
}

int stash_cat_lookup(struct stash_cat *cat, uint64_t parent, const char *name,
		     struct stash_attr *out)
{
	uint64_t row;
	sqlite3_stmt *s = stmt_ino(cat, ST_LOOKUP, parent, &row);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)row);
	bind_name(s, 2, name);
	return get_one_attr(cat, s, stash_ino_snap(parent), out);
}

static void bind_attr(sqlite3_stmt *s, const struct stash_attr *a)
{
	sqlite3_bind_int64(s, 2, a->mode);
	sqlite3_bind_int64(s, 3, a->nlink);
	sqlite3_bind_int64(s, 4, a->uid);
	sqlite3_bind_int64(s, 5, a->gid);
	sqlite3_bind_int64(s, 6, (int64_t)a->size);
	sqlite3_bind_int64(s, 7, (int64_t)a->rdev);
	sqlite3_bind_int64(s, 8, a->atime);
	sqlite3_bind_int64(s, 9, a->mtime);
	sqlite3_bind_int64(s, 10, a->ctime);
}

int stash_cat_setattr(struct stash_cat *cat, const struct stash_attr *attr)
{
	sqlite3_stmt *s = stmt(cat, ST_SETATTR);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)attr->ino);
	bind_attr(s, attr);
	return exec_stmt(cat, s, "update inode");
}

int stash_cat_create_inode(struct stash_cat *cat, struct stash_attr *attr,
			   const char *target)
{
	sqlite3_stmt *s = stmt(cat, ST_CREATE_INODE);
	int ret;

	if (!s)
		return -EIO;
	bind_attr(s, attr);
	if (target)
		bind_name(s, 11, target);
	ret = exec_stmt(cat, s, "create inode");
	if (!ret)
		attr->ino = (uint64_t)sqlite3_last_insert_rowid(cat->db);
	return ret;
}

static int drop_extents(struct stash_cat *cat, uint64_t ino, uint64_t from)
{
	sqlite3_stmt *s = stmt(cat, ST_UNREF_EXTENTS);
	int ret;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, (int64_t)from);
	ret = exec_stmt(cat, s, "unreference chunks");
	if (ret)
		return ret;
	s = stmt(cat, ST_DELETE_EXTENTS);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, (int64_t)from);
	return exec_stmt(cat, s, "delete extents");
}

int stash_cat_delete_inode(struct stash_cat *cat, uint64_t ino)
{
	sqlite3_stmt *s;
	int ret = drop_extents(cat, ino, 0);

	if (ret)
		return ret;
	/* Its xattrs, documents and place in the indexing queue go too. */
	for (enum stmt_id id = ST_DELETE_XATTRS; id <= ST_UNQUEUE; id++) {
		s = stmt(cat, id);
		if (!s)
			return -EIO;
		sqlite3_bind_int64(s, 1, (int64_t)ino);
		ret = exec_stmt(cat, s, "delete inode");
		if (ret)
			return ret;
	}
	s = stmt(cat, ST_DELETE_INODE);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	return exec_stmt(cat, s, "delete inode");
}

ssize_t stash_cat_readlink(struct stash_cat *cat, uint64_t ino, char *buf,
			   size_t size)
{
	uint64_t row;
	sqlite3_stmt *s = stmt_ino(cat, ST_READLINK, ino, &row);
	ssize_t ret;
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)row);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) == SQLITE_BLOB) {
		size_t len = (size_t)sqlite3_column_bytes(s, 0);

		memcpy(buf, sqlite3_column_blob(s, 0), STASH_MIN(len, size));
		ret = (ssize_t)len;
	} else if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
		ret = rc == SQLITE_ROW ? -EINVAL : -ENOENT;
	} else {
		ret = sql_err(cat, rc, "readlink");
	}
	done(s);
	return ret;
}

static int dirent_op(struct stash_cat *cat, enum stmt_id id, uint64_t parent,
		     const char *name, uint64_t ino, const char *what)
{
	sqlite3_stmt *s = stmt(cat, id);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)parent);
	bind_name(s, 2, name);
	if (id != ST_DEL_DIRENT)
		sqlite3_bind_int64(s, 3, (int64_t)ino);
	return exec_change(cat, s, what, -ENOENT);
}

int stash_cat_add_dirent(struct stash_cat *cat, uint64_t parent,
			 const char *name, uint64_t ino)
{
	return dirent_op(cat, ST_ADD_DIRENT, parent, name, ino, "add entry");
}

int stash_cat_del_dirent(struct stash_cat *cat, uint64_t parent,
			 const char *name)
{
	return dirent_op(cat, ST_DEL_DIRENT, parent, name, 0, "remove entry");
}

int stash_cat_set_dirent(struct stash_cat *cat, uint64_t parent,
			 const char *name, uint64_t ino)
{
	return dirent_op(cat, ST_SET_DIRENT, parent, name, ino, "set entry");
}

int stash_cat_move_dirent(struct stash_cat *cat, uint64_t parent,
			  const char *name, uint64_t newparent,
			  const char *newname)
{
	sqlite3_stmt *s = stmt(cat, ST_MOVE_DIRENT);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)parent);
	bind_name(s, 2, name);
	sqlite3_bind_int64(s, 3, (int64_t)newparent);
	bind_name(s, 4, newname);
	return exec_change(cat, s, "move entry", -ENOENT);
}

int stash_cat_dir_is_empty(struct stash_cat *cat, uint64_t ino)
{
	sqlite3_stmt *s = stmt(cat, ST_DIR_HAS_ENTRY);
	int rc, ret;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		ret = 0;
	else if (rc == SQLITE_DONE)
		ret = 1;
	else
		ret = sql_err(cat, rc, "list directory");
	done(s);
	return ret;
}

int stash_cat_parent_of(struct stash_cat *cat, uint64_t ino, uint64_t *parent)
{
	sqlite3_stmt *s = stmt(cat, ST_PARENT_OF);
	int rc, ret;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*parent = (uint64_t)sqlite3_column_int64(s, 0);
		ret = 0;
	} else if (rc == SQLITE_DONE) {
		ret = -ENOENT;
	} else {
		ret = sql_err(cat, rc, "find parent");
	}
	done(s);
	return ret;
}

int stash_cat_readdir(struct stash_cat *cat, uint64_t ino, uint64_t off,
		      stash_cat_dirent_fn fn, void *arg)
{
	uint64_t row;
	sqlite3_stmt *s = stmt_ino(cat, ST_READDIR, ino, &row);
	char name[STASH_NAME_MAX + 1];
	int rc, ret = 0;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)row);
	sqlite3_bind_int64(s, 2, (int64_t)off);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct stash_attr a;
		size_t len = (size_t)sqlite3_column_bytes(s, 1);

		if (len == 0 || len > STASH_NAME_MAX) {
			ret = -EBADMSG;
			break;
		}
		memcpy(name, sqlite3_column_blob(s, 1), len);
		name[len] = '\0';
		read_attr(s, 2, stash_ino_snap(ino), &a);
		if (fn(arg, name, &a, (uint64_t)sqlite3_column_int64(s, 0)))
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = sql_err(cat, rc, "read directory");
	done(s);
	return ret;
}

int stash_cat_setxattr(struct stash_cat *cat, uint64_t ino, const char *name,
		       const void *value, size_t len, int flags)
{
	enum stmt_id id = flags & XATTR_CREATE	  ? ST_INSERT_XATTR
			  : flags & XATTR_REPLACE ? ST_UPDATE_XATTR
						  : ST_UPSERT_XATTR;
	sqlite3_stmt *s = stmt(cat, id);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	bind_name(s, 2, name);
	/* An empty value is still a value: bind a zero-length blob. */
	sqlite3_bind_blob(s, 3, len ? value : "", (int)len, SQLITE_STATIC);
	if (id == ST_UPDATE_XATTR)
		return exec_change(cat, s, "set xattr", -ENODATA);
	return exec_stmt(cat, s, "set xattr");
}

ssize_t stash_cat_getxattr(struct stash_cat *cat, uint64_t ino,
			   const char *name, void *buf, size_t size)
{
	uint64_t row;
	sqlite3_stmt *s = stmt_ino(cat, ST_GETXATTR, ino, &row);
	ssize_t ret;
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)row);
	bind_name(s, 2, name);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		size_t len = (size_t)sqlite3_column_bytes(s, 0);

		if (size == 0) {
			ret = (ssize_t)len;
		} else if (len > size) {
			ret = -ERANGE;
		} else {
			if (len)
				memcpy(buf, sqlite3_column_blob(s, 0), len);
			ret = (ssize_t)len;
		}
	} else if (rc == SQLITE_DONE) {
		ret = -ENODATA;
	} else {
		ret = sql_err(cat, rc, "get xattr");
	}
	done(s);
	return ret;
}

ssize_t stash_cat_listxattr(struct stash_cat *cat, uint64_t ino, char *buf,
			    size_t size)
{
	uint64_t row;
	sqlite3_stmt *s = stmt_ino(cat, ST_LISTXATTR, ino, &row);
	size_t total = 0;
	ssize_t ret;
	int rc;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)row);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		size_t len = (size_t)sqlite3_column_bytes(s, 0);

		if (size) {
			if (total + len + 1 > size) {
				done(s);
				return -ERANGE;
			}
			memcpy(buf + total, sqlite3_column_blob(s, 0), len);
			buf[total + len] = '\0';
		}
		total += len + 1;
	}
	ret = rc == SQLITE_DONE ? (ssize_t)total
				: sql_err(cat, rc, "list xattrs");
	done(s);
	return ret;
}

int stash_cat_removexattr(struct stash_cat *cat, uint64_t ino, const char *name)
{
	sqlite3_stmt *s = stmt(cat, ST_REMOVEXATTR);

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	bind_name(s, 2, name);
	return exec_change(cat, s, "remove xattr", -ENODATA);
}

int stash_cat_load_extents(struct stash_cat *cat, uint64_t ino,
			   int (*fn)(void *arg, const struct stash_extent *e),
			   void *arg)
{
	uint64_t row;
	sqlite3_stmt *s = stmt_ino(cat, ST_LOAD_EXTENTS, ino, &row);
	int rc, ret = 0;

	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)row);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct stash_extent e = { 0 };

		e.off = (uint64_t)sqlite3_column_int64(s, 0);
		e.len = (uint64_t)sqlite3_column_int64(s, 1);
		e.hole = sqlite3_column_int64(s, 6) == 0;
		if (e.hole) {
			ret = fn(arg, &e);
			if (ret)
				break;
			continue;
		}
		if (sqlite3_column_bytes(s, 2) != STASH_ID_LEN) {
			ret = -EBADMSG; /* a chunk row is missing */
			break;
		}
		memcpy(e.id, sqlite3_column_blob(s, 2), STASH_ID_LEN);
		e.loc.pack = (uint64_t)sqlite3_column_int64(s, 3);
		e.loc.off = (uint64_t)sqlite3_column_int64(s, 4);
		e.loc.len = (uint32_t)sqlite3_column_int64(s, 5);
		ret = fn(arg, &e);
		if (ret)
			break;
	}
	if (!ret && rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = sql_err(cat, rc, "load file map");
	done(s);
	return ret;
}

static int add_extent(struct stash_cat *cat, uint64_t ino,
		      const struct stash_extent *e)
{
	sqlite3_stmt *s = stmt(cat, ST_UPSERT_CHUNK);
	int64_t chunk = 0;
	int rc, ret;

	if (!s)
		return -EIO;
	if (e->hole)
		goto insert;
	sqlite3_bind_blob(s, 1, e->id, STASH_ID_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (int64_t)e->loc.pack);
	sqlite3_bind_int64(s, 3, (int64_t)e->loc.off);
	sqlite3_bind_int64(s, 4, e->loc.len);
	sqlite3_bind_int64(s, 5, e->len);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		done(s);
		return sql_err(cat, rc, "add chunk");
	}
	chunk = sqlite3_column_int64(s, 0);
	/* RETURNING statements finish their work on the next step. */
	rc = sqlite3_step(s);
	done(s);
	if (rc != SQLITE_DONE)
		return sql_err(cat, rc, "add chunk");

	s = stmt(cat, ST_INSERT_PACK);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, chunk);
	ret = exec_stmt(cat, s, "add pack");
	if (ret)
		return ret;
insert:
	s = stmt(cat, ST_INSERT_EXTENT);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, (int64_t)ino);
	sqlite3_bind_int64(s, 2, (int64_t)e->off);
	sqlite3_bind_int64(s, 3, chunk);
	sqlite3_bind_int64(s, 4, (int64_t)e->len);
	return exec_stmt(cat, s, "add extent");
}

int stash_cat_replace_extents(struct stash_cat *cat, uint64_t ino,
			      uint64_t from, const struct stash_extent *ext,
			      size_t n)
{
	int ret = drop_extents(cat, ino, from);

	for (size_t i = 0; !ret && i < n; i++)
		ret = add_extent(cat, ino, &ext[i]);
	return ret;
}

int stash_cat_find_chunk(struct stash_cat *cat, const uint8_t id[STASH_ID_LEN],
			 struct stash_chunk_loc *loc)
{
	sqlite3_stmt *s = stmt(cat, ST_FIND_CHUNK);
	int rc, ret;

	if (!s)
		return -EIO;
	sqlite3_bind_blob(s, 1, id, STASH_ID_LEN, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		loc->pack = (uint64_t)sqlite3_column_int64(s, 0);
		loc->off = (uint64_t)sqlite3_column_int64(s, 1);
		loc->len = (uint32_t)sqlite3_column_int64(s, 2);
		ret = 0;
	} else if (rc == SQLITE_DONE) {
		ret = -ENOENT;
	} else {
		ret = sql_err(cat, rc, "find chunk");
	}
	done(s);
	return ret;
}

int stash_cat_purge_orphans(struct stash_cat *cat)
{
	sqlite3_stmt *s;
	int64_t *inos = NULL;
	size_t n = 0, cap = 0;
	int rc, ret = 0;

	if (sqlite3_prepare_v2(cat->db,
			       "SELECT ino FROM inodes WHERE ino != 1 AND ino"
			       " NOT IN (SELECT ino FROM dirents)",
			       -1, &s, NULL))
		return sql_err(cat, sqlite3_errcode(cat->db), "find orphans");
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			int64_t *p = realloc(inos, ncap * sizeof(*p));

			if (!p) {
				ret = -ENOMEM;
				break;
			}
			inos = p;
			cap = ncap;
		}
		inos[n++] = sqlite3_column_int64(s, 0);
	}
	sqlite3_finalize(s);
	for (size_t i = 0; !ret && i < n; i++)
		ret = stash_cat_delete_inode(cat, (uint64_t)inos[i]);
	if (!ret && n)
		stash_log(STASH_LOG_INFO, "removed %zu orphaned inodes", n);
	free(inos);
	return ret;
}

static int query_u64(struct stash_cat *cat, const char *sql, uint64_t *a,
		     uint64_t *b)
{
	sqlite3_stmt *s;
	int rc;

	if (sqlite3_prepare_v2(cat->db, sql, -1, &s, NULL))
		return sql_err(cat, sqlite3_errcode(cat->db), "stats");
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*a = (uint64_t)sqlite3_column_int64(s, 0);
		if (b)
			*b = (uint64_t)sqlite3_column_int64(s, 1);
	}
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : sql_err(cat, rc, "stats");
}

int stash_cat_stats(struct stash_cat *cat, struct stash_cat_stats *out)
{
	uint64_t unused;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = query_u64(cat, "SELECT count(*), 0 FROM inodes", &out->inodes,
			NULL);
	if (!ret)
		ret = query_u64(cat,
				"SELECT count(*), coalesce(sum(size), 0) FROM"
				" inodes WHERE (mode & 61440) = 32768",
				&out->files, &out->logical_bytes);
	if (!ret)
		ret = query_u64(cat,
				"SELECT count(*), coalesce(sum(raw_len), 0)"
				" FROM chunks WHERE refs > 0",
				&out->chunks, &out->chunk_raw_bytes);
	if (!ret)
		ret = query_u64(cat,
				"SELECT coalesce(sum(len), 0), 0 FROM chunks"
				" WHERE refs > 0",
				&out->chunk_stored_bytes, &unused);
	if (!ret)
		ret = query_u64(cat,
				"SELECT count(*), coalesce(sum(len), 0) FROM"
				" chunks WHERE refs <= 0",
				&out->dead_chunks, &out->dead_bytes);
	if (!ret)
		ret = query_u64(cat, "SELECT count(*), 0 FROM packs",
				&out->packs, NULL);
	if (!ret)
		ret = query_u64(cat, "SELECT count(*), 0 FROM snapshots",
				&out->snapshots, NULL);
	if (!ret)
		ret = query_u64(cat,
				"SELECT (SELECT count(*) FROM docs),"
				" (SELECT count(*) FROM index_queue)",
				&out->docs, &out->index_pending);
	if (!ret)
		ret = query_u64(cat,
				"SELECT count(*), 0 FROM xattrs WHERE name ="
				" CAST('user.stashfs.index_error' AS BLOB)",
				&out->index_errors, NULL);
	return ret;
}

int stash_cat_check(struct stash_cat *cat)
{
	sqlite3_stmt *s;
	int ret = -EBADMSG;

	if (sqlite3_prepare_v2(cat->db, "PRAGMA integrity_check", -1, &s, NULL))
		return sql_err(cat, sqlite3_errcode(cat->db), "check");
	if (sqlite3_step(s) == SQLITE_ROW &&
	    !strcmp((const char *)sqlite3_column_text(s, 0), "ok"))
		ret = 0;
	sqlite3_finalize(s);
	return ret;
}

int stash_cat_checkpoint(struct stash_cat *cat)
{
	int rc = sqlite3_wal_checkpoint_v2(
		cat->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sql_err(cat, rc, "checkpoint");
}

/* ---- for the catalog's other modules (catalog_int.h) ---- */

sqlite3 *stash_cat_db(struct stash_cat *cat)
{
	return cat->db;
}

int stash_cat_prepare(struct stash_cat *cat, const char *sql, sqlite3_stmt **s,
		      const char *what)
{
	int rc = sqlite3_prepare_v2(cat->db, sql, -1, s, NULL);

	return rc == SQLITE_OK ? 0 : sql_err(cat, rc, what);
}

int stash_cat_sql_err(struct stash_cat *cat, int rc, const char *what)
{
	return sql_err(cat, rc, what);
}

int stash_cat_exec(struct stash_cat *cat, const char *sql)
{
	return exec_sql(cat, sql);
}
