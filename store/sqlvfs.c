/*
 * sqlvfs.c - an SQLite VFS shim that seals every page of the catalog and
 * every frame of its WAL with AES-256-GCM, in the manner of SQLite's
 * ext/misc/cksumvfs.c.
 *
 * Contents:
 *   on-disk layout and associated data
 *   why WAL frames are sealed whole, and how SQLite's writes map onto that
 *   structures
 *   sealing helpers
 *   io methods (main db and WAL)
 *   vfs methods (all but xOpen forward to the default VFS)
 *   stash_sqlvfs_open / stash_sqlvfs_close / stash_sqlite_errno
 *
 * What it does: one sqlite3_vfs per open database, wrapping the default VFS
 * and holding a copy of the page key. Page size is fixed at 4096 with 28
 * reserve bytes per page (nonce 12 + tag 16). Each database page, and each
 * WAL frame (frame header and page together), is sealed on its way to disk
 * and opened on its way back; SQLite never sees ciphertext, and reads back
 * exactly what it wrote.
 *
 * What it deliberately does not do: open any file but the main database and
 * its WAL (journals, temp files and -shm are refused with SQLITE_CANTOPEN:
 * exclusive locking keeps the WAL index on the heap, temp_store=MEMORY keeps
 * temp files in memory), memory-map anything (io methods version 1: no
 * xFetch, no xShm*), encrypt the 32-byte WAL header (see below), or detect
 * a rollback of the whole file or of a page or frame to an older sealed
 * version of itself.
 */
#include "sqlvfs.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "crypto.h"
#include "util.h"

/*
 * On-disk layout and associated data
 *
 * Main database: page n (1-based) lives at (n - 1) * 4096. Bytes [0, 4068)
 * are ciphertext, [4068, 4080) the nonce, [4080, 4096) the GCM tag.
 *
 * WAL: SQLite's 32-byte header in plaintext, then frames of 4120 bytes;
 * frame i (1-based) starts at 32 + (i - 1) * 4120. A frame is sealed whole:
 * SQLite's 24-byte frame header followed by the first 4068 bytes of its page
 * is one 4092-byte plaintext, whose ciphertext fills frame bytes [0, 4092);
 * the nonce and tag follow at [4092, 4120), where the page's reserve bytes
 * would be. No byte of a frame is plaintext.
 *
 * Associated data, 14 bytes:
 *   [0]       layout version: 1 database page, 2 WAL frame (header sealed)
 *   [1]       file role: 1 main database, 2 WAL
 *   [2, 10)   main: page number; WAL: frame index; little-endian u64
 *   [10, 14)  zero
 *
 * Why WAL frames are sealed whole
 *
 * A frame header holds the page number, the commit field (the database size
 * in pages after a commit, zero on other frames), the WAL's two salts, and
 * SQLite's checksum: a keyless Fletcher-style sum, chained from frame to
 * frame, over each header's first 8 bytes and each page's *plaintext*. In the
 * clear those 64 bits per frame would confirm a guessed page; and as the sum
 * is linear, anyone could set or move a commit field and re-chain the sums,
 * committing half a transaction. Sealed with the page, under the page's own
 * fresh random nonce, the header is hidden and any change to it fails the
 * tag. This costs no space (24 + 4068 + 28 = 4120, the size of a plain
 * frame), no second key, and no keystream of its own: GCM's, from a nonce
 * that is never reused, covers header and page alike.
 *
 * The price is that header and page must always be written together, while
 * SQLite (wal.c, 3.40) writes them apart:
 *  - walWriteOneFrame appends a frame as two writes, the header, then the
 *    page at +24. The header is held here (hdr, hdr_held) until its page
 *    comes, then the whole frame is sealed and written in one pwrite.
 *  - A transaction that writes a page it has already spilled to the WAL
 *    rewrites that frame's page in place, alone. The frame is read back and
 *    opened for its header, and resealed with the new page.
 *  - At the commit of such a transaction, walRewriteChecksums reads each of
 *    its frames (header and page in one call) and rewrites the headers
 *    alone, the commit frame's included. Each such frame is read back and
 *    opened, and resealed at once with the new header and its page: with
 *    synchronous=NORMAL no later write would carry a held header to disk,
 *    and a commit must be in the file when COMMIT returns.
 * A header write is told apart by what lies on disk: if a frame that opens
 * (under its own index) is there, the header is applied to it at once; if
 * not (past the end, torn, garbage), it is held for its page. A header
 * appended over a stale frame that still opens (an older WAL generation
 * after a restart, or frames of a rolled back transaction) is thus resealed
 * first with the stale page, then again with its own: until then SQLite's
 * checksum in it does not match the page, so a crash in between ends the
 * log there, as a torn frame would. A header held while SQLite calls for
 * anything but its page (wal.c never does; it would be a rewrite of a frame
 * that does not open) fails that call instead of being lost. Every seal
 * takes a fresh nonce.
 *
 * Reads: every read of a frame opens the whole frame. A read of a whole
 * frame that does not open is WAL recovery scanning for the end of the log
 * (a torn last frame is expected after a crash): it gets zeros, which SQLite
 * rejects (page number 0, wrong salts) and takes as the end of the log. Any
 * other read of a frame that does not open is an error (SQLITE_IOERR_DATA).
 *
 * The 32-byte WAL header stays plaintext. It holds no function of any page
 * (magic, version, page size, checkpoint sequence, salts, and a checksum of
 * these), and there is no room for a nonce. It needs no seal of its own
 * either: SQLite accepts a frame only if the frame's salts equal the
 * header's and its checksum chains from the header's checksum, and both are
 * sealed in the frame. An edited or swapped header makes frame 1 invalid,
 * which only truncates the log, as cutting the file would.
 */
