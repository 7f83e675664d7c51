/*
 * test_query.c - unit tests for store/query.c.
 *
 * Every valid query of the list is parsed, its MATCH expression compared
 * with the expected text where the text matters, then run against a real
 * in-memory FTS5 table (the columns and tokenizer the index uses, rows in
 * eight languages stored through textnorm) and must select exactly the
 * expected rows. Filters are checked field by field; every error is
 * checked with its message; FTS5's own rejections come back through
 * stash_query_fts5_check.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "query.h"
#include "testutil.h"
#include "textnorm.h"
#include "util.h"

#define NS INT64_C(1000000000)

/* One document: title, content, author, tags, url, lang, meta, name. */
static const char *const docs[][8] = {
	/* 1 */ { "Storage engines explained",
		  "The quick brown fox jumps over the lazy dog", "Jane Doe",
		  "databases, storage", "https://example.com/news/storage",
		  "en", "", "storage.json" },
	/* 2 */
	{ "Straßenbahn in München", "Die Straßenbahn fährt über die Brücke",
	  "Jürgen Müller", "verkehr", "https://zeitung.de/muenchen", "de", "",
	  "tram.json" },
	/* 3 */
	{ "Le café parisien", "Le café est très apprécié à Paris",
	  "Amélie Poulain", "culture", "https://journal.fr/cafe", "fr", "",
	  "cafe.json" },
	/* 4 */
	{ "Ёлка в Москве", "Новогодняя ёлка стоит на площади", "Пётр Иванов",
	  "праздник", "https://novosti.ru/elka", "ru", "", "elka.json" },
	/* 5 */
	{ "کتاب‌های فارسی",
	  "من می‌خواهم کتاب بخوانم", "علی رضایی", "ادبیات",
	  "https://khabar.ir/ketab", "fa", "", "ketab.json" },
	/* 6 */
	{ "الكِتَابُ العربي", "ذهب الطالب إلى المدرسة في القاهرة", "محمد علي",
	  "تعليم", "https://akhbar.eg/madrasa", "ar", "", "madrasa.json" },
	/* 7 */
	{ "北京大学新闻", "我爱北京天安门", "王小明", "教育",
	  "https://news.cn/pku", "zh-CN", "", "pku.json" },
	/* 8 */
	{ "東京タワー", "東京タワーは日本の電波塔です", "山田太郎", "観光",
	  "https://nihon.jp/tower", "ja", "", "tower.json" },
	/* 9 */
	{ "Jane Austen novels", "storage of old books; the fox is quick",
	  "John Smith", "books", "https://example.org/books", "en", "",
	  "austen.txt" },
	/* 10 */
	{ "Disk and storage", "a quick note about disks and the dog",
	  "Jane Smith", "storage, disk", "https://example.com/disk", "en-GB",
	  "", "disk.md" },
};

static sqlite3 *db;

static int setup(void **state)
{
	sqlite3_stmt *st;

	(void)state;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db,
			     "CREATE VIRTUAL TABLE docs_fts USING fts5(title, "
			     "content, author, tags, url, lang, meta, name, "
			     "tokenize='unicode61 remove_diacritics 2')",
			     NULL, NULL, NULL),
		SQLITE_OK);
	assert_int_equal(
		sqlite3_prepare_v2(db,
				   "INSERT INTO docs_fts(rowid, title, "
				   "content, author, tags, url, lang, "
				   "meta, name) VALUES (?, ?, ?, ?, "
				   "?, ?, ?, ?, ?)",
				   -1, &st, NULL),
		SQLITE_OK);
	for (size_t i = 0; i < STASH_ARRAY_SIZE(docs); i++) {
		sqlite3_bind_int64(st, 1, (int64_t)i + 1);
		for (int c = 0; c < 8; c++) {
			char *n;

			assert_int_equal(
				stash_textnorm(docs[i][c], strlen(docs[i][c]),
					       STASH_TEXTNORM_INDEX, &n, NULL),
				0);
			sqlite3_bind_text(st, c + 2, n, -1, free);
		}
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sqlite3_close(db);
	return 0;
}

