/* SPDX-License-Identifier: MIT */
/*
 * The buffer and flip-chain C API as a driver and a compositor use it: create, export, import
 * (deduped to the same GEM handle), references, the NO_SHARE export error, a flip chain on the
 * kernel model's CRTC; every bad input gets a negative errno and a message, never a crash.
 */
#define _POSIX_C_SOURCE 200809L /* fcntl(), close() under -std=c99 */

#include "msm_winsys.h"

#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SIZE_1080P (1920u * 1080u * 4u)

static void
check_buffers(const msmws_device *dev)
{
   msmws_bo *bo = NULL, *same = NULL, *priv = NULL, *bad = NULL;
   int fd = -1, fd2 = -1;

   CHECK(msmws_bo_new(dev, 65536, MSMWS_BO_WC | MSMWS_BO_SHARED, &bo) == 0);
   if (!bo)
      return;
   CHECK(msmws_bo_handle(bo) != 0);
   CHECK(msmws_bo_size(bo) == 65536);

   /* Export: CLOEXEC and read/write. */
   CHECK(msmws_bo_export_dmabuf(bo, &fd) == 0);
   CHECK(fd >= 0);
   CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
   CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR);

   /* Import of a live buffer: the same GEM handle. */
   CHECK(msmws_bo_import_dmabuf(dev, fd, &same) == 0);
   CHECK(same && msmws_bo_handle(same) == msmws_bo_handle(bo));
   CHECK(msmws_bo_size(same) == 65536);

   /* References. */
   CHECK(msmws_bo_ref(bo) == bo);
   msmws_bo_unref(bo);
   msmws_bo_unref(same);

   /* NO_SHARE cannot be exported: -EPERM and a sentence naming the flag. */
   CHECK(msmws_bo_new(dev, 4096, MSMWS_BO_WC | MSMWS_BO_NO_SHARE, &priv) == 0);
   CHECK(msmws_bo_export_dmabuf(priv, &fd2) == -EPERM);
   CHECK(fd2 == -1);
   CHECK(strstr(msmws_last_error_message(), "NO_SHARE") != NULL);
   msmws_bo_unref(priv);

   /* Bad input changes nothing. */
   CHECK(msmws_bo_new(dev, 4096, MSMWS_BO_WC | MSMWS_BO_SHARED | MSMWS_BO_NO_SHARE, &bad) ==
         -EINVAL);
   CHECK(msmws_bo_new(dev, 0, MSMWS_BO_WC, &bad) == -EINVAL);
   CHECK(msmws_bo_new(dev, 4096, 0x100, &bad) == -EINVAL);
   CHECK(msmws_bo_new(NULL, 4096, MSMWS_BO_WC, &bad) == -EINVAL);
   CHECK(msmws_bo_new(dev, 4096, MSMWS_BO_WC, NULL) == -EINVAL);
   CHECK(msmws_bo_import_dmabuf(dev, -1, &bad) == -EINVAL);
   CHECK(msmws_bo_import_dmabuf(dev, 0x7fff, &bad) == -EBADF);
   CHECK(msmws_bo_export_dmabuf(NULL, &fd2) == -EINVAL);
   CHECK(msmws_bo_export_dmabuf(bo, NULL) == -EINVAL);
   CHECK(bad == NULL);
   CHECK(msmws_bo_handle(NULL) == 0 && msmws_bo_size(NULL) == 0);
   CHECK(msmws_bo_ref(NULL) == NULL);
   msmws_bo_unref(NULL);

   msmws_bo_unref(bo);
   close(fd);
}

static void
check_flip_chain(const msmws_device *client, const msmws_device *comp)
{
   msmws_bo *bufs[3] = {NULL, NULL, NULL};
   int fds[3] = {-1, -1, -1};
   uint32_t index[3] = {99, 99, 99};
   msmws_flip_chain *chain = NULL, *bad = NULL;
   msmws_fb_layout layout = {1920, 1080, MSMWS_DRM_FORMAT_XRGB8888, 1920 * 4, 0};
   msmws_bo *priv = NULL;
   uint32_t i;
   int frame;

   CHECK(msmws_flip_chain_create(comp, MSMWS_SIM_CRTC_ID, &chain) == 0);
   if (!chain)
      return;
   for (i = 0; i < 3; i++) {
      CHECK(msmws_bo_new(client, SIZE_1080P, MSMWS_BO_WC | MSMWS_BO_SCANOUT | MSMWS_BO_SHARED,
                         &bufs[i]) == 0);
      CHECK(msmws_bo_export_dmabuf(bufs[i], &fds[i]) == 0);
      CHECK(msmws_flip_chain_import_dmabuf(chain, fds[i], &layout, &index[i]) == 0);
      CHECK(index[i] == i);
   }
   for (frame = 0; frame < 30; frame++)
      CHECK(msmws_flip_chain_flip(chain, index[frame % 3]) == 0);

   /* The buffer on screen (frame 29 -> index 2) cannot be removed; another one can. */
   CHECK(msmws_flip_chain_remove(chain, index[2]) == -EBUSY);
   CHECK(msmws_flip_chain_remove(chain, index[0]) == 0);
   CHECK(msmws_flip_chain_remove(chain, index[0]) == -EINVAL);
   CHECK(msmws_flip_chain_flip(chain, 7) == -EINVAL);

   /* A NO_SHARE buffer cannot back a framebuffer: the kernel's EINVAL. */
   CHECK(msmws_bo_new(comp, SIZE_1080P, MSMWS_BO_WC | MSMWS_BO_NO_SHARE, &priv) == 0);
   CHECK(msmws_flip_chain_add_bo(chain, priv, &layout, &i) == -EINVAL);
   msmws_bo_unref(priv);

   /* Bad input. */
   CHECK(msmws_flip_chain_create(NULL, MSMWS_SIM_CRTC_ID, &bad) == -EINVAL);
   CHECK(msmws_flip_chain_create(comp, MSMWS_SIM_CRTC_ID, NULL) == -EINVAL);
   CHECK(msmws_flip_chain_import_dmabuf(chain, fds[1], NULL, &i) == -EINVAL);
   CHECK(msmws_flip_chain_import_dmabuf(chain, -1, &layout, &i) == -EINVAL);
   CHECK(msmws_flip_chain_add_bo(chain, NULL, &layout, &i) == -EINVAL);
   CHECK(msmws_flip_chain_flip(NULL, 0) == -EINVAL);
   CHECK(bad == NULL);

   msmws_flip_chain_destroy(chain);
   msmws_flip_chain_destroy(NULL);
   for (i = 0; i < 3; i++) {
      msmws_bo_unref(bufs[i]);
      close(fds[i]);
   }
}

int
main(void)
{
   msmws_device *dev = NULL, *comp = NULL;

   CHECK(msmws_device_new_sim("a750", &dev) == 0);
   CHECK(msmws_device_new_sim("a750", &comp) == 0);
   if (!dev || !comp)
      return 1;
   check_buffers(dev);
   check_flip_chain(dev, comp);
   msmws_device_destroy(dev);
   msmws_device_destroy(comp);

   return check_report("test_bo");
}
