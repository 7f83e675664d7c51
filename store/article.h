/*
 * article.h - turn stored bytes into what the full-text index needs:
 * articles from JSON and JSON Lines, plain text from HTML, ISO 8601 dates,
 * and the "is this text?" test for everything else.
 *
 * Pure functions over (ptr, len) buffers: no I/O, no catalog, no logging,
 * no global state of ours, so every function may run in many threads at
 * once. (cJSON itself stores an error position in a global on every parse;
 * it is never read here, but a thread sanitizer will see the race.)
 * Input is untrusted: every length is checked, sizes and nesting are
 * bounded, and messages never quote the input (they reach logs and xattrs).
 */
#ifndef STASH_ARTICLE_H
#define STASH_ARTICLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STASH_ARTICLE_MAX ((size_t)64 << 20) /* largest article, in bytes */
#define STASH_ARTICLE_MAX_DEPTH 64 /* deepest nesting of objects/arrays */

/* What a file is to the indexer, judged by its name alone. */
enum stash_file_kind {
	STASH_FILE_OTHER,   /* text (if stash_article_is_text) or name only */
	STASH_FILE_ARTICLE, /* .json: one article (under articles/) */
	STASH_FILE_JSONL,   /* .jsonl, .ndjson: one article per line */
	STASH_FILE_HTML,    /* .html, .htm, .xhtml: text via html_to_text */
};

/*
 * The kind of name (a base name or a path) by its extension, ASCII
 * case-insensitive. A name that is only an extension (".json") is OTHER.
 * Whether a .json file is an article depends on its area: the caller
 * decides that.
 */
enum stash_file_kind stash_article_file_kind(const char *name);

/*
 * One parsed article. Every string is NUL-terminated valid UTF-8, malloc'd,
 * owned by the struct and freed by stash_article_release; NULL when the
 * field is absent, null or empty.
 *
 * Field rules (keys are case-sensitive; for a key given twice the first
 * wins and the later ones go to meta):
 *  - title, url, lang: a string (trimmed), or a number/boolean as its JSON
 *    text ("title": 1984).
 *  - content: the first non-blank of content > text > body > html, in that
 *    order whatever the order in the document; html is reduced to text by
 *    stash_article_html_to_text, the others are kept byte for byte. The
 *    alternatives not chosen are dropped, not put in meta (same text twice).
 *  - author: a string, an object with a "name" string (schema.org), or an
 *    array of those; joined with ", ".
 *  - tags: an array of strings or numbers, or one string taken as one tag
 *    (not split); joined with ", ".
 *  - published_at: a string accepted by stash_article_parse_date.
 *  - anything else: a line "key: value" in meta per scalar, nested keys
 *    joined with '.' ("source.name: BBC"), array elements one line each;
 *    control characters in keys and values become spaces.
 * A known field of the wrong type (title an object, published_at a number
 * or not a date) is not an error: the field is absent, its value goes to
 * meta so it stays searchable, and warning says why. A wrong element of an
 * author or tags array is skipped with a warning.
 */
struct stash_article {
	char *title;	       /* plain text */
	char *content;	       /* plain text, the article body */
	char *url;	       /* as written */
	char *author;	       /* authors joined with ", " */
	char *tags;	       /* tags joined with ", " */
	char *lang;	       /* as written, e.g. "fa" or "en-GB" */
	char *meta;	       /* other keys, "key: value\n" lines */
	char *warning;	       /* why some fields were ignored; "; "-joined */
	int64_t published_at;  /* ns since the epoch, UTC */
	bool has_published_at; /* published_at is set */
	uint64_t line;	       /* JSON Lines: 1-based line number; 0 = file */
	uint64_t offset;       /* first byte of the record in the buffer */
	size_t length;	       /* bytes of the record, without line break */
};

