/*
 * store.c - a store's lifecycle (init, open, close, the store lock and the
 * background flusher) and its namespace operations: entries, attributes,
 * links, renames and xattrs, each one catalog transaction.
 *
 * File data lives in file.c; the on-disk formats in chunk.c, packs.c,
 * sqlvfs.c and catalog.c.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "catalog_search.h"
#include "store_int.h"

const char *const stash_areas[] = { "articles", "files", "programs", NULL };

#define CACHE_BYTES (64u << 20)
#define FLUSH_INTERVAL_S 2
#define CHECKPOINT_COMMITS 512

static int path_join(char *out, size_t size, const char *dir, const char *name)
{
	if ((size_t)snprintf(out, size, "%s/%s", dir, name) >= size)
		return -ENAMETOOLONG;
	return 0;
}

static int check_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || strchr(name, '/'))
		return -EINVAL;
	if (len > STASH_NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

/* Snapshots are read-only: no change may name one of their inodes. */
static bool in_snapshot(uint64_t ino)
{
	return stash_ino_snap(ino) != 0;
}

bool stash_name_reserved(uint64_t parent, const char *name)
{
	static const char *const reserved[] = { ".backups", ".search",
						".stats" };

	if (parent != STASH_ROOT_INO)
		return false;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(reserved); i++)
		if (!strcmp(name, reserved[i]))
			return true;
	return false;
}

/* ---- init ---- */

/* 1 if the folder has no entries, 0 if it has, or -errno. */
static int dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int ret = 1;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			ret = 0;
			break;
		}
	}
	closedir(d);
	return ret;
}

static int open_store(struct stash_store **out, const char *path,
		      const struct stash_secret *secret, bool create);

int stash_store_init(const char *path, struct stash_config *cfg,
		     const struct stash_secret *secret)
{
	struct stash_keys keys;
	struct stash_store *st = NULL;
	char sub[4096];
	int ret;

	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	ret = path_join(sub, sizeof(sub), path, "stashfs.json");
	if (ret)
		return ret;
	if (access(sub, F_OK) == 0)
		return -EEXIST;
	ret = dir_is_empty(path);
	if (ret < 0)
		return ret;
	if (ret == 0)
		return -ENOTEMPTY;
	ret = stash_config_new_master(cfg, secret, &keys);
	if (ret)
		return ret;
	stash_keys_wipe(&keys);
	ret = path_join(sub, sizeof(sub), path, "packs");
	if (!ret && mkdir(sub, 0700) < 0 && errno != EEXIST)
		ret = -errno;
	if (!ret)
		ret = stash_config_save(path, cfg);
	if (ret)
		return ret;

	/* Open once to create the catalog and the areas. */
	ret = open_store(&st, path, secret, true);
	if (ret)
		return ret;
	for (int i = 0; stash_areas[i] && !ret; i++) {
		struct stash_attr a;

		ret = stash_store_mkdir(st, STASH_ROOT_INO, stash_areas[i],
					0755, getuid(), getgid(), &a);
	}
	if (ret) {
		stash_store_close(st);
		return ret;
	}
	return stash_store_close(st);
}

/* ---- open and close ---- */

static void *flusher_main(void *arg);

