/*
 * packs.c - append-only pack files: create, append sealed chunks, finish
 * with an encrypted trailer, read chunks back, fsync, remove.
 *
 * It does not seal or open chunks (chunk.c does), does not know what a
 * chunk's bytes mean and keeps no record of where chunks live beyond the
 * current pack: the catalog owns chunk locations. It never writes to a
 * pack that existed when the store was opened.
 *
 * Pack file format, version 1 (all integers little-endian):
 *
 *   path    = dir/XX/<id as 16 lower-case hex digits>, XX = its last two
 *   header  = magic "STASHPK1" (8 bytes) | u32le format version (1)
 *             | u32le reserved 0 | u64le pack id               (24 bytes)
 *   body    = sealed chunks back to back (see chunk.h)
 *   trailer = nonce[12] | AES-256-GCM(entries) | tag[16]
 *             | u32le entry count
 *             | u32le trailer length (bytes from nonce to tag)
 *             | magic "STASHEND"
 *   entry   = id[32] | u64le off | u32le len | u32le raw_len   (48 bytes)
 *   trailer associated data = "stashfs pack trailer v1" (23 bytes, no NUL)
 *             | pack id u64le | entry count u32le
 *
 * Entries are in pack order. A pack gets its trailer once it reaches the
 * target size and when the store closes; a pack without one is a torn
 * tail from a crash. Pack ids start at 1; a newly opened store scans
 * dir/XX/ for the highest id and starts its first pack at highest + 1,
 * lazily on the first append. Readers ignore the reserved header field.
 * gc removes packs nothing uses any more, but the newest id is never
 * freed (its file is cut to the header instead), so ids are not reused.
 *
 * Locks, in the order they are taken: sync_lock, lock, rlock.
 */
#include "packs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"

#define PACK_MAGIC "STASHPK1"
#define PACK_END_MAGIC "STASHEND"
#define PACK_MAGIC_LEN 8
#define PACK_VERSION 1
#define PACK_HDR_LEN STASH_PACK_HDR_LEN
#define PACK_ENTRY_LEN (STASH_ID_LEN + 8 + 4 + 4)
#define PACK_FOOTER_LEN (4 + 4 + PACK_MAGIC_LEN)
#define PACK_SEAL_LEN (STASH_NONCE_LEN + STASH_TAG_LEN)
#define PACK_AAD_LABEL "stashfs pack trailer v1"
#define PACK_AAD_LABEL_LEN (sizeof(PACK_AAD_LABEL) - 1)
#define PACK_AAD_LEN (PACK_AAD_LABEL_LEN + 8 + 4)
_Static_assert(PACK_HDR_LEN + PACK_SEAL_LEN + PACK_FOOTER_LEN == 68 &&
		       PACK_ENTRY_LEN == 48,
	       "stash_pack_overhead() in packs.h is out of date");
/* The trailer length field is a u32, which bounds the entries per pack. */
#define PACK_MAX_ENTRIES ((UINT32_MAX - PACK_SEAL_LEN) / PACK_ENTRY_LEN)
#define PACK_FD_CACHE 64
/*
 * Finished packs keep their descriptor until fsynced (an fsync through a
 * descriptor opened later may miss a writeback error). Past this many,
 * the append that finished one syncs, so descriptors stay bounded even
 * for a caller that rarely syncs.
 */
#define PACK_MAX_UNSYNCED 32
/* Files in the way of a new pack id (never ours to touch) to skip. */
#define PACK_CREATE_TRIES 16

/* A pack open for writing: the current one, or one waiting for fsync. */
struct wpack {
	struct wpack *next; /* next finished, unsynced pack */
	uint64_t id;	    /* pack id */
	int fd;		    /* O_WRONLY descriptor */
};

/* One slot of the read descriptor cache. */
struct rfd {
	uint64_t pack; /* pack id, meaningful while fd >= 0 */
	int fd;	       /* O_RDONLY descriptor; -1 = free slot */
	unsigned refs; /* readers using fd right now */
	bool dead;     /* pack removed: close once refs drops to 0 */
	uint64_t used; /* rclock value at the last use, for LRU */
};

struct stash_packs {
	char *dir;		    /* pack directory (owned) */
	uint8_t key[STASH_KEY_LEN]; /* trailer key, wiped on close */
	uint64_t target;	    /* finish a pack at this size, bytes */

