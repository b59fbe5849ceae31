/* Axon: the library's version. This header is the one place the version is
 * written: CMake reads these three numbers into project(VERSION), the shared
 * library's file name and the installed package files (axonConfigVersion.cmake,
 * axon.pc), so they cannot disagree. */
#ifndef AXON_VERSION_H
#define AXON_VERSION_H

#include "axon/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the headers being compiled against (semantic versioning:
 * before 1.0, a minor release may break the API and the ABI). */
#define AX_VERSION_MAJOR 0
#define AX_VERSION_MINOR 1
#define AX_VERSION_PATCH 0

#define AX__VERSION_STR2(x) #x
#define AX__VERSION_STR(x) AX__VERSION_STR2(x)
/* "MAJOR.MINOR.PATCH" of the headers, e.g. "0.1.0". */
#define AX_VERSION_STRING                                                    \
  AX__VERSION_STR(AX_VERSION_MAJOR)                                          \
  "." AX__VERSION_STR(AX_VERSION_MINOR) "." AX__VERSION_STR(AX_VERSION_PATCH)

/* ax_version gives the version of the library linked at run time as
 * "MAJOR.MINOR.PATCH"; compare it with AX_VERSION_STRING to detect a program
 * running against a different libaxon.so than it was built with. Returns a
 * static string: never NULL, never to be freed. Thread: any; needs no
 * system. Errors: none. */
AX_API const char *ax_version(void);

#ifdef __cplusplus
}
#endif

#endif
