/*
 * chunker.c - FastCDC content-defined chunking with a keyed gear table.
 *
 * Contents: parameter check, gear table derivation, the cut loop.
 *
 * The cut loop is FastCDC (Xia et al., USENIX ATC 2016 / IEEE TPDS 2020):
 * a gear rolling hash fp = (fp << 1) + gear[byte], cut-point skipping
 * (hashing starts only at min, so no chunk but a file's last is shorter
 * than min), and normalised chunking at level 2: below avg a cut needs
 * log2(avg) + 2 zero bits, from avg on only log2(avg) - 2, which pulls the
 * sizes towards avg. A cut after byte i gives a chunk of i + 1 bytes.
 *
 * The gear table is part of the store format (it decides every chunk id):
 * for j = 0..63, block_j = HMAC-SHA256(key, "stashfs chunker gear v1" ||
 * le32(j)), and gear[4j + k] = le64(block_j[8k .. 8k + 8)) for k = 0..3.
 * A mask takes the top bits of fp: bit b of a gear hash depends on the last
 * b + 1 bytes only, so the top bits see the widest window (at least 40
 * bytes for every mask we allow).
 *
 * Not here: buffering (the caller keeps the data and asks again with more),
 * chunk ids, hashing of chunk contents, any I/O.
 */
#include "chunker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define GEAR_LABEL "stashfs chunker gear v1"
#define GEAR_ENTRIES 256
#define GEAR_BLOCK 32 /* HMAC-SHA256 output, bytes */

struct stash_chunker {
	uint64_t gear[GEAR_ENTRIES];	    /* keyed gear table; secret */
	uint64_t mask_s;		    /* cut mask below avg (stricter) */
	uint64_t mask_l;		    /* cut mask from avg on (looser) */
	struct stash_chunker_params params; /* as given, checked */
};

int stash_chunker_params_check(const struct stash_chunker_params *p)
{
	if (!p)
		return -EINVAL;
	if (p->min < 64 || p->min >= p->avg || p->avg >= p->max ||
	    p->max > STASH_CHUNK_MAX_LIMIT)
		return -EINVAL;
	if (p->avg & (p->avg - 1))
		return -EINVAL;
	return 0;
}

/* The top n bits of a 64-bit word set, the rest clear; 1 <= n <= 63. */
static uint64_t top_bits(unsigned int n)
{
	return ~UINT64_C(0) << (64 - n);
}

/*
 * The one place OpenSSL failures become errnos here: log what failed (the
 * queue holds no key material) and report -EIO, except an allocation
 * failure, which is -ENOMEM like everywhere else.
 */
static int ossl_err(const char *what)
{
	unsigned long e = ERR_peek_last_error();
	int ret = -EIO;
	char buf[256];

	if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
		ret = -ENOMEM;
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	stash_log(STASH_LOG_ERR, "chunker: %s: %s", what, buf);
	return ret;
}

static int gear_derive(uint64_t gear[GEAR_ENTRIES],
		       const uint8_t key[STASH_KEY_LEN])
{
	uint8_t msg[sizeof(GEAR_LABEL) - 1 + 4];
	uint8_t block[GEAR_BLOCK];
	OSSL_PARAM params[2];
	EVP_MAC_CTX *ctx = NULL;
	EVP_MAC *mac;
	int ret = 0;

	/* Fetched once per chunker, not per block: fetching is the slow part.
	 */
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!mac)
		return ossl_err("fetch HMAC");
	ctx = EVP_MAC_CTX_new(mac);
	if (!ctx) {
		ret = ossl_err("new HMAC context");
		goto out;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	memcpy(msg, GEAR_LABEL, sizeof(GEAR_LABEL) - 1);

	for (uint32_t j = 0; j < GEAR_ENTRIES / 4; j++) {
		size_t outl = 0;

		stash_le32enc(msg + sizeof(GEAR_LABEL) - 1, j);
		if (!EVP_MAC_init(ctx, key, STASH_KEY_LEN, params) ||
		    !EVP_MAC_update(ctx, msg, sizeof(msg)) ||
		    !EVP_MAC_final(ctx, block, &outl, sizeof(block)) ||
		    outl != sizeof(block)) {
			ret = ossl_err("HMAC-SHA256 for gear table");
			goto out;
		}
		for (int k = 0; k < 4; k++)
			gear[4 * j + k] = stash_le64dec(block + 8 * k);
	}
out:
	OPENSSL_cleanse(block, sizeof(block));
	EVP_MAC_CTX_free(ctx); /* cleanses the key schedule it holds */
	EVP_MAC_free(mac);
	return ret;
}

