// SPDX-License-Identifier: MIT
/*
 * Linux RISC-V boot (Documentation/arch/riscv/boot-image-header.rst and
 * boot.rst): the Image is loaded text_offset bytes above a 2 MiB aligned RAM
 * start, entered in S-mode with a0 = hartid, a1 = device tree address, MMU off.
 */
#include "machine/loader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "machine/fdt.h"

#define IMAGE_HEADER_SIZE 64
#define IMAGE_MAGIC "RISCV\0\0\0"
#define IMAGE_MAGIC2 "RSC\x05"
#define DEFAULT_TEXT_OFFSET 0x200000ull
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((uint64_t)(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((uint64_t)(a) - 1))

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Reads a whole file into guest RAM at gpa; fails if it does not fit. */
static int load_file(machine_t *m, const char *what, const char *path,
		     uint64_t gpa, uint64_t limit, uint64_t *size_out,
		     char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *dst;
	uint64_t done = 0;

	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s %s: %s", what, path,
			 strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s %s is not a regular file", what, path);
		close(fd);
		return -1;
	}
	if ((uint64_t)st.st_size > limit - gpa || gpa >= limit) {
		snprintf(err, errlen,
			 "%s %s (%llu MiB) does not fit in guest memory; give the VM more memory",
			 what, path, (unsigned long long)(st.st_size >> 20));
		close(fd);
		return -1;
	}
	dst = ram_ptr(&m->ram, gpa, (uint64_t)st.st_size);
	while (done < (uint64_t)st.st_size) {
		ssize_t n = read(fd, dst + done, (size_t)st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "cannot read %s %s: %s", what, path,
				 n ? strerror(errno) : "file shrank");
			close(fd);
			return -1;
		}
		done += (uint64_t)n;
	}
	close(fd);
	*size_out = (uint64_t)st.st_size;
	return 0;
}

static int check_image_header(const char *path, uint64_t *text_offset,
			      uint64_t *image_size, char *err, size_t errlen)
{
	uint8_t h[IMAGE_HEADER_SIZE];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		snprintf(err, errlen, "cannot open kernel %s: %s", path,
			 strerror(errno));
		return -1;
	}
	n = pread(fd, h, sizeof(h), 0);
	close(fd);
	if (n != (ssize_t)sizeof(h) || memcmp(h + 48, IMAGE_MAGIC, 8) ||
	    memcmp(h + 56, IMAGE_MAGIC2, 4)) {
		snprintf(err, errlen,
			 "kernel %s is not a RISC-V Linux Image (no RISCV/RSC magic in its header)",
			 path);
		return -1;
	}
	*text_offset = le64(h + 8);
	*image_size = le64(h + 16);
	if (*text_offset == 0 && *image_size == 0)
		*text_offset = DEFAULT_TEXT_OFFSET;
	return 0;
}

int loader_boot(machine_t *m, const boot_config_t *bc, char *err, size_t errlen)
{
	uint64_t text_offset, image_size, kernel_size, kernel_end;
	uint64_t ram_end = m->ram.base + m->ram.size;
	uint64_t kernel_at, initrd_at = 0, initrd_size = 0, fdt_at, top;
	boot_params_t bp = { .cmdline = bc->cmdline };

	if (check_image_header(bc->kernel, &text_offset, &image_size, err, errlen))
		return -1;
	kernel_at = m->ram.base + text_offset;
	if (text_offset >= m->ram.size) {
		snprintf(err, errlen, "kernel %s: text offset outside guest memory",
			 bc->kernel);
		return -1;
	}
	if (load_file(m, "kernel", bc->kernel, kernel_at, ram_end, &kernel_size,
		      err, errlen))
		return -1;
	/* image_size covers bss and early page tables, beyond the file. */
	kernel_end = kernel_at + (image_size > kernel_size ? image_size : kernel_size);

	/* Device tree in the top 2 MiB, the initrd page-aligned below it. */
	top = ALIGN_DOWN(ram_end - 0x200000, 0x200000);
	if (top <= kernel_end) {
		snprintf(err, errlen, "guest memory (%llu MiB) too small for kernel %s",
			 (unsigned long long)(m->ram.size >> 20), bc->kernel);
		return -1;
	}
	if (bc->initrd) {
		struct stat st;

		if (stat(bc->initrd, &st)) {
			snprintf(err, errlen, "cannot open initrd %s: %s", bc->initrd,
				 strerror(errno));
			return -1;
		}
		if ((uint64_t)st.st_size > top - kernel_end) {
			snprintf(err, errlen,
				 "initrd %s (%llu MiB) does not fit in guest memory beside the kernel; give the VM more memory",
				 bc->initrd, (unsigned long long)(st.st_size >> 20));
			return -1;
		}
		initrd_at = ALIGN_DOWN(top - (uint64_t)st.st_size, 0x1000);
		if (load_file(m, "initrd", bc->initrd, initrd_at, top, &initrd_size,
			      err, errlen))
			return -1;
		bp.initrd_start = initrd_at;
		bp.initrd_end = initrd_at + initrd_size;
	}
	if (fdt_build(m, &bp, err, errlen))
		return -1;
	fdt_at = top;
	if (ram_dma_write(&m->ram, fdt_at, m->fdt, m->fdt_size)) {
		snprintf(err, errlen, "device tree does not fit in guest memory");
		return -1;
	}

	for (unsigned i = 0; i < m->nharts; i++) {
		hart_t *h = &m->harts[i];

		h->sbi_builtin = true;
		h->s.priv = PRV_S;
		h->s.pc = kernel_at;
		h->s.x[10] = i;
		h->s.x[11] = fdt_at;
		/*
		 * What M-mode firmware leaves behind: every exception and
		 * S-level interrupt delegated to S-mode, counters and the
		 * Sstc timer usable from S-mode.
		 */
		h->s.medeleg = 0xb1ff; /* causes 0-8, 12, 13, 15 */
		h->s.mideleg = MIP_SSIP | MIP_STIP | MIP_SEIP;
		h->s.mcounteren = 7;
		/*
		 * Linux lets user mode read `time` (the vDSO's clock) from its
		 * SBI PMU driver's CPU-starting hook, which writes scounteren =
		 * TM. tern's SBI has no PMU extension, so that hook never runs:
		 * the board starts with the value the kernel would have set.
		 */
		h->s.scounteren = 2;
		h->s.menvcfg = 1ull << 63; /* STCE */
		h->s.stimecmp = UINT64_MAX;
		hart_tlb_flush(h);
	}
	return 0;
}
