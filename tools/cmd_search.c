/*
 * cmd_search.c - `stashfs search STORE|MNT QUERY [--json]` and
 * `stashfs reindex STORE|MNT`.
 *
 * On a mount point search reads MNT/.search/QUERY/.results.json, the
 * filesystem's own interface to the index (the daemon holds the store),
 * and reindex sets the xattr user.stashfs.reindex on MNT. On an unmounted
 * store both open it and call store/ directly, running the indexer so
 * that files queued while nothing indexed them are found. It does not
 * parse queries itself: the store's parser is the only judge, and both
 * paths hand it the query percent-encoded as a directory name ('%' ->
 * %25, '/' -> %2F), so a query means the same on both.
 *
 * Exit codes: 0 success (also when nothing matches), 1 failure or a query
 * that does not parse (the reason on stderr), 2 usage, 3 wrong key,
 * 4 STORE is mounted (name the mount point instead).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"

static const char search_usage[] =
	"stashfs search STORE|MNT QUERY [--json] [--key-file F |"
	" --passphrase-file F]\n"
	"  Print the files that match QUERY, best first: PATH[:LINE]  TITLE\n"
	"  (LINE for a record of a JSON Lines batch). --json prints what\n"
	"  MNT/.search/QUERY/.results.json holds. QUERY is the language of\n"
	"  .search (see MNT/.search/README): words, \"phrases\", AND OR NOT,\n"
	"  prefix*, NEAR(a b, 5), author: tag: url: lang: title: content:,\n"
	"  area: name:GLOB after:DATE before:DATE limit:N.\n"
	"  Exit code 0 (also for no match), 1 when QUERY does not parse\n"
	"  (the reason on stderr), 2 usage, 4 STORE is mounted.";

static const char reindex_usage[] =
	"stashfs reindex STORE|MNT [--key-file F | --passphrase-file F]\n"
	"  Drop the search index and build it again from every file. On a\n"
	"  store it returns when the index is complete; on a mount point the\n"
	"  daemon rebuilds it in the background and searches wait for it.";

/* Wait this long for a store's indexer (a rebuild reads every file). */
#define INDEX_WAIT_MS (24 * 3600 * 1000)

/* The query as one path component: '%' -> %25, '/' -> %2F. */
static int encode_query(const char *q, char *out, size_t size)
{
	size_t n = 0;

	for (; *q; q++) {
		const char *s = *q == '%' ? "%25" : *q == '/' ? "%2F" : NULL;
		size_t len = s ? 3 : 1;

		if (n + len >= size)
			return -ENAMETOOLONG;
		if (s)
			memcpy(out + n, s, 3);
		else
			out[n] = *q;
		n += len;
	}
	out[n] = '\0';
	return 0;
}