#define PAGE_SIZE STASH_SQLVFS_PAGE_SIZE
#define RESERVE STASH_SQLVFS_RESERVE
#define BODY_LEN (PAGE_SIZE - RESERVE) /* sealed bytes of a page */
#define WAL_HDR_LEN 32		       /* WAL file header */
#define FRAME_HDR_LEN 24	       /* WAL frame header */
#define FRAME_LEN (FRAME_HDR_LEN + PAGE_SIZE)
#define FRAME_BODY_LEN (FRAME_LEN - RESERVE) /* sealed bytes of a frame */
#define AAD_LEN 14
#define AAD_VERSION_MAIN 1 /* a database page */
#define AAD_VERSION_WAL 2  /* a WAL frame, its header sealed with its page */

enum sqlvfs_role {
	ROLE_MAIN = 1, /* the database file */
	ROLE_WAL = 2,  /* its write-ahead log */
};

/* Every file kind SQLite may ask for; we accept two of them. */
#define OPEN_KIND_MASK                                                         \
	(SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_TEMP_DB |                           \
	 SQLITE_OPEN_TRANSIENT_DB | SQLITE_OPEN_MAIN_JOURNAL |                 \
	 SQLITE_OPEN_TEMP_JOURNAL | SQLITE_OPEN_SUBJOURNAL |                   \
	 SQLITE_OPEN_SUPER_JOURNAL | SQLITE_OPEN_WAL)

/*
 * Structures
 */

/* One per open database; registered as an sqlite3_vfs, pAppData = itself. */
struct sqlvfs {
	sqlite3_vfs base;	    /* what SQLite sees; must come first */
	sqlite3_vfs *real;	    /* the default VFS we wrap */
	uint8_t key[STASH_KEY_LEN]; /* page key, wiped at close */
	char name[48]; /* "stashfs-<address>", unique while alive */
};

/*
 * One per open file. SQLite allocates szOsFile bytes: this struct followed
 * by the real VFS's file. A connection uses its files from one thread at a
 * time, so the scratch buffers need no lock.
 */
struct sqlvfs_file {
	sqlite3_file base;     /* pMethods = &sqlvfs_io; must come first */
	sqlite3_file *real;    /* the wrapped file, right after this struct */
	struct sqlvfs *vfs;    /* owner of the key */
	enum sqlvfs_role role; /* main database or WAL */
	uint64_t hdr_frame;    /* WAL: frame whose header hdr is, 0 = none */
	bool hdr_held; /* WAL: hdr waits for its page; else it is on disk */
	uint8_t hdr[FRAME_HDR_LEN]; /* WAL: last frame header SQLite wrote */
	uint8_t raw[FRAME_LEN];	    /* ciphertext scratch (a page or frame) */
	uint8_t plain[FRAME_LEN];   /* plaintext scratch, reserve zeroed: a
				       page, or a frame header and page */
};

static const sqlite3_io_methods sqlvfs_io;

static struct sqlvfs_file *to_file(sqlite3_file *f)
{
	return (struct sqlvfs_file *)f;
}

/*
 * Sealing helpers
 *
 * A sealed unit is a database page (BODY_LEN bytes of ciphertext) or a WAL
 * frame (FRAME_BODY_LEN bytes), followed by its nonce and tag.
 */

static size_t sealed_len(const struct sqlvfs_file *p)
{
	return p->role == ROLE_WAL ? FRAME_BODY_LEN : BODY_LEN;
}

static void make_aad(uint8_t aad[AAD_LEN], enum sqlvfs_role role,
		     uint64_t index)
{
	memset(aad, 0, AAD_LEN);
	aad[0] = role == ROLE_WAL ? AAD_VERSION_WAL : AAD_VERSION_MAIN;
	aad[1] = (uint8_t)role;
	stash_le64enc(aad + 2, index);
}

/* Seal sealed_len(p) bytes of pt into out (that many + RESERVE bytes). pt is
 * not touched: SQLite has already checksummed its page for the WAL. */
static int seal(const struct sqlvfs_file *p, const uint8_t *pt, uint64_t index,
		uint8_t *out)
{
	size_t len = sealed_len(p);
	uint8_t aad[AAD_LEN];
	uint8_t *nonce = out + len;
	uint8_t *tag = nonce + STASH_NONCE_LEN;

	make_aad(aad, p->role, index);
	/* Random nonces: no counter state to keep crash-consistent. */
	if (stash_crypto_random(nonce, STASH_NONCE_LEN))
		return -EIO;
	return stash_crypto_seal(p->vfs->key, nonce, aad, sizeof(aad), pt, len,
				 out, tag);
}

