/* Axon: ax_version, the version of the library itself (the macros in
 * axon/version.h give the version of the headers a program compiled
 * against). */
#include "axon/version.h"

const char *ax_version(void) { return AX_VERSION_STRING; }
