/*
 * test_article.c - unit tests for store/article.c.
 *
 * Real-looking articles in seven languages (UTF-8 kept byte for byte), the
 * type rules of every field, content precedence, metadata flattening,
 * malformed JSON with the reason and position reported, JSON Lines record
 * splitting (blank lines, CRLF, a bad line in the middle, no final newline,
 * offsets that slice the exact record bytes), ISO 8601 dates including the
 * int64 limits, HTML to text, the UTF-8 text test and file kinds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "article.h"
#include "util.h"

#define S(x) x, sizeof(x) - 1 /* a literal as (ptr, len), NULs included */

static void expect_str(const char *got, const char *want)
{
	if (!want) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
}

static void expect_contains(const char *got, const char *want)
{
	assert_non_null(got);
	if (!strstr(got, want))
		fail_msg("\"%s\" does not contain \"%s\"", got, want);
}

static void parse_ok(const char *json, struct stash_article *a)
{
	char err[256];
	int rc = stash_article_parse(json, strlen(json), a, err, sizeof(err));

	if (rc)
		fail_msg("parse failed (%d): %s\n%s", rc, err, json);
}

/* ---- whole articles ---------------------------------------------------*/

static void test_full_article(void **state)
{
	struct stash_article a;
	const char *json =
		"{\n"
		"  \"url\": \"https://news.example.org/2024/05/storage\",\n"
		"  \"title\": \"  Deduplicating storage at scale  \",\n"
		"  \"author\": [\"Jane Doe\", \"John Smith\"],\n"
		"  \"published_at\": \"2024-05-01T10:20:30+02:00\",\n"
		"  \"tags\": [\"storage\", \"filesystems\", \"FUSE\"],\n"
		"  \"lang\": \"en\",\n"
		"  \"content\": \"Content-defined chunking splits files.\\n"
		"Second paragraph.\",\n"
		"  \"source\": \"Example News\",\n"
		"  \"word_count\": 1234\n"
		"}\n";

	(void)state;
	parse_ok(json, &a);
	expect_str(a.url, "https://news.example.org/2024/05/storage");
	expect_str(a.title, "Deduplicating storage at scale");
	expect_str(a.author, "Jane Doe, John Smith");
	expect_str(a.tags, "storage, filesystems, FUSE");
	expect_str(a.lang, "en");
	expect_str(a.content,
		   "Content-defined chunking splits files.\nSecond paragraph.");
	assert_true(a.has_published_at);
	assert_true(a.published_at == INT64_C(1714551630) * 1000000000);
	expect_str(a.meta, "source: Example News\nword_count: 1234\n");
	assert_null(a.warning);
	assert_int_equal(a.line, 0);
	assert_int_equal(a.offset, 0);
	assert_int_equal(a.length, strlen(json));
	stash_article_release(&a);
	assert_null(a.title);
	stash_article_release(&a); /* a second release is harmless */
	stash_article_release(NULL);
}

static void test_languages(void **state)
{
	static const struct {
		const char *lang, *title, *content;
	} samples[] = {
		{ "fa", "گزارش تازه از نمایشگاه کتاب تهران",
		  "ناشران می‌گویند فروش امسال بیشتر بود. «کتاب» هنوز زنده است." },
		{ "ar", "الذكاء الاصطناعي في التعليم",
		  "قالت الوزارة إن المدارس ستبدأ البرنامج في سبتمبر." },
		{ "ru", "Новости науки: открытие в Сибири",
		  "Учёные нашли «новый» минерал — подробности ниже." },
		{ "de", "Über die Größe der Straßenbahnen in München",
		  "Die Fahrgäste äußerten sich überwiegend positiv." },
		{ "fr", "L’été à Paris : où manger près de la Seine ?",
		  "Les cafés du quai ont rouvert ; « enfin », disent-ils." },
		{ "zh", "北京发布新的城市规划",
		  "该计划包括扩建地铁线路和新建公园。😀" },
	};

	(void)state;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(samples); i++) {
		struct stash_article a;
		char json[1024];

		snprintf(json, sizeof(json),
			 "{\"title\":\"%s\",\"content\":\"%s\",\"lang\":\"%s\","
			 "\"author\":\"%s\",\"tags\":[\"%s\"]}",
			 samples[i].title, samples[i].content, samples[i].lang,
			 samples[i].title, samples[i].title);
		parse_ok(json, &a);
		expect_str(a.title, samples[i].title);
		expect_str(a.content, samples[i].content);
		expect_str(a.lang, samples[i].lang);
		expect_str(a.author, samples[i].title);
		expect_str(a.tags, samples[i].title);
		stash_article_release(&a);
	}
}

static void test_escapes(void **state)
{
	struct stash_article a;

	(void)state;
	/* \u escapes, a surrogate pair, and the short escapes. */
	parse_ok("{\"title\":\"\\u0633\\u0644\\u0627\\u0645 \\ud83d\\ude00\","
		 "\"content\":\"a\\\"b\\\\c\\/d\\te\\nf\\u00e9\"}",
		 &a);
	expect_str(a.title, "سلام 😀");
	expect_str(a.content, "a\"b\\c/d\te\nfé");
	stash_article_release(&a);

	/* Documented: \u0000 ends its string. */
	parse_ok("{\"title\":\"ab\\u0000cd\"}", &a);
	expect_str(a.title, "ab");
	stash_article_release(&a);

	/* A UTF-8 BOM is skipped. */
	parse_ok("\xef\xbb\xbf{\"title\":\"bom\"}", &a);
	expect_str(a.title, "bom");
	stash_article_release(&a);

	/* The empty object is an article with nothing in it. */
	parse_ok(" {} ", &a);
	assert_null(a.title);
	assert_null(a.content);
	assert_null(a.meta);
	assert_null(a.warning);
	assert_false(a.has_published_at);
	stash_article_release(&a);
}

