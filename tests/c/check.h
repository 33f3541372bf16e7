/* SPDX-License-Identifier: MIT */
/*
 * The C tests' one assertion. CHECK counts a failure, says where and what the library's last
 * error message was, and lets the test go on; check_report() ends main with the count.
 * Include after msm_winsys.h.
 */
#ifndef MSMWS_TEST_CHECK_H
#define MSMWS_TEST_CHECK_H

#include <stdio.h>

static int failures;

#define CHECK(cond)                                                                       \
   do {                                                                                   \
      if (!(cond)) {                                                                      \
         fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n", __FILE__, __LINE__, \
                 #cond, msmws_last_error_message());                                      \
         failures++;                                                                      \
      }                                                                                   \
   } while (0)

/* The exit status of test `name`: 0 when every check held. */
static int
check_report(const char *name)
{
   if (failures) {
      fprintf(stderr, "%s: %d check(s) failed\n", name, failures);
      return 1;
   }
   printf("%s: all checks passed\n", name);
   return 0;
}

#endif