/* Open the sealed unit ct into p->plain and zero the reserve bytes there:
 * SQLite must see what it wrote, and it never writes the reserve. */
static int unseal(struct sqlvfs_file *p, const uint8_t *ct, uint64_t index)
{
	size_t len = sealed_len(p);
	uint8_t aad[AAD_LEN];
	int ret;

	make_aad(aad, p->role, index);
	ret = stash_crypto_open(p->vfs->key, ct + len, aad, sizeof(aad), ct,
				len, p->plain, ct + len + STASH_NONCE_LEN);
	memset(p->plain + len, 0, RESERVE);
	return ret;
}

/* Read len bytes of the real file at off; SHORT_READ zero-fills the rest. */
static int real_read(struct sqlvfs_file *p, void *buf, int len,
		     sqlite3_int64 off)
{
	return p->real->pMethods->xRead(p->real, buf, len, off);
}

static int real_write(struct sqlvfs_file *p, const void *buf, int len,
		      sqlite3_int64 off)
{
	return p->real->pMethods->xWrite(p->real, buf, len, off);
}

/* Whether nothing of the real file lies at or after off (after a short
 * read: then the caller gets zeros, as from the real VFS). */
static bool beyond_eof(struct sqlvfs_file *p, sqlite3_int64 off)
{
	sqlite3_int64 size = 0;

	if (p->real->pMethods->xFileSize(p->real, &size) != SQLITE_OK)
		return false;
	return size <= off;
}

/*
 * io methods: main database
 *
 * Reads may be any range (SQLite reads the 100-byte header and 16 bytes at
 * offset 24 on their own); every page they touch is read and opened whole.
 * Writes are whole pages, as SQLite always does with POWERSAFE_OVERWRITE.
 */

static int main_read(struct sqlvfs_file *p, uint8_t *buf, int amt,
		     sqlite3_int64 ofst)
{
	bool short_read = false;

	while (amt > 0) {
		uint64_t index = (uint64_t)ofst / PAGE_SIZE;
		sqlite3_int64 page_off = (sqlite3_int64)index * PAGE_SIZE;
		int in = (int)(ofst - page_off);
		int n = STASH_MIN(amt, PAGE_SIZE - in);
		int rc = real_read(p, p->raw, PAGE_SIZE, page_off);

		if (rc == SQLITE_IOERR_SHORT_READ && beyond_eof(p, ofst)) {
			memset(buf, 0, (size_t)n);
			short_read = true;
		} else if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) {
			return rc;
		} else if (unseal(p, p->raw, index + 1)) {
			stash_log(STASH_LOG_ERR,
				  "sqlvfs: database page %llu does not "
				  "authenticate",
				  (unsigned long long)index + 1);
			return SQLITE_IOERR_DATA;
		} else {
			memcpy(buf, p->plain + in, (size_t)n);
		}
		buf += n;
		amt -= n;
		ofst += n;
	}
	return short_read ? SQLITE_IOERR_SHORT_READ : SQLITE_OK;
}