static int take_lock(struct stash_store *st)
{
	char path[4096];
	int ret = path_join(path, sizeof(path), st->path, "lock");

	if (ret)
		return ret;
	st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (st->lock_fd < 0)
		return -errno;
	if (flock(st->lock_fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	return 0;
}

/*
 * Write the holder's pid into the lock file, for people and scripts
 * looking for the daemon. Only once the secret is known to be right: a
 * refused open must leave the store folder as it was.
 */
static int note_pid(struct stash_store *st)
{
	char pid[24];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());

	if (ftruncate(st->lock_fd, 0) < 0)
		return -errno;
	return stash_pwrite_all(st->lock_fd, pid, (size_t)n, 0);
}

/* create: make the catalog; else a missing catalog is damage, not a
 * store to start afresh. */
static int open_store(struct stash_store **out, const char *path,
		      const struct stash_secret *secret, bool create)
{
	struct stash_store *st = calloc(1, sizeof(*st));
	char sub[4096];
	int ret;

	if (!st)
		return -ENOMEM;
	st->lock_fd = -1;
	pthread_mutex_init(&st->cat_lock, NULL);
	pthread_mutex_init(&st->files_lock, NULL);
	pthread_mutex_init(&st->pending_lock, NULL);
	pthread_mutex_init(&st->flusher_lock, NULL);
	pthread_cond_init(&st->flusher_cond, NULL);
	pthread_cond_init(&st->autosnap_cond, NULL);
	pthread_mutex_init(&st->index_lock, NULL);
	pthread_cond_init(&st->index_cond, NULL);
	st->path = strdup(path);
	if (!st->path) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = stash_config_load(path, &st->cfg);
	if (ret)
		goto fail;
	ret = take_lock(st);
	if (ret)
		goto fail;
	ret = stash_config_unlock(&st->cfg, secret, &st->keys);
	if (ret)
		goto fail;
	ret = note_pid(st);
	if (ret)
		goto fail;
	ret = stash_chunker_new(&st->chunker, &st->cfg.chunker, st->keys.gear);
	if (ret)
		goto fail;
	ret = stash_cache_new(&st->cache, CACHE_BYTES);
	if (ret)
		goto fail;
	ret = path_join(sub, sizeof(sub), path, "catalog.db");
	if (ret)
		goto fail;
	ret = stash_cat_open(&st->cat, sub, st->keys.catalog, create);
	if (ret == -ENOENT) {
		stash_log(STASH_LOG_ERR, "%s is missing: the store is damaged",
			  sub);
		ret = -EBADMSG;
	}
	if (ret)
		goto fail;
	ret = path_join(sub, sizeof(sub), path, "packs");
	if (!ret)
		ret = stash_packs_open(&st->packs, sub, st->keys.trailer,
				       st->cfg.pack_size);
	if (ret)
		goto fail;
	ret = stash_pool_new(&st->pool, 0, 8);
	if (ret)
		goto fail;

	/* Inodes left without a name by a crash are dropped now. */
	ret = stash_cat_begin(st->cat);
	if (!ret)
		ret = stash_cat_purge_orphans(st->cat);
	if (!ret)
		ret = stash_cat_commit(st->cat, 1);
	if (ret) {
		stash_cat_rollback(st->cat);
		goto fail;
	}

	ret = -pthread_create(&st->flusher, NULL, flusher_main, st);
	if (ret)
		goto fail;
	st->flusher_running = true;
	*out = st;
	return 0;
fail:
	stash_store_close(st);
	return ret;
}

int stash_store_open(struct stash_store **out, const char *path,
		     const struct stash_secret *secret)
{
	return open_store(out, path, secret, false);
}

int stash_store_sync_all(struct stash_store *st)
{
	int ret;

	pthread_mutex_lock(&st->cat_lock);
	ret = stash_packs_sync(st->packs);
	if (!ret)
		ret = stash_cat_checkpoint(st->cat);
	pthread_mutex_unlock(&st->cat_lock);
	return ret;
}

/*
 * Catalog commits reference pack data that has been written but perhaps
 * not synced. The flusher syncs the packs, then checkpoints, every few
 * seconds, so that after a power cut (not just a crash of the daemon) the
 * window of data that may be lost stays small. fsync() needs no flusher.
 */
static void *flusher_main(void *arg)
{
	struct stash_store *st = arg;
	struct timespec ts;

	pthread_mutex_lock(&st->flusher_lock);
	while (!st->flusher_stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += FLUSH_INTERVAL_S;
		pthread_cond_timedwait(&st->flusher_cond, &st->flusher_lock,
				       &ts);
		if (st->flusher_stop || st->commits == 0)
			continue;
		st->commits = 0;
		pthread_mutex_unlock(&st->flusher_lock);
		if (stash_store_sync_all(st))
			stash_log(STASH_LOG_ERR, "periodic sync failed");
		pthread_mutex_lock(&st->flusher_lock);
	}
	pthread_mutex_unlock(&st->flusher_lock);
	return NULL;
}

void stash_store_note_commit(struct stash_store *st)
{
	pthread_mutex_lock(&st->flusher_lock);
	st->commits++;
	pthread_mutex_unlock(&st->flusher_lock);
	if (st->index_running)
		stash_index_kick(st);
}

int stash_store_close(struct stash_store *st)
{
	int ret = 0, err;

	if (!st)
		return 0;
	stash_snap_auto_stop(st);
	stash_index_stop(st);
	if (st->flusher_running) {
		pthread_mutex_lock(&st->flusher_lock);
		st->flusher_stop = true;
		pthread_cond_signal(&st->flusher_cond);
		pthread_mutex_unlock(&st->flusher_lock);
		pthread_join(st->flusher, NULL);
	}
	/* Files still open (a forced unmount) are committed, then freed. */
	for (size_t b = 0; b < FILE_BUCKETS; b++) {
		while (st->files[b]) {
			struct stash_file *f = st->files[b];

			err = stash_file_put(st, f);
			if (err && !ret)
				ret = err;
		}
	}
	stash_pool_free(st->pool);
	if (st->packs) {
		err = stash_packs_close(st->packs);
		if (err && !ret)
			ret = err;
	}
	if (st->cat) {
		err = stash_cat_checkpoint(st->cat);
		if (err && !ret)
			ret = err;
		err = stash_cat_close(st->cat);
		if (err && !ret)
			ret = err;
	}
	stash_pending_clear(st);
	stash_cache_free(st->cache);
	stash_chunker_free(st->chunker);
	stash_keys_wipe(&st->keys);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	pthread_mutex_destroy(&st->cat_lock);
	pthread_mutex_destroy(&st->files_lock);
	pthread_mutex_destroy(&st->pending_lock);
	pthread_mutex_destroy(&st->flusher_lock);
	pthread_cond_destroy(&st->flusher_cond);
	pthread_cond_destroy(&st->autosnap_cond);
	pthread_mutex_destroy(&st->index_lock);
	pthread_cond_destroy(&st->index_cond);
	free(st->path);
	free(st);
	return ret;
}

/* ---- namespace ---- */

/*
 * A regular file's names changed: its documents go and it is queued for
 * the indexer (name and area are part of them), or, when its last name
 * went, they just go.
 */
static int reindex(struct stash_store *st, const struct stash_attr *a)
{
	if (!S_ISREG(a->mode))
		return 0;
	return a->nlink ? stash_cat_index_touch(st->cat, a->ino)
			: stash_cat_index_forget(st->cat, a->ino);
}

int stash_store_in_txn(struct stash_store *st,
		       int (*fn)(struct stash_store *, void *), void *arg)
{
	int ret;

	pthread_mutex_lock(&st->cat_lock);
	ret = stash_cat_begin(st->cat);
	if (!ret) {
		ret = fn(st, arg);
		if (!ret)
			ret = stash_cat_commit(st->cat, 0);
		if (ret)
			stash_cat_rollback(st->cat);
	}
	pthread_mutex_unlock(&st->cat_lock);
	if (!ret)
		stash_store_note_commit(st);
	return ret;
}

int stash_store_getattr(struct stash_store *st, uint64_t ino,
			struct stash_attr *out)
{
	int ret;

	pthread_mutex_lock(&st->cat_lock);
	ret = stash_cat_getattr(st->cat, ino, out);
	pthread_mutex_unlock(&st->cat_lock);
	if (!ret && S_ISREG(out->mode))
		stash_file_overlay(st, out);
	return ret;
}

int stash_store_lookup(struct stash_store *st, uint64_t parent,
		       const char *name, struct stash_attr *out)
{
	int ret = check_name(name);

	if (ret)
		return ret == -EINVAL ? -ENOENT : ret;
	pthread_mutex_lock(&st->cat_lock);
	ret = stash_cat_lookup(st->cat, parent, name, out);
	pthread_mutex_unlock(&st->cat_lock);
	if (!ret && S_ISREG(out->mode))
		stash_file_overlay(st, out);
	return ret;
}

struct create_args {
	uint64_t parent;
	const char *name;
	const char *target;	 /* symlinks */
	struct stash_attr *attr; /* in: mode, uid, gid, rdev; out: all */
};

static int do_create(struct stash_store *st, void *arg)
{
	struct create_args *a = arg;
	struct stash_attr parent;
	int64_t now = stash_wall_ns();
	int ret;

	ret = stash_cat_getattr(st->cat, a->parent, &parent);
	if (ret)
		return ret;
	if (!S_ISDIR(parent.mode))
		return -ENOTDIR;
	if (parent.nlink == 0)
		return -ENOENT; /* removed directory */
	/* BSD group semantics of setgid directories. */
	if (parent.mode & S_ISGID) {
		a->attr->gid = parent.gid;
		if (S_ISDIR(a->attr->mode))
			a->attr->mode |= S_ISGID;
	}
	a->attr->atime = a->attr->mtime = a->attr->ctime = now;
	a->attr->nlink = S_ISDIR(a->attr->mode) ? 2 : 1;
	a->attr->size = a->target ? strlen(a->target) : 0;
	ret = stash_cat_create_inode(st->cat, a->attr, a->target);
	if (!ret)
		ret = stash_cat_add_dirent(st->cat, a->parent, a->name,
					   a->attr->ino);
	if (!ret)
		ret = reindex(st, a->attr);
	if (ret)
		return ret;
	if (S_ISDIR(a->attr->mode))
		parent.nlink++;
	parent.mtime = parent.ctime = now;
	return stash_cat_setattr(st->cat, &parent);
}

static int create_node(struct stash_store *st, uint64_t parent,
		       const char *name, const char *target,
		       struct stash_attr *attr)
{
	struct create_args a = { parent, name, target, attr };
	int ret = check_name(name);

	if (ret)
		return ret;
	if (in_snapshot(parent))
		return -EROFS;
	if (stash_name_reserved(parent, name))
		return -EEXIST;
	return stash_store_in_txn(st, do_create, &a);
}

int stash_store_mknod(struct stash_store *st, uint64_t parent, const char *name,
		      uint32_t mode, uint64_t rdev, uint32_t uid, uint32_t gid,
		      struct stash_attr *out)
{
	if (S_ISDIR(mode) || S_ISLNK(mode))
		return -EINVAL;
	if (!(mode & S_IFMT))
		mode |= S_IFREG;
	*out = (struct stash_attr){
		.mode = mode, .uid = uid, .gid = gid, .rdev = rdev
	};
	return create_node(st, parent, name, NULL, out);
}

int stash_store_mkdir(struct stash_store *st, uint64_t parent, const char *name,
		      uint32_t mode, uint32_t uid, uint32_t gid,
		      struct stash_attr *out)
{
	*out = (struct stash_attr){ .mode = S_IFDIR | (mode & 07777),
				    .uid = uid,
				    .gid = gid };
	return create_node(st, parent, name, NULL, out);
}

int stash_store_symlink(struct stash_store *st, uint64_t parent,
			const char *name, const char *target, uint32_t uid,
			uint32_t gid, struct stash_attr *out)
{
	size_t len = strlen(target);

	if (len == 0)
		return -ENOENT;
	if (len >= 4096)
		return -ENAMETOOLONG;
	*out = (struct stash_attr){ .mode = S_IFLNK | 0777,
				    .uid = uid,
				    .gid = gid };
	return create_node(st, parent, name, target, out);
}

struct link_args {
	uint64_t ino, newparent;
	const char *newname;
	struct stash_attr *out;
};

static int do_link(struct stash_store *st, void *arg)
{
	struct link_args *a = arg;
	struct stash_attr parent;
	int64_t now = stash_wall_ns();
	int ret;

	ret = stash_cat_getattr(st->cat, a->ino, a->out);
	if (ret)
		return ret;
	if (S_ISDIR(a->out->mode))
		return -EPERM;
	ret = stash_cat_getattr(st->cat, a->newparent, &parent);
	if (ret)
		return ret;
	if (!S_ISDIR(parent.mode))
		return -ENOTDIR;
	ret = stash_cat_add_dirent(st->cat, a->newparent, a->newname, a->ino);
	if (ret)
		return ret;
	a->out->nlink++;
	a->out->ctime = now;
	ret = stash_cat_setattr(st->cat, a->out);
	if (ret)
		return ret;
	parent.mtime = parent.ctime = now;
	return stash_cat_setattr(st->cat, &parent);
}

int stash_store_link(struct stash_store *st, uint64_t ino, uint64_t newparent,
		     const char *newname, struct stash_attr *out)
{
	struct link_args a = { ino, newparent, newname, out };
	int ret = check_name(newname);

	if (ret)
		return ret;
	if (in_snapshot(ino) || in_snapshot(newparent))
		return -EROFS;
	if (stash_name_reserved(newparent, newname))
		return -EEXIST;
	ret = stash_store_in_txn(st, do_link, &a);
	if (!ret && S_ISREG(out->mode))
		stash_file_overlay(st, out);
	return ret;
}

/*
 * Drop one link to inode *victim (already unlinked from its directory).
 * The inode goes when no link is left and no handle has it open; an open
 * one stays (nlink 0) until its last release. files_lock is held.
 */
static int drop_link(struct stash_store *st, struct stash_attr *victim,
		     int64_t now)
{
	if (S_ISDIR(victim->mode))
		victim->nlink = 0;
	else if (victim->nlink > 0)
		victim->nlink--;
	victim->ctime = now;
	if (victim->nlink == 0 && !stash_file_find_locked(st, victim->ino))
		return stash_cat_delete_inode(st->cat, victim->ino);
	return stash_cat_setattr(st->cat, victim);
}

struct remove_args {
	uint64_t parent;
	const char *name;
	bool dir;
};

static int do_remove(struct stash_store *st, void *arg)
{
	struct remove_args *a = arg;
	struct stash_attr victim, parent;
	int64_t now = stash_wall_ns();
	int ret;

	ret = stash_cat_lookup(st->cat, a->parent, a->name, &victim);
	if (ret)
		return ret;
	if (a->dir) {
		if (!S_ISDIR(victim.mode))
			return -ENOTDIR;
		ret = stash_cat_dir_is_empty(st->cat, victim.ino);
		if (ret < 0)
			return ret;
		if (ret == 0)
			return -ENOTEMPTY;
	} else if (S_ISDIR(victim.mode)) {
		return -EISDIR;
	}
	ret = stash_cat_getattr(st->cat, a->parent, &parent);
	if (!ret)
		ret = stash_cat_del_dirent(st->cat, a->parent, a->name);
	if (!ret)
		ret = drop_link(st, &victim, now);
	if (!ret)
		ret = reindex(st, &victim);
	if (ret)
		return ret;
	if (a->dir)
		parent.nlink--;
	parent.mtime = parent.ctime = now;
	return stash_cat_setattr(st->cat, &parent);
}

static int remove_entry(struct stash_store *st, uint64_t parent,
			const char *name, bool dir)
{
	struct remove_args a = { parent, name, dir };
	int ret = check_name(name);

	if (ret)
		return ret == -EINVAL ? -ENOENT : ret;
	if (in_snapshot(parent))
		return -EROFS;
	/* files_lock first: whether the inode is open must not change. */
	pthread_mutex_lock(&st->files_lock);
	ret = stash_store_in_txn(st, do_remove, &a);
	pthread_mutex_unlock(&st->files_lock);
	return ret;
}

int stash_store_unlink(struct stash_store *st, uint64_t parent,
		       const char *name)
{
	return remove_entry(st, parent, name, false);
}

int stash_store_rmdir(struct stash_store *st, uint64_t parent, const char *name)
{
	if (!strcmp(name, "."))
		return -EINVAL;
	if (!strcmp(name, ".."))
		return -ENOTEMPTY;
	return remove_entry(st, parent, name, true);
}

struct rename_args {
	uint64_t parent, newparent;
	const char *name, *newname;
	unsigned flags;
};

/* Is ancestor an ancestor of (or equal to) dir? Walks up by dirents. */
static int is_ancestor(struct stash_cat *cat, uint64_t ancestor, uint64_t dir);

static int do_rename(struct stash_store *st, void *arg)
{
	struct rename_args *a = arg;
	struct stash_attr src, dst, parent, newparent;
	int64_t now = stash_wall_ns();
	int dparent = 0, dnewparent = 0; /* changes to the link counts */
	bool have_dst;
	int ret;

	ret = stash_cat_lookup(st->cat, a->parent, a->name, &src);
	if (ret)
		return ret;
	ret = stash_cat_lookup(st->cat, a->newparent, a->newname, &dst);
	if (ret && ret != -ENOENT)
		return ret;
	have_dst = ret == 0;
	if ((a->flags & STASH_RENAME_NOREPLACE) && have_dst)
		return -EEXIST;
	if ((a->flags & STASH_RENAME_EXCHANGE) && !have_dst)
		return -ENOENT;
	if (have_dst && dst.ino == src.ino)
		return 0; /* two links to one inode: POSIX says do nothing */
	ret = stash_cat_getattr(st->cat, a->parent, &parent);
	if (!ret)
		ret = stash_cat_getattr(st->cat, a->newparent, &newparent);
	if (ret)
		return ret;
	if (!S_ISDIR(newparent.mode))
		return -ENOTDIR;
	/* A directory cannot move below itself. */
	if (S_ISDIR(src.mode) && a->parent != a->newparent) {
		ret = is_ancestor(st->cat, src.ino, a->newparent);
		if (ret)
			return ret < 0 ? ret : -EINVAL;
	}
	if ((a->flags & STASH_RENAME_EXCHANGE) && S_ISDIR(dst.mode) &&
	    a->parent != a->newparent) {
		ret = is_ancestor(st->cat, dst.ino, a->parent);
		if (ret)
			return ret < 0 ? ret : -EINVAL;
	}

	if (a->flags & STASH_RENAME_EXCHANGE) {
		ret = stash_cat_set_dirent(st->cat, a->parent, a->name,
					   dst.ino);
		if (!ret)
			ret = stash_cat_set_dirent(st->cat, a->newparent,
						   a->newname, src.ino);
		if (ret)
			return ret;
		if (S_ISDIR(src.mode) != S_ISDIR(dst.mode)) {
			int d = S_ISDIR(src.mode) ? 1 : -1;

			dparent -= d;
			dnewparent += d;
		}
		dst.ctime = now;
		ret = stash_cat_setattr(st->cat, &dst);
		if (!ret)
			ret = reindex(st, &dst);
		if (ret)
			return ret;
	} else {
		if (have_dst) {
			if (S_ISDIR(src.mode) && !S_ISDIR(dst.mode))
				return -ENOTDIR;
			if (!S_ISDIR(src.mode) && S_ISDIR(dst.mode))
				return -EISDIR;
			if (S_ISDIR(dst.mode)) {
				ret = stash_cat_dir_is_empty(st->cat, dst.ino);
				if (ret <= 0)
					return ret < 0 ? ret : -ENOTEMPTY;
				dnewparent--;
			}
			ret = stash_cat_del_dirent(st->cat, a->newparent,
						   a->newname);
			if (!ret)
				ret = drop_link(st, &dst, now);
			if (!ret)
				ret = reindex(st, &dst);
			if (ret)
				return ret;
		}
		ret = stash_cat_move_dirent(st->cat, a->parent, a->name,
					    a->newparent, a->newname);
		if (ret)
			return ret;
		if (S_ISDIR(src.mode)) {
			dparent--;
			dnewparent++;
		}
	}
	src.ctime = now;
	ret = stash_cat_setattr(st->cat, &src);
	if (!ret)
		ret = reindex(st, &src);
	if (ret)
		return ret;
	parent.mtime = parent.ctime = now;
	if (a->parent == a->newparent) {
		parent.nlink =
			(uint32_t)((int)parent.nlink + dparent + dnewparent);
		return stash_cat_setattr(st->cat, &parent);
	}
	parent.nlink = (uint32_t)((int)parent.nlink + dparent);
	newparent.nlink = (uint32_t)((int)newparent.nlink + dnewparent);
	newparent.mtime = newparent.ctime = now;
	ret = stash_cat_setattr(st->cat, &parent);
	if (!ret)
		ret = stash_cat_setattr(st->cat, &newparent);
	return ret;
}

static int is_ancestor(struct stash_cat *cat, uint64_t ancestor, uint64_t dir)
{
	int ret;

	/* Walk up from dir: each directory has exactly one entry. */
	for (int depth = 0; depth < 4096; depth++) {
		if (dir == ancestor)
			return 1;
		if (dir == STASH_ROOT_INO)
			return 0;
		ret = stash_cat_parent_of(cat, dir, &dir);
		if (ret)
			return ret;
	}
	return -ELOOP;
}

int stash_store_rename(struct stash_store *st, uint64_t parent,
		       const char *name, uint64_t newparent,
		       const char *newname, unsigned flags)
{
	struct rename_args a = { parent, newparent, name, newname, flags };
	int ret;

	if ((flags & STASH_RENAME_NOREPLACE) && (flags & STASH_RENAME_EXCHANGE))
		return -EINVAL;
	ret = check_name(name);
	if (!ret)
		ret = check_name(newname);
	if (ret)
		return ret;
	if (in_snapshot(parent) || in_snapshot(newparent))
		return -EROFS;
	if (stash_name_reserved(newparent, newname))
		return -EEXIST;
	pthread_mutex_lock(&st->files_lock);
	ret = stash_store_in_txn(st, do_rename, &a);
	pthread_mutex_unlock(&st->files_lock);
	return ret;
}

ssize_t stash_store_readlink(struct stash_store *st, uint64_t ino, char *buf,
			     size_t size)
{
	ssize_t ret;

	pthread_mutex_lock(&st->cat_lock);
	ret = stash_cat_readlink(st->cat, ino, buf, size);
	pthread_mutex_unlock(&st->cat_lock);
	return ret;
}

int stash_store_readdir(struct stash_store *st, uint64_t ino, uint64_t off,
			stash_cat_dirent_fn fn, void *arg)
{
	struct stash_attr a;
	int ret;

	pthread_mutex_lock(&st->cat_lock);
	ret = stash_cat_getattr(st->cat, ino, &a);
	if (!ret && !S_ISDIR(a.mode))
		ret = -ENOTDIR;
	if (!ret)
		ret = stash_cat_readdir(st->cat, ino, off, fn, arg);
	pthread_mutex_unlock(&st->cat_lock);
	return ret;
}

struct setattr_args {
	uint64_t ino;
	const struct stash_attr *in;
	unsigned valid;
	struct stash_attr *out;
};

static int do_setattr(struct stash_store *st, void *arg)
{
	struct setattr_args *a = arg;
	struct stash_attr *o = a->out;
	int ret = stash_cat_getattr(st->cat, a->ino, o);

	if (ret)
		return ret;
	if (a->valid & STASH_SET_MODE)
		o->mode = (o->mode & S_IFMT) | (a->in->mode & 07777);
	if (a->valid & STASH_SET_UID)
		o->uid = a->in->uid;
	if (a->valid & STASH_SET_GID)
		o->gid = a->in->gid;
	if (a->valid & STASH_SET_ATIME)
		o->atime = a->in->atime;
	if (a->valid & STASH_SET_MTIME)
		o->mtime = a->in->mtime;
	o->ctime =
		(a->valid & STASH_SET_CTIME) ? a->in->ctime : stash_wall_ns();
	return stash_cat_setattr(st->cat, o);
}

int stash_store_setattr(struct stash_store *st, uint64_t ino,
			const struct stash_attr *in, unsigned valid,
			struct stash_attr *out)
{
	struct setattr_args a = { ino, in, valid, out };
	struct stash_file *f = NULL;
	int ret;

	if (in_snapshot(ino))
		return -EROFS;
	ret = stash_store_getattr(st, ino, out);
	if (ret)
		return ret;
	if (S_ISREG(out->mode)) {
		/* Data first: then the times set here are the last word. */
		ret = stash_file_get(st, ino, &f);
		if (ret)
			return ret;
		if (valid & STASH_SET_SIZE)
			ret = stash_file_truncate(st, f, in->size);
		else
			ret = stash_file_commit(st, f, 0);
		if (ret)
			goto out;
	} else if (valid & STASH_SET_SIZE) {
		return S_ISDIR(out->mode) ? -EISDIR : -EINVAL;
	}
	ret = stash_store_in_txn(st, do_setattr, &a);
	if (!ret && f)
		stash_file_set_times(f, out);
out:
	if (f) {
		int err = stash_file_put(st, f);

		if (!ret)
			ret = err;
	}
	if (!ret && S_ISREG(out->mode))
		stash_file_overlay(st, out);
	return ret;
}

/* ---- xattrs ---- */

struct xattr_args {
	uint64_t ino;
	const char *name;
	const void *value;
	size_t len;
	int flags;
	bool remove;
};

static int do_xattr(struct stash_store *st, void *arg)
{
	struct xattr_args *a = arg;
	struct stash_attr attr;
	int ret = stash_cat_getattr(st->cat, a->ino, &attr);

	if (ret)
		return ret;
	ret = a->remove ? stash_cat_removexattr(st->cat, a->ino, a->name)
			: stash_cat_setxattr(st->cat, a->ino, a->name, a->value,
					     a->len, a->flags);
	if (ret)
		return ret;
	attr.ctime = stash_wall_ns();
	return stash_cat_setattr(st->cat, &attr);
}

/*
 * POSIX ACLs (system.posix_acl_*) are not supported: refusing them makes
 * cp, rsync and tar fall back to the mode bits, which the kernel enforces,
 * rather than store ACLs nobody would enforce.
 */
static int check_xattr_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0)
		return -EINVAL;
	if (len > XATTR_NAME_MAX)
		return -ERANGE;
	if (!strncmp(name, "system.", 7))
		return -EOPNOTSUPP;
	return 0;
}

