/*
 * test_sqlvfs.c - unit tests for store/sqlvfs.c.
 *
 * Each test works in its own mkdtemp directory under /tmp and checks what a
 * user of the catalog would: rows come back equal after a close and reopen,
 * no plaintext and no extra file ever lands next to the database, a wrong
 * key or a flipped byte is an error (never wrong data) and changes nothing,
 * a writer killed with SIGKILL before a checkpoint loses no commit, and the
 * WAL shows none of SQLite's frame headers (page numbers, commit fields,
 * salts, checksums over the plaintext), any change to one of them is
 * refused, and no forged commit field ever applies half a transaction.
 *
 * The WAL checks decode the file as docs/FORMAT.md section 9.4 describes
 * it, with the catalog key, and recompute SQLite's checksums as wal.c does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crypto.h"
#include "sqlvfs.h"

#define MARKER "zq-plaintext-marker-7f3a9c"

static const uint8_t key_a[STASH_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
static const uint8_t key_b[STASH_KEY_LEN] = { 9, 8, 7, 6, 5, 4, 3, 2, 1 };

struct tdir {
	char dir[64];  /* the mkdtemp directory */
	char db[96];   /* dir/catalog.db */
	char wal[100]; /* dir/catalog.db-wal */
};

static void tdir_init(struct tdir *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/test_sqlvfs.XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->db, sizeof(t->db), "%s/catalog.db", t->dir);
	snprintf(t->wal, sizeof(t->wal), "%s/catalog.db-wal", t->dir);
}

static void tdir_release(struct tdir *t)
{
	DIR *d = opendir(t->dir);
	struct dirent *e;
	char path[512];

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", t->dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(t->dir);
}

/* Whole file into a malloc'd buffer; *len = 0 and NULL when missing. */
static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY);

	*len = 0;
	if (fd < 0) {
		assert_int_equal(errno, ENOENT);
		return NULL;
	}
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(stash_pread_all(fd, buf, (size_t)st.st_size, 0), 0);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static off_t file_size(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -1;
	return st.st_size;
}

/*
 * The directory holds only catalog.db and catalog.db-wal (no -shm, no
 * -journal), and neither contains the marker, SQLite's magic or SQL text.
 */
static void assert_no_plaintext(const struct tdir *t)
{
	static const char *const needles[] = { MARKER, "SQLite format 3",
					       "CREATE TABLE" };
	DIR *d = opendir(t->dir);
	struct dirent *e;
	char path[512];

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		uint8_t *buf;
		size_t len;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (strcmp(e->d_name, "catalog.db") &&
		    strcmp(e->d_name, "catalog.db-wal"))
			fail_msg("unexpected file %s", e->d_name);
		snprintf(path, sizeof(path), "%s/%s", t->dir, e->d_name);
		buf = slurp(path, &len);
		for (size_t i = 0; i < STASH_ARRAY_SIZE(needles); i++)
			if (len &&
			    memmem(buf, len, needles[i], strlen(needles[i])))
				fail_msg("%s holds \"%s\"", e->d_name,
					 needles[i]);
		free(buf);
	}
	closedir(d);
}

static void exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK)
		fail_msg("%s: %s", sql, msg ? msg : sqlite3_errstr(rc));
}

static sqlite3 *open_ok(const char *path, const uint8_t *key, int create)
{
	sqlite3 *db = NULL;

	assert_int_equal(stash_sqlvfs_open(&db, path, key, create), 0);
	assert_non_null(db);
	return db;
}

static void close_ok(sqlite3 *db)
{
	assert_int_equal(stash_sqlvfs_close(db), 0);
}

/* Row i's text: the marker, the number, and len bytes of filler. */
static void row_text(char *buf, size_t size, int i, size_t len)
{
	int n = snprintf(buf, size, "%s-%d-", MARKER, i);

	assert_true(n > 0 && (size_t)n + len < size);
	for (size_t k = 0; k < len; k++)
		buf[n + k] = (char)('a' + (i * 7 + k * 13) % 26);
	buf[n + len] = '\0';
}

static void create_schema(sqlite3 *db)
{
	exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT NOT NULL);"
		 "CREATE INDEX t_body ON t(body)");
}

