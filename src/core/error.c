/* Error strings and names, generated from the one table in <sluice/error.h>. */
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
    if (code < 0 && code > -4096)
        return strerror(-code);
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
