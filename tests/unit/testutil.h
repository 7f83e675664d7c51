/*
 * testutil.h - small helpers shared by the unit tests: a scratch folder
 * under /tmp, removed with everything in it at the end.
 */
#ifndef STASH_TESTUTIL_H
#define STASH_TESTUTIL_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static inline int testutil_rm_one(const char *path, const struct stat *st,
				  int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove path and everything below it (symlinks are not followed). */
static inline void test_rmtree(const char *path)
{
	nftw(path, testutil_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
