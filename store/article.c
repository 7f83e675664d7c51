/*
 * article.c - articles from JSON / JSON Lines, text from HTML, ISO 8601
 * dates and the text-or-binary test, for the full-text index.
 *
 * JSON is checked by a strict scanner of our own first, for two reasons:
 * cJSON only reports where it stopped, never why, and it accepts things
 * that are not JSON (leading zeros, any byte below 0x21 as whitespace,
 * invalid UTF-8). Once the scanner passes, cJSON builds the tree; the
 * scanner's limits (nesting, number length) keep cJSON from failing on
 * valid input, so a cJSON failure after it can only be out of memory.
 *
 * Deliberately not here: reading files, the catalog, logging, language
 * detection, charset conversion (anything not UTF-8 is not text).
 */
#include "article.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "textnorm.h"
#include "util.h"

#define NUMBER_MAX 63 /* cJSON parses numbers in a 64-byte buffer */
#define ERR_MAX 192   /* room for one error or warning message */

_Static_assert(STASH_ARTICLE_MAX_DEPTH < CJSON_NESTING_LIMIT,
	       "the scanner must stop nesting before cJSON does");

/* ---- growable string ---------------------------------------------------*/

struct sbuf {
	char *p;    /* NUL-terminated once anything was added; may be NULL */
	size_t len; /* bytes used, without the NUL */
	size_t cap; /* bytes allocated */
};

static int sbuf_add(struct sbuf *b, const void *s, size_t n)
{
	size_t need, cap;
	char *p;

	if (n == 0)
		return 0;
	if (n > SIZE_MAX - b->len - 1)
		return -ENOMEM;
	need = b->len + n + 1;
	if (need > b->cap) {
		cap = b->cap ? b->cap : 64;
		while (cap < need)
			cap = cap > SIZE_MAX / 2 ? need : cap * 2;
		p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static int sbuf_addc(struct sbuf *b, char c)
{
	return sbuf_add(b, &c, 1);
}

static int sbuf_adds(struct sbuf *b, const char *s)
{
	return sbuf_add(b, s, strlen(s));
}

/* Hand over the string (NULL if empty) and reset b. */
static char *sbuf_take(struct sbuf *b)
{
	char *p = b->p;

	if (b->len == 0) {
		free(p);
		p = NULL;
	}
	memset(b, 0, sizeof(*b));
	return p;
}

static void sbuf_release(struct sbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* ---- small helpers ----------------------------------------------------*/

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int ascii_lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static bool is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	       c == '\v';
}

static bool is_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_space((unsigned char)s[i]))
			return false;
	return true;
}