	/* Serialises syncs, so a sync never returns while an fsync that
	 * covers its appends is still running in another thread. */
	pthread_mutex_t sync_lock;
	int sync_err; /* sticky fsync failure (sync_lock) */

	/*
	 * lock guards the write state below. Appends pwrite under it: the
	 * kernel serialises buffered writes to one file anyway, and writing
	 * under the lock means a failed write is cut back before anyone
	 * writes behind it. fsync never runs under it.
	 */
	pthread_mutex_t lock;
	uint64_t next_id;	       /* id of the next pack to create */
	struct wpack *cur;	       /* pack being appended to, or NULL */
	uint64_t cur_off;	       /* its size = write position, bytes */
	bool cur_dirty;		       /* cur written to since last sync */
	struct stash_pack_entry *ents; /* chunks in cur, in pack order */
	size_t nents;		       /* entries used */
	size_t ents_cap;	       /* entries allocated */
	struct wpack *done;	       /* finished, not yet fsynced */
	size_t ndone;		       /* length of the done list */
	bool top_dirty;		       /* dir gained an XX directory */
	uint8_t sub_dirty[256 / 8];    /* bitmap: dir/XX gained/lost a file */
	uint64_t written;	       /* bytes written since open */
	int deferred_err;	       /* first trailer failure, for close */

	pthread_mutex_t rlock; /* guards rfds and rclock */
	struct rfd rfds[PACK_FD_CACHE];
	uint64_t rclock; /* bumped on every cache use */
};

static int pack_path(char *buf, size_t cap, const char *dir, uint64_t pack)
{
	int n = snprintf(buf, cap, "%s/%02x/%016llx", dir,
			 (unsigned)(pack & 0xff), (unsigned long long)pack);

	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return 0;
}

static int sub_path(char *buf, size_t cap, const char *dir, unsigned sub)
{
	int n = snprintf(buf, cap, "%s/%02x", dir, sub);

	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return 0;
}

static void mark_sub_dirty(struct stash_packs *p, uint64_t pack)
{
	unsigned sub = (unsigned)(pack & 0xff);

	p->sub_dirty[sub / 8] |= (uint8_t)(1u << (sub % 8));
}

/* fsync the directory that holds path, after creating path in it. */
static int fsync_parent(const char *path)
{
	char parent[PATH_MAX];
	size_t len = strlen(path);
	char *slash;

	if (len >= sizeof(parent))
		return -ENAMETOOLONG;
	memcpy(parent, path, len + 1);
	while (len > 1 && parent[len - 1] == '/')
		parent[--len] = '\0';
	slash = strrchr(parent, '/');
	if (!slash)
		return stash_fsync_dir(".");
	if (slash == parent)
		slash[1] = '\0';
	else
		*slash = '\0';
	return stash_fsync_dir(parent);
}

/* Exactly n hex digits. Upper case is accepted: it is not ours to reuse. */
static bool is_hex_name(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      (c >= 'A' && c <= 'F')))
			return false;
	}
	return s[n] == '\0';
}

/* Called for each pack file dir/XX/<16 hex digits>: subfd is dir/XX. */
typedef int (*scan_fn)(void *arg, int subfd, const char *name, uint64_t id);

static int scan_sub(DIR *sub, scan_fn fn, void *arg)
{
	for (;;) {
		struct dirent *de;
		int ret;

		errno = 0;
		de = readdir(sub);
		if (!de)
			return errno ? -errno : 0;
		if (!is_hex_name(de->d_name, 16))
			continue;
		ret = fn(arg, dirfd(sub), de->d_name,
			 strtoull(de->d_name, NULL, 16));
		if (ret)
			return ret;
	}
}

/* Call fn for every pack file under dir; a non-zero return stops. */
static int scan_packs(const char *dir, scan_fn fn, void *arg)
{
	DIR *top, *sub;
	int fd, ret = 0;

	top = opendir(dir);
	if (!top)
		return -errno;
	for (;;) {
		struct dirent *de;

		errno = 0;
		de = readdir(top);
		if (!de) {
			ret = errno ? -errno : 0;
			break;
		}
		if (!is_hex_name(de->d_name, 2))
			continue;
		fd = openat(dirfd(top), de->d_name,
			    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOTDIR)
				continue;
			ret = -errno;
			break;
		}
		sub = fdopendir(fd);
		if (!sub) {
			ret = -errno;
			close(fd);
			break;
		}
		ret = scan_sub(sub, fn, arg);
		closedir(sub);
		if (ret)
			break;
	}
	closedir(top);
	return ret;
}

