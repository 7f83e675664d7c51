/*
 * test_textnorm.c - unit tests for store/textnorm.c.
 *
 * Exact outputs for every fold, removal and separator the header lists,
 * CJK bigrams in both modes, invalid UTF-8; then what unicode61 itself does
 * (measured on a real FTS5 table, so the header's claims stay true on
 * this SQLite); then a multilingual in-memory FTS5 table where normalized
 * text is indexed and normalized words must find exactly the expected rows.
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

#include "testutil.h"
#include "textnorm.h"
#include "util.h"

static char *norm_mode(const char *s, size_t len, enum stash_textnorm_mode m)
{
	char *out = NULL;
	size_t n = 0;

	assert_int_equal(stash_textnorm(s, len, m, &out, &n), 0);
	assert_non_null(out);
	assert_int_equal(strlen(out), n);
	return out;
}

/* Both modes give want (no CJK run of two or more in s). */
static void same(const char *s, const char *want)
{
	for (int m = STASH_TEXTNORM_INDEX; m <= STASH_TEXTNORM_QUERY; m++) {
		char *o = norm_mode(s, strlen(s), m);

		assert_string_equal(o, want);
		free(o);
	}
}

static void modes(const char *s, const char *index, const char *query)
{
	char *o = norm_mode(s, strlen(s), STASH_TEXTNORM_INDEX);

	assert_string_equal(o, index);
	free(o);
	o = norm_mode(s, strlen(s), STASH_TEXTNORM_QUERY);
	assert_string_equal(o, query);
	free(o);
}

static void test_arabic_persian(void **state)
{
	(void)state;
	same("كَتَبَ", "كتب"); /* harakat */
	same("الكِتَابُ", "الكتاب");
	same("هٰذا", "هذا");		       /* superscript alef */
	same("مـــحمد", "محمد");	       /* tatweel */
	same("فارسی", "فارسي");		       /* Farsi yeh -> yeh */
	same("إلى", "الي");		       /* hamza alef, maksura */
	same("کتاب", "كتاب");		       /* keheh -> kaf */
	same("مدرسة", "مدرسه");		       /* teh marbuta -> heh */
	same("خانۀ", "خانه");		       /* heh with yeh above */
	same("خانهٔ", "خانه");		       /* heh + hamza above */
	same("أحمد آب ٱلله", "احمد اب الله");  /* alef variants */
	same("می‌خواهم", "مي خواهم"); /* ZWNJ: a separator */
	same("۱۴۰۲/٢٠٢٤", "1402/2024");	       /* digits */
	same("a\xd8\x9c"
	     "b",
	     "a b");	      /* Arabic letter mark */
	same("שָׁלוֹם", "שלום"); /* Hebrew points */
}

static void test_latin_cyrillic(void **state)
{
	(void)state;
	same("Straße STRAẞE", "Strasse STRAssE");
	same("ёлка Ёж", "елка Еж");
	same("е\xcc\x88лка", "елка");		/* decomposed ё */
	same("и\xcc\x86од И\xcc\x86", "йод Й"); /* decomposed й */
	same("e\xcc\x88", "e\xcc\x88");		/* Latin: left to unicode61 */
	same("Café Müller", "Café Müller");
	same("Zei\xc2\xad"
	     "tung",
	     "Zeitung"); /* soft hyphen */
	same("a\xe2\x80\x8d"
	     "b",
	     "ab"); /* ZWJ */
	same("a\xe2\x80\x8b"
	     "b\xe2\x80\x8f"
	     "c",
	     "a b c");				/* ZWSP, RLM */
	same("\xef\xbb\xbfx\xef\xb8\x8f", "x"); /* BOM, variation selector */
	same("ＡＢＣ１２３！", "ABC123!");	/* fullwidth */

	/* NUL inside the input becomes a space. */
	char *o = norm_mode("a\0b", 3, STASH_TEXTNORM_INDEX);

	assert_string_equal(o, "a b");
	free(o);
}