/* Insert rows [from, to) in one transaction. */
static void insert_rows(sqlite3 *db, int from, int to, size_t len)
{
	char *text = malloc(len + 128);
	sqlite3_stmt *st;

	assert_non_null(text);
	exec(db, "BEGIN");
	assert_int_equal(sqlite3_prepare_v2(db,
					    "INSERT INTO t(id, body) "
					    "VALUES (?, ?)",
					    -1, &st, NULL),
			 SQLITE_OK);
	for (int i = from; i < to; i++) {
		row_text(text, len + 128, i, len);
		sqlite3_bind_int(st, 1, i);
		sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	exec(db, "COMMIT");
	free(text);
}

/* Rows are exactly [0, n), each with its text. */
static void check_rows(sqlite3 *db, int n, size_t len)
{
	char *text = malloc(len + 128);
	sqlite3_stmt *st;
	int i = 0, rc;

	assert_non_null(text);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT id, body FROM t "
					    "ORDER BY id",
					    -1, &st, NULL),
			 SQLITE_OK);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		assert_int_equal(sqlite3_column_int(st, 0), i);
		row_text(text, len + 128, i, len);
		assert_string_equal((const char *)sqlite3_column_text(st, 1),
				    text);
		i++;
	}
	if (rc != SQLITE_DONE)
		fail_msg("select: %s", sqlite3_errmsg(db));
	assert_int_equal(i, n);
	sqlite3_finalize(st);
	free(text);
}

static void check_integrity(sqlite3 *db)
{
	sqlite3_stmt *st;

	assert_int_equal(
		sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
		SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
}

/*
 * The WAL as docs/FORMAT.md section 9.4 describes it, opened with the
 * catalog key: what SQLite wrote, to compare with what the file shows.
 */
#define WAL_HDR 32				    /* WAL header */
#define FRAME_HDR 24				    /* frame header */
#define FRAME (FRAME_HDR + STASH_SQLVFS_PAGE_SIZE)  /* one frame */
#define FRAME_SEALED (FRAME - STASH_SQLVFS_RESERVE) /* its ciphertext */

struct wal {
	uint8_t *buf;	      /* the file, as on disk */
	size_t len;	      /* its size */
	uint64_t n;	      /* whole frames in it */
	bool big;	      /* checksums over big-endian words (magic) */
	uint8_t *plain;	      /* frame i's header and page at (i - 1) * FRAME */
	uint64_t valid;	      /* frames 1..valid pass SQLite's checks */
	uint64_t last_commit; /* last of those with a commit field, or 0 */
};

static uint32_t be32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	       (uint32_t)b[2] << 8 | b[3];
}

static void be32enc(uint8_t *b, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (24 - 8 * i));
}

/* SQLite's WAL checksum (wal.c, walChecksumBytes), carrying on from s. */
static void wal_cksum(bool big, const uint8_t *b, size_t len, uint32_t s[2])
{
	for (size_t i = 0; i < len; i += 8) {
		s[0] += (big ? be32(b + i) : stash_le32dec(b + i)) + s[1];
		s[1] += (big ? be32(b + i + 4) : stash_le32dec(b + i + 4)) +
			s[0];
	}
}

/* The checksum of a frame (header and page as SQLite wrote them), chained
 * from s: the first 8 header bytes, then the whole page. */
static void frame_cksum(bool big, const uint8_t *frame, uint32_t s[2])
{
	wal_cksum(big, frame, 8, s);
	wal_cksum(big, frame + FRAME_HDR, STASH_SQLVFS_PAGE_SIZE, s);
}

static uint8_t *wal_disk(const struct wal *w, uint64_t i)
{
	return w->buf + WAL_HDR + (i - 1) * FRAME;
}

static uint8_t *wal_plain(const struct wal *w, uint64_t i)
{
	return w->plain + (i - 1) * FRAME;
}

/* Open frame i into out (header, page, reserve zeroed). 0 or -EBADMSG. */
static int frame_open(const struct wal *w, uint64_t i, uint8_t *out)
{
	const uint8_t *f = wal_disk(w, i);
	uint8_t aad[14] = { 2, 2 }; /* layout version 2, role WAL */

	stash_le64enc(aad + 2, i);
	memset(out + FRAME_SEALED, 0, STASH_SQLVFS_RESERVE);
	return stash_crypto_open(key_a, f + FRAME_SEALED, aad, sizeof(aad), f,
				 FRAME_SEALED, out,
				 f + FRAME_SEALED + STASH_NONCE_LEN);
}