/* The rowids match selects, "1,3", in order. */
static void rows_of(const char *match, char *out, size_t cap)
{
	test_fts_rows(db, "docs_fts", match, out, cap);
}

static struct stash_query *parse_ok(const char *name)
{
	struct stash_query *q = NULL;
	char err[STASH_QUERY_ERR_MAX];
	int rc = stash_query_parse(name, &q, err, sizeof(err));

	if (rc)
		fail_msg("'%s': %d %s", name, rc, err);
	assert_non_null(q);
	return q;
}

static const struct {
	const char *query; /* the directory name typed */
	const char *match; /* the MATCH text wanted; NULL: not checked */
	const char *rows;  /* the rows it must select, exactly */
} valid[] = {
	/* Words, phrases, operators. */
	{ "storage", "\"storage\"", "1,9,10" },
	{ "storage explained", "\"storage\" \"explained\"", "1" },
	{ "storage AND explained", "\"storage\" AND \"explained\"", "1" },
	{ "fox OR disk", "\"fox\" OR \"disk\"", "1,9,10" },
	{ "fox NOT dog", "\"fox\" NOT \"dog\"", "9" },
	{ "(fox OR disk) NOT jane", "(\"fox\" OR \"disk\") NOT \"jane\"", "" },
	{ "(fox OR disk) NOT smith", NULL, "1" },
	{ "\"quick brown\"", "\"quick brown\"", "1" },
	{ "\"fox is quick\"", NULL, "9" },
	{ "\"brown quick\"", NULL, "" },
	{ "stor*", "\"stor\"*", "1,9,10" },
	{ "fox *", "\"fox\"*", "1,9" },
	{ "\"quick bro\"*", "\"quick bro\"*", "1" },
	{ "^storage", "^\"storage\"", "1,9,10" },
	{ "NEAR(quick dog, 5)", "NEAR(\"quick\" \"dog\", 5)", "10" },
	{ "NEAR(quick dog)", "NEAR(\"quick\" \"dog\")", "1,10" },
	{ "NEAR(quick  dog ,5)", "NEAR(\"quick\" \"dog\", 5)", "10" },
	{ "NEAR(\"quick brown\" dog)", NULL, "1" },
	{ "and disk", "\"and\" \"disk\"", "10" }, /* lower case: a word */
	{ "fox - dog", "\"fox\" \"dog\"", "1" },  /* "-" dropped */
	{ "fox ... AND dog", "\"fox\" \"dog\"", "1" },
	{ "e-mail", "\"e-mail\"", "" },
	{ "12:30", "\"12:30\"", "" },
	{ "a \"say \"\"hi\"\"\"", "\"a\" \"say \"\"hi\"\"\"", "" },
	{ "\"quick \"\"brown\"\"\"", "\"quick \"\"brown\"\"\"", "1" },
	/* Fields that are columns; names in any case. */
	{ "author:\"Jane Doe\"", "author : \"Jane Doe\"", "1" },
	{ "author:jane", "author : \"jane\"", "1,10" },
	{ "Author:JANE", "author : \"JANE\"", "1,10" },
	{ "AUTHOR:jan*", "author : \"jan\"*", "1,10" },
	{ "author:^jane", "author : ^\"jane\"", "1,10" },
	{ "author:^\"jane smith\"", "author : ^\"jane smith\"", "10" },
	{ "tag:storage", "tags : \"storage\"", "1,10" },
	{ "Tags:storage", "tags : \"storage\"", "1,10" },
	{ "TAG:disk", NULL, "10" },
	{ "author:(doe OR smith)", "author : (\"doe\" OR \"smith\")",
	  "1,9,10" },
	{ "author:NEAR(jane smith)", "author : NEAR(\"jane\" \"smith\")",
	  "10" },
	{ "(author:jane OR tag:books)",
	  "(author : \"jane\" OR tags : \"books\")", "1,9,10" },
	{ "jane NOT author:jane", "\"jane\" NOT author : \"jane\"", "9" },
	{ "storage author:smith", NULL, "9,10" },
	{ "title:storage", "title : \"storage\"", "1,10" },
	{ "title:^storage", NULL, "1" },
	{ "content:storage", NULL, "9" },
	{ "url:example.com", "url : \"example.com\"", "1,10" },
	{ "url:\"example.com news\"", "url : \"example.com news\"", "1" },
	{ "url:https%3A%2F%2Fexample.com%2Fnews",
	  "url : \"https://example.com/news\"", "1" },
	{ "url:example.com%2Fdisk", NULL, "10" },
	{ "url:example.org", NULL, "9" },
	{ "url:Foo_(bar)", "url : \"Foo_(bar)\"", "" },
	{ "lang:en", "lang : \"en\"", "1,9,10" },
	{ "lang:en-GB", "lang : \"en-GB\"", "10" },
	{ "lang:zh", NULL, "7" },
	{ "lang:fa OR lang:ar", NULL, "5,6" },
	/* Multilingual words and fields. */
	{ "München", NULL, "2" },
	{ "munchen", NULL, "2" },
	{ "strassenbahn", NULL, "2" },
	{ "Straßenbahn fährt", NULL, "2" },
	{ "author:müller", NULL, "2" },
	{ "café", NULL, "3" },
	{ "author:amelie", NULL, "3" },
	{ "ёлка", NULL, "4" },
	{ "елка", NULL, "4" },
	{ "author:петр", NULL, "4" },
	{ "کتاب", NULL, "5" },
	{ "كتاب", NULL, "5" },
	{ "کتاب‌های", NULL, "5" },
	{ "\"می خواهم\"", NULL, "5" },
	{ "فارسی", NULL, "5" },
	{ "author:رضایی", NULL, "5" },
	{ "author:رضايي", NULL, "5" },
	{ "الكتاب", NULL, "6" },
	{ "الكِتَابُ", "\"الكتاب\"", "6" },
	{ "المدرسه", NULL, "6" },
	{ "الى القاهرة", NULL, "6" },
	{ "北京", NULL, "7" },
	{ "北京大学", "\"北京 京大 大学\"", "7" },
	{ "天安门", NULL, "7" },
	{ "京", "\"京\"*", "7,8" },
	{ "北京 OR 東京", NULL, "7,8" },
	{ "NEAR(北京 天安门)", NULL, "7" },
	{ "author:王小明", NULL, "7" },
	{ "tag:教育", NULL, "7" },
	{ "東京タワー", NULL, "8" },
	{ "タワー", NULL, "8" },
	{ "塔", NULL, "8" },
	{ "author:山田", NULL, "8" },
	{ "title:タワー NOT 北京", NULL, "8" },
	/* Percent escapes. */
	{ "%D9%83%D8%AA%D8%A7%D8%A8", "\"كتاب\"", "5" },
	{ "%22quick%20brown%22", "\"quick brown\"", "1" },
	{ "fox%20AND%20dog", "\"fox\" AND \"dog\"", "1" },
	{ "100%25", "\"100%\"", "" },
	/* Filters next to words. */
	{ "area:articles after:2024-01-01 limit:10 fox", "\"fox\"", "1,9" },
	{ "fox AND after:2024-01-01 AND dog", "\"fox\" AND \"dog\"", "1" },
	{ "after:2024-01-01 AND fox", "\"fox\"", "1,9" },
	{ "(fox OR disk) limit:5", "(\"fox\" OR \"disk\")", "1,9,10" },
	{ "fox NOT dog after:2024-01-01", "\"fox\" NOT \"dog\"", "9" },
	{ "fox name:*.txt", "\"fox\"", "1,9" },
};

