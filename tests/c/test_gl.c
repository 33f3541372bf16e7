/* SPDX-License-Identifier: MIT */
/*
 * The calls a GL driver (freedreno's msmws backend) needs beyond turnip's, on the kernel model:
 * MADVISE of a cached buffer (left out of legacy submits' BO table while parked), CPU_PREP, a submitqueue's own fault count, and submits with a
 * sync-file out-fence fed back as the next submit's in-fence; bad input answered with a
 * negative errno. Run on a750 (VM_BIND) and a618 (userspace iova).
 */
#define _DEFAULT_SOURCE
#include "msm_winsys.h"

#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void
run(const char *profile)
{
   msmws_device *dev = NULL;
   msmws_gpu_vm *vm = NULL;
   msmws_bo *bo = NULL;
   msmws_gpu_buffer buf, parked;
   msmws_cmd cmd;
   uint64_t faults = 1;
   uint32_t queue = 0, seqno = 0, seqno2 = 0;
   int out_fd = -1, out_fd2 = -1;
   bool retained = false;

   CHECK(msmws_device_new_sim(profile, &dev) == 0);
   CHECK(msmws_gpu_vm_create(dev, &vm) == 0);
   if (!vm)
      return;
   CHECK(msmws_device_submitqueue_new(dev, 0, 0, &queue) == 0);

   /* A buffer as freedreno makes it: a msmws_bo at an address of the VM. */
   CHECK(msmws_bo_new(dev, 8192, MSMWS_BO_WC | MSMWS_BO_SHARED, &bo) == 0);
   CHECK(msmws_gpu_vm_map_bo(vm, bo, &buf) == 0);

   /* Its cache parks it DONTNEED and takes it back WILLNEED: still there. */
   CHECK(msmws_gpu_vm_madvise(vm, &buf, false, &retained) == 0 && retained);
   CHECK(msmws_gpu_vm_madvise(vm, &buf, true, &retained) == 0 && retained);
   CHECK(msmws_gpu_vm_madvise(vm, &buf, true, NULL) == -EINVAL);
   CHECK(msmws_gpu_vm_madvise(NULL, &buf, true, &retained) == -EINVAL);

   /* A second buffer parked in the cache: submits (which, without VM_BIND, pass every buffer
    * of the VM) must not name it, or the kernel refuses them with EBUSY.
    */
   CHECK(msmws_gpu_vm_create_buffer(vm, 4096, MSMWS_BO_WC, &parked) == 0);
   CHECK(msmws_gpu_vm_madvise(vm, &parked, false, &retained) == 0 && retained);

   /* Idle (once the model has run the bind parking sent): CPU_PREP answers at once, NOSYNC
    * too. */
   CHECK(msmws_device_sim_wait_idle(dev, 5000000000ull) == 0);
   CHECK(msmws_device_cpu_prep(dev, buf.handle, MSMWS_PREP_READ, 0) == 0);
   CHECK(msmws_device_cpu_prep(dev, buf.handle, MSMWS_PREP_WRITE | MSMWS_PREP_NOSYNC, 0) == 0);
   CHECK(msmws_device_cpu_prep(dev, buf.handle, 0x100, 0) == -EINVAL);
   CHECK(msmws_device_cpu_prep(NULL, buf.handle, MSMWS_PREP_READ, 0) == -EINVAL);

   CHECK(msmws_device_submitqueue_faults(dev, queue, &faults) == 0 && faults == 0);
   CHECK(msmws_device_submitqueue_faults(dev, queue + 100, &faults) == -ENOENT);
   CHECK(msmws_device_submitqueue_faults(dev, queue, NULL) == -EINVAL);

   /* A submit asking for an out-fence, then one waiting for it and asking for none. */
   memset(&cmd, 0, sizeof(cmd));
   cmd.iova = buf.iova;
   cmd.size_B = 64;
   CHECK(msmws_gpu_vm_submit_fence_fd(vm, queue, &cmd, 1, &buf, 1, NULL, 0, NULL, 0, -1,
                                      &out_fd, &seqno) == 0);
   CHECK(out_fd >= 0 && seqno == 1);
   CHECK(msmws_gpu_vm_submit_fence_fd(vm, queue, &cmd, 1, &buf, 1, NULL, 0, NULL, 0, out_fd,
                                      NULL, &seqno2) == 0);
   CHECK(seqno2 == 2);
   /* The in-fence stays the caller's: still open. */
   CHECK(fcntl(out_fd, F_GETFD) >= 0);
   CHECK(msmws_gpu_vm_submit_fence_fd(vm, queue, &cmd, 1, &buf, 1, NULL, 0, NULL, 0, -7, &out_fd2,
                                      NULL) == -EINVAL);
   CHECK(out_fd2 == -1);
   CHECK(msmws_gpu_vm_submit_fence_fd(vm, queue, &cmd, 1, NULL, 1, NULL, 0, NULL, 0, -1, NULL,
                                      NULL) == -EINVAL);
   CHECK(msmws_device_wait_seqno(dev, queue, seqno2, 5000000000ull) == 0);
   close(out_fd);

   /* Taken back, it is in the table again: a submit may use it. */
   CHECK(msmws_gpu_vm_madvise(vm, &parked, true, &retained) == 0 && retained);
   cmd.iova = parked.iova;
   CHECK(msmws_gpu_vm_submit_fence_fd(vm, queue, &cmd, 1, &parked, 1, NULL, 0, NULL, 0, -1, NULL,
                                      &seqno) == 0);
   CHECK(msmws_device_wait_seqno(dev, queue, seqno, 5000000000ull) == 0);
   CHECK(msmws_gpu_vm_free_buffer(vm, &parked, NULL, 0, false) == 0);

   CHECK(msmws_gpu_vm_unmap_bo(vm, &buf, NULL, 0) == 0);
   msmws_bo_unref(bo);
   CHECK(msmws_device_sim_wait_idle(dev, 5000000000ull) == 0);
   CHECK(msmws_device_submitqueue_close(dev, queue) == 0);
   CHECK(msmws_gpu_vm_destroy(vm) == 0);
   msmws_device_destroy(dev);
}

int
main(void)
{
   run("a750");
   run("a618");
   return check_report("test_gl");
}
