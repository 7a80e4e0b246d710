/*
 * cpubench: a small, deterministic CPU benchmark for the tern guest.
 *
 * It exercises integer ALU/multiply/divide work (sieve, CRC-32, hashing),
 * memory work (a few MiB array: sorting and a dependent pointer chase),
 * atomics, and double/single precision floating point (n-body, matrix
 * multiply, fused multiply-add, division, square root).
 *
 * Every phase folds its results into a 64-bit checksum, printed as
 *
 *     cpubench: ok checksum=<16 hex digits>
 *
 * The result is fully deterministic.  The program is built with
 * -ffp-contract=off and uses fma()/fmaf() explicitly wherever a fused
 * multiply-add is wanted, so a native build on any IEEE-754 host prints the
 * same checksum as the riscv64 build: a handy reference when checking an
 * emulator's arithmetic.  Timing is measured from outside.
 *
 * Usage: cpubench [-v] [SCALE]
 *   SCALE  positive integer work multiplier (default 1)
 *   -v     also print the time of each phase (on stderr)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t checksum = 0xcbf29ce484222325ull;

/* Fold a 64-bit value into the running checksum (FNV-1a style over bytes). */
static void fold(uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        checksum ^= (v >> (8 * i)) & 0xff;
        checksum *= 0x100000001b3ull;
    }
}

static void fold_double(double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    fold(bits);
}

static void fold_float(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    fold(bits);
}

static uint64_t rng_state;

static uint64_t xorshift64(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

/* ---- integer work ------------------------------------------------------ */

static void bench_sieve(unsigned limit)
{
    unsigned char *composite = calloc(limit + 1, 1);
    if (!composite) {
        perror("cpubench: calloc");
        exit(1);
    }
    for (unsigned i = 2; (uint64_t)i * i <= limit; i++)
        if (!composite[i])
            for (unsigned j = i * i; j <= limit; j += i)
                composite[j] = 1;
    uint64_t count = 0, sum = 0;
    for (unsigned i = 2; i <= limit; i++)
        if (!composite[i]) {
            count++;
            sum += i;
        }
    free(composite);
    fold(count);
    fold(sum);
}

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

static void bench_crc(size_t len, unsigned rounds)
{
    unsigned char *buf = malloc(len);
    if (!buf) {
        perror("cpubench: malloc");
        exit(1);
    }
    rng_state = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)(xorshift64() >> 56);
    uint32_t crc = 0xffffffffu;
    for (unsigned r = 0; r < rounds; r++) {
        for (size_t i = 0; i < len; i++)
            crc = crc_table[(crc ^ buf[i]) & 0xff] ^ (crc >> 8);
        buf[r % len] ^= (unsigned char)crc; /* make every round differ */
    }
    free(buf);
    fold(crc ^ 0xffffffffu);
}

/* Multiply/divide/remainder mix (exercises the M extension, signed and not). */
static void bench_muldiv(unsigned iters)
{
    uint64_t a = 0x123456789abcdefull, acc = 0;
    int64_t s = -987654321;
    for (unsigned i = 1; i <= iters; i++) {
        a = a * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t d = (a >> 40) | 1;
        acc += a / d + a % (i | 1);
        s = s * 31 + (int64_t)(a >> 3);
        acc ^= (uint64_t)(s / (int64_t)((i & 0xff) + 1)) + (uint64_t)(s % 7);
        uint32_t w = (uint32_t)a;
        acc += (uint64_t)(w / ((uint32_t)i | 1u)) ^ (uint64_t)((int32_t)w % 13);
        acc += (uint64_t)(((unsigned __int128)a * acc) >> 64);
    }
    fold(acc);
    fold((uint64_t)s);
}

/* ---- memory work ------------------------------------------------------- */

