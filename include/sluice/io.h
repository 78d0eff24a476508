/* sluice: io (being written). */
#ifndef SLUICE_IO_H
#define SLUICE_IO_H

#endif /* SLUICE_IO_H */
