/*
 * textnorm.h - the one text normalization applied to everything that goes
 * into the full-text index AND to every query term before it is matched, so
 * that both sides of a MATCH see the same tokens.
 *
 * It runs in front of FTS5's `unicode61 remove_diacritics 2` tokenizer and
 * only does what that tokenizer cannot. It deliberately does not lower-case
 * and does not strip Latin diacritics (unicode61 does both: "Café" and
 * "cafe" are one token, "Müller" matches "muller"), does not stem and does
 * not apply full Unicode normalization (no tables beyond the scripts below).
 *
 * What it does, code point by code point (all measured against a real
 * unicode61 table in tests/unit/test_textnorm.c):
 *
 *  Removed (unicode61 would split a word on them, or keep them inside it):
 *   - Arabic harakat and Quranic marks U+0610..061A, U+064B..065F (this
 *     includes hamza above/below U+0654/0655), superscript alef U+0670,
 *     U+06D6..06DC, U+06DF..06E4, U+06E7..06E8, U+06EA..06ED,
 *     U+08D3..08E1, U+08E3..08FF: "كَتَبَ" = "كتب".
 *   - Arabic tatweel U+0640 (kashida, pure stretching): "مـــحمد" = "محمد".
 *   - Hebrew points and cantillation U+0591..05BD, 05BF, 05C1, 05C2, 05C4,
 *     05C5, 05C7.
 *   - Invisible format characters that sit inside words: soft hyphen
 *     U+00AD (common in German web text), combining grapheme joiner U+034F,
 *     zero width joiner U+200D, word joiner U+2060, BOM U+FEFF, variation
 *     selectors U+FE00..FE0F and U+E0100..E01EF.
 *   - A kana voicing mark U+3099/U+309A that follows no kana it can voice.
 *
 *  Turned into a space (a word boundary):
 *   - ZWNJ U+200C. Persian writes morphemes of one word apart with it
 *     (کتاب‌ها "books", می‌خواهم "I want"). Like Lucene's
 * PersianCharFilter we make it a separator, so a search for the stem کتاب finds
 *     کتاب‌ها; a query typed with ZWNJ or with a space matches the same
 *     text (FTS5 makes a multi-token term a phrase). The price: the form
 *     typed with neither (کتابها) is one other token.
 *   - Zero width space U+200B, the bidi controls U+200E, U+200F, U+061C,
 *     U+202A..202E, U+2066..2069, ideographic space U+3000, and NUL.
 *
 *  Folded (letters users type interchangeably; the same direction as
 *  Lucene's Arabic and Persian normalizers):
 *   - Farsi yeh ی U+06CC and alef maksura ى U+0649 -> Arabic yeh ي U+064A.
 *   - Keheh ک U+06A9 -> kaf ك U+0643.
 *   - Teh marbuta ة U+0629 and heh with yeh above ۀ U+06C0 -> heh ه U+0647.
 *     Arabic writers drop the dots of ة and Persian spells the same loan
 *     words with ه (مدرسة / مدرسه); a few Arabic word pairs merge, which
 *     Arabic search engines accept for the recall.
 *   - Alef with madda/hamza آ أ إ and alef wasla ٱ -> bare alef ا U+0627
 *     (hamza is usually omitted when typing).
 *   - Arabic-Indic ٠..٩ and Persian ۰..۹ digits -> ASCII 0..9.
 *   - Cyrillic ё/Ё -> е/Е: unicode61 keeps ё (it removes diacritics from
 *     Latin letters only) and Russian text mostly prints е for it. A
 *     decomposed е/Е + U+0308 becomes е/Е and и/И + U+0306 becomes й/Й
 *     (unicode61 would otherwise index "и" for a decomposed й).
 *   - German ß and ẞ -> "ss" (unicode61 keeps ß: "Straße" would not match
 *     "Strasse").
 *   - Fullwidth ASCII U+FF01..FF5E -> ASCII; halfwidth katakana -> their
 *     fullwidth letters; a kana followed by a combining voicing mark
 *     (U+3099, U+309A, halfwidth U+FF9E, U+FF9F) -> the precomposed kana
 *     (macOS hands out file names decomposed).
 *
 *  CJK: unicode61 makes a whole run of Han, kana or Hangul one token, so a
 *  word inside a sentence could never be found. Runs of these (plus the
 *  iteration marks 々〆〇 and the prolonged sound mark ー) are cut into
 *  overlapping bigrams separated by spaces, as Lucene's CJKAnalyzer does:
 *   - QUERY mode: "北京大学" -> "北京 京大 大学"; a run of one character
 *     stays itself. The caller matches the bigrams as one phrase.
 *   - INDEX mode additionally ends every run of two or more characters with
 *     its last character alone: "北京大学" -> "北京 京大 大学 学". So every
 *     character of the text starts some token, and a one-character query
 *     term X, matched as the prefix query X*, finds X anywhere in a run
 *     (plain bigrams would only find it at the start of a bigram). A QUERY
 *     run that is followed by more tokens in the same string gets the same
 *     trailing character, so the phrase "苹果iPhone" -> "苹果 果 iphone"
 *     lines up with the index; only the last run of a query string leaves
 *     it out, because in the text that run may continue.
 *   Spaces are added between a CJK run and the text around it.
 *
 *  Invalid UTF-8 (bad bytes, overlong forms, surrogates, > U+10FFFF):
 *  each maximal stretch of bad bytes becomes one U+FFFD, which unicode61
 *  treats as a separator, so words on both sides stay apart.
 *
 * Thread-safe: pure functions, no global state.
 */
