/* Text the VM sends before login: the banner (sshc_banner_clean), the
 * keyboard-interactive prompts, name and instruction (sshc_text_clean),
 * and its version lines and KEXINIT as the handshake probe reads them
 * (sshc_kexinit_parse: every list a C string within its field).
 * Checks what they promise: the bounds, CRLF-only line ends and no control
 * bytes in the banner, valid UTF-8 in both (what JSON and xterm.js take). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ssh/sshc.h"

/* Length of the valid UTF-8 sequence at p, 0 if invalid. */
static size_t valid_utf8(const uint8_t *p, size_t n)
{
	size_t len;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

static void check_utf8(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t l = valid_utf8(p + i, n - i);

		if (l == 0)
			abort();
		i += l;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[SSHC_BANNER_MAX];
	static struct sshc_kexinit k;
	char text[SSHC_PROMPT_MAX];
	size_t n = sshc_banner_clean((const char *)data, size, out);
	int r = sshc_kexinit_parse(data, size, &k);

	if (r != 0 && r != -EAGAIN && r != -EPROTO)
		abort();
	for (size_t i = 0; r == 0 && i < SSHC_KEX_LISTS; i++)
		if (memchr(k.lists[i], '\0', sizeof(k.lists[i])) == NULL)
			abort();

	if (n > SSHC_BANNER_MAX)
		abort();
	check_utf8(out, n);
	for (size_t i = 0; i < n; i++) {
		if ((out[i] < 0x20 && out[i] != '\t' && out[i] != '\r' && out[i] != '\n') ||
		    out[i] == 0x7f)
			abort();
		if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r'))
			abort();
		if (out[i] == '\r' && (i + 1 >= n || out[i + 1] != '\n'))
			abort();
	}
	if (n > 0 && (n < 2 || out[n - 2] != '\r' || out[n - 1] != '\n'))
		abort();

	n = sshc_text_clean((const char *)data, size, text, sizeof(text));
	if (n >= sizeof(text) || text[n] != '\0' || strlen(text) != n)
		abort();
	check_utf8((const uint8_t *)text, n);
	for (size_t i = 0; i < n; i++)
		if (((uint8_t)text[i] < 0x20 && text[i] != '\n' && text[i] != '\t') ||
		    text[i] == 0x7f)
			abort();
	return 0;
}
