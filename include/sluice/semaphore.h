/* sluice: semaphore (being written). */
#ifndef SLUICE_SEMAPHORE_H
#define SLUICE_SEMAPHORE_H

#endif /* SLUICE_SEMAPHORE_H */
