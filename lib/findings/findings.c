#include "findings/findings.h"

static const char *const names[RC_MAX] = {
#define THIN_FINDING_NAME(code, name) [code] = name,
	THIN_FINDINGS(THIN_FINDING_NAME)
#undef THIN_FINDING_NAME
};

const char *finding_name(int code)
{
	if (code < 0 || code >= RC_MAX)
		return "unknown";
	return names[code];
}
