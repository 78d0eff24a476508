/* Error strings and names, generated from the one table in <sluice/error.h>. */
#define _GNU_SOURCE /* strerrordesc_np */
#include <string.h>

#include <sluice.h>

const char *sl_strerror(int code)
{
    switch (code) {
#define SL__ERR_STR(name, val, msg) \
    case (val):                     \
        return msg;
        SL_ERRNO_MAP(SL__ERR_STR)
#undef SL__ERR_STR
    case 0:
        return "success";
    default:
        break;
    }
    if (code < 0 && code > -4096) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
        /* A static description, or NULL: strerror() would format an unknown number into a
         * buffer the next call overwrites. */
        const char *d = strerrordesc_np(-code);
        if (d)
            return d;
#else
        return strerror(-code);
#endif
    }
    return "unknown error";
}

const char *sl_err_name(int code)
{
    switch (code) {
#define SL__ERR_NAME(name, val, msg) \
    case (val):                      \
        return "SL_" #name;
        SL_ERRNO_MAP(SL__ERR_NAME)
#undef SL__ERR_NAME
    case 0:
        return "SL_OK";
    default:
        return "SL_E_UNKNOWN";
    }
}
