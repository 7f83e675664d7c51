/*
 * query.h - parse a `.search/QUERY/` directory name into what the catalog
 * needs: an FTS5 MATCH expression and the filters that are not full-text.
 *
 * It does not run the query (the catalog does) and does not check FTS5's
 * grammar to the end: SQLite is the final judge, and
 * stash_query_fts5_check() hands back FTS5's own message. Pure functions
 * over the input, no global state: thread-safe.
 *
 * THE QUERY LANGUAGE (for the README)
 *
 * A query is one path component: at most 255 bytes, no '/'. It is first
 * percent-decoded: %XX is the byte XX (hex, either case), so "%2F" is '/',
 * "%25" is '%' and "%20" a space; a '%' not followed by two hex digits is
 * an error, %00 too. The result must be valid UTF-8.
 *
 * Words are FTS5 syntax (https://sqlite.org/fts5.html#full_text_query_syntax):
 *   storage engine        both words (implicit AND)
 *   storage AND engine    the same
 *   storage OR disk       either
 *   storage NOT disk      the first without the second (NOT is binary:
 *                         "NOT disk" alone is an error, as in FTS5)
 *   (a OR b) c            grouping; a group next to a word, field or
 *                         group is joined to it with an explicit AND
 *                         (FTS5 needs one there), which binds looser
 *                         than NOT: a NOT (b) c is (a NOT (b)) AND c
 *   "quick brown fox"     a phrase; "" inside a phrase is one '"'
 *   stor*                 prefix ("quick bro"* for a phrase)
 *   ^storage              the word must start a column
 *   NEAR(fox dog, 5)      within 5 tokens (default 10); write NEAR( with
 *                         no space, otherwise NEAR is an ordinary word
 * Operators must be upper case, as in FTS5: and, or, not, near are
 * searched as words. Any other character may be part of a word
 * (e-mail, c++, 12:30 are searched as the tokens they hold); every word
 * and phrase is normalized with textnorm (QUERY mode) and quoted, so
 * punctuation never becomes FTS5 syntax. A word that holds no searchable
 * character at all ("-", "...") is dropped. A word in Chinese, Japanese or
 * Korean becomes the phrase of its bigrams (北京大学 -> "北京 京大 大学"),
 * which finds it inside longer text; a one-character CJK word X becomes
 * the prefix X* (see textnorm.h). Write CJK without spaces inside a phrase.
 *
 * Fields (names case-insensitive: Author: = author:), full-text columns,
 * which combine with AND/OR/NOT/parentheses exactly like words:
 *   author:X   tag:X (or tags:X)   url:X   lang:X   title:X   content:X
 * become the FTS5 column filters  author : "X", tags : "X", url : "X",
 * lang : "X", title : "X", content : "X". X is a word (prefix * and ^
 * allowed), a quoted phrase (author:"Jane Doe"), a group
 * (author:(smith OR jones)) or NEAR(...). A bare X runs to the next space:
 *   url:example.com             the tokens "example com" in that order
 *   url:"example.com news"      a phrase over three tokens
 *   url:example.com%2Fnews      a slash (or https%3A%2F%2F...): still tokens
 *   lang:fa   lang:zh           (lang:zh also finds "zh-CN")
 *
 * Filters (not full-text) are taken out of the expression and apply to
 * the whole query (ANDed with it), wherever they stand at the top level:
 * "fox NOT dog after:2024-01-01" is (fox NOT dog) from 2024 on, and an
 * AND next to a filter goes with it. Where that reading could be taken
 * for another they are errors: inside parentheses, a field's group or
 * NEAR(), right after OR or NOT, right before OR, and anywhere in a query
 * whose top level has an OR (write "(a OR b) after:2024-01-01"). A filter
 * cannot be a query's only left operand of NOT ("after:D NOT fox": FTS5
 * has no "everything but").
 *   area:NAME           entries under the top-level folder NAME
 *                       (articles, files, programs, ...); case-sensitive
 *                       like a file name; may repeat: any of them
 *   name:GLOB           the entry's file name (the last component, not the
 *                       path) matches GLOB (* ? [...], SQLite GLOB),
 *                       case-insensitively; may repeat: all must match;
 *                       quote it for spaces: name:"report (1).pdf"
 *   after:DATE          dated at or after DATE (inclusive); the date is
 *                       the catalog's: published_at for articles
 *   before:DATE         dated strictly before DATE (exclusive), so
 *                       after:2024-01-01 before:2024-02-01 is January
 *   limit:N             at most N results, 1..100000, default 1000
 * DATE is YYYY-MM-DD (midnight UTC) or an ISO 8601 date-time
 * YYYY-MM-DDTHH:MM[:SS[.fraction]] with Z or +HH:MM / -HH:MM / +HHMM
 * (no zone = UTC). Repeated after:/before: keep the narrowest range.
 *
 * Examples (all in tests/unit/test_query.c):
 *   storage                   "storage"
 *   storage explained         "storage" "explained"
 *   fox OR disk               "fox" OR "disk"
 *   fox NOT dog               "fox" NOT "dog"
 *   (fox OR disk) NOT smith   ("fox" OR "disk") NOT "smith"
 *   "quick brown"             "quick brown"
 *   stor*                     "stor"*
 *   ^storage                  ^"storage"
 *   NEAR(quick dog, 5)        NEAR("quick" "dog", 5)
 *   author:"Jane Doe"         author : "Jane Doe"
 *   Tag:storage               tags : "storage"
 *   author:(doe OR smith)     author : ("doe" OR "smith")
 *   jane NOT author:jane      "jane" NOT author : "jane"
 *   url:example.com           url : "example.com"
 *   url:https%3A%2F%2Fexample.com%2Fnews
 *                             url : "https://example.com/news"
 *   lang:en-GB                lang : "en-GB"
 *   fox - dog                 "fox" "dog"
 *   %22quick%20brown%22       "quick brown"
 *   كِتَاب                      "كتاب"
 *   北京大学                  "北京 京大 大学"
 *   京                        "京"*
 *   area:articles after:2024-01-01 limit:10 fox
 *                             "fox"; areas {articles}, after_ns
 *                             1704067200e9, limit 10
 *   fox AND after:2024-01-01 AND dog
 *                             "fox" AND "dog"; after_ns set
 *   name:*.PDF                no match; names {"*.pdf"}
 *
 * Errors (-EINVAL unless said otherwise; positions count characters of
 * the name as typed, from 1):
 *   empty query
 *   query longer than 255 bytes (-ENAMETOOLONG)
 *   bad percent escape at N
 *   %00 is not allowed at N
 *   invalid UTF-8 at N
 *   unknown field 'autor:' at N
 *   author: needs a value at N
 *   unbalanced parenthesis at N
 *   unterminated quote at N
 *   '*' at N must follow a word or phrase
 *   '^' at N must precede a word or phrase
 *   empty parentheses at N
 *   '/' at N: write it as %2F
 *   after: cannot be inside OR/NOT/parentheses (at N)
 *   after: cannot be used with OR at the top level; group the OR in
 *     parentheses (at N)
 *   fields cannot be used inside NEAR() at N
 *   parentheses cannot be used inside NEAR() at N
 *   NEAR() wants a distance of 0 to 999999 after ',' at N
 *   NEAR() wants ')' after its distance at N
 *   bad date '2024-13-01' in after:
 *   after: must be earlier than before:
 *   limit: wants a number between 1 and 100000
 *   limit: given twice at N
 *   area: wants a top-level folder name at N
 *   name: matches a file name, which has no '/' (at N)
 *   'NOT' at N needs a search term on its left   (and on its right)
 */
