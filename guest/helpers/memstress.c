/*
 * memstress: keeps a working set of guest memory changing at a chosen rate
 * and checks afterwards that every page holds exactly what was last written.
 *
 * Meant for live migration: memory that keeps being dirtied while the VM
 * moves, and a verdict on whether every page arrived in its latest version.
 *
 * Each 4 KiB page carries a header (magic, page index, generation, the run's
 * seed, a header checksum) and 4064 bytes of content derived from the header.
 * A private table (4 bytes per page) holds the generation each page must
 * have.  After filling the whole working set once the program prints
 *
 *     memstress: running size=<MiB>MiB pages=<N> rate=<MB/s> seed=<hex>
 *
 * and then rewrites pages in a pseudo-random order, each with the next
 * generation, paced to RATE megabytes (10^6 bytes) per second with
 * clock_nanosleep.  When told to stop it checks every page and prints either
 *
 *     memstress: ok pages=<N> writes=<W>
 *     memstress: FAIL page=<P> expected gen=<G> found gen=<F> ...
 *
 * (W counts page writes after the initial fill) and exits 0 or 1.  A line
 * "memstress: stats ..." with the achieved rate comes just before.
 *
 * Usage: memstress SIZE_MIB RATE_MBPS SECONDS [CHECK_EVERY]
 *   SIZE_MIB     working set in MiB (1..4096)
 *   RATE_MBPS    write rate in MB/s; 0 = as fast as possible
 *   SECONDS      run time; 0 = until stopped
 *   CHECK_EVERY  also check every page each CHECK_EVERY seconds (default 0:
 *                only at the end); a failed check ends the run at once
 *
 * Stopping: SIGUSR1, SIGTERM or SIGINT (e.g. `memstress 64 50 0 &` then
 * `kill -USR1 %1`), or creating the file /tmp/memstress.stop (removed when
 * the program starts and when it stops).  The verdict is printed in every
 * case.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE_SIZE	4096u
#define PAGE_WORDS	(PAGE_SIZE / 8)
#define HDR_WORDS	4
#define PAGE_MAGIC	0x5353455254534d4dull	/* "MMSTRESS" */
#define STEP		0x9e3779b97f4a7c15ull	/* golden ratio increment */
#define STOP_FILE	"/tmp/memstress.stop"
/* how often the stop file and the clock are looked at */
#define POLL_NS		50000000ll

/* Page header, the first 32 bytes of every page. */
struct page_hdr {
	uint64_t magic;
	uint32_t index;
	uint32_t gen;
	uint64_t seed;
	uint64_t check;		/* mix(magic, index, gen, seed) */
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* splitmix64's finaliser: a good 64-bit mixing function. */
static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static uint64_t hdr_check(uint32_t index, uint32_t gen, uint64_t seed)
{
	return mix(PAGE_MAGIC ^ mix(seed ^ mix(((uint64_t)gen << 32) | index)));
}

/* First content word; the rest follow by a constant odd step. */
static uint64_t content_base(uint32_t index, uint32_t gen, uint64_t seed)
{
	return mix(seed + STEP * (((uint64_t)index << 32) | gen));
}

static void page_write(uint64_t *p, uint32_t index, uint32_t gen, uint64_t seed)
{
	struct page_hdr *h = (struct page_hdr *)p;
	uint64_t v = content_base(index, gen, seed);

	for (unsigned int i = HDR_WORDS; i < PAGE_WORDS; i++) {
		p[i] = v;
		v += STEP;
	}
	h->magic = PAGE_MAGIC;
	h->index = index;
	h->gen = gen;
	h->seed = seed;
	h->check = hdr_check(index, gen, seed);
}

/*
 * Returns 0 if the page is intact with generation @gen, else 1 and fills
 * @why with what is wrong with it.
 */
static int page_verify(const uint64_t *p, uint32_t index, uint32_t gen,
		       uint64_t seed, char *why, size_t whylen)
{
	const struct page_hdr *h = (const struct page_hdr *)p;
	uint64_t v;

	if (h->magic != PAGE_MAGIC || h->index != index || h->seed != seed ||
	    h->check != hdr_check(h->index, h->gen, h->seed)) {
		snprintf(why, whylen,
			 "found gen=%u header magic=%016llx index=%u seed=%016llx check=%s",
			 h->gen, (unsigned long long)h->magic, h->index,
			 (unsigned long long)h->seed,
			 h->check == hdr_check(h->index, h->gen, h->seed) ?
			 "ok" : "bad");
		return 1;
	}
	if (h->gen != gen) {
		snprintf(why, whylen, "found gen=%u (stale or future page)",
			 h->gen);
		return 1;
	}
	v = content_base(index, gen, seed);
	for (unsigned int i = HDR_WORDS; i < PAGE_WORDS; i++) {
		if (p[i] != v) {
			snprintf(why, whylen,
				 "found gen=%u content word %u is %016llx, not %016llx",
				 h->gen, i, (unsigned long long)p[i],
				 (unsigned long long)v);
			return 1;
		}
		v += STEP;
	}
	return 0;
}

/* Checks every page; prints the first failure.  Returns the bad count. */
static unsigned long verify_all(const uint64_t *mem, const uint32_t *gens,
				uint32_t npages, uint64_t seed)
{
	unsigned long bad = 0;
	uint32_t first = 0;
	char why[200], first_why[200] = "";

	for (uint32_t i = 0; i < npages; i++) {
		if (page_verify(mem + (size_t)i * PAGE_WORDS, i, gens[i], seed,
				why, sizeof(why))) {
			if (!bad++) {
				first = i;
				memcpy(first_why, why, sizeof(why));
			}
		}
	}
	if (bad)
		printf("memstress: FAIL page=%u expected gen=%u %s (%lu of %u pages bad)\n",
		       first, gens[first], first_why, bad, npages);
	return bad;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void sleep_until(int64_t t)
{
	struct timespec ts = {
		.tv_sec = t / 1000000000ll,
		.tv_nsec = t % 1000000000ll,
	};

	/* EINTR ends the sleep early; the caller looks at stop_requested */
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

static int parse_num(const char *s, const char *what, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > max) {
		fprintf(stderr, "memstress: bad %s '%s' (0..%ld)\n", what, s, max);
		return -1;
	}
	*out = v;
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: memstress SIZE_MIB RATE_MBPS SECONDS [CHECK_EVERY]\n"
		"  RATE_MBPS 0: as fast as possible; SECONDS 0: until SIGUSR1/SIGTERM/SIGINT\n"
		"  or until " STOP_FILE " exists\n");
}

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	rng_state += STEP;
	return mix(rng_state);
}

