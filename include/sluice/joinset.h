/* sluice: joinset (being written). */
#ifndef SLUICE_JOINSET_H
#define SLUICE_JOINSET_H

#endif /* SLUICE_JOINSET_H */
