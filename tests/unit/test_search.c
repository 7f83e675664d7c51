/*
 * test_search.c - the full-text index through the store API, without FUSE:
 * articles, JSON Lines records, text and binary files are found by words,
 * fields, dates, area and name; the index follows overwrite, truncate,
 * rename and unlink; malformed JSON is reported on the file; a query that
 * does not parse is refused with its reason; the index survives a reopen,
 * and files changed while no indexer ran are indexed at the next start.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"
#include "testutil.h"

static const char key_hex[] =
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

struct ctx {
	char dir[64];
	char path[96];
	struct stash_secret secret;
	struct stash_store *st;
};

static void open_store(struct ctx *c, bool indexer)
{
	assert_int_equal(stash_store_open(&c->st, c->path, &c->secret), 0);
	if (indexer)
		assert_int_equal(stash_index_start(c->st), 0);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	struct stash_config cfg;

	if (!c)
		return -1;
	snprintf(c->dir, sizeof(c->dir), "/tmp/test_search.XXXXXX");
	if (!mkdtemp(c->dir))
		return -1;
	snprintf(c->path, sizeof(c->path), "%s/store", c->dir);
	c->secret = (struct stash_secret){ key_hex, strlen(key_hex) };
	stash_config_defaults(&cfg);
	if (stash_store_init(c->path, &cfg, &c->secret))
		return -1;
	open_store(c, true);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	if (c->st)
		stash_store_close(c->st);
	test_rmtree(c->dir);
	free(c);
	return 0;
}

/* The inode of an area (a top-level folder made by init). */
static uint64_t area(struct ctx *c, const char *name)
{
	struct stash_attr a;

	assert_int_equal(stash_store_lookup(c->st, STASH_ROOT_INO, name, &a),
			 0);
	return a.ino;
}

/* Create or replace dir/name with text, committed (closed). */
static uint64_t put(struct ctx *c, uint64_t dir, const char *name,
		    const char *text)
{
	struct stash_attr a;
	struct stash_file *f;
	int ret = stash_store_lookup(c->st, dir, name, &a);

	if (ret == -ENOENT)
		assert_int_equal(stash_store_mknod(c->st, dir, name,
						   S_IFREG | 0644, 0, 0, 0, &a),
				 0);
	assert_int_equal(stash_file_open(c->st, a.ino, &f), 0);
	if (ret == 0) {
		struct stash_attr in = { .size = 0 }, out;

		assert_int_equal(stash_store_setattr(c->st, a.ino, &in,
						     STASH_SET_SIZE, &out),
				 0);
	}
	assert_int_equal(stash_file_write(c->st, f, text, strlen(text), 0),
			 (ssize_t)strlen(text));
	assert_int_equal(stash_file_release(c->st, f), 0);
	return a.ino;
}

/* The hits of query as "name:line" joined by spaces, best first. */
struct hits {
	char text[4096];
	size_t n;
};

static int add_hit(void *arg, const struct stash_search_hit *h)
{
	struct hits *hs = arg;
	size_t used = strlen(hs->text);

	snprintf(hs->text + used, sizeof(hs->text) - used, "%s%s:%llu",
		 used ? " " : "", h->name, (unsigned long long)h->line);
	hs->n++;
	return 0;
}

static const char *search(struct ctx *c, const char *query)
{
	static struct hits hs;
	char err[256] = "";

	memset(&hs, 0, sizeof(hs));
	assert_int_equal(stash_store_search(c->st, query, add_hit, &hs, err,
					    sizeof(err)),
			 0);
	return hs.text;
}

static const char article_a[] =
	"{\"title\": \"Storage engines explained\","
	" \"content\": \"Log-structured merge trees and B-trees.\","
	" \"author\": [\"Ada Smith\", \"Bob Jones\"],"
	" \"published_at\": \"2024-01-15\", \"tags\": [\"databases\"],"
	" \"url\": \"https://example.com/storage\", \"lang\": \"en\"}";

static const char batch[] =
	"{\"title\": \"کتاب‌های تازه\", \"content\": \"فهرست کتاب‌ها\","
	" \"published_at\": \"2024-03-01\", \"lang\": \"fa\"}\n"
	"{\"title\": \"broken\", }\n"
	"{\"title\": \"Новости дня\", \"content\": \"ёлка и зима\","
	" \"published_at\": \"2023-12-31T23:00:00Z\", \"lang\": \"ru\"}\n";

