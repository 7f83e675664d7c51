/*
 * randops.c - seeded random file operations on a mount, checked against
 * the same operations on reference files on a local disk.
 *
 *   randops [-s SEED] [-n OPS] [-f FILES] [-c EVERY] [-v] MNTDIR REFDIR
 *
 * FILES files (default 6) named rNN are created in both folders. Each
 * step picks a file and an operation: a write at a random offset (inside
 * the file, anywhere up to a few MiB, or past the end to leave a hole),
 * an append, a truncate that shrinks or grows, a read, an fsync, a close
 * and reopen, an open with O_TRUNC, or a burst (a 1-2 MiB write at the
 * end, then writes or a truncate into it with no read in between, so
 * they meet chunks still with the daemon's workers). Sizes run from 1
 * byte to 1 MiB, log-uniform; data is random, zeros, a repeated byte,
 * text, or a copy of another file's bytes (so that chunks deduplicate).
 * Even-numbered files stay open across steps, odd ones are opened and
 * closed around each step (each close commits); mount descriptors are
 * sometimes O_DIRECT, sometimes O_APPEND. r00 is big (up to 32 MiB) and
 * rarely truncated, synced or reopened, so that more than the daemon's
 * per-file limit of dirty bytes (16 MiB) piles up in it.
 *
 * After every step the size is compared (fstat and stat) and the touched
 * range is read back through an O_DIRECT descriptor (so it comes from
 * the daemon, not the page cache; files kept open keep theirs, since a
 * close commits) and compared; every EVERY steps (default 50) and at the
 * end every whole file is compared, one byte past its end included. On
 * a mismatch it prints the seed, the step number, the operation with its
 * offsets, the first differing byte and the last steps, and exits 1.
 * The same seed gives the same steps: rerun with -s SEED or STASH_SEED
 * (-v prints every step).
 *
 * It does not compare times, modes or xattrs, and runs one thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILES 32
#define MAX_IO (1u << 20)	/* largest write or read, bytes */
#define MAX_OFF (4u << 20)	/* writes start below this */
#define MAX_SIZE (6u << 20)	/* files never grow past this */
#define BIG_MAX_OFF (24u << 20) /* the same for the big file, r00 */
#define BIG_MAX_SIZE (32u << 20)
#define BUF_BYTES (BIG_MAX_SIZE + (2u << 20)) /* > any file + MAX_IO */
#define HISTORY 16			      /* steps printed on a failure */
#define DESC_LEN 512

/* ---- xorshift64* ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, n); n > 0. */
static uint64_t below(uint64_t n)
{
	return rnd() % n;
}

/* Log-uniform in [1, max]. */
static uint64_t logsize(uint64_t max)
{
	unsigned bits = 0;
	uint64_t v;

	while ((1ull << bits) < max)
		bits++;
	v = 1 + below(1ull << below(bits + 1));
	return v > max ? max : v;
}

/* ---- state ---- */

struct tfile {
	char mpath[PATH_MAX]; /* on the mount */
	char rpath[PATH_MAX]; /* reference on local disk */
	bool keep_open;	      /* stays open across steps */
	bool big;	      /* rarely synced, up to BIG_MAX_SIZE */
	uint64_t max_off;     /* writes start below this */
	uint64_t max_size;    /* the file never grows past this */
	int mfd;	      /* mount descriptor, -1 when closed */
	int rfd;	      /* reference descriptor, always open */
	int mflags;	      /* open flags of mfd */
	int dfd;	      /* keep_open: an O_DIRECT reader, open with
				 mfd (a close would commit the file) */
};

static struct tfile files[MAX_FILES];
static unsigned nfiles = 6;
static uint64_t seed;
static unsigned long step;
static char cur[DESC_LEN];
static char history[HISTORY][DESC_LEN];
static bool verbose;
static uint8_t *wbuf, *mbuf, *rbuf; /* BUF_BYTES each, page-aligned */

static void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "randops: FAIL at step %lu: %s\n  ", step, cur);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n  last steps:\n");
	for (unsigned long i = step >= HISTORY ? step - HISTORY + 1 : 0;
	     i < step; i++)
		fprintf(stderr, "    %5lu %s\n", i, history[i % HISTORY]);
	fprintf(stderr,
		"  rerun: STASH_SEED=%" PRIu64 " (randops -s %" PRIu64
		" -n %lu)\n",
		seed, seed, step + 1);
	exit(1);
}

