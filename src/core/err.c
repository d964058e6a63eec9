#include "core/err.h"

#include <string.h>

const char *err_str(int code)
{
	if (code >= 0)
		return "success";
	switch (-code) {
	case BERR_INTEGRITY:
		return "stored data failed its integrity check";
	case BERR_HOSTKEY:
		return "host key mismatch";
	case BERR_SSH_AUTH:
		return "SSH authentication failed";
	case BERR_SSH_SHELL:
		return "PTY or shell refused";
	case BERR_UNREACHABLE:
		return "VM unreachable";
	case BERR_PROTOCOL:
		return "protocol error";
	case BERR_BADKEY:
		return "invalid private key";
	case BERR_STORE:
		return "store unavailable";
	case BERR_SSH_HANDSHAKE:
		return "SSH handshake refused";
	default:
		return strerror(-code);
	}
}
