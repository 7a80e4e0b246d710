// SPDX-License-Identifier: MIT
/*
 * Whole-machine snapshots: header, machine description, every RAM page,
 * the clock, every hart and every device state section, END
 * (docs/migration-stream.md).
 */
#include "migration/savevm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "migration/stream.h"
#include "util/err.h"

static int stream_fail(stream_t *s, char *err, size_t errlen)
{
	int rc = err_set(err, errlen, "%s", s->err[0] ? s->err : "stream error");

	stream_free(s);
	return rc;
}

int savevm_write_sections(stream_t *s, machine_t *m)
{
	vclock_sync_state(&m->clock);
	if (stream_write_state(s, STREAM_STATE_CLOCK, 0, vclock_state_desc.name,
			       &vclock_state_desc, &m->clock.s))
		return -1;
	for (unsigned i = 0; i < m->nharts; i++)
		if (stream_write_state(s, STREAM_STATE_HART, i,
				       hart_state_desc.name, &hart_state_desc,
				       &m->harts[i].s))
			return -1;
	for (unsigned i = 0; i < m->ndevices; i++) {
		const device_t *d = &m->devices[i];

		if (d->state &&
		    stream_write_state(s, STREAM_STATE_DEVICE, 0, d->name,
				       d->state, d->state_obj))
			return -1;
	}
	return 0;
}

int savevm_save(machine_t *m, const char *domain, int fd, char *err,
		size_t errlen)
{
	stream_t s;

	stream_init(&s, fd);
	if (stream_write_header(&s) || stream_write_machine(&s, m) ||
	    (domain && stream_write_domain(&s, domain)) ||
	    stream_write_pages(&s, &m->ram, NULL) ||
	    savevm_write_sections(&s, m) || stream_write_end(&s))
		return stream_fail(&s, err, errlen);
	stream_free(&s);
	return 0;
}

/* Sections a snapshot must hold exactly once each. */
struct sections {
	bool clock;
	bool hart[MACHINE_MAX_HARTS];
	bool dev[MACHINE_MAX_DEVICES];
};

/* Finds the table and object a STATE record is for, and marks it seen. */
static int section_target(machine_t *m, struct sections *seen,
			  const stream_state_t *st, const state_desc_t **d,
			  void **obj, char *err, size_t errlen)
{
	bool *flag;

	switch (st->kind) {
	case STREAM_STATE_CLOCK:
		if (st->index || strcmp(st->name, vclock_state_desc.name))
			return err_set(err, errlen, "unknown clock section %s/%u",
				    st->name, st->index);
		*d = &vclock_state_desc;
		*obj = &m->clock.s;
		flag = &seen->clock;
		break;
	case STREAM_STATE_HART:
		if (strcmp(st->name, hart_state_desc.name))
			return err_set(err, errlen, "unknown hart section %s",
				    st->name);
		if (st->index >= m->nharts)
			return err_set(err, errlen, "state for hart %u, this "
				    "machine has %u", st->index, m->nharts);
		*d = &hart_state_desc;
		*obj = &m->harts[st->index].s;
		flag = &seen->hart[st->index];
		break;
	default: {
		unsigned i;

		if (st->index)
			return err_set(err, errlen, "device section %s with index %u",
				    st->name, st->index);
		for (i = 0; i < m->ndevices; i++)
			if (!strcmp(m->devices[i].name, st->name))
				break;
		if (i == m->ndevices)
			return err_set(err, errlen, "state for device %s, which "
				    "this machine does not have", st->name);
		if (!m->devices[i].state)
			return err_set(err, errlen, "state for device %s, which "
				    "has none here", st->name);
		*d = m->devices[i].state;
		*obj = m->devices[i].state_obj;
		flag = &seen->dev[i];
		break;
	}
	}
	if (*flag && st->kind == STREAM_STATE_HART)
		return err_set(err, errlen, "state of hart %u appears twice",
			    st->index);
	if (*flag)
		return err_set(err, errlen, "state section %s appears twice",
			    st->name);
	*flag = true;
	return 0;
}

/*
 * Every record after the machine description up to END. The domain config
 * comes before any page or state record, once.
 */
static int load_records(machine_t *m, stream_t *s, struct sections *seen,
			char **domain, char *err, size_t errlen)
{
	char why[STREAM_ERR_LEN];
	bool data = false, got_domain = false;
	stream_rec_t r;

	for (;;) {
		stream_state_t st;
		const state_desc_t *d = NULL;
		void *obj = NULL;

		if (stream_read_record(s, &r))
			return err_set(err, errlen, "%s", s->err);
		if (r.type == STREAM_REC_PAGES || r.type == STREAM_REC_STATE)
			data = true;
		switch (r.type) {
		case STREAM_REC_END:
			return 0;
		case STREAM_REC_DOMAIN:
			if (got_domain)
				return err_set(err, errlen, "record %llu: a second "
					    "domain config",
					    (unsigned long long)r.seq);
			if (data)
				return err_set(err, errlen, "record %llu: the domain "
					    "config after guest memory or state",
					    (unsigned long long)r.seq);
			got_domain = true;
			if (stream_parse_domain(s, &r, domain))
				return err_set(err, errlen, "%s", s->err);
			break;
		case STREAM_REC_PAGES:
			if (stream_load_pages(s, &r, &m->ram))
				return err_set(err, errlen, "%s", s->err);
			break;
		case STREAM_REC_STATE:
			if (stream_parse_state(s, &r, &st))
				return err_set(err, errlen, "%s", s->err);
			if (section_target(m, seen, &st, &d, &obj, why,
					   sizeof(why)))
				return err_set(err, errlen, "record %llu: %s",
					    (unsigned long long)r.seq, why);
			if (state_load(d, obj, st.version, st.data, st.len, why,
				       sizeof(why)))
				return err_set(err, errlen, "record %llu: %s",
					    (unsigned long long)r.seq, why);
			break;
		default:
			return err_set(err, errlen, "record %llu: a second machine "
				    "description", (unsigned long long)r.seq);
		}
	}
}