/*
 * Load the WAL at path, check its plaintext header, open its frames and
 * follow SQLite's recovery: a frame is valid if it opens, carries the
 * header's salts and continues the checksum chain that starts with the
 * header's checksum; the first invalid frame ends the log.
 */
static void wal_load(struct wal *w, const char *path)
{
	uint32_t s[2] = { 0, 0 };
	uint32_t magic;

	memset(w, 0, sizeof(*w));
	w->buf = slurp(path, &w->len);
	assert_true(w->len >= WAL_HDR);
	assert_int_equal((w->len - WAL_HDR) % FRAME, 0);
	w->n = (w->len - WAL_HDR) / FRAME;
	magic = be32(w->buf);
	assert_true(magic == 0x377f0682 || magic == 0x377f0683);
	w->big = magic & 1;
	assert_int_equal(be32(w->buf + 4), 3007000);
	assert_int_equal(be32(w->buf + 8), STASH_SQLVFS_PAGE_SIZE);
	wal_cksum(w->big, w->buf, 24, s);
	assert_int_equal(be32(w->buf + 24), s[0]);
	assert_int_equal(be32(w->buf + 28), s[1]);
	w->plain = calloc(w->n + 1, FRAME);
	assert_non_null(w->plain);
	for (uint64_t i = 1; i <= w->n; i++) {
		uint8_t *f = wal_plain(w, i);

		if (frame_open(w, i, f) || memcmp(f + 8, w->buf + 16, 8))
			break;
		frame_cksum(w->big, f, s);
		if (be32(f + 16) != s[0] || be32(f + 20) != s[1])
			break;
		w->valid = i;
		if (be32(f + 4))
			w->last_commit = i;
	}
}

static void wal_release(struct wal *w)
{
	free(w->buf);
	free(w->plain);
}

/* Replace the file at path with len bytes of buf. */
static void spit(const char *path, const uint8_t *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(stash_pwrite_all(fd, buf, len, 0), 0);
	close(fd);
}

/* The rows are exactly ids 0..count-1, and the catalog is sound. */
static void check_count(sqlite3 *db, int count)
{
	sqlite3_stmt *st;

	check_integrity(db);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT count(*), "
					    "coalesce(max(id), -1) FROM t",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), count);
	assert_int_equal(sqlite3_column_int(st, 1), count - 1);
	sqlite3_finalize(st);
}

static void test_missing(void **state)
{
	struct tdir t = { 0 };
	sqlite3 *db = NULL;

	(void)state;
	tdir_init(&t);
	assert_int_equal(stash_sqlvfs_open(&db, t.db, key_a, 0), -ENOENT);
	assert_null(db);
	assert_int_equal(file_size(t.db), -1);
	assert_int_equal(stash_sqlvfs_close(NULL), 0);
	tdir_release(&t);
}

/* (1) and (2): round trip, and no plaintext while open or after close. */
static void test_round_trip(void **state)
{
	struct tdir t = { 0 };
	sqlite3 *db;

	(void)state;
	tdir_init(&t);
	db = open_ok(t.db, key_a, 1);
	create_schema(db);
	insert_rows(db, 0, 10000, 40);
	assert_true(file_size(t.wal) > 0);
	assert_no_plaintext(&t);
	check_rows(db, 10000, 40);
	close_ok(db);
	assert_no_plaintext(&t);

	db = open_ok(t.db, key_a, 0);
	check_rows(db, 10000, 40);
	check_integrity(db);
	assert_no_plaintext(&t);
	close_ok(db);
	assert_no_plaintext(&t);
	tdir_release(&t);
}

/* (3): a wrong key is -EBADMSG and changes no byte, WAL or not. */
static void test_wrong_key(void **state)
{
	struct tdir t = { 0 };
	uint8_t *before, *after;
	size_t blen, alen;
	sqlite3 *db = NULL;

	(void)state;
	tdir_init(&t);
	db = open_ok(t.db, key_a, 1);
	create_schema(db);
	insert_rows(db, 0, 100, 40);
	close_ok(db);

	before = slurp(t.db, &blen);
	db = NULL;
	assert_int_equal(stash_sqlvfs_open(&db, t.db, key_b, 0), -EBADMSG);
	assert_null(db);
	assert_int_equal(stash_sqlvfs_open(&db, t.db, key_b, 1), -EBADMSG);
	after = slurp(t.db, &alen);
	assert_int_equal(alen, blen);
	assert_memory_equal(before, after, blen);
	assert_int_equal(file_size(t.wal), -1);
	free(before);
	free(after);

	db = open_ok(t.db, key_a, 0);
	check_rows(db, 100, 40);
	close_ok(db);
	tdir_release(&t);
}

