/* Allocation that aborts on failure (STYLE habit 20, redis zmalloc).
 * Sizes that come from clients are always capped by the caller first. */
#ifndef SHOAL_PROTO_BASE_MEM_H
#define SHOAL_PROTO_BASE_MEM_H

#include <stddef.h>

void *sh_malloc(size_t size);
void *sh_calloc(size_t n, size_t size);
void *sh_realloc(void *p, size_t size);
char *sh_strdup(const char *s);
char *sh_strndup(const char *s, size_t n);
/* malloc'ed printf; aborts on failure. */
char *sh_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