static int note_highest(void *arg, int subfd, const char *name, uint64_t id)
{
	uint64_t *highest = arg;

	(void)subfd;
	(void)name;
	*highest = STASH_MAX(*highest, id);
	return 0;
}

/* Highest id among dir/XX/<16 hex digits>, 0 when there is none. */
static int scan_highest(const char *dir, uint64_t *highest)
{
	*highest = 0;
	return scan_packs(dir, note_highest, highest);
}

int stash_packs_open(struct stash_packs **out, const char *dir,
		     const uint8_t key[STASH_KEY_LEN], uint64_t target_size)
{
	struct stash_packs *p;
	uint64_t highest;
	int ret, r;

	if (target_size == 0)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < PACK_FD_CACHE; i++)
		p->rfds[i].fd = -1;
	memcpy(p->key, key, STASH_KEY_LEN);
	p->target = target_size;
	p->dir = strdup(dir);
	if (!p->dir) {
		ret = -ENOMEM;
		goto err_free;
	}

	if (mkdir(dir, 0700) == 0) {
		ret = fsync_parent(dir);
		if (ret < 0)
			goto err_free;
	} else if (errno != EEXIST) {
		ret = -errno;
		stash_log(STASH_LOG_ERR, "packs: cannot create %s: %s", dir,
			  strerror(errno));
		goto err_free;
	}
	ret = scan_highest(dir, &highest);
	if (ret < 0) {
		stash_log(STASH_LOG_ERR, "packs: cannot scan %s: %s", dir,
			  strerror(-ret));
		goto err_free;
	}
	/* highest == UINT64_MAX wraps to 0, refused on the first append. */
	p->next_id = highest + 1;

	r = pthread_mutex_init(&p->sync_lock, NULL);
	if (r) {
		ret = -r;
		goto err_free;
	}
	r = pthread_mutex_init(&p->lock, NULL);
	if (r) {
		ret = -r;
		goto err_sync_lock;
	}
	r = pthread_mutex_init(&p->rlock, NULL);
	if (r) {
		ret = -r;
		goto err_lock;
	}
	*out = p;
	return 0;

err_lock:
	pthread_mutex_destroy(&p->lock);
err_sync_lock:
	pthread_mutex_destroy(&p->sync_lock);
err_free:
	stash_crypto_wipe(p->key, sizeof(p->key));
	free(p->dir);
	free(p);
	return ret;
}

/*
 * Create the next pack and write its header (p->lock held). The node for
 * the list of unsynced packs is allocated here so that finishing a pack
 * later never fails for want of memory after its data is on disk.
 */
static int start_pack(struct stash_packs *p)
{
	char path[PATH_MAX];
	uint8_t hdr[PACK_HDR_LEN];
	struct wpack *w;
	uint64_t id = 0;
	int fd = -1, ret;

	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	for (int tries = 0; tries < PACK_CREATE_TRIES; tries++) {
		id = p->next_id;
		if (id == 0) {
			ret = -EOVERFLOW;
			goto err;
		}
		ret = sub_path(path, sizeof(path), p->dir,
			       (unsigned)(id & 0xff));
		if (ret < 0)
			goto err;
		if (mkdir(path, 0700) == 0) {
			p->top_dirty = true;
		} else if (errno != EEXIST) {
			ret = -errno;
			goto err_log;
		}
		ret = pack_path(path, sizeof(path), p->dir, id);
		if (ret < 0)
			goto err;
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
			break;
		if (errno != EEXIST) {
			ret = -errno;
			goto err_log;
		}
		/* Not in the scan (wrong name case?): skip it, never touch. */
		p->next_id++;
	}
	if (fd < 0) {
		ret = -EEXIST;
		goto err_log;
	}
	p->next_id = id + 1;
	mark_sub_dirty(p, id);

	memcpy(hdr, PACK_MAGIC, PACK_MAGIC_LEN);
	stash_le32enc(hdr + 8, PACK_VERSION);
	stash_le32enc(hdr + 12, 0);
	stash_le64enc(hdr + 16, id);
	ret = stash_pwrite_all(fd, hdr, sizeof(hdr), 0);
	if (ret < 0) {
		close(fd);
		unlink(path);
		goto err_log;
	}
	w->id = id;
	w->fd = fd;
	p->cur = w;
	p->cur_off = PACK_HDR_LEN;
	p->cur_dirty = true;
	p->nents = 0;
	p->written += PACK_HDR_LEN;
	return 0;

err_log:
	stash_log(STASH_LOG_ERR, "packs: cannot create pack %016llx in %s: %s",
		  (unsigned long long)id, p->dir, strerror(-ret));
err:
	free(w);
	return ret;
}