static int main_write(struct sqlvfs_file *p, const uint8_t *buf, int amt,
		      sqlite3_int64 ofst)
{
	if (amt <= 0 || amt % PAGE_SIZE || ofst % PAGE_SIZE) {
		stash_log(STASH_LOG_ERR,
			  "sqlvfs: refused a partial-page write (%d bytes at "
			  "%lld)",
			  amt, (long long)ofst);
		return SQLITE_IOERR_WRITE;
	}
	for (; amt > 0; buf += PAGE_SIZE, amt -= PAGE_SIZE, ofst += PAGE_SIZE) {
		uint64_t index = (uint64_t)ofst / PAGE_SIZE + 1;
		int rc;

		/*
		 * Page 1 carries the page size (big-endian at 16) and the
		 * reserve (at 20). Without our 28 reserve bytes the seal
		 * would overwrite SQLite's data: refuse instead.
		 */
		if (index == 1 &&
		    (buf[16] != (PAGE_SIZE >> 8) ||
		     buf[17] != (PAGE_SIZE & 0xff) || buf[20] != RESERVE)) {
			stash_log(STASH_LOG_ERR,
				  "sqlvfs: refused a database without %d "
				  "reserve bytes per %d-byte page",
				  RESERVE, PAGE_SIZE);
			return SQLITE_IOERR_WRITE;
		}
		if (seal(p, buf, index, p->raw))
			return SQLITE_IOERR_WRITE;
		rc = real_write(p, p->raw, PAGE_SIZE, ofst);
		if (rc != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}

/*
 * io methods: WAL
 *
 * The WAL header passes through. Frames are read, opened, sealed and
 * written whole; see "Why WAL frames are sealed whole" above.
 */

static uint64_t wal_frame_index(sqlite3_int64 ofst)
{
	return (uint64_t)(ofst - WAL_HDR_LEN) / FRAME_LEN + 1;
}

static sqlite3_int64 wal_frame_off(uint64_t index)
{
	return WAL_HDR_LEN + (sqlite3_int64)(index - 1) * FRAME_LEN;
}

/*
 * A header held for its page, and SQLite calls for something else first:
 * wal.c never does. Fail the call with err rather than lose the header
 * silently; SQLite then abandons the transaction.
 */
static int wal_check_held(struct sqlvfs_file *p, int err)
{
	if (!p->hdr_held)
		return SQLITE_OK;
	stash_log(STASH_LOG_ERR,
		  "sqlvfs: WAL frame %llu: header written without its page",
		  (unsigned long long)p->hdr_frame);
	p->hdr_held = false;
	p->hdr_frame = 0;
	return err;
}

/*
 * Read frame index and open it into p->plain. Returns 0; -EBADMSG when the
 * frame is not wholly on disk (*rc = SQLITE_IOERR_SHORT_READ) or does not
 * open (*rc = SQLITE_OK); or -EIO, *rc being the I/O error.
 */
static int wal_load(struct sqlvfs_file *p, uint64_t index, int *rc)
{
	*rc = real_read(p, p->raw, FRAME_LEN, wal_frame_off(index));
	if (*rc == SQLITE_IOERR_SHORT_READ)
		return -EBADMSG;
	if (*rc != SQLITE_OK)
		return -EIO;
	return unseal(p, p->raw, index) ? -EBADMSG : 0;
}

/* Seal p->plain (a frame header and page) as frame index and write it. */
static int wal_store(struct sqlvfs_file *p, uint64_t index)
{
	int rc = SQLITE_IOERR_WRITE;

	if (seal(p, p->plain, index, p->raw) == 0)
		rc = real_write(p, p->raw, FRAME_LEN, wal_frame_off(index));
	p->hdr_held = false;
	if (rc != SQLITE_OK) {
		p->hdr_frame = 0; /* what the disk holds is unknown */
		return rc;
	}
	memcpy(p->hdr, p->plain, FRAME_HDR_LEN);
	p->hdr_frame = index;
	return SQLITE_OK;
}

static int wal_read(struct sqlvfs_file *p, uint8_t *buf, int amt,
		    sqlite3_int64 ofst)
{
	bool short_read = false;
	int rc = wal_check_held(p, SQLITE_IOERR_READ);

	if (rc != SQLITE_OK)
		return rc;
	while (amt > 0) {
		uint64_t index;
		int in, n;

		if (ofst < WAL_HDR_LEN) {
			n = STASH_MIN(amt, (int)(WAL_HDR_LEN - ofst));
			rc = real_read(p, buf, n, ofst);
			goto next;
		}
		index = wal_frame_index(ofst);
		in = (int)(ofst - wal_frame_off(index));
		n = STASH_MIN(amt, FRAME_LEN - in);
		if (wal_load(p, index, &rc) == 0) {
			memcpy(buf, p->plain + in, (size_t)n);
			goto next;
		}
		if (rc == SQLITE_IOERR_SHORT_READ && beyond_eof(p, ofst)) {
			memset(buf, 0, (size_t)n);
			goto next;
		}
		if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ)
			return rc;
		if (in != 0 || n != FRAME_LEN) {
			/* A frame SQLite knows to be valid: damage. */
			stash_log(STASH_LOG_ERR,
				  "sqlvfs: WAL frame %llu does not "
				  "authenticate",
				  (unsigned long long)index);
			return SQLITE_IOERR_DATA;
		}
		/*
		 * A whole frame in one read: WAL recovery scanning for the
		 * end of the log, where a torn last frame is expected after a
		 * crash. An all-zero header (page number 0, wrong salts) is a
		 * frame SQLite always rejects, so the log ends here, as it
		 * would on a checksum mismatch.
		 */
		stash_log(STASH_LOG_DEBUG,
			  "sqlvfs: WAL frame %llu does not authenticate; "
			  "treated as the end of the log",
			  (unsigned long long)index);
		memset(buf, 0, (size_t)n);
		rc = SQLITE_OK;
	next:
		if (rc == SQLITE_IOERR_SHORT_READ)
			short_read = true;
		else if (rc != SQLITE_OK)
			return rc;
		buf += n;
		amt -= n;
		ofst += n;
	}
	return short_read ? SQLITE_IOERR_SHORT_READ : SQLITE_OK;
}

/*
 * SQLite writes the header of frame index. If a frame that opens is on disk
 * there, apply the header to it now (walRewriteChecksums, or an append over
 * a stale frame, whose page comes next); else hold it for its page.
 */
static int wal_write_hdr(struct sqlvfs_file *p, uint64_t index,
			 const uint8_t *hdr)
{
	int rc = wal_check_held(p, SQLITE_IOERR_WRITE);

	if (rc != SQLITE_OK)
		return rc;
	if (wal_load(p, index, &rc) == 0) {
		memcpy(p->plain, hdr, FRAME_HDR_LEN);
		return wal_store(p, index);
	}
	if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ)
		return rc;
	memcpy(p->hdr, hdr, FRAME_HDR_LEN);
	p->hdr_frame = index;
	p->hdr_held = true;
	return SQLITE_OK;
}

