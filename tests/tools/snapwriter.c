/*
 * snapwriter.c - a writer whose every flushed state is known, and the
 * check that a file holds one of those states, for the snapshot tests.
 *
 *   snapwriter init MODE DIR N          make DIR/<M>0 .. DIR/<M>N-1 in
 *                                       their state 0
 *   snapwriter run MODE DIR N LOG       rounds k = 1, 2, ... until killed:
 *                                       for each file i, one open, write,
 *                                       close; then the line "i k" is
 *                                       appended to LOG (one write)
 *   snapwriter check MODE FILE I LO HI  FILE must be file I's state k for
 *                                       some LO <= k <= HI; prints k
 *
 * MODE "append" (files a<i>): state k is the blocks 1..k one after the
 * other, block k from 1 byte to 64 KiB; state 0 is empty. Each round
 * opens with O_APPEND and writes one block.
 * MODE "rewrite" (files r<i>): state k is 256 KiB starting with i and k
 * (8 bytes each, little-endian); each round opens without O_TRUNC and
 * writes it whole over the previous one, so a round is one commit.
 *
 * A line in LOG means the close of that round has returned: what the
 * round wrote is committed. The writer pauses 10 ms after each close, so
 * that a run of some seconds writes tens of megabytes, not gigabytes. Exits 0
 * (check: the file is a known state in range), 1 otherwise with the reason on
 * stderr, 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REWRITE_LEN (256u * 1024u)
#define BLOCK_MAX (64u * 1024u)
#define PAUSE_US 10000 /* between two closes: bounds the bytes written */

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* Fill buf with bytes from the seed (xorshift64*). */
static void fill(uint8_t *buf, size_t len, uint64_t seed)
{
	uint64_t x = mix(seed) | 1;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t v;

		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		v = x * 0x2545F4914F6CDD1Dull;
		memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
	}
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int b = 0; b < 8; b++)
		p[b] = (uint8_t)(v >> (8 * b));
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int b = 7; b >= 0; b--)
		v = v << 8 | p[b];
	return v;
}

static size_t block_len(uint64_t i, uint64_t k)
{
	return (size_t)(mix(i << 32 ^ k ^ 0x5eed) % BLOCK_MAX) + 1;
}

/* Append block k of file i into buf (BLOCK_MAX bytes); its length. */
static size_t block(uint8_t *buf, uint64_t i, uint64_t k)
{
	size_t len = block_len(i, k);

	fill(buf, len, i << 40 ^ k);
	return len;
}