/* Move the current pack to the list awaiting fsync (p->lock held). */
static void retire_pack(struct stash_packs *p)
{
	p->cur->next = p->done;
	p->done = p->cur;
	p->ndone++;
	p->cur = NULL;
	p->cur_dirty = false;
	p->nents = 0;
}

/*
 * Write the trailer of the current pack and retire it (p->lock held).
 * The pack is retired even when the trailer cannot be written: its chunks
 * are still referenced and must be synced, but it must not grow further.
 */
static int finish_pack(struct stash_packs *p)
{
	struct wpack *w = p->cur;
	size_t elen = p->nents * PACK_ENTRY_LEN;
	size_t tlen = STASH_NONCE_LEN + elen + STASH_TAG_LEN;
	uint8_t aad[PACK_AAD_LEN];
	uint8_t *buf, *q;
	int ret;

	buf = malloc(tlen + PACK_FOOTER_LEN);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	q = buf + STASH_NONCE_LEN;
	for (size_t i = 0; i < p->nents; i++, q += PACK_ENTRY_LEN) {
		const struct stash_pack_entry *e = &p->ents[i];

		memcpy(q, e->id, STASH_ID_LEN);
		stash_le64enc(q + STASH_ID_LEN, e->off);
		stash_le32enc(q + STASH_ID_LEN + 8, e->len);
		stash_le32enc(q + STASH_ID_LEN + 12, e->raw_len);
	}
	memcpy(aad, PACK_AAD_LABEL, PACK_AAD_LABEL_LEN);
	stash_le64enc(aad + PACK_AAD_LABEL_LEN, w->id);
	stash_le32enc(aad + PACK_AAD_LABEL_LEN + 8, (uint32_t)p->nents);
	ret = stash_crypto_random(buf, STASH_NONCE_LEN);
	if (ret < 0)
		goto out;
	ret = stash_crypto_seal(
		p->key, buf, aad, sizeof(aad), buf + STASH_NONCE_LEN, elen,
		buf + STASH_NONCE_LEN, buf + STASH_NONCE_LEN + elen);
	if (ret < 0)
		goto out;
	stash_le32enc(buf + tlen, (uint32_t)p->nents);
	stash_le32enc(buf + tlen + 4, (uint32_t)tlen);
	memcpy(buf + tlen + 8, PACK_END_MAGIC, PACK_MAGIC_LEN);

	ret = stash_pwrite_all(w->fd, buf, tlen + PACK_FOOTER_LEN, p->cur_off);
	if (ret < 0) {
		/* Leave no half trailer for a reader to trip on. */
		if (ftruncate(w->fd, (off_t)p->cur_off) < 0)
			stash_log(STASH_LOG_WARN,
				  "packs: cannot cut back pack %016llx: %s",
				  (unsigned long long)w->id, strerror(errno));
		goto out;
	}
	p->cur_off += tlen + PACK_FOOTER_LEN;
	p->written += tlen + PACK_FOOTER_LEN;
out:
	if (ret < 0)
		stash_log(STASH_LOG_ERR,
			  "packs: cannot write trailer of pack %016llx: %s",
			  (unsigned long long)w->id, strerror(-ret));
	free(buf);
	retire_pack(p);
	return ret;
}

int stash_packs_append(struct stash_packs *p, const uint8_t id[STASH_ID_LEN],
		       uint32_t raw_len, const void *sealed, uint32_t len,
		       struct stash_chunk_loc *loc)
{
	struct stash_pack_entry *e;
	bool flush = false;
	uint64_t off;
	int ret;

