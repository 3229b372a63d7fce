/* Growable byte buffer (git strbuf.h).
 *
 * Invariants: `data` is never NULL and is always NUL-terminated at
 * data[len], so a buffer holding text is a C string.  Growth aborts on
 * allocation failure (mem.h). */
#ifndef SHOAL_PROTO_BASE_BUF_H
#define SHOAL_PROTO_BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct sh_buf {
    char *data; /* never NULL; data[len] == '\0' */
    size_t len; /* bytes in use, excluding the terminator */
    size_t cap; /* allocated bytes; 0 while data points at a static "" */
};

#define SH_BUF_INIT {sh_buf__empty, 0, 0}
extern char sh_buf__empty[];

void sh_buf_init(struct sh_buf *b);
/* Free the memory and return to the initial state. */
void sh_buf_release(struct sh_buf *b);
/* Keep the memory, set len to 0. */
void sh_buf_reset(struct sh_buf *b);
/* Ensure room for `extra` more bytes plus the terminator. */
void sh_buf_grow(struct sh_buf *b, size_t extra);
void sh_buf_add(struct sh_buf *b, const void *data, size_t len);
void sh_buf_addstr(struct sh_buf *b, const char *s);
void sh_buf_addch(struct sh_buf *b, char c);
void sh_buf_addf(struct sh_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sh_buf_vaddf(struct sh_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Append s as a JSON string literal, quotes included. */
void sh_buf_add_json_str(struct sh_buf *b, const char *s);
/* Hand the malloc'ed bytes to the caller (who frees them) and reset b. */
char *sh_buf_detach(struct sh_buf *b, size_t *len);

#endif
