/*
 * cmd_archive.c - `stashfs export` and `stashfs import`: a snapshot as an
 * ordinary pax tar archive (gzip or zstd; libarchive writes and reads
 * it), with MANIFEST.json (every entry's type, mode, owner, mtime, size
 * and SHA-256) and MANIFEST.json.sha256 as its last two entries;
 * optionally sealed (archive_crypt.c); optionally incremental.
 *
 * import never writes where the archive says: it extracts into a hidden
 * staging directory beside the target through a sink that follows no
 * symlink, checks every path, link and checksum against the manifest,
 * and only then moves the result into place. Any failure before that
 * removes the staging directory.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "archive_crypt.h"
#include "cli.h"
#include "crypto.h"
#include "progress.h"
#include "tree.h"
#include "util.h"

#define MANIFEST_NAME "MANIFEST.json"
#define MANIFEST_SUM "MANIFEST.json.sha256"
#define MANIFEST_MAX (256u << 20) /* bytes: ~1M entries */
#define XATTR_VALUE_MAX 65536	  /* the kernel's limit */
#define IO_BUF (256u << 10)
#define FORMAT_NAME "stashfs-export"
#define FORMAT_VERSION 1
/* On an import's root: the snapshot it holds (an increment checks it). */
#define IMPORT_MARK "user.stashfs.imported"

/* ---- what export and import share ---- */

/* How the user names the secret of a sealed archive. */
struct arc_opts {
	bool encrypt;
	const char *key_file;  /* --archive-key-file */
	const char *pass_file; /* --archive-passphrase-file */
};

/* Fill buf with the archive's secret; confirm when sealing from a
 * prompt. */
static int arc_secret_get(const struct arc_opts *o, bool confirm, char *buf,
			  size_t size, struct arc_secret *out)
{
	size_t len = 0;
	int ret;

	if (o->key_file) {
		ret = read_secret_file(o->key_file, buf, size, &len);
		if (ret) {
			report("cannot read archive key file", o->key_file,
			       ret);
			return ret;
		}
		if (len < 16) {
			fprintf(stderr,
				"stashfs: archive key file %s is too short"
				" (16 bytes at least)\n",
				o->key_file);
			return -EINVAL;
		}
	} else {
		ret = get_passphrase(o->pass_file, "STASHFS_ARCHIVE_PASSPHRASE",
				     confirm, buf, size, &len);
		if (ret)
			return ret;
	}
	*out = (struct arc_secret){ buf, len, o->key_file != NULL };
	return 0;
}

/* ISO 8601 in UTC, with nanoseconds when there are any. */
static void iso_time(int64_t ns, char *out, size_t size)
{
	int64_t s = ns / 1000000000, frac = ns % 1000000000;
	time_t t;
	struct tm tm;
	size_t n;

	if (frac < 0) {
		frac += 1000000000;
		s--;
	}
	t = (time_t)s;
	gmtime_r(&t, &tm);
	n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
	if (frac)
		snprintf(out + n, size - n, ".%09lldZ", (long long)frac);
	else
		snprintf(out + n, size - n, "Z");
}

static const char *type_name(uint32_t mode, bool hardlink)
{
	if (hardlink)
		return "hardlink";
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "file";
	case S_IFDIR:
		return "dir";
	case S_IFLNK:
		return "symlink";
	case S_IFIFO:
		return "fifo";
	case S_IFCHR:
		return "char";
	case S_IFBLK:
		return "block";
	}
	return "other";
}

static void perm_string(uint32_t mode, char out[8])
{
	snprintf(out, 8, "%04o", mode & 07777);
}

static int sha256_hex(EVP_MD_CTX *md, char hex[65])
{
	uint8_t d[32];
	unsigned len = 0;

	if (EVP_DigestFinal_ex(md, d, &len) != 1 || len != sizeof(d))
		return -EIO;
	stash_hex(d, sizeof(d), hex);
	return 0;
}

/*
 * An archive path made safe: no leading "./", no "." or empty components,
 * no trailing '/'. "" is the root. -EINVAL with *why set for an absolute
 * path, a ".." component, or a name or path too long.
 */
static int clean_path(const char *in, char *out, size_t size, const char **why)
{
	size_t o = 0;

	if (!in || !*in) {
		*why = "empty path";
		return -EINVAL;
	}
	if (in[0] == '/') {
		*why = "absolute path";
		return -EINVAL;
	}
	while (*in) {
		size_t len = strcspn(in, "/");

		if ((len == 1 && in[0] == '.') || len == 0) {
			in += len + (in[len] == '/');
			continue;
		}
		if (len == 2 && in[0] == '.' && in[1] == '.') {
			*why = "'..' in the path";
			return -EINVAL;
		}
		if (len > STASH_NAME_MAX || o + len + 2 > size) {
			*why = "path too long";
			return -EINVAL;
		}
		if (o)
			out[o++] = '/';
		memcpy(out + o, in, len);
		o += len;
		in += len + (in[len] == '/');
	}
	out[o] = '\0';
	return 0;
}

/* Does symlink target, stored at path, point above the root by name? */
static bool link_escapes(const char *path, const char *target)
{
	long depth = 0;

	if (target[0] == '/')
		return true;
	for (const char *p = path; *p; p++)
		depth += *p == '/';
	while (*target) {
		size_t len = strcspn(target, "/");

		if (len == 2 && target[0] == '.' && target[1] == '.') {
			if (--depth < 0)
				return true;
		} else if (len && !(len == 1 && target[0] == '.')) {
			depth++;
		}
		target += len + (target[len] == '/');
	}
	return false;
}

/* ---- export ---- */

static const char export_usage[] =
	"stashfs export STORE|MNT SNAP FILE [--since BASE]"
	" [--format tar.gz|tar.zst]\n"
	"        [--encrypt] [--archive-key-file F |"
	" --archive-passphrase-file F]\n"
	"        [--key-file F | --passphrase-file F]\n"
	"  Write snapshot SNAP (- for the live tree) as a tar archive that\n"
	"  tar -xf reads: files, modes, owners, times, symlinks, hard links\n"
	"  and xattrs (pax), then MANIFEST.json (every entry with its SHA-256)\n"
	"  and MANIFEST.json.sha256. FILE ending in .tar.zst is zstd, else\n"
	"  gzip. --since BASE: only what changed since snapshot BASE, and the\n"
	"  paths deleted since. --encrypt seals the archive (AES-256-GCM)\n"
	"  with a passphrase (--archive-passphrase-file,\n"
	"  $STASHFS_ARCHIVE_PASSPHRASE or a prompt) or --archive-key-file F.\n"
	"  --key-file and --passphrase-file unlock an unmounted STORE.";

struct exporter {
	struct tree *t;
	struct archive *a;
	int fd;			 /* the temporary output file */
	struct arc_crypt *crypt; /* NULL: not sealed */
	cJSON *entries;		 /* the manifest's entries */
	struct ino_map links;	 /* inode -> first path written */
	struct progress prog;
	uint64_t n_files, n_dirs, n_symlinks, n_hardlinks, n_other, bytes;
	char *buf; /* IO_BUF */
	EVP_MD_CTX *md;
};

static la_ssize_t export_write(struct archive *a, void *arg, const void *buf,
			       size_t len)
{
	struct exporter *x = arg;
	int ret = x->crypt ? arc_write(x->crypt, buf, len)
			   : stash_write_all(x->fd, buf, len);

	if (ret) {
		archive_set_error(a, -ret, "%s", strerror(-ret));
		return -1;
	}
	return (la_ssize_t)len;
}

static int la_error(struct archive *a, const char *what, const char *path)
{
	fprintf(stderr, "stashfs: %s %s: %s\n", what, path,
		archive_error_string(a) ? archive_error_string(a) : "failed");
	return archive_errno(a) > 0 ? -archive_errno(a) : -EIO;
}