	if (len == 0)
		return -EINVAL;
	pthread_mutex_lock(&p->lock);
	if (!p->cur) {
		ret = start_pack(p);
		if (ret < 0)
			goto out;
	}
	if (p->nents == p->ents_cap) {
		size_t cap = p->ents_cap ? 2 * p->ents_cap : 64;

		e = reallocarray(p->ents, cap, sizeof(*e));
		if (!e) {
			ret = -ENOMEM;
			goto out;
		}
		p->ents = e;
		p->ents_cap = cap;
	}

	off = p->cur_off;
	ret = stash_pwrite_all(p->cur->fd, sealed, len, off);
	if (ret < 0) {
		stash_log(STASH_LOG_ERR,
			  "packs: cannot append to pack %016llx: %s",
			  (unsigned long long)p->cur->id, strerror(-ret));
		/*
		 * Cut off whatever part landed so the next chunk or the
		 * trailer follows the last good chunk. If even that fails,
		 * stop using this pack (it stays without a trailer).
		 */
		if (ftruncate(p->cur->fd, (off_t)off) < 0) {
			if (!p->deferred_err)
				p->deferred_err = -errno;
			stash_log(STASH_LOG_ERR,
				  "packs: cannot cut back pack %016llx, "
				  "leaving it without a trailer: %s",
				  (unsigned long long)p->cur->id,
				  strerror(errno));
			retire_pack(p);
		}
		goto out;
	}
	e = &p->ents[p->nents++];
	memcpy(e->id, id, STASH_ID_LEN);
	e->off = off;
	e->len = len;
	e->raw_len = raw_len;
	p->cur_off += len;
	p->written += len;
	p->cur_dirty = true;
	loc->pack = p->cur->id;
	loc->off = off;
	loc->len = len;

	/*
	 * The chunk is in place whatever happens to the trailer, so this
	 * append succeeds; a trailer failure is logged and reported by
	 * stash_packs_close.
	 */
	if (p->cur_off >= p->target || p->nents == PACK_MAX_ENTRIES) {
		int r = finish_pack(p);

		if (r < 0 && !p->deferred_err)
			p->deferred_err = r;
		flush = p->ndone >= PACK_MAX_UNSYNCED;
	}
out:
	pthread_mutex_unlock(&p->lock);
	/* A failure here is sticky and logged: the caller's next sync, which
	 * must come before anything refers to this chunk, reports it. */
	if (flush)
		stash_packs_sync(p);
	return ret;
}

/*
 * Find or open a read descriptor for pack. *slot is NULL when the cache
 * is full of descriptors in use: the caller then closes *fd itself.
 */
static int rfd_get(struct stash_packs *p, uint64_t pack, int *fd,
		   struct rfd **slot)
{
	char path[PATH_MAX];
	struct rfd *victim = NULL;
	int nfd, old = -1, ret;

	pthread_mutex_lock(&p->rlock);
	for (size_t i = 0; i < PACK_FD_CACHE; i++) {
		struct rfd *r = &p->rfds[i];

		if (r->fd >= 0 && !r->dead && r->pack == pack) {
			r->refs++;
			r->used = ++p->rclock;
			*fd = r->fd;
			*slot = r;
			pthread_mutex_unlock(&p->rlock);
			return 0;
		}
	}
	pthread_mutex_unlock(&p->rlock);

	/* open() outside the lock; another reader may race us to it. */
	ret = pack_path(path, sizeof(path), p->dir, pack);
	if (ret < 0)
		return ret;
	nfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nfd < 0)
		return -errno;

	pthread_mutex_lock(&p->rlock);
	for (size_t i = 0; i < PACK_FD_CACHE; i++) {
		struct rfd *r = &p->rfds[i];

		if (r->fd >= 0 && !r->dead && r->pack == pack) {
			r->refs++;
			r->used = ++p->rclock;
			*fd = r->fd;
			*slot = r;
			pthread_mutex_unlock(&p->rlock);
			close(nfd);
			return 0;
		}
		if (r->fd < 0) {
			if (!victim || victim->fd >= 0)
				victim = r;
		} else if (r->refs == 0 &&
			   (!victim ||
			    (victim->fd >= 0 && r->used < victim->used))) {
			victim = r;
		}
	}
	*fd = nfd;
	*slot = victim;
	if (victim) {
		old = victim->fd;
		victim->pack = pack;
		victim->fd = nfd;
		victim->refs = 1;
		victim->dead = false;
		victim->used = ++p->rclock;
	}
	pthread_mutex_unlock(&p->rlock);
	if (old >= 0)
		close(old);
	return 0;
}

