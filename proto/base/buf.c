#include "proto/base/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/base/mem.h"

char sh_buf__empty[1];

void sh_buf_init(struct sh_buf *b)
{
    b->data = sh_buf__empty;
    b->len = 0;
    b->cap = 0;
}

void sh_buf_release(struct sh_buf *b)
{
    if (b->cap)
        free(b->data);
    sh_buf_init(b);
}

void sh_buf_reset(struct sh_buf *b)
{
    b->len = 0;
    if (b->cap)
        b->data[0] = '\0';
}

void sh_buf_grow(struct sh_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    size_t cap;

    if (need <= b->cap)
        return;
    cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    if (b->cap == 0) {
        b->data = sh_malloc(cap);
        b->data[0] = '\0';
    } else {
        b->data = sh_realloc(b->data, cap);
    }
    b->cap = cap;
}

void sh_buf_add(struct sh_buf *b, const void *data, size_t len)
{
    sh_buf_grow(b, len);
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void sh_buf_addstr(struct sh_buf *b, const char *s)
{
    sh_buf_add(b, s, strlen(s));
}

void sh_buf_addch(struct sh_buf *b, char c)
{
    sh_buf_add(b, &c, 1);
}

void sh_buf_vaddf(struct sh_buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    int n;

    va_copy(cp, ap);
    n = vsnprintf(b->data + b->len, b->cap ? b->cap - b->len : 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return;
    if (b->cap == 0 || (size_t)n >= b->cap - b->len) {
        sh_buf_grow(b, (size_t)n);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    }
    b->len += (size_t)n;
}

void sh_buf_addf(struct sh_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sh_buf_vaddf(b, fmt, ap);
    va_end(ap);
}

void sh_buf_add_json_str(struct sh_buf *b, const char *s)
{
    sh_buf_addch(b, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
            case '"':
                sh_buf_addstr(b, "\\\"");
                break;
            case '\\':
                sh_buf_addstr(b, "\\\\");
                break;
            case '\n':
                sh_buf_addstr(b, "\\n");
                break;
            case '\r':
                sh_buf_addstr(b, "\\r");
                break;
            case '\t':
                sh_buf_addstr(b, "\\t");
                break;
            default:
                if (c < 0x20)
                    sh_buf_addf(b, "\\u%04x", c);
                else
                    sh_buf_addch(b, (char)c);
        }
    }
    sh_buf_addch(b, '"');
}

char *sh_buf_detach(struct sh_buf *b, size_t *len)
{
    char *out;
    if (len)
        *len = b->len;
    if (b->cap == 0) {
        out = sh_malloc(1);
        out[0] = '\0';
    } else {
        out = b->data;
    }
    sh_buf_init(b);
    return out;
}
