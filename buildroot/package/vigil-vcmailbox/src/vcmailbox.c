/*
 * vcmailbox TAG BUFFER_BYTES REQUEST_BYTES [VALUE...]: one VideoCore firmware property request
 * through the kernel's mailbox driver (/dev/vcio), the command line of raspberrypi/utils'
 * vcmailbox, which Buildroot 2026.02 does not package (rpi-userland, which had it, was removed).
 * Vigil needs it for one thing: vigil-reboot sets the tryboot reboot flag with
 *   vcmailbox 0x00038064 4 0 1      (RPI_FIRMWARE_SET_REBOOT_FLAGS, flags = 1: tryboot)
 * Prints the whole message buffer after the call as hex words, like the original: word 0 the
 * size, word 1 the response code (0x80000000 = success), then the tag, its sizes and values.
 * Exit status 0 when the firmware answered with success, else 1 with the reason on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define VCIO_DEVICE "/dev/vcio"
/* The mailbox driver's property ioctl (drivers/char/broadcom/vcio.c) */
#define IOCTL_MBOX_PROPERTY _IOWR(100, 0, char *)
#define MAX_WORDS 256
#define RESPONSE_SUCCESS 0x80000000u

static int parse_word(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *s == '\0' || *end != '\0' || v > 0xffffffffUL)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int main(int argc, char **argv)
{
	uint32_t buf[MAX_WORDS] __attribute__((aligned(16)));
	int i, n = 0, fd, words;

	if (argc < 4 || argc - 1 + 3 > MAX_WORDS) {
		fprintf(stderr, "usage: vcmailbox TAG BUFFER_BYTES REQUEST_BYTES [VALUE...]\n");
		return 1;
	}
	memset(buf, 0, sizeof(buf));
	buf[n++] = 0;		/* total size, filled in below */
	buf[n++] = 0;		/* request code: process request */
	for (i = 1; i < argc; i++) {
		if (parse_word(argv[i], &buf[n++]) < 0) {
			fprintf(stderr, "vcmailbox: '%s' is not a 32-bit number\n", argv[i]);
			return 1;
		}
	}
	/* Room for the response: the tag's value buffer is BUFFER_BYTES long */
	words = 2 + 3 + (int)((buf[3] + 3) / 4);
	if (words > MAX_WORDS - 1) {
		fprintf(stderr, "vcmailbox: buffer of %u bytes is too large\n", buf[3]);
		return 1;
	}
	if (n < words)
		n = words;
	buf[n++] = 0;		/* end tag */
	buf[0] = (uint32_t)(n * sizeof(buf[0]));

	fd = open(VCIO_DEVICE, O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "vcmailbox: cannot open %s: %s\n", VCIO_DEVICE, strerror(errno));
		return 1;
	}
	if (ioctl(fd, IOCTL_MBOX_PROPERTY, buf) < 0) {
		fprintf(stderr, "vcmailbox: mailbox property call failed: %s\n", strerror(errno));
		close(fd);
		return 1;
	}
	close(fd);
	for (i = 0; i < n; i++)
		printf("0x%08x%c", buf[i], i + 1 < n ? ' ' : '\n');
	if (buf[1] != RESPONSE_SUCCESS) {
		fprintf(stderr, "vcmailbox: the firmware answered 0x%08x, not success\n", buf[1]);
		return 1;
	}
	return 0;
}
