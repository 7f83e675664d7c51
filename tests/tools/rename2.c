/*
 * rename2.c - renameat2(2) from the shell, for the tests:
 *   rename2 noreplace|exchange|plain OLD NEW
 * Exits 0 on success; otherwise prints the errno name (EEXIST, ENOENT...)
 * on stdout and exits 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	unsigned flags = 0;

	if (argc != 4) {
		fprintf(stderr, "usage: rename2 noreplace|exchange|plain OLD NEW\n");
		return 2;
	}
	if (!strcmp(argv[1], "noreplace"))
		flags = RENAME_NOREPLACE;
	else if (!strcmp(argv[1], "exchange"))
		flags = RENAME_EXCHANGE;
	else if (strcmp(argv[1], "plain"))
		return 2;
	if (renameat2(AT_FDCWD, argv[2], AT_FDCWD, argv[3], flags) == 0)
		return 0;
	printf("%s\n", strerrorname_np(errno));
	return 1;
}
