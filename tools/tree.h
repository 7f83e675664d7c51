/*
 * tree.h - a read-only view of a file tree, and a writable sink, each
 * either a directory on disk (POSIX calls) or a directory inside an
 * opened store (the store API, by inode number).
 *
 * export, import, restore and snapshot diff are written once against
 * these. Paths are relative to the tree's root, '/'-separated, without a
 * leading or trailing '/'; "" is the root. Nothing here follows a
 * symbolic link: a path whose parent is a symlink fails with -ENOTDIR or
 * -ELOOP, so a sink never writes outside its root.
 * Neither is thread-safe; errors are negative errnos.
 */
#ifndef STASH_TOOLS_TREE_H
#define STASH_TOOLS_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store.h"

#define TREE_PATH_MAX 4096 /* longest relative path, bytes with the NUL */

/* What lstat says of an entry. */
struct tree_attr {
	uint64_t ino; /* identity within the tree: hard links share it */
	uint32_t mode, nlink, uid, gid;
	uint64_t size;		     /* bytes (symlinks: target length) */
	uint64_t rdev;		     /* device nodes */
	int64_t atime, mtime, ctime; /* ns since the epoch */
};

/* One directory entry. */
struct tree_dirent {
	char *name;
	struct tree_attr attr;
};

/* ---- read-only trees ---- */

struct tree;
struct tree_file;

/* The tree under the directory dir. With hide_virtual, the names fs/
 * adds to a mount's root (.backups, .search, .stats) are left out. */
int tree_open_dir(struct tree **out, const char *dir, bool hide_virtual);
/* The tree under inode root of an opened store (st stays the caller's). */
int tree_open_store(struct tree **out, struct stash_store *st, uint64_t root);
void tree_free(struct tree *t);

/* lstat of path. */
int tree_stat(struct tree *t, const char *path, struct tree_attr *out);
/* The entries of directory path (a: its attributes), sorted by name
 * (strcmp). *out is malloc'd; free it with tree_dirents_free. */
int tree_list(struct tree *t, const char *path, const struct tree_attr *a,
	      struct tree_dirent **out, size_t *n);
void tree_dirents_free(struct tree_dirent *d, size_t n);
/* The symlink target, NUL-terminated; -ENAMETOOLONG if size is short. */
int tree_readlink(struct tree *t, const char *path, const struct tree_attr *a,
		  char *buf, size_t size);

/* A set of xattrs, sorted by name. */
struct xattr_list {
	size_t n;
	struct xattr {
		char *name;
		void *value;
		size_t len;
	} * v;
};
/* Every xattr of an entry but system.* (ACLs), sorted. */
int tree_xattrs(struct tree *t, const char *path, const struct tree_attr *a,
		struct xattr_list *out);
/* Add a copy of (name, value); call xattr_list_sort when done. */
int xattr_list_add(struct xattr_list *x, const char *name, const void *value,
		   size_t len);
void xattr_list_sort(struct xattr_list *x);
void xattr_list_release(struct xattr_list *x);

/* Stream a regular file's bytes from the start. */
int tree_file_open(struct tree *t, const char *path, const struct tree_attr *a,
		   struct tree_file **out);
/* Up to size bytes; 0 at the end. */
ssize_t tree_file_read(struct tree_file *f, void *buf, size_t size);
void tree_file_close(struct tree_file *f);

/*
 * Visit path (its attributes in a) and everything under it, pre-order,
 * each directory's entries by name. fn's non-zero return stops the walk
 * and is returned.
 */
typedef int (*tree_walk_fn)(void *arg, const char *path,
			    const struct tree_attr *a);
int tree_walk(struct tree *t, const char *path, const struct tree_attr *a,
	      tree_walk_fn fn, void *arg);

/* "a/b" from dir "a" and name "b" (dir "" gives "b"). */
int tree_join(char *out, size_t size, const char *dir, const char *name);

/* The order of a walk: byte order, but a directory's entries come right
 * after it ('/' sorts below every other byte). */
int tree_path_cmp(const char *a, const char *b);

/* Every entry of a walk from path, in walk order (paths malloc'd). */
struct tree_node {
	char *path;
	struct tree_attr attr;
};
struct tree_nodes {
	struct tree_node *v;
	size_t n, cap;
};
int tree_collect(struct tree *t, const char *path, struct tree_nodes *out);
/* Append a copy of path, with *a, to l: 0 or -ENOMEM. */
int tree_nodes_add(struct tree_nodes *l, const char *path,
		   const struct tree_attr *a);
void tree_nodes_release(struct tree_nodes *l);
/* Index of path in l (sorted by tree_path_cmp), or -1. */
ssize_t tree_nodes_find(const struct tree_nodes *l, const char *path);

