/* Commands of the sizeup binary. Each takes the arguments after its own name (argv[0] is the
 * command name) and returns the process exit status; only app/ parses arguments and exits. */
#ifndef SIZEUP_APP_H
#define SIZEUP_APP_H

#include <stdio.h>

int app_cmd_inspect(int argc, char **argv);
int app_cmd_devices(int argc, char **argv);
int app_cmd_tokenize(int argc, char **argv);
int app_cmd_run(int argc, char **argv);
int app_cmd_logits(int argc, char **argv);
int app_cmd_gen_model(int argc, char **argv);
int app_cmd_bench(int argc, char **argv);
int app_cmd_quantize(int argc, char **argv);

/* Fixture-free helpers shared by commands. */
/* Print "sizeup CMD: MESSAGE\n" to stderr; returns 1 so callers can `return app_fail(...)`. */
int app_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "1.23 GiB", "512 KiB", "17 B": binary units, 3 significant digits. buf >= 16 bytes. */
const char *app_fmt_bytes(unsigned long long bytes, char *buf, size_t buflen);
/* The Vulkan device index from a --device value, else from SIZEUP_DEVICE, else -1 (automatic).
 * Returns 0, or 2 after a message naming a bad value. */
int app_device_index(const char *cmd, const char *flag_value, int *out);

#endif