/* Stream a regular file into the archive, hashing it. */
static int export_data(struct exporter *x, const char *path,
		       const struct tree_attr *a, cJSON *item)
{
	struct tree_file *f;
	uint64_t done = 0;
	char hex[65];
	ssize_t n;
	int ret = tree_file_open(x->t, path, a, &f);

	if (ret) {
		report("cannot read", path, ret);
		return ret;
	}
	if (EVP_DigestInit_ex(x->md, EVP_sha256(), NULL) != 1)
		ret = -EIO;
	while (!ret && (n = tree_file_read(f, x->buf, IO_BUF)) != 0) {
		if (n < 0 || done + (uint64_t)n > a->size) {
			ret = n < 0 ? (int)n : -EAGAIN;
			break;
		}
		EVP_DigestUpdate(x->md, x->buf, (size_t)n);
		if (archive_write_data(x->a, x->buf, (size_t)n) != n)
			return tree_file_close(f),
			       la_error(x->a, "cannot write", path);
		done += (uint64_t)n;
		progress_add(&x->prog, (uint64_t)n, 0);
	}
	tree_file_close(f);
	if (!ret && done != a->size)
		ret = -EAGAIN;
	if (ret == -EAGAIN)
		fprintf(stderr, "stashfs: %s changed while it was read\n",
			path);
	else if (ret)
		report("cannot read", path, ret);
	if (!ret)
		ret = sha256_hex(x->md, hex);
	if (!ret)
		cJSON_AddStringToObject(item, "sha256", hex);
	return ret;
}

static int export_entry(struct exporter *x, const char *path,
			const struct tree_attr *a)
{
	struct archive_entry *e = archive_entry_new();
	cJSON *item = cJSON_CreateObject();
	const char *first = NULL;
	struct xattr_list xl = { 0 };
	char target[PATH_MAX], mtime[48], perm[8];
	int ret = e && item ? 0 : -ENOMEM;

	if (ret)
		goto out;
	if (S_ISSOCK(a->mode)) {
		fprintf(stderr, "stashfs: %s is a socket: left out\n", path);
		goto out;
	}
	if (S_ISREG(a->mode) && a->nlink > 1)
		first = ino_map_get(&x->links, a->ino);
	archive_entry_set_pathname(e, path);
	archive_entry_set_mode(e, a->mode);
	archive_entry_set_uid(e, a->uid);
	archive_entry_set_gid(e, a->gid);
	archive_entry_set_mtime(e, a->mtime / 1000000000,
				a->mtime % 1000000000);
	archive_entry_set_atime(e, a->atime / 1000000000,
				a->atime % 1000000000);
	perm_string(a->mode, perm);
	iso_time(a->mtime, mtime, sizeof(mtime));
	cJSON_AddStringToObject(item, "path", path);
	cJSON_AddStringToObject(item, "type", type_name(a->mode, first));
	cJSON_AddStringToObject(item, "mode", perm);
	cJSON_AddNumberToObject(item, "uid", a->uid);
	cJSON_AddNumberToObject(item, "gid", a->gid);
	cJSON_AddStringToObject(item, "mtime", mtime);
	if (first) {
		archive_entry_set_hardlink(e, first);
		archive_entry_set_size(e, 0);
		cJSON_AddStringToObject(item, "link", first);
		x->n_hardlinks++;
	} else if (S_ISREG(a->mode)) {
		archive_entry_set_size(e, (la_int64_t)a->size);
		cJSON_AddNumberToObject(item, "size", (double)a->size);
		if (a->nlink > 1)
			ret = ino_map_put(&x->links, a->ino, path);
		x->n_files++;
		x->bytes += a->size;
	} else if (S_ISLNK(a->mode)) {
		ret = tree_readlink(x->t, path, a, target, sizeof(target));
		archive_entry_set_symlink(e, target);
		cJSON_AddStringToObject(item, "target", target);
		x->n_symlinks++;
	} else if (S_ISDIR(a->mode)) {
		x->n_dirs++;
	} else {
		archive_entry_set_rdev(e, (dev_t)a->rdev);
		cJSON_AddNumberToObject(item, "rdev", (double)a->rdev);
		x->n_other++;
	}
	if (!ret && !first)
		ret = tree_xattrs(x->t, path, a, &xl);
	if (ret) {
		report("cannot read", path, ret);
		goto out;
	}
	for (size_t i = 0; i < xl.n; i++)
		archive_entry_xattr_add_entry(e, xl.v[i].name, xl.v[i].value,
					      xl.v[i].len);
	if (archive_write_header(x->a, e) < ARCHIVE_WARN) {
		ret = la_error(x->a, "cannot write", path);
		goto out;
	}
	if (S_ISREG(a->mode) && !first)
		ret = export_data(x, path, a, item);
	progress_add(&x->prog, 0, 1);
out:
	if (!ret && item && !S_ISSOCK(a->mode)) {
		cJSON_AddItemToArray(x->entries, item);
		item = NULL;
	}
	cJSON_Delete(item);
	xattr_list_release(&xl);
	archive_entry_free(e);
	return ret;
}

/* Add a small file from memory (the manifest and its checksum). */
static int export_blob(struct exporter *x, const char *name, const char *data,
		       size_t len, int64_t mtime)
{
	struct archive_entry *e = archive_entry_new();
	int ret = 0;

	if (!e)
		return -ENOMEM;
	archive_entry_set_pathname(e, name);
	archive_entry_set_mode(e, S_IFREG | 0644);
	archive_entry_set_size(e, (la_int64_t)len);
	archive_entry_set_mtime(e, mtime / 1000000000, mtime % 1000000000);
	if (archive_write_header(x->a, e) < ARCHIVE_WARN ||
	    archive_write_data(x->a, data, len) != (la_ssize_t)len)
		ret = la_error(x->a, "cannot write", name);
	archive_entry_free(e);
	return ret;
}

/* Which entries of t (beyond the root) an increment since base holds,
 * and the paths gone since (only the topmost of a removed subtree). */
static int plan_increment(struct tree *t, const struct tree_nodes *now,
			  struct tree *bt, const struct tree_nodes *base,
			  bool *take, cJSON *deleted)
{
	struct ino_map groups = { 0 };
	int ret = 0;

	for (size_t i = 1; !ret && i < now->n; i++) {
		const struct tree_node *n = &now->v[i];
		ssize_t j = tree_nodes_find(base, n->path);

		take[i] = true;
		if (j >= 0 && (n->attr.mode & S_IFMT) ==
				      (base->v[j].attr.mode & S_IFMT)) {
			ret = tree_differs(bt, n->path, &base->v[j].attr, t,
					   n->path, &n->attr,
					   TREE_CMP_DIR_TIMES | TREE_CMP_NLINK);
			take[i] = ret == 1;
			ret = ret < 0 ? ret : 0;
		}
		/* A changed inode travels with every name it has. */
		if (!ret && take[i] && S_ISREG(n->attr.mode) &&
		    n->attr.nlink > 1 && !ino_map_get(&groups, n->attr.ino))
			ret = ino_map_put(&groups, n->attr.ino, n->path);
	}
	for (size_t i = 1; !ret && i < now->n; i++)
		if (S_ISREG(now->v[i].attr.mode) && now->v[i].attr.nlink > 1 &&
		    ino_map_get(&groups, now->v[i].attr.ino))
			take[i] = true;
	for (size_t j = 1; !ret && j < base->n; j++) {
		char parent[TREE_PATH_MAX];
		char *slash;

		if (tree_nodes_find(now, base->v[j].path) >= 0)
			continue;
		snprintf(parent, sizeof(parent), "%s", base->v[j].path);
		slash = strrchr(parent, '/');
		*(slash ? slash : parent) = '\0';
		if (tree_nodes_find(now, parent) >= 0)
			cJSON_AddItemToArray(
				deleted, cJSON_CreateString(base->v[j].path));
	}
	ino_map_release(&groups);
	return ret;
}

