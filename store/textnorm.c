/*
 * textnorm.c - text normalization in front of FTS5's unicode61 tokenizer:
 * Arabic/Persian/Hebrew marks removed, letter variants folded, CJK runs cut
 * into bigrams. The choices and their reasons are in textnorm.h.
 *
 * One streaming pass over the input: decode a code point, map it (remove,
 * fold, replace by a space), then either feed it to the CJK run state or
 * append it. Memory is the output plus a few words of state, whatever the
 * input size. No tables beyond the scripts named in the header.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "textnorm.h"

#define BAD_CP UINT32_C(0xFFFFFFFF) /* an invalid UTF-8 byte */

/* A growing output string, always NUL-terminated once allocated. */
struct tbuf {
	char *p;    /* malloc'd bytes */
	size_t len; /* bytes used, without the NUL */
	size_t cap; /* bytes allocated */
	int err; /* first error (-ENOMEM, -EOVERFLOW); later puts do nothing */
};

/* The normalizer's state between two code points. */
struct norm {
	struct tbuf b;		       /* output */
	enum stash_textnorm_mode mode; /* INDEX or QUERY */
	size_t run;		       /* CJK characters in the current run */
	uint32_t prev; /* run character before pend (run >= 2) */
	uint32_t pend; /* last run character; a voicing mark may still change it
			*/
	int need_space;	 /* a CJK run just ended: separate what follows */
	size_t last_tok; /* QUERY: input offset after the last token character
			  */
};