/*
 * SQLite writes the page of frame index: right after its header (held, or
 * just applied to a stale frame), or alone, rewriting a frame of the open
 * transaction in place; then the header is the one on disk.
 */
static int wal_write_page(struct sqlvfs_file *p, uint64_t index,
			  const uint8_t *page)
{
	int rc;

	if (p->hdr_frame == index) {
		memcpy(p->plain, p->hdr, FRAME_HDR_LEN);
	} else {
		rc = wal_check_held(p, SQLITE_IOERR_WRITE);
		if (rc != SQLITE_OK)
			return rc;
		if (wal_load(p, index, &rc)) {
			if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ)
				return rc;
			stash_log(STASH_LOG_ERR,
				  "sqlvfs: WAL frame %llu: page written over "
				  "a frame that does not authenticate",
				  (unsigned long long)index);
			return SQLITE_IOERR_DATA;
		}
	}
	memcpy(p->plain + FRAME_HDR_LEN, page, BODY_LEN);
	return wal_store(p, index);
}

/* SQLite writes the WAL header (32 bytes at 0), frame headers (24 bytes at
 * a frame's start) and pages (4096 bytes after a frame header), each in its
 * own call. Anything else is refused. */
static int wal_write(struct sqlvfs_file *p, const uint8_t *buf, int amt,
		     sqlite3_int64 ofst)
{
	if (ofst + amt <= WAL_HDR_LEN) {
		int rc = wal_check_held(p, SQLITE_IOERR_WRITE);

		return rc != SQLITE_OK ? rc : real_write(p, buf, amt, ofst);
	}
	if (ofst >= WAL_HDR_LEN) {
		uint64_t index = wal_frame_index(ofst);
		int in = (int)(ofst - wal_frame_off(index));

		if (in == 0 && amt == FRAME_HDR_LEN)
			return wal_write_hdr(p, index, buf);
		if (in == FRAME_HDR_LEN && amt == PAGE_SIZE)
			return wal_write_page(p, index, buf);
	}
	stash_log(STASH_LOG_ERR,
		  "sqlvfs: refused a WAL write that is not a header or a "
		  "page (%d bytes at %lld)",
		  amt, (long long)ofst);
	return SQLITE_IOERR_WRITE;
}

/*
 * io methods: common
 */

static int sqlvfs_close(sqlite3_file *f)
{
	struct sqlvfs_file *p = to_file(f);
	int rc = p->real->pMethods->xClose(p->real);

	(void)wal_check_held(p, SQLITE_IOERR_CLOSE);
	stash_crypto_wipe(p->plain, sizeof(p->plain));
	stash_crypto_wipe(p->hdr, sizeof(p->hdr));
	p->base.pMethods = NULL;
	return rc;
}

static int sqlvfs_read(sqlite3_file *f, void *buf, int amt, sqlite3_int64 ofst)
{
	struct sqlvfs_file *p = to_file(f);

	if (amt < 0 || ofst < 0)
		return SQLITE_IOERR_READ;
	if (p->role == ROLE_WAL)
		return wal_read(p, buf, amt, ofst);
	return main_read(p, buf, amt, ofst);
}

static int sqlvfs_write(sqlite3_file *f, const void *buf, int amt,
			sqlite3_int64 ofst)
{
	struct sqlvfs_file *p = to_file(f);

	if (amt < 0 || ofst < 0)
		return SQLITE_IOERR_WRITE;
	if (p->role == ROLE_WAL)
		return wal_write(p, buf, amt, ofst);
	return main_write(p, buf, amt, ofst);
}

static int sqlvfs_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct sqlvfs_file *p = to_file(f);
	int rc = wal_check_held(p, SQLITE_IOERR_TRUNCATE);

	p->hdr_frame = 0;
	if (rc != SQLITE_OK)
		return rc;
	return p->real->pMethods->xTruncate(p->real, size);
}

static int sqlvfs_sync(sqlite3_file *f, int flags)
{
	struct sqlvfs_file *p = to_file(f);
	int rc = wal_check_held(p, SQLITE_IOERR_FSYNC);

	if (rc != SQLITE_OK)
		return rc;
	return p->real->pMethods->xSync(p->real, flags);
}

/* Sealed files have exactly the size of the plaintext ones. */
static int sqlvfs_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	struct sqlvfs_file *p = to_file(f);
	int rc = wal_check_held(p, SQLITE_IOERR_FSTAT);

	if (rc != SQLITE_OK)
		return rc;
	return p->real->pMethods->xFileSize(p->real, size);
}

static int sqlvfs_lock(sqlite3_file *f, int lock)
{
	struct sqlvfs_file *p = to_file(f);

	return p->real->pMethods->xLock(p->real, lock);
}

static int sqlvfs_unlock(sqlite3_file *f, int lock)
{
	struct sqlvfs_file *p = to_file(f);

	return p->real->pMethods->xUnlock(p->real, lock);
}

static int sqlvfs_check_reserved_lock(sqlite3_file *f, int *out)
{
	struct sqlvfs_file *p = to_file(f);

	return p->real->pMethods->xCheckReservedLock(p->real, out);
}