/* The manifest, then its checksum, as the archive's last entries. */
static int export_manifest(struct exporter *x, const char *snap,
			   int64_t created, const char *since, cJSON *deleted)
{
	cJSON *root = cJSON_CreateObject(), *totals = cJSON_CreateObject();
	char when[48], hex[65], line[65 + sizeof(MANIFEST_NAME) + 4];
	uint8_t digest[32];
	char *text = NULL;
	int ret = -ENOMEM;

	if (!root || !totals)
		goto out;
	iso_time(created, when, sizeof(when));
	cJSON_AddStringToObject(root, "format", FORMAT_NAME);
	cJSON_AddNumberToObject(root, "version", FORMAT_VERSION);
	cJSON_AddStringToObject(root, "snapshot", snap);
	cJSON_AddStringToObject(root, "created", when);
	if (since)
		cJSON_AddStringToObject(root, "base", since);
	cJSON_AddItemToObject(root, "entries", x->entries);
	x->entries = NULL;
	if (since) {
		cJSON_AddItemToObject(root, "deleted", deleted);
		deleted = NULL;
	}
	cJSON_AddNumberToObject(totals, "files", (double)x->n_files);
	cJSON_AddNumberToObject(totals, "dirs", (double)x->n_dirs);
	cJSON_AddNumberToObject(totals, "symlinks", (double)x->n_symlinks);
	cJSON_AddNumberToObject(totals, "hardlinks", (double)x->n_hardlinks);
	cJSON_AddNumberToObject(totals, "other", (double)x->n_other);
	cJSON_AddNumberToObject(totals, "bytes", (double)x->bytes);
	cJSON_AddItemToObject(root, "totals", totals);
	totals = NULL;
	text = cJSON_Print(root);
	if (!text)
		goto out;
	ret = stash_crypto_sha256(text, strlen(text), digest);
	if (ret)
		goto out;
	stash_hex(digest, sizeof(digest), hex);
	/* sha256sum -c reads this line. */
	snprintf(line, sizeof(line), "%s  %s\n", hex, MANIFEST_NAME);
	ret = export_blob(x, MANIFEST_NAME, text, strlen(text), created);
	if (!ret)
		ret = export_blob(x, MANIFEST_SUM, line, strlen(line), created);
out:
	free(text);
	cJSON_Delete(root);
	cJSON_Delete(totals);
	cJSON_Delete(deleted);
	return ret;
}

static bool zstd_name(const char *file)
{
	size_t len = strlen(file);

	return (len > 8 && !strcmp(file + len - 8, ".tar.zst")) ||
	       (len > 5 && !strcmp(file + len - 5, ".tzst"));
}

/* Write the archive into x->fd. */
static int export_run(struct exporter *x, bool zstd,
		      const struct tree_nodes *now, const bool *take,
		      const char *snap, int64_t created, const char *since,
		      cJSON *deleted)
{
	int ret = 0;

	x->a = archive_write_new();
	if (!x->a) {
		cJSON_Delete(deleted);
		return -ENOMEM;
	}
	/* Full pax: nanosecond times; xattrs as GNU tar reads them. */
	if (archive_write_set_format_pax(x->a) ||
	    archive_write_set_format_option(x->a, "pax", "xattrheader",
					    "SCHILY") ||
	    (zstd ? archive_write_add_filter_zstd(x->a)
		  : archive_write_add_filter_gzip(x->a)) ||
	    archive_write_set_bytes_in_last_block(x->a, 1) ||
	    archive_write_open2(x->a, x, NULL, export_write, NULL, NULL)) {
		cJSON_Delete(deleted);
		return la_error(x->a, "cannot start archive", "");
	}
	for (size_t i = 1; !ret && i < now->n; i++) {
		const char *p = now->v[i].path;

		if (!take[i])
			continue;
		if (!strcmp(p, MANIFEST_NAME) || !strcmp(p, MANIFEST_SUM)) {
			fprintf(stderr,
				"stashfs: the tree holds /%s, the name the"
				" archive's manifest takes: rename it\n",
				p);
			ret = -EEXIST;
			break;
		}
		ret = export_entry(x, p, &now->v[i].attr);
	}
	if (!ret)
		ret = export_manifest(x, snap, created, since, deleted);
	else
		cJSON_Delete(deleted);
	if (!ret && archive_write_close(x->a) != ARCHIVE_OK)
		ret = la_error(x->a, "cannot finish archive", "");
	archive_write_free(x->a);
	x->a = NULL;
	if (!ret && x->crypt)
		ret = arc_writer_finish(x->crypt);
	return ret;
}

int cmd_export(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 's' },
		{ "format", required_argument, NULL, 'f' },
		{ "encrypt", no_argument, NULL, 'e' },
		{ "archive-key-file", required_argument, NULL, 'K' },
		{ "archive-passphrase-file", required_argument, NULL, 'A' },
		SECRET_LONG_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct secret_opts so = { 0 };
	struct arc_opts ao = { 0 };
	struct arc_secret secret;
	struct tree_place place;
	struct tree_nodes now = { 0 }, base = { 0 };
	struct tree *bt = NULL;
	struct exporter x = { .fd = -1 };
	const char *where, *snap, *file, *since = NULL, *format = NULL;
	char secret_buf[MAX_SECRET], tmp[PATH_MAX];
	cJSON *deleted = NULL;
	bool *take = NULL, zstd, tmp_made = false;
	int64_t created;
	int c, ret;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (secret_option(c, &so))
			continue;
		switch (c) {
		case 's':
			since = optarg;
			break;
		case 'f':
			format = optarg;
			break;
		case 'e':
			ao.encrypt = true;
			break;
		case 'K':
			ao.encrypt = true;
			ao.key_file = optarg;
			break;
		case 'A':
			ao.encrypt = true;
			ao.pass_file = optarg;
			break;
		case 'h':
			printf("usage: %s\n", export_usage);
			return 0;
		default:
			die_usage(export_usage);
		}
	}
	if (optind + 3 != argc || (ao.key_file && ao.pass_file))
		die_usage(export_usage);
	where = argv[optind];
	snap = argv[optind + 1];
	file = argv[optind + 2];
	if (format && strcmp(format, "tar.gz") && strcmp(format, "tar.zst"))
		die_usage(export_usage);
	zstd = format ? !strcmp(format, "tar.zst") : zstd_name(file);
	if (ao.encrypt) {
		ret = arc_secret_get(&ao, true, secret_buf, sizeof(secret_buf),
				     &secret);
		if (ret)
			return exit_code(ret);
	}
	ret = place_open(&place, where, &so);
	if (ret) {
		stash_crypto_wipe(secret_buf, sizeof(secret_buf));
		return exit_code(ret);
	}
	ret = place_tree(&place, snap, &x.t, &created);
	if (!ret && since)
		ret = place_tree(&place, since, &bt, NULL);
	if (!ret)
		ret = tree_collect(x.t, "", &now);
	if (!ret && since)
		ret = tree_collect(bt, "", &base);
	if (ret)
		goto out;
	take = calloc(now.n, sizeof(*take));
	deleted = cJSON_CreateArray();
	x.entries = cJSON_CreateArray();
	x.buf = malloc(IO_BUF);
	x.md = EVP_MD_CTX_new();
	if (!take || !deleted || !x.entries || !x.buf || !x.md) {
		ret = -ENOMEM;
		goto out;
	}
	if (since) {
		ret = plan_increment(x.t, &now, bt, &base, take, deleted);
		if (ret) {
			report("cannot compare with", since, ret);
			goto out;
		}
	} else {
		for (size_t i = 1; i < now.n; i++)
			take[i] = true;
	}

	/* Into a temporary file beside FILE: no half archive under its
	 * name, ever. */
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", file) >=
	    sizeof(tmp)) {
		ret = -ENAMETOOLONG;
		report("cannot write", file, ret);
		goto out;
	}
	x.fd = mkostemp(tmp, O_CLOEXEC);
	if (x.fd < 0) {
		ret = -errno;
		report("cannot write", file, ret);
		goto out;
	}
	tmp_made = true;
	if (ao.encrypt) {
		ret = arc_writer_new(&x.crypt, x.fd, &secret);
		if (ret) {
			report("cannot seal", file, ret);
			goto out;
		}
	}
	{
		uint64_t total = 0;

		for (size_t i = 1; i < now.n; i++)
			if (take[i] && S_ISREG(now.v[i].attr.mode))
				total += now.v[i].attr.size;
		progress_init(&x.prog, "export", total);
	}
	ret = export_run(&x, zstd, &now, take, snap, created, since, deleted);
	deleted = NULL;
	progress_done(&x.prog);
	if (!ret && fsync(x.fd) < 0)
		ret = -errno;
	if (!ret && close(x.fd) < 0)
		ret = -errno;
	x.fd = -1;
	if (!ret && rename(tmp, file) < 0)
		ret = -errno;
	if (ret) {
		report("cannot write", file, ret);
		goto out;
	}
	tmp_made = false;
	printf("exported %s%s%s: %llu files, %llu bytes%s%s to %s\n", snap,
	       since ? " since " : "", since ? since : "",
	       (unsigned long long)x.n_files, (unsigned long long)x.bytes,
	       since ? ", deletions listed" : "", ao.encrypt ? ", sealed" : "",
	       file);