static void test_valid(void **state)
{
	char rows[256], err[256];

	(void)state;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(valid); i++) {
		struct stash_query *q = parse_ok(valid[i].query);

		assert_non_null(q->match);
		if (valid[i].match && strcmp(q->match, valid[i].match))
			fail_msg("'%s' gave MATCH %s, want %s", valid[i].query,
				 q->match, valid[i].match);
		assert_int_equal(stash_query_fts5_check(db, "docs_fts",
							q->match, err,
							sizeof(err)),
				 0);
		rows_of(q->match, rows, sizeof(rows));
		if (strcmp(rows, valid[i].rows))
			fail_msg("'%s' (MATCH %s) found '%s', want '%s'",
				 valid[i].query, q->match, rows, valid[i].rows);
		stash_query_free(q);
	}
}

static void test_filters(void **state)
{
	struct stash_query *q;

	(void)state;
	/* Defaults. */
	q = parse_ok("fox");
	assert_int_equal(q->n_areas, 0);
	assert_null(q->areas);
	assert_int_equal(q->n_names, 0);
	assert_true(q->after_ns == INT64_MIN);
	assert_true(q->before_ns == INT64_MAX);
	assert_int_equal(q->limit, STASH_QUERY_LIMIT_DEFAULT);
	stash_query_free(q);

	/* Only filters: no MATCH. */
	q = parse_ok("area:articles area:files name:*.PDF name:Report* "
		     "after:2024-01-01 before:2024-02-01 limit:100000");
	assert_null(q->match);
	assert_int_equal(q->n_areas, 2);
	assert_string_equal(q->areas[0], "articles");
	assert_string_equal(q->areas[1], "files");
	assert_int_equal(q->n_names, 2);
	assert_string_equal(q->names[0], "*.pdf");
	assert_string_equal(q->names[1], "report*");
	assert_true(q->after_ns == INT64_C(1704067200) * NS);
	assert_true(q->before_ns == INT64_C(1706745600) * NS);
	assert_int_equal(q->limit, 100000);
	assert_true(stash_query_name_match(q, "Report 2024.PDF"));
	assert_true(stash_query_name_match(q, "report.pdf"));
	assert_false(stash_query_name_match(q, "report.txt"));
	assert_false(stash_query_name_match(q, "summary.pdf"));
	stash_query_free(q);

	/* Field names in any case, quoted values, any top-level name. */
	q = parse_ok("AREA:programs Name:\"my report (1).txt\" LIMIT:1");
	assert_string_equal(q->areas[0], "programs");
	assert_string_equal(q->names[0], "my report (1).txt");
	assert_true(stash_query_name_match(q, "My Report (1).TXT"));
	assert_int_equal(q->limit, 1);
	stash_query_free(q);

	/* Names fold beyond ASCII. */
	q = parse_ok("name:ОТЧЁТ* name:*ÉTÉ*");
	assert_true(stash_query_name_match(q, "отчёт été.txt"));
	assert_false(stash_query_name_match(q, "отчет été.txt"));
	stash_query_free(q);
	q = parse_ok("fox");
	assert_true(stash_query_name_match(q, "anything"));
	stash_query_free(q);
}