int main(int argc, char **argv)
{
	long size_mib, rate, seconds, check_every = 0;
	uint32_t npages;
	uint64_t *mem, seed;
	uint32_t *gens;
	struct sigaction sa;
	int64_t start, next_poll, deadline, next_check, pace_base;
	unsigned long long writes = 0, paced = 0;
	uint32_t batch;
	unsigned long bad;

	if (argc < 4 || argc > 5) {
		usage();
		return 2;
	}
	if (parse_num(argv[1], "SIZE_MIB", 4096, &size_mib) ||
	    parse_num(argv[2], "RATE_MBPS", 100000, &rate) ||
	    parse_num(argv[3], "SECONDS", 100000000, &seconds) ||
	    (argc == 5 && parse_num(argv[4], "CHECK_EVERY", 100000000,
				    &check_every)))
		return 2;
	if (size_mib < 1) {
		fprintf(stderr, "memstress: SIZE_MIB must be at least 1\n");
		return 2;
	}
	npages = (uint32_t)(size_mib * (1048576 / PAGE_SIZE));

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: a signal must cut a sleep short */
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	unlink(STOP_FILE);

	mem = mmap(NULL, (size_t)npages * PAGE_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	gens = calloc(npages, sizeof(*gens));
	if (mem == MAP_FAILED || !gens) {
		fprintf(stderr, "memstress: cannot allocate %ld MiB: %s\n",
			size_mib, strerror(errno));
		return 2;
	}

	seed = mix((uint64_t)now_ns() ^ ((uint64_t)getpid() << 40));
	rng_state = seed;
	for (uint32_t i = 0; i < npages; i++)
		page_write(mem + (size_t)i * PAGE_WORDS, i, 0, seed);
	printf("memstress: running size=%ldMiB pages=%u rate=%ldMB/s seed=%016llx\n",
	       size_mib, npages, rate, (unsigned long long)seed);
	fflush(stdout);

	/*
	 * Pages per paced batch: about 1 ms of writing at the given rate, so
	 * that the sleeps are not shorter than the timer can deliver.
	 */
	batch = rate ? (uint32_t)(rate * 1000000 / PAGE_SIZE / 1000) : 64;
	if (batch < 1)
		batch = 1;

	start = now_ns();
	pace_base = start;
	next_poll = start + POLL_NS;
	deadline = seconds ? start + seconds * 1000000000ll : INT64_MAX;
	next_check = check_every ? start + check_every * 1000000000ll :
		     INT64_MAX;
	bad = 0;
	while (!stop_requested) {
		int64_t t;

		for (uint32_t k = 0; k < batch; k++) {
			uint32_t i = (uint32_t)(rng_next() % npages);

			page_write(mem + (size_t)i * PAGE_WORDS, i, ++gens[i],
				   seed);
		}
		writes += batch;
		paced += batch;

		t = now_ns();
		if (rate) {
			int64_t due = pace_base + (int64_t)(paced * PAGE_SIZE *
							    1000ull / rate);

			/*
			 * Far behind (the program was descheduled, or the
			 * rate is more than the CPU can do): start pacing
			 * afresh rather than writing in a burst to catch up.
			 */
			if (t - due > 100000000ll) {
				pace_base = t;
				paced = 0;
			} else if (due > t) {
				sleep_until(due);
				t = now_ns();
			}
		}
		if (t >= next_poll) {
			next_poll = t + POLL_NS;
			if (t >= deadline || access(STOP_FILE, F_OK) == 0)
				break;
		}
		if (t >= next_check) {
			bad = verify_all(mem, gens, npages, seed);
			if (bad)
				break;
			next_check = now_ns() + check_every * 1000000000ll;
		}
	}

	{
		double secs = (double)(now_ns() - start) / 1e9;

		printf("memstress: stats seconds=%.2f rate=%.1fMB/s\n", secs,
		       secs > 0 ? (double)writes * PAGE_SIZE / 1e6 / secs : 0.0);
	}
	if (!bad)
		bad = verify_all(mem, gens, npages, seed);
	unlink(STOP_FILE);
	if (bad) {
		fflush(stdout);
		return 1;
	}
	printf("memstress: ok pages=%u writes=%llu\n", npages, writes);
	fflush(stdout);
	return 0;
}