out:
	stash_crypto_wipe(secret_buf, sizeof(secret_buf));
	if (x.fd >= 0)
		close(x.fd);
	if (tmp_made)
		unlink(tmp);
	arc_free(x.crypt);
	EVP_MD_CTX_free(x.md);
	free(x.buf);
	cJSON_Delete(x.entries);
	cJSON_Delete(deleted);
	ino_map_release(&x.links);
	free(take);
	tree_nodes_release(&now);
	tree_nodes_release(&base);
	tree_free(x.t);
	tree_free(bt);
	return place_exit(&place, where, ret);
}

/* ---- import ---- */

static const char import_usage[] =
	"stashfs import FILE STORE|MNT [--to PATH]\n"
	"        [--archive-key-file F | --archive-passphrase-file F]\n"
	"        [--key-file F | --passphrase-file F]\n"
	"  Restore an archive written by stashfs export into STORE|MNT at\n"
	"  PATH (default: /SNAPSHOT, the archive's snapshot name). A full\n"
	"  archive needs a PATH that does not exist; an incremental one is\n"
	"  applied to the import of its base (default: /BASE, renamed to\n"
	"  /SNAPSHOT afterwards). Every path, link and checksum is checked\n"
	"  before anything is moved into place: a damaged, altered or unsafe\n"
	"  archive is refused, naming the first bad entry, and leaves nothing\n"
	"  behind. Sealed archives need their passphrase\n"
	"  (--archive-passphrase-file, $STASHFS_ARCHIVE_PASSPHRASE or a\n"
	"  prompt) or --archive-key-file.";

/* One entry as the archive had it. */
struct in_entry {
	char *path;
	char *link;    /* hard link: the path it names; symlink: target */
	uint32_t mode; /* type and permissions */
	bool hardlink;
	struct tree_attr attr; /* owner and times to set */
	uint64_t size;	       /* regular files: bytes read */
	char sha256[65];       /* regular files */
	struct xattr_list xattrs;
};

struct importer {
	const char *file;
	struct sink *sink; /* at the place's root */
	char stage[TREE_PATH_MAX];
	bool staged; /* stage exists */
	int fd;
	struct arc_crypt *crypt;
	char *rbuf;
	uint64_t consumed; /* archive bytes read */
	struct progress prog;
	struct in_entry *ents;
	size_t n, cap;
	struct ino_map paths; /* hash of a path -> that path (hard links) */
	char *manifest, *sum;
	size_t manifest_len, sum_len;
	EVP_MD_CTX *md;
	char *buf;
	char bad[TREE_PATH_MAX]; /* the entry being read */
	bool with_owner;
	bool partial; /* an increment failed after changing the target */
};

static la_ssize_t import_read(struct archive *a, void *arg, const void **buf)
{
	struct importer *x = arg;
	ssize_t n;

	if (x->crypt) {
		n = arc_read(x->crypt, buf);
		x->consumed = arc_consumed(x->crypt);
		if (n == -EBADMSG) {
			fprintf(stderr,
				"stashfs: %s: sealed record %llu does not"
				" authenticate\n",
				x->file,
				(unsigned long long)arc_record(x->crypt));
			archive_set_error(
				a, EBADMSG,
				"sealed record %llu does not"
				" authenticate: the archive is"
				" damaged, altered or cut short",
				(unsigned long long)arc_record(x->crypt));
			return -1;
		}
	} else {
		while ((n = read(x->fd, x->rbuf, IO_BUF)) < 0 && errno == EINTR)
			;
		if (n < 0)
			n = -errno;
		else
			x->consumed += (uint64_t)n;
		*buf = x->rbuf;
	}
	if (n < 0) {
		archive_set_error(a, (int)-n, "%s", strerror((int)-n));
		return -1;
	}
	progress_set(&x->prog, x->consumed);
	return n;
}

static uint64_t path_key(const char *path)
{
	uint64_t h = UINT64_C(14695981039346656037);

	for (; *path; path++)
		h = (h ^ (uint8_t)*path) * UINT64_C(1099511628211);
	return h | 1; /* never 0 */
}

static int stage_path(struct importer *x, const char *rel, char *out,
		      size_t size)
{
	return tree_join(out, size, x->stage, rel);
}

/* mkdir -p of rel's parents inside the stage. */
static int stage_parents(struct importer *x, const char *rel)
{
	char p[TREE_PATH_MAX];
	struct tree_attr a;
	int ret = stage_path(x, rel, p, sizeof(p));

	for (char *s = p + strlen(x->stage) + 1; !ret && (s = strchr(s, '/'));
	     *s++ = '/') {
		*s = '\0';
		ret = sink_stat(x->sink, p, &a);
		if (ret == -ENOENT)
			ret = sink_mkdir(x->sink, p, 0700);
		else if (!ret && !S_ISDIR(a.mode))
			ret = -ENOTDIR;
	}
	return ret;
}

static int fail_entry(const char *path, const char *why)
{
	fprintf(stderr, "stashfs: refusing entry %s: %s\n", path, why);
	return -EINVAL;
}

/* Read a manifest file into memory. */
static int read_blob(struct importer *x, struct archive *a,
		     struct archive_entry *e, char **out, size_t *len)
{
	la_int64_t size = archive_entry_size(e);
	la_ssize_t n;
	size_t got = 0;

	if (*out || archive_entry_filetype(e) != AE_IFREG || size < 0 ||
	    (uint64_t)size > MANIFEST_MAX)
		return fail_entry(archive_entry_pathname(e),
				  "not a manifest stashfs writes");
	*out = malloc((size_t)size + 1);
	if (!*out)
		return -ENOMEM;
	while ((n = archive_read_data(a, *out + got, (size_t)size - got)) > 0)
		got += (size_t)n;
	if (n < 0)
		return la_error(a, "damaged archive at", x->bad);
	(*out)[got] = '\0';
	*len = got;
	return got == (size_t)size ? 0 : -EBADMSG;
}