static void tb_put(struct tbuf *b, const char *s, size_t n)
{
	size_t want, cap;
	char *p;

	if (b->err)
		return;
	if (n > SIZE_MAX - b->len - 1) {
		b->err = -EOVERFLOW;
		return;
	}
	want = b->len + n + 1;
	if (want > b->cap) {
		cap = b->cap ? b->cap : 64;
		while (cap < want)
			cap = cap > SIZE_MAX / 2 ? want : cap * 2;
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

static void tb_cp(struct tbuf *b, uint32_t c)
{
	char u[4];

	tb_put(b, u, stash_textnorm_utf8_encode(c, u));
}

size_t stash_textnorm_utf8_decode(const uint8_t *p, size_t n, uint32_t *cp)
{
	uint32_t c;
	size_t len;

	if (n == 0)
		return 0;
	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] < 0xc2) /* a continuation byte, or an overlong 2-byte form */
		return 0;
	if (p[0] < 0xe0) {
		len = 2;
		c = p[0] & 0x1f;
	} else if (p[0] < 0xf0) {
		len = 3;
		c = p[0] & 0x0f;
	} else if (p[0] < 0xf5) {
		len = 4;
		c = p[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
	    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

size_t stash_textnorm_utf8_encode(uint32_t c, char s[4])
{
	if (c < 0x80) {
		s[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		s[0] = (char)(0xC0 | (c >> 6));
		s[1] = (char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		s[0] = (char)(0xE0 | (c >> 12));
		s[1] = (char)(0x80 | ((c >> 6) & 0x3F));
		s[2] = (char)(0x80 | (c & 0x3F));
		return 3;
	}
	s[0] = (char)(0xF0 | (c >> 18));
	s[1] = (char)(0x80 | ((c >> 12) & 0x3F));
	s[2] = (char)(0x80 | ((c >> 6) & 0x3F));
	s[3] = (char)(0x80 | (c & 0x3F));
	return 4;
}

/*
 * Decode the code point at s[*i] (*i < len) and advance *i past it. An
 * invalid sequence gives BAD_CP and advances one byte, so the next call
 * resynchronizes on the following byte.
 */
static uint32_t utf8_dec(const unsigned char *s, size_t len, size_t *i)
{
	uint32_t c;
	size_t n = stash_textnorm_utf8_decode(s + *i, len - *i, &c);

	*i += n ? n : 1;
	return n ? c : BAD_CP;
}

/* Han, kana and Hangul: the scripts unicode61 cannot split into words. */
static int is_cjk(uint32_t c)
{
	return (c >= 0x1100 && c <= 0x11FF) || /* Hangul jamo */
	       (c >= 0x3005 && c <= 0x3007) || /* 々 〆 〇 */
	       (c >= 0x3041 && c <= 0x3096) || /* hiragana */
	       (c >= 0x309D && c <= 0x309F) || /* ゝ ゞ ゟ */
	       (c >= 0x30A1 && c <= 0x30FA) || /* katakana */
	       (c >= 0x30FC && c <= 0x30FF) || /* ー ヽ ヾ ヿ */
	       (c >= 0x3131 && c <= 0x318E) || /* Hangul compatibility jamo */
	       (c >= 0x31F0 && c <= 0x31FF) || /* katakana extension */
	       (c >= 0x3400 && c <= 0x4DBF) || /* Han extension A */
	       (c >= 0x4E00 && c <= 0x9FFF) || /* Han */
	       (c >= 0xA960 && c <= 0xA97F) || /* Hangul jamo extended A */
	       (c >= 0xAC00 && c <= 0xD7A3) || /* Hangul syllables */
	       (c >= 0xD7B0 && c <= 0xD7FF) || /* Hangul jamo extended B */
	       (c >= 0xF900 && c <= 0xFAFF) || /* Han compatibility */
	       (c >= 0x20000 && c <= 0x3134F); /* Han extensions B..G */
}

/* Arabic and Hebrew marks unicode61 splits words on. */
static int is_removed_mark(uint32_t c)
{
	return (c >= 0x0591 && c <= 0x05BD) || c == 0x05BF || c == 0x05C1 ||
	       c == 0x05C2 || c == 0x05C4 || c == 0x05C5 || c == 0x05C7 ||
	       (c >= 0x0610 && c <= 0x061A) || (c >= 0x064B && c <= 0x065F) ||
	       c == 0x0670 || (c >= 0x06D6 && c <= 0x06DC) ||
	       (c >= 0x06DF && c <= 0x06E4) || c == 0x06E7 || c == 0x06E8 ||
	       (c >= 0x06EA && c <= 0x06ED) || (c >= 0x08D3 && c <= 0x08E1) ||
	       (c >= 0x08E3 && c <= 0x08FF);
}

/* Halfwidth forms U+FF61..FF9F -> their fullwidth (or combining) forms. */
static const uint16_t halfwidth[] = {
	0x3002, 0x300C, 0x300D, 0x3001, 0x30FB, 0x30F2, 0x30A1, 0x30A3, 0x30A5,
	0x30A7, 0x30A9, 0x30E3, 0x30E5, 0x30E7, 0x30C3, 0x30FC, 0x30A2, 0x30A4,
	0x30A6, 0x30A8, 0x30AA, 0x30AB, 0x30AD, 0x30AF, 0x30B1, 0x30B3, 0x30B5,
	0x30B7, 0x30B9, 0x30BB, 0x30BD, 0x30BF, 0x30C1, 0x30C4, 0x30C6, 0x30C8,
	0x30CA, 0x30CB, 0x30CC, 0x30CD, 0x30CE, 0x30CF, 0x30D2, 0x30D5, 0x30D8,
	0x30DB, 0x30DE, 0x30DF, 0x30E0, 0x30E1, 0x30E2, 0x30E4, 0x30E6, 0x30E8,
	0x30E9, 0x30EA, 0x30EB, 0x30EC, 0x30ED, 0x30EF, 0x30F3, 0x3099, 0x309A,
};

/*
 * What code point c becomes before CJK segmentation: up to two code points
 * in out. Returns how many (0: removed).
 */
static int map_cp(uint32_t c, uint32_t out[2])
{
	out[0] = c;
	if (c == 0)
		out[0] = ' ';
	if (c < 0x80)
		return 1;
	switch (c) {
	case 0x00AD: /* soft hyphen */
	case 0x034F: /* combining grapheme joiner */
	case 0x0640: /* tatweel */
	case 0x200D: /* zero width joiner */
	case 0x2060: /* word joiner */
	case 0xFEFF: /* BOM, zero width no-break space */
		return 0;
	case 0x061C: /* Arabic letter mark */
	case 0x200B: /* zero width space */
	case 0x200C: /* ZWNJ: a word boundary, see textnorm.h */
	case 0x200E: /* left-to-right mark */
	case 0x200F: /* right-to-left mark */
	case 0x3000: /* ideographic space */
		out[0] = ' ';
		return 1;
	case 0x0649: /* alef maksura */
	case 0x06CC: /* Farsi yeh */
		out[0] = 0x064A;
		return 1;
	case 0x06A9: /* keheh */
		out[0] = 0x0643;
		return 1;
	case 0x0629: /* teh marbuta */
	case 0x06C0: /* heh with yeh above */
		out[0] = 0x0647;
		return 1;
	case 0x0622: /* alef with madda above */
	case 0x0623: /* alef with hamza above */
	case 0x0625: /* alef with hamza below */
	case 0x0671: /* alef wasla */
		out[0] = 0x0627;
		return 1;
	case 0x0451: /* ё */
		out[0] = 0x0435;
		return 1;
	case 0x0401: /* Ё */
		out[0] = 0x0415;
		return 1;
	case 0x00DF: /* ß */
	case 0x1E9E: /* ẞ */
		out[0] = 's';
		out[1] = 's';
		return 2;
	default:
		break;
	}
	if (is_removed_mark(c) || (c >= 0xFE00 && c <= 0xFE0F) ||
	    (c >= 0xE0100 && c <= 0xE01EF))
		return 0;
	if ((c >= 0x202A && c <= 0x202E) || (c >= 0x2066 && c <= 0x2069))
		out[0] = ' ';
	else if (c >= 0x0660 && c <= 0x0669)
		out[0] = '0' + (c - 0x0660);
	else if (c >= 0x06F0 && c <= 0x06F9)
		out[0] = '0' + (c - 0x06F0);
	else if (c >= 0xFF01 && c <= 0xFF5E)
		out[0] = c - 0xFEE0;
	else if (c >= 0xFF61 && c <= 0xFF9F)
		out[0] = halfwidth[c - 0xFF61];
	return 1;
}

/*
 * A kana c with voicing mark (U+3099 dakuten, U+309A handakuten) as one
 * precomposed kana, or 0 when c takes no such mark.
 */
static uint32_t voiced(uint32_t c, uint32_t mark)
{
	uint32_t h = c, v = 0;
	int kata = 0;

	if (c >= 0x30A1 && c <= 0x30FE) {
		/* Katakana ワヰヱヲ have voiced forms, hiragana ones do not. */
		if (mark == 0x3099 && c >= 0x30EF && c <= 0x30F2)
			return c + 8;
		h = c - 0x60;
		kata = 1;
	}
	/* は ひ ふ へ ほ take both marks. */
	if (h >= 0x306F && h <= 0x307B && (h - 0x306F) % 3 == 0)
		v = mark == 0x3099 ? h + 1 : h + 2;
	else if (mark != 0x3099)
		return 0;
	else if ((h >= 0x304B && h <= 0x3061 && (h & 1)) ||  /* か..ち */
		 (h >= 0x3064 && h <= 0x3068 && !(h & 1)) || /* つ て と */
		 h == 0x309D)				     /* ゝ */
		v = h + 1;
	else if (h == 0x3046) /* う */
		v = 0x3094;
	if (!v)
		return 0;
	return kata ? v + 0x60 : v;
}

/* unicode61 would index c ("L* N* Co"), approximately. */
static int is_token_cp(uint32_t c)
{
	if (c < 0x80)
		return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
		       (c >= 'a' && c <= 'z');
	if (c < 0xC0)
		return c == 0xAA || c == 0xB2 || c == 0xB3 || c == 0xB5 ||
		       c == 0xB9 || c == 0xBA || (c >= 0xBC && c <= 0xBE);
	return !(c == 0xD7 || c == 0xF7 || (c >= 0x0300 && c <= 0x036F) ||
		 (c >= 0x0591 && c <= 0x05CF) || (c >= 0x0600 && c <= 0x061F) ||
		 (c >= 0x064B && c <= 0x065F) || (c >= 0x066A && c <= 0x066D) ||
		 c == 0x0670 || c == 0x06D4 || (c >= 0x06D6 && c <= 0x06ED) ||
		 (c >= 0x2000 && c <= 0x2BFF) || (c >= 0x2E00 && c <= 0x2E7F) ||
		 (c >= 0x3000 && c <= 0x3004) || (c >= 0x3008 && c <= 0x3020) ||
		 c == 0x3030 || c == 0x303D || (c >= 0x3099 && c <= 0x309C) ||
		 c == 0x30A0 || c == 0x30FB || (c >= 0xD800 && c <= 0xDFFF) ||
		 (c >= 0xFE00 && c <= 0xFE6F) || c == 0xFEFF ||
		 (c >= 0xFF00 && c <= 0xFF0F) || (c >= 0xFFF0 && c <= 0xFFFF) ||
		 (c >= 0x1F000 && c <= 0x1FAFF) ||
		 (c >= 0xE0000 && c <= 0xE01EF));
}

static int is_space(uint32_t c)
{
	return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Append one CJK token (a bigram when b != 0), apart from what precedes. */
static void emit_cjk(struct norm *n, uint32_t a, uint32_t b)
{
	if (n->b.len && !is_space((unsigned char)n->b.p[n->b.len - 1]))
		tb_put(&n->b, " ", 1);
	tb_cp(&n->b, a);
	if (b)
		tb_cp(&n->b, b);
}

/* The run ends before input offset off. */
static void run_end(struct norm *n, size_t off)
{
	if (!n->run)
		return;
	if (n->run >= 2)
		emit_cjk(n, n->prev, n->pend);
	/* The trailing unigram: see textnorm.h, "CJK". */
	if (n->run == 1 || n->mode == STASH_TEXTNORM_INDEX || n->last_tok > off)
		emit_cjk(n, n->pend, 0);
	n->run = 0;
	n->need_space = 1;
}

/* Feed one mapped code point c, read from input offset start. */
static void feed(struct norm *n, uint32_t c, size_t start)
{
	struct tbuf *b = &n->b;

	if (c == 0x3099 || c == 0x309A) {
		uint32_t v = n->run ? voiced(n->pend, c) : 0;

		/* A stray voicing mark is dropped: unicode61 would split on
		 * it. */
		if (v)
			n->pend = v;
		return;
	}
	if (is_cjk(c)) {
		if (n->run >= 2)
			emit_cjk(n, n->prev, n->pend);
		n->prev = n->pend;
		n->pend = c;
		n->run++;
		return;
	}
	run_end(n, start);
	/* Decomposed й and ё: compose й, drop the diaeresis of е (ё = е). */
	if (c == 0x0306 && b->len >= 2 &&
	    (unsigned char)b->p[b->len - 2] == 0xD0 &&
	    ((unsigned char)b->p[b->len - 1] == 0xB8 ||
	     (unsigned char)b->p[b->len - 1] == 0x98)) {
		b->p[b->len - 1]++;
		return;
	}
	if (c == 0x0308 && b->len >= 2 &&
	    (unsigned char)b->p[b->len - 2] == 0xD0 &&
	    ((unsigned char)b->p[b->len - 1] == 0xB5 ||
	     (unsigned char)b->p[b->len - 1] == 0x95))
		return;
	if (n->need_space && !is_space(c))
		tb_put(b, " ", 1);
	n->need_space = 0;
	tb_cp(b, c);
}

/* QUERY mode: where the last character the tokenizer indexes ends. */
static size_t last_token_end(const unsigned char *s, size_t len)
{
	size_t i = 0, end = 0;

	while (i < len) {
		uint32_t c = utf8_dec(s, len, &i), m[2];
		int k = c == BAD_CP ? 0 : map_cp(c, m);

		for (int j = 0; j < k; j++)
			if (is_token_cp(m[j]))
				end = i;
	}
	return end;
}

int stash_textnorm(const char *in, size_t len, enum stash_textnorm_mode mode,
		   char **out, size_t *out_len)
{
	const unsigned char *s = (const unsigned char *)in;
	struct norm n = { .mode = mode };
	size_t i = 0;
	int bad = 0;

	if (!out || (!in && len))
		return -EINVAL;
	if (mode == STASH_TEXTNORM_QUERY)
		n.last_tok = last_token_end(s, len);
	tb_put(&n.b, "", 0); /* an empty input gives "" */
	while (i < len && !n.b.err) {
		size_t start = i;
		uint32_t c = utf8_dec(s, len, &i), m[2];
		int k;

		if (c == BAD_CP) {
			/* One U+FFFD per stretch of bad bytes. */
			if (!bad)
				feed(&n, 0xFFFD, start);
			bad = 1;
			continue;
		}
		bad = 0;
		k = map_cp(c, m);
		for (int j = 0; j < k; j++)
			feed(&n, m[j], start);
	}
	run_end(&n, len);
	if (n.b.err) {
		free(n.b.p);
		return n.b.err;
	}
	*out = n.b.p;
	if (out_len)
		*out_len = n.b.len;
	return 0;
}

bool stash_textnorm_lone_cjk_tail(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t last = 0, before = 0, prev = 0;
	size_t i = 0;

	if (!s)
		return false;
	/* last: the last non-space code point; before: the one just ahead
	 * of it, spaces included. */
	while (i < len) {
		uint32_t c = utf8_dec(u, len, &i);

		if (!is_space(c)) {
			before = prev;
			last = c;
		}
		prev = c;
	}
	return is_cjk(last) && !is_cjk(before);
}

bool stash_textnorm_has_token(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;

	return s && last_token_end(u, len) > 0;
}

size_t stash_textnorm_utf8_check(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0;

	if (!s)
		return 0;
	while (i < len) {
		size_t start = i;

		if (utf8_dec(u, len, &i) == BAD_CP)
			return start;
	}
	return len;
}
