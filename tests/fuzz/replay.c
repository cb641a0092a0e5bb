/* SPDX-License-Identifier: MIT */
/* replay.c - main() of a fuzz target built without libFuzzer: run every
 * input file named on the command line (a directory stands for the files
 * in it, in name order) through LLVMFuzzerTestOneInput once.
 *
 *   fuzz-TARGET-replay PATH...
 *
 * Exit status 0 when every input ran (a broken invariant aborts), 1 when a
 * path cannot be read or no input was found at all, 2 for a usage error. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#define INPUT_MAX (1u << 20)

static const char *prog = "fuzz-replay";
static unsigned long inputs;

static int run_file(const char *path) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "%s: cannot open %s: %s\n", prog, path, strerror(errno));
                return -1;
        }
        /* Exactly the file's bytes, in a buffer of their size, so that
         * ASan sees a read past the input's end. */
        uint8_t *buf = malloc(INPUT_MAX);
        size_t len = 0;
        ssize_t n = 0;
        while (buf && len < INPUT_MAX && (n = read(fd, buf + len, INPUT_MAX - len)) > 0)
                len += (size_t)n;
        close(fd);
        if (!buf || n < 0) {
                fprintf(stderr, "%s: cannot read %s: %s\n", prog, path,
                        buf ? strerror(errno) : "out of memory");
                free(buf);
                return -1;
        }
        uint8_t *data = malloc(len ? len : 1);
        if (!data) {
                free(buf);
                return -1;
        }
        memcpy(data, buf, len);
        free(buf);
        LLVMFuzzerTestOneInput(data, len);
        free(data);
        inputs++;
        return 0;
}

static int cmp_names(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir) {
        DIR *d = opendir(dir);
        if (!d) {
                fprintf(stderr, "%s: cannot open %s: %s\n", prog, dir, strerror(errno));
                return -1;
        }
        char **names = NULL;
        size_t n = 0, alloc = 0;
        struct dirent *e;
        int r = 0;
        while ((e = readdir(d))) {
                if (e->d_name[0] == '.')
                        continue;
                if (n == alloc) {
                        alloc = alloc ? alloc * 2 : 64;
                        char **m = realloc(names, alloc * sizeof(*m));
                        if (!m) {
                                r = -1;
                                break;
                        }
                        names = m;
                }
                if (!(names[n] = strdup(e->d_name))) {
                        r = -1;
                        break;
                }
                n++;
        }
        closedir(d);
        if (names)
                qsort(names, n, sizeof(*names), cmp_names);
        for (size_t i = 0; i < n; i++) {
                char path[4096];
                snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
                struct stat st;
                if (r == 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode) && run_file(path) < 0)
                        r = -1;
                free(names[i]);
        }
        free(names);
        return r;
}

int main(int argc, char **argv) {
        if (argc > 0 && argv[0][0]) {
                const char *slash = strrchr(argv[0], '/');
                prog = slash ? slash + 1 : argv[0];
        }
        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                fprintf(argc < 2 ? stderr : stdout, "Usage: %s FILE-OR-DIRECTORY...\n", prog);
                return argc < 2 ? 2 : 0;
        }
        int status = 0;
        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "%s: cannot open %s: %s\n", prog, argv[i], strerror(errno));
                        status = 1;
                } else if ((S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i])) < 0)
                        status = 1;
        }
        if (status == 0 && inputs == 0) {
                fprintf(stderr, "%s: no input files found\n", prog);
                status = 1;
        }
        printf("%s: %lu input(s) ran clean\n", prog, inputs);
        return status;
}