static int import_data(struct importer *x, struct archive *a,
		       struct archive_entry *e, const char *dst,
		       struct in_entry *ie)
{
	struct sink_file *f;
	la_int64_t want =
		archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
	la_ssize_t n;
	int ret = sink_create(x->sink, dst, &f);

	if (ret) {
		report("cannot create", ie->path, ret);
		return ret;
	}
	if (EVP_DigestInit_ex(x->md, EVP_sha256(), NULL) != 1)
		ret = -EIO;
	while (!ret && (n = archive_read_data(a, x->buf, IO_BUF)) != 0) {
		if (n < 0) {
			ret = la_error(a, "damaged archive at", ie->path);
			break;
		}
		EVP_DigestUpdate(x->md, x->buf, (size_t)n);
		ret = sink_write(f, x->buf, (size_t)n);
		if (ret)
			report("cannot write", ie->path, ret);
		ie->size += (uint64_t)n;
		progress_add(&x->prog, 0, 0);
	}
	n = sink_close(f);
	if (!ret && n) {
		ret = (int)n;
		report("cannot write", ie->path, ret);
	}
	if (!ret && want >= 0 && ie->size != (uint64_t)want)
		ret = fail_entry(ie->path, "cut short");
	if (!ret)
		ret = sha256_hex(x->md, ie->sha256);
	return ret;
}

static int read_xattrs(struct archive_entry *e, struct in_entry *ie)
{
	const char *name;
	const void *value;
	size_t len;
	int ret = 0;

	archive_entry_xattr_reset(e);
	while (!ret &&
	       archive_entry_xattr_next(e, &name, &value, &len) == ARCHIVE_OK) {
		if (!name || !*name || strlen(name) > 255 ||
		    len > XATTR_VALUE_MAX)
			return fail_entry(ie->path, "malformed xattr");
		if (!strncmp(name, "system.", 7))
			continue;
		ret = xattr_list_add(&ie->xattrs, name, value, len);
	}
	xattr_list_sort(&ie->xattrs);
	return ret;
}

static struct in_entry *new_entry(struct importer *x)
{
	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 256;
		struct in_entry *v = reallocarray(x->ents, cap, sizeof(*v));

		if (!v)
			return NULL;
		x->ents = v;
		x->cap = cap;
	}
	memset(&x->ents[x->n], 0, sizeof(x->ents[x->n]));
	return &x->ents[x->n++];
}

static int import_entry(struct importer *x, struct archive *a,
			struct archive_entry *e)
{
	const char *raw = archive_entry_pathname(e), *why = NULL;
	const char *hl = archive_entry_hardlink(e);
	const char *target = archive_entry_symlink(e);
	char rel[TREE_PATH_MAX], link[TREE_PATH_MAX], dst[TREE_PATH_MAX];
	char lsrc[TREE_PATH_MAX];
	uint32_t type = archive_entry_filetype(e);
	struct in_entry *ie;
	const char *known;
	int ret;

	snprintf(x->bad, sizeof(x->bad), "%s", raw ? raw : "(no name)");
	if (clean_path(raw, rel, sizeof(rel), &why))
		return fail_entry(x->bad, why);
	if (!*rel) {
		if (type == AE_IFDIR && !hl)
			return 0; /* "./": the target's own directory */
		return fail_entry(x->bad, "not a directory at the root");
	}
	snprintf(x->bad, sizeof(x->bad), "%s", rel);
	if (!strcmp(rel, MANIFEST_NAME))
		return read_blob(x, a, e, &x->manifest, &x->manifest_len);
	if (!strcmp(rel, MANIFEST_SUM))
		return read_blob(x, a, e, &x->sum, &x->sum_len);
	ie = new_entry(x);
	if (!ie)
		return -ENOMEM;
	ie->path = strdup(rel);
	if (!ie->path)
		return -ENOMEM;
	ie->mode = archive_entry_mode(e);
	ie->attr = (struct tree_attr){
		.mode = ie->mode,
		.uid = (uint32_t)archive_entry_uid(e),
		.gid = (uint32_t)archive_entry_gid(e),
		.mtime = archive_entry_mtime(e) * 1000000000LL +
			 archive_entry_mtime_nsec(e),
		.atime = archive_entry_atime_is_set(e)
				 ? archive_entry_atime(e) * 1000000000LL +
					   archive_entry_atime_nsec(e)
				 : archive_entry_mtime(e) * 1000000000LL +
					   archive_entry_mtime_nsec(e),
	};
	ret = stage_path(x, rel, dst, sizeof(dst));
	if (!ret)
		ret = stage_parents(x, rel);
	if (ret) {
		report("cannot create", rel, ret);
		return ret;
	}
	if (hl) {
		if (clean_path(hl, link, sizeof(link), &why) || !*link)
			return fail_entry(rel, "hard link out of the archive");
		known = ino_map_get(&x->paths, path_key(link));
		if (!known || strcmp(known, link))
			return fail_entry(rel, "hard link to an entry not"
					       " earlier in the archive");
		ie->hardlink = true;
		ie->link = strdup(link);
		if (!ie->link)
			return -ENOMEM;
		ret = stage_path(x, link, lsrc, sizeof(lsrc));
		if (!ret)
			ret = sink_link(x->sink, lsrc, dst);
		if (ret)
			report("cannot link", rel, ret);
		return ret;
	}
	switch (type) {
	case AE_IFREG:
		ret = import_data(x, a, e, dst, ie);
		break;
	case AE_IFDIR:
		ret = sink_mkdir(x->sink, dst, 0700);
		if (ret == -EEXIST) /* made as a parent before */
			ret = 0;
		break;
	case AE_IFLNK:
		if (!target || !*target || strlen(target) >= PATH_MAX)
			return fail_entry(rel, "malformed symlink");
		if (link_escapes(rel, target))
			return fail_entry(rel, "symlink pointing out of the"
					       " archive");
		ie->link = strdup(target);
		if (!ie->link)
			return -ENOMEM;
		ret = sink_symlink(x->sink, dst, target);
		break;
	case AE_IFIFO:
	case AE_IFCHR:
	case AE_IFBLK:
		ie->attr.rdev = archive_entry_rdev(e);
		ret = sink_mknod(x->sink, dst, ie->mode, ie->attr.rdev);
		break;
	default:
		return fail_entry(rel, "unsupported entry type");
	}
	if (ret) {
		if (type != AE_IFREG) /* import_data said why */
			report("cannot create", rel, ret);
		return ret;
	}
	ret = read_xattrs(e, ie);
	if (!ret && ie->xattrs.n)
		ret = sink_replace_xattrs(x->sink, dst, &ie->xattrs);
	/* Directories get theirs once their entries are in. */
	if (!ret && type != AE_IFDIR)
		ret = sink_set_meta(x->sink, dst, &ie->attr, x->with_owner);
	if (ret) {
		report("cannot set attributes of", rel, ret);
		return ret;
	}
	if (type != AE_IFDIR)
		ret = ino_map_put(&x->paths, path_key(rel), rel);
	return ret;
}

/* ---- import: checking the result against the manifest ---- */

static const char *json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int by_json_path(const void *a, const void *b)
{
	return strcmp(json_str(*(cJSON *const *)a, "path"),
		      json_str(*(cJSON *const *)b, "path"));
}

