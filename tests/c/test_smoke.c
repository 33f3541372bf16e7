/* SPDX-License-Identifier: MIT */
/*
 * The smallest C use of the library: the header compiles as C99 with warnings as errors, the Rust
 * static library links into a C program, and the thread's last-error message starts out as a
 * valid empty string.
 */
#include "msm_winsys.h"

#include <stdio.h>
#include <string.h>

static int failures;

#define CHECK(cond)                                                         \
   do {                                                                     \
      if (!(cond)) {                                                        \
         fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
         failures++;                                                        \
      }                                                                     \
   } while (0)

int
main(void)
{
   const char *msg = msmws_last_error_message();
   CHECK(msg != NULL);
   if (msg)
      CHECK(strcmp(msg, "") == 0);

   /* Asking twice gives the same, still empty, string. */
   const char *again = msmws_last_error_message();
   CHECK(again != NULL && again[0] == '\0');

   if (failures) {
      fprintf(stderr, "test_smoke: %d check(s) failed\n", failures);
      return 1;
   }
   printf("test_smoke: ok\n");
   return 0;
}
