/* SPDX-License-Identifier: MIT */
/*
 * The smallest C use of the library: the header compiles as C99 with warnings as errors, the Rust
 * static library links into a C program, and the thread's last-error message starts out as a
 * valid empty string.
 */
#include "msm_winsys.h"

#include "check.h"

#include <stdio.h>
#include <string.h>

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

   return check_report("test_smoke");
}
