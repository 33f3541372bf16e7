// SPDX-License-Identifier: MIT
//
// include/msm_winsys.h must compile as C++ (-pedantic -Werror) and link with C linkage.
#include "msm_winsys.h"

#include <cstdio>
#include <cstring>

int
main()
{
   const char *msg = msmws_last_error_message();
   if (msg == nullptr || std::strcmp(msg, "") != 0) {
      std::fprintf(stderr, "test_header_cxx: msmws_last_error_message() is not \"\"\n");
      return 1;
   }
   std::printf("test_header_cxx: ok\n");
   return 0;
}