static void rfd_put(struct stash_packs *p, int fd, struct rfd *slot)
{
	int old = -1;

	if (!slot) {
		close(fd);
		return;
	}
	pthread_mutex_lock(&p->rlock);
	if (--slot->refs == 0 && slot->dead) {
		old = slot->fd;
		slot->fd = -1;
		slot->dead = false;
	}
	pthread_mutex_unlock(&p->rlock);
	if (old >= 0)
		close(old);
}

int stash_packs_read(struct stash_packs *p, const struct stash_chunk_loc *loc,
		     void *buf)
{
	struct rfd *slot;
	int fd, ret;

	if (loc->off < PACK_HDR_LEN ||
	    loc->off > (uint64_t)INT64_MAX - loc->len)
		return -EINVAL;
	ret = rfd_get(p, loc->pack, &fd, &slot);
	if (ret < 0)
		return ret;
	ret = stash_pread_all(fd, buf, loc->len, loc->off);
	rfd_put(p, fd, slot);
	return ret;
}

int stash_packs_size(struct stash_packs *p, uint64_t pack, uint64_t *size)
{
	char path[PATH_MAX];
	struct stat sb;
	int ret = pack_path(path, sizeof(path), p->dir, pack);

	if (ret < 0)
		return ret;
	if (stat(path, &sb) < 0)
		return -errno;
	*size = (uint64_t)sb.st_size;
	return 0;
}

int stash_packs_sync(struct stash_packs *p)
{
	char path[PATH_MAX];
	uint8_t subs[sizeof(p->sub_dirty)];
	struct wpack *list, *w;
	bool top;
	int cur_fd = -1, ret = 0, r;

	pthread_mutex_lock(&p->sync_lock);
	pthread_mutex_lock(&p->lock);
	if (p->cur && p->cur_dirty) {
		/* A duplicate stays valid if the pack is finished meanwhile. */
		cur_fd = fcntl(p->cur->fd, F_DUPFD_CLOEXEC, 0);
		if (cur_fd < 0) {
			ret = -errno;
			pthread_mutex_unlock(&p->lock);
			goto out;
		}
		p->cur_dirty = false;
	}
	list = p->done;
	p->done = NULL;
	p->ndone = 0;
	top = p->top_dirty;
	p->top_dirty = false;
	memcpy(subs, p->sub_dirty, sizeof(subs));
	memset(p->sub_dirty, 0, sizeof(p->sub_dirty));
	pthread_mutex_unlock(&p->lock);

	while (list) {
		w = list;
		list = w->next;
		if (fsync(w->fd) < 0 && !ret) {
			ret = -errno;
			stash_log(STASH_LOG_ERR,
				  "packs: cannot fsync pack %016llx: %s",
				  (unsigned long long)w->id, strerror(errno));
		}
		close(w->fd);
		free(w);
	}
	if (cur_fd >= 0) {
		if (fsync(cur_fd) < 0 && !ret) {
			ret = -errno;
			stash_log(STASH_LOG_ERR,
				  "packs: cannot fsync the current pack: %s",
				  strerror(errno));
		}
		close(cur_fd);
	}
	for (unsigned sub = 0; sub < 256; sub++) {
		if (!(subs[sub / 8] & (1u << (sub % 8))))
			continue;
		r = sub_path(path, sizeof(path), p->dir, sub);
		if (r == 0)
			r = stash_fsync_dir(path);
		if (r < 0 && !ret) {
			ret = r;
			stash_log(STASH_LOG_ERR, "packs: cannot fsync %s: %s",
				  path, strerror(-r));
		}
	}
	if (top) {
		r = stash_fsync_dir(p->dir);
		if (r < 0 && !ret) {
			ret = r;
			stash_log(STASH_LOG_ERR, "packs: cannot fsync %s: %s",
				  p->dir, strerror(-r));
		}
	}
	/*
	 * After a failed fsync the kernel may have dropped the dirty pages
	 * and a retry can "succeed" without the data: once failed, stay
	 * failed. Later syncs still run, so finished packs do not pile up.
	 */
	if (!p->sync_err)
		p->sync_err = ret;
	ret = p->sync_err;
out:
	pthread_mutex_unlock(&p->sync_lock);
	return ret;
}