static void test_dates(void **state)
{
	static const struct {
		const char *query;
		int64_t after, before; /* ns; MIN/MAX when unset */
	} cases[] = {
		{ "after:1970-01-01", 0, INT64_MAX },
		{ "before:1970-01-02", INT64_MIN, 86400 * NS },
		{ "after:1969-12-31", -86400 * NS, INT64_MAX },
		{ "after:2024-02-29", INT64_C(1709164800) * NS, INT64_MAX },
		{ "after:2024-01-01T10:30Z", INT64_C(1704105000) * NS,
		  INT64_MAX },
		{ "after:2024-01-01t10:30:15z", INT64_C(1704105015) * NS,
		  INT64_MAX },
		{ "after:2024-01-01T10:30:00+03:30", INT64_C(1704092400) * NS,
		  INT64_MAX },
		{ "after:2024-01-01T10:30:00-0500", INT64_C(1704123000) * NS,
		  INT64_MAX },
		{ "after:2024-01-01T10:30:00+01", INT64_C(1704101400) * NS,
		  INT64_MAX },
		{ "after:2024-01-01T00:00:00.5Z",
		  INT64_C(1704067200) * NS + 500000000, INT64_MAX },
		{ "after:2024-01-01T00:00:00.123456789",
		  INT64_C(1704067200) * NS + 123456789, INT64_MAX },
		{ "after:2024-01-01T10:30%2B03:30", INT64_C(1704092400) * NS,
		  INT64_MAX },
		/* The narrowest range wins. */
		{ "after:2020-01-01 after:2024-01-01 before:2025-01-01 "
		  "before:2024-06-01",
		  INT64_C(1704067200) * NS, INT64_C(1717200000) * NS },
		{ "after:2262-01-01", INT64_C(9214646400) * NS, INT64_MAX },
		{ "after:1678-01-01", INT64_C(-9214560000) * NS, INT64_MAX },
	};

	(void)state;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(cases); i++) {
		struct stash_query *q = parse_ok(cases[i].query);

		if (q->after_ns != cases[i].after ||
		    q->before_ns != cases[i].before)
			fail_msg("'%s': after %lld before %lld", cases[i].query,
				 (long long)q->after_ns,
				 (long long)q->before_ns);
		stash_query_free(q);
	}
}

