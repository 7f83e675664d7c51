/*
 * codec.c - per-chunk compression with zstd (libzstd 1.5) and zlib.
 *
 * Each chunk is one self-contained zstd frame (content size recorded) or one
 * zlib stream. zstd contexts are cached per thread, so a worker compressing
 * chunk after chunk does not allocate; zlib, the compatibility codec, sets
 * up a stream per call. Decompression trusts nothing in its input: it
 * writes at most raw_len bytes and refuses any stream that does not decode
 * to exactly raw_len bytes or that has bytes after its end.
 * This file does not decide which codec a chunk gets, and it keeps no
 * dictionaries or checksums (AES-GCM authenticates every chunk).
 *
 * Contents: error translation, per-thread zstd contexts, zstd, zlib, the
 * public entry points, spec parsing.
 */
#include "codec.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "util.h"

#define ZSTD_MAX_LEVEL 19 /* 20..22 need "ultra" memory: not offered */
#define ZLIB_MAX_LEVEL 9

/*
 * The one place zstd error codes become errno values. A too-small output
 * buffer is -ENOSPC: when compressing it means "store raw"; decompression
 * turns it into -EBADMSG (the frame is longer than it claims).
 */
static int zstd_error(size_t rc)
{
	switch (ZSTD_getErrorCode(rc)) {
	case ZSTD_error_dstSize_tooSmall:
		return -ENOSPC;
	case ZSTD_error_memory_allocation:
	case ZSTD_error_workSpace_tooSmall:
		return -ENOMEM;
	case ZSTD_error_parameter_unsupported:
	case ZSTD_error_parameter_outOfBound:
	case ZSTD_error_parameter_combination_unsupported:
		return -EINVAL;
	default:
		/* corruption_detected, prefix_unknown, srcSize_wrong, ... */
		return -EBADMSG;
	}
}

/* The one place zlib return codes become errno values. */
static int zlib_error(int rc)
{
	switch (rc) {
	case Z_MEM_ERROR:
		return -ENOMEM;
	case Z_STREAM_ERROR:
		return -EINVAL;
	case Z_VERSION_ERROR:
		return -EIO;
	default:
		/* Z_DATA_ERROR, Z_NEED_DICT, Z_BUF_ERROR: a bad stream. */
		return -EBADMSG;
	}
}

/*
 * Per-thread zstd contexts, created on first use and freed by the key's
 * destructor when the thread exits. Only the owning thread touches them,
 * so they need no lock.
 */
struct zstd_tls {
	ZSTD_CCtx *cctx; /* compression context, NULL until first compress */
	ZSTD_DCtx *dctx; /* decompression context, NULL until first use */
};

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static pthread_key_t tls_key;
static int tls_status; /* 0, or the negative errno of pthread_key_create */

static void tls_free(void *p)
{
	struct zstd_tls *t = p;

	ZSTD_freeCCtx(t->cctx);
	ZSTD_freeDCtx(t->dctx);
	free(t);
}

static void tls_key_create(void)
{
	int rc = pthread_key_create(&tls_key, tls_free);

	/* EAGAIN means the process ran out of keys: a resource shortage. */
	tls_status = rc == 0 ? 0 : -ENOMEM;
}

static struct zstd_tls *tls_get(void)
{
	struct zstd_tls *t;

	if (pthread_once(&tls_once, tls_key_create) != 0 || tls_status != 0)
		return NULL;
	t = pthread_getspecific(tls_key);
	if (t != NULL)
		return t;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	if (pthread_setspecific(tls_key, t) != 0) {
		free(t);
		return NULL;
	}
	return t;
}

static ZSTD_CCtx *tls_cctx(void)
{
	struct zstd_tls *t = tls_get();

	if (t == NULL)
		return NULL;
	if (t->cctx == NULL)
		t->cctx = ZSTD_createCCtx();
	return t->cctx;
}

static ZSTD_DCtx *tls_dctx(void)
{
	struct zstd_tls *t = tls_get();

	if (t == NULL)
		return NULL;
	if (t->dctx == NULL)
		t->dctx = ZSTD_createDCtx();
	return t->dctx;
}

/* cap is already below len, so success means the chunk shrank. */
static ssize_t zstd_compress(int level, const void *src, size_t len, void *dst,
			     size_t cap)
{
	ZSTD_CCtx *cctx = tls_cctx();
	size_t rc;

	if (cctx == NULL)
		return -ENOMEM;
	/*
	 * The simple API resets the parameters from level each call and
	 * always records the content size in the frame header.
	 */
	rc = ZSTD_compressCCtx(cctx, dst, cap, src, len, level);
	if (ZSTD_isError(rc)) {
		int err = zstd_error(rc);

		/* A frame that does not fit is not an error: store raw. */
		return err == -EBADMSG ? -EIO : err;
	}
	return (ssize_t)rc;
}