static int sqlvfs_file_control(sqlite3_file *f, int op, void *arg)
{
	struct sqlvfs_file *p = to_file(f);
	int rc;

	if (op == SQLITE_FCNTL_MMAP_SIZE) {
		/* Pages on disk are ciphertext: never map them. */
		*(sqlite3_int64 *)arg = 0;
		return SQLITE_OK;
	}
	rc = p->real->pMethods->xFileControl(p->real, op, arg);
	if (rc == SQLITE_OK && op == SQLITE_FCNTL_VFSNAME) {
		char *name = sqlite3_mprintf("stashfs/%z", *(char **)arg);

		if (!name)
			return SQLITE_NOMEM;
		*(char **)arg = name;
	}
	return rc;
}

static int sqlvfs_sector_size(sqlite3_file *f)
{
	struct sqlvfs_file *p = to_file(f);

	return p->real->pMethods->xSectorSize(p->real);
}

/*
 * POWERSAFE_OVERWRITE stays set: without it SQLite pads WAL commits to a
 * sector boundary and may split pages across writes, and a sealed page must
 * be written whole.
 */
static int sqlvfs_device_characteristics(sqlite3_file *f)
{
	struct sqlvfs_file *p = to_file(f);

	return p->real->pMethods->xDeviceCharacteristics(p->real) |
	       SQLITE_IOCAP_POWERSAFE_OVERWRITE;
}

/*
 * Version 1: no xShm* (the WAL index lives on the heap in exclusive locking
 * mode) and no xFetch/xUnfetch (SQLite must never see mapped ciphertext).
 */
static const sqlite3_io_methods sqlvfs_io = {
	.iVersion = 1,
	.xClose = sqlvfs_close,
	.xRead = sqlvfs_read,
	.xWrite = sqlvfs_write,
	.xTruncate = sqlvfs_truncate,
	.xSync = sqlvfs_sync,
	.xFileSize = sqlvfs_file_size,
	.xLock = sqlvfs_lock,
	.xUnlock = sqlvfs_unlock,
	.xCheckReservedLock = sqlvfs_check_reserved_lock,
	.xFileControl = sqlvfs_file_control,
	.xSectorSize = sqlvfs_sector_size,
	.xDeviceCharacteristics = sqlvfs_device_characteristics,
};

/*
 * vfs methods
 */

static struct sqlvfs *to_vfs(sqlite3_vfs *vfs)
{
	return vfs->pAppData;
}

static int sqlvfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
		       int flags, int *out_flags)
{
	struct sqlvfs *v = to_vfs(vfs);
	struct sqlvfs_file *p = to_file(f);
	int kind = flags & OPEN_KIND_MASK;
	int rc;

	memset(p, 0, sizeof(*p));
	if (name == NULL ||
	    (kind != SQLITE_OPEN_MAIN_DB && kind != SQLITE_OPEN_WAL)) {
		/* A journal or temp file would hold plaintext pages. */
		stash_log(STASH_LOG_ERR,
			  "sqlvfs: refused to open a file of kind 0x%x", kind);
		return SQLITE_CANTOPEN;
	}
	p->vfs = v;
	p->role = kind == SQLITE_OPEN_WAL ? ROLE_WAL : ROLE_MAIN;
	p->real = (sqlite3_file *)(p + 1);
	rc = v->real->xOpen(v->real, name, p->real, flags, out_flags);
	if (rc != SQLITE_OK) {
		/* SQLite calls xClose only when pMethods is set. */
		if (p->real->pMethods)
			p->real->pMethods->xClose(p->real);
		return rc;
	}
	p->base.pMethods = &sqlvfs_io;
	return SQLITE_OK;
}

static int sqlvfs_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
	sqlite3_vfs *real = to_vfs(vfs)->real;

	return real->xDelete(real, name, sync_dir);
}

static int sqlvfs_access(sqlite3_vfs *vfs, const char *name, int flags,
			 int *out)
{
	sqlite3_vfs *real = to_vfs(vfs)->real;

	return real->xAccess(real, name, flags, out);
}

static int sqlvfs_full_pathname(sqlite3_vfs *vfs, const char *name, int len,
				char *out)
{
	sqlite3_vfs *real = to_vfs(vfs)->real;

	return real->xFullPathname(real, name, len, out);
}

static void *sqlvfs_dlopen(sqlite3_vfs *vfs, const char *path)
{
	sqlite3_vfs *real = to_vfs(vfs)->real;

	return real->xDlOpen(real, path);
}

static void sqlvfs_dlerror(sqlite3_vfs *vfs, int len, char *msg)
{
	sqlite3_vfs *real = to_vfs(vfs)->real;

	real->xDlError(real, len, msg);
}

static void (*sqlvfs_dlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
	sqlite3_vfs *real = to_vfs(vfs)->real;

	return real->xDlSym(real, h, sym);
}

static void sqlvfs_dlclose(sqlite3_vfs *vfs, void *h)
{
	sqlite3_vfs *real = to_vfs(vfs)->real;

	real->xDlClose(real, h);
}

static int sqlvfs_randomness(sqlite3_vfs *vfs, int len, char *out)
{
	sqlite3_vfs *real = to_vfs(vfs)->real;

	return real->xRandomness(real, len, out);
}