#ifndef STASH_TEXTNORM_H
#define STASH_TEXTNORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum stash_textnorm_mode {
	STASH_TEXTNORM_INDEX, /* text going into the index */
	STASH_TEXTNORM_QUERY, /* one query term or phrase */
};

/*
 * Normalize len bytes of UTF-8 at in (NUL bytes allowed; they become
 * spaces) into a malloc'd, NUL-terminated UTF-8 string *out of *out_len
 * bytes (out_len may be NULL). The caller frees *out.
 * Returns 0, -EINVAL (out NULL, or in NULL with len > 0), -ENOMEM,
 * -EOVERFLOW (the result would not fit in memory arithmetic). *out is set
 * only on success.
 */
int stash_textnorm(const char *in, size_t len, enum stash_textnorm_mode mode,
		   char **out, size_t *out_len);

/*
 * Whether normalized text s (len bytes) ends with a CJK run of exactly one
 * character: such a query term only finds its character as the prefix of
 * an index token, so the query must end it with '*'.
 */
bool stash_textnorm_lone_cjk_tail(const char *s, size_t len);

/*
 * Whether s (len bytes of UTF-8) holds anything the tokenizer would index:
 * an ASCII letter or digit, or a non-ASCII character outside the
 * punctuation, symbol, space and mark ranges. A close approximation of
 * unicode61's "L* N* Co" classes, without its tables.
 */
bool stash_textnorm_has_token(const char *s, size_t len);

/*
 * The offset of the first byte of s (len bytes) that does not start a valid
 * UTF-8 sequence (overlong forms, surrogates and code points above U+10FFFF
 * are invalid), or len when all of s is valid.
 */
size_t stash_textnorm_utf8_check(const char *s, size_t len);

/*
 * The UTF-8 sequence at p (n bytes available): its length, 1 to 4, with
 * its code point in *cp; 0 if p does not start a valid one (n is 0, the
 * sequence is cut short, or it is invalid as for utf8_check).
 */
size_t stash_textnorm_utf8_decode(const uint8_t *p, size_t n, uint32_t *cp);

/* Encode code point c (at most U+10FFFF; not checked otherwise) into s:
 * the length, 1 to 4. */
size_t stash_textnorm_utf8_encode(uint32_t c, char s[4]);

#endif