static int zstd_decompress(const uint8_t *src, size_t len, void *dst,
			   size_t raw_len)
{
	unsigned long long fcs;
	ZSTD_DCtx *dctx;
	size_t rc;

	/* Exactly one ordinary frame: no skippable or legacy frames. */
	if (len < 4 || stash_le32dec(src) != ZSTD_MAGICNUMBER)
		return -EBADMSG;
	fcs = ZSTD_getFrameContentSize(src, len);
	if (fcs == ZSTD_CONTENTSIZE_ERROR)
		return -EBADMSG;
	if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != raw_len)
		return -EBADMSG;
	/* Rejects trailing bytes and a second frame; also a cut frame. */
	rc = ZSTD_findFrameCompressedSize(src, len);
	if (ZSTD_isError(rc) || rc != len)
		return -EBADMSG;
	dctx = tls_dctx();
	if (dctx == NULL)
		return -ENOMEM;
	/*
	 * Single-shot decoding writes at most raw_len bytes (the output
	 * buffer doubles as the window, so a hostile window size allocates
	 * nothing); a frame that would produce more fails.
	 */
	rc = ZSTD_decompressDCtx(dctx, dst, raw_len, src, len);
	if (ZSTD_isError(rc)) {
		int err = zstd_error(rc);

		return err == -ENOMEM ? err : -EBADMSG;
	}
	return rc == raw_len ? 0 : -EBADMSG;
}

/*
 * zlib counts in uInt. These refill avail_in / avail_out from the size_t
 * totals still to hand over, so any length works.
 */
static void zlib_feed(z_stream *zs, size_t *in_left, size_t *out_left)
{
	if (zs->avail_in == 0 && *in_left > 0) {
		zs->avail_in = (uInt)STASH_MIN(*in_left, (size_t)UINT_MAX);
		*in_left -= zs->avail_in;
	}
	if (zs->avail_out == 0 && *out_left > 0) {
		zs->avail_out = (uInt)STASH_MIN(*out_left, (size_t)UINT_MAX);
		*out_left -= zs->avail_out;
	}
}

static ssize_t zlib_compress(int level, const void *src, size_t len, void *dst,
			     size_t cap)
{
	z_stream zs = { 0 };
	size_t in_left = len, out_left = cap;
	ssize_t ret;
	int rc;

	rc = deflateInit(&zs, level);
	if (rc != Z_OK)
		return zlib_error(rc);
	zs.next_in = (Bytef *)src;
	zs.next_out = dst;
	for (;;) {
		zlib_feed(&zs, &in_left, &out_left);
		rc = deflate(&zs, in_left == 0 ? Z_FINISH : Z_NO_FLUSH);
		if (rc == Z_STREAM_END) {
			ret = (ssize_t)(cap - out_left - zs.avail_out);
			break;
		}
		/* No progress possible: the output is full. Store raw. */
		if (rc == Z_BUF_ERROR ||
		    (rc == Z_OK && zs.avail_out == 0 && out_left == 0)) {
			ret = -ENOSPC;
			break;
		}
		if (rc != Z_OK) {
			ret = zlib_error(rc);
			break;
		}
	}
	deflateEnd(&zs);
	return ret;
}

static int zlib_decompress(const void *src, size_t len, void *dst,
			   size_t raw_len)
{
	z_stream zs = { 0 };
	size_t in_left = len, out_left = raw_len;
	uint8_t none = 0;
	int ret = 0;
	int rc;

	rc = inflateInit(&zs);
	if (rc != Z_OK)
		return zlib_error(rc);
	zs.next_in = (Bytef *)src;
	/* inflate wants a non-NULL next_out even with no room. */
	zs.next_out = raw_len > 0 ? dst : &none;
	for (;;) {
		zlib_feed(&zs, &in_left, &out_left);
		/*
		 * With avail_out at zero inflate can still finish the
		 * stream (the Adler-32 trailer needs no room), and it
		 * never writes beyond avail_out.
		 */
		rc = inflate(&zs, Z_NO_FLUSH);
		if (rc == Z_STREAM_END)
			break;
		if (rc == Z_OK)
			continue;
		/*
		 * Z_BUF_ERROR is no progress: input ran out (truncated) or
		 * output did (the stream decodes to more than raw_len).
		 */
		ret = rc == Z_BUF_ERROR ? -EBADMSG : zlib_error(rc);
		goto out;
	}
	/* Exactly raw_len bytes out, every input byte used. */
	if (out_left != 0 || zs.avail_out != 0 || in_left != 0 ||
	    zs.avail_in != 0)
		ret = -EBADMSG;
out:
	inflateEnd(&zs);
	return ret;
}