static int sqlvfs_sleep(sqlite3_vfs *vfs, int usec)
{
	sqlite3_vfs *real = to_vfs(vfs)->real;

	return real->xSleep(real, usec);
}

static int sqlvfs_current_time(sqlite3_vfs *vfs, double *out)
{
	sqlite3_vfs *real = to_vfs(vfs)->real;

	return real->xCurrentTime(real, out);
}

static int sqlvfs_get_last_error(sqlite3_vfs *vfs, int len, char *msg)
{
	sqlite3_vfs *real = to_vfs(vfs)->real;

	return real->xGetLastError ? real->xGetLastError(real, len, msg) : 0;
}

static int sqlvfs_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	sqlite3_vfs *real = to_vfs(vfs)->real;

	return real->xCurrentTimeInt64(real, out);
}

/* Build (not register) the VFS for one database. NULL on no memory. */
static struct sqlvfs *sqlvfs_new(sqlite3_vfs *real,
				 const uint8_t key[STASH_KEY_LEN])
{
	struct sqlvfs *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->real = real;
	memcpy(v->key, key, STASH_KEY_LEN);
	snprintf(v->name, sizeof(v->name), "stashfs-%p", (void *)v);
	/* Version 2 needs xCurrentTimeInt64; the unix VFS has it. */
	v->base.iVersion = real->iVersion >= 2 ? 2 : 1;
	v->base.szOsFile = (int)sizeof(struct sqlvfs_file) + real->szOsFile;
	v->base.mxPathname = real->mxPathname;
	v->base.zName = v->name;
	v->base.pAppData = v;
	v->base.xOpen = sqlvfs_open;
	v->base.xDelete = sqlvfs_delete;
	v->base.xAccess = sqlvfs_access;
	v->base.xFullPathname = sqlvfs_full_pathname;
	v->base.xDlOpen = sqlvfs_dlopen;
	v->base.xDlError = sqlvfs_dlerror;
	v->base.xDlSym = sqlvfs_dlsym;
	v->base.xDlClose = sqlvfs_dlclose;
	v->base.xRandomness = sqlvfs_randomness;
	v->base.xSleep = sqlvfs_sleep;
	v->base.xCurrentTime = sqlvfs_current_time;
	v->base.xGetLastError = sqlvfs_get_last_error;
	if (v->base.iVersion >= 2)
		v->base.xCurrentTimeInt64 = sqlvfs_current_time_int64;
	return v;
}

static void sqlvfs_free(struct sqlvfs *v)
{
	if (!v)
		return;
	stash_crypto_wipe(v->key, sizeof(v->key));
	free(v);
}

/*
 * stash_sqlvfs_open / stash_sqlvfs_close / stash_sqlite_errno
 */

int stash_sqlite_errno(int rc)
{
	/* Extended codes that mean more than their primary code. */
	switch (rc) {
	case SQLITE_IOERR_DATA:
	case SQLITE_IOERR_CORRUPTFS:
		return -EBADMSG;
	case SQLITE_IOERR_NOMEM:
		return -ENOMEM;
	case SQLITE_CANTOPEN_ISDIR:
		return -EISDIR;
	default:
		break;
	}
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	case SQLITE_CANTOPEN:
		/* stash_sqlvfs_open refines this with the system errno. */
		return -ENOENT;
	case SQLITE_PERM:
		return -EPERM;
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_TOOBIG:
		return -EFBIG;
	case SQLITE_INTERRUPT:
		return -EINTR;
	case SQLITE_IOERR:
	default:
		return -EIO;
	}
}

/* The errno for a failure on db (which may be half-open), logged. */
static int open_error(sqlite3 *db, int rc, const char *path, const char *what)
{
	int ext = db ? sqlite3_extended_errcode(db) : rc;
	int sys = db ? sqlite3_system_errno(db) : 0;
	int ret = stash_sqlite_errno(ext);

	if ((ext & 0xff) == SQLITE_CANTOPEN && sys > 0)
		ret = -sys;
	if (ret == -EBADMSG)
		stash_log(STASH_LOG_ERR,
			  "sqlvfs: %s: %s: wrong key or damaged catalog", path,
			  what);
	else
		stash_log(STASH_LOG_ERR, "sqlvfs: %s: %s: %s", path, what,
			  db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	return ret;
}

/* Run one pragma; when expect is set, its one-row result must equal it. */
static int run_pragma(sqlite3 *db, const char *path, const char *sql,
		      const char *expect)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	int ret = 0;

	if (rc != SQLITE_OK)
		return open_error(db, rc, path, sql);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		ret = open_error(db, rc, path, sql);
	} else if (expect) {
		const unsigned char *got =
			rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;

		if (!got || sqlite3_stricmp((const char *)got, expect)) {
			stash_log(STASH_LOG_ERR, "sqlvfs: %s: %s gave %s", path,
				  sql, got ? (const char *)got : "nothing");
			ret = -EIO;
		}
	}
	sqlite3_finalize(st);
	return ret;
}

