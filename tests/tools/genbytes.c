/*
 * genbytes.c - write SIZE pseudo-random bytes from SEED to stdout, fast
 * (several GB/s: xorshift64*), so that tests can stream gigabytes of
 * incompressible, non-deduplicable data without /dev/urandom's cost.
 *
 *   genbytes SEED SIZE [MARK_AT MARK_FIFO]
 *
 * SIZE and MARK_AT take a K, M or G suffix (powers of 1024). With a mark,
 * once MARK_AT bytes have been written to stdout the program writes one
 * line to MARK_FIFO (blocking until someone reads it), then goes on: a
 * test waits on the FIFO to know that a copy is under way, without sleep.
 * The same SEED always gives the same bytes. Not a cryptographic
 * generator; not meant to be.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUF_BYTES (1u << 20)

static uint64_t parse_size(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		goto bad;
	switch (*end) {
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'G':
		v <<= 30;
		end++;
		break;
	default:
		break;
	}
	if (*end)
		goto bad;
	return v;
bad:
	fprintf(stderr, "genbytes: bad size: %s\n", s);
	exit(2);
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void mark(const char *fifo)
{
	int fd = open(fifo, O_WRONLY | O_CLOEXEC);

	if (fd < 0 || write_all(fd, "mark\n", 5) < 0) {
		fprintf(stderr, "genbytes: %s: %s\n", fifo, strerror(errno));
		exit(1);
	}
	close(fd);
}

int main(int argc, char **argv)
{
	uint64_t x, left, mark_at = 0, done = 0;
	const char *fifo = NULL;
	uint64_t *buf;
	int ret;

	if (argc != 3 && argc != 5) {
		fprintf(stderr,
			"usage: genbytes SEED SIZE [MARK_AT MARK_FIFO]\n");
		return 2;
	}
	x = parse_size(argv[1]) * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
	if (!x)
		x = 1;
	left = parse_size(argv[2]);
	if (argc == 5) {
		mark_at = parse_size(argv[3]);
		fifo = argv[4];
	}
	buf = malloc(BUF_BYTES);
	if (!buf)
		return 1;
	while (left) {
		size_t n = left < BUF_BYTES ? (size_t)left : BUF_BYTES;

		for (size_t i = 0; i < BUF_BYTES / 8; i++) {
			x ^= x >> 12;
			x ^= x << 25;
			x ^= x >> 27;
			buf[i] = x * 0x2545F4914F6CDD1Dull;
		}
		if (fifo && done + n > mark_at && done <= mark_at) {
			/* Write up to the mark, signal, then the rest. */
			size_t first = (size_t)(mark_at - done);

			ret = write_all(1, buf, first);
			if (!ret)
				mark(fifo);
			if (!ret)
				ret = write_all(1, (char *)buf + first,
						n - first);
			fifo = NULL;
		} else {
			ret = write_all(1, buf, n);
		}
		if (ret) {
			if (ret != -EPIPE)
				fprintf(stderr, "genbytes: write: %s\n",
					strerror(-ret));
			return 1;
		}
		done += n;
		left -= n;
	}
	if (fifo) /* the mark was at or past the end */
		mark(fifo);
	free(buf);
	return 0;
}
