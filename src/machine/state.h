/* SPDX-License-Identifier: MIT */
/*
 * Declarative, versioned descriptions of guest-visible state.
 *
 * Every hart and device keeps what the guest can see in a plain struct of
 * fixed-width integer fields (no pointers, no host resources). A state_desc_t
 * lists those fields; one engine saves, loads and checks any such struct. The
 * serialised form is the fields in table order, each little-endian, packed.
 * A field carries the version that introduced it, so a reader can load the
 * previous version of a section (fields it lacks keep their reset value).
 */
#ifndef TERN_STATE_H
#define TERN_STATE_H

#include <stddef.h>
#include <stdint.h>

enum state_type {
	STATE_U8 = 1,
	STATE_U16 = 2,
	STATE_U32 = 4,
	STATE_U64 = 8,
};

typedef struct state_field {
	const char *name;
	uint32_t offset;	/* offsetof() in the struct */
	uint32_t elem_size;	/* 1, 2, 4 or 8 */
	uint32_t count;		/* 1 for scalars, N for arrays */
	uint32_t since;		/* section version that added the field */
} state_field_t;

typedef struct state_desc {
	const char *name;
	uint32_t version;	/* version written */
	uint32_t min_version;	/* oldest version read */
	uint32_t size;		/* sizeof the struct */
	const state_field_t *fields;
	uint32_t nfields;
	/*
	 * Validates a just-loaded struct (values come from an untrusted
	 * stream). Returns 0, or -1 with a message in err.
	 */
	int (*check)(const void *obj, char *err, size_t errlen);
} state_desc_t;

/* Compile-time checked field builders: the member must have the named width. */
#define STATE__CHK(T, f, W)                                                    \
	(0 * sizeof(struct {                                                   \
		 _Static_assert(sizeof(((T *)0)->f) == (W), #f " width");      \
		 int x;                                                        \
	 }))
#define STATE__ACHK(T, f, W)                                                   \
	(0 * sizeof(struct {                                                   \
		 _Static_assert(sizeof(((T *)0)->f[0]) == (W), #f " width");   \
		 int x;                                                        \
	 }))

#define STATE_FIELD_V(T, f, W, V)                                              \
	{ #f, (uint32_t)offsetof(T, f), (W), 1 + STATE__CHK(T, f, W), (V) }
#define STATE_ARRAY_V(T, f, W, V)                                              \
	{ #f, (uint32_t)offsetof(T, f), (W),                                   \
	  (uint32_t)(sizeof(((T *)0)->f) / (W)) + STATE__ACHK(T, f, W), (V) }

#define STATE_U8(T, f) STATE_FIELD_V(T, f, 1, 1)
#define STATE_U16(T, f) STATE_FIELD_V(T, f, 2, 1)
#define STATE_U32(T, f) STATE_FIELD_V(T, f, 4, 1)
#define STATE_U64(T, f) STATE_FIELD_V(T, f, 8, 1)
#define STATE_U8_ARRAY(T, f) STATE_ARRAY_V(T, f, 1, 1)
#define STATE_U16_ARRAY(T, f) STATE_ARRAY_V(T, f, 2, 1)
#define STATE_U32_ARRAY(T, f) STATE_ARRAY_V(T, f, 4, 1)
#define STATE_U64_ARRAY(T, f) STATE_ARRAY_V(T, f, 8, 1)

#define STATE_NFIELDS(a) ((uint32_t)(sizeof(a) / sizeof((a)[0])))

/* Checks a table itself: fields inside the struct, no overlap, sane widths. */
int state_desc_validate(const state_desc_t *d, char *err, size_t errlen);

/* Bytes that a section of the given version occupies when serialised. */
size_t state_size(const state_desc_t *d, uint32_t version);

/*
 * Serialises obj at d->version into buf. Returns the number of bytes, or 0
 * when cap is too small.
 */
size_t state_save(const state_desc_t *d, const void *obj, uint8_t *buf,
		  size_t cap);

/*
 * Loads a section written at `version` into obj. obj keeps its current
 * contents for fields newer than `version`. Nothing is written to obj
 * unless the whole section is valid. Returns 0 or -1 with err set.
 */
int state_load(const state_desc_t *d, void *obj, uint32_t version,
	       const uint8_t *buf, size_t len, char *err, size_t errlen);

#endif