/* Step sql to its end; the last result code (SQLITE_DONE when all went). */
static int scan(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	int rc;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	sqlite3_finalize(st);
	return rc;
}

/* (4): a flipped byte in a page is an error, never other data. */
static void test_flipped_byte(void **state)
{
	struct tdir t = { 0 };
	sqlite3 *db = NULL;
	off_t size;
	int rc;

	(void)state;
	tdir_init(&t);
	db = open_ok(t.db, key_a, 1);
	create_schema(db);
	insert_rows(db, 0, 2000, 100);
	close_ok(db);
	size = file_size(t.db);
	assert_true(size > 10 * STASH_SQLVFS_PAGE_SIZE);

	/*
	 * A page in the middle (table or index): open works, and scanning
	 * both the table and the index fails on it with -EBADMSG.
	 */
	flip_byte(t.db,
		  (size / STASH_SQLVFS_PAGE_SIZE / 2) * STASH_SQLVFS_PAGE_SIZE +
			  100);
	db = open_ok(t.db, key_a, 0);
	rc = scan(db, "SELECT sum(length(body)) FROM t NOT INDEXED");
	if (rc == SQLITE_DONE)
		rc = scan(db, "SELECT count(body) FROM t INDEXED BY t_body");
	assert_int_not_equal(rc, SQLITE_DONE);
	assert_int_equal(stash_sqlite_errno(rc), -EBADMSG);
	close_ok(db);

	/* A tag byte of page 1: open itself fails. */
	flip_byte(t.db, STASH_SQLVFS_PAGE_SIZE - 1);
	db = NULL;
	assert_int_equal(stash_sqlvfs_open(&db, t.db, key_a, 0), -EBADMSG);
	assert_null(db);
	tdir_release(&t);
}

/*
 * The child of the crash tests: commit 12 transactions of 500 rows, then die
 * by SIGKILL without closing. With restart, a passive checkpoint (the WAL
 * is not truncated) after the 8th makes the WAL restart over frames of the
 * old generation, and a big transaction is left uncommitted (with a small
 * cache, so it spills frames to the WAL). Exit status 1 on any failure.
 */
static void crash_child(const struct tdir *t, bool restart)
{
	sqlite3 *db = NULL;
	char sql[256];

	if (stash_sqlvfs_open(&db, t->db, key_a, 1))
		_exit(1);
	if (sqlite3_exec(db,
			 "PRAGMA wal_autocheckpoint=0;"
			 "PRAGMA cache_size=20;"
			 "CREATE TABLE t(id INTEGER PRIMARY KEY, "
			 "body TEXT NOT NULL);"
			 "CREATE INDEX t_body ON t(body)",
			 NULL, NULL, NULL))
		_exit(1);
	for (int tx = 0; tx < 12; tx++) {
		if (restart && tx == 8 &&
		    sqlite3_exec(db, "PRAGMA wal_checkpoint(PASSIVE)", NULL,
				 NULL, NULL))
			_exit(1);
		snprintf(sql, sizeof(sql),
			 "WITH RECURSIVE c(i) AS (SELECT %d UNION ALL "
			 "SELECT i + 1 FROM c WHERE i < %d) "
			 "INSERT INTO t SELECT i, '%s-' || i || '-' || "
			 "hex(zeroblob(20)) FROM c",
			 tx * 500, tx * 500 + 499, MARKER);
		if (sqlite3_exec(db, sql, NULL, NULL, NULL))
			_exit(1);
	}
	/* Uncommitted: must vanish. */
	if (restart &&
	    sqlite3_exec(db,
			 "BEGIN; WITH RECURSIVE c(i) AS (SELECT 100000 UNION "
			 "ALL SELECT i + 1 FROM c WHERE i < 120000) "
			 "INSERT INTO t SELECT i, hex(randomblob(50)) FROM c",
			 NULL, NULL, NULL))
		_exit(1);
	raise(SIGKILL);
	/* cppcheck-suppress unreachableCode */
	_exit(2);
}

