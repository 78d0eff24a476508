/* sluice: mutex (being written). */
#ifndef SLUICE_MUTEX_H
#define SLUICE_MUTEX_H

#endif /* SLUICE_MUTEX_H */