static void test_author_forms(void **state)
{
	struct stash_article a;

	(void)state;
	parse_ok("{\"author\":\"  Jane Doe \"}", &a);
	expect_str(a.author, "Jane Doe");
	stash_article_release(&a);

	parse_ok("{\"author\":[\"Jane Doe\",\"  \",\"\",\"John Smith\"]}", &a);
	expect_str(a.author, "Jane Doe, John Smith");
	assert_null(a.warning);
	stash_article_release(&a);

	/* schema.org Person */
	parse_ok("{\"author\":{\"@type\":\"Person\",\"name\":\"Ali Rezaei\"}}",
		 &a);
	expect_str(a.author, "Ali Rezaei");
	assert_null(a.meta);
	stash_article_release(&a);

	/* Bad elements are skipped, said, and kept in meta. */
	parse_ok("{\"author\":[{\"name\":\"A\"},\"B\",7,{\"x\":1},null]}", &a);
	expect_str(a.author, "A, B");
	expect_str(a.warning,
		   "author[2] is not a name; author[3] is not a name");
	expect_str(a.meta, "author: 7\nauthor.x: 1\n");
	stash_article_release(&a);

	parse_ok("{\"author\":7}", &a);
	assert_null(a.author);
	expect_str(a.warning, "author is not a name or a list");
	expect_str(a.meta, "author: 7\n");
	stash_article_release(&a);

	parse_ok("{\"author\":[],\"tags\":null}", &a);
	assert_null(a.author);
	assert_null(a.tags);
	assert_null(a.warning);
	stash_article_release(&a);
}

static void test_tags(void **state)
{
	struct stash_article a;

	(void)state;
	parse_ok("{\"tags\":[\"politics\",\" Iran \",\"  \"]}", &a);
	expect_str(a.tags, "politics, Iran");
	stash_article_release(&a);

	/* One string is one tag, even with a comma in it. */
	parse_ok("{\"tags\":\"storage, backup\"}", &a);
	expect_str(a.tags, "storage, backup");
	assert_null(a.warning);
	stash_article_release(&a);

	parse_ok("{\"tags\":[2024,\"x\",[\"nested\"],true]}", &a);
	expect_str(a.tags, "2024, x");
	expect_str(a.warning,
		   "tags[2] is not a string; tags[3] is not a string");
	expect_str(a.meta, "tags: nested\ntags: true\n");
	stash_article_release(&a);

	parse_ok("{\"tags\":{\"a\":\"b\"}}", &a);
	assert_null(a.tags);
	expect_str(a.warning, "tags is not a list of strings");
	expect_str(a.meta, "tags.a: b\n");
	stash_article_release(&a);
}

static void test_content_precedence(void **state)
{
	static const struct {
		const char *json, *content;
	} cases[] = {
		{ "{\"text\":\"T\",\"html\":\"<p>H</p>\",\"body\":\"B\","
		  "\"content\":\"C\"}",
		  "C" },
		{ "{\"body\":\"B\",\"text\":\"T\"}", "T" },
		{ "{\"html\":\"<p>H</p>\",\"body\":\"B\"}", "B" },
		{ "{\"html\":\"<p>H &amp; more</p><p>next</p>\"}",
		  "H & more\nnext" },
		{ "{\"content\":\" \\n \",\"text\":\"T\"}", "T" },
		{ "{\"content\":null,\"html\":\"<b>x</b>\"}", "x" },
		{ "{\"html\":\"<script>only()</script>\"}", NULL },
		{ "{\"content\":\"  padded\\n\"}", "  padded\n" },
		{ "{\"content\":42}", "42" },
	};

	(void)state;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(cases); i++) {
		struct stash_article a;

		parse_ok(cases[i].json, &a);
		expect_str(a.content, cases[i].content);
		/* Alternatives not chosen are not indexed twice. */
		assert_null(a.meta);
		assert_null(a.warning);
		stash_article_release(&a);
	}
}

static void test_content_wrong_type(void **state)
{
	struct stash_article a;

	(void)state;
	parse_ok("{\"content\":{\"p\":\"x\"},\"text\":\"T\"}", &a);
	expect_str(a.content, "T");
	expect_str(a.warning, "content is not a string");
	expect_str(a.meta, "content.p: x\n");
	stash_article_release(&a);
}