static void test_cjk(void **state)
{
	(void)state;
	modes("北京大学", "北京 京大 大学 学", "北京 京大 大学");
	same("京", "京");
	modes("北京", "北京 京", "北京");
	modes("我爱北京，北京大学", "我爱 爱北 北京 京 , 北京 京大 大学 学",
	      "我爱 爱北 北京 京 , 北京 京大 大学");
	/* A run followed by more tokens keeps its last character in
	 * QUERY mode too, so phrases line up with the index. */
	modes("苹果iPhone手机", "苹果 果 iPhone 手机 机",
	      "苹果 果 iPhone 手机");
	modes("苹果。", "苹果 果 。", "苹果 。");
	modes("東京タワーです", "東京 京タ タワ ワー ーで です す",
	      "東京 京タ タワ ワー ーで です");
	modes("人々", "人々 々", "人々");
	modes("한국어 문장", "한국 국어 어 문장 장", "한국 국어 어 문장");
	modes("a東京b", "a 東京 京 b", "a 東京 京 b");
	/* Ideographic space separates runs. */
	modes("東京　大阪", "東京 京 大阪 阪", "東京 京 大阪");
	/* Halfwidth katakana and voicing marks. */
	modes("ｶﾞｷﾞｸﾞ", "ガギ ギグ グ", "ガギ ギグ");
	modes("か\xe3\x82\x99き", "がき き", "がき");
	modes("ハ\xe3\x82\x9aン", "パン ン", "パン");
	modes("ワ\xe3\x82\x99", "ヷ", "ヷ");
	modes("う\xe3\x82\x99", "ゔ", "ゔ");
	same("a\xe3\x82\x99", "a");   /* stray mark dropped */
	same("ん\xe3\x82\x99", "ん"); /* ん takes none */
	same("ﾜ", "ワ");
}

static void test_invalid_utf8(void **state)
{
	static const struct {
		const char *in;
		const char *want;
	} cases[] = {
		{ "a\xff\xfe"
		  "b",
		  "a\xef\xbf\xbd"
		  "b" },
		{ "\xc0\xaf", "\xef\xbf\xbd" },		/* overlong '/' */
		{ "\xed\xa0\x80", "\xef\xbf\xbd" },	/* surrogate */
		{ "\xf4\x90\x80\x80", "\xef\xbf\xbd" }, /* > U+10FFFF */
		{ "a\xe4\xb8", "a\xef\xbf\xbd" },	/* cut short */
		{ "\x80x\x80", "\xef\xbf\xbdx\xef\xbf\xbd" },
	};
	char *o;

	(void)state;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(cases); i++)
		same(cases[i].in, cases[i].want);

	o = norm_mode(NULL, 0, STASH_TEXTNORM_INDEX);
	assert_string_equal(o, "");
	free(o);
	same("", "");
	o = (char *)"untouched";
	assert_int_equal(
		stash_textnorm(NULL, 1, STASH_TEXTNORM_INDEX, &o, NULL),
		-EINVAL);
	assert_string_equal(o, "untouched");
	assert_int_equal(
		stash_textnorm("a", 1, STASH_TEXTNORM_INDEX, NULL, NULL),
		-EINVAL);
}

static void test_helpers(void **state)
{
	(void)state;
	assert_true(stash_textnorm_lone_cjk_tail("京", strlen("京")));
	assert_true(stash_textnorm_lone_cjk_tail("a 京 ", strlen("a 京 ")));
	assert_true(stash_textnorm_lone_cjk_tail("北京 京", strlen("北京 京")));
	assert_false(stash_textnorm_lone_cjk_tail("北京", strlen("北京")));
	assert_false(stash_textnorm_lone_cjk_tail("京a", strlen("京a")));
	assert_false(stash_textnorm_lone_cjk_tail("", 0));
	assert_false(stash_textnorm_lone_cjk_tail(NULL, 0));

	assert_true(stash_textnorm_has_token("a", 1));
	assert_true(stash_textnorm_has_token("- é", strlen("- é")));
	assert_true(stash_textnorm_has_token("京", strlen("京")));
	assert_true(stash_textnorm_has_token("٣", strlen("٣")));
	assert_false(stash_textnorm_has_token("-", 1));
	assert_false(stash_textnorm_has_token("…—«»", strlen("…—«»")));
	assert_false(stash_textnorm_has_token("。、", strlen("。、")));
	assert_false(stash_textnorm_has_token("ـَ", strlen("ـَ")));
	assert_false(stash_textnorm_has_token("", 0));

	assert_int_equal(stash_textnorm_utf8_check("abc", 3), 3);
	assert_int_equal(stash_textnorm_utf8_check("ab\xff", 3), 2);
	assert_int_equal(stash_textnorm_utf8_check("é\xc3", 3), 2);
	assert_int_equal(stash_textnorm_utf8_check("北京", 6), 6);
}

