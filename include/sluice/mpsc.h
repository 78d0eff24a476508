/* sluice: mpsc (being written). */
#ifndef SLUICE_MPSC_H
#define SLUICE_MPSC_H

#endif /* SLUICE_MPSC_H */