static void test_type_rules(void **state)
{
	struct stash_article a;

	(void)state;
	parse_ok("{\"title\":{\"en\":\"Hello\"},\"url\":[\"http://a\"],"
		 "\"lang\":true,\"published_at\":1714521600}",
		 &a);
	assert_null(a.title);
	assert_null(a.url);
	expect_str(a.lang, "true");
	assert_false(a.has_published_at);
	expect_str(a.warning, "title is not a string; url is not a string; "
			      "published_at is not a string");
	expect_str(a.meta, "title.en: Hello\nurl: http://a\n"
			   "published_at: 1714521600\n");
	stash_article_release(&a);

	/* Scalars count as text; null is absent. */
	parse_ok("{\"title\":1984,\"url\":null,\"lang\":\"  fa  \"}", &a);
	expect_str(a.title, "1984");
	assert_null(a.url);
	expect_str(a.lang, "fa");
	assert_null(a.warning);
	stash_article_release(&a);

	/* Not a date: absent, said, searchable. */
	parse_ok("{\"published_at\":\"yesterday\"}", &a);
	assert_false(a.has_published_at);
	expect_str(a.warning, "published_at is not an ISO 8601 date");
	expect_str(a.meta, "published_at: yesterday\n");
	stash_article_release(&a);

	/* Keys are case-sensitive. */
	parse_ok("{\"Title\":\"x\"}", &a);
	assert_null(a.title);
	expect_str(a.meta, "Title: x\n");
	stash_article_release(&a);
}

static void test_meta(void **state)
{
	struct stash_article a;

	(void)state;
	parse_ok("{\"title\":\"t\",\"source\":{\"name\":\"BBC\",\"id\":7,"
		 "\"tags\":[\"a\",\"b\"]},\"score\":0.1,\"neg\":-5,"
		 "\"big\":1e300,\"flag\":true,\"off\":false,\"nothing\":null,"
		 "\"multi\":\"line1\\nline2\\ttab\",\"empty\":{},\"none\":[],"
		 "\"list\":[1,[2,[3]]],\"title\":\"second\",\"\":\"anon\","
		 "\"bad\\nkey\":\"v\",\"n\":1000000000000000000000000000000"
		 "00000000000000000000000000000000}",
		 &a);
	expect_str(a.title, "t");
	expect_str(a.meta, "source.name: BBC\n"
			   "source.id: 7\n"
			   "source.tags: a\n"
			   "source.tags: b\n"
			   "score: 0.1\n"
			   "neg: -5\n"
			   "big: 1e+300\n"
			   "flag: true\n"
			   "off: false\n"
			   "multi: line1 line2 tab\n"
			   "list: 1\n"
			   "list: 2\n"
			   "list: 3\n"
			   "title: second\n"
			   ": anon\n"
			   "bad key: v\n"
			   "n: 1e+62\n");
	assert_null(a.warning);
	stash_article_release(&a);
}

/* ---- malformed --------------------------------------------------------*/

static void test_malformed(void **state)
{
	static const struct {
		const char *json;
		size_t len;
		const char *err;
	} cases[] = {
		{ S(""), "line 1, column 1: no JSON value" },
		{ S("  \n "), "line 2, column 2: no JSON value" },
		{ S("{\"title\": \"x\""),
		  "line 1, column 14: unexpected end of input (object not "
		  "closed)" },
		{ S("{\"title\": \"x"),
		  "line 1, column 11: string not closed" },
		{ S("{\"title\": [1, 2"), "(array not closed)" },
		{ S("{\"title\" \"x\"}"),
		  "line 1, column 10: expected ':' after an object key" },
		{ S("{\"a\": 1,}"),
		  "line 1, column 9: trailing comma before '}'" },
		{ S("{\"a\": [1,2,]}"), "trailing comma before ']'" },
		{ S("{\"a\": 1 \"b\": 2}"),
		  "line 1, column 9: expected ',' or '}' after an object member" },
		{ S("{\"a\": [1 2]}"),
		  "expected ',' or ']' after an array element" },
		{ S("{a: 1}"), "line 1, column 2: expected a string key" },
		{ S("{'a': 1}"), "expected a string key" },
		{ S("{\"a\": tru}"), "line 1, column 7: invalid literal" },
		{ S("{\"a\": nul"), "invalid literal" },
		{ S("{\"a\": @}"), "line 1, column 7: expected a value" },
		{ S("{\"a\": 01}"), "invalid number (leading zero)" },
		{ S("{\"a\": 1.}"), "invalid number (no digit after '.')" },
		{ S("{\"a\": 1e+}"),
		  "invalid number (no digit in the exponent)" },
		{ S("{\"a\": -}"), "invalid number" },
		{ S("{\"a\": +1}"), "expected a value" },
		{ S("{\"a\": .5}"), "expected a value" },
		{ S("{\"a\": \"\xff\"}"),
		  "column 8: invalid UTF-8 in a string" },
		{ S("{\"a\": \"\xc0\xaf\"}"), "invalid UTF-8 in a string" },
		{ S("{\"a\": \"\xed\xa0\x80\"}"), "invalid UTF-8 in a string" },
		{ S("{\"a\": \"caf\xc3\"}"), "invalid UTF-8 in a string" },
		{ S("{\"a\": \"tab\there\"}"),
		  "column 11: control character U+0009 in a string must be "
		  "escaped" },
		{ S("{\"a\": \"nul\0here\"}"), "control character U+0000" },
		{ S("{\"a\": \"\\x\"}"),
		  "column 8: invalid escape in a string" },
		{ S("{\"a\": \"\\u12\"}"),
		  "\\u must be followed by 4 hex digits" },
		{ S("{\"a\": \"\\u12g4\"}"),
		  "\\u must be followed by 4 hex digits" },
		{ S("{\"a\": \"\\ud800\"}"),
		  "column 8: unpaired surrogate \\uD800" },
		{ S("{\"a\": \"\\ud800\\u0041\"}"),
		  "unpaired surrogate \\uD800" },
		{ S("{\"a\": \"\\udc00x\"}"), "unpaired surrogate \\uDC00" },
		{ S("{} {}"),
		  "line 1, column 4: unexpected text after the JSON value" },
		{ S("{\"a\": 1}\n}"), "line 2, column 1: unexpected text" },
		{ S("{\n  \"title\": \"x\",\n  \"url\" 5\n}"),
		  "line 3, column 9: expected ':' after an object key" },
		/* columns count characters, not bytes */
		{ S("{\"عنوان\" 1}"), "line 1, column 10: expected ':'" },
		{ S("[1, 2]"),
		  "line 1, column 1: not a JSON object (found an array)" },
		{ S("  \"str\""),
		  "line 1, column 3: not a JSON object (found a string)" },
		{ S("42"), "not a JSON object (found a number)" },
		{ S("-1"), "not a JSON object (found a number)" },
		{ S("true"), "not a JSON object (found a boolean)" },
		{ S("null"), "not a JSON object (found null)" },
		{ S("\xef\xbb\xbf"), "no JSON value" },
		{ S("{\"title\": \"x\"}\x1a"),
		  "unexpected text after the JSON value" },
	};

	(void)state;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(cases); i++) {
		struct stash_article a;
		char err[256] = "unset";
		int rc;

		rc = stash_article_parse(cases[i].json, cases[i].len, &a, err,
					 sizeof(err));
		if (rc != -EINVAL || !strstr(err, cases[i].err))
			fail_msg("case %zu: rc %d, err \"%s\", want \"%s\"", i,
				 rc, err, cases[i].err);
		assert_null(a.title);
		assert_null(a.meta);
		assert_null(a.warning);
		stash_article_release(&a);
		/* No room for a reason is fine too. */
		assert_int_equal(stash_article_parse(cases[i].json,
						     cases[i].len, &a, NULL, 0),
				 -EINVAL);
		rc = stash_article_parse(cases[i].json, cases[i].len, &a, err,
					 8);
		assert_int_equal(rc, -EINVAL);
		assert_int_equal(strlen(err), 7);
	}
}