static const struct {
	const char *query;
	int rc;
	const char *msg;
} bad[] = {
	{ "", -EINVAL, "empty query" },
	{ "   ", -EINVAL, "empty query" },
	{ "- ...", -EINVAL, "empty query" },
	{ "autor:x", -EINVAL, "unknown field 'autor:' at 1" },
	{ "fox autor:y", -EINVAL, "unknown field 'autor:' at 5" },
	{ "кот autor:y", -EINVAL, "unknown field 'autor:' at 5" },
	{ "%D9%83 autor:y", -EINVAL, "unknown field 'autor:' at 8" },
	{ "http:%2F%2Fexample.com", -EINVAL, "unknown field 'http:' at 1" },
	{ "(fox", -EINVAL, "unbalanced parenthesis at 1" },
	{ "((fox) dog", -EINVAL, "unbalanced parenthesis at 1" },
	{ "fox)", -EINVAL, "unbalanced parenthesis at 4" },
	{ "NEAR(fox dog", -EINVAL, "unbalanced parenthesis at 5" },
	{ "\"fox", -EINVAL, "unterminated quote at 1" },
	{ "fox author:\"jane", -EINVAL, "unterminated quote at 12" },
	{ "after:2024-13-01", -EINVAL, "bad date '2024-13-01' in after:" },
	{ "before:2023-02-29", -EINVAL, "bad date '2023-02-29' in before:" },
	{ "after:2024-04-31", -EINVAL, "bad date '2024-04-31' in after:" },
	{ "after:yesterday", -EINVAL, "bad date 'yesterday' in after:" },
	{ "after:2024-1-1", -EINVAL, "bad date '2024-1-1' in after:" },
	{ "after:2024-01-01T24:00", -EINVAL,
	  "bad date '2024-01-01T24:00' in after:" },
	{ "after:2024-01-01T10", -EINVAL,
	  "bad date '2024-01-01T10' in after:" },
	{ "after:2024-01-01X", -EINVAL, "bad date '2024-01-01X' in after:" },
	{ "after:2024-01-01T10:00:00.", -EINVAL,
	  "bad date '2024-01-01T10:00:00.' in after:" },
	{ "after:1677-01-01", -EINVAL, "bad date '1677-01-01' in after:" },
	{ "before:2263-01-01", -EINVAL, "bad date '2263-01-01' in before:" },
	{ "after:2024-02-01 before:2024-01-01", -EINVAL,
	  "after: must be earlier than before:" },
	{ "after:2024-01-01 before:2024-01-01", -EINVAL,
	  "after: must be earlier than before:" },
	{ "limit:0", -EINVAL, "limit: wants a number between 1 and 100000" },
	{ "limit:100001", -EINVAL,
	  "limit: wants a number between 1 and 100000" },
	{ "limit:99999999999999999999", -EINVAL,
	  "limit: wants a number between 1 and 100000" },
	{ "limit:ten", -EINVAL, "limit: wants a number between 1 and 100000" },
	{ "limit:-5", -EINVAL, "limit: wants a number between 1 and 100000" },
	{ "limit:5 limit:6", -EINVAL, "limit: given twice at 9" },
	{ "%zz", -EINVAL, "bad percent escape at 1" },
	{ "fox%2", -EINVAL, "bad percent escape at 4" },
	{ "100%", -EINVAL, "bad percent escape at 4" },
	{ "a%00b", -EINVAL, "%00 is not allowed at 2" },
	{ "a%FFb", -EINVAL, "invalid UTF-8 at 2" },
	{ "%C3", -EINVAL, "invalid UTF-8 at 1" },
	{ "fox OR after:2024-01-01", -EINVAL,
	  "after: cannot be inside OR/NOT/parentheses (at 8)" },
	{ "fox after:2024-01-01 OR dog", -EINVAL,
	  "after: cannot be inside OR/NOT/parentheses (at 5)" },
	{ "fox NOT area:files", -EINVAL,
	  "area: cannot be inside OR/NOT/parentheses (at 9)" },
	{ "(fox before:2024-01-01)", -EINVAL,
	  "before: cannot be inside OR/NOT/parentheses (at 6)" },
	{ "author:(x limit:3)", -EINVAL,
	  "limit: cannot be inside OR/NOT/parentheses (at 11)" },
	{ "fox OR dog name:*.md", -EINVAL,
	  "name: cannot be used with OR at the top level; group the OR in "
	  "parentheses (at 12)" },
	{ "NEAR(fox author:x)", -EINVAL,
	  "fields cannot be used inside NEAR() at 10" },
	{ "NEAR(fox (dog))", -EINVAL,
	  "parentheses cannot be used inside NEAR() at 10" },
	{ "NEAR(fox dog, x)", -EINVAL,
	  "NEAR() wants a distance of 0 to 999999 after ',' at 15" },
	{ "NEAR(fox dog, 5 6)", -EINVAL,
	  "NEAR() wants ')' after its distance at 17" },
	{ "NOT fox", -EINVAL, "'NOT' at 1 needs a search term on its left" },
	{ "fox AND", -EINVAL, "'AND' at 5 needs a search term on its right" },
	{ "fox OR OR dog", -EINVAL,
	  "'OR' at 5 needs a search term on its right" },
	{ "(OR fox)", -EINVAL, "'OR' at 2 needs a search term on its left" },
	{ "after:2024-01-01 NOT fox", -EINVAL,
	  "'NOT' at 18 needs a search term on its left" },
	{ "*", -EINVAL, "'*' at 1 must follow a word or phrase" },
	{ "( * fox)", -EINVAL, "'*' at 3 must follow a word or phrase" },
	{ "^ fox", -EINVAL, "'^' at 1 must precede a word or phrase" },
	{ "author:", -EINVAL, "author: needs a value at 1" },
	{ "fox tag: x", -EINVAL, "tag: needs a value at 5" },
	{ "author:-", -EINVAL, "author: needs a value at 1" },
	{ "after:", -EINVAL, "after: needs a value at 1" },
	{ "name:\"\"", -EINVAL, "name: needs a value at 1" },
	{ "()", -EINVAL, "empty parentheses at 1" },
	{ "fox () dog", -EINVAL, "empty parentheses at 5" },
	{ "area:..", -EINVAL, "area: wants a top-level folder name at 1" },
	{ "area:articles%2Fx", -EINVAL,
	  "area: wants a top-level folder name at 1" },
	{ "name:a%2Fb", -EINVAL,
	  "name: matches a file name, which has no '/' (at 1)" },
};