#ifndef STASH_QUERY_H
#define STASH_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#define STASH_QUERY_LIMIT_DEFAULT 1000 /* results when no limit: is given */
#define STASH_QUERY_LIMIT_MAX 100000   /* largest limit: accepted */
#define STASH_QUERY_ERR_MAX 160	       /* enough for every error message */

/*
 * A parsed query. Every string is malloc'd, NUL-terminated UTF-8, owned by
 * the struct and freed by stash_query_free.
 */
struct stash_query {
	char *match;	   /* FTS5 MATCH expression; NULL: only filters */
	char **areas;	   /* area: names, any may match; NULL if none */
	size_t n_areas;	   /* entries in areas */
	char **names;	   /* name: GLOBs, case-folded; all must match */
	size_t n_names;	   /* entries in names */
	int64_t after_ns;  /* date >= after_ns, ns since the epoch (UTC);
			      INT64_MIN: no lower bound */
	int64_t before_ns; /* date < before_ns, ns since the epoch (UTC);
			      INT64_MAX: no upper bound */
	uint32_t limit;	   /* 1..STASH_QUERY_LIMIT_MAX */
};

/*
 * Parse the directory name (a NUL-terminated path component) into *out,
 * which the caller frees with stash_query_free. The FTS5 column names the
 * match uses are title, content, author, tags, url, lang.
 * Returns 0; -EINVAL for a bad query (err gets the one-line reason, see
 * the list above); -ENAMETOOLONG over 255 bytes; -ENOMEM. *out is set only
 * on success. err may be NULL or errlen 0; a reason longer than errlen is
 * cut; STASH_QUERY_ERR_MAX bytes hold every reason whole.
 */
int stash_query_parse(const char *name, struct stash_query **out, char *err,
		      size_t errlen);

/* Free q and everything it holds; NULL is allowed. */
void stash_query_free(struct stash_query *q);

/*
 * Whether file name name (one component, NUL-terminated) matches every
 * name: GLOB of q (true when there is none). Case-insensitive: both sides
 * go through stash_query_fold_name.
 */
bool stash_query_name_match(const struct stash_query *q, const char *name);

/*
 * Case-fold a file name or GLOB the way name: compares them: ASCII,
 * Latin-1, Latin Extended-A, Greek and Cyrillic capitals become small
 * letters; everything else is copied. *out is malloc'd (caller frees).
 * Returns 0, -EINVAL (NULL argument) or -ENOMEM. For a catalog that wants
 * to compare in SQL with a function of its own.
 */
int stash_query_fold_name(const char *s, char **out);

/*
 * Run match against the FTS5 table (any name; it is quoted) of db, to learn
 * whether FTS5 accepts it. Returns 0 when it does; -EINVAL with FTS5's
 * message in err ("fts5: syntax error near ...", "no such column: x")
 * when it does not; another negative errno (stash_sqlite_errno) for other
 * failures, with SQLite's message in err.
 */
int stash_query_fts5_check(sqlite3 *db, const char *table, const char *match,
			   char *err, size_t errlen);

#endif
