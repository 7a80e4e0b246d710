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
 * Writes header, the machine description, the domain config (a DOMAIN
 * record, when domain is not NULL), every non-zero RAM page, the clock,
 * every hart and device state section, and END to fd. The machine must be
 * stopped (no hart inside hart_run) and the clock paused. Returns 0 or -1
 * with a one-line reason.
 */
int savevm_save(machine_t *m, const char *domain, int fd, char *err,
		size_t errlen);

/*
 * Reads a stream from fd into m, which was built with the options the
 * stream's machine description must match (RAM size, ISA, harts, devices,
 * disks). When this fails m is in an undefined state and must be
 * destroyed (the caller never runs it). On success the machine is
 * ready to run from the saved point, its clock paused (vclock_resume starts
 * it), and *domain (when domain is not NULL) is the stream's domain config
 * (malloc'd; NULL when it has none). Returns 0 or -1 with a one-line
 * reason naming what was wrong.
 */
int savevm_load(machine_t *m, int fd, char **domain, char *err,
		size_t errlen);

/*
 * The domain config carried by the snapshot file at path, without
 * loading it: reads the header and the records up to the DOMAIN record
 * (stopping at the first page or state record, or END), checksums
 * verified. Returns 0 with *text the config (malloc'd) or NULL when the
 * file has none, or -1 with a one-line reason for a file that cannot be
 * read or is not a valid snapshot.
 */
int savevm_read_domain_config(const char *path, char **text, char *err,
			      size_t errlen);

/*
 * The pieces, shared with live migration (migration/migrate.c).
 *
 * savevm_write_sections: the clock, every hart and every device state
 * section, in that order. The machine must be stopped. 0 or -1 with the
 * reason in s->err.
 *
 * savevm_read_begin: reads and checks the header and the machine
 * description against m. savevm_read_rest: every following record up to
 * END, then the derived state, as savevm_load (also *domain, as there).
 * Both 0 or -1 with a one-line reason.
 */
int savevm_write_sections(stream_t *s, machine_t *m);
int savevm_read_begin(machine_t *m, stream_t *s, char *err, size_t errlen);
int savevm_read_rest(machine_t *m, stream_t *s, char **domain, char *err,
		     size_t errlen);

#endif
