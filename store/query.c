/*
 * query.c - parse a `.search/` directory name into an FTS5 MATCH
 * expression and the filters that are not full-text (see query.h for the
 * language).
 *
 * Three steps: percent-decode the name (keeping, for every decoded byte,
 * where it was typed, so errors point at what the user wrote); read it
 * into a flat list of items (terms already normalized and quoted,
 * operators, parentheses, column prefixes, and placeholders where a filter
 * or an empty word stood); then drop the placeholders with the AND next to
 * them, check what FTS5 would report less clearly, and join the rest.
 *
 * It never passes user text to FTS5 unquoted: every word and phrase is
 * normalized by textnorm and written as an FTS5 string, so only the
 * operators it recognizes become syntax. FTS5 checks the grammar that
 * remains (stash_query_fts5_check).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query.h"
#include "sqlvfs.h"
#include "textnorm.h"
#include "util.h"

#define QMAX 255 /* longest name, bytes (STASH_NAME_MAX) */

enum item_kind {
	IT_TERM,   /* a word, phrase or NEAR group, as FTS5 text */
	IT_AND,	   /* AND */
	IT_OR,	   /* OR */
	IT_NOT,	   /* NOT */
	IT_LP,	   /* ( */
	IT_RP,	   /* ) */
	IT_COL,	   /* "author :" - a column filter on what follows */
	IT_FILTER, /* where a filter (area:, after:, ...) stood */
	IT_EMPTY,  /* where a word with nothing searchable stood */
};

struct item {
	enum item_kind kind; /* what it is */
	char *text;	     /* IT_TERM, IT_COL: FTS5 text, malloc'd */
	size_t pos;	     /* offset in the decoded query */
	int depth;	     /* parentheses around it */
	const char *field;   /* IT_FILTER: field name, for messages */
	int prefixable;	     /* IT_TERM: a word or phrase without '*' yet */
	int gone;	     /* dropped by the clean-up */
};

/* The parser's state. */
struct qp {
	char s[QMAX + 1];	/* the decoded query, NUL-terminated */
	size_t len;		/* bytes in s */
	uint16_t map[QMAX + 1]; /* s offset -> offset in the name typed */
	const char *typed;	/* the name as typed */
	struct item *items;	/* what was read, in order */
	size_t n_items, cap;	/* items used, allocated */
	int depth;		/* open parentheses */
	size_t open[QMAX + 1];	/* offset of each open '(' */
	struct stash_query *q;	/* what the filters fill in */
	int have_limit;		/* limit: seen */
	char *err;		/* caller's message buffer */
	size_t errlen;		/* its size */
};

enum field_kind { F_COLUMN, F_AREA, F_NAME, F_AFTER, F_BEFORE, F_LIMIT };

static const struct field {
	const char *name;     /* as typed, any case */
	enum field_kind kind; /* what it does */
	const char *column;   /* F_COLUMN: the FTS5 column */
} fields[] = {
	{ "author", F_COLUMN, "author" },   { "tag", F_COLUMN, "tags" },
	{ "tags", F_COLUMN, "tags" },	    { "url", F_COLUMN, "url" },
	{ "lang", F_COLUMN, "lang" },	    { "title", F_COLUMN, "title" },
	{ "content", F_COLUMN, "content" }, { "area", F_AREA, NULL },
	{ "name", F_NAME, NULL },	    { "after", F_AFTER, NULL },
	{ "before", F_BEFORE, NULL },	    { "limit", F_LIMIT, NULL },
};

