/* Axon: strings for ax_err, generated from the one list in axon/error.h. */
#include "axon/error.h"

const char *ax_strerror(ax_err err) {
  switch (err) {
#define AX_ERR_STR(name, value, desc) case AX_##name: return desc;
    AX_ERR_MAP(AX_ERR_STR)
#undef AX_ERR_STR
  }
  return "unknown error";
}

const char *ax_err_name(ax_err err) {
  switch (err) {
#define AX_ERR_NAME(name, value, desc) case AX_##name: return "AX_" #name;
    AX_ERR_MAP(AX_ERR_NAME)
#undef AX_ERR_NAME
  }
  return "AX_E?";
}