/* Why entry ie does not match its manifest item m, or NULL. */
static const char *mismatch(const struct in_entry *ie, const cJSON *m)
{
	char perm[8], mtime[48];
	const char *type = json_str(m, "type");
	const char *want;
	const cJSON *size = cJSON_GetObjectItemCaseSensitive(m, "size");

	if (!type || strcmp(type, type_name(ie->mode, ie->hardlink)))
		return "its type differs from the manifest";
	if (ie->hardlink) {
		want = json_str(m, "link");
		return want && !strcmp(want, ie->link)
			       ? NULL
			       : "its link differs from the manifest";
	}
	perm_string(ie->mode, perm);
	iso_time(ie->attr.mtime, mtime, sizeof(mtime));
	if (!json_str(m, "mode") || strcmp(json_str(m, "mode"), perm))
		return "its mode differs from the manifest";
	if (!json_str(m, "mtime") || strcmp(json_str(m, "mtime"), mtime))
		return "its mtime differs from the manifest";
	if (S_ISLNK(ie->mode))
		return json_str(m, "target") &&
				       !strcmp(json_str(m, "target"), ie->link)
			       ? NULL
			       : "its target differs from the manifest";
	if (!S_ISREG(ie->mode))
		return NULL;
	if (!cJSON_IsNumber(size) || size->valuedouble != (double)ie->size)
		return "its size differs from the manifest (damaged or"
		       " altered)";
	want = json_str(m, "sha256");
	if (!want || strcmp(want, ie->sha256))
		return "checksum mismatch (damaged or altered)";
	return NULL;
}

/*
 * Check the manifest's own checksum, then every entry against it, in
 * archive order: the first entry that does not match is named.
 */
static int check_manifest(struct importer *x, cJSON **out)
{
	char hex[65], line[65 + sizeof(MANIFEST_NAME) + 4];
	uint8_t digest[32];
	cJSON *root, *entries, *item, **index = NULL;
	bool *seen = NULL;
	size_t n = 0;
	const char *v;
	int ret = -EBADMSG;

	if (!x->manifest || !x->sum) {
		fprintf(stderr,
			"stashfs: %s has no %s: not an archive of stashfs"
			" export, or cut short\n",
			x->file, x->manifest ? MANIFEST_SUM : MANIFEST_NAME);
		return -EBADMSG;
	}
	stash_crypto_sha256(x->manifest, x->manifest_len, digest);
	stash_hex(digest, sizeof(digest), hex);
	snprintf(line, sizeof(line), "%s  %s\n", hex, MANIFEST_NAME);
	if (x->sum_len != strlen(line) || memcmp(x->sum, line, x->sum_len)) {
		fprintf(stderr,
			"stashfs: %s: checksum mismatch (damaged or"
			" altered)\n",
			MANIFEST_NAME);
		return -EBADMSG;
	}
	root = cJSON_ParseWithLength(x->manifest, x->manifest_len);
	entries = cJSON_GetObjectItemCaseSensitive(root, "entries");
	v = json_str(root, "format");
	if (!root || !v || strcmp(v, FORMAT_NAME) ||
	    !json_str(root, "snapshot") || !cJSON_IsArray(entries)) {
		fprintf(stderr, "stashfs: %s: not a stashfs manifest\n",
			MANIFEST_NAME);
		goto out;
	}
	item = cJSON_GetObjectItemCaseSensitive(root, "version");
	if (!cJSON_IsNumber(item) || item->valuedouble != FORMAT_VERSION) {
		fprintf(stderr, "stashfs: %s: unknown version\n",
			MANIFEST_NAME);
		goto out;
	}
	n = (size_t)cJSON_GetArraySize(entries);
	index = calloc(n + 1, sizeof(*index));
	seen = calloc(n + 1, sizeof(*seen));
	if (!index || !seen) {
		ret = -ENOMEM;
		goto out;
	}
	n = 0;
	cJSON_ArrayForEach(item, entries)
	{
		if (!json_str(item, "path")) {
			fprintf(stderr, "stashfs: %s: an entry has no path\n",
				MANIFEST_NAME);
			goto out;
		}
		index[n++] = item;
	}
	qsort(index, n, sizeof(*index), by_json_path);
	for (size_t i = 0; i < x->n; i++) {
		const struct in_entry *ie = &x->ents[i];
		cJSON key = { .type = cJSON_Object }, *kp = &key, **hit;
		cJSON path = { .type = cJSON_String,
			       .valuestring = ie->path,
			       .string = "path" };
		const char *why;

		key.child = &path;
		hit = bsearch(&kp, index, n, sizeof(*index), by_json_path);
		why = !hit		  ? "not in the manifest"
		      : seen[hit - index] ? "twice in the archive"
					  : mismatch(ie, *hit);
		if (why) {
			fprintf(stderr, "stashfs: %s: %s\n", ie->path, why);
			goto out;
		}
		seen[hit - index] = true;
	}
	for (size_t i = 0; i < n; i++) {
		if (!seen[i]) {
			fprintf(stderr,
				"stashfs: %s: in the manifest but missing"
				" from the archive\n",
				json_str(index[i], "path"));
			goto out;
		}
	}
	*out = root;
	root = NULL;
	ret = 0;
out:
	free(index);
	free(seen);
	cJSON_Delete(root);
	return ret;
}

/*
 * Symlinks are checked by name as they come; together they could still
 * lead out (a/b -> .., then a/c -> b/..). Resolve each one through the
 * archive's symlinks (and, for an increment, the target's) and refuse
 * the first that climbs above the root.
 */
static int symlink_target_of(struct importer *x, const char *target_root,
			     const char *path, char *buf, size_t size)
{
	char p[TREE_PATH_MAX];

	for (size_t i = 0; i < x->n; i++)
		if (S_ISLNK(x->ents[i].mode) && !x->ents[i].hardlink &&
		    !strcmp(x->ents[i].path, path)) {
			snprintf(buf, size, "%s", x->ents[i].link);
			return 1;
		}
	if (!target_root || tree_join(p, sizeof(p), target_root, path))
		return 0;
	return sink_readlink(x->sink, p, buf, size) == 0;
}

static bool resolves_outside(struct importer *x, const char *target_root,
			     const char *link_path)
{
	/* A stack of components; the path being resolved is the queue. */
	char done[TREE_PATH_MAX] = "", todo[2 * TREE_PATH_MAX], next[PATH_MAX];
	int hops = 0;

	snprintf(todo, sizeof(todo), "%s", link_path);
	while (*todo) {
		size_t len = strcspn(todo, "/");
		char comp[NAME_MAX + 1];

		if (len > NAME_MAX)
			return true;
		memcpy(comp, todo, len);
		comp[len] = '\0';
		memmove(todo, todo + len + (todo[len] == '/'),
			strlen(todo + len + (todo[len] == '/')) + 1);
		if (!*comp || !strcmp(comp, "."))
			continue;
		if (!strcmp(comp, "..")) {
			char *slash = strrchr(done, '/');

			if (!*done)
				return true;
			*(slash ? slash : done) = '\0';
			continue;
		}
		{
			size_t dl = strlen(done);

			if (dl + len + 2 > sizeof(done))
				return true;
			if (dl)
				done[dl++] = '/';
			memcpy(done + dl, comp, len + 1);
		}
		if (symlink_target_of(x, target_root, done, next,
				      sizeof(next))) {
			char *slash = strrchr(done, '/');

			if (++hops > 40 || next[0] == '/')
				return true;
			*(slash ? slash : done) = '\0';
			if (strlen(next) + strlen(todo) + 2 > sizeof(todo))
				return true;
			memmove(todo + strlen(next) + 1, todo,
				strlen(todo) + 1);
			memcpy(todo, next, strlen(next));
			todo[strlen(next)] = '/';
		}
	}
	return false;
}

static int check_symlinks(struct importer *x, const char *target_root)
{
	for (size_t i = 0; i < x->n; i++)
		if (S_ISLNK(x->ents[i].mode) && !x->ents[i].hardlink &&
		    resolves_outside(x, target_root, x->ents[i].path))
			return fail_entry(x->ents[i].path,
					  "symlink leading out of the target");
	return 0;
}

/* ---- import: moving into place ---- */

static int by_path_desc(const void *a, const void *b)
{
	return tree_path_cmp((*(struct in_entry *const *)b)->path,
			     (*(struct in_entry *const *)a)->path);
}

