/* SPDX-License-Identifier: MIT */
/*
 * Whole-machine snapshots in the migration stream format
 * (docs/migration-stream.md): save to a file or socket, load into a machine
 * built with the same options.
 */
#ifndef TERN_SAVEVM_H
#define TERN_SAVEVM_H

#include <stddef.h>

#include "machine/machine.h"
#include "migration/stream.h"

/*
 * Writes header, every non-zero RAM page, the clock, every hart and device
 * state section, and END to fd. The machine must be stopped (no hart inside
 * hart_run) and the clock paused. Returns 0 or -1 with a one-line reason.
 */
int savevm_save(machine_t *m, int fd, char *err, size_t errlen);

/*
 * Reads a stream from fd into m, which was built with the options the
 * stream's machine description must match (RAM size, ISA, harts, devices,
 * disks). When this fails m is in an undefined state and must be
 * destroyed (the caller never runs it). On success the machine is
 * ready to run from the saved point, its clock paused (vclock_resume starts
 * it). Returns 0 or -1 with a one-line reason naming what was wrong.
 */
int savevm_load(machine_t *m, int fd, char *err, size_t errlen);

/*
 * The pieces, shared with live migration (migration/migrate.c).
 *
 * savevm_write_sections: the clock, every hart and every device state
 * section, in that order. The machine must be stopped. 0 or -1 with the
 * reason in s->err.
 *
 * savevm_read_begin: reads and checks the header and the machine
 * description against m. savevm_read_rest: every following record up to
 * END, then the derived state, as savevm_load. Both 0 or -1 with a
 * one-line reason.
 */
int savevm_write_sections(stream_t *s, machine_t *m);
int savevm_read_begin(machine_t *m, stream_t *s, char *err, size_t errlen);
int savevm_read_rest(machine_t *m, stream_t *s, char *err, size_t errlen);

#endif