/* (5): kill -9 a writer after commits, before any checkpoint. */
static void test_crash(void **state)
{
	struct tdir t = { 0 };
	uint8_t *db_before, *wal_before, *db_after, *wal_after;
	size_t dlen, wlen, dlen2, wlen2;
	sqlite3 *db = NULL;
	sqlite3_stmt *st;
	int status;
	pid_t pid;

	(void)state;
	tdir_init(&t);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		crash_child(&t, true);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	assert_true(file_size(t.wal) > 0);
	assert_no_plaintext(&t);

	/* A wrong key must not recover (and so shorten) the WAL. */
	db_before = slurp(t.db, &dlen);
	wal_before = slurp(t.wal, &wlen);
	assert_int_equal(stash_sqlvfs_open(&db, t.db, key_b, 0), -EBADMSG);
	db_after = slurp(t.db, &dlen2);
	wal_after = slurp(t.wal, &wlen2);
	assert_int_equal(dlen, dlen2);
	assert_int_equal(wlen, wlen2);
	assert_memory_equal(db_before, db_after, dlen);
	assert_memory_equal(wal_before, wal_after, wlen);
	free(db_before);
	free(wal_before);
	free(db_after);
	free(wal_after);

	db = open_ok(t.db, key_a, 0);
	check_integrity(db);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT count(*), min(id), "
					    "max(id), sum(body LIKE '" MARKER
					    "-' || id || '-%') FROM t",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 6000);
	assert_int_equal(sqlite3_column_int(st, 1), 0);
	assert_int_equal(sqlite3_column_int(st, 2), 5999);
	assert_int_equal(sqlite3_column_int(st, 3), 6000);
	sqlite3_finalize(st);
	close_ok(db);
	assert_int_equal(file_size(t.wal), -1);
	assert_no_plaintext(&t);

	db = open_ok(t.db, key_a, 0);
	check_integrity(db);
	close_ok(db);
	tdir_release(&t);
}

/*
 * A torn last commit: the body of the WAL's last frame (the commit frame of
 * the 12th transaction) is damaged. Recovery must end the log before it,
 * as SQLite does on a checksum mismatch: 11 transactions survive.
 */
static void test_torn_commit(void **state)
{
	struct tdir t = { 0 };
	sqlite3 *db;
	sqlite3_stmt *st;
	int status;
	off_t wlen;
	pid_t pid;

	(void)state;
	tdir_init(&t);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		crash_child(&t, false);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	wlen = file_size(t.wal);
	assert_true(wlen > 32);
	assert_int_equal((wlen - 32) % (24 + STASH_SQLVFS_PAGE_SIZE), 0);
	flip_byte(t.wal, wlen - 1000);

	db = open_ok(t.db, key_a, 0);
	check_integrity(db);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT count(*), max(id) "
					    "FROM t",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 5500);
	assert_int_equal(sqlite3_column_int(st, 1), 5499);
	sqlite3_finalize(st);
	close_ok(db);
	assert_no_plaintext(&t);
	tdir_release(&t);
}

/*
 * No frame header shows what SQLite wrote into it: the page number and
 * commit field, the salts (the same in every frame of a WAL generation) and
 * the checksums over the page's plaintext appear nowhere in the file, and
 * the bytes where salts would be differ from frame to frame. Decoded with
 * the key, the frames are exactly what SQLite writes.
 */