/* Map level 0 to the default; -EINVAL when out of range. */
static int codec_level(int codec, int level)
{
	switch (codec) {
	case STASH_CODEC_ZSTD:
		if (level == 0)
			return STASH_CODEC_ZSTD_DEFAULT_LEVEL;
		return level >= 1 && level <= ZSTD_MAX_LEVEL ? level : -EINVAL;
	case STASH_CODEC_ZLIB:
		if (level == 0)
			return STASH_CODEC_ZLIB_DEFAULT_LEVEL;
		return level >= 1 && level <= ZLIB_MAX_LEVEL ? level : -EINVAL;
	case STASH_CODEC_RAW:
		return level == 0 ? 0 : -EINVAL;
	default:
		return -EINVAL;
	}
}

/*
 * RAW never shrinks anything, so it answers -ENOSPC ("store raw"), as does
 * any codec when the output would reach len bytes or would not fit in cap.
 */
ssize_t stash_codec_compress(int codec, int level, const void *src, size_t len,
			     void *dst, size_t cap)
{
	int lvl = codec_level(codec, level);

	if (lvl < 0)
		return lvl;
	if ((src == NULL && len > 0) || (dst == NULL && cap > 0))
		return -EINVAL;
	if (codec == STASH_CODEC_RAW || len == 0)
		return -ENOSPC;
	/* Strictly smaller than the input, or not worth it. */
	cap = STASH_MIN(cap, len - 1);
	cap = STASH_MIN(cap, (size_t)SSIZE_MAX);
	if (cap == 0)
		return -ENOSPC;
	if (codec == STASH_CODEC_ZSTD)
		return zstd_compress(lvl, src, len, dst, cap);
	return zlib_compress(lvl, src, len, dst, cap);
}

int stash_codec_decompress(int codec, const void *src, size_t len, void *dst,
			   size_t raw_len)
{
	if (codec != STASH_CODEC_RAW && codec != STASH_CODEC_ZSTD &&
	    codec != STASH_CODEC_ZLIB)
		return -EINVAL;
	if ((src == NULL && len > 0) || (dst == NULL && raw_len > 0))
		return -EINVAL;
	switch (codec) {
	case STASH_CODEC_RAW:
		if (len != raw_len)
			return -EBADMSG;
		if (len > 0)
			memcpy(dst, src, len);
		return 0;
	case STASH_CODEC_ZSTD:
		return zstd_decompress(src, len, dst, raw_len);
	default:
		return zlib_decompress(src, len, dst, raw_len);
	}
}

/*
 * A level is one or two decimal digits without a leading zero, nothing
 * else (no sign, no spaces); codec_level then checks the range.
 */
static int parse_level(const char *s, int *level)
{
	int v = 0;
	size_t i;

	if (s[0] == '0')
		return -EINVAL;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= 2 || s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (i == 0)
		return -EINVAL;
	*level = v;
	return 0;
}

int stash_codec_parse(const char *spec, int *codec, int *level)
{
	static const struct {
		const char *name;
		int codec;
	} names[] = {
		{ "none", STASH_CODEC_RAW },
		{ "zstd", STASH_CODEC_ZSTD },
		{ "zlib", STASH_CODEC_ZLIB },
	};
	const char *colon;
	size_t namelen;
	int lvl = 0;

	if (spec == NULL || codec == NULL || level == NULL)
		return -EINVAL;
	colon = strchr(spec, ':');
	namelen = colon ? (size_t)(colon - spec) : strlen(spec);
	for (size_t i = 0; i < STASH_ARRAY_SIZE(names); i++) {
		if (strlen(names[i].name) != namelen ||
		    memcmp(names[i].name, spec, namelen) != 0)
			continue;
		if (colon != NULL && (names[i].codec == STASH_CODEC_RAW ||
				      parse_level(colon + 1, &lvl) != 0 ||
				      codec_level(names[i].codec, lvl) < 0))
			return -EINVAL;
		*codec = names[i].codec;
		*level = lvl;
		return 0;
	}
	return -EINVAL;
}

const char *stash_codec_name(int codec)
{
	switch (codec) {
	case STASH_CODEC_RAW:
		return "none";
	case STASH_CODEC_ZSTD:
		return "zstd";
	case STASH_CODEC_ZLIB:
		return "zlib";
	default:
		return "?";
	}
}