static void fill(struct ctx *c)
{
	uint64_t articles = area(c, "articles"), files = area(c, "files");

	put(c, articles, "a.json", article_a);
	put(c, articles, "batch.jsonl", batch);
	put(c, files, "notes.txt", "meeting about storage quotas\n");
	put(c, files, "image.bin", "\x89PNG\r\n\x1a\n\x00\x00\x00\x0d");
	put(c, articles, "bad.json", "{\"title\": \"unfinished\"");
}

static void test_find(void **state)
{
	struct ctx *c = *state;
	char err[256];
	ssize_t n;

	fill(c);
	/* Title outranks body: the article before the text file. */
	assert_string_equal(search(c, "storage"), "a.json:0 notes.txt:0");
	assert_string_equal(search(c, "\"merge trees\""), "a.json:0");
	assert_string_equal(search(c, "author:smith"), "a.json:0");
	assert_string_equal(search(c, "tag:databases"), "a.json:0");
	assert_string_equal(search(c, "url:example.com"), "a.json:0");
	assert_string_equal(search(c, "storage NOT quotas"), "a.json:0");
	/* A group next to a word or a field (FTS5 wants an AND there). */
	assert_string_equal(search(c, "(merge OR nothing) storage"),
			    "a.json:0");
	assert_string_equal(search(c, "storage (merge OR nothing)"),
			    "a.json:0");
	assert_string_equal(search(c, "author:(smith OR nobody) storage"),
			    "a.json:0");
	assert_string_equal(search(c, "(merge OR quotas) author:smith"),
			    "a.json:0");
	assert_string_equal(search(c, "area:files storage"), "notes.txt:0");
	assert_string_equal(search(c, "name:*.TXT"), "notes.txt:0");
	assert_string_equal(search(c, "name:image.*"), "image.bin:0");
	assert_string_equal(search(c, "storage limit:1"), "a.json:0");
	/* JSON Lines: each record on its own, by line; diacritics and the
	 * Persian half-space do not matter. */
	assert_string_equal(search(c, "کتاب"), "batch.jsonl:1");
	assert_string_equal(search(c, "елка"), "batch.jsonl:3");
	assert_string_equal(search(c, "lang:ru"), "batch.jsonl:3");
	/* Dates: published_at, after inclusive, before exclusive. */
	assert_string_equal(
		search(c, "area:articles after:2024-01-01 before:2024-02-01"),
		"a.json:0");
	assert_string_equal(search(c, "lang:fa after:2024-03-01"),
			    "batch.jsonl:1");
	assert_string_equal(search(c, "lang:ru after:2024-01-01"), "");
	/* Malformed JSON: stored as written, its reason on the file. */
	n = stash_store_getxattr(c->st, area(c, "articles"), "user.x", err,
				 sizeof(err));
	assert_int_equal(n, -ENODATA);
	{
		struct stash_attr a;

		assert_int_equal(stash_store_lookup(c->st, area(c, "articles"),
						    "batch.jsonl", &a),
				 0);
		n = stash_store_getxattr(c->st, a.ino,
					 "user.stashfs.index_error", err,
					 sizeof(err) - 1);
		assert_true(n > 0);
		err[n] = '\0';
		assert_non_null(strstr(err, "line 2"));
		assert_int_equal(stash_store_lookup(c->st, area(c, "articles"),
						    "bad.json", &a),
				 0);
		n = stash_store_getxattr(c->st, a.ino,
					 "user.stashfs.index_error", err,
					 sizeof(err) - 1);
		assert_true(n > 0);
	}
}

