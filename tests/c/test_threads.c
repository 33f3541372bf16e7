/* SPDX-License-Identifier: MIT */
/*
 * The C ABI from several threads at once, as turnip calls it from its queue, allocation and WSI
 * threads: 4 threads on one device and one GPU VM, each creating, submitting over and freeing
 * GPU buffers on its own submitqueue and timeline, and creating, exporting, importing (the other
 * threads' dma-bufs too), mapping and releasing shared buffers. Built with AddressSanitizer like
 * every C test, and by ci/tsan with ThreadSanitizer against a library built with it too
 * (docs/reliability.md, "Concurrency"). Ends with the model's leak report empty
 * (MSMWS_SIM_LEAK_CHECK=abort).
 */
#define _POSIX_C_SOURCE 200809L /* close() under -std=c99 */

#include "msm_winsys.h"

#include "check.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define THREADS 4
#define ITERATIONS 500
#define FDS 8

static const msmws_device *dev;
static const msmws_gpu_vm *vm;

/* dma-bufs any thread may import; a slot is -1 when empty. */
static pthread_mutex_t fds_lock = PTHREAD_MUTEX_INITIALIZER;
static int fds[FDS];

/* CHECK counts into a plain int; the threads count here and main adds it up. */
static int thread_failures[THREADS];

#define TCHECK(n, cond)                                                                        \
   do {                                                                                        \
      if (!(cond)) {                                                                           \
         fprintf(stderr, "%s:%d: thread %d: check failed: %s (last error: %s)\n", __FILE__,     \
                 __LINE__, n, #cond, msmws_last_error_message());                              \
         thread_failures[n]++;                                                                 \
      }                                                                                        \
   } while (0)

/* Swaps `fd` into slot `slot` of the pool and closes what was there. */
static void
pool_put(unsigned slot, int fd)
{
   int old;
   pthread_mutex_lock(&fds_lock);
   old = fds[slot % FDS];
   fds[slot % FDS] = fd;
   pthread_mutex_unlock(&fds_lock);
   if (old >= 0)
      close(old);
}

/* A dup of the dma-buf in slot `slot`, or -1. */
static int
pool_get(unsigned slot)
{
   int fd;
   pthread_mutex_lock(&fds_lock);
   fd = fds[slot % FDS] >= 0 ? dup(fds[slot % FDS]) : -1;
   pthread_mutex_unlock(&fds_lock);
   return fd;
}

static void *
worker(void *arg)
{
   int n = (int)(size_t)arg;
   uint32_t queue = 0, timeline = 0, seqno = 0;
   uint64_t point = 0;
   unsigned i;

   TCHECK(n, msmws_device_submitqueue_new(dev, 0, 0, &queue) == 0);
   TCHECK(n, msmws_device_syncobj_create(dev, &timeline) == 0);
   for (i = 0; i < ITERATIONS; i++) {
      msmws_gpu_buffer buf, shared;
      msmws_sync_point used = {0};
      msmws_cmd cmd = {0};
      msmws_bo *bo = NULL, *imported = NULL;
      int fd = -1;

      /* A buffer at an address, a submit over it, a free after that submit. */
      TCHECK(n, msmws_gpu_vm_create_buffer(vm, 4096u * (1 + i % 4), MSMWS_BO_WC, &buf) == 0);
      used.handle = timeline;
      used.point = ++point;
      cmd.iova = buf.iova;
      cmd.size_B = 64;
      TCHECK(n, msmws_gpu_vm_submit(vm, queue, &cmd, 1, &buf, 1, NULL, 0, &used, 1, &seqno) == 0);
      TCHECK(n, msmws_gpu_vm_free_buffer(vm, &buf, &used, 1, false) == 0);

      /* A shared buffer: exported into the pool, another slot's dma-buf imported and mapped. */
      TCHECK(n, msmws_bo_new(dev, 4096, MSMWS_BO_WC | MSMWS_BO_SHARED, &bo) == 0);
      TCHECK(n, msmws_bo_export_dmabuf(bo, &fd) == 0);
      pool_put(n + i, fd);
      fd = pool_get(n + i * 3 + 1);
      if (fd >= 0) {
         TCHECK(n, msmws_bo_import_dmabuf(dev, fd, &imported) == 0);
         close(fd);
      }
      if (imported) {
         TCHECK(n, msmws_gpu_vm_map_bo(vm, imported, &shared) == 0);
         msmws_bo_unref(imported);
         TCHECK(n, msmws_gpu_vm_unmap_bo(vm, &shared, NULL, 0) == 0);
      }
      msmws_bo_unref(bo);

      if (i % 8 == 0)
         TCHECK(n, msmws_gpu_vm_flush(vm) == 0);
      if (i % 16 == 0)
         TCHECK(n, msmws_device_wait_seqno(dev, queue, seqno, 10000000000ull) == 0);
   }
   TCHECK(n, msmws_device_wait_seqno(dev, queue, seqno, 10000000000ull) == 0);
   TCHECK(n, msmws_gpu_vm_flush(vm) == 0);
   TCHECK(n, msmws_device_submitqueue_close(dev, queue) == 0);
   /* The timeline outlives the thread: the VM's unmaps may still wait on it (main frees it). */
   return (void *)(size_t)timeline;
}

int
main(void)
{
   msmws_device *d = NULL;
   msmws_gpu_vm *v = NULL;
   pthread_t threads[THREADS];
   uint32_t timelines[THREADS];
   int i;

   for (i = 0; i < FDS; i++)
      fds[i] = -1;
   CHECK(msmws_device_new_sim("a750", &d) == 0);
   CHECK(msmws_gpu_vm_create(d, &v) == 0);
   if (!v)
      return 1;
   dev = d;
   vm = v;

   for (i = 0; i < THREADS; i++)
      CHECK(pthread_create(&threads[i], NULL, worker, (void *)(size_t)i) == 0);
   for (i = 0; i < THREADS; i++) {
      void *ret = NULL;
      CHECK(pthread_join(threads[i], &ret) == 0);
      timelines[i] = (uint32_t)(size_t)ret;
      failures += thread_failures[i];
   }

   for (i = 0; i < FDS; i++)
      pool_put(i, -1);
   CHECK(msmws_gpu_vm_flush(v) == 0);
   CHECK(msmws_gpu_vm_destroy(v) == 0);
   CHECK(msmws_device_sim_wait_idle(d, 10000000000ull) == 0);
   for (i = 0; i < THREADS; i++)
      CHECK(msmws_device_syncobj_destroy(d, timelines[i]) == 0);
   msmws_device_destroy(d);
   return check_report("test_threads");
}