/*
 * Parse one JSON document (len bytes, no NUL needed; a UTF-8 BOM is skipped)
 * into *out, which is overwritten (line 0, offset 0, length len). Returns:
 *  0        an article; *out must be released.
 *  -EINVAL  not an article: invalid JSON (strict RFC 8259: UTF-8 only, no
 *           trailing commas, no raw control characters in strings, no
 *           unpaired \u surrogates), a value that is not an object, numbers
 *           over 63 characters or nesting deeper than STASH_ARTICLE_MAX_DEPTH.
 *  -EFBIG   len > STASH_ARTICLE_MAX.
 *  -ENOMEM
 * On error *out holds no allocation (release is still allowed) and err gets
 * a readable reason, "line 1, column 17: expected ':' after an object key";
 * columns count characters, from 1. err may be NULL or errsize 0.
 * A \u0000 escape ends its string (C strings).
 */
int stash_article_parse(const char *json, size_t len, struct stash_article *out,
			char *err, size_t errsize);

/* Free every string of a and zero it; a second call does nothing. */
void stash_article_release(struct stash_article *a);

/*
 * Called once per non-blank line of a JSON Lines buffer, in order. rc is 0
 * when a is a parsed article, otherwise the error stash_article_parse gave
 * (-EINVAL, -EFBIG) with err its reason, naming the line of the file; a then
 * only has line, offset and length set. a and err are valid during the call
 * only. Return 0 to go on, a negative errno to stop.
 */
typedef int (*stash_article_line_fn)(void *arg, int rc,
				     const struct stash_article *a,
				     const char *err);

/*
 * Split buf into lines on '\n' (a "\r\n" ends a line too, and the last line
 * needs no line break), skip lines holding only whitespace, parse each other
 * line on its own and hand it to fn. buf[a->offset .. a->offset + a->length)
 * are the exact bytes of the record. A malformed line does not stop the
 * others. Returns 0, -ENOMEM, or the first negative value fn returned.
 */
int stash_article_each_line(const char *buf, size_t len,
			    stash_article_line_fn fn, void *arg);

/*
 * Parse an ISO 8601 date or date-time into ns since the epoch:
 *   2024-05-01                      (midnight UTC)
 *   2024-05-01T10:20 / T10:20:30 / T10:20:30.123456789
 *   ... followed by Z, +02:00, -0500 or +02; none means UTC.
 * A space may replace the T; 't' and 'z' are accepted; ',' may replace the
 * '.'; fraction digits past nanoseconds are ignored; spaces around are
 * ignored. Every field is range-checked (Feb 29 only in leap years, second
 * 60 allowed for a leap second, offsets up to 23:59). Returns 0 or -EINVAL
 * (anything else, or a time outside int64 ns: before 1677 or after 2262).
 */
int stash_article_parse_date(const char *s, size_t len, int64_t *ns);

/*
 * Reduce HTML to plain text into a new malloc'd, NUL-terminated *out of
 * *outlen bytes (the caller frees it): tags, comments, <!...>, <?...> and the
 * contents of <script> and <style> are dropped; block elements (p, div, br,
 * li, h1-h6, tr, ...) become line breaks; entities are decoded (amp lt gt
 * quot apos nbsp and a few more by name, &#NNN; &#xHH; by number, invalid
 * code points as U+FFFD, &nbsp; as a plain space); runs of whitespace become
 * one space, or one '\n' if they hold a line break; the ends are trimmed.
 * Malformed HTML never fails: a '<' not starting a tag is text, an unclosed
 * tag, comment or script runs to the end. Other bytes are copied as they
 * are (check UTF-8 first), except that U+00A0 counts as whitespace and NUL
 * bytes are dropped. <pre> is not special. Returns 0 or -ENOMEM (*out
 * untouched).
 */
int stash_article_html_to_text(const char *html, size_t len, char **out,
			       size_t *outlen);

/*
 * Whether buf is text worth indexing by content: valid UTF-8 (no overlong
 * forms, no surrogates, nothing above U+10FFFF), no NUL byte, and at most
 * one control character (other than \t \n \r \f; C1 controls and DEL
 * count) per 32 bytes. The empty buffer is text. UTF-16 files are not.
 */
bool stash_article_is_text(const uint8_t *buf, size_t len);

#endif