static void test_follows_changes(void **state)
{
	struct ctx *c = *state;
	uint64_t files;
	struct stash_attr a;

	fill(c);
	files = area(c, "files");
	/* Overwrite: the old words go, the new ones come. */
	put(c, files, "notes.txt", "agenda: budget review\n");
	assert_string_equal(search(c, "quotas"), "");
	assert_string_equal(search(c, "budget"), "notes.txt:0");
	/* Rename: found under the new name, in the new area. */
	assert_int_equal(stash_store_rename(c->st, files, "notes.txt",
					    area(c, "programs"), "plan.md", 0),
			 0);
	assert_string_equal(search(c, "budget"), "plan.md:0");
	assert_string_equal(search(c, "area:files budget"), "");
	assert_string_equal(search(c, "area:programs budget"), "plan.md:0");
	/* Truncate: the content goes. */
	assert_int_equal(
		stash_store_lookup(c->st, area(c, "programs"), "plan.md", &a),
		0);
	{
		struct stash_attr in = { .size = 0 }, out;

		assert_int_equal(stash_store_setattr(c->st, a.ino, &in,
						     STASH_SET_SIZE, &out),
				 0);
	}
	assert_string_equal(search(c, "budget"), "");
	assert_string_equal(search(c, "name:plan.md"), "plan.md:0");
	/* Unlink: gone. */
	assert_int_equal(
		stash_store_unlink(c->st, area(c, "programs"), "plan.md"), 0);
	assert_string_equal(search(c, "name:plan.md"), "");
}

static void test_bad_query(void **state)
{
	struct ctx *c = *state;
	struct hits hs = { 0 };
	char err[256] = "";

	assert_int_equal(stash_store_search(c->st, "autor:x", add_hit, &hs, err,
					    sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "autor"));
	err[0] = '\0';
	assert_int_equal(stash_store_search(c->st, "(storage", add_hit, &hs,
					    err, sizeof(err)),
			 -EINVAL);
	assert_true(err[0] != '\0');
	assert_int_equal(hs.n, 0);
}

static void test_persists_and_catches_up(void **state)
{
	struct ctx *c = *state;

	fill(c);
	/* Closing stops the indexer where it is (the queue stays for the
	 * next start): let it finish first. */
	assert_int_equal(stash_index_wait(c->st, 10000), 0);
	assert_int_equal(stash_store_close(c->st), 0);
	/* Without an indexer, what was indexed is still found. */
	open_store(c, false);
	assert_string_equal(search(c, "storage"), "a.json:0 notes.txt:0");
	/* A change made with no indexer running drops the old documents at
	 * once, and the next indexer indexes it. */
	put(c, area(c, "files"), "notes.txt", "nothing here\n");
	assert_string_equal(search(c, "storage"), "a.json:0");
	assert_string_equal(search(c, "nothing"), "");
	assert_int_equal(stash_store_close(c->st), 0);
	open_store(c, true);
	assert_string_equal(search(c, "nothing"), "notes.txt:0");
}

/* A JSON Lines batch of n records of about 3 KiB; record k says k. */
static char *make_batch(int n, int edited)
{
	size_t cap = (size_t)n * 3200, len = 0;
	char *b = malloc(cap);

	assert_non_null(b);
	for (int k = 0; k < n; k++) {
		len += (size_t)snprintf(b + len, cap - len,
					"{\"title\": \"article %d%s\","
					" \"content\": \"",
					k, k == edited ? " (edited)" : "");
		for (int w = 0; w < 300; w++)
			len += (size_t)snprintf(b + len, cap - len, "w%d ",
						(k * 7919 + w * 104729) %
							100000);
		len += (size_t)snprintf(b + len, cap - len, "\"}\n");
	}
	return b;
}

/* Editing one record of a batch stores one new chunk: the batch is cut
 * at record ends, so its neighbours keep theirs. */
static void test_batch_chunks(void **state)
{
	struct ctx *c = *state;
	uint64_t articles = area(c, "articles");
	struct stash_store_stats s0, s1;
	char *before = make_batch(400, -1), *edited = make_batch(400, 200);

	put(c, articles, "batch.jsonl", before);
	assert_int_equal(stash_store_stats(c->st, &s0), 0);
	put(c, articles, "batch.jsonl", edited);
	assert_int_equal(stash_store_stats(c->st, &s1), 0);
	assert_int_equal(s1.chunks_written - s0.chunks_written, 1);
	/* The edit is found, in its own record. */
	assert_string_equal(search(c, "edited"), "batch.jsonl:201");
	free(before);
	free(edited);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_find, setup, teardown),
		cmocka_unit_test_setup_teardown(test_follows_changes, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_query, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_batch_chunks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_persists_and_catches_up,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