static void trim(const char **s, size_t *n)
{
	while (*n > 0 && is_space((unsigned char)(*s)[0])) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && is_space((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

static int dup_str(const char *s, size_t n, char **out)
{
	char *p = malloc(n + 1);

	if (!p)
		return -ENOMEM;
	memcpy(p, s, n);
	p[n] = '\0';
	*out = p;
	return 0;
}

static bool ascii_caseeq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (ascii_lower((unsigned char)*a) !=
		    ascii_lower((unsigned char)*b))
			return false;
	return *a == *b;
}

static size_t skip_bom(const char *s, size_t len)
{
	return len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
}

static void set_err(char *err, size_t errsize, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errsize, const char *fmt, ...)
{
	va_list ap;

	if (!err || errsize == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errsize, fmt, ap);
	va_end(ap);
}

/* Encode c (U+FFFD if it is NUL or not a scalar value); returns the
 * length. */
static size_t utf8_encode(uint32_t c, char s[4])
{
	if (c == 0 || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		c = 0xfffd;
	return stash_textnorm_utf8_encode(c, s);
}

/* ---- strict JSON scanner ----------------------------------------------
 * Iterative (an explicit stack), so hostile nesting cannot exhaust the C
 * stack. Messages name a position and never quote the input: they end up
 * in logs and xattrs.
 */

struct scan {
	const uint8_t *p; /* the document */
	size_t len;	  /* its length */
	size_t pos;	  /* next byte to look at */
	uint64_t line;	  /* line number of p[0] in its file */
	char *err;	  /* where the reason goes, or NULL */
	size_t errsize;	  /* bytes at err */
};

static int scan_fail(struct scan *s, size_t at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int scan_fail(struct scan *s, size_t at, const char *fmt, ...)
{
	char msg[ERR_MAX];
	uint64_t line = s->line;
	size_t column = 1;
	va_list ap;

	/* Columns count characters: the number a user sees in an editor. */
	for (size_t i = 0; i < at && i < s->len; i++) {
		if (s->p[i] == '\n') {
			line++;
			column = 1;
		} else if ((s->p[i] & 0xc0) != 0x80) {
			column++;
		}
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_err(s->err, s->errsize, "line %" PRIu64 ", column %zu: %s", line,
		column, msg);
	return -EINVAL;
}

static void scan_space(struct scan *s)
{
	while (s->pos < s->len &&
	       (s->p[s->pos] == ' ' || s->p[s->pos] == '\t' ||
		s->p[s->pos] == '\n' || s->p[s->pos] == '\r'))
		s->pos++;
}

static bool hex4(const uint8_t *p, uint32_t *v)
{
	*v = 0;
	for (int i = 0; i < 4; i++) {
		int c = ascii_lower(p[i]);

		if (is_digit(c))
			*v = (*v << 4) | (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			*v = (*v << 4) | (uint32_t)(c - 'a' + 10);
		else
			return false;
	}
	return true;
}

/* At a backslash followed by 'u'. Surrogates must come in pairs, as cJSON
 * (and Unicode) require. */
static int scan_u_escape(struct scan *s)
{
	size_t at = s->pos;
	uint32_t hi, lo;

	if (s->len - s->pos < 6 || !hex4(s->p + s->pos + 2, &hi))
		return scan_fail(s, at, "\\u must be followed by 4 hex digits");
	s->pos += 6;
	if (hi >= 0xdc00 && hi <= 0xdfff)
		return scan_fail(s, at, "unpaired surrogate \\u%04X", hi);
	if (hi < 0xd800 || hi > 0xdbff)
		return 0;
	if (s->len - s->pos < 6 || s->p[s->pos] != '\\' ||
	    s->p[s->pos + 1] != 'u' || !hex4(s->p + s->pos + 2, &lo) ||
	    lo < 0xdc00 || lo > 0xdfff)
		return scan_fail(s, at, "unpaired surrogate \\u%04X", hi);
	s->pos += 6;
	return 0;
}

static int scan_string(struct scan *s)
{
	size_t start = s->pos;
	uint32_t cp;
	size_t n;
	int rc;

	s->pos++; /* the opening quote */
	for (;;) {
		uint8_t c;

		if (s->pos >= s->len)
			return scan_fail(s, start, "string not closed");
		c = s->p[s->pos];
		if (c == '"') {
			s->pos++;
			return 0;
		}
		if (c == '\\') {
			if (s->pos + 1 >= s->len)
				return scan_fail(s, start, "string not closed");
			if (s->p[s->pos + 1] == 'u') {
				rc = scan_u_escape(s);
				if (rc)
					return rc;
				continue;
			}
			if (s->p[s->pos + 1] == '\0' ||
			    !strchr("\"\\/bfnrt", s->p[s->pos + 1]))
				return scan_fail(s, s->pos,
						 "invalid escape in a string");
			s->pos += 2;
			continue;
		}
		if (c < 0x20)
			return scan_fail(s, s->pos,
					 "control character U+%04X in a string "
					 "must be escaped",
					 c);
		n = stash_textnorm_utf8_decode(s->p + s->pos, s->len - s->pos,
					       &cp);
		if (n == 0)
			return scan_fail(s, s->pos,
					 "invalid UTF-8 in a string");
		s->pos += n;
	}
}

static int scan_number(struct scan *s)
{
	size_t start = s->pos;

	if (s->p[s->pos] == '-')
		s->pos++;
	if (s->pos >= s->len || !is_digit(s->p[s->pos]))
		return scan_fail(s, start, "invalid number");
	if (s->p[s->pos] == '0') {
		s->pos++;
		if (s->pos < s->len && is_digit(s->p[s->pos]))
			return scan_fail(s, start,
					 "invalid number (leading zero)");
	}
	while (s->pos < s->len && is_digit(s->p[s->pos]))
		s->pos++;
	if (s->pos < s->len && s->p[s->pos] == '.') {
		s->pos++;
		if (s->pos >= s->len || !is_digit(s->p[s->pos]))
			return scan_fail(s, start,
					 "invalid number (no digit after '.')");
		while (s->pos < s->len && is_digit(s->p[s->pos]))
			s->pos++;
	}
	if (s->pos < s->len && (s->p[s->pos] == 'e' || s->p[s->pos] == 'E')) {
		s->pos++;
		if (s->pos < s->len &&
		    (s->p[s->pos] == '+' || s->p[s->pos] == '-'))
			s->pos++;
		if (s->pos >= s->len || !is_digit(s->p[s->pos]))
			return scan_fail(s, start,
					 "invalid number (no digit in the "
					 "exponent)");
		while (s->pos < s->len && is_digit(s->p[s->pos]))
			s->pos++;
	}
	if (s->pos - start > NUMBER_MAX)
		return scan_fail(s, start, "number longer than %d characters",
				 NUMBER_MAX);
	return 0;
}

static int scan_scalar(struct scan *s)
{
	static const char *const literals[] = { "true", "false", "null" };
	uint8_t c = s->p[s->pos];

	if (c == '"')
		return scan_string(s);
	if (c == '-' || is_digit(c))
		return scan_number(s);
	for (size_t i = 0; i < STASH_ARRAY_SIZE(literals); i++) {
		size_t n = strlen(literals[i]);

		if (c != (uint8_t)literals[i][0])
			continue;
		if (s->len - s->pos < n ||
		    memcmp(s->p + s->pos, literals[i], n))
			return scan_fail(s, s->pos, "invalid literal");
		s->pos += n;
		return 0;
	}
	return scan_fail(s, s->pos, "expected a value");
}

static int scan_eof(struct scan *s, size_t depth, const char *stack)
{
	if (depth == 0)
		return scan_fail(s, s->pos, "no JSON value");
	return scan_fail(s, s->pos, "unexpected end of input (%s not closed)",
			 stack[depth - 1] == '{' ? "object" : "array");
}

/* Check that s holds exactly one JSON value, surrounded by whitespace. */
static int scan_json(struct scan *s)
{
	enum { WANT_VALUE, WANT_KEY, AFTER_VALUE } want = WANT_VALUE;
	char stack[STASH_ARTICLE_MAX_DEPTH]; /* '{' or '[' per open level */
	size_t depth = 0;
	char close;
	uint8_t c;
	int rc;

	for (;;) {
		scan_space(s);
		if (want == AFTER_VALUE && depth == 0)
			break;
		if (s->pos >= s->len)
			return scan_eof(s, depth, stack);
		c = s->p[s->pos];
		switch (want) {
		case WANT_KEY:
			if (c != '"')
				return scan_fail(s, s->pos,
						 "expected a string key");
			rc = scan_string(s);
			if (rc)
				return rc;
			scan_space(s);
			if (s->pos >= s->len)
				return scan_eof(s, depth, stack);
			if (s->p[s->pos] != ':')
				return scan_fail(s, s->pos,
						 "expected ':' after an object "
						 "key");
			s->pos++;
			want = WANT_VALUE;
			break;
		case WANT_VALUE:
			if (c == '{' || c == '[') {
				if (depth == sizeof(stack))
					return scan_fail(
						s, s->pos,
						"nested deeper than "
						"%d levels",
						STASH_ARTICLE_MAX_DEPTH);
				stack[depth++] = (char)c;
				s->pos++;
				scan_space(s);
				close = c == '{' ? '}' : ']';
				if (s->pos < s->len && s->p[s->pos] == close) {
					s->pos++;
					depth--;
					want = AFTER_VALUE;
				} else {
					want = c == '{' ? WANT_KEY : WANT_VALUE;
				}
				break;
			}
			rc = scan_scalar(s);
			if (rc)
				return rc;
			want = AFTER_VALUE;
			break;
		case AFTER_VALUE:
			close = stack[depth - 1] == '{' ? '}' : ']';
			if (c == close) {
				s->pos++;
				depth--;
				break;
			}
			if (c != ',')
				return scan_fail(
					s, s->pos,
					"expected ',' or '%c' after %s", close,
					close == '}' ? "an object member"
						     : "an array element");
			s->pos++;
			scan_space(s);
			if (s->pos < s->len &&
			    (s->p[s->pos] == '}' || s->p[s->pos] == ']'))
				return scan_fail(s, s->pos,
						 "trailing comma before '%c'",
						 s->p[s->pos]);
			want = close == '}' ? WANT_KEY : WANT_VALUE;
			break;
		}
	}
	if (s->pos < s->len)
		return scan_fail(s, s->pos,
				 "unexpected text after the JSON value");
	return 0;
}

/* ---- article fields ---------------------------------------------------*/

enum field {
	F_TITLE,
	F_URL,
	F_LANG,
	F_AUTHOR,
	F_TAGS,
	F_DATE,
	F_CONTENT, /* F_CONTENT..F_HTML in order of precedence */
	F_TEXT,
	F_BODY,
	F_HTML,
	F_COUNT
};

static const char *const field_keys[F_COUNT] = {
	[F_TITLE] = "title",	 [F_URL] = "url",   [F_LANG] = "lang",
	[F_AUTHOR] = "author",	 [F_TAGS] = "tags", [F_DATE] = "published_at",
	[F_CONTENT] = "content", [F_TEXT] = "text", [F_BODY] = "body",
	[F_HTML] = "html",
};

struct fill {
	struct stash_article *a; /* being filled */
	struct sbuf meta;	 /* becomes a->meta */
	struct sbuf warn;	 /* becomes a->warning */
	struct sbuf path;	 /* key path while walking meta */
};

/* The text of a string, number or boolean; false for anything else. */
static bool scalar_text(const cJSON *item, char num[32], const char **s,
			size_t *n)
{
	if (cJSON_IsString(item) && item->valuestring) {
		*s = item->valuestring;
	} else if (cJSON_IsNumber(item)) {
		/* Shortest form that reads back the same double. */
		snprintf(num, 32, "%.15g", item->valuedouble);
		if (strtod(num, NULL) != item->valuedouble)
			snprintf(num, 32, "%.17g", item->valuedouble);
		*s = num;
	} else if (cJSON_IsBool(item)) {
		*s = cJSON_IsTrue(item) ? "true" : "false";
	} else {
		return false;
	}
	*n = strlen(*s);
	return true;
}

/* Meta is one "key: value" per line: control characters would break it. */
static int add_oneline(struct sbuf *b, const char *s, size_t n)
{
	size_t start = 0;
	int rc = 0;

	if (n == 0)
		return 0;
	for (size_t i = 0; i < n && !rc; i++) {
		if ((unsigned char)s[i] >= 0x20 && s[i] != 0x7f)
			continue;
		rc = sbuf_add(b, s + start, i - start);
		if (!rc)
			rc = sbuf_addc(b, ' ');
		start = i + 1;
	}
	return rc ? rc : sbuf_add(b, s + start, n - start);
}

/* Depth is bounded by the scanner (STASH_ARTICLE_MAX_DEPTH). */
static int meta_walk(struct fill *f, const cJSON *item)
{
	const cJSON *child;
	size_t keep = f->path.len;
	const char *s;
	char num[32];
	size_t n;
	int rc = 0;

	if (cJSON_IsObject(item)) {
		cJSON_ArrayForEach(child, item)
		{
			if (f->path.len)
				rc = sbuf_addc(&f->path, '.');
			if (!rc && child->string)
				rc = sbuf_adds(&f->path, child->string);
			if (!rc)
				rc = meta_walk(f, child);
			f->path.len = keep;
			if (f->path.p)
				f->path.p[keep] = '\0';
			if (rc)
				return rc;
		}
		return 0;
	}
	if (cJSON_IsArray(item)) {
		cJSON_ArrayForEach(child, item)
		{
			rc = meta_walk(f, child);
			if (rc)
				return rc;
		}
		return 0;
	}
	if (!scalar_text(item, num, &s, &n))
		return 0; /* null */
	rc = add_oneline(&f->meta, f->path.p, f->path.len);
	if (!rc)
		rc = sbuf_adds(&f->meta, ": ");
	if (!rc)
		rc = add_oneline(&f->meta, s, n);
	if (!rc)
		rc = sbuf_addc(&f->meta, '\n');
	return rc;
}

static int meta_add(struct fill *f, const cJSON *item, const char *key)
{
	int rc;

	f->path.len = 0;
	rc = sbuf_adds(&f->path, key);
	return rc ? rc : meta_walk(f, item);
}

static int add_warning(struct fill *f, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int add_warning(struct fill *f, const char *fmt, ...)
{
	char msg[ERR_MAX];
	va_list ap;
	int rc = 0;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (f->warn.len)
		rc = sbuf_adds(&f->warn, "; ");
	return rc ? rc : sbuf_adds(&f->warn, msg);
}

/* A known field of the wrong type: keep its value searchable in meta. */
static int reject(struct fill *f, const cJSON *item, const char *key,
		  const char *why)
{
	int rc = add_warning(f, "%s %s", key, why);

	return rc ? rc : meta_add(f, item, key);
}

static int take_text(struct fill *f, const cJSON *item, const char *key,
		     char **dst)
{
	const char *s;
	char num[32];
	size_t n;

	if (!item || cJSON_IsNull(item))
		return 0;
	if (!scalar_text(item, num, &s, &n))
		return reject(f, item, key, "is not a string");
	trim(&s, &n);
	return n ? dup_str(s, n, dst) : 0;
}

static int take_content(struct fill *f, const cJSON *const *items)
{
	const char *s;
	char num[32];
	size_t n, outlen;
	int rc;

	for (int i = F_CONTENT; i <= F_HTML && !f->a->content; i++) {
		const cJSON *item = items[i];

		if (!item || cJSON_IsNull(item))
			continue;
		if (!scalar_text(item, num, &s, &n)) {
			rc = reject(f, item, field_keys[i], "is not a string");
			if (rc)
				return rc;
			continue;
		}
		if (is_blank(s, n))
			continue;
		if (i != F_HTML)
			return dup_str(s, n, &f->a->content);
		rc = stash_article_html_to_text(s, n, &f->a->content, &outlen);
		if (rc)
			return rc;
		if (outlen == 0) {
			free(f->a->content);
			f->a->content = NULL;
		}
	}
	return 0;
}

/* Add one trimmed, non-empty name to a ", "-joined list. */
static int list_add(struct sbuf *b, const char *s, size_t n)
{
	int rc = 0;

	trim(&s, &n);
	if (n == 0)
		return 0;
	if (b->len)
		rc = sbuf_adds(b, ", ");
	return rc ? rc : sbuf_add(b, s, n);
}

/*
 * One element of author or tags: a string; for authors also an object with
 * a "name" string (schema.org Person), for tags also a number.
 */
static bool element_text(const cJSON *item, enum field field, char num[32],
			 const char **s, size_t *n)
{
	if (field == F_AUTHOR && cJSON_IsObject(item))
		item = cJSON_GetObjectItemCaseSensitive(item, "name");
	if (cJSON_IsString(item) || (field == F_TAGS && cJSON_IsNumber(item)))
		return scalar_text(item, num, s, n);
	return false;
}

static int take_list(struct fill *f, const cJSON *item, enum field field,
		     char **dst)
{
	const char *key = field_keys[field];
	const char *what = field == F_AUTHOR ? "a name" : "a string";
	struct sbuf b = { 0 };
	const cJSON *el;
	const char *s;
	char num[32];
	size_t n, i = 0;
	int rc = 0;

	if (!item || cJSON_IsNull(item))
		return 0;
	if (cJSON_IsArray(item)) {
		cJSON_ArrayForEach(el, item)
		{
			if (element_text(el, field, num, &s, &n)) {
				rc = list_add(&b, s, n);
			} else if (!cJSON_IsNull(el)) {
				rc = add_warning(f, "%s[%zu] is not %s", key, i,
						 what);
				if (!rc)
					rc = meta_add(f, el, key);
			}
			if (rc)
				goto out;
			i++;
		}
	} else if (element_text(item, field, num, &s, &n)) {
		rc = list_add(&b, s, n);
	} else {
		rc = reject(f, item, key,
			    field == F_AUTHOR ? "is not a name or a list"
					      : "is not a list of strings");
	}
out:
	if (rc)
		sbuf_release(&b);
	else
		*dst = sbuf_take(&b);
	return rc;
}

static int take_date(struct fill *f, const cJSON *item)
{
	const char *key = field_keys[F_DATE];

	if (!item || cJSON_IsNull(item))
		return 0;
	if (!cJSON_IsString(item) || !item->valuestring)
		return reject(f, item, key, "is not a string");
	if (stash_article_parse_date(item->valuestring,
				     strlen(item->valuestring),
				     &f->a->published_at))
		return reject(f, item, key, "is not an ISO 8601 date");
	f->a->has_published_at = true;
	return 0;
}

static int fill_article(const cJSON *root, struct stash_article *a)
{
	const cJSON *items[F_COUNT] = { 0 };
	struct fill f = { .a = a };
	const cJSON *item;
	int rc = 0;

	/* Collect first: the content precedence does not depend on the
	 * order of the keys. */
	cJSON_ArrayForEach(item, root)
	{
		int i;

		for (i = 0; i < F_COUNT; i++)
			if (item->string &&
			    !strcmp(item->string, field_keys[i]))
				break;
		if (i < F_COUNT && !items[i])
			items[i] = item;
		else
			rc = meta_add(&f, item,
				      item->string ? item->string : "");
		if (rc)
			goto out;
	}
	rc = take_text(&f, items[F_TITLE], "title", &a->title);
	if (!rc)
		rc = take_text(&f, items[F_URL], "url", &a->url);
	if (!rc)
		rc = take_text(&f, items[F_LANG], "lang", &a->lang);
	if (!rc)
		rc = take_list(&f, items[F_AUTHOR], F_AUTHOR, &a->author);
	if (!rc)
		rc = take_list(&f, items[F_TAGS], F_TAGS, &a->tags);
	if (!rc)
		rc = take_date(&f, items[F_DATE]);
	if (!rc)
		rc = take_content(&f, items);
	if (rc)
		goto out;
	a->meta = sbuf_take(&f.meta);
	a->warning = sbuf_take(&f.warn);
out:
	sbuf_release(&f.meta);
	sbuf_release(&f.warn);
	sbuf_release(&f.path);
	return rc;
}

static const char *json_type(uint8_t c)
{
	switch (c) {
	case '[':
		return "an array";
	case '"':
		return "a string";
	case 't':
	case 'f':
		return "a boolean";
	case 'n':
		return "null";
	default:
		return "a number";
	}
}

/* Parse one document whose first line is line `line` of its file. */
static int parse_doc(const char *json, size_t len, uint64_t line,
		     struct stash_article *out, char *err, size_t errsize)
{
	size_t bom = skip_bom(json, len);
	struct scan s = {
		.p = (const uint8_t *)json + bom,
		.len = len - bom,
		.line = line,
		.err = err,
		.errsize = errsize,
	};
	cJSON *root;
	int rc;

	memset(out, 0, sizeof(*out));
	if (err && errsize)
		err[0] = '\0';
	if (len > STASH_ARTICLE_MAX) {
		set_err(err, errsize,
			"line %" PRIu64 ": article larger than %zu MiB", line,
			STASH_ARTICLE_MAX >> 20);
		return -EFBIG;
	}
	rc = scan_json(&s);
	if (rc)
		return rc;
	s.pos = 0;
	scan_space(&s);
	if (s.p[s.pos] != '{')
		return scan_fail(&s, s.pos, "not a JSON object (found %s)",
				 json_type(s.p[s.pos]));
	root = cJSON_ParseWithLengthOpts((const char *)s.p, s.len, NULL, 0);
	if (!root)
		return -ENOMEM; /* the scanner accepted it */
	rc = fill_article(root, out);
	cJSON_Delete(root);
	if (rc)
		stash_article_release(out);
	return rc;
}

int stash_article_parse(const char *json, size_t len, struct stash_article *out,
			char *err, size_t errsize)
{
	int rc = parse_doc(json, len, 1, out, err, errsize);

	out->length = len;
	return rc;
}

void stash_article_release(struct stash_article *a)
{
	if (!a)
		return;
	free(a->title);
	free(a->content);
	free(a->url);
	free(a->author);
	free(a->tags);
	free(a->lang);
	free(a->meta);
	free(a->warning);
	memset(a, 0, sizeof(*a));
}

int stash_article_each_line(const char *buf, size_t len,
			    stash_article_line_fn fn, void *arg)
{
	char err[ERR_MAX];
	uint64_t line = 0;
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t start = pos;
		size_t end = nl ? (size_t)(nl - buf) : len;
		struct stash_article a;
		int rc;

		pos = nl ? end + 1 : len;
		line++;
		if (line == 1)
			start += skip_bom(buf, end);
		if (end > start && buf[end - 1] == '\r')
			end--;
		if (is_blank(buf + start, end - start))
			continue;
		rc = parse_doc(buf + start, end - start, line, &a, err,
			       sizeof(err));
		if (rc == -ENOMEM)
			return rc;
		a.line = line;
		a.offset = start;
		a.length = end - start;
		rc = fn(arg, rc, &a, rc ? err : NULL);
		stash_article_release(&a);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- ISO 8601 dates ---------------------------------------------------*/

/* Exactly n ASCII digits at s[*i], as a number; advances *i. */
static bool read_digits(const char *s, size_t end, size_t *i, size_t n, int *v)
{
	if (end - *i < n)
		return false;
	*v = 0;
	for (size_t k = 0; k < n; k++) {
		if (!is_digit((unsigned char)s[*i + k]))
			return false;
		*v = *v * 10 + (s[*i + k] - '0');
	}
	*i += n;
	return true;
}

static bool read_char(const char *s, size_t end, size_t *i, const char *set)
{
	if (*i >= end || s[*i] == '\0' || !strchr(set, s[*i]))
		return false;
	(*i)++;
	return true;
}

static int days_in_month(int y, int m)
{
	static const int days[] = { 31, 28, 31, 30, 31, 30,
				    31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/* Days since 1970-01-01 in the proleptic Gregorian calendar (after Howard
 * Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* hh:mm[:ss[.fraction]] as seconds into the day and nanoseconds. */
static bool read_time(const char *s, size_t end, size_t *i, int *secs,
		      int64_t *frac)
{
	int h, mi, sec = 0, digits = 0;

	*frac = 0;
	if (!read_digits(s, end, i, 2, &h) || !read_char(s, end, i, ":") ||
	    !read_digits(s, end, i, 2, &mi))
		return false;
	if (read_char(s, end, i, ":")) {
		if (!read_digits(s, end, i, 2, &sec))
			return false;
		if (read_char(s, end, i, ".,")) {
			for (; *i < end && is_digit((unsigned char)s[*i]);
			     (*i)++)
				if (digits++ < 9)
					*frac = *frac * 10 + (s[*i] - '0');
			if (digits == 0)
				return false;
			for (; digits < 9; digits++)
				*frac *= 10;
		}
	}
	if (h > 23 || mi > 59 || sec > 60) /* 60: a leap second */
		return false;
	*secs = h * 3600 + mi * 60 + sec;
	return true;
}

/* Z, +hh, +hhmm, +hh:mm (or -) or nothing, as seconds east of UTC. */
static bool read_offset(const char *s, size_t end, size_t *i, int *offset)
{
	int sign, oh, om = 0;

	*offset = 0;
	if (*i >= end || read_char(s, end, i, "Zz"))
		return true;
	if (s[*i] != '+' && s[*i] != '-')
		return false;
	sign = s[(*i)++] == '-' ? -1 : 1;
	if (!read_digits(s, end, i, 2, &oh))
		return false;
	if (*i < end) {
		(void)read_char(s, end, i, ":");
		if (!read_digits(s, end, i, 2, &om))
			return false;
	}
	if (oh > 23 || om > 59)
		return false;
	*offset = sign * (oh * 3600 + om * 60);
	return true;
}

int stash_article_parse_date(const char *s, size_t len, int64_t *ns)
{
	int y, mo, d, day_secs = 0, offset = 0;
	int64_t frac = 0, secs, total;
	size_t i = 0, end = len;

	trim(&s, &end);
	if (!read_digits(s, end, &i, 4, &y) || !read_char(s, end, &i, "-") ||
	    !read_digits(s, end, &i, 2, &mo) || !read_char(s, end, &i, "-") ||
	    !read_digits(s, end, &i, 2, &d))
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
		return -EINVAL;
	if (i < end && (!read_char(s, end, &i, "Tt ") ||
			!read_time(s, end, &i, &day_secs, &frac) ||
			!read_offset(s, end, &i, &offset)))
		return -EINVAL;
	if (i != end)
		return -EINVAL;
	/* Years 0000-9999 keep this far from int64 limits in seconds; only
	 * the step to nanoseconds can overflow. Before the epoch, borrow a
	 * second for the fraction so the earliest representable instant
	 * (INT64_MIN ns) does not overflow on the way. */
	secs = days_from_civil(y, mo, d) * 86400 + day_secs - offset;
	if (secs < 0 && frac > 0) {
		secs++;
		frac -= 1000000000;
	}
	if (__builtin_mul_overflow(secs, (int64_t)1000000000, &total) ||
	    __builtin_add_overflow(total, frac, &total))
		return -EINVAL;
	*ns = total;
	return 0;
}

/* ---- HTML to text -----------------------------------------------------*/

/* Elements that start a new line of text, before and after. */
static const char *const html_blocks[] = {
	"address",  "article",	  "aside",   "blockquote", "body",    "br",
	"caption",  "dd",	  "details", "div",	   "dl",      "dt",
	"fieldset", "figcaption", "figure",  "footer",	   "form",    "h1",
	"h2",	    "h3",	  "h4",	     "h5",	   "h6",      "head",
	"header",   "hr",	  "html",    "li",	   "main",    "nav",
	"ol",	    "option",	  "p",	     "pre",	   "section", "summary",
	"table",    "td",	  "th",	     "title",	   "tr",      "ul",
};

static const struct {
	const char *name;
	uint32_t cp;
} html_entities[] = {
	{ "amp", '&' },	      { "lt", '<' },	   { "gt", '>' },
	{ "quot", '"' },      { "apos", '\'' },	   { "nbsp", ' ' },
	{ "copy", 0xa9 },     { "reg", 0xae },	   { "trade", 0x2122 },
	{ "hellip", 0x2026 }, { "mdash", 0x2014 }, { "ndash", 0x2013 },
	{ "lsquo", 0x2018 },  { "rsquo", 0x2019 }, { "ldquo", 0x201c },
	{ "rdquo", 0x201d },  { "laquo", 0xab },   { "raquo", 0xbb },
	{ "bull", 0x2022 },   { "middot", 0xb7 },  { "euro", 0x20ac },
	{ "pound", 0xa3 },    { "yen", 0xa5 },	   { "cent", 0xa2 },
	{ "sect", 0xa7 },     { "deg", 0xb0 },	   { "plusmn", 0xb1 },
	{ "times", 0xd7 },    { "divide", 0xf7 },  { "shy", 0xad },
	{ "zwnj", 0x200c },   { "zwj", 0x200d },   { "lrm", 0x200e },
	{ "rlm", 0x200f },
};

struct html {
	const char *p;	 /* the HTML */
	size_t len;	 /* its length */
	size_t pos;	 /* next byte to look at */
	struct sbuf out; /* the text so far */
	int gap;	 /* whitespace owed: 0 none, 1 a space, 2 a newline */
};

static int html_put(struct html *h, const char *s, size_t n)
{
	int rc = 0;

	/* Whitespace is written lazily so runs collapse and ends trim. */
	if (h->gap && h->out.len)
		rc = sbuf_addc(&h->out, h->gap == 2 ? '\n' : ' ');
	h->gap = 0;
	return rc ? rc : sbuf_add(&h->out, s, n);
}

static void html_gap(struct html *h, int gap)
{
	h->gap = STASH_MAX(h->gap, gap);
}

static int html_put_cp(struct html *h, uint32_t cp)
{
	char s[4];

	if (cp < 0x80 && is_space((int)cp)) {
		html_gap(h, 1);
		return 0;
	}
	return html_put(h, s, utf8_encode(cp, s));
}

/* s[0..n) starts with the ASCII letters of word, case-insensitively. */
static bool starts_with_ci(const char *s, size_t n, const char *word)
{
	size_t k = strlen(word);

	if (n < k)
		return false;
	for (size_t i = 0; i < k; i++)
		if (ascii_lower((unsigned char)s[i]) != word[i])
			return false;
	return true;
}

/* At '&': a known entity is decoded, anything else is a literal '&'. */
static int html_entity(struct html *h)
{
	const char *s = h->p + h->pos;
	size_t n = h->len - h->pos, i = 1;
	uint32_t cp = 0;

	if (n > 2 && s[1] == '#') {
		bool hex = s[2] == 'x' || s[2] == 'X';
		size_t digits = 0;

		for (i = hex ? 3 : 2; i < n; i++, digits++) {
			int c = ascii_lower((unsigned char)s[i]);
			uint32_t v;

			if (is_digit(c))
				v = (uint32_t)(c - '0');
			else if (hex && c >= 'a' && c <= 'f')
				v = (uint32_t)(c - 'a' + 10);
			else
				break;
			/* Saturate: anything this large is invalid anyway. */
			if (cp <= 0x10ffff)
				cp = cp * (hex ? 16 : 10) + v;
		}
		if (digits == 0)
			goto literal;
		if (i < n && s[i] == ';')
			i++;
		h->pos += i;
		return html_put_cp(h, cp);
	}
	while (i < n && i <= 8 && (is_alpha(s[i]) || is_digit(s[i])))
		i++;
	if (i == 1 || i >= n || s[i] != ';')
		goto literal;
	for (size_t k = 0; k < STASH_ARRAY_SIZE(html_entities); k++) {
		const char *name = html_entities[k].name;

		if (strlen(name) == i - 1 && !memcmp(s + 1, name, i - 1)) {
			h->pos += i + 1;
			return html_put_cp(h, html_entities[k].cp);
		}
	}
literal:
	h->pos++;
	return html_put(h, "&", 1);
}

/* Skip to just after the first occurrence of what, or to the end. */
static void html_skip_past(struct html *h, const char *what)
{
	size_t k = strlen(what);

	while (h->pos < h->len) {
		if (h->len - h->pos >= k && !memcmp(h->p + h->pos, what, k)) {
			h->pos += k;
			return;
		}
		h->pos++;
	}
}

/* Skip a tag's attributes up to and past its '>'; quoted values may hold
 * '>'. An unclosed tag runs to the end. */
static void html_skip_attrs(struct html *h)
{
	while (h->pos < h->len) {
		char c = h->p[h->pos++];

		if (c == '>')
			return;
		if (c != '=')
			continue;
		while (h->pos < h->len && is_space((unsigned char)h->p[h->pos]))
			h->pos++;
		if (h->pos < h->len &&
		    (h->p[h->pos] == '"' || h->p[h->pos] == '\'')) {
			const char *q = memchr(h->p + h->pos + 1, h->p[h->pos],
					       h->len - h->pos - 1);

			h->pos = q ? (size_t)(q - h->p) + 1 : h->len;
		}
	}
}

/* Drop everything up to the end tag of a raw-text element (script, style),
 * or to the end when it is missing. */
static void html_skip_raw(struct html *h, const char *name)
{
	size_t k = strlen(name);

	for (; h->pos < h->len; h->pos++) {
		const char *s = h->p + h->pos;
		size_t n = h->len - h->pos;

		if (n >= k + 2 && s[0] == '<' && s[1] == '/' &&
		    starts_with_ci(s + 2, n - 2, name) &&
		    (n == k + 2 || !is_alpha(s[k + 2]))) {
			h->pos += k + 2;
			html_skip_attrs(h);
			return;
		}
	}
}

static bool html_is_block(const char *name)
{
	for (size_t i = 0; i < STASH_ARRAY_SIZE(html_blocks); i++)
		if (!strcmp(name, html_blocks[i]))
			return true;
	return false;
}

/* At '<'. Returns false when it does not start markup (it is text). */
static bool html_markup(struct html *h)
{
	const char *s = h->p + h->pos;
	size_t n = h->len - h->pos, i;
	bool end_tag;
	char name[16] = { 0 };
	size_t k = 0;

	if (n >= 4 && !memcmp(s, "<!--", 4)) {
		h->pos += 2; /* so "<!-->" closes itself */
		html_skip_past(h, "-->");
		return true;
	}
	if (n >= 2 && (s[1] == '!' || s[1] == '?')) {
		html_skip_past(h, ">");
		return true;
	}
	end_tag = n >= 2 && s[1] == '/';
	i = end_tag ? 2 : 1;
	if (end_tag && n > 2 && !is_alpha(s[2])) {
		html_skip_past(h, ">"); /* "</ p>", "</>": bogus, dropped */
		return true;
	}
	if (i >= n || !is_alpha(s[i]))
		return false;
	for (; i < n && !is_space((unsigned char)s[i]) && s[i] != '/' &&
	       s[i] != '>';
	     i++)
		if (k < sizeof(name) - 1)
			name[k++] = (char)ascii_lower((unsigned char)s[i]);
	name[k] = '\0';
	h->pos += i;
	html_skip_attrs(h);
	if (!end_tag && (!strcmp(name, "script") || !strcmp(name, "style")))
		html_skip_raw(h, name);
	if (html_is_block(name))
		html_gap(h, 2);
	return true;
}

/* Bytes that end a run of plain text. */
static bool html_special(unsigned char c)
{
	return c == '<' || c == '&' || c == '\0' || c == 0xc2 || is_space(c);
}

int stash_article_html_to_text(const char *html, size_t len, char **out,
			       size_t *outlen)
{
	struct html h = { .p = html, .len = len };
	int rc = 0;

	while (h.pos < h.len && !rc) {
		size_t start = h.pos;
		unsigned char c = (unsigned char)h.p[h.pos];

		if (c == '<' && html_markup(&h))
			continue;
		if (c == '&') {
			rc = html_entity(&h);
			continue;
		}
		if (c == '\0') { /* would cut the C string short */
			h.pos++;
			continue;
		}
		if (is_space(c)) {
			html_gap(&h, 1);
			h.pos++;
			continue;
		}
		if (c == 0xc2 && h.pos + 1 < h.len &&
		    (unsigned char)h.p[h.pos + 1] == 0xa0) { /* U+00A0 */
			html_gap(&h, 1);
			h.pos += 2;
			continue;
		}
		/* A run of plain text, up to the next byte that means more. */
		h.pos++;
		while (h.pos < h.len &&
		       !html_special((unsigned char)h.p[h.pos]))
			h.pos++;
		rc = html_put(&h, h.p + start, h.pos - start);
	}
	if (!rc && !h.out.p) { /* no text at all: still a string */
		h.out.p = calloc(1, 1);
		if (!h.out.p)
			rc = -ENOMEM;
	}
	if (rc) {
		sbuf_release(&h.out);
		return rc;
	}
	*outlen = h.out.len;
	*out = h.out.p;
	return 0;
}

/* ---- text or binary, file kinds ---------------------------------------*/

bool stash_article_is_text(const uint8_t *buf, size_t len)
{
	size_t pos = 0, controls = 0;
	uint32_t cp;

	while (pos < len) {
		size_t n =
			stash_textnorm_utf8_decode(buf + pos, len - pos, &cp);

		if (n == 0 || cp == 0)
			return false;
		if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r' &&
		     cp != '\f') ||
		    (cp >= 0x7f && cp < 0xa0))
			controls++;
		pos += n;
	}
	return controls <= len / 32;
}

enum stash_file_kind stash_article_file_kind(const char *name)
{
	static const struct {
		const char *ext;
		enum stash_file_kind kind;
	} kinds[] = {
		{ "json", STASH_FILE_ARTICLE }, { "jsonl", STASH_FILE_JSONL },
		{ "ndjson", STASH_FILE_JSONL }, { "html", STASH_FILE_HTML },
		{ "htm", STASH_FILE_HTML },	{ "xhtml", STASH_FILE_HTML },
	};
	const char *base = strrchr(name, '/');
	const char *dot;

	base = base ? base + 1 : name;
	dot = strrchr(base, '.');
	if (!dot || dot == base)
		return STASH_FILE_OTHER;
	for (size_t i = 0; i < STASH_ARRAY_SIZE(kinds); i++)
		if (ascii_caseeq(dot + 1, kinds[i].ext))
			return kinds[i].kind;
	return STASH_FILE_OTHER;
}