static void sort_u32(uint32_t *v, uint32_t *tmp, size_t n)
{
    /* LSD radix sort, 4 passes of 8 bits: streaming memory traffic. */
    for (int shift = 0; shift < 32; shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < n; i++)
            count[((v[i] >> shift) & 0xff) + 1]++;
        for (int b = 0; b < 256; b++)
            count[b + 1] += count[b];
        for (size_t i = 0; i < n; i++)
            tmp[count[(v[i] >> shift) & 0xff]++] = v[i];
        memcpy(v, tmp, n * sizeof *v);
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void bench_memory(size_t n, unsigned chase_steps)
{
    uint32_t *v = malloc(n * sizeof *v), *tmp = malloc(n * sizeof *tmp);
    uint32_t *next = malloc(n * sizeof *next);
    if (!v || !tmp || !next) {
        perror("cpubench: malloc");
        exit(1);
    }
    rng_state = 0x2545f4914f6cdd1dull;
    for (size_t i = 0; i < n; i++)
        v[i] = (uint32_t)xorshift64();
    sort_u32(v, tmp, n);
    uint64_t h = 0;
    for (size_t i = 1; i < n; i++) {
        if (v[i - 1] > v[i]) {
            fprintf(stderr, "cpubench: radix sort failed\n");
            exit(1);
        }
        h = h * 31 + v[i];
    }
    fold(h);

    /* qsort (libc, comparison based) on a quarter of the data. */
    size_t q = n / 4;
    for (size_t i = 0; i < q; i++)
        v[i] = (uint32_t)xorshift64();
    qsort(v, q, sizeof *v, cmp_u32);
    fold(v[0]);
    fold(v[q / 2]);
    fold(v[q - 1]);

    /* Dependent random walk: a single-cycle permutation (Sattolo). */
    for (size_t i = 0; i < n; i++)
        next[i] = (uint32_t)i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = xorshift64() % i;
        uint32_t t = next[i];
        next[i] = next[j];
        next[j] = t;
    }
    uint32_t p = 0;
    uint64_t walk = 0;
    for (unsigned s = 0; s < chase_steps; s++) {
        p = next[p];
        walk += p;
    }
    fold(walk);
    free(v);
    free(tmp);
    free(next);
}

static void bench_atomics(unsigned iters)
{
    static uint64_t counter;
    static uint32_t word;
    for (unsigned i = 0; i < iters; i++) {
        __atomic_fetch_add(&counter, i, __ATOMIC_SEQ_CST);
        __atomic_fetch_xor(&word, i * 2654435761u, __ATOMIC_RELAXED);
        uint32_t expected = __atomic_load_n(&word, __ATOMIC_ACQUIRE);
        __atomic_compare_exchange_n(&word, &expected, expected + 1, 0,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    }
    fold(counter);
    fold(word);
}

/* ---- floating point work ----------------------------------------------- */

struct body {
    double x, y, z, vx, vy, vz, mass;
};

static void bench_nbody(unsigned steps)
{
    const double pi = 3.141592653589793;
    const double solar_mass = 4 * pi * pi;
    const double days_per_year = 365.24;
    struct body b[5] = {
        {0, 0, 0, 0, 0, 0, solar_mass},
        {4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
         1.66007664274403694e-03 * days_per_year, 7.69901118419740425e-03 * days_per_year,
         -6.90460016972063023e-05 * days_per_year, 9.54791938424326609e-04 * solar_mass},
        {8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
         -2.76742510726862411e-03 * days_per_year, 4.99852801234917238e-03 * days_per_year,
         2.30417297573763929e-05 * days_per_year, 2.85885980666130812e-04 * solar_mass},
        {1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
         2.96460137564761618e-03 * days_per_year, 2.37847173959480950e-03 * days_per_year,
         -2.96589568540237556e-05 * days_per_year, 4.36624404335156298e-05 * solar_mass},
        {1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
         2.68067772490389322e-03 * days_per_year, 1.62824170038242295e-03 * days_per_year,
         -9.51592254519715870e-05 * days_per_year, 5.15138902046611451e-05 * solar_mass},
    };
    const int n = 5;
    const double dt = 0.01;
    double px = 0, py = 0, pz = 0;
    for (int i = 0; i < n; i++) {
        px += b[i].vx * b[i].mass;
        py += b[i].vy * b[i].mass;
        pz += b[i].vz * b[i].mass;
    }
    b[0].vx = -px / solar_mass;
    b[0].vy = -py / solar_mass;
    b[0].vz = -pz / solar_mass;

    for (unsigned s = 0; s < steps; s++) {
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++) {
                double dx = b[i].x - b[j].x, dy = b[i].y - b[j].y, dz = b[i].z - b[j].z;
                double d2 = dx * dx + dy * dy + dz * dz;
                double mag = dt / (d2 * sqrt(d2));
                b[i].vx -= dx * b[j].mass * mag;
                b[i].vy -= dy * b[j].mass * mag;
                b[i].vz -= dz * b[j].mass * mag;
                b[j].vx += dx * b[i].mass * mag;
                b[j].vy += dy * b[i].mass * mag;
                b[j].vz += dz * b[i].mass * mag;
            }
        for (int i = 0; i < n; i++) {
            b[i].x += dt * b[i].vx;
            b[i].y += dt * b[i].vy;
            b[i].z += dt * b[i].vz;
        }
    }
    double e = 0;
    for (int i = 0; i < n; i++) {
        e += 0.5 * b[i].mass * (b[i].vx * b[i].vx + b[i].vy * b[i].vy + b[i].vz * b[i].vz);
        for (int j = i + 1; j < n; j++) {
            double dx = b[i].x - b[j].x, dy = b[i].y - b[j].y, dz = b[i].z - b[j].z;
            e -= b[i].mass * b[j].mass / sqrt(dx * dx + dy * dy + dz * dz);
        }
    }
    fold_double(e);
    for (int i = 0; i < n; i++)
        fold_double(b[i].x + b[i].y + b[i].z);
}