int savevm_read_begin(machine_t *m, stream_t *s, char *err, size_t errlen)
{
	stream_rec_t r;

	if (stream_read_header(s) || stream_read_record(s, &r))
		return err_set(err, errlen, "%s", s->err);
	if (r.type != STREAM_REC_MACHINE)
		return err_set(err, errlen, "the stream does not start with a "
			    "machine description");
	if (stream_check_machine(s, &r, m))
		return err_set(err, errlen, "%s", s->err);
	return 0;
}

static int read_rest(machine_t *m, stream_t *s, char **domain, char *err,
		     size_t errlen)
{
	struct sections seen;

	memset(&seen, 0, sizeof(seen));
	if (load_records(m, s, &seen, domain, err, errlen))
		return -1;
	if (!seen.clock)
		return err_set(err, errlen, "the stream has no clock state");
	for (unsigned i = 0; i < m->nharts; i++)
		if (!seen.hart[i])
			return err_set(err, errlen, "the stream has no state for "
				    "hart %u", i);
	for (unsigned i = 0; i < m->ndevices; i++)
		if (m->devices[i].state && !seen.dev[i])
			return err_set(err, errlen, "the stream has no state for "
				    "device %s", m->devices[i].name);

	/*
	 * Derived state. The clock first: devices' post_load reads guest time
	 * (CLINT, RTC compare against it).
	 */
	vclock_post_load(&m->clock);
	for (unsigned i = 0; i < m->nharts; i++)
		hart_tlb_flush(&m->harts[i]);
	for (unsigned i = 0; i < m->ndevices; i++) {
		const device_t *d = &m->devices[i];

		if (d->ops && d->ops->post_load && d->ops->post_load(d->dev))
			return err_set(err, errlen, "device %s rejected its loaded "
				    "state", d->name);
	}
	machine_update_timers(m);
	return 0;
}

int savevm_read_rest(machine_t *m, stream_t *s, char **domain, char *err,
		     size_t errlen)
{
	char *text = NULL;
	int rc = read_rest(m, s, &text, err, errlen);

	if (rc || !domain)
		free(text);
	else
		*domain = text;
	return rc;
}

int savevm_load(machine_t *m, int fd, char **domain, char *err,
		size_t errlen)
{
	stream_t s;
	int rc;

	if (domain)
		*domain = NULL;
	stream_init(&s, fd);
	rc = savevm_read_begin(m, &s, err, errlen);
	if (!rc)
		rc = savevm_read_rest(m, &s, domain, err, errlen);
	stream_free(&s);
	return rc;
}

int savevm_read_domain_config(const char *path, char **text, char *err,
			      size_t errlen)
{
	stream_t s;
	stream_rec_t r;
	struct stat st;
	int fd, rc = -1;

	*text = NULL;
	/* O_NONBLOCK: a FIFO put in the snapshot's place must not block. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return err_set(err, errlen, "cannot open %s: %s", path,
			       strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(err, errlen, "%s: not a regular file", path);
	}
	stream_init(&s, fd);
	if (stream_read_header(&s) || stream_read_record(&s, &r)) {
		err_set(err, errlen, "%s: %s", path, s.err);
		goto out;
	}
	if (r.type != STREAM_REC_MACHINE) {
		err_set(err, errlen, "%s: the stream does not start with a "
			"machine description", path);
		goto out;
	}
	/* Unknown optional records are skipped by the record layer. */
	if (stream_read_record(&s, &r)) {
		err_set(err, errlen, "%s: %s", path, s.err);
		goto out;
	}
	switch (r.type) {
	case STREAM_REC_DOMAIN:
		if (stream_parse_domain(&s, &r, text)) {
			err_set(err, errlen, "%s: %s", path, s.err);
			goto out;
		}
		break;
	case STREAM_REC_PAGES:
	case STREAM_REC_STATE:
	case STREAM_REC_END:
		break;		/* a snapshot without a domain config */
	default:
		err_set(err, errlen, "%s: record %llu: a second machine "
			"description", path, (unsigned long long)r.seq);
		goto out;
	}
	rc = 0;
out:
	stream_free(&s);
	close(fd);
	return rc;
}
