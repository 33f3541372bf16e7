/* SPDX-License-Identifier: MIT */
/*
 * The GPU memory C API as a driver uses it on the kernel model: buffers at addresses, a submit
 * over them, frees, flush, destroy; and bad input answered with a negative errno.
 */
#include "msm_winsys.h"

#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int
main(void)
{
   msmws_device *dev = NULL;
   msmws_gpu_vm *vm = NULL;
   msmws_gpu_buffer bufs[4];
   msmws_cmd cmd;
   msmws_sync_point frame[2];
   uint32_t seqno = 0, done = 0;
   unsigned i;

   CHECK(msmws_device_new_sim("a750", &dev) == 0);
   CHECK(msmws_gpu_vm_create(dev, &vm) == 0);
   if (!vm)
      return 1;

   for (i = 0; i < 4; i++) {
      CHECK(msmws_gpu_vm_create_buffer(vm, 65536, MSMWS_BO_WC, &bufs[i]) == 0);
      CHECK(bufs[i].iova >= 0x100000000ull && bufs[i].size_B == 65536);
   }
   CHECK(bufs[1].iova != bufs[0].iova);

   /* Each submit signals the next point of a timeline; frees name it as their users. */
   CHECK(msmws_device_syncobj_create(dev, &done) == 0);
   memset(frame, 0, sizeof(frame));
   for (i = 0; i < 2; i++) {
      frame[i].handle = done;
      frame[i].point = i + 1;
   }

   memset(&cmd, 0, sizeof(cmd));
   cmd.iova = bufs[0].iova;
   cmd.size_B = 64;
   CHECK(msmws_gpu_vm_submit(vm, 0, &cmd, 1, bufs, 4, NULL, 0, &frame[0], 1, &seqno) == 0);
   CHECK(seqno == 1);

   /* Bad input changes nothing. */
   CHECK(msmws_gpu_vm_create_buffer(vm, 0, MSMWS_BO_WC, &bufs[0]) == -EINVAL);
   CHECK(msmws_gpu_vm_create_buffer(NULL, 4096, MSMWS_BO_WC, &bufs[0]) == -EINVAL);
   CHECK(msmws_gpu_vm_create_buffer(vm, 4096, MSMWS_BO_WC, NULL) == -EINVAL);
   CHECK(msmws_gpu_vm_submit(vm, 0, NULL, 1, NULL, 0, NULL, 0, NULL, 0, NULL) == -EINVAL);
   CHECK(msmws_gpu_vm_free_buffer(vm, NULL, NULL, 0, false) == -EINVAL);
   CHECK(msmws_gpu_vm_create(NULL, &vm) == -EINVAL);

   /* Freed while the submit may still run: the addresses go only after it. */
   for (i = 0; i < 4; i++)
      CHECK(msmws_gpu_vm_free_buffer(vm, &bufs[i], &frame[0], 1, false) == 0);

   /* A shared buffer gets an address; the VM keeps it alive after the caller's unref. */
   {
      msmws_bo *bo = NULL;
      msmws_gpu_buffer shared;
      CHECK(msmws_bo_new(dev, 65536, MSMWS_BO_WC | MSMWS_BO_SHARED, &bo) == 0);
      CHECK(msmws_gpu_vm_map_bo(vm, bo, &shared) == 0);
      msmws_bo_unref(bo);
      cmd.iova = shared.iova;
      CHECK(msmws_gpu_vm_submit(vm, 0, &cmd, 1, &shared, 1, NULL, 0, &frame[1], 1, NULL) == 0);
      CHECK(msmws_gpu_vm_unmap_bo(vm, &shared, &frame[1], 1) == 0);
      CHECK(msmws_gpu_vm_unmap_bo(vm, &shared, NULL, 0) == -EINVAL);
      CHECK(msmws_gpu_vm_map_bo(vm, NULL, &shared) == -EINVAL);
   }
   CHECK(msmws_gpu_vm_flush(vm) == 0);
   CHECK(msmws_gpu_vm_destroy(vm) == 0);
   CHECK(msmws_gpu_vm_destroy(NULL) == 0);

   /* The model's GPU runs the submits, then the unmaps that waited for them. */
   CHECK(msmws_device_sim_wait_idle(dev, 10000000000ull) == 0);
   CHECK(msmws_device_syncobj_destroy(dev, done) == 0);
   CHECK(msmws_device_syncobj_destroy(dev, done) == -EINVAL);
   CHECK(msmws_device_syncobj_create(NULL, &done) == -EINVAL);
   CHECK(msmws_device_syncobj_create(dev, NULL) == -EINVAL);
   CHECK(msmws_device_sim_wait_idle(NULL, 0) == -EINVAL);
   msmws_device_destroy(dev);

   return check_report("test_gpu_vm");
}
