/*
 * catalog_int.h - what the catalog's modules (catalog.c and the
 * catalog_*.c files beside it) share. Not part of the public API: only
 * catalog modules run SQL.
 */
#ifndef STASH_CATALOG_INT_H
#define STASH_CATALOG_INT_H

#include <sqlite3.h>

#include "catalog.h"

sqlite3 *stash_cat_db(struct stash_cat *cat);
/* Prepare a statement for one call (the caller finalizes it). */
int stash_cat_prepare(struct stash_cat *cat, const char *sql, sqlite3_stmt **s,
		      const char *what);
/* Log SQLite's message for rc and return it as a negative errno. */
int stash_cat_sql_err(struct stash_cat *cat, int rc, const char *what);
/* Run one or more statements that return no rows. */
int stash_cat_exec(struct stash_cat *cat, const char *sql);

#endif
