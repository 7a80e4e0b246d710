// SPDX-License-Identifier: MIT
/* The one engine that saves, loads and checks every state table. */
#include "machine/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

int state_desc_validate(const state_desc_t *d, char *err, size_t errlen)
{
	if (!d->name || !d->fields || d->nfields == 0)
		return err_set(err, errlen, "state table %s: empty",
			    d->name ? d->name : "?");
	if (d->min_version < 1 || d->min_version > d->version)
		return err_set(err, errlen, "state table %s: bad versions",
			    d->name);
	for (uint32_t i = 0; i < d->nfields; i++) {
		const state_field_t *f = &d->fields[i];
		uint64_t end = (uint64_t)f->offset +
			       (uint64_t)f->elem_size * f->count;

		if (f->elem_size != 1 && f->elem_size != 2 &&
		    f->elem_size != 4 && f->elem_size != 8)
			return err_set(err, errlen, "%s.%s: bad width", d->name,
				    f->name);
		if (f->count == 0 || end > d->size)
			return err_set(err, errlen, "%s.%s: outside the struct",
				    d->name, f->name);
		if (f->offset % f->elem_size)
			return err_set(err, errlen, "%s.%s: misaligned", d->name,
				    f->name);
		if (f->since < 1 || f->since > d->version)
			return err_set(err, errlen, "%s.%s: bad version", d->name,
				    f->name);
		for (uint32_t j = 0; j < i; j++) {
			const state_field_t *g = &d->fields[j];
			uint64_t gend = (uint64_t)g->offset +
					(uint64_t)g->elem_size * g->count;

			if (f->offset < gend && g->offset < end)
				return err_set(err, errlen, "%s.%s: overlaps",
					    d->name, f->name);
			if (!strcmp(f->name, g->name))
				return err_set(err, errlen, "%s.%s: named twice",
					    d->name, f->name);
		}
	}
	return 0;
}

size_t state_size(const state_desc_t *d, uint32_t version)
{
	size_t n = 0;

	for (uint32_t i = 0; i < d->nfields; i++)
		if (d->fields[i].since <= version)
			n += (size_t)d->fields[i].elem_size * d->fields[i].count;
	return n;
}

static void put_le(uint8_t *p, uint64_t v, unsigned w)
{
	for (unsigned i = 0; i < w; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned w)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < w; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint64_t read_elem(const uint8_t *src, unsigned w)
{
	switch (w) {
	case 1:
		return *src;
	case 2: {
		uint16_t v;
		memcpy(&v, src, 2);
		return v;
	}
	case 4: {
		uint32_t v;
		memcpy(&v, src, 4);
		return v;
	}
	default: {
		uint64_t v;
		memcpy(&v, src, 8);
		return v;
	}
	}
}

static void write_elem(uint8_t *dst, uint64_t v, unsigned w)
{
	switch (w) {
	case 1:
		*dst = (uint8_t)v;
		break;
	case 2: {
		uint16_t x = (uint16_t)v;
		memcpy(dst, &x, 2);
		break;
	}
	case 4: {
		uint32_t x = (uint32_t)v;
		memcpy(dst, &x, 4);
		break;
	}
	default:
		memcpy(dst, &v, 8);
		break;
	}
}

size_t state_save(const state_desc_t *d, const void *obj, uint8_t *buf,
		  size_t cap)
{
	size_t need = state_size(d, d->version), pos = 0;
	const uint8_t *base = obj;

	if (cap < need)
		return 0;
	for (uint32_t i = 0; i < d->nfields; i++) {
		const state_field_t *f = &d->fields[i];

		for (uint32_t k = 0; k < f->count; k++) {
			const uint8_t *src =
				base + f->offset + (size_t)k * f->elem_size;

			put_le(buf + pos, read_elem(src, f->elem_size),
			       f->elem_size);
			pos += f->elem_size;
		}
	}
	return pos;
}

int state_load(const state_desc_t *d, void *obj, uint32_t version,
	       const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	uint8_t *tmp;
	size_t pos = 0;
	int rc = -1;
	if (version < d->min_version || version > d->version)
		return err_set(err, errlen, "state section %s: version %u not supported",
			    d->name, version);
	if (len != state_size(d, version))
		return err_set(err, errlen, "state section %s: wrong length", d->name);
	tmp = malloc(d->size);
	if (!tmp)
		return err_set(err, errlen, "state section %s: out of memory", d->name);
	memcpy(tmp, obj, d->size);
	for (uint32_t i = 0; i < d->nfields; i++) {
		const state_field_t *f = &d->fields[i];

		if (f->since > version)
			continue;
		for (uint32_t k = 0; k < f->count; k++) {
			write_elem(tmp + f->offset + (size_t)k * f->elem_size,
				   get_le(buf + pos, f->elem_size),
				   f->elem_size);
			pos += f->elem_size;
		}
	}
	if (!d->check || !d->check(tmp, err, errlen)) {
		memcpy(obj, tmp, d->size);
		rc = 0;
	}
	free(tmp);
	return rc;
}