static void test_wal_headers_hidden(void **state)
{
	struct tdir t = { 0 };
	struct wal w;
	sqlite3 *db;
	int commits = 0;

	(void)state;
	tdir_init(&t);
	db = open_ok(t.db, key_a, 1);
	exec(db, "PRAGMA wal_autocheckpoint=0");
	create_schema(db);
	for (int k = 0; k < 5; k++)
		insert_rows(db, k * 300, (k + 1) * 300, 60);
	wal_load(&w, t.wal);
	assert_true(w.n >= 20);
	assert_int_equal(w.valid, w.n);
	assert_int_equal(w.last_commit, w.n);
	for (uint64_t i = 1; i <= w.n; i++) {
		const uint8_t *disk = wal_disk(&w, i);
		const uint8_t *f = wal_plain(&w, i);

		assert_true(be32(f) > 0);
		commits += be32(f + 4) != 0;
		/* Page number and commit, salts, checksums: all hidden. */
		for (int k = 0; k < FRAME_HDR; k += 8)
			assert_memory_not_equal(disk + k, f + k, 8);
		assert_null(memmem(w.buf, w.len, f + 16, 8));
		if (i > 1)
			assert_memory_not_equal(disk + 8, disk - FRAME + 8, 8);
	}
	/* Two CREATEs and five inserts, one transaction each. */
	assert_int_equal(commits, 7);
	/* The salts are in the plaintext WAL header, and only there. */
	assert_null(memmem(w.buf + 17, w.len - 17, w.buf + 16, 8));
	wal_release(&w);
	check_rows(db, 1500, 60);
	close_ok(db);
	assert_no_plaintext(&t);
	tdir_release(&t);
}

/*
 * Edited frame headers are refused, never applied. The WAL of 12 committed
 * transactions left by a killed writer is edited as an attacker would: a
 * frame in the middle of the 12th transaction gets a commit field (the
 * database size after that commit) and SQLite's checksum chain recomputed
 * for it, which on a plaintext header would commit half the transaction.
 * Written over the sealed header as plaintext, or XORed into it with the
 * plaintext known (what a stream cipher without a tag would allow), it must
 * end the log, as must a flipped bit anywhere in a header: recovery keeps
 * the 11 transactions before it, all rows intact.
 */
static void test_forged_header(void **state)
{
	enum {
		UNCHANGED,
		FORGED_PLAIN,
		FORGED_XOR,
		FLIP_PAGE_NO,
		FLIP_COMMIT,
		FLIP_SALT,
		FLIP_CKSUM,
		CASES
	};
	struct tdir t = { 0 };
	uint8_t forged[FRAME_HDR];
	uint8_t *db_img, *wal_img;
	uint64_t prev, k;
	uint32_t s[2];
	size_t dlen;
	struct wal w;
	int status;
	pid_t pid;

	(void)state;
	tdir_init(&t);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		crash_child(&t, false);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	db_img = slurp(t.db, &dlen);
	wal_load(&w, t.wal);
	assert_int_equal(w.valid, w.n);
	assert_int_equal(w.last_commit, w.n);

	/* The 12th transaction: the frames after the commit before it. */
	for (prev = w.n - 1; prev > 0 && !be32(wal_plain(&w, prev) + 4);)
		prev--;
	assert_true(prev > 0 && w.n - prev >= 3);
	k = prev + (w.n - prev) / 2;
	assert_int_equal(be32(wal_plain(&w, k) + 4), 0);

	/* Frame k made a commit, its checksum chained on from frame k-1. */
	memcpy(forged, wal_plain(&w, k), FRAME_HDR);
	be32enc(forged + 4, be32(wal_plain(&w, w.n) + 4));
	s[0] = be32(wal_plain(&w, k - 1) + 16);
	s[1] = be32(wal_plain(&w, k - 1) + 20);
	wal_cksum(w.big, forged, 8, s);
	wal_cksum(w.big, wal_plain(&w, k) + FRAME_HDR, STASH_SQLVFS_PAGE_SIZE,
		  s);
	be32enc(forged + 16, s[0]);
	be32enc(forged + 20, s[1]);
	assert_memory_not_equal(forged, wal_plain(&w, k), FRAME_HDR);

	wal_img = malloc(w.len);
	assert_non_null(wal_img);
	for (int c = 0; c < CASES; c++) {
		uint8_t *fk = wal_img + (wal_disk(&w, k) - w.buf);
		uint8_t *fn = wal_img + (wal_disk(&w, w.n) - w.buf);
		sqlite3 *db;

		memcpy(wal_img, w.buf, w.len);
		switch (c) {
		case FORGED_PLAIN:
			memcpy(fk, forged, FRAME_HDR);
			break;
		case FORGED_XOR:
			for (int b = 0; b < FRAME_HDR; b++)
				fk[b] ^= forged[b] ^ wal_plain(&w, k)[b];
			break;
		case FLIP_PAGE_NO:
			fk[3] ^= 1;
			break;
		case FLIP_COMMIT:
			fn[7] ^= 1;
			break;
		case FLIP_SALT:
			fk[9] ^= 1;
			break;
		case FLIP_CKSUM:
			fk[21] ^= 1;
			break;
		default:
			break;
		}
		spit(t.db, db_img, dlen);
		spit(t.wal, wal_img, w.len);
		db = open_ok(t.db, key_a, 0);
		check_count(db, c == UNCHANGED ? 6000 : 5500);
		close_ok(db);
		assert_int_equal(file_size(t.wal), -1);
	}
	assert_no_plaintext(&t);
	free(wal_img);
	free(db_img);
	wal_release(&w);
	tdir_release(&t);
}