/* A large input, to cover buffer growth (and ASan over every byte). */
static void test_large(void **state)
{
	size_t n = 300000, len = strlen("北京大学"), out_len;
	char *in = malloc(n * len + 1), *o;

	(void)state;
	assert_non_null(in);
	for (size_t i = 0; i < n; i++)
		memcpy(in + i * len, "北京大学", len);
	assert_int_equal(
		stash_textnorm(in, n * len, STASH_TEXTNORM_INDEX, &o, &out_len),
		0);
	/* 4n - 1 bigrams and one last character, 3 bytes each + a space. */
	assert_int_equal(out_len, (4 * n - 1) * 7 + 3);
	free(o);
	free(in);
}

/*
 * FTS5 helpers: a table t(body) with the project's tokenizer, rows inserted
 * as given, and the rowids a MATCH returns as "1,3".
 */
static sqlite3 *fts_open(void)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(db,
			     "CREATE VIRTUAL TABLE t USING fts5(body, "
			     "tokenize='unicode61 remove_diacritics 2')",
			     NULL, NULL, NULL),
		SQLITE_OK);
	return db;
}

static void fts_insert(sqlite3 *db, int64_t rowid, const char *text)
{
	sqlite3_stmt *st;

	assert_int_equal(sqlite3_prepare_v2(db,
					    "INSERT INTO t(rowid, body) "
					    "VALUES (?1, ?2)",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_int64(st, 1, rowid);
	sqlite3_bind_text(st, 2, text, -1, SQLITE_TRANSIENT);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
}

static void fts_rows(sqlite3 *db, const char *match, char *out, size_t cap)
{
	test_fts_rows(db, "t", match, out, cap);
}

/* The raw string as an FTS5 phrase, quotes doubled. */
static void quote(const char *s, char *out, size_t cap)
{
	size_t o = 0;

	out[o++] = '"';
	for (; *s; s++) {
		assert_true(o + 3 < cap);
		if (*s == '"')
			out[o++] = '"';
		out[o++] = *s;
	}
	out[o++] = '"';
	out[o] = '\0';
}

/*
 * What unicode61 remove_diacritics 2 does by itself (no textnorm), which
 * the header relies on: Latin diacritics and case are folded, ё is not,
 * harakat and ZWNJ split words, a CJK run is one token.
 */
static void test_unicode61_alone(void **state)
{
	sqlite3 *db = fts_open();
	char rows[64];

	(void)state;
	fts_insert(db, 1, "Café Müller Łódź");
	fts_insert(db, 2, "ёлка");
	fts_insert(db, 3, "كَتَبَ");
	fts_insert(db, 4, "北京大学");
	fts_insert(db, 5, "Straße");
	fts_rows(db, "\"cafe\"", rows, sizeof(rows));
	assert_string_equal(rows, "1");
	fts_rows(db, "\"MULLER\"", rows, sizeof(rows));
	assert_string_equal(rows, "1");
	fts_rows(db, "\"łodz\"", rows,
		 sizeof(rows)); /* ł has no decomposition */
	assert_string_equal(rows, "1");
	fts_rows(db, "\"елка\"", rows, sizeof(rows));
	assert_string_equal(rows, ""); /* ё is not folded by unicode61 */
	fts_rows(db, "\"ЁЛКА\"", rows, sizeof(rows));
	assert_string_equal(rows, "2"); /* but its case is */
	fts_rows(db, "\"كتب\"", rows, sizeof(rows));
	assert_string_equal(rows, ""); /* harakat split the word */
	fts_rows(db, "\"北京\"", rows, sizeof(rows));
	assert_string_equal(rows, ""); /* the run is one token */
	fts_rows(db, "\"strasse\"", rows, sizeof(rows));
	assert_string_equal(rows, "");
	sqlite3_close(db);
}

/* The index: text in many languages, stored normalized (INDEX mode). */
static const char *const texts[] = {
	/* 1 */ "Die Straßenbahn fährt über die Brücke nach München.",
	/* 2 */ "Le café est très apprécié à Paris, où l'élégance règne.",
	/* 3 */ "Новогодняя ёлка стоит на площади в Москве.",
	/* 4 */ "من کتاب‌های فارسی را می‌خوانم",
	/* 5 */ "كِتَابِي فارسي",
	/* 6 */ "ذهبَ الطالبُ إلى المدرسة في القاهرة",
	/* 7 */ "我爱北京天安门，北京大学很有名。",
	/* 8 */ "東京タワーは日本の電波塔です。",
	/* 9 */ "한국어 문장입니다",
	/* 10 */ "The quick brown fox",
	/* 11 */ "苹果iPhone手机",
	/* 12 */ "ｶﾞｲﾄﾞﾌﾞｯｸ", /* halfwidth: ガイドブック */
};

static const struct {
	const char *word; /* as a user types it */
	const char *rows; /* the rows it must find, exactly */
} words[] = {
	{ "Straßenbahn", "1" },
	{ "strassenbahn", "1" },
	{ "fahrt", "1" },
	{ "BRÜCKE", "1" },
	{ "munchen", "1" },
	{ "cafe", "2" },
	{ "apprecie", "2" },
	{ "élégance", "2" },
	{ "regne", "2" },
	{ "ёлка", "3" },
	{ "елка", "3" },
	{ "ЁЛКА", "3" },
	{ "москве", "3" },
	{ "کتاب", "4" },	      /* the stem of کتاب‌های */
	{ "کتاب‌های", "4" }, /* typed with ZWNJ: a phrase */
	{ "کتاب های", "4" },	      /* typed with a space: the same */
	{ "می‌خوانم", "4" },
	{ "خوانم", "4" },
	{ "فارسی", "4,5" }, /* Persian ی and Arabic ي */
	{ "فارسي", "4,5" },
	{ "کتابی", "5" }, /* Persian letters, no harakat */
	{ "كتابي", "5" }, /* Arabic letters */
	{ "كِتَابِي", "5" }, /* with harakat */
	{ "ذهب", "6" },
	{ "المدرسة", "6" },
	{ "المدرسه", "6" },
	{ "الى", "6" }, /* typed without hamza */
	{ "القاهره", "6" },
	{ "北京", "7" },
	{ "天安门", "7" },
	{ "北京大学", "7" },
	{ "门", "7" }, /* last character of a run */
	{ "名", "7" },
	{ "京", "7,8" }, /* 京 is in 北京 and in 東京 */
	{ "大学生", "" },
	{ "上海", "" },
	{ "東京", "8" },
	{ "タワー", "8" },
	{ "東京タワー", "8" },
	{ "電波塔", "8" },
	{ "塔", "8" },
	{ "です", "8" },
	{ "ﾀﾜｰ", "8" }, /* halfwidth query */
	{ "大阪", "" },
	{ "한국어", "9" },
	{ "문장", "9" },
	{ "FOX", "10" },
	{ "苹果iPhone", "11" },
	{ "iphone手机", "11" },
	{ "果", "11" },
	{ "ガイドブック", "12" },
	{ "ブック", "12" },
	{ "ガイト\xe3\x82\x99", "12" }, /* decomposed query */
};

static void test_fts5_multilingual(void **state)
{
	sqlite3 *db = fts_open();
	char q[512], rows[128];

	(void)state;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(texts); i++) {
		char *n = norm_mode(texts[i], strlen(texts[i]),
				    STASH_TEXTNORM_INDEX);

		fts_insert(db, (int64_t)i + 1, n);
		free(n);
	}
	for (size_t i = 0; i < STASH_ARRAY_SIZE(words); i++) {
		size_t len;
		char *n = norm_mode(words[i].word, strlen(words[i].word),
				    STASH_TEXTNORM_QUERY);

		len = strlen(n);
		quote(n, q, sizeof(q) - 1);
		if (stash_textnorm_lone_cjk_tail(n, len))
			memcpy(q + strlen(q), "*", 2);
		fts_rows(db, q, rows, sizeof(rows));
		if (strcmp(rows, words[i].rows))
			fail_msg("'%s' (MATCH %s) found '%s', want '%s'",
				 words[i].word, q, rows, words[i].rows);
		free(n);
	}
	sqlite3_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arabic_persian),
		cmocka_unit_test(test_latin_cyrillic),
		cmocka_unit_test(test_cjk),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_helpers),
		cmocka_unit_test(test_large),
		cmocka_unit_test(test_unicode61_alone),
		cmocka_unit_test(test_fts5_multilingual),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