int stash_store_setxattr(struct stash_store *st, uint64_t ino, const char *name,
			 const void *value, size_t len, int flags)
{
	struct xattr_args a = { ino, name, value, len, flags, false };
	int ret = check_xattr_name(name);

	if (ret)
		return ret;
	if (in_snapshot(ino))
		return -EROFS;
	if (len > XATTR_SIZE_MAX)
		return -E2BIG;
	return stash_store_in_txn(st, do_xattr, &a);
}

ssize_t stash_store_getxattr(struct stash_store *st, uint64_t ino,
			     const char *name, void *buf, size_t size)
{
	ssize_t ret = check_xattr_name(name);

	if (ret)
		return ret;
	pthread_mutex_lock(&st->cat_lock);
	ret = stash_cat_getxattr(st->cat, ino, name, buf, size);
	pthread_mutex_unlock(&st->cat_lock);
	return ret;
}

ssize_t stash_store_listxattr(struct stash_store *st, uint64_t ino, char *buf,
			      size_t size)
{
	ssize_t ret;

	pthread_mutex_lock(&st->cat_lock);
	ret = stash_cat_listxattr(st->cat, ino, buf, size);
	pthread_mutex_unlock(&st->cat_lock);
	return ret;
}

int stash_store_removexattr(struct stash_store *st, uint64_t ino,
			    const char *name)
{
	struct xattr_args a = { ino, name, NULL, 0, 0, true };
	int ret = check_xattr_name(name);

	if (ret)
		return ret;
	if (in_snapshot(ino))
		return -EROFS;
	return stash_store_in_txn(st, do_xattr, &a);
}

