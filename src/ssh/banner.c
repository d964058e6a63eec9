/* The VM's pre-login banner (SSH_MSG_USERAUTH_BANNER, sshd_config
 * `Banner`): cleaning it into bytes a terminal may show. Pure; the session
 * keeps the result and hands it to on_data ahead of the shell's output
 * (sshc.c). */
#include "ssh/sshc.h"

#include <string.h>

static const char cut_note[] = "\r\n[the VM's banner was longer than 8 KiB and is cut here]\r\n";

/* Length of the valid UTF-8 sequence at p (at most n bytes available) that
 * encodes a printable character, 0 for invalid UTF-8, -1 for a C1 control
 * (U+0080..U+009F, which a terminal may obey as ESC sequences). */
static int utf8_len(const unsigned char *p, size_t n)
{
	unsigned cp;
	int len;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1fu;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0fu;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07u;
	else
		return 0;
	if ((size_t)len > n)
		return 0;
	for (int i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3fu);
	}
	/* Overlong forms, surrogates, beyond U+10FFFF. */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	if (cp >= 0x80 && cp <= 0x9f)
		return -1;
	return len;
}

size_t sshc_banner_clean(const char *raw, size_t len, uint8_t *out)
{
	const unsigned char *p = (const unsigned char *)raw;
	/* Room kept for the note that says the banner was cut. */
	const size_t limit = SSHC_BANNER_MAX - (sizeof(cut_note) - 1);
	size_t o = 0, i = 0;
	bool printable = false, cut = false;

	if (raw == NULL)
		return 0;
	while (i < len) {
		unsigned char ch = p[i];
		const unsigned char *seq = p + i;
		size_t n = 1, adv = 1;

		if (ch == '\r' && i + 1 < len && p[i + 1] == '\n') {
			seq = (const unsigned char *)"\r\n", n = 2, adv = 2;
		} else if (ch == '\n' || ch == '\r') {
			seq = (const unsigned char *)"\r\n", n = 2;
		} else if (ch == '\t' || (ch >= 0x20 && ch < 0x7f)) {
			printable = printable || (ch != ' ' && ch != '\t');
		} else if (ch < 0x20 || ch == 0x7f) {
			i++;
			continue;
		} else {
			int u = utf8_len(seq, len - i);

			if (u < 0) {
				i += 2;
				continue;
			}
			if (u == 0) {
				seq = (const unsigned char *)"?";
			} else {
				n = (size_t)u, adv = (size_t)u;
			}
			printable = true;
		}
		if (o + n > limit) {
			cut = true;
			break;
		}
		memcpy(out + o, seq, n);
		o += n;
		i += adv;
	}
	if (!printable)
		return 0;
	if (cut) {
		memcpy(out + o, cut_note, sizeof(cut_note) - 1);
		return o + sizeof(cut_note) - 1;
	}
	if (o < 2 || out[o - 2] != '\r' || out[o - 1] != '\n') {
		memcpy(out + o, "\r\n", 2);
		o += 2;
	}
	return o;
}

size_t sshc_text_clean(const char *raw, size_t len, char *out, size_t size)
{
	const unsigned char *p = (const unsigned char *)raw;
	size_t o = 0, i = 0;

	if (size == 0)
		return 0;
	while (raw != NULL && i < len) {
		unsigned char ch = p[i];
		const char *seq = (const char *)p + i;
		size_t n = 1, adv = 1;

		if (ch == '\r' && i + 1 < len && p[i + 1] == '\n') {
			seq = "\n", adv = 2;
		} else if (ch == '\r') {
			seq = "\n";
		} else if (ch < 0x20 && ch != '\n' && ch != '\t') {
			i++;
			continue;
		} else if (ch == 0x7f) {
			i++;
			continue;
		} else if (ch >= 0x80) {
			int u = utf8_len(p + i, len - i);

			if (u < 0) {
				i += 2;
				continue;
			}
			if (u == 0)
				seq = "?";
			else
				n = (size_t)u, adv = (size_t)u;
		}
		if (o + n > size - 1)
			break;
		memcpy(out + o, seq, n);
		o += n;
		i += adv;
	}
	out[o] = '\0';
	return o;
}