static void test_limits(void **state)
{
	char number[128], json[256];
	struct stash_article a;
	char err[256];
	char *big;
	int rc;

	(void)state;
	/* Numbers: cJSON reads at most 63 characters, so we stop there. */
	memset(number, '9', 63);
	number[63] = '\0';
	snprintf(json, sizeof(json), "{\"n\": %s}", number);
	parse_ok(json, &a);
	expect_contains(a.meta, "n: 1e+63");
	stash_article_release(&a);
	snprintf(json, sizeof(json), "{\"n\": -%s}", number);
	rc = stash_article_parse(json, strlen(json), &a, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	expect_str(err, "line 1, column 7: number longer than 63 characters");

	/* Larger than STASH_ARTICLE_MAX: refused before looking inside. */
	big = malloc(STASH_ARTICLE_MAX + 1);
	assert_non_null(big);
	memset(big, ' ', STASH_ARTICLE_MAX + 1);
	big[0] = '{';
	big[STASH_ARTICLE_MAX] = '}';
	rc = stash_article_parse(big, STASH_ARTICLE_MAX + 1, &a, err,
				 sizeof(err));
	assert_int_equal(rc, -EFBIG);
	expect_str(err, "line 1: article larger than 64 MiB");
	/* ... and exactly the limit is fine. */
	big[STASH_ARTICLE_MAX - 1] = '}';
	rc = stash_article_parse(big, STASH_ARTICLE_MAX, &a, err, sizeof(err));
	assert_int_equal(rc, 0);
	stash_article_release(&a);
	free(big);
}

/* {"a": [[[ ... 1 ... ]]]} with `arrays` arrays. */
static char *nested(size_t arrays)
{
	size_t len = 6 + 2 * arrays + 2;
	char *s = malloc(len + 1);
	size_t n = 0;

	assert_non_null(s);
	memcpy(s, "{\"a\": ", 6);
	n = 6;
	memset(s + n, '[', arrays);
	n += arrays;
	s[n++] = '1';
	memset(s + n, ']', arrays);
	n += arrays;
	s[n++] = '}';
	s[n] = '\0';
	return s;
}

static void test_nesting(void **state)
{
	struct stash_article a;
	char err[256];
	char *json;
	int rc;

	(void)state;
	json = nested(STASH_ARTICLE_MAX_DEPTH - 1); /* 64 levels with the {} */
	parse_ok(json, &a);
	expect_str(a.meta, "a: 1\n");
	stash_article_release(&a);
	free(json);

	json = nested(STASH_ARTICLE_MAX_DEPTH);
	rc = stash_article_parse(json, strlen(json), &a, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	expect_str(err, "line 1, column 70: nested deeper than 64 levels");
	free(json);

	/* Hostile: a million brackets, no stack blow-up. */
	json = nested(1000000);
	rc = stash_article_parse(json, strlen(json), &a, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	expect_contains(err, "nested deeper than 64 levels");
	free(json);
}

/* ---- JSON Lines -------------------------------------------------------*/

struct record {
	int rc;
	uint64_t line;
	uint64_t offset;
	size_t length;
	char title[64];
	char err[256];
};

struct records {
	struct record r[16];
	size_t n;
	size_t stop_after; /* return -ECANCELED after this many; 0 = never */
};

static int collect(void *arg, int rc, const struct stash_article *a,
		   const char *err)
{
	struct records *rs = arg;
	struct record *r;

	assert_true(rs->n < STASH_ARRAY_SIZE(rs->r));
	r = &rs->r[rs->n++];
	r->rc = rc;
	r->line = a->line;
	r->offset = a->offset;
	r->length = a->length;
	snprintf(r->title, sizeof(r->title), "%s", a->title ? a->title : "");
	snprintf(r->err, sizeof(r->err), "%s", err ? err : "");
	if (rc)
		assert_non_null(err);
	else
		assert_null(err);
	return rs->stop_after && rs->n == rs->stop_after ? -ECANCELED : 0;
}

static void expect_record(const struct record *r, const char *buf, int rc,
			  uint64_t line, const char *bytes, const char *title)
{
	assert_int_equal(r->rc, rc);
	assert_int_equal(r->line, line);
	assert_int_equal(r->length, strlen(bytes));
	assert_memory_equal(buf + r->offset, bytes, r->length);
	expect_str(r->title, title);
}

static void test_jsonl(void **state)
{
	static const char buf[] = "{\"title\":\"one\"}\n"
				  "\n"
				  "   \t \r\n"
				  "{\"title\":\"two\", \"x\": 1}\r\n"
				  "{\"title\":\"three\",}\n"
				  "[1,2]\n"
				  "  {\"title\": \"پنج\"}  \n"
				  "{\"title\":\"six\"}";
	struct records rs = { 0 };

	(void)state;
	assert_int_equal(
		stash_article_each_line(buf, sizeof(buf) - 1, collect, &rs), 0);
	assert_int_equal(rs.n, 6);
	expect_record(&rs.r[0], buf, 0, 1, "{\"title\":\"one\"}", "one");
	expect_record(&rs.r[1], buf, 0, 4, "{\"title\":\"two\", \"x\": 1}",
		      "two");
	expect_record(&rs.r[2], buf, -EINVAL, 5, "{\"title\":\"three\",}", "");
	expect_str(rs.r[2].err, "line 5, column 18: trailing comma before '}'");
	expect_record(&rs.r[3], buf, -EINVAL, 6, "[1,2]", "");
	expect_str(rs.r[3].err,
		   "line 6, column 1: not a JSON object (found an array)");
	expect_record(&rs.r[4], buf, 0, 7, "  {\"title\": \"پنج\"}  ", "پنج");
	expect_record(&rs.r[5], buf, 0, 8, "{\"title\":\"six\"}", "six");
	assert_int_equal(rs.r[5].offset + rs.r[5].length, sizeof(buf) - 1);
}

static void test_jsonl_edges(void **state)
{
	static const char bom[] =
		"\xef\xbb\xbf{\"title\":\"a\"}\n{\"title\":\"b\"}\n";
	static const char stop[] = "{}\n{}\n{}\n";
	struct records rs = { 0 };

	(void)state;
	/* Nothing, or only blank lines: no records. */
	assert_int_equal(stash_article_each_line(S(""), collect, &rs), 0);
	assert_int_equal(stash_article_each_line(S("\n\r\n  \n"), collect, &rs),
			 0);
	assert_int_equal(rs.n, 0);

	/* A BOM is not part of the first record. */
	assert_int_equal(stash_article_each_line(S(bom), collect, &rs), 0);
	assert_int_equal(rs.n, 2);
	expect_record(&rs.r[0], bom, 0, 1, "{\"title\":\"a\"}", "a");
	assert_int_equal(rs.r[0].offset, 3);
	expect_record(&rs.r[1], bom, 0, 2, "{\"title\":\"b\"}", "b");

	/* The callback stops the walk. */
	memset(&rs, 0, sizeof(rs));
	rs.stop_after = 2;
	assert_int_equal(stash_article_each_line(S(stop), collect, &rs),
			 -ECANCELED);
	assert_int_equal(rs.n, 2);

	/* A lone CR inside a line is JSON whitespace, not a line break. */
	memset(&rs, 0, sizeof(rs));
	assert_int_equal(stash_article_each_line(S("{\"title\":\r\"x\"}\r\r\n"),
						 collect, &rs),
			 0);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].rc, 0);
	assert_int_equal(rs.r[0].length, 15);
}

struct counts {
	size_t ok, bad;
	uint64_t next_offset;
	const char *buf;
};

static int count(void *arg, int rc, const struct stash_article *a,
		 const char *err)
{
	struct counts *c = arg;
	char want[64];

	(void)err;
	if (rc) {
		c->bad++;
		assert_int_equal(rc, -EFBIG);
		expect_contains(err, "article larger than 64 MiB");
		return 0;
	}
	c->ok++;
	/* Records are contiguous: each line is {"title":"N"}\n. */
	assert_int_equal(a->offset, c->next_offset);
	snprintf(want, sizeof(want), "%" PRIu64, a->line);
	expect_str(a->title, want);
	c->next_offset = a->offset + a->length + 1;
	return 0;
}

static void test_jsonl_batch(void **state)
{
	const size_t lines = 5000;
	struct counts c = { 0 };
	size_t cap = lines * 32, len = 0;
	char *buf = malloc(cap);

	(void)state;
	assert_non_null(buf);
	for (size_t i = 1; i <= lines; i++)
		len += (size_t)snprintf(buf + len, cap - len,
					"{\"title\":\"%zu\"}\n", i);
	c.buf = buf;
	assert_int_equal(stash_article_each_line(buf, len, count, &c), 0);
	assert_int_equal(c.ok, lines);
	assert_int_equal(c.bad, 0);
	free(buf);
}

static void test_jsonl_huge_line(void **state)
{
	size_t huge = STASH_ARTICLE_MAX + 1;
	size_t len = 16 + huge + 1 + 15;
	struct records rs = { 0 };
	char *buf = malloc(len);

	(void)state;
	assert_non_null(buf);
	memcpy(buf, "{\"title\":\"one\"}\n", 16);
	memset(buf + 16, ' ', huge);
	buf[16] = 'x';
	buf[16 + huge] = '\n';
	memcpy(buf + 16 + huge + 1, "{\"title\":\"two\"}", 15);
	assert_int_equal(stash_article_each_line(buf, len, collect, &rs), 0);
	assert_int_equal(rs.n, 3);
	assert_int_equal(rs.r[0].rc, 0);
	assert_int_equal(rs.r[1].rc, -EFBIG);
	assert_int_equal(rs.r[1].line, 2);
	assert_int_equal(rs.r[1].length, huge);
	expect_str(rs.r[1].err, "line 2: article larger than 64 MiB");
	expect_record(&rs.r[2], buf, 0, 3, "{\"title\":\"two\"}", "two");
	free(buf);
}

/* ---- dates ------------------------------------------------------------*/

#define SEC INT64_C(1000000000)

static void test_dates(void **state)
{
	static const struct {
		const char *s;
		int64_t ns;
	} good[] = {
		{ "2024-05-01", 1714521600 * SEC },
		{ "2024-05-01T10:20:30Z", 1714558830 * SEC },
		{ "2024-05-01 10:20:30Z", 1714558830 * SEC },
		{ "2024-05-01t10:20:30z", 1714558830 * SEC },
		{ "2024-05-01T10:20:30", 1714558830 * SEC },
		{ "2024-05-01T10:20", 1714558800 * SEC },
		{ "2024-05-01T10:20Z", 1714558800 * SEC },
		{ "2024-05-01T10:20:30.5Z", 1714558830 * SEC + 500000000 },
		{ "2024-05-01T10:20:30,5Z", 1714558830 * SEC + 500000000 },
		{ "2024-05-01T10:20:30.123456789Z",
		  1714558830 * SEC + 123456789 },
		{ "2024-05-01T10:20:30.1234567899999Z",
		  1714558830 * SEC + 123456789 },
		{ "2024-05-01T10:20:30+02:00", 1714551630 * SEC },
		{ "2024-05-01T10:20:30+0200", 1714551630 * SEC },
		{ "2024-05-01T10:20:30+02", 1714551630 * SEC },
		{ "2024-05-01T10:20:30-0500", 1714576830 * SEC },
		{ "2024-05-01T10:20:30-05:00", 1714576830 * SEC },
		{ "2024-05-01T10:20:30.25+02:00",
		  1714551630 * SEC + 250000000 },
		{ "2024-05-01T10:20:30+00:00", 1714558830 * SEC },
		{ "2024-05-01T10:20:30-00:00", 1714558830 * SEC },
		{ "2024-05-01T10:20:30+05:30", (1714558830 - 19800) * SEC },
		{ " \t2024-05-01\n ", 1714521600 * SEC },
		{ "2024-02-29", 1709164800 * SEC },
		{ "2000-02-29T23:59:59Z", 951868799 * SEC },
		{ "2024-12-31T23:59:59Z", 1735689599 * SEC },
		{ "1970-01-01", 0 },
		{ "1969-12-31T23:59:59Z", -SEC },
		{ "1969-12-31T23:59:59.5Z", -SEC / 2 },
		{ "1970-01-01T00:00:00+01:00", -3600 * SEC },
		{ "2016-12-31T23:59:60Z", 1483228800 * SEC }, /* leap second */
		{ "2262-04-11T23:47:16.854775807Z", INT64_MAX },
		{ "1677-09-21T00:12:43.145224192Z", INT64_MIN },
	};
	static const char *const bad[] = {
		"",
		"   ",
		"2024",
		"2024-05",
		"2024-5-1",
		"24-05-01",
		"20240501",
		"2024/05/01",
		"2024-13-01",
		"2024-00-10",
		"2024-05-00",
		"2024-04-31",
		"2023-02-29",
		"1900-02-29",
		"2024-05-01T",
		"2024-05-01T10",
		"2024-05-01T1:2:3Z",
		"2024-05-01T24:00:00Z",
		"2024-05-01T10:60:00Z",
		"2024-05-01T10:20:61Z",
		"2024-05-01T10:20:30.Z",
		"2024-05-01T10:20:30+2:00",
		"2024-05-01T10:20:30+24:00",
		"2024-05-01T10:20:30+02:60",
		"2024-05-01T10:20:30+02:",
		"2024-05-01T10:20:30+02:00:00",
		"2024-05-01T10:20:30-",
		"2024-05-01T10:20:30Zjunk",
		"2024-05-01T10:20:30 Z",
		"2024-05-01X10:20:30",
		"2024-05-01Z",
		"yesterday",
		"May 1, 2024",
		"+2024-05-01",
		"2262-04-11T23:47:16.854775808Z",
		"1677-09-21T00:12:43.145224191Z",
		"2262-04-12",
		"1677-09-20",
		"9999-12-31",
		"0000-01-01",
	};
	int64_t ns;

	(void)state;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(good); i++) {
		ns = 42;
		if (stash_article_parse_date(good[i].s, strlen(good[i].s), &ns))
			fail_msg("refused \"%s\"", good[i].s);
		if (ns != good[i].ns)
			fail_msg("\"%s\": %" PRId64 ", want %" PRId64,
				 good[i].s, ns, good[i].ns);
	}
	for (size_t i = 0; i < STASH_ARRAY_SIZE(bad); i++) {
		ns = 42;
		if (stash_article_parse_date(bad[i], strlen(bad[i]), &ns) !=
		    -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_true(ns == 42); /* untouched */
	}
	/* The length is respected: no NUL needed, and none accepted. */
	assert_int_equal(stash_article_parse_date("2024-05-01", 8, &ns),
			 -EINVAL);
	assert_int_equal(
		stash_article_parse_date("2024-05-01T10:20:30Z", 10, &ns), 0);
	assert_true(ns == 1714521600 * SEC);
	assert_int_equal(stash_article_parse_date(S("2024-05-01\0Z"), &ns),
			 -EINVAL);
}

/* ---- HTML -------------------------------------------------------------*/

static void test_html(void **state)
{
	static const struct {
		const char *html, *text;
	} cases[] = {
		{ "", "" },
		{ "plain", "plain" },
		{ "<p>Hello &amp; welcome</p><p>Second&nbsp;para</p>",
		  "Hello & welcome\nSecond para" },
		{ "<script>var x = '<p>'; if (a < b) {}</script>Text"
		  "<style>p { color: red }</style> more",
		  "Text more" },
		{ "<SCRIPT type=\"text/javascript\">x()</SCRIPT >y", "y" },
		{ "<script>a</scripty>b</script>c", "c" },
		{ "a<!-- comment <p> -->b", "ab" },
		{ "a<!---->b<!-->c", "abc" },
		{ "<div><span>nested <b>bold <i>italic</i></b></span></div>",
		  "nested bold italic" },
		{ "1 < 2 and 3 > 2, x <3 y", "1 < 2 and 3 > 2, x <3 y" },
		{ "<p>unclosed <b>bold", "unclosed bold" },
		{ "text <a href=\"x>y\" title='a>b'>link</a> end",
		  "text link end" },
		{ "<p class=foo\">stray quote</p>", "stray quote" },
		{ "&#1601;&#x627;&#X0627; &#128512; &#x1F600", "فاا 😀 😀" },
		{ "[&#0;][&#xD800;][&#x110000;][&#99999999999999999999;]",
		  "[\xef\xbf\xbd][\xef\xbf\xbd][\xef\xbf\xbd][\xef\xbf\xbd]" },
		{ "&unknown; &amp &lt;tag&gt; & &; &#; &#x;",
		  "&unknown; &amp <tag> & &; &#; &#x;" },
		{ "&quot;q&quot; &apos;a&apos; &mdash; &hellip; &laquo;x&raquo;",
		  "\"q\" 'a' — … «x»" },
		{ "line<br>break<br/>again<BR />end",
		  "line\nbreak\nagain\nend" },
		{ "  lots   of \n\t whitespace  ", "lots of whitespace" },
		{ "<ul>\n <li>one</li>\n <li>two</li>\n</ul>", "one\ntwo" },
		{ "<h1>Title</h1>\n\n<p>  Body  </p>", "Title\nBody" },
		{ "<scr", "" },
		{ "<p>text</p><scr", "text" },
		{ "<script>never closed", "" },
		{ "a <!-- never closed", "a" },
		{ "<a href=\"never closed>text", "" },
		{ "<!DOCTYPE html><html><head><title>T</title></head>"
		  "<body><h1>H</h1>x</body></html>",
		  "T\nH\nx" },
		{ "<?xml version=\"1.0\"?><p>x</p>", "x" },
		{ "</ p>x</>y", "xy" },
		{ "a&#10;b&#9;c", "a b c" },
		{ "a\xc2\xa0\xc2\xa0"
		  "b",
		  "a b" },
		{ "می&zwnj;خواهم", "می\xe2\x80\x8cخواهم" },
		{ "<p>Привет, <b>мир</b>!</p>", "Привет, мир!" },
		{ "<td>a</td><td>b</td>", "a\nb" },
		{ "<", "<" },
		{ "&", "&" },
		{ "&#", "&#" },
		{ "a</", "a</" },
	};

	(void)state;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(cases); i++) {
		char *out = NULL;
		size_t outlen = 99;

		assert_int_equal(stash_article_html_to_text(
					 cases[i].html, strlen(cases[i].html),
					 &out, &outlen),
				 0);
		assert_non_null(out);
		if (strcmp(out, cases[i].text))
			fail_msg("case %zu: \"%s\" -> \"%s\", want \"%s\"", i,
				 cases[i].html, out, cases[i].text);
		assert_int_equal(outlen, strlen(out));
		free(out);
	}
}