static void bench_matmul(int n, unsigned reps)
{
    double *a = malloc(sizeof(double) * n * n), *b = malloc(sizeof(double) * n * n);
    double *c = malloc(sizeof(double) * n * n);
    if (!a || !b || !c) {
        perror("cpubench: malloc");
        exit(1);
    }
    for (int i = 0; i < n * n; i++) {
        a[i] = (double)((i * 7) % 13) / 8.0 - 0.75;
        b[i] = (double)((i * 5) % 11) / 16.0 + 0.125;
    }
    for (unsigned r = 0; r < reps; r++) {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double sum = 0;
                for (int k = 0; k < n; k++)
                    sum = fma(a[i * n + k], b[k * n + j], sum);
                c[i * n + j] = sum;
            }
        /* feed back (scaled) so repetitions are not redundant */
        for (int i = 0; i < n * n; i++)
            a[i] = c[i] / (double)(n * 4) - a[i] * 0.5;
    }
    double tr = 0;
    for (int i = 0; i < n; i++)
        tr += c[i * n + i];
    fold_double(tr);
    fold_double(c[n * n / 3]);
    free(a);
    free(b);
    free(c);
}

/* Single precision: Mandelbrot iteration counts plus an fmaf/divide/sqrt mix. */
static void bench_float(int size, int max_iter)
{
    uint64_t total = 0;
    for (int py = 0; py < size; py++)
        for (int px = 0; px < size; px++) {
            float cr = -2.0f + 2.5f * (float)px / (float)size;
            float ci = -1.25f + 2.5f * (float)py / (float)size;
            float zr = 0, zi = 0;
            int it = 0;
            while (it < max_iter && zr * zr + zi * zi <= 4.0f) {
                float t = zr * zr - zi * zi + cr;
                zi = 2.0f * zr * zi + ci;
                zr = t;
                it++;
            }
            total += (uint64_t)it;
        }
    fold(total);

    float acc = 1.0f;
    for (int i = 1; i <= size * 64; i++) {
        float x = (float)i;
        acc = fmaf(acc, 0.999f, sqrtf(x) / (x + 1.0f));
    }
    fold_float(acc);

    double dacc = 0;
    for (int i = 1; i <= size * 64; i++) {
        double x = (double)i;
        dacc += (double)(float)(x / 3.0) - (double)(long)(x * 0.37) + floor(x / 7.0);
    }
    fold_double(dacc);
}

static int verbose;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void phase(const char *name, double *t)
{
    double t1 = now();
    if (verbose)
        fprintf(stderr, "cpubench: %-8s %7.3f s\n", name, t1 - *t);
    *t = t1;
}

int main(int argc, char **argv)
{
    unsigned scale = 1;
    int argi = 1;
    if (argi < argc && strcmp(argv[argi], "-v") == 0) {
        verbose = 1;
        argi++;
    }
    if (argi < argc) {
        char *end;
        unsigned long v = strtoul(argv[argi], &end, 10);
        if (*end || v == 0 || v > 1000 || argi + 1 != argc) {
            fprintf(stderr, "usage: %s [-v] [SCALE]  (SCALE 1..1000)\n", argv[0]);
            return 2;
        }
        scale = (unsigned)v;
    }
    double t = now(), t_start = t;
    crc_init();
    for (unsigned s = 0; s < scale; s++) {
        bench_sieve(2000000);
        phase("sieve", &t);
        bench_crc(1 << 20, 6);
        phase("crc32", &t);
        bench_muldiv(1500000);
        phase("muldiv", &t);
        bench_memory(1 << 20, 2000000);
        phase("memory", &t);
        bench_atomics(300000);
        phase("atomics", &t);
        bench_nbody(100000);
        phase("nbody", &t);
        bench_matmul(96, 4);
        phase("matmul", &t);
        bench_float(192, 200);
        phase("float", &t);
    }
    if (verbose)
        fprintf(stderr, "cpubench: total    %7.3f s\n", now() - t_start);
    printf("cpubench: ok checksum=%016llx\n", (unsigned long long)checksum);
    return 0;
}
