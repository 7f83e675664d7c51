/*
 * banned.h - libc calls that are easy to misuse, turned into compile errors
 * (after git's banned.h). The build includes it in every store/, fs/ and
 * tools/ translation unit.
 */
#ifndef STASH_BANNED_H
#define STASH_BANNED_H

/* The headers that declare the banned functions come first, so their
 * prototypes are seen before the macros replace the names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STASH_BANNED(func) sorry_##func##_is_banned_in_stashfs

#undef strcpy
#define strcpy(x, y) STASH_BANNED(strcpy)
#undef strcat
#define strcat(x, y) STASH_BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) STASH_BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) STASH_BANNED(strncat)
#undef sprintf
#define sprintf(...) STASH_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) STASH_BANNED(vsprintf)
#undef gets
#define gets(x) STASH_BANNED(gets)
#undef strtok
#define strtok(x, y) STASH_BANNED(strtok)
#undef atoi
#define atoi(x) STASH_BANNED(atoi)

#endif