static void test_html_nul(void **state)
{
	char *out;
	size_t outlen;

	(void)state;
	/* A NUL byte would cut the C string short: it is dropped. */
	assert_int_equal(
		stash_article_html_to_text(S("a\0b<p>\0</p>c"), &out, &outlen),
		0);
	expect_str(out, "ab\nc");
	assert_int_equal(outlen, 4);
	free(out);
}

/* ---- text or binary, file kinds ---------------------------------------*/

static void test_is_text(void **state)
{
	static const struct {
		const char *buf;
		size_t len;
		bool text;
	} cases[] = {
		{ S(""), true },
		{ S("hello\n"), true },
		{ S("tab\tcr\r\nff\f"), true },
		{ S("گزارش — 北京 — Größe — 😀\n"), true },
		{ S("\xef\xbb\xbfwith a BOM"), true },
		{ S("U+10FFFF \xf4\x8f\xbf\xbf ok"), true },
		{ S("U+FFFF \xef\xbf\xbf ok"), true },
		{ S("U+D7FF \xed\x9f\xbf U+E000 \xee\x80\x80"), true },
		{ S("a\0b"), false },
		{ S("\xff"), false },
		{ S("\x80 lone continuation"), false },
		{ S("overlong \xc0\xaf"), false },
		{ S("overlong \xc1\xbf"), false },
		{ S("overlong \xe0\x80\xaf"), false },
		{ S("overlong \xf0\x80\x80\xaf"), false },
		{ S("surrogate \xed\xa0\x80"), false },
		{ S("surrogate \xed\xbf\xbf"), false },
		{ S("too big \xf4\x90\x80\x80"), false },
		{ S("too big \xf5\x80\x80\x80"), false },
		{ S("truncated \xe2\x82"), false },
		{ S("truncated at end \xf0\x9f\x98"), false },
		{ S("\x7f"
		    "ELF\x02\x01\x01"),
		  false },
		{ S("\xff\xfeh\0i\0"), false }, /* UTF-16 */
		{ S("\xc2\x80 C1 control"), false },
	};
	uint8_t buf[64];

	(void)state;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(cases); i++)
		if (stash_article_is_text((const uint8_t *)cases[i].buf,
					  cases[i].len) != cases[i].text)
			fail_msg("case %zu: want %d", i, cases[i].text);

	/* At most one control character per 32 bytes. */
	memset(buf, 'a', sizeof(buf));
	buf[10] = 0x1b;
	buf[40] = 0x1b;
	assert_true(stash_article_is_text(buf, sizeof(buf)));
	buf[50] = 0x7f;
	assert_false(stash_article_is_text(buf, sizeof(buf)));
}