/* Owners, modes, times and xattrs of the archive's directories under
 * root, deepest first: adding entries changed their times. */
static int set_dir_meta(struct importer *x, const char *root, bool xattrs)
{
	struct in_entry **dirs = calloc(x->n + 1, sizeof(*dirs));
	char p[TREE_PATH_MAX];
	size_t n = 0;
	int ret = dirs ? 0 : -ENOMEM;

	for (size_t i = 0; !ret && i < x->n; i++)
		if (S_ISDIR(x->ents[i].mode))
			dirs[n++] = &x->ents[i];
	if (n)
		qsort(dirs, n, sizeof(*dirs), by_path_desc);
	for (size_t i = 0; !ret && i < n; i++) {
		ret = tree_join(p, sizeof(p), root, dirs[i]->path);
		if (!ret && xattrs)
			ret = sink_replace_xattrs(x->sink, p, &dirs[i]->xattrs);
		if (!ret)
			ret = sink_set_meta(x->sink, p, &dirs[i]->attr,
					    x->with_owner);
		if (ret)
			report("cannot set attributes of", dirs[i]->path, ret);
	}
	free(dirs);
	return ret;
}

static int by_path_asc(const void *a, const void *b)
{
	return tree_path_cmp((*(struct in_entry *const *)a)->path,
			     (*(struct in_entry *const *)b)->path);
}

/* Apply a verified increment from the stage onto target. */
static int apply_increment(struct importer *x, const char *target,
			   const cJSON *deleted)
{
	struct in_entry **order = calloc(x->n + 1, sizeof(*order));
	char from[TREE_PATH_MAX], to[TREE_PATH_MAX];
	const cJSON *d;
	int ret = order ? 0 : -ENOMEM;

	for (size_t i = 0; i < x->n && order; i++)
		order[i] = &x->ents[i];
	if (order && x->n)
		qsort(order, x->n, sizeof(*order), by_path_asc);
	/* Parents before children: a directory is made (or kept) before
	 * anything moves into it. */
	for (size_t i = 0; !ret && i < x->n; i++) {
		const struct in_entry *ie = order[i];
		struct tree_attr cur;
		int have;

		ret = tree_join(to, sizeof(to), target, ie->path);
		if (!ret)
			ret = stage_path(x, ie->path, from, sizeof(from));
		if (ret)
			break;
		/* A directory stays (its entries are merged); anything
		 * else at the path gives way. */
		have = sink_stat(x->sink, to, &cur);
		if (have && have != -ENOENT)
			ret = have;
		else if (!have && (!S_ISDIR(cur.mode) || !S_ISDIR(ie->mode))) {
			ret = sink_remove(x->sink, to);
			have = -ENOENT;
		}
		if (!ret && S_ISDIR(ie->mode) && have)
			ret = sink_mkdir(x->sink, to, 0700);
		else if (!ret && !S_ISDIR(ie->mode))
			ret = sink_rename(x->sink, from, to);
		if (ret)
			report("cannot apply", ie->path, ret);
	}
	cJSON_ArrayForEach(d, deleted)
	{
		if (ret)
			break;
		ret = tree_join(to, sizeof(to), target, d->valuestring);
		if (!ret)
			ret = sink_remove(x->sink, to);
		if (ret == -ENOENT)
			ret = 0;
		if (ret)
			report("cannot delete", d->valuestring, ret);
	}
	if (!ret)
		ret = set_dir_meta(x, target, true);
	free(order);
	return ret;
}

/* The deleted list: strings, each a safe path. */
static int check_deleted(const cJSON *deleted)
{
	char rel[TREE_PATH_MAX];
	const char *why;
	const cJSON *d;

	if (!cJSON_IsArray(deleted))
		return -EBADMSG;
	cJSON_ArrayForEach(d, deleted)
	{
		if (!cJSON_IsString(d) ||
		    clean_path(d->valuestring, rel, sizeof(rel), &why) ||
		    strcmp(rel, d->valuestring) || !*rel)
			return fail_entry(cJSON_IsString(d) ? d->valuestring
							    : "?",
					  "bad path in the deleted list");
	}
	return 0;
}

/* Does the import at target hold snapshot name? */
static bool holds_snapshot(struct importer *x, const char *target,
			   const char *name)
{
	char mark[STASH_NAME_MAX + 1];
	ssize_t n =
		sink_getxattr(x->sink, target, IMPORT_MARK, mark, sizeof(mark));

	return n >= 0 && (size_t)n == strlen(name) && !memcmp(mark, name, n);
}

/* Read the archive into the stage, entry by entry. */
static int import_stream(struct importer *x)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	int r, ret = 0;

	if (!a)
		return -ENOMEM;
	if (archive_read_support_filter_all(a) ||
	    archive_read_support_format_tar(a) ||
	    archive_read_open2(a, x, NULL, import_read, NULL, NULL)) {
		ret = la_error(a, "cannot read", x->file);
		goto out;
	}
	snprintf(x->bad, sizeof(x->bad), "%s", "its start");
	while (!ret) {
		r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			fprintf(stderr,
				"stashfs: damaged archive after %s: %s\n",
				x->bad,
				archive_error_string(a)
					? archive_error_string(a)
					: "unreadable");
			ret = -EBADMSG;
			break;
		}
		ret = import_entry(x, a, e);
	}
out:
	archive_read_free(a);
	return ret;
}

/* mkdir -p in a sink. */
static int make_dirs(struct sink *s, const char *path)
{
	char p[TREE_PATH_MAX + 1];
	struct tree_attr a;
	int ret = 0;

	if (!*path)
		return 0;
	if ((size_t)snprintf(p, sizeof(p), "%s/", path) >= sizeof(p))
		return -ENAMETOOLONG;
	for (char *c = p; !ret && (c = strchr(c, '/')); *c++ = '/') {
		*c = '\0';
		ret = sink_stat(s, p, &a);
		if (ret == -ENOENT)
			ret = sink_mkdir(s, p, 0755);
		else if (!ret && !S_ISDIR(a.mode))
			ret = -ENOTDIR;
	}
	return ret;
}

static int open_archive(struct importer *x, const struct arc_opts *ao)
{
	uint8_t head[ARC_MAGIC_LEN];
	char buf[MAX_SECRET];
	struct arc_secret secret;
	struct stat sb;
	ssize_t n;
	int ret;

	x->fd = open(x->file, O_RDONLY | O_CLOEXEC);
	if (x->fd < 0 || fstat(x->fd, &sb) < 0) {
		ret = -errno;
		report("cannot open", x->file, ret);
		return ret;
	}
	progress_init(&x->prog, "import", (uint64_t)sb.st_size);
	n = pread(x->fd, head, sizeof(head), 0);
	if (n < 0 || !arc_is_sealed(head, (size_t)n)) {
		if (ao->key_file || ao->pass_file)
			fprintf(stderr,
				"stashfs: %s is not sealed: the"
				" archive secret is not used\n",
				x->file);
		return 0;
	}
	if (lseek(x->fd, sizeof(head), SEEK_SET) < 0)
		return -errno;
	ret = arc_secret_get(ao, false, buf, sizeof(buf), &secret);
	if (!ret)
		ret = arc_reader_new(&x->crypt, x->fd, head, &secret);
	stash_crypto_wipe(buf, sizeof(buf));
	if (ret == -EACCES)
		fprintf(stderr,
			"stashfs: %s: wrong archive passphrase or key (or an"
			" altered header)\n",
			x->file);
	else if (ret == -EBADMSG || ret == -EPROTO)
		fprintf(stderr, "stashfs: %s: %s sealed-archive header\n",
			x->file, ret == -EPROTO ? "a newer" : "malformed");
	else if (ret)
		report("cannot open", x->file, ret);
	return ret;
}

