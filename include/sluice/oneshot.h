/* sluice: oneshot (being written). */
#ifndef SLUICE_ONESHOT_H
#define SLUICE_ONESHOT_H

#endif /* SLUICE_ONESHOT_H */