uint64_t stash_packs_bytes_written(struct stash_packs *p)
{
	uint64_t n;

	pthread_mutex_lock(&p->lock);
	n = p->written;
	pthread_mutex_unlock(&p->lock);
	return n;
}

/* Cut pack to its header (p->lock held): the file keeps its id taken. */
static int cut_to_header(const char *path)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, PACK_HDR_LEN) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int stash_packs_remove(struct stash_packs *p, uint64_t pack)
{
	char path[PATH_MAX];
	int old = -1, ret;

	ret = pack_path(path, sizeof(path), p->dir, pack);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&p->lock);
	if (p->cur && p->cur->id == pack) {
		ret = -EBUSY;
	} else if (pack + 1 == p->next_id) {
		/* The newest id: the next open must not give it out again. */
		ret = cut_to_header(path);
		if (ret == 0)
			ret = 1;
	} else if (unlink(path) < 0) {
		ret = -errno;
	} else {
		mark_sub_dirty(p, pack);
	}
	pthread_mutex_unlock(&p->lock);
	if (ret < 0)
		return ret;

	/* Readers in flight keep their descriptor until they are done. */
	pthread_mutex_lock(&p->rlock);
	for (size_t i = 0; i < PACK_FD_CACHE; i++) {
		struct rfd *r = &p->rfds[i];

		if (r->fd < 0 || r->dead || r->pack != pack)
			continue;
		if (r->refs == 0) {
			old = r->fd;
			r->fd = -1;
		} else {
			r->dead = true;
		}
	}
	pthread_mutex_unlock(&p->rlock);
	if (old >= 0)
		close(old);
	return ret;
}

int stash_packs_rollover(struct stash_packs *p, uint64_t *last)
{
	bool flush = false;

	pthread_mutex_lock(&p->lock);
	if (p->cur) {
		/* Retired whatever happens; a trailer failure is for close,
		 * as after an append. */
		int r = finish_pack(p);

		if (r < 0 && !p->deferred_err)
			p->deferred_err = r;
		flush = p->ndone >= PACK_MAX_UNSYNCED;
	}
	*last = p->next_id - 1;
	pthread_mutex_unlock(&p->lock);
	if (flush)
		stash_packs_sync(p);
	return 0;
}

struct list_args {
	int (*fn)(void *arg, uint64_t pack, uint64_t size);
	void *arg;
};