/* The whole of a file into *out (malloc'd, NUL-terminated). */
static int read_whole(const char *path, char **out)
{
	size_t len = 0, cap = 0;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			char *b = realloc(buf, cap ? 2 * cap : 65536);

			if (!b) {
				ret = -ENOMEM;
				break;
			}
			buf = b;
			cap = cap ? 2 * cap : 65536;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (ret) {
		free(buf);
		return ret;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

/*
 * Why the mount refused name: the last line of MNT/.search/.errors that
 * starts with "name: " (the line is "QUERY: reason"), copied into why.
 */
static void mount_reason(const char *mnt, const char *name, char *why,
			 size_t size)
{
	char path[PATH_MAX], *text = NULL, *p;
	size_t len = strlen(name);

	snprintf(why, size, "invalid query");
	if ((size_t)snprintf(path, sizeof(path), "%s/.search/.errors", mnt) >=
		    sizeof(path) ||
	    read_whole(path, &text))
		return;
	for (p = text; *p;) {
		char *end = strchr(p, '\n');

		if (end)
			*end = '\0';
		if (!strncmp(p, name, len) && p[len] == ':' &&
		    p[len + 1] == ' ')
			snprintf(why, size, "%s", p + len + 2);
		if (!end)
			break;
		p = end + 1;
	}
	free(text);
}

/* The results of query on the mount mnt as JSON (malloc'd). */
static int search_mount(const char *mnt, const char *query, char **json,
			char *why, size_t size)
{
	char name[NAME_MAX * 3 + 1], path[PATH_MAX], probe[PATH_MAX];
	int ret;

	if ((size_t)snprintf(probe, sizeof(probe), "%s/.search", mnt) >=
	    sizeof(probe))
		return -ENAMETOOLONG;
	if (access(probe, F_OK) < 0) {
		snprintf(why, size, "not a stashfs store or mount point");
		return -ENOENT;
	}
	ret = encode_query(query, name, sizeof(name));
	if (!ret &&
	    (size_t)snprintf(path, sizeof(path), "%s/.search/%s/.results.json",
			     mnt, name) >= sizeof(path))
		ret = -ENAMETOOLONG;
	if (!ret)
		ret = read_whole(path, json);
	if (ret == -EINVAL)
		mount_reason(mnt, name, why, size);
	else if (ret == -ENAMETOOLONG)
		snprintf(why, size, "query longer than 255 bytes");
	return ret;
}

/* The results of query in the unmounted store path as JSON (malloc'd). */
static int search_store(const char *path, const struct secret_opts *so,
			const char *query, char **json, char *why, size_t size)
{
	struct stash_store *st = NULL;
	char name[NAME_MAX * 3 + 1];
	int ret = encode_query(query, name, sizeof(name));

	/* The store parses a directory name, as the mount hands it over. */
	if (!ret)
		ret = open_store_or_mount_hint(path, so, &st,
					       "name its mount point instead");
	if (ret) {
		if (ret == -ENAMETOOLONG)
			snprintf(why, size, "query longer than 255 bytes");
		return ret;
	}
	/* Files changed while nothing indexed them are indexed first. */
	ret = stash_index_start(st);
	if (!ret)
		ret = stash_index_wait(st, INDEX_WAIT_MS);
	if (!ret)
		ret = stash_store_search_json(st, name, json, why, size);
	if (ret == -ENAMETOOLONG)
		snprintf(why, size, "query longer than 255 bytes");
	stash_store_close(st);
	return ret;
}

/* One line per hit: PATH[:LINE]  TITLE. */
static int print_hits(const char *json)
{
	cJSON *arr = cJSON_Parse(json), *o;

	if (!cJSON_IsArray(arr)) {
		cJSON_Delete(arr);
		return -EBADMSG;
	}
	cJSON_ArrayForEach(o, arr)
	{
		const cJSON *path = cJSON_GetObjectItemCaseSensitive(o, "path");
		const cJSON *line = cJSON_GetObjectItemCaseSensitive(o, "line");
		const cJSON *title =
			cJSON_GetObjectItemCaseSensitive(o, "title");

		if (!cJSON_IsString(path))
			continue;
		fputs(path->valuestring, stdout);
		if (cJSON_IsNumber(line) && line->valuedouble > 0)
			printf(":%.0f", line->valuedouble);
		if (cJSON_IsString(title) && title->valuestring[0])
			printf("  %s", title->valuestring);
		putchar('\n');
	}
	cJSON_Delete(arr);
	return 0;
}

int cmd_search(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		SECRET_LONG_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct secret_opts so = { 0 };
	char why[256] = "", *json = NULL;
	const char *path, *query;
	bool as_json = false;
	int c, ret;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (secret_option(c, &so))
			continue;
		switch (c) {
		case 'j':
			as_json = true;
			break;
		case 'h':
			printf("usage: %s\n", search_usage);
			return 0;
		default:
			die_usage(search_usage);
		}
	}
	if (optind + 2 != argc)
		die_usage(search_usage);
	path = argv[optind];
	query = argv[optind + 1];
	if (is_store_dir(path))
		ret = search_store(path, &so, query, &json, why, sizeof(why));
	else
		ret = search_mount(path, query, &json, why, sizeof(why));
	if (ret == -EBUSY)
		return EXIT_BUSY; /* open_store_or_mount_hint said why */
	if (ret == -EINVAL || ret == -ENAMETOOLONG) {
		fprintf(stderr, "stashfs: bad query '%s': %s\n", query,
			why[0] ? why : "invalid query");
		return EXIT_FAILURE;
	}
	if (ret == -ENOENT && why[0]) {
		fprintf(stderr, "stashfs: %s: %s\n", path, why);
		return EXIT_FAILURE;
	}
	if (!ret) {
		if (as_json)
			printf("%s\n", json);
		else
			ret = print_hits(json);
	}
	free(json);
	if (ret) {
		report("cannot search", path, ret);
		return exit_code(ret);
	}
	return fflush(stdout) ? EXIT_FAILURE : 0;
}

int cmd_reindex(int argc, char **argv)
{
	static const struct option opts[] = {
		SECRET_LONG_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct secret_opts so = { 0 };
	struct stash_store *st = NULL;
	const char *path;
	int c, ret;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (secret_option(c, &so))
			continue;
		switch (c) {
		case 'h':
			printf("usage: %s\n", reindex_usage);
			return 0;
		default:
			die_usage(reindex_usage);
		}
	}
	if (optind + 1 != argc)
		die_usage(reindex_usage);
	path = argv[optind];
	if (!is_store_dir(path)) {
		ret = setxattr(path, "user.stashfs.reindex", "1", 1, 0) < 0
			      ? -errno
			      : 0;
		if (ret == -ENOTSUP || ret == -EPERM)
			fprintf(stderr,
				"stashfs: %s is not a stashfs store or mount"
				" point\n",
				path);
		else if (!ret)
			printf("Reindexing %s in the background; searches"
			       " wait for it\n",
			       path);
		else
			report("cannot reindex", path, ret);
		return ret ? exit_code(ret) : 0;
	}
	ret = open_store_or_mount_hint(path, &so, &st,
				       "name its mount point instead");
	if (ret) {
		if (ret != -EBUSY)
			report("cannot open store", path, ret);
		return exit_code(ret);
	}
	ret = stash_store_reindex(st);
	if (!ret)
		ret = stash_index_start(st);
	if (!ret)
		ret = stash_index_wait(st, INDEX_WAIT_MS);
	c = stash_store_close(st);
	if (!ret)
		ret = c;
	if (ret) {
		report("cannot reindex", path, ret);
		return exit_code(ret);
	}
	printf("Reindexed %s\n", path);
	return 0;
}