static void test_file_kind(void **state)
{
	static const struct {
		const char *name;
		enum stash_file_kind kind;
	} cases[] = {
		{ "a.json", STASH_FILE_ARTICLE },
		{ "A.JSON", STASH_FILE_ARTICLE },
		{ "articles/2024/x.Json", STASH_FILE_ARTICLE },
		{ "x.jsonl", STASH_FILE_JSONL },
		{ "batch.NDJSON", STASH_FILE_JSONL },
		{ "a.b.jsonl", STASH_FILE_JSONL },
		{ "page.html", STASH_FILE_HTML },
		{ "p.HTM", STASH_FILE_HTML },
		{ "p.xhtml", STASH_FILE_HTML },
		{ "notes.txt", STASH_FILE_OTHER },
		{ "json", STASH_FILE_OTHER },
		{ ".json", STASH_FILE_OTHER },
		{ "dir/.jsonl", STASH_FILE_OTHER },
		{ "dir.json/file", STASH_FILE_OTHER },
		{ "x.json.gz", STASH_FILE_OTHER },
		{ "x.jsonx", STASH_FILE_OTHER },
		{ "x.", STASH_FILE_OTHER },
		{ "", STASH_FILE_OTHER },
	};

	(void)state;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(cases); i++)
		if (stash_article_file_kind(cases[i].name) != cases[i].kind)
			fail_msg("\"%s\": want %d", cases[i].name,
				 cases[i].kind);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_article),
		cmocka_unit_test(test_languages),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_author_forms),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_content_precedence),
		cmocka_unit_test(test_content_wrong_type),
		cmocka_unit_test(test_type_rules),
		cmocka_unit_test(test_meta),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_nesting),
		cmocka_unit_test(test_jsonl),
		cmocka_unit_test(test_jsonl_edges),
		cmocka_unit_test(test_jsonl_batch),
		cmocka_unit_test(test_jsonl_huge_line),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_html),
		cmocka_unit_test(test_html_nul),
		cmocka_unit_test(test_is_text),
		cmocka_unit_test(test_file_kind),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