/* ---- figures ---- */

int stash_store_statfs(struct stash_store *st, struct statvfs *out)
{
	struct statvfs disk;

	if (statvfs(st->path, &disk) < 0)
		return -errno;
	/* Space and inodes are the disk's: what the store can grow into. */
	memset(out, 0, sizeof(*out));
	out->f_bsize = 4096;
	out->f_frsize = 4096;
	out->f_blocks = disk.f_blocks * disk.f_frsize / 4096;
	out->f_bfree = disk.f_bfree * disk.f_frsize / 4096;
	out->f_bavail = disk.f_bavail * disk.f_frsize / 4096;
	out->f_files = disk.f_files;
	out->f_ffree = disk.f_ffree;
	out->f_favail = disk.f_favail;
	out->f_namemax = STASH_NAME_MAX;
	return 0;
}

static uint64_t dir_bytes(const char *path, int depth)
{
	uint64_t total = 0;
	char sub[4096];
	DIR *d;
	struct dirent *e;

	if (depth > 4 || !(d = opendir(path)))
		return 0;
	while ((e = readdir(d))) {
		struct stat sb;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (path_join(sub, sizeof(sub), path, e->d_name) ||
		    lstat(sub, &sb) < 0)
			continue;
		if (S_ISDIR(sb.st_mode))
			total += dir_bytes(sub, depth + 1);
		else
			total += (uint64_t)sb.st_size;
	}
	closedir(d);
	return total;
}