int stash_chunker_new(struct stash_chunker **out,
		      const struct stash_chunker_params *p,
		      const uint8_t key[STASH_KEY_LEN])
{
	struct stash_chunker *c;
	unsigned int bits;
	int ret;

	if (!out || !key)
		return -EINVAL;
	ret = stash_chunker_params_check(p);
	if (ret)
		return ret;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	ret = gear_derive(c->gear, key);
	if (ret) {
		stash_chunker_free(c);
		return ret;
	}
	/* avg is a power of two in [128, 4 MiB]: bits is 7..22, masks 5..24. */
	bits = (unsigned int)__builtin_ctz(p->avg);
	c->mask_s = top_bits(bits + 2);
	c->mask_l = top_bits(bits - 2);
	c->params = *p;
	*out = c;
	return 0;
}

void stash_chunker_free(struct stash_chunker *c)
{
	if (!c)
		return;
	/* The gear table is key-derived: it would let anyone predict cuts. */
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

const struct stash_chunker_params *
stash_chunker_params(const struct stash_chunker *c)
{
	return &c->params;
}

/*
 * Hash buf[i..end) into *fp and return the index one past the first byte
 * whose hash has no bit of mask set, or 0 if there is none. Inlined into the
 * caller with mask constant per loop; the loop-carried chain is a single
 * shift-and-add (one lea on x86-64), the table load and test run beside it.
 * Unrolled by hand because compilers do not unroll a loop with an early exit.
 */
static inline __attribute__((always_inline)) size_t
scan(const uint64_t *gear, const uint8_t *buf, size_t i, size_t end,
     uint64_t mask, uint64_t *fpp)
{
	uint64_t fp = *fpp;

	for (; i + 4 <= end; i += 4) {
		fp = (fp << 1) + gear[buf[i]];
		if (!(fp & mask))
			return i + 1;
		fp = (fp << 1) + gear[buf[i + 1]];
		if (!(fp & mask))
			return i + 2;
		fp = (fp << 1) + gear[buf[i + 2]];
		if (!(fp & mask))
			return i + 3;
		fp = (fp << 1) + gear[buf[i + 3]];
		if (!(fp & mask))
			return i + 4;
	}
	for (; i < end; i++) {
		fp = (fp << 1) + gear[buf[i]];
		if (!(fp & mask))
			return i + 1;
	}
	*fpp = fp;
	return 0;
}

size_t stash_chunker_cut(const struct stash_chunker *c, const uint8_t *buf,
			 size_t len, bool final)
{
	const struct stash_chunker_params *p = &c->params;
	size_t n = STASH_MIN(len, (size_t)p->max);
	size_t mid = STASH_MIN(n, (size_t)p->avg);
	uint64_t fp = 0;

	/*
	 * The first cut at or before n is the same whatever lies beyond n, so
	 * a caller that feeds data in pieces gets the cuts it would get from
	 * the whole: either this cut, or 0 and a later call with more data.
	 * min < avg, so when n > min the first loop starts below mid.
	 */
	if (n > p->min) {
		size_t cut = scan(c->gear, buf, p->min, mid, c->mask_s, &fp);

		if (cut)
			return cut;
		cut = scan(c->gear, buf, mid, n, c->mask_l, &fp);
		if (cut)
			return cut;
	}
	if (len >= p->max)
		return p->max;
	return final ? len : 0;
}

size_t stash_chunker_cut_records(const struct stash_chunker *c,
				 const uint8_t *buf, size_t len, bool final)
{
	size_t n = STASH_MIN(len, (size_t)c->params.max);
	const uint8_t *nl;

	/* The first record end at or past the minimum; it depends only on
	 * the bytes before it, as stash_chunker_cut's cuts do. */
	if (n > STASH_RECORD_MIN) {
		nl = memchr(buf + STASH_RECORD_MIN - 1, '\n',
			    n - (STASH_RECORD_MIN - 1));
		if (nl)
			return (size_t)(nl - buf) + 1;
	}
	/* A record longer than max is cut inside, by content. */
	if (len >= c->params.max)
		return stash_chunker_cut(c, buf, len, final);
	return final ? len : 0;
}
