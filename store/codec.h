/*
 * codec.h - per-chunk compression: zstd (default) and zlib.
 *
 * Compression never grows a chunk: when the output would not be smaller
 * than the input, compress says so and the caller stores the chunk raw.
 * Thread-safe; compression contexts are cached per thread.
 */
#ifndef STASH_CODEC_H
#define STASH_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum stash_codec {
	STASH_CODEC_RAW = 0,  /* stored as is */
	STASH_CODEC_ZSTD = 1, /* zstd frame */
	STASH_CODEC_ZLIB = 2, /* zlib stream (RFC 1950) */
};

#define STASH_CODEC_ZSTD_DEFAULT_LEVEL 3
#define STASH_CODEC_ZLIB_DEFAULT_LEVEL 6

/*
 * Compress len bytes of src into dst (cap bytes) with codec at level (0 =
 * the codec's default). Returns the compressed length, -ENOSPC when the
 * result would not be smaller than len (store raw), -EINVAL for an unknown
 * codec or level, -ENOMEM.
 */
ssize_t stash_codec_compress(int codec, int level, const void *src, size_t len,
			     void *dst, size_t cap);

/*
 * Decompress len bytes of src into exactly raw_len bytes of dst. RAW copies.
 * -EBADMSG when the data is corrupt or does not decode to exactly raw_len
 * bytes; -EINVAL for an unknown codec.
 */
int stash_codec_decompress(int codec, const void *src, size_t len, void *dst,
			   size_t raw_len);

/*
 * Parse a codec spec: "zstd", "zstd:19", "zlib", "zlib:9", "none". 0 or
 * -EINVAL (unknown name, level out of range: zstd 1..19, zlib 1..9).
 */
int stash_codec_parse(const char *spec, int *codec, int *level);

/* "none", "zstd" or "zlib"; "?" for anything else. */
const char *stash_codec_name(int codec);

#endif