/* Rewrite state k of file i into buf (REWRITE_LEN bytes). */
static void rewrite_state(uint8_t *buf, uint64_t i, uint64_t k)
{
	fill(buf, REWRITE_LEN, i << 40 ^ k ^ 0xabcdef);
	put64(buf, i);
	put64(buf + 8, k);
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void path_of(char *out, size_t size, const char *dir, int append,
		    uint64_t i)
{
	snprintf(out, size, "%s/%c%" PRIu64, dir, append ? 'a' : 'r', i);
}

/* One round for file i: open, write, close. */
static int round_one(const char *dir, int append, uint64_t i, uint64_t k,
		     uint8_t *buf)
{
	char path[4096];
	size_t len;
	int fd;

	path_of(path, sizeof(path), dir, append, i);
	if (append) {
		len = block(buf, i, k);
		fd = open(path, O_WRONLY | O_APPEND);
	} else {
		rewrite_state(buf, i, k);
		len = REWRITE_LEN;
		fd = open(path, O_WRONLY);
	}
	if (fd < 0 || write_all(fd, buf, len) || close(fd)) {
		fprintf(stderr, "snapwriter: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int do_init(const char *dir, int append, uint64_t n, uint8_t *buf)
{
	for (uint64_t i = 0; i < n; i++) {
		char path[4096];
		int fd;

		path_of(path, sizeof(path), dir, append, i);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0 && !append) {
			rewrite_state(buf, i, 0);
			if (write_all(fd, buf, REWRITE_LEN)) {
				close(fd);
				fd = -1;
			}
		}
		if (fd < 0 || close(fd)) {
			fprintf(stderr, "snapwriter: %s: %s\n", path,
				strerror(errno));
			return 1;
		}
	}
	return 0;
}

static int do_run(const char *dir, int append, uint64_t n, const char *log,
		  uint8_t *buf)
{
	int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

	if (lfd < 0) {
		fprintf(stderr, "snapwriter: %s: %s\n", log, strerror(errno));
		return 1;
	}
	for (uint64_t k = 1;; k++) {
		for (uint64_t i = 0; i < n; i++) {
			char line[64];
			int len;

			if (round_one(dir, append, i, k, buf))
				return 1;
			len = snprintf(line, sizeof(line),
				       "%" PRIu64 " %" PRIu64 "\n", i, k);
			if (write_all(lfd, (uint8_t *)line, (size_t)len)) {
				fprintf(stderr, "snapwriter: %s: %s\n", log,
					strerror(errno));
				return 1;
			}
			usleep(PAUSE_US);
		}
	}
}

static uint8_t *slurp(const char *path, size_t *len)
{
	struct stat sb;
	uint8_t *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &sb)) {
		fprintf(stderr, "snapwriter: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf)
		exit(1);
	while (got < (size_t)sb.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)sb.st_size - got);

		if (n <= 0) {
			fprintf(stderr, "snapwriter: %s: short read\n", path);
			exit(1);
		}
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return buf;
}

static int do_check(const char *path, int append, uint64_t i, uint64_t lo,
		    uint64_t hi, uint8_t *buf)
{
	size_t len, off = 0;
	uint8_t *got = slurp(path, &len);
	uint64_t k = 0;

	if (append) {
		while (off < len) {
			size_t bl = block(buf, i, k + 1);

			if (off + bl > len || memcmp(got + off, buf, bl)) {
				fprintf(stderr,
					"snapwriter: %s: %zu bytes: block %" PRIu64
					" at %zu is not whole or differs\n",
					path, len, k + 1, off);
				return 1;
			}
			off += bl;
			k++;
		}
	} else {
		if (len != REWRITE_LEN) {
			fprintf(stderr, "snapwriter: %s: %zu bytes, not %u\n",
				path, len, REWRITE_LEN);
			return 1;
		}
		k = get64(got + 8);
		rewrite_state(buf, i, k);
		if (get64(got) != i || memcmp(got, buf, len)) {
			fprintf(stderr,
				"snapwriter: %s: not a state of file %" PRIu64
				"\n",
				path, i);
			return 1;
		}
	}
	free(got);
	if (k < lo || k > hi) {
		fprintf(stderr,
			"snapwriter: %s: state %" PRIu64 ", not in [%" PRIu64
			", %" PRIu64 "]\n",
			path, k, lo, hi);
		return 1;
	}
	printf("%" PRIu64 "\n", k);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: snapwriter init MODE DIR N\n"
			"       snapwriter run MODE DIR N LOG\n"
			"       snapwriter check MODE FILE I LO HI\n"
			"MODE: append | rewrite\n");
	return 2;
}

int main(int argc, char **argv)
{
	static uint8_t buf[REWRITE_LEN > BLOCK_MAX ? REWRITE_LEN : BLOCK_MAX];
	int append;

	if (argc < 4)
		return usage();
	if (!strcmp(argv[2], "append"))
		append = 1;
	else if (!strcmp(argv[2], "rewrite"))
		append = 0;
	else
		return usage();
	if (!strcmp(argv[1], "init") && argc == 5)
		return do_init(argv[3], append, strtoull(argv[4], NULL, 0),
			       buf);
	if (!strcmp(argv[1], "run") && argc == 6)
		return do_run(argv[3], append, strtoull(argv[4], NULL, 0),
			      argv[5], buf);
	if (!strcmp(argv[1], "check") && argc == 7)
		return do_check(argv[3], append, strtoull(argv[4], NULL, 0),
				strtoull(argv[5], NULL, 0),
				strtoull(argv[6], NULL, 0), buf);
	return usage();
}