static void describe(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cur, sizeof(cur), fmt, ap);
	va_end(ap);
	snprintf(history[step % HISTORY], DESC_LEN, "%s", cur);
	if (verbose)
		fprintf(stderr, "%5lu %s\n", step, cur);
}

static const char *flag_names(int flags)
{
	static char s[64];

	snprintf(s, sizeof(s), "%s%s%s", flags & O_DIRECT ? " O_DIRECT" : "",
		 flags & O_APPEND ? " O_APPEND" : "",
		 flags & O_TRUNC ? " O_TRUNC" : "");
	return s;
}

/* ---- I/O that either does all of it or fails the run ---- */

static void pwrite_all(int fd, const void *buf, size_t len, off_t off,
		       const char *what)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n <= 0)
			fail("pwrite %s at %lld: %s", what, (long long)off,
			     n ? strerror(errno) : "wrote 0 bytes");
		p += n;
		off += n;
		len -= (size_t)n;
	}
}

static void append_all(int fd, const void *buf, size_t len, const char *what)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			fail("append to %s: %s", what,
			     n ? strerror(errno) : "wrote 0 bytes");
		p += n;
		len -= (size_t)n;
	}
}

/* Read up to len bytes at off; returns the count (short only at EOF). */
static size_t pread_full(int fd, void *buf, size_t len, off_t off,
			 const char *what)
{
	uint8_t *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, p + got, len - got, off + (off_t)got);

		if (n < 0)
			fail("pread %s at %lld: %s", what,
			     (long long)off + (long long)got, strerror(errno));
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return got;
}

static uint64_t ref_size(struct tfile *t)
{
	struct stat sb;

	if (fstat(t->rfd, &sb) < 0)
		fail("fstat %s: %s", t->rpath, strerror(errno));
	return (uint64_t)sb.st_size;
}

static void mount_open(struct tfile *t, int extra)
{
	t->mflags = O_RDWR | extra;
	t->mfd = open(t->mpath, t->mflags | O_CLOEXEC);
	if (t->mfd < 0)
		fail("open %s%s: %s", t->mpath, flag_names(t->mflags),
		     strerror(errno));
	if (t->keep_open) {
		t->dfd = open(t->mpath, O_RDONLY | O_DIRECT | O_CLOEXEC);
		if (t->dfd < 0)
			fail("open %s O_DIRECT: %s", t->mpath, strerror(errno));
	}
}

static void mount_close(struct tfile *t)
{
	if (t->mfd >= 0 && close(t->mfd) < 0)
		fail("close %s: %s", t->mpath, strerror(errno));
	if (t->dfd >= 0 && close(t->dfd) < 0)
		fail("close %s: %s", t->mpath, strerror(errno));
	t->mfd = -1;
	t->dfd = -1;
}

/* Flags for a new mount descriptor: mostly plain. */
static int random_flags(void)
{
	int flags = 0;

	if (below(4) == 0)
		flags |= O_DIRECT;
	if (below(6) == 0)
		flags |= O_APPEND;
	return flags;
}

/* ---- checks ---- */

static void check_size(struct tfile *t)
{
	uint64_t want = ref_size(t);
	struct stat sb;

	if (t->mfd >= 0) {
		if (fstat(t->mfd, &sb) < 0)
			fail("fstat %s: %s", t->mpath, strerror(errno));
		if ((uint64_t)sb.st_size != want)
			fail("size of %s by fstat: %lld, want %" PRIu64,
			     t->mpath, (long long)sb.st_size, want);
	}
	if (stat(t->mpath, &sb) < 0)
		fail("stat %s: %s", t->mpath, strerror(errno));
	if ((uint64_t)sb.st_size != want)
		fail("size of %s by stat: %lld, want %" PRIu64, t->mpath,
		     (long long)sb.st_size, want);
}