/*
 * Configure a freshly opened connection. Order matters:
 *  - page size and reserve before anything is written (a fresh database);
 *  - locking_mode=EXCLUSIVE before the first read, since that read opens a
 *    WAL left over from before and, without xShm*, SQLite accepts a WAL only
 *    with its index on the heap, which exclusive mode gives;
 *  - on a fresh database, journal_mode=OFF before journal_mode=WAL: the
 *    switch to WAL writes page 1 in a transaction of the old mode, and in
 *    mode DELETE that would need a rollback journal (which we refuse, and
 *    which would be plaintext). In mode OFF it writes page 1 straight to the
 *    (still empty) database file; nothing can be lost there.
 */
static int configure(sqlite3 *db, const char *path, bool fresh)
{
	int ret;

	if (fresh) {
		int reserve = RESERVE;
		int rc;

		ret = run_pragma(db, path, "PRAGMA page_size=4096", NULL);
		if (ret)
			return ret;
		rc = sqlite3_file_control(db, "main",
					  SQLITE_FCNTL_RESERVE_BYTES, &reserve);
		if (rc != SQLITE_OK)
			return open_error(db, rc, path, "reserve bytes");
	}
	ret = run_pragma(db, path, "PRAGMA locking_mode=EXCLUSIVE",
			 "exclusive");
	if (!ret && fresh)
		ret = run_pragma(db, path, "PRAGMA journal_mode=OFF", "off");
	if (!ret)
		ret = run_pragma(db, path, "PRAGMA journal_mode=WAL", "wal");
	if (!ret)
		ret = run_pragma(db, path, "PRAGMA temp_store=MEMORY", NULL);
	if (!ret)
		ret = run_pragma(db, path, "PRAGMA mmap_size=0", NULL);
	if (!ret)
		ret = run_pragma(db, path, "PRAGMA synchronous=NORMAL", NULL);
	/* Reads the schema: a wrong key fails here at the latest. */
	if (!ret)
		ret = run_pragma(db, path, "SELECT count(*) FROM sqlite_schema",
				 NULL);
	return ret;
}

int stash_sqlvfs_open(sqlite3 **out, const char *path,
		      const uint8_t key[STASH_KEY_LEN], int create)
{
	sqlite3_vfs *real = sqlite3_vfs_find(NULL);
	struct sqlvfs *v = NULL;
	sqlite3 *db = NULL;
	struct stat st;
	bool fresh;
	int flags = SQLITE_OPEN_READWRITE;
	int rc, ret;

	if (!out || !path || !key)
		return -EINVAL;
	if (!real)
		return -EIO;
	if (stat(path, &st) == 0) {
		fresh = st.st_size == 0;
	} else if (errno == ENOENT) {
		if (!create)
			return -ENOENT;
		fresh = true;
		flags |= SQLITE_OPEN_CREATE;
	} else {
		ret = -errno;
		stash_log(STASH_LOG_ERR, "sqlvfs: %s: stat: %s", path,
			  strerror(-ret));
		return ret;
	}

	v = sqlvfs_new(real, key);
	if (!v)
		return -ENOMEM;
	rc = sqlite3_vfs_register(&v->base, 0);
	if (rc != SQLITE_OK) {
		sqlvfs_free(v);
		return stash_sqlite_errno(rc);
	}
	/* sqlite3_open_v2 already reads the 100-byte header of page 1. */
	rc = sqlite3_open_v2(path, &db, flags, v->name);
	if (rc != SQLITE_OK) {
		ret = open_error(db, rc, path, "open");
		goto fail;
	}
	/*
	 * Extended codes let stash_sqlite_errno tell a page that does not
	 * authenticate (SQLITE_IOERR_DATA, -EBADMSG) from an I/O error.
	 */
	sqlite3_extended_result_codes(db, 1);
	ret = configure(db, path, fresh);
	if (ret)
		goto fail;
	*out = db;
	return 0;
fail:
	/*
	 * With a wrong key, sqlite3_open_v2 already failed on page 1, before
	 * the WAL was opened: close has nothing to checkpoint or delete.
	 */
	sqlite3_close(db);
	sqlite3_vfs_unregister(&v->base);
	sqlvfs_free(v);
	return ret;
}

int stash_sqlvfs_close(sqlite3 *db)
{
	sqlite3_vfs *vfs = NULL;
	int rc;

	if (!db)
		return 0;
	rc = sqlite3_file_control(db, "main", SQLITE_FCNTL_VFS_POINTER, &vfs);
	if (rc != SQLITE_OK || !vfs || vfs->xOpen != sqlvfs_open) {
		stash_log(STASH_LOG_ERR,
			  "sqlvfs: close of a database not opened here");
		return -EINVAL;
	}
	/* Checkpoints and deletes the WAL (exclusive mode allows it). */
	rc = sqlite3_close(db);
	if (rc != SQLITE_OK) {
		/* Statements still open: the database and its VFS stay. */
		stash_log(STASH_LOG_ERR, "sqlvfs: close: %s",
			  sqlite3_errstr(rc));
		return stash_sqlite_errno(rc);
	}
	sqlite3_vfs_unregister(vfs);
	sqlvfs_free(to_vfs(vfs));
	return 0;
}
