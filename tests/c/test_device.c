/* SPDX-License-Identifier: MIT */
/*
 * The device C API as a Mesa driver uses it: open the kernel model, read the probe, destroy; and
 * every bad input gets a negative errno and a message, never a crash.
 */
#define _POSIX_C_SOURCE 200809L /* open(O_CLOEXEC), close() under -std=c99 */

#include "msm_winsys.h"

#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void
check_profile(const char *name, uint64_t va_size, bool prr)
{
   msmws_device *dev = NULL;
   msmws_device_info info;

   CHECK(msmws_device_new_sim(name, &dev) == 0);
   if (!dev)
      return;
   memset(&info, 0, sizeof(info));
   CHECK(msmws_device_get_info(dev, &info) == 0);
   CHECK(strcmp(info.chip_name, name) == 0);
   CHECK(info.uapi_major == 1 && info.uapi_minor == 13);
   CHECK(info.va_start == 0x100000000ull);
   CHECK(info.va_size_B == va_size);
   msmws_device_extras extras;
   CHECK(msmws_device_get_extras(dev, &extras) == 0);
   CHECK(extras.has_prr == prr);
   CHECK(extras.timeline_syncobjs);
   CHECK(info.vm_mode == MSMWS_VM_MODE_VM_BIND);
   msmws_device_destroy(dev);
}

int
main(void)
{
   msmws_device *dev = NULL;
   msmws_device_info info;
   int fd;

   check_profile("a618", 0x100000000ull, false);
   check_profile("a660", (1ull << 48) - 0x100000000ull, true);
   check_profile("a750", (1ull << 48) - 0x100000000ull, true);

   /* Bad input: negative errno, a sentence, and *out untouched. */
   CHECK(msmws_device_new_sim("a999", &dev) == -EINVAL);
   CHECK(dev == NULL);
   CHECK(strstr(msmws_last_error_message(), "a618") != NULL);
   CHECK(msmws_device_new_sim(NULL, &dev) == -EINVAL);
   CHECK(msmws_device_new_sim("a750", NULL) == -EINVAL);
   CHECK(msmws_device_get_info(NULL, &info) == -EINVAL);
   CHECK(msmws_device_new_from_fd(-1, &dev) == -EINVAL);
   CHECK(msmws_device_new_from_fd(1000000, &dev) == -EBADF);

   /* Not a DRM device: ENODEV with a sentence, and the caller's fd stays open. */
   fd = open("/dev/null", O_RDWR | O_CLOEXEC);
   CHECK(fd >= 0);
   CHECK(msmws_device_new_from_fd(fd, &dev) == -ENODEV);
   CHECK(strstr(msmws_last_error_message(), "not a DRM device") != NULL);
   CHECK(fcntl(fd, F_GETFD) >= 0);
   close(fd);

   msmws_device_destroy(NULL);

   return check_report("test_device");
}