/* What tree_differs compares besides type, permissions, owner, xattrs,
 * symlink targets, device numbers and the bytes of regular files. */
enum {
	TREE_CMP_DIR_TIMES = 1 << 0, /* directories' mtimes too */
	TREE_CMP_NLINK = 1 << 1,     /* regular files' link counts */
};
/*
 * 1 if entry a (path pa of tree ta) and entry b differ, 0 if not, or a
 * negative errno. File bytes are read only when everything else agrees
 * and the two are not the same stored inode unchanged since (same base
 * inode number and ctime: snapshots keep both).
 */
int tree_differs(struct tree *ta, const char *pa, const struct tree_attr *a,
		 struct tree *tb, const char *pb, const struct tree_attr *b,
		 unsigned flags);

/* A map from inode number to the first path seen with it. */
struct ino_map {
	struct ino_slot {
		uint64_t ino; /* 0: free */
		char *path;
	} * slots;
	size_t n, cap;
};
/* The path recorded for ino, or NULL. */
const char *ino_map_get(const struct ino_map *m, uint64_t ino);
/* Record path (copied) for ino. */
int ino_map_put(struct ino_map *m, uint64_t ino, const char *path);
void ino_map_release(struct ino_map *m);

/* ---- sinks ---- */

struct sink;
struct sink_file;

/* Write under the existing directory dir on disk. */
int sink_open_dir(struct sink **out, const char *dir);
/* Write under directory inode dir of an opened store. */
int sink_open_store(struct sink **out, struct stash_store *st, uint64_t dir);
void sink_free(struct sink *s);

/* lstat; -ENOENT when there is nothing at path. */
int sink_stat(struct sink *s, const char *path, struct tree_attr *out);
int sink_readlink(struct sink *s, const char *path, char *buf, size_t size);
/* Create; -EEXIST when path is taken. mode holds permission bits only,
 * except for sink_mknod (FIFOs and device nodes: mode has the type). */
int sink_mkdir(struct sink *s, const char *path, uint32_t mode);
int sink_symlink(struct sink *s, const char *path, const char *target);
int sink_mknod(struct sink *s, const char *path, uint32_t mode, uint64_t rdev);
/* A new name for the non-directory at existing. */
int sink_link(struct sink *s, const char *existing, const char *path);
/* A new regular file (mode 0600 until sink_set_meta). */
int sink_create(struct sink *s, const char *path, struct sink_file **out);
int sink_write(struct sink_file *f, const void *buf, size_t len);
/* Commit and free f; the first write error if there was one. */
int sink_close(struct sink_file *f);

int sink_setxattr(struct sink *s, const char *path, const char *name,
		  const void *value, size_t len);
/* One xattr's value into buf; its length, or -ENODATA, -ERANGE. */
ssize_t sink_getxattr(struct sink *s, const char *path, const char *name,
		      void *buf, size_t size);
/* Make path's xattrs exactly x (system.* aside): set each, remove the
 * others. */
int sink_replace_xattrs(struct sink *s, const char *path,
			const struct xattr_list *x);
/* Owner (only when with_owner), permission bits (not for symlinks) and
 * access and modification times of a. Set a directory's times after its
 * entries: adding an entry changes them. */
int sink_set_meta(struct sink *s, const char *path, const struct tree_attr *a,
		  bool with_owner);
/* rename(2): a non-directory or empty directory at to is replaced. */
int sink_rename(struct sink *s, const char *from, const char *to);
/* Remove path and, for a directory, everything under it. */
int sink_remove(struct sink *s, const char *path);

/* ---- opening what the commands name ---- */

/*
 * Where STORE|MNT SNAP points: an opened store (st non-NULL; the caller
 * closes it) or a directory on disk. snap "-" is the live tree.
 */
struct tree_place {
	struct stash_store *st; /* when the argument was a store folder */
	char dir[4096];		/* otherwise: the directory (a mount) */
};

/* Open STORE (a store folder: opened with so) or take MNT (any
 * directory). A mounted store gives -EBUSY after a message that says to
 * pass the mount point. */
struct secret_opts;
int place_open(struct tree_place *p, const char *where,
	       const struct secret_opts *so);
/* Close the store, if one was opened; its error. */
int place_close(struct tree_place *p);
/* The end of a command on p (opened from where) whose outcome is ret:
 * place_close, reporting its error if ret was 0; the exit status. */
int place_exit(struct tree_place *p, const char *where, int ret);
/* The tree of snapshot snap ("-": the live tree) and, when created is
 * non-NULL, its creation time (ns; now for the live tree). */
int place_tree(struct tree_place *p, const char *snap, struct tree **out,
	       int64_t *created);
/* A sink at the live tree's root. */
int place_sink(struct tree_place *p, struct sink **out);

#endif