int stash_store_stats(struct stash_store *st, struct stash_store_stats *out)
{
	struct stash_cache_stats cs;
	int ret;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&st->cat_lock);
	ret = stash_cat_stats(st->cat, &out->cat);
	pthread_mutex_unlock(&st->cat_lock);
	if (ret)
		return ret;
	stash_cache_stats(st->cache, &cs);
	out->cache_hits = cs.hits;
	out->cache_misses = cs.misses;
	out->store_bytes = dir_bytes(st->path, 0);
	out->bytes_written = atomic_load(&st->bytes_written);
	out->bytes_read = atomic_load(&st->bytes_read);
	out->chunks_written = atomic_load(&st->chunks_written);
	out->chunks_deduped = atomic_load(&st->chunks_deduped);
	return 0;
}

static double ratio(uint64_t a, uint64_t b)
{
	return b ? (double)a / (double)b : 0.0;
}

int stash_store_stats_json(struct stash_store *st, char **out)
{
	struct stash_store_stats s;
	cJSON *root;
	int ret = stash_store_stats(st, &s);

	if (ret)
		return ret;
	root = cJSON_CreateObject();
	if (!root)
		return -ENOMEM;
	cJSON_AddNumberToObject(root, "logical_bytes",
				(double)s.cat.logical_bytes);
	cJSON_AddNumberToObject(root, "unique_bytes",
				(double)s.cat.chunk_raw_bytes);
	cJSON_AddNumberToObject(root, "stored_bytes",
				(double)s.cat.chunk_stored_bytes);
	cJSON_AddNumberToObject(root, "store_folder_bytes",
				(double)s.store_bytes);
	cJSON_AddNumberToObject(
		root, "dedup_ratio",
		ratio(s.cat.logical_bytes, s.cat.chunk_raw_bytes));
	cJSON_AddNumberToObject(
		root, "compression_ratio",
		ratio(s.cat.chunk_raw_bytes, s.cat.chunk_stored_bytes));
	cJSON_AddNumberToObject(root, "files", (double)s.cat.files);
	cJSON_AddNumberToObject(root, "inodes", (double)s.cat.inodes);
	cJSON_AddNumberToObject(root, "chunks", (double)s.cat.chunks);
	cJSON_AddNumberToObject(root, "packs", (double)s.cat.packs);
	cJSON_AddNumberToObject(root, "snapshots", (double)s.cat.snapshots);
	cJSON_AddNumberToObject(root, "documents_indexed", (double)s.cat.docs);
	cJSON_AddNumberToObject(root, "index_pending",
				(double)s.cat.index_pending);
	cJSON_AddNumberToObject(root, "index_errors",
				(double)s.cat.index_errors);
	cJSON_AddNumberToObject(root, "dead_chunks", (double)s.cat.dead_chunks);
	cJSON_AddNumberToObject(root, "dead_bytes", (double)s.cat.dead_bytes);
	cJSON_AddNumberToObject(
		root, "cache_hit_rate",
		ratio(s.cache_hits, s.cache_hits + s.cache_misses));
	cJSON_AddNumberToObject(root, "bytes_written", (double)s.bytes_written);
	cJSON_AddNumberToObject(root, "bytes_read", (double)s.bytes_read);
	cJSON_AddNumberToObject(root, "chunks_written",
				(double)s.chunks_written);
	cJSON_AddNumberToObject(root, "chunks_deduped",
				(double)s.chunks_deduped);
	*out = cJSON_Print(root);
	cJSON_Delete(root);
	return *out ? 0 : -ENOMEM;
}

int stash_store_check(struct stash_store *st)
{
	int ret;

	pthread_mutex_lock(&st->cat_lock);
	ret = stash_cat_check(st->cat);
	pthread_mutex_unlock(&st->cat_lock);
	return ret;
}
