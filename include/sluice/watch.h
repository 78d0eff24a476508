/* sluice: watch (being written). */
#ifndef SLUICE_WATCH_H
#define SLUICE_WATCH_H

#endif /* SLUICE_WATCH_H */
