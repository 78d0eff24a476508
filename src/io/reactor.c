/* Placeholder until the I/O module lands: no fds are registered yet. */
#include "core/rt.h"

void sl__io_event(sl__worker_t *w, uint64_t data, uint32_t events)
{
    (void)w;
    (void)data;
    (void)events;
}

int sl__io_init(sl_runtime_t *rt)
{
    (void)rt;
    return 0;
}

void sl__io_fini(sl_runtime_t *rt)
{
    (void)rt;
}
