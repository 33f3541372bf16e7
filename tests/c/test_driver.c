/* SPDX-License-Identifier: MIT */
/*
 * What a driver's kernel backend needs besides buffers and submits, on the kernel model: the
 * device's counters, a submitqueue with a priority, a seqno wait, CPU maps (plain and placed),
 * raw metadata, capture/replay addresses and the VM's counters; bad input answered with a negative errno.
 */
#define _DEFAULT_SOURCE
#include "msm_winsys.h"

#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

int
main(void)
{
   msmws_device *dev = NULL;
   msmws_gpu_vm *vm = NULL;
   msmws_gpu_buffer buf, cap, again;
   msmws_device_info info;
   msmws_gpu_vm_stats stats;
   msmws_cmd cmd;
   uint64_t faults = 1, ts = 0;
   uint32_t queue = 0, seqno = 0, len = 0;
   uint8_t meta[16];
   void *map = NULL, *placed = NULL, *hole;

   CHECK(msmws_device_new_sim("a750", &dev) == 0);
   CHECK(msmws_device_get_info(dev, &info) == 0);
   CHECK(msmws_gpu_vm_create(dev, &vm) == 0);
   if (!vm)
      return 1;

   CHECK(msmws_device_query(dev, MSMWS_QUERY_FAULTS, &faults) == 0 && faults == 0);
   CHECK(msmws_device_query(dev, MSMWS_QUERY_TIMESTAMP, &ts) == 0);
   CHECK(msmws_device_query(dev, 0, &ts) == -EINVAL);

   CHECK(msmws_device_submitqueue_new(dev, info.priorities - 1, MSMWS_SUBMITQUEUE_ALLOW_PREEMPT,
                                      &queue) == 0);
   CHECK(msmws_device_submitqueue_new(dev, 1000, 0, &queue) == -EINVAL);

   CHECK(msmws_gpu_vm_create_buffer(vm, 8192, MSMWS_BO_WC, &buf) == 0);
   CHECK(msmws_device_map(dev, buf.handle, buf.size_B, NULL, &map) == 0);
   memset(map, 0, 64);
   hole = mmap(NULL, 8192, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
   CHECK(hole != MAP_FAILED);
   CHECK(msmws_device_map(dev, buf.handle, buf.size_B, hole, &placed) == 0 && placed == hole);
   ((volatile uint32_t *)map)[1] = 7;
   CHECK(((volatile uint32_t *)placed)[1] == 7);
   CHECK(msmws_device_map(dev, buf.handle, 0, NULL, &map) == -EINVAL);
   munmap(map, 8192);
   munmap(placed, 8192);

   /* A submit on the new queue, then a wait for its seqno. */
   memset(&cmd, 0, sizeof(cmd));
   cmd.iova = buf.iova;
   cmd.size_B = 64;
   CHECK(msmws_gpu_vm_submit(vm, queue, &cmd, 1, &buf, 1, NULL, 0, NULL, 0, &seqno) == 0);
   CHECK(seqno == 1);
   CHECK(msmws_device_wait_seqno(dev, queue, seqno, 5000000000ull) == 0);
   CHECK(msmws_device_wait_seqno(dev, queue, seqno + 1, 0) == -EINVAL);

   CHECK(msmws_device_set_metadata(dev, buf.handle, (const uint8_t *)"12345678", 8) == 0);
   CHECK(msmws_device_get_metadata(dev, buf.handle, meta, 2, &len) == -ERANGE && len == 8);
   CHECK(msmws_device_get_metadata(dev, buf.handle, meta, sizeof(meta), &len) == 0 && len == 8);
   CHECK(memcmp(meta, "12345678", 8) == 0);
   CHECK(msmws_device_set_metadata(dev, buf.handle, NULL, 8) == -EINVAL);

   /* Capture at the top of the space, then replay at the captured address. */
   CHECK(msmws_gpu_vm_create_buffer_at(vm, 65536, MSMWS_BO_WC, 0, &cap) == 0);
   CHECK(cap.iova > buf.iova);
   CHECK(msmws_gpu_vm_create_buffer_at(vm, 4096, MSMWS_BO_WC, cap.iova, &again) == -EEXIST);
   CHECK(msmws_gpu_vm_free_buffer(vm, &cap, NULL, 0, false) == 0);
   CHECK(msmws_gpu_vm_flush(vm) == 0);
   CHECK(msmws_gpu_vm_create_buffer_at(vm, 65536, MSMWS_BO_WC, cap.iova, &again) == 0);
   CHECK(again.iova == cap.iova);

   /* a750 is VM_BIND: the counters saw the maps and the submit. */
   memset(&stats, 0, sizeof(stats));
   CHECK(msmws_gpu_vm_get_stats(vm, &stats) == 0);
   CHECK(stats.ops_queued >= 3 && stats.submits == 1 && stats.vm_bind_ioctls >= 1);
   CHECK(msmws_gpu_vm_get_stats(vm, NULL) == -EINVAL);

   CHECK(msmws_gpu_vm_free_buffer(vm, &again, NULL, 0, false) == 0);
   CHECK(msmws_gpu_vm_free_buffer(vm, &buf, NULL, 0, false) == 0);
   CHECK(msmws_device_sim_wait_idle(dev, 5000000000ull) == 0);
   CHECK(msmws_device_submitqueue_close(dev, queue) == 0);
   CHECK(msmws_gpu_vm_destroy(vm) == 0);
   msmws_device_destroy(dev);
   return check_report("test_driver");
}