static void test_errors(void **state)
{
	char err[STASH_QUERY_ERR_MAX];

	(void)state;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(bad); i++) {
		struct stash_query *q = (struct stash_query *)&err;
		int rc = stash_query_parse(bad[i].query, &q, err, sizeof(err));

		if (rc != bad[i].rc || strcmp(err, bad[i].msg))
			fail_msg("'%s': %d '%s', want %d '%s'", bad[i].query,
				 rc, err, bad[i].rc, bad[i].msg);
		/* *out is left alone on error. */
		assert_ptr_equal(q, (struct stash_query *)&err);
	}
}

static void test_error_edges(void **state)
{
	struct stash_query *q = NULL;
	char name[300], err[8];

	(void)state;
	/* 255 bytes is fine, 256 is too long. */
	memset(name, 'a', 255);
	name[255] = '\0';
	q = parse_ok(name);
	stash_query_free(q);
	q = NULL;
	name[255] = 'a';
	name[256] = '\0';
	assert_int_equal(stash_query_parse(name, &q, NULL, 0), -ENAMETOOLONG);
	assert_null(q);

	/* A short buffer gets the start of the reason; NULL is allowed. */
	assert_int_equal(stash_query_parse("autor:x", &q, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "unknown");
	assert_int_equal(stash_query_parse("autor:x", &q, NULL, 100), -EINVAL);
	assert_int_equal(stash_query_parse(NULL, &q, NULL, 0), -EINVAL);
	assert_int_equal(stash_query_parse("fox", NULL, NULL, 0), -EINVAL);
	assert_null(q);

	/* A '/' cannot come from a path component, but is refused. */
	assert_int_equal(stash_query_parse("a/b", &q, err, sizeof(err)),
			 -EINVAL);
	stash_query_free(NULL);
}

/*
 * What our parser lets through but FTS5 rejects comes back with FTS5's own
 * message, and so does any malformed expression handed to the helper.
 */
static void test_fts5_rejects(void **state)
{
	static const struct {
		const char *match; /* given to the helper as is */
		const char *msg;
	} raw[] = {
		{ "fox AND", "fts5: syntax error near \"\"" },
		{ "\"fox", "unterminated string" },
		{ "nosuch : fox", "no such column: nosuch" },
		{ "NEAR(fox dog, x)", "expected integer, got \"x\"" },
	};
	struct stash_query *q;
	char err[256];

	(void)state;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(raw); i++) {
		assert_int_equal(stash_query_fts5_check(db, "docs_fts",
							raw[i].match, err,
							sizeof(err)),
				 -EINVAL);
		if (strcmp(err, raw[i].msg))
			fail_msg("'%s': '%s', want '%s'", raw[i].match, err,
				 raw[i].msg);
	}

	/* NEAR() with nothing in it passes our parser, not FTS5. */
	q = parse_ok("NEAR()");
	assert_string_equal(q->match, "NEAR()");
	assert_int_equal(stash_query_fts5_check(db, "docs_fts", q->match, err,
						sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "fts5: syntax error near \")\"");
	stash_query_free(q);

	/* No such table: SQLite's message. */
	assert_int_equal(
		stash_query_fts5_check(db, "nope", "\"fox\"", err, sizeof(err)),
		-EINVAL);
	assert_string_equal(err, "no such table: nope");
	assert_int_equal(
		stash_query_fts5_check(db, "docs_fts", "\"fox\"", NULL, 0), 0);
	assert_int_equal(stash_query_fts5_check(NULL, "t", "x", NULL, 0),
			 -EINVAL);
}

static void test_fold_name(void **state)
{
	char *f;

	(void)state;
	assert_int_equal(stash_query_fold_name("ABC ÄÖÜ ÀÉÞ × ŁÓDŹ İ Ÿ Œ "
					       "ΆΩΣ ЖЁЯ Ђ 北京 a\xff",
					       &f),
			 0);
	assert_string_equal(f, "abc äöü àéþ × łódź i ÿ œ άωσ жёя ђ 北京 a\xff");
	free(f);
	assert_int_equal(stash_query_fold_name(NULL, &f), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_error_edges),
		cmocka_unit_test(test_fts5_rejects),
		cmocka_unit_test(test_fold_name),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