/*
 * The child of test_rewrite_crash: one transaction through a 10-page cache
 * that spills pages to the WAL, changes them again (SQLite then rewrites
 * those frames' pages in place, and at commit rewrites the headers of the
 * transaction's frames alone, walRewriteChecksums), commits, and dies by
 * SIGKILL. It reports on fd the pages SQLite wrote and the frames the
 * WAL gained: fewer frames than pages means pages rewritten in place.
 */
static void rewrite_child(const struct tdir *t, int fd)
{
	sqlite3 *db = NULL;
	int64_t counts[2];
	off_t before, after;
	int writes = 0, hi = 0;

	if (stash_sqlvfs_open(&db, t->db, key_a, 1) ||
	    sqlite3_exec(db,
			 "PRAGMA wal_autocheckpoint=0;"
			 "PRAGMA cache_size=10;"
			 "CREATE TABLE t(id INTEGER PRIMARY KEY, "
			 "body TEXT NOT NULL)",
			 NULL, NULL, NULL))
		_exit(1);
	before = file_size(t->wal);
	sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_WRITE, &writes, &hi, 1);
	if (sqlite3_exec(db,
			 "BEGIN;"
			 "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL "
			 "SELECT i + 1 FROM c WHERE i < 2999) "
			 "INSERT INTO t SELECT i, '" MARKER "-' || i || '-' || "
			 "hex(zeroblob(100)) FROM c;"
			 "UPDATE t SET body = body || '-u' WHERE id % 2 = 0;"
			 "COMMIT",
			 NULL, NULL, NULL))
		_exit(1);
	sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_WRITE, &writes, &hi, 0);
	after = file_size(t->wal);
	counts[0] = writes;
	counts[1] = (after - STASH_MAX(before, (off_t)WAL_HDR)) / FRAME;
	if (write(fd, counts, sizeof(counts)) != (ssize_t)sizeof(counts))
		_exit(1);
	raise(SIGKILL);
	/* cppcheck-suppress unreachableCode */
	_exit(2);
}

/*
 * A commit whose frame headers SQLite rewrote alone survives a kill -9 right
 * after COMMIT: the rewritten headers are on disk, sealed with their pages,
 * and the checksum chain holds to the commit frame.
 */
static void test_rewrite_crash(void **state)
{
	struct tdir t = { 0 };
	int64_t counts[2];
	sqlite3_stmt *st;
	struct wal w;
	sqlite3 *db;
	int fds[2], status;
	pid_t pid;

	(void)state;
	tdir_init(&t);
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		rewrite_child(&t, fds[1]);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], counts, sizeof(counts)), sizeof(counts));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	/* Pages were rewritten in place, so headers were rewritten. */
	assert_true(counts[1] > 0);
	assert_true(counts[0] > counts[1]);

	wal_load(&w, t.wal);
	assert_int_equal(w.valid, w.n);
	assert_int_equal(w.last_commit, w.n);
	wal_release(&w);
	assert_no_plaintext(&t);

	db = open_ok(t.db, key_a, 0);
	check_count(db, 3000);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT sum(body LIKE '" MARKER
					    "-' || id || '-%-u') FROM t",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 1500);
	sqlite3_finalize(st);
	close_ok(db);
	tdir_release(&t);
}

/*
 * (6): an explicit checkpoint, more writes into the restarted WAL, a VACUUM,
 * reopen.
 */
