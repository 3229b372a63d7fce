/* Contracts (dqlite src/utils.h).  Active in every build type: a broken
 * invariant in a storage system must stop the process, not corrupt data. */
#ifndef SHOAL_PROTO_BASE_ASSERT_H
#define SHOAL_PROTO_BASE_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#define SH_ASSERT(cond)                                                    \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: %s: assertion '%s' failed\n", __FILE__, \
                    __LINE__, __func__, #cond);                            \
            abort();                                                       \
        }                                                                  \
    } while (0)

#define PRE(cond) SH_ASSERT(cond)
#define POST(cond) SH_ASSERT(cond)
#define IMPOSSIBLE(why) SH_ASSERT(!(why))

#endif