static void compare_bufs(struct tfile *t, const uint8_t *m, size_t mlen,
			 const uint8_t *r, size_t rlen, uint64_t off,
			 const char *how)
{
	size_t n = mlen < rlen ? mlen : rlen, i;

	for (i = 0; i < n && m[i] == r[i]; i++)
		;
	if (i < n) {
		size_t j = i;

		while (j < n && m[j] != r[j])
			j++;
		fail("%s: %s differs at offset %" PRIu64
		     " (mount 0x%02x, reference 0x%02x; %zu bytes differ from"
		     " there on; range read %" PRIu64 "+%zu)",
		     how, t->mpath, off + i, m[i], r[i], j - i, off, n);
	}
	if (mlen != rlen)
		fail("%s: %s: read %zu bytes at %" PRIu64 ", reference has %zu",
		     how, t->mpath, mlen, off, rlen);
}

/*
 * Read [off, off+len) of the mount file through an O_DIRECT descriptor
 * (so from the daemon) and of the reference, and compare. Files kept
 * open have one; others get a new one, whose close commits the file.
 */
static void check_range(struct tfile *t, uint64_t off, uint64_t len,
			const char *how)
{
	size_t m, r;
	int fd;

	if (len > BUF_BYTES)
		len = BUF_BYTES;
	fd = t->dfd >= 0 ? t->dfd
			 : open(t->mpath, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		fail("open %s O_DIRECT: %s", t->mpath, strerror(errno));
	m = pread_full(fd, mbuf, len, (off_t)off, t->mpath);
	if (fd != t->dfd && close(fd) < 0)
		fail("close %s: %s", t->mpath, strerror(errno));
	r = pread_full(t->rfd, rbuf, len, (off_t)off, t->rpath);
	compare_bufs(t, mbuf, m, rbuf, r, off, how);
}

static void check_whole(struct tfile *t, const char *how)
{
	check_size(t);
	/* One byte more than the file holds: extra bytes show too. */
	check_range(t, 0, ref_size(t) + 1, how);
}

static void check_all(const char *how)
{
	for (unsigned i = 0; i < nfiles; i++)
		check_whole(&files[i], how);
}

/* ---- data ---- */

/* Fill wbuf[0, len) with data of a random kind. */
static const char *fill(unsigned self, size_t len)
{
	uint64_t kind = below(20), x;
	size_t i;

	if (kind < 9) {
		for (i = 0; i + 8 <= len; i += 8) {
			x = rnd();
			memcpy(wbuf + i, &x, 8);
		}
		for (x = rnd(); i < len; i++, x >>= 8)
			wbuf[i] = (uint8_t)x;
		return "random";
	}
	if (kind < 11) {
		memset(wbuf, 0, len);
		return "zeros";
	}
	if (kind < 13) {
		memset(wbuf, (int)(1 + below(255)), len);
		return "one byte";
	}
	if (kind < 16) {
		static const char words[] = "the quick brown fox jumps over "
					    "a lazy dog; stash crawl json ";

		for (i = 0; i < len; i++)
			wbuf[i] = (uint8_t)words[below(sizeof(words) - 1)];
		return "text";
	}
	/* A copy of another file's bytes: its chunks may be reused. */
	{
		struct tfile *o = &files[below(nfiles)];
		uint64_t osize = ref_size(o), ooff;
		size_t got = 0;

		(void)self;
		if (osize > 0) {
			ooff = below(osize);
			got = pread_full(o->rfd, wbuf, len, (off_t)ooff,
					 o->rpath);
		}
		/* Past its end: zeros, as a copy of a hole would be. */
		memset(wbuf + got, 0, len - got);
		return "copy";
	}
}

/* ---- operations ---- */

static void op_write(unsigned idx, struct tfile *t)
{
	uint64_t size = ref_size(t), off, len;
	uint64_t where = below(10);
	const char *kind;

	if (where < 5 && size > 0)
		off = below(size); /* inside */
	else if (where < 8)
		off = below(t->max_off); /* anywhere */
	else
		off = size + below(MAX_IO); /* past EOF: a hole */
	if (off > t->max_off)
		off = t->max_off;
	len = logsize(MAX_IO);
	if (t->big && below(2))
		len = 1 + below(MAX_IO); /* larger writes pile up faster */
	if (off + len > t->max_size)
		len = t->max_size - off;
	if (t->mfd >= 0 && (t->mflags & O_APPEND)) {
		/* An O_APPEND descriptor writes at the end whatever off. */
		off = size;
		if (off + len > t->max_size)
			len = off < t->max_size ? t->max_size - off : 1;
	}
	kind = fill(idx, len);
	describe("write %s off=%" PRIu64 " len=%" PRIu64 " (%s, size %" PRIu64
		 "%s%s)",
		 t->mpath + strlen(t->mpath) - 3, off, len, kind, size,
		 off > size ? ", makes a hole" : "",
		 t->mfd >= 0 ? flag_names(t->mflags) : "");
	if (t->mfd >= 0 && (t->mflags & O_APPEND))
		append_all(t->mfd, wbuf, len, t->mpath);
	else
		pwrite_all(t->mfd, wbuf, len, (off_t)off, t->mpath);
	pwrite_all(t->rfd, wbuf, len, (off_t)off, t->rpath);
	check_size(t);
	/* The hole before the write reads as zeros too. */
	if (off > size)
		check_range(t, size, off + len - size, "read-back");
	else
		check_range(t, off, len, "read-back");
}

static void op_append(unsigned idx, struct tfile *t)
{
	uint64_t size = ref_size(t), len = logsize(MAX_IO);
	const char *kind;

	if (size + len > t->max_size)
		len = size < t->max_size ? t->max_size - size : 0;
	if (len == 0)
		len = 1; /* rare: a file at its maximum grows by one byte */
	kind = fill(idx, len);
	describe("append %s off=%" PRIu64 " len=%" PRIu64 " (%s%s)",
		 t->mpath + strlen(t->mpath) - 3, size, len, kind,
		 flag_names(t->mflags));
	if (t->mflags & O_APPEND)
		append_all(t->mfd, wbuf, len, t->mpath);
	else
		pwrite_all(t->mfd, wbuf, len, (off_t)size, t->mpath);
	pwrite_all(t->rfd, wbuf, len, (off_t)size, t->rpath);
	check_size(t);
	check_range(t, size, len, "read-back");
}

static void op_truncate(struct tfile *t, bool grow)
{
	uint64_t size = ref_size(t), to;
	bool by_path = t->mfd < 0 || below(3) == 0;

	if (grow)
		to = size + logsize(2 * MAX_IO);
	else
		to = size ? below(size) : 0;
	if (to > t->max_size)
		to = t->max_size;
	describe("truncate %s from %" PRIu64 " to %" PRIu64 " (%s, %s)",
		 t->mpath + strlen(t->mpath) - 3, size, to,
		 to >= size ? "grow" : "shrink",
		 by_path ? "truncate(path)" : "ftruncate");
	if (by_path ? truncate(t->mpath, (off_t)to)
		    : ftruncate(t->mfd, (off_t)to))
		fail("truncate %s to %" PRIu64 ": %s", t->mpath, to,
		     strerror(errno));
	if (ftruncate(t->rfd, (off_t)to))
		fail("truncate %s: %s", t->rpath, strerror(errno));
	check_size(t);
	/* Around the new end, and all of a grown part (zeros). */
	if (to > size)
		check_range(t, size > 4096 ? size - 4096 : 0, to - size + 8192,
			    "read-back");
	else
		check_range(t, to > 65536 ? to - 65536 : 0, 131072,
			    "read-back");
}

/*
 * A write of 1-2 MiB at the end, long enough to be cut into chunks at
 * once, then up to four writes or a truncate into it with no read in
 * between: they meet chunks still with the workers, or done but not yet
 * collected.
 */
static void op_burst(unsigned idx, struct tfile *t)
{
	uint64_t size = ref_size(t), len = (1u << 20) + below(1u << 20);
	uint64_t start, off, n, to;
	unsigned k = 1 + (unsigned)below(4);
	size_t at;

	if (t->mflags & O_APPEND) {
		op_append(idx, t); /* an O_APPEND descriptor cannot seek */
		return;
	}
	start = size + len > t->max_size ? t->max_size - len : size;
	fill(idx, len);
	at = (size_t)snprintf(cur, DESC_LEN,
			      "burst %s: write off=%" PRIu64 " len=%" PRIu64
			      " (size %" PRIu64 "%s)",
			      t->mpath + strlen(t->mpath) - 3, start, len, size,
			      flag_names(t->mflags));
	pwrite_all(t->mfd, wbuf, len, (off_t)start, t->mpath);
	pwrite_all(t->rfd, wbuf, len, (off_t)start, t->rpath);
	for (unsigned i = 0; i < k; i++) {
		off = start + below(len);
		if (i == k - 1 && below(4) == 0) {
			to = off;
			at += (size_t)snprintf(cur + at, DESC_LEN - at,
					       ", truncate to %" PRIu64, to);
			if (ftruncate(t->mfd, (off_t)to) ||
			    ftruncate(t->rfd, (off_t)to))
				fail("truncate %s to %" PRIu64 ": %s", t->mpath,
				     to, strerror(errno));
			break;
		}
		n = logsize(128 << 10);
		fill(idx, n);
		at += (size_t)snprintf(cur + at, DESC_LEN - at,
				       ", write off=%" PRIu64 " len=%" PRIu64,
				       off, n);
		pwrite_all(t->mfd, wbuf, n, (off_t)off, t->mpath);
		pwrite_all(t->rfd, wbuf, n, (off_t)off, t->rpath);
	}
	snprintf(history[step % HISTORY], DESC_LEN, "%s", cur);
	if (verbose)
		fprintf(stderr, "%5lu %s\n", step, cur);
	check_size(t);
	check_range(t, start, len + 256 * 1024, "read-back");
}

/* A read through the step's own descriptor (page cache and all). */
static void op_read(struct tfile *t)
{
	uint64_t size = ref_size(t), off, len = logsize(MAX_IO);
	size_t m, r;

	off = below(size + 65536); /* sometimes past the end */
	describe("read %s off=%" PRIu64 " len=%" PRIu64 " (size %" PRIu64 "%s)",
		 t->mpath + strlen(t->mpath) - 3, off, len, size,
		 flag_names(t->mflags));
	m = pread_full(t->mfd, mbuf, len, (off_t)off, t->mpath);
	r = pread_full(t->rfd, rbuf, len, (off_t)off, t->rpath);
	compare_bufs(t, mbuf, m, rbuf, r, off, "read");
}

static void op_fsync(struct tfile *t)
{
	describe("fsync %s", t->mpath + strlen(t->mpath) - 3);
	if (fsync(t->mfd) < 0)
		fail("fsync %s: %s", t->mpath, strerror(errno));
	check_size(t);
}

static void op_reopen(struct tfile *t, int flags)
{
	describe("close and reopen %s%s", t->mpath + strlen(t->mpath) - 3,
		 flag_names(flags));
	mount_close(t);
	mount_open(t, flags);
	if (flags & O_TRUNC) {
		if (ftruncate(t->rfd, 0) < 0)
			fail("truncate %s: %s", t->rpath, strerror(errno));
		t->mflags &= ~O_TRUNC;
	}
	check_size(t);
}

static void one_step(void)
{
	/* The big file gets a third of the steps. */
	unsigned idx = nfiles == 1 || below(3) == 0
			       ? 0
			       : 1 + (unsigned)below(nfiles - 1);
	struct tfile *t = &files[idx];
	uint64_t r = below(100);
	int flags = random_flags();

	/*
	 * The big file is rarely truncated, synced or reopened (each
	 * commits it): its dirty bytes pile up past what the daemon holds
	 * per file before it chunks them.
	 */
	if (t->big && r >= 45 && !(r >= 59 && r < 78) && below(50))
		r = below(30);
	/* Files not kept open get a descriptor for this step only. */
	if (t->mfd < 0) {
		if (r == 99) {
			op_reopen(t, flags | O_TRUNC);
			goto out;
		}
		mount_open(t, flags);
	}
	if (r < 30)
		op_write(idx, t);
	else if (r < 45)
		op_append(idx, t);
	else if (r < 53)
		op_truncate(t, false);
	else if (r < 59)
		op_truncate(t, true);
	else if (r < 74)
		op_read(t);
	else if (r < 78)
		op_burst(idx, t);
	else if (r < 90)
		op_fsync(t);
	else if (r < 99)
		op_reopen(t, flags);
	else
		op_reopen(t, O_TRUNC);
out:
	if (!t->keep_open)
		mount_close(t);
}

/* ---- main ---- */

static void usage(void)
{
	fprintf(stderr, "usage: randops [-s SEED] [-n OPS] [-f FILES]"
			" [-c EVERY] [-v] MNTDIR REFDIR\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned long ops = 3000, every = 50;
	const char *env = getenv("STASH_SEED");
	bool have_seed = false;
	struct timeval tv;
	int c;

	while ((c = getopt(argc, argv, "s:n:f:c:v")) != -1) {
		switch (c) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			have_seed = true;
			break;
		case 'n':
			ops = strtoul(optarg, NULL, 0);
			break;
		case 'f':
			nfiles = (unsigned)strtoul(optarg, NULL, 0);
			if (nfiles < 1 || nfiles > MAX_FILES)
				usage();
			break;
		case 'c':
			every = strtoul(optarg, NULL, 0);
			break;
		case 'v':
			verbose = true;
			break;
		default:
			usage();
		}
	}
	if (optind + 2 != argc)
		usage();
	if (!have_seed && env && *env) {
		seed = strtoull(env, NULL, 0);
		have_seed = true;
	}
	if (!have_seed) {
		gettimeofday(&tv, NULL);
		seed = ((uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec) ^
		       ((uint64_t)getpid() << 32);
	}
	printf("randops: seed %" PRIu64 " (rerun with STASH_SEED=%" PRIu64
	       "), %lu steps on %u files\n",
	       seed, seed, ops, nfiles);
	fflush(stdout);
	rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
	if (!rng_state)
		rng_state = 1;

	if (posix_memalign((void **)&wbuf, 4096, BUF_BYTES) ||
	    posix_memalign((void **)&mbuf, 4096, BUF_BYTES) ||
	    posix_memalign((void **)&rbuf, 4096, BUF_BYTES)) {
		fprintf(stderr, "randops: out of memory\n");
		return 1;
	}
	snprintf(cur, sizeof(cur), "set-up");
	for (unsigned i = 0; i < nfiles; i++) {
		struct tfile *t = &files[i];

		snprintf(t->mpath, sizeof(t->mpath), "%s/r%02u", argv[optind],
			 i);
		snprintf(t->rpath, sizeof(t->rpath), "%s/r%02u",
			 argv[optind + 1], i);
		t->keep_open = i % 2 == 0;
		t->big = i == 0;
		t->max_off = t->big ? BIG_MAX_OFF : MAX_OFF;
		t->max_size = t->big ? BIG_MAX_SIZE : MAX_SIZE;
		t->mfd = open(t->mpath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
			      0644);
		if (t->mfd < 0)
			fail("create %s: %s", t->mpath, strerror(errno));
		t->mflags = O_RDWR;
		t->dfd = -1;
		if (t->keep_open) {
			t->dfd =
				open(t->mpath, O_RDONLY | O_DIRECT | O_CLOEXEC);
			if (t->dfd < 0)
				fail("open %s O_DIRECT: %s", t->mpath,
				     strerror(errno));
		}
		t->rfd = open(t->rpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
			      0644);
		if (t->rfd < 0)
			fail("create %s: %s", t->rpath, strerror(errno));
		if (!t->keep_open)
			mount_close(t);
	}
	for (step = 0; step < ops; step++) {
		one_step();
		if (every && (step + 1) % every == 0) {
			snprintf(cur, sizeof(cur),
				 "whole-file check after %lu"
				 " steps",
				 step + 1);
			check_all("whole-file check");
		}
	}
	snprintf(cur, sizeof(cur), "final check with files open");
	check_all("final check");
	for (unsigned i = 0; i < nfiles; i++) {
		mount_close(&files[i]);
		if (fsync(files[i].rfd) < 0 || close(files[i].rfd) < 0)
			fail("close %s: %s", files[i].rpath, strerror(errno));
		files[i].rfd = open(files[i].rpath, O_RDONLY | O_CLOEXEC);
		if (files[i].rfd < 0)
			fail("open %s: %s", files[i].rpath, strerror(errno));
	}
	snprintf(cur, sizeof(cur), "final check after closing");
	check_all("final check");
	printf("randops: %lu steps ok (seed %" PRIu64 ")\n", ops, seed);
	return 0;
}