static void test_checkpoint(void **state)
{
	struct tdir t = { 0 };
	sqlite3 *db;

	(void)state;
	tdir_init(&t);
	db = open_ok(t.db, key_a, 1);
	exec(db, "PRAGMA wal_autocheckpoint=0");
	create_schema(db);
	insert_rows(db, 0, 3000, 60);
	assert_true(file_size(t.wal) > 0);
	exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
	assert_int_equal(file_size(t.wal), 0);
	assert_no_plaintext(&t);
	check_rows(db, 3000, 60);
	insert_rows(db, 3000, 4000, 60);
	assert_true(file_size(t.wal) > 0);
	assert_no_plaintext(&t);
	/* VACUUM builds its copy in memory (temp_store) and writes it back
	 * through the WAL: no temp file, same reserve. */
	exec(db, "VACUUM");
	check_rows(db, 4000, 60);
	assert_no_plaintext(&t);
	close_ok(db);
	assert_no_plaintext(&t);

	db = open_ok(t.db, key_a, 0);
	check_rows(db, 4000, 60);
	check_integrity(db);
	close_ok(db);
	tdir_release(&t);
}

/*
 * (7): 50 MB through a 1 MB page cache: pages are evicted and read back,
 * big transactions spill to the WAL and rewrite spilled frames in place,
 * and automatic checkpoints run.
 */
static void test_large(void **state)
{
	enum { ROWS = 25000, LEN = 2000 };
	struct tdir t = { 0 };
	sqlite3 *db;

	(void)state;
	tdir_init(&t);
	db = open_ok(t.db, key_a, 1);
	exec(db, "PRAGMA cache_size=-1024");
	create_schema(db);
	for (int i = 0; i < ROWS; i += 5000)
		insert_rows(db, i, i + 5000, LEN);
	check_rows(db, ROWS, LEN);
	exec(db, "UPDATE t SET body = body WHERE id % 3 = 0");
	close_ok(db);
	assert_true(file_size(t.db) > 50 * 1000 * 1000);
	assert_no_plaintext(&t);

	db = open_ok(t.db, key_a, 0);
	exec(db, "PRAGMA cache_size=-1024");
	check_rows(db, ROWS, LEN);
	check_integrity(db);
	close_ok(db);
	tdir_release(&t);
}

static void test_errno(void **state)
{
	(void)state;
	assert_int_equal(stash_sqlite_errno(SQLITE_OK), 0);
	assert_int_equal(stash_sqlite_errno(SQLITE_ROW), 0);
	assert_int_equal(stash_sqlite_errno(SQLITE_DONE), 0);
	assert_int_equal(stash_sqlite_errno(SQLITE_BUSY), -EBUSY);
	assert_int_equal(stash_sqlite_errno(SQLITE_BUSY_SNAPSHOT), -EBUSY);
	assert_int_equal(stash_sqlite_errno(SQLITE_LOCKED), -EBUSY);
	assert_int_equal(stash_sqlite_errno(SQLITE_NOMEM), -ENOMEM);
	assert_int_equal(stash_sqlite_errno(SQLITE_FULL), -ENOSPC);
	assert_int_equal(stash_sqlite_errno(SQLITE_CORRUPT), -EBADMSG);
	assert_int_equal(stash_sqlite_errno(SQLITE_NOTADB), -EBADMSG);
	assert_int_equal(stash_sqlite_errno(SQLITE_IOERR_DATA), -EBADMSG);
	assert_int_equal(stash_sqlite_errno(SQLITE_IOERR), -EIO);
	assert_int_equal(stash_sqlite_errno(SQLITE_IOERR_WRITE), -EIO);
	assert_int_equal(stash_sqlite_errno(SQLITE_CANTOPEN), -ENOENT);
	assert_int_equal(stash_sqlite_errno(SQLITE_CONSTRAINT), -EEXIST);
	assert_int_equal(stash_sqlite_errno(SQLITE_CONSTRAINT_UNIQUE), -EEXIST);
	assert_int_equal(stash_sqlite_errno(SQLITE_READONLY), -EROFS);
	assert_int_equal(stash_sqlite_errno(SQLITE_ERROR), -EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_flipped_byte),
		cmocka_unit_test(test_crash),
		cmocka_unit_test(test_torn_commit),
		cmocka_unit_test(test_wal_headers_hidden),
		cmocka_unit_test(test_forged_header),
		cmocka_unit_test(test_rewrite_crash),
		cmocka_unit_test(test_checkpoint),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_errno),
	};

	stash_log_set_level(STASH_LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