static bool snap_name_ok(const char *s)
{
	return s && *s && strcmp(s, ".") && strcmp(s, "..") &&
	       !strchr(s, '/') && strlen(s) <= STASH_NAME_MAX;
}

/* Move the verified stage into place. */
static int import_apply(struct importer *x, const cJSON *man, const char *to)
{
	const char *snap = json_str(man, "snapshot");
	const char *base = json_str(man, "base");
	const cJSON *deleted = cJSON_GetObjectItemCaseSensitive(man, "deleted");
	const char *target = to ? to : base ? base : snap;
	struct tree_attr a;
	int ret;

	if (!snap_name_ok(snap) ||
	    (cJSON_GetObjectItemCaseSensitive(man, "base") &&
	     !snap_name_ok(base))) {
		fprintf(stderr, "stashfs: %s: bad snapshot name\n",
			MANIFEST_NAME);
		return -EBADMSG;
	}
	if (base && (ret = check_deleted(deleted)))
		return ret;
	if (!base && !sink_stat(x->sink, target, &a)) {
		fprintf(stderr,
			"stashfs: /%s exists: a full archive goes to a new"
			" path (--to PATH)\n",
			target);
		return -EEXIST;
	}
	if (base && !holds_snapshot(x, target, base)) {
		fprintf(stderr,
			"stashfs: /%s does not hold an import of snapshot %s:"
			" import the full archive and the increments in"
			" order\n",
			target, base);
		return -ENOENT;
	}
	if (base && !to && strcmp(base, snap) &&
	    !sink_stat(x->sink, snap, &a)) {
		fprintf(stderr, "stashfs: /%s exists already\n", snap);
		return -EEXIST;
	}
	/* With the target's own symlinks, which an increment joins. */
	ret = base ? check_symlinks(x, target) : 0;
	if (ret)
		return ret;
	if (!base) {
		struct tree_attr root = { .mode = S_IFDIR | 0755,
					  .atime = stash_wall_ns(),
					  .mtime = stash_wall_ns() };

		ret = set_dir_meta(x, x->stage, false);
		if (!ret)
			ret = sink_setxattr(x->sink, x->stage, IMPORT_MARK,
					    snap, strlen(snap));
		if (!ret)
			ret = sink_set_meta(x->sink, x->stage, &root, false);
		if (!ret)
			ret = sink_rename(x->sink, x->stage, target);
		if (!ret)
			x->staged = false;
		if (ret)
			report("cannot move the import to", target, ret);
		else
			printf("imported snapshot %s (%zu entries) at /%s\n",
			       snap, x->n, target);
		return ret;
	}
	/* From here on the target changes: a failure is reported as such. */
	ret = apply_increment(x, target, deleted);
	if (!ret)
		ret = sink_setxattr(x->sink, target, IMPORT_MARK, snap,
				    strlen(snap));
	if (!ret)
		ret = sink_remove(x->sink, x->stage);
	if (!ret)
		x->staged = false;
	if (!ret && !to && strcmp(base, snap))
		ret = sink_rename(x->sink, target, snap);
	if (ret) {
		fprintf(stderr,
			"stashfs: applying the increment to /%s failed"
			" part way: /%s is neither %s nor %s\n",
			target, target, base, snap);
		x->partial = true;
		return -EIO;
	}
	printf("imported snapshot %s over %s (%zu entries) at /%s\n", snap,
	       base, x->n, !to && strcmp(base, snap) ? snap : target);
	return 0;
}

int cmd_import(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "archive-key-file", required_argument, NULL, 'K' },
		{ "archive-passphrase-file", required_argument, NULL, 'A' },
		SECRET_LONG_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct secret_opts so = { 0 };
	struct arc_opts ao = { 0 };
	struct tree_place place = { 0 };
	struct importer x = { .fd = -1 };
	char to[TREE_PATH_MAX], parent[TREE_PATH_MAX], *slash;
	const char *where, *to_arg = NULL, *why;
	uint8_t rnd[6];
	char rnd_hex[13];
	cJSON *man = NULL;
	int c, ret, err;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (secret_option(c, &so))
			continue;
		switch (c) {
		case 't':
			to_arg = optarg;
			break;
		case 'K':
			ao.key_file = optarg;
			break;
		case 'A':
			ao.pass_file = optarg;
			break;
		case 'h':
			printf("usage: %s\n", import_usage);
			return 0;
		default:
			die_usage(import_usage);
		}
	}
	if (optind + 2 != argc || (ao.key_file && ao.pass_file))
		die_usage(import_usage);
	x.file = argv[optind];
	where = argv[optind + 1];
	if (to_arg) {
		while (*to_arg == '/')
			to_arg++;
		if (clean_path(to_arg, to, sizeof(to), &why) || !*to) {
			fprintf(stderr, "stashfs: --to %s: %s\n", to_arg,
				why ? why : "names the root");
			return EXIT_USAGE;
		}
	}
	ret = open_archive(&x, &ao);
	if (ret)
		goto out;
	ret = place_open(&place, where, &so);
	if (!ret)
		ret = place_sink(&place, &x.sink);
	if (ret)
		goto out;
	x.with_owner = geteuid() == 0;
	x.rbuf = malloc(IO_BUF);
	x.buf = malloc(IO_BUF);
	x.md = EVP_MD_CTX_new();
	if (!x.rbuf || !x.buf || !x.md) {
		ret = -ENOMEM;
		goto out;
	}
	/* The stage sits beside the target, so moving it in is a rename. */
	snprintf(parent, sizeof(parent), "%s", to_arg ? to : "");
	slash = strrchr(parent, '/');
	*(slash ? slash : parent) = '\0';
	ret = make_dirs(x.sink, parent);
	if (!ret)
		ret = stash_crypto_random(rnd, sizeof(rnd));
	stash_hex(rnd, sizeof(rnd), rnd_hex);
	if (!ret &&
	    (size_t)snprintf(x.stage, sizeof(x.stage), "%s%s.stashfs-import-%s",
			     parent, *parent ? "/" : "",
			     rnd_hex) >= sizeof(x.stage))
		ret = -ENAMETOOLONG;
	if (!ret)
		ret = sink_mkdir(x.sink, x.stage, 0700);
	if (ret) {
		report("cannot make a staging directory in", where, ret);
		goto out;
	}
	x.staged = true;
	ret = import_stream(&x);
	/* Links that lead out are refused whatever the manifest says. */
	if (!ret)
		ret = check_symlinks(&x, NULL);
	/* A stream that broke after the manifest: name the first file that
	 * does not match it, if one does not. */
	if (!ret || x.manifest)
		err = check_manifest(&x, &man);
	else
		err = 0;
	ret = ret ? ret : err;
	progress_done(&x.prog);
	if (!ret)
		ret = import_apply(&x, man, to_arg ? to : NULL);
out:
	if (x.staged && sink_remove(x.sink, x.stage))
		fprintf(stderr,
			"stashfs: could not remove the staging directory"
			" %s\n",
			x.stage);
	if (ret && !x.partial)
		fprintf(stderr, "stashfs: %s: nothing was imported\n", x.file);
	progress_done(&x.prog);
	for (size_t i = 0; i < x.n; i++) {
		free(x.ents[i].path);
		free(x.ents[i].link);
		xattr_list_release(&x.ents[i].xattrs);
	}
	free(x.ents);
	ino_map_release(&x.paths);
	free(x.manifest);
	free(x.sum);
	free(x.rbuf);
	free(x.buf);
	EVP_MD_CTX_free(x.md);
	cJSON_Delete(man);
	arc_free(x.crypt);
	sink_free(x.sink);
	if (x.fd >= 0)
		close(x.fd);
	return place_exit(&place, where, ret);
}