static int list_one(void *arg, int subfd, const char *name, uint64_t id)
{
	struct list_args *a = arg;
	struct stat sb;

	if (fstatat(subfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno; /* removed meanwhile */
	if (!S_ISREG(sb.st_mode))
		return 0;
	return a->fn(a->arg, id, (uint64_t)sb.st_size);
}

int stash_packs_list(struct stash_packs *p,
		     int (*fn)(void *arg, uint64_t pack, uint64_t size),
		     void *arg)
{
	struct list_args a = { fn, arg };

	return scan_packs(p->dir, list_one, &a);
}

int stash_packs_close(struct stash_packs *p)
{
	struct wpack *w;
	int ret, r = 0;

	if (!p)
		return 0;
	pthread_mutex_lock(&p->lock);
	if (p->cur)
		r = finish_pack(p);
	ret = p->deferred_err ? p->deferred_err : r;
	pthread_mutex_unlock(&p->lock);
	r = stash_packs_sync(p);
	if (!ret)
		ret = r;

	/* Left over only when the sync could not even start. */
	while (p->done) {
		w = p->done;
		p->done = w->next;
		close(w->fd);
		free(w);
	}
	for (size_t i = 0; i < PACK_FD_CACHE; i++)
		if (p->rfds[i].fd >= 0)
			close(p->rfds[i].fd);
	pthread_mutex_destroy(&p->rlock);
	pthread_mutex_destroy(&p->lock);
	pthread_mutex_destroy(&p->sync_lock);
	stash_crypto_wipe(p->key, sizeof(p->key));
	free(p->ents);
	free(p->dir);
	free(p);
	return ret;
}

/* Check that every entry lies in the body, in order, without overlap. */
static int check_entries(const uint8_t *ents, uint32_t count, uint64_t body_end)
{
	uint64_t prev_end = PACK_HDR_LEN;

	for (uint32_t i = 0; i < count; i++, ents += PACK_ENTRY_LEN) {
		uint64_t off = stash_le64dec(ents + STASH_ID_LEN);
		uint32_t len = stash_le32dec(ents + STASH_ID_LEN + 8);

		if (len == 0 || off < prev_end || off > body_end ||
		    len > body_end - off)
			return -EBADMSG;
		prev_end = off + len;
	}
	return 0;
}

int stash_packs_read_trailer(
	const char *dir, const uint8_t key[STASH_KEY_LEN], uint64_t pack,
	int (*fn)(void *arg, const struct stash_pack_entry *e), void *arg)
{
	char path[PATH_MAX];
	uint8_t hdr[PACK_HDR_LEN], foot[PACK_FOOTER_LEN], aad[PACK_AAD_LEN];
	uint8_t *buf = NULL, *plain = NULL;
	uint64_t size, tlen, elen, body_end;
	uint32_t count;
	struct stat st;
	int fd, ret;

	ret = pack_path(path, sizeof(path), dir, pack);
	if (ret < 0)
		return ret;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	size = (uint64_t)st.st_size;
	ret = -EBADMSG;
	if (size < PACK_HDR_LEN + PACK_SEAL_LEN + PACK_FOOTER_LEN)
		goto out;

	ret = stash_pread_all(fd, hdr, sizeof(hdr), 0);
	if (ret < 0)
		goto out;
	ret = -EBADMSG;
	if (memcmp(hdr, PACK_MAGIC, PACK_MAGIC_LEN) != 0 ||
	    stash_le32dec(hdr + 8) != PACK_VERSION ||
	    stash_le64dec(hdr + 16) != pack)
		goto out;

	ret = stash_pread_all(fd, foot, sizeof(foot), size - sizeof(foot));
	if (ret < 0)
		goto out;
	ret = -EBADMSG;
	if (memcmp(foot + 8, PACK_END_MAGIC, PACK_MAGIC_LEN) != 0)
		goto out;
	count = stash_le32dec(foot);
	tlen = stash_le32dec(foot + 4);
	elen = (uint64_t)count * PACK_ENTRY_LEN;
	/* The count and the length must agree, and the trailer must fit
	 * between the header and the footer. */
	if (tlen != PACK_SEAL_LEN + elen ||
	    tlen > size - PACK_HDR_LEN - PACK_FOOTER_LEN)
		goto out;
	body_end = size - PACK_FOOTER_LEN - tlen;

	buf = malloc(tlen);
	plain = malloc(elen ? elen : 1);
	if (!buf || !plain) {
		ret = -ENOMEM;
		goto out;
	}
	ret = stash_pread_all(fd, buf, tlen, body_end);
	if (ret < 0)
		goto out;
	memcpy(aad, PACK_AAD_LABEL, PACK_AAD_LABEL_LEN);
	stash_le64enc(aad + PACK_AAD_LABEL_LEN, pack);
	stash_le32enc(aad + PACK_AAD_LABEL_LEN + 8, count);
	ret = stash_crypto_open(key, buf, aad, sizeof(aad),
				buf + STASH_NONCE_LEN, elen, plain,
				buf + STASH_NONCE_LEN + elen);
	if (ret < 0)
		goto out;
	/* Authenticated, but check it all before fn sees any of it. */
	ret = check_entries(plain, count, body_end);
	if (ret < 0)
		goto out;

	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *q = plain + (size_t)i * PACK_ENTRY_LEN;
		struct stash_pack_entry e;

		memcpy(e.id, q, STASH_ID_LEN);
		e.off = stash_le64dec(q + STASH_ID_LEN);
		e.len = stash_le32dec(q + STASH_ID_LEN + 8);
		e.raw_len = stash_le32dec(q + STASH_ID_LEN + 12);
		ret = fn(arg, &e);
		if (ret != 0)
			break;
	}
out:
	if (ret == -EBADMSG)
		stash_log(STASH_LOG_DEBUG, "packs: no valid trailer in %s",
			  path);
	free(plain);
	free(buf);
	close(fd);
	return ret;
}