/* A growing string for FTS5 text. */
struct sbuf {
	char *p;
	size_t len, cap;
	int err; /* -ENOMEM once an append failed */
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->err)
		return;
	if (n > SIZE_MAX / 4 - b->len) {
		b->err = -ENOMEM;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2; /* cannot overflow: checked above */
		p = realloc(b->p, cap);
		if (!p) {
			b->err = -ENOMEM;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

/* Position of decoded offset off as the user counts: characters of the
 * name as typed, from 1. */
static size_t cpos(const struct qp *p, size_t off)
{
	size_t t = p->map[off > p->len ? p->len : off], n = 1;

	for (size_t i = 0; i < t; i++)
		if (((unsigned char)p->typed[i] & 0xC0) != 0x80)
			n++;
	return n;
}

static int qerr(struct qp *p, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Write the reason into the caller's buffer; returns rc. */
static int qerr(struct qp *p, int rc, const char *fmt, ...)
{
	va_list ap;

	if (p->err && p->errlen) {
		va_start(ap, fmt);
		vsnprintf(p->err, p->errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

static int push(struct qp *p, enum item_kind kind, char *text, size_t pos)
{
	struct item *it;

	if (p->n_items == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;

		it = realloc(p->items, cap * sizeof(*it));
		if (!it) {
			free(text);
			return -ENOMEM;
		}
		p->items = it;
		p->cap = cap;
	}
	it = &p->items[p->n_items++];
	memset(it, 0, sizeof(*it));
	it->kind = kind;
	it->text = text;
	it->pos = pos;
	it->depth = p->depth;
	return 0;
}

/* Length of the whitespace at s[i] (ASCII controls count, and U+3000
 * which Japanese input methods type), 0 if none. */
static size_t ws_at(const struct qp *p, size_t i)
{
	unsigned char c;

	if (i >= p->len)
		return 0;
	c = (unsigned char)p->s[i];
	if (c == ' ' || c < 0x20 || c == 0x7F)
		return 1;
	if (c == 0xE3 && i + 2 < p->len && (unsigned char)p->s[i + 1] == 0x80 &&
	    (unsigned char)p->s[i + 2] == 0x80)
		return 3;
	return 0;
}

static size_t skip_ws(const struct qp *p, size_t i)
{
	size_t n;

	while ((n = ws_at(p, i)) != 0)
		i += n;
	return i;
}

/* Percent-decode p->typed (at most QMAX bytes) into p->s. */
static int decode(struct qp *p, size_t n)
{
	size_t i = 0, bad;

	p->len = 0;
	while (i < n) {
		char c = p->typed[i];

		p->map[p->len] = (uint16_t)i;
		if (c == '/')
			return qerr(p, -EINVAL, "'/' at %zu: write it as %%2F",
				    cpos(p, p->len));
		if (c == '%') {
			int h = i + 1 < n ? stash_hex_digit(p->typed[i + 1])
					  : -1;
			int l = h >= 0 && i + 2 < n
					? stash_hex_digit(p->typed[i + 2])
					: -1;

			if (h < 0 || l < 0)
				return qerr(p, -EINVAL,
					    "bad percent escape at %zu",
					    cpos(p, p->len));
			c = (char)(h << 4 | l);
			if (!c)
				return qerr(p, -EINVAL,
					    "%%00 is not allowed at %zu",
					    cpos(p, p->len));
			i += 3;
		} else {
			i++;
		}
		p->s[p->len++] = c;
	}
	p->map[p->len] = (uint16_t)n;
	p->s[p->len] = '\0';
	bad = stash_textnorm_utf8_check(p->s, p->len);
	if (bad < p->len)
		return qerr(p, -EINVAL, "invalid UTF-8 at %zu", cpos(p, bad));
	return 0;
}

/*
 * Normalize raw text (a word or the inside of a phrase) and write it as an
 * FTS5 string into *out: [^]"text"[*], quotes doubled. *out is NULL when
 * the text holds nothing the tokenizer would index.
 */
static int make_term(const char *raw, size_t n, int prefix, int initial,
		     char **out)
{
	struct sbuf b = { 0 };
	char *norm;
	size_t len, a = 0;
	int rc;

	*out = NULL;
	rc = stash_textnorm(raw, n, STASH_TEXTNORM_QUERY, &norm, &len);
	if (rc)
		return rc;
	if (!stash_textnorm_has_token(norm, len))
		goto out;
	/* A one-character CJK word is found as the prefix of a bigram. */
	if (stash_textnorm_lone_cjk_tail(norm, len))
		prefix = 1;
	while (a < len && norm[a] == ' ')
		a++;
	while (len > a && norm[len - 1] == ' ')
		len--;
	if (initial)
		sb_put(&b, "^", 1);
	sb_put(&b, "\"", 1);
	for (size_t i = a; i < len; i++)
		sb_put(&b, norm[i] == '"' ? "\"\"" : &norm[i],
		       norm[i] == '"' ? 2 : 1);
	sb_put(&b, "\"", 1);
	if (prefix)
		sb_put(&b, "*", 1);
	if (b.err) {
		free(b.p);
		rc = b.err;
		goto out;
	}
	*out = b.p;
out:
	free(norm);
	return rc;
}

/*
 * Read the quoted string whose '"' is at s[*i] into raw (its inside, ""
 * made one '"'), leaving *i after the closing quote.
 */
static int read_quoted(struct qp *p, size_t *i, char *raw, size_t *n)
{
	size_t k = *i + 1;

	*n = 0;
	for (;;) {
		if (k >= p->len)
			return qerr(p, -EINVAL, "unterminated quote at %zu",
				    cpos(p, *i));
		if (p->s[k] == '"') {
			if (k + 1 < p->len && p->s[k + 1] == '"') {
				raw[(*n)++] = '"';
				k += 2;
				continue;
			}
			break;
		}
		raw[(*n)++] = p->s[k++];
	}
	*i = k + 1;
	return 0;
}

/* Add a term item from raw text; an item with nothing searchable becomes
 * IT_EMPTY. */
static int push_term(struct qp *p, const char *raw, size_t n, int prefix,
		     int initial, size_t pos)
{
	char *t;
	int rc = make_term(raw, n, prefix, initial, &t);

	if (rc)
		return rc;
	rc = push(p, t ? IT_TERM : IT_EMPTY, t, pos);
	if (!rc && t)
		p->items[p->n_items - 1].prefixable = !prefix;
	return rc;
}

/* A quoted phrase at s[*i], with a '*' right after it. */
static int phrase(struct qp *p, size_t *i, int initial, size_t pos)
{
	char raw[QMAX + 1];
	size_t n;
	int rc = read_quoted(p, i, raw, &n), prefix = 0;

	if (rc)
		return rc;
	if (*i < p->len && p->s[*i] == '*') {
		prefix = 1;
		(*i)++;
	}
	return push_term(p, raw, n, prefix, initial, pos);
}

static int is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* End of a bare word at i: up to whitespace, a quote or a parenthesis
 * (and a comma inside NEAR). */
static size_t word_end(const struct qp *p, size_t i, int in_near)
{
	while (i < p->len && !ws_at(p, i) && p->s[i] != '"' && p->s[i] != '(' &&
	       p->s[i] != ')' && !(in_near && p->s[i] == ','))
		i++;
	return i;
}

/* If s[i..] is "letters:", the length of the letters, else 0. */
static size_t field_len(const struct qp *p, size_t i)
{
	size_t k = i;

	while (k < p->len && is_alpha(p->s[k]))
		k++;
	return k > i && k < p->len && p->s[k] == ':' ? k - i : 0;
}

/* A bare word s[a..e): leading '^' and trailing '*' are operators. */
static int bare_word(struct qp *p, size_t a, size_t e)
{
	int initial = 0, prefix = 0;

	if (p->s[a] == '^') {
		initial = 1;
		a++;
	}
	while (e > a && p->s[e - 1] == '*') {
		prefix = 1;
		e--;
	}
	if (a == e)
		return qerr(p, -EINVAL, "'%c' at %zu must %s a word or phrase",
			    initial ? '^' : '*', cpos(p, a - (size_t)initial),
			    initial ? "precede" : "follow");
	return push_term(p, p->s + a, e - a, prefix, initial, a);
}

/* NEAR(...) with its '(' at s[*i]: phrases, then ", N". */
static int near(struct qp *p, size_t *i, size_t pos)
{
	struct sbuf b = { 0 };
	size_t k = *i + 1;
	int rc = 0, first = 1;

	sb_str(&b, "NEAR(");
	for (;;) {
		char *t = NULL;

		k = skip_ws(p, k);
		if (k >= p->len) {
			rc = qerr(p, -EINVAL, "unbalanced parenthesis at %zu",
				  cpos(p, *i));
			goto out;
		}
		if (p->s[k] == ')') {
			k++;
			break;
		}
		if (p->s[k] == ',') {
			size_t d = k = skip_ws(p, k + 1);

			while (k < p->len && k - d < 7 && p->s[k] >= '0' &&
			       p->s[k] <= '9')
				k++;
			if (k == d || k - d > 6) {
				rc = qerr(
					p, -EINVAL,
					"NEAR() wants a distance of 0 to 999999 after ',' at %zu",
					cpos(p, d));
				goto out;
			}
			sb_str(&b, ", ");
			sb_put(&b, p->s + d, k - d);
			k = skip_ws(p, k);
			if (k >= p->len || p->s[k] != ')') {
				rc = qerr(
					p, -EINVAL,
					"NEAR() wants ')' after its distance at %zu",
					cpos(p, k));
				goto out;
			}
			k++;
			break;
		}
		if (p->s[k] == '(') {
			rc = qerr(
				p, -EINVAL,
				"parentheses cannot be used inside NEAR() at %zu",
				cpos(p, k));
			goto out;
		}
		if (field_len(p, k)) {
			rc = qerr(p, -EINVAL,
				  "fields cannot be used inside NEAR() at %zu",
				  cpos(p, k));
			goto out;
		}
		/* Read one word or phrase as an item, then take it back. */
		if (p->s[k] == '"' ||
		    (p->s[k] == '^' && k + 1 < p->len && p->s[k + 1] == '"')) {
			int initial = p->s[k] == '^';

			k += (size_t)initial;
			rc = phrase(p, &k, initial, k);
		} else {
			size_t e = word_end(p, k, 1);

			rc = bare_word(p, k, e);
			k = e;
		}
		if (rc)
			goto out;
		t = p->items[--p->n_items].text;
		if (t) {
			if (!first)
				sb_put(&b, " ", 1);
			sb_str(&b, t);
			free(t);
			first = 0;
		}
	}
	sb_put(&b, ")", 1);
	if (b.err) {
		rc = b.err;
		goto out;
	}
	*i = k;
	rc = push(p, IT_TERM, b.p, pos);
	b.p = NULL;
out:
	free(b.p);
	return rc;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Read exactly w digits at v[*i] into *out. */
static int digits(const char *v, size_t n, size_t *i, int w, int *out)
{
	int x = 0;

	if (*i + (size_t)w > n)
		return -1;
	for (int k = 0; k < w; k++) {
		char c = v[*i + (size_t)k];

		if (c < '0' || c > '9')
			return -1;
		x = x * 10 + (c - '0');
	}
	*i += (size_t)w;
	*out = x;
	return 0;
}

/* YYYY-MM-DD[THH:MM[:SS[.frac]][Z|+HH:MM|-HH:MM|+HHMM]] -> ns since the
 * epoch; -1 when it is not one or does not fit in int64 ns. */
static int parse_date(const char *v, size_t n, int64_t *ns)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30,
				     31, 31, 30, 31, 30, 31 };
	int y, mo, d, h = 0, mi = 0, s = 0, oh = 0, om = 0, sign = 0, dim;
	int64_t frac = 0, secs;
	size_t i = 0;

	if (digits(v, n, &i, 4, &y) || i >= n || v[i++] != '-' ||
	    digits(v, n, &i, 2, &mo) || i >= n || v[i++] != '-' ||
	    digits(v, n, &i, 2, &d))
		return -1;
	if (mo < 1 || mo > 12)
		return -1;
	dim = mdays[mo - 1] +
	      (mo == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0));
	if (d < 1 || d > dim)
		return -1;
	if (i < n && (v[i] == 'T' || v[i] == 't')) {
		i++;
		if (digits(v, n, &i, 2, &h) || i >= n || v[i++] != ':' ||
		    digits(v, n, &i, 2, &mi))
			return -1;
		if (i < n && v[i] == ':') {
			i++;
			if (digits(v, n, &i, 2, &s))
				return -1;
			if (i < n && (v[i] == '.' || v[i] == ',')) {
				int64_t scale = 100000000;
				size_t f = ++i;

				while (i < n && v[i] >= '0' && v[i] <= '9') {
					frac += (v[i] - '0') * scale;
					scale /= 10;
					i++;
				}
				if (i == f || i - f > 9)
					return -1;
			}
		}
		if (h > 23 || mi > 59 || s > 59)
			return -1;
		if (i < n && (v[i] == 'Z' || v[i] == 'z')) {
			i++;
		} else if (i < n && (v[i] == '+' || v[i] == '-')) {
			sign = v[i++] == '-' ? -1 : 1;
			if (digits(v, n, &i, 2, &oh))
				return -1;
			if (i < n && v[i] == ':')
				i++;
			if (i < n && digits(v, n, &i, 2, &om))
				return -1;
			if (oh > 23 || om > 59)
				return -1;
		}
	}
	if (i != n)
		return -1;
	secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s -
	       sign * (oh * 3600 + om * 60);
	if (secs <= INT64_MIN / 1000000000 || secs >= INT64_MAX / 1000000000)
		return -1;
	*ns = secs * 1000000000 + frac;
	return 0;
}

/* Append s to a string array (taking it). */
static int add_str(char ***arr, size_t *n, char *s)
{
	char **a = realloc(*arr, (*n + 1) * sizeof(**arr));

	if (!a) {
		free(s);
		return -ENOMEM;
	}
	a[(*n)++] = s;
	*arr = a;
	return 0;
}

/* The value of a filter, raw in v[0..n), typed at pos. */
static int filter(struct qp *p, const struct field *f, const char *v, size_t n,
		  size_t pos)
{
	struct stash_query *q = p->q;
	char *copy;
	int64_t t;

	if (!n)
		return qerr(p, -EINVAL, "%s: needs a value at %zu", f->name,
			    cpos(p, pos));
	switch (f->kind) {
	case F_AREA:
		if (memchr(v, '/', n) || (n == 1 && v[0] == '.') ||
		    (n == 2 && v[0] == '.' && v[1] == '.'))
			return qerr(
				p, -EINVAL,
				"area: wants a top-level folder name at %zu",
				cpos(p, pos));
		copy = strndup(v, n);
		return copy ? add_str(&q->areas, &q->n_areas, copy) : -ENOMEM;
	case F_NAME: {
		char *pat;
		int rc;

		if (memchr(v, '/', n))
			return qerr(
				p, -EINVAL,
				"name: matches a file name, which has no '/' (at %zu)",
				cpos(p, pos));
		copy = strndup(v, n);
		if (!copy)
			return -ENOMEM;
		rc = stash_query_fold_name(copy, &pat);
		free(copy);
		return rc ? rc : add_str(&q->names, &q->n_names, pat);
	}
	case F_AFTER:
	case F_BEFORE:
		if (parse_date(v, n, &t))
			return qerr(p, -EINVAL, "bad date '%.*s' in %s:",
				    (int)STASH_MIN(n, 40), v, f->name);
		if (f->kind == F_AFTER && t > q->after_ns)
			q->after_ns = t;
		if (f->kind == F_BEFORE && t < q->before_ns)
			q->before_ns = t;
		return 0;
	case F_LIMIT: {
		uint32_t x = 0;

		if (p->have_limit)
			return qerr(p, -EINVAL, "limit: given twice at %zu",
				    cpos(p, pos));
		for (size_t i = 0; i < n; i++) {
			if (v[i] < '0' || v[i] > '9' ||
			    x > STASH_QUERY_LIMIT_MAX) {
				x = 0;
				break;
			}
			x = x * 10 + (uint32_t)(v[i] - '0');
		}
		if (x < 1 || x > STASH_QUERY_LIMIT_MAX)
			return qerr(p, -EINVAL,
				    "limit: wants a number between 1 and %d",
				    STASH_QUERY_LIMIT_MAX);
		q->limit = x;
		p->have_limit = 1;
		return 0;
	}
	case F_COLUMN:
		break;
	}
	return -EINVAL;
}

/* A field "name:" whose name is at s[*i], nlen letters long. */
static int field(struct qp *p, size_t *i, size_t nlen)
{
	const struct field *f = NULL;
	size_t at = *i, v = at + nlen + 1, e;
	char raw[QMAX + 1];
	int rc;

	for (size_t k = 0; k < STASH_ARRAY_SIZE(fields); k++)
		if (strlen(fields[k].name) == nlen &&
		    !strncasecmp(fields[k].name, p->s + at, nlen))
			f = &fields[k];
	if (!f)
		return qerr(p, -EINVAL, "unknown field '%.*s:' at %zu",
			    (int)STASH_MIN(nlen, 40), p->s + at, cpos(p, at));
	if (v >= p->len || ws_at(p, v) || p->s[v] == ')')
		return qerr(p, -EINVAL, "%s: needs a value at %zu", f->name,
			    cpos(p, at));
	if (f->kind != F_COLUMN) {
		size_t n;

		if (p->depth)
			return qerr(
				p, -EINVAL,
				"%s: cannot be inside OR/NOT/parentheses (at %zu)",
				f->name, cpos(p, at));
		if (p->s[v] == '"') {
			e = v;
			rc = read_quoted(p, &e, raw, &n);
			if (rc)
				return rc;
		} else {
			e = v;
			while (e < p->len && !ws_at(p, e))
				e++;
			n = e - v;
			memcpy(raw, p->s + v, n);
		}
		rc = filter(p, f, raw, n, at);
		if (!rc)
			rc = push(p, IT_FILTER, NULL, at);
		if (!rc)
			p->items[p->n_items - 1].field = f->name;
		*i = e;
		return rc;
	}

	/* A column filter: "column :" and the value as its own item(s). */
	{
		size_t cl = strlen(f->column) + 3;
		char *col = malloc(cl);

		if (!col)
			return -ENOMEM;
		snprintf(col, cl, "%s :", f->column);
		rc = push(p, IT_COL, col, at);
		if (rc)
			return rc;
	}
	if (p->s[v] == '(') {
		/* A group: the main loop reads it. */
		*i = v;
		return 0;
	}
	if (p->s[v] == '"' ||
	    (p->s[v] == '^' && v + 1 < p->len && p->s[v + 1] == '"')) {
		int initial = p->s[v] == '^';

		e = v + (size_t)initial;
		rc = phrase(p, &e, initial, v);
	} else if (p->len - v > 5 && !memcmp(p->s + v, "NEAR(", 5)) {
		e = v + 4;
		rc = near(p, &e, v);
	} else {
		/* A bare value runs to whitespace or a quote; parentheses
		 * inside it are kept while they balance (url:Foo_(bar)), so
		 * "(author:x OR y)" still closes its group. */
		int bal = 0;

		e = v;
		while (e < p->len && !ws_at(p, e) && p->s[e] != '"') {
			if (p->s[e] == '(')
				bal++;
			if (p->s[e] == ')' && bal-- == 0)
				break;
			e++;
		}
		rc = bare_word(p, v, e);
	}
	*i = e;
	if (!rc && p->items[p->n_items - 1].kind == IT_EMPTY)
		return qerr(p, -EINVAL, "%s: needs a value at %zu", f->name,
			    cpos(p, at));
	return rc;
}

/* Read the whole query into p->items. */
static int read_items(struct qp *p)
{
	size_t i = 0;
	int rc = 0;

	while (!rc) {
		size_t e, fl;

		i = skip_ws(p, i);
		if (i >= p->len)
			break;
		if (p->s[i] == '(') {
			p->open[p->depth] = i;
			rc = push(p, IT_LP, NULL, i);
			p->depth++;
			i++;
		} else if (p->s[i] == ')') {
			if (!p->depth)
				return qerr(p, -EINVAL,
					    "unbalanced parenthesis at %zu",
					    cpos(p, i));
			p->depth--;
			rc = push(p, IT_RP, NULL, i);
			i++;
		} else if (p->s[i] == '"') {
			rc = phrase(p, &i, 0, i);
		} else if (p->s[i] == '^' && i + 1 < p->len &&
			   p->s[i + 1] == '"') {
			size_t at = i++;

			rc = phrase(p, &i, 1, at);
		} else if ((fl = field_len(p, i)) != 0) {
			rc = field(p, &i, fl);
		} else {
			e = word_end(p, i, 0);
			if (e - i == 4 && !memcmp(p->s + i, "NEAR", 4) &&
			    e < p->len && p->s[e] == '(') {
				size_t at = i;

				i = e;
				rc = near(p, &i, at);
				continue;
			}
			if (e - i == 3 && !memcmp(p->s + i, "AND", 3))
				rc = push(p, IT_AND, NULL, i);
			else if (e - i == 2 && !memcmp(p->s + i, "OR", 2))
				rc = push(p, IT_OR, NULL, i);
			else if (e - i == 3 && !memcmp(p->s + i, "NOT", 3))
				rc = push(p, IT_NOT, NULL, i);
			else if (strspn(p->s + i, "*") >= e - i && p->n_items &&
				 p->items[p->n_items - 1].prefixable) {
				/* "word *": FTS5 allows the space. */
				struct item *it = &p->items[p->n_items - 1];
				size_t l = strlen(it->text);
				char *t = realloc(it->text, l + 2);

				if (!t)
					return -ENOMEM;
				memcpy(t + l, "*", 2);
				it->text = t;
				it->prefixable = 0;
			} else {
				rc = bare_word(p, i, e);
			}
			i = e;
		}
	}
	if (!rc && p->depth)
		return qerr(p, -EINVAL, "unbalanced parenthesis at %zu",
			    cpos(p, p->open[p->depth - 1]));
	return rc;
}

static int is_op(const struct item *it)
{
	return it &&
	       (it->kind == IT_AND || it->kind == IT_OR || it->kind == IT_NOT);
}

static const char *op_name(const struct item *it)
{
	return it->kind == IT_AND ? "AND" : it->kind == IT_OR ? "OR" : "NOT";
}

/* The nearest item before (dir -1) or after (dir 1) index k that is still
 * there and is not a placeholder; NULL at either end. */
static struct item *neighbour(struct qp *p, size_t k, int dir)
{
	while (dir < 0 ? k-- > 0 : ++k < p->n_items) {
		struct item *it = &p->items[k];

		if (!it->gone && it->kind != IT_FILTER && it->kind != IT_EMPTY)
			return it;
	}
	return NULL;
}

/*
 * Drop filters and empty words with an AND next to them, reject what
 * would change meaning or what FTS5 would report unclearly, and join the
 * rest into q->match.
 */
static int finish(struct qp *p)
{
	struct item *first_filter = NULL, *top_or = NULL, *last = NULL;
	struct sbuf b = { 0 };
	size_t n_left = 0;
	int rc;

	for (size_t k = 0; k < p->n_items; k++) {
		struct item *it = &p->items[k], *prev, *next;

		if (it->kind == IT_OR && it->depth == 0 && !top_or)
			top_or = it;
		if (it->kind != IT_FILTER && it->kind != IT_EMPTY)
			continue;
		if (it->kind == IT_FILTER && !first_filter)
			first_filter = it;
		prev = neighbour(p, k, -1);
		next = neighbour(p, k, 1);
		if (it->kind == IT_FILTER &&
		    ((prev && (prev->kind == IT_OR || prev->kind == IT_NOT)) ||
		     (next && next->kind == IT_OR)))
			return qerr(
				p, -EINVAL,
				"%s: cannot be inside OR/NOT/parentheses (at %zu)",
				it->field, cpos(p, it->pos));
		it->gone = 1;
		if (prev && prev->kind == IT_AND)
			prev->gone = 1;
		else if (next && next->kind == IT_AND)
			next->gone = 1;
	}
	if (first_filter && top_or)
		return qerr(
			p, -EINVAL,
			"%s: cannot be used with OR at the top level; group the OR in parentheses (at %zu)",
			first_filter->field, cpos(p, first_filter->pos));

	for (size_t k = 0; k < p->n_items; k++) {
		struct item *it = &p->items[k], *next;

		if (it->gone || it->kind == IT_FILTER || it->kind == IT_EMPTY)
			continue;
		next = neighbour(p, k, 1);
		if (is_op(it) && (!last || is_op(last) || last->kind == IT_LP ||
				  last->kind == IT_COL)) {
			rc = qerr(p, -EINVAL,
				  "'%s' at %zu needs a search term on its left",
				  op_name(it), cpos(p, it->pos));
			goto fail;
		}
		if (is_op(it) &&
		    (!next || is_op(next) || next->kind == IT_RP)) {
			rc = qerr(
				p, -EINVAL,
				"'%s' at %zu needs a search term on its right",
				op_name(it), cpos(p, it->pos));
			goto fail;
		}
		if (it->kind == IT_LP && next && next->kind == IT_RP) {
			rc = qerr(p, -EINVAL, "empty parentheses at %zu",
				  cpos(p, it->pos));
			goto fail;
		}
		if (last && last->kind != IT_LP && it->kind != IT_RP)
			sb_put(&b, " ", 1);
		/* FTS5 joins side-by-side phrases, but not a group and what
		 * stands next to it: say AND there. */
		if (last && (last->kind == IT_TERM || last->kind == IT_RP) &&
		    (it->kind == IT_TERM || it->kind == IT_LP ||
		     it->kind == IT_COL) &&
		    (last->kind == IT_RP || it->kind == IT_LP ||
		     (it->kind == IT_COL && next && next->kind == IT_LP)))
			sb_str(&b, "AND ");
		switch (it->kind) {
		case IT_AND:
		case IT_OR:
		case IT_NOT:
			sb_str(&b, op_name(it));
			break;
		case IT_LP:
			sb_put(&b, "(", 1);
			break;
		case IT_RP:
			sb_put(&b, ")", 1);
			break;
		default:
			sb_str(&b, it->text);
			break;
		}
		last = it;
		n_left++;
	}
	rc = b.err;
	if (!rc && !n_left && !first_filter)
		rc = qerr(p, -EINVAL, "empty query");
	if (!rc) {
		p->q->match = b.p;
		return 0;
	}
fail:
	free(b.p);
	return rc;
}

int stash_query_parse(const char *name, struct stash_query **out, char *err,
		      size_t errlen)
{
	struct qp *p;
	size_t n;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!name || !out)
		return -EINVAL;
	n = strnlen(name, QMAX + 1);
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->typed = name;
	p->err = err;
	p->errlen = errlen;
	if (n > QMAX) {
		rc = qerr(p, -ENAMETOOLONG, "query longer than %d bytes", QMAX);
		goto out;
	}
	p->q = calloc(1, sizeof(*p->q));
	if (!p->q) {
		rc = -ENOMEM;
		goto out;
	}
	p->q->after_ns = INT64_MIN;
	p->q->before_ns = INT64_MAX;
	p->q->limit = STASH_QUERY_LIMIT_DEFAULT;
	rc = decode(p, n);
	if (!rc)
		rc = read_items(p);
	if (!rc)
		rc = finish(p);
	if (!rc && p->q->after_ns != INT64_MIN &&
	    p->q->before_ns != INT64_MAX && p->q->after_ns >= p->q->before_ns)
		rc = qerr(p, -EINVAL, "after: must be earlier than before:");
	if (!rc) {
		*out = p->q;
		p->q = NULL;
	}
out:
	stash_query_free(p->q);
	for (size_t k = 0; k < p->n_items; k++)
		free(p->items[k].text);
	free(p->items);
	free(p);
	return rc;
}

void stash_query_free(struct stash_query *q)
{
	if (!q)
		return;
	free(q->match);
	for (size_t i = 0; i < q->n_areas; i++)
		free(q->areas[i]);
	free(q->areas);
	for (size_t i = 0; i < q->n_names; i++)
		free(q->names[i]);
	free(q->names);
	free(q);
}

/* Simple lower case for the scripts name: folds (see query.h). */
static uint32_t fold_cp(uint32_t c)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7))
		return c + 0x20;
	if (c == 0x130) /* İ */
		return 'i';
	if (c == 0x178) /* Ÿ */
		return 0xFF;
	if (((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) &&
	    !(c & 1))
		return c + 1;
	if (((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) &&
	    (c & 1))
		return c + 1;
	if (c == 0x386)
		return 0x3AC;
	if (c >= 0x388 && c <= 0x38A)
		return c + 0x25;
	if (c == 0x38C)
		return 0x3CC;
	if (c == 0x38E || c == 0x38F)
		return c + 0x3F;
	if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
		return c + 0x20;
	if (c >= 0x400 && c <= 0x40F)
		return c + 0x50;
	if (c >= 0x410 && c <= 0x42F)
		return c + 0x20;
	return c;
}

int stash_query_fold_name(const char *s, char **out)
{
	size_t n, o = 0;
	char *r;

	if (!s || !out)
		return -EINVAL;
	n = strlen(s);
	/* No fold makes a UTF-8 sequence longer. */
	r = malloc(n + 1);
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		unsigned char t = (unsigned char)s[i + 1];

		if (c < 0x80) {
			r[o++] = (char)fold_cp(c);
		} else if (c >= 0xC2 && c <= 0xDF && (t & 0xC0) == 0x80) {
			uint32_t f =
				fold_cp((uint32_t)(c & 0x1F) << 6 | (t & 0x3F));

			if (f < 0x80) { /* İ -> i */
				r[o++] = (char)f;
			} else {
				r[o++] = (char)(0xC0 | (f >> 6));
				r[o++] = (char)(0x80 | (f & 0x3F));
			}
			i++;
		} else {
			r[o++] = (char)c;
		}
	}
	r[o] = '\0';
	*out = r;
	return 0;
}

bool stash_query_name_match(const struct stash_query *q, const char *name)
{
	char *f;
	bool ok = true;

	if (!q || !q->n_names)
		return true;
	if (!name || stash_query_fold_name(name, &f))
		return false;
	for (size_t i = 0; i < q->n_names && ok; i++)
		ok = sqlite3_strglob(q->names[i], f) == 0;
	free(f);
	return ok;
}

int stash_query_fts5_check(sqlite3 *db, const char *table, const char *match,
			   char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	char *sql;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!db || !table || !match)
		return -EINVAL;
	sql = sqlite3_mprintf("SELECT rowid FROM \"%w\" WHERE \"%w\" MATCH ?1 "
			      "LIMIT 1",
			      table, table);
	if (!sql)
		return -ENOMEM;
	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	sqlite3_free(sql);
	if (rc == SQLITE_OK)
		rc = sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
		sqlite3_finalize(st);
		return 0;
	}
	if (err && errlen)
		snprintf(err, errlen, "%s", sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return (rc & 0xff) == SQLITE_ERROR ? -EINVAL : stash_sqlite_errno(rc);
}
