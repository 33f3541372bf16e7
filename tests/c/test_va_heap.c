/* SPDX-License-Identifier: MIT */
/*
 * C test of the GPU address heap (msmws_va_heap_*): the util_vma_heap replacement as a C driver
 * sees it, including bad input. Returns 0 when every check held; prints each failed check.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include "msm_winsys.h"

#include "check.h"

#define KIB (1024ull)
#define MIB (1024ull * KIB)
#define GIB (1024ull * MIB)

#define NO_CROSS(shift) ((uint32_t)(shift) << MSMWS_VA_HEAP_NO_CROSS_SHIFT_OFFSET)

static void
test_bad_input(void)
{
   struct msmws_va_heap *heap = NULL;
   uint64_t addr = 0x1234;

   CHECK(msmws_va_heap_create(0, GIB, NULL) == -EINVAL);
   CHECK(msmws_va_heap_create(0, 0, &heap) == -EINVAL && heap == NULL);
   CHECK(msmws_va_heap_create(1, GIB, &heap) == -EINVAL && heap == NULL);
   CHECK(msmws_va_heap_create(8192, 0ull - 4096, &heap) == -EINVAL && heap == NULL);

   CHECK(msmws_va_heap_alloc(NULL, 4096, 4096, 0, &addr) == -EINVAL);
   CHECK(msmws_va_heap_alloc_addr(NULL, 0, 4096) == -EINVAL);
   CHECK(msmws_va_heap_free(NULL, 0, 4096) == -EINVAL);
   CHECK(msmws_va_heap_free_after(NULL, 0, 4096, 0, 1) == -EINVAL);
   CHECK(msmws_va_heap_signal_queue(NULL, 0, 1) == -EINVAL);
   CHECK(msmws_va_heap_free_size(NULL) == 0);
   CHECK(msmws_va_heap_largest_free(NULL) == 0);
   msmws_va_heap_destroy(NULL);

   CHECK(msmws_va_heap_create(GIB, GIB, &heap) == 0 && heap != NULL);
   if (!heap)
      return;
   CHECK(msmws_va_heap_alloc(heap, 4096, 4096, 0, NULL) == -EINVAL);
   CHECK(msmws_va_heap_alloc(heap, 0, 4096, 0, &addr) == -EINVAL);
   CHECK(msmws_va_heap_alloc(heap, 4096, 3 * 4096, 0, &addr) == -EINVAL);
   CHECK(msmws_va_heap_alloc(heap, 4096, 0, 0, &addr) == -EINVAL);
   CHECK(msmws_va_heap_alloc(heap, 4096, 4096, 0x2, &addr) == -EINVAL);
   CHECK(msmws_va_heap_alloc(heap, 8 * MIB, 4096, NO_CROSS(22), &addr) == -EINVAL);
   CHECK(addr == 0x1234);
   CHECK(msmws_va_heap_alloc_addr(heap, GIB + 1, 4096) == -EINVAL);
   CHECK(msmws_va_heap_alloc_addr(heap, 0, 4096) == -EINVAL);
   CHECK(msmws_va_heap_alloc_addr(heap, GIB, 0) == -EINVAL);
   CHECK(msmws_va_heap_free_size(heap) == GIB);

   /* Double free and frees of ranges never allocated: -ENOENT, nothing changes. */
   CHECK(msmws_va_heap_alloc(heap, MIB, 4096, 0, &addr) == 0);
   CHECK(msmws_va_heap_free(heap, addr, MIB / 2) == -ENOENT);
   CHECK(msmws_va_heap_free(heap, addr + 4096, MIB) == -ENOENT);
   CHECK(msmws_va_heap_free(heap, addr, MIB) == 0);
   CHECK(msmws_va_heap_free(heap, addr, MIB) == -ENOENT);
   CHECK(msmws_va_heap_free_size(heap) == GIB);
   msmws_va_heap_destroy(heap);
}

static void
test_no_cross_and_direction(void)
{
   struct msmws_va_heap *heap = NULL;
   uint64_t addr = 0;

   /* Hole [1 MiB, 9 MiB), 3 MiB top-down never crossing 4 MiB: [5 MiB, 8 MiB). */
   CHECK(msmws_va_heap_create(MIB, 8 * MIB, &heap) == 0);
   CHECK(msmws_va_heap_alloc(heap, 3 * MIB, 4096, MSMWS_VA_HEAP_ALLOC_TOP_DOWN | NO_CROSS(22),
                             &addr) == 0);
   CHECK(addr == 5 * MIB);
   /* Bottom-up is util_vma_heap's first fit: the lowest address that fits, of all holes. */
   CHECK(msmws_va_heap_alloc(heap, MIB, 4096, 0, &addr) == 0);
   CHECK(addr == MIB);
   CHECK(msmws_va_heap_alloc(heap, 4 * MIB, 4096, 0, &addr) == -ENOSPC);
   CHECK(msmws_va_heap_alloc(heap, 3 * MIB, 4096, 0, &addr) == 0);
   CHECK(addr == 2 * MIB);
   CHECK(msmws_va_heap_alloc(heap, MIB, 4096, 0, &addr) == 0);
   CHECK(addr == 8 * MIB);
   CHECK(msmws_va_heap_free_size(heap) == 0);
   msmws_va_heap_destroy(heap);
}

static void
test_fixed_address(void)
{
   struct msmws_va_heap *heap = NULL;
   uint64_t addr = 0;

   /* The full-range heap Mesa's tests use: [4096, 2^64). */
   CHECK(msmws_va_heap_create(4096, 0ull - 4096, &heap) == 0);
   CHECK(msmws_va_heap_alloc_addr(heap, 0ull - GIB, GIB) == 0);
   CHECK(msmws_va_heap_alloc_addr(heap, 0ull - GIB, 4096) == -EEXIST);
   CHECK(msmws_va_heap_alloc(heap, GIB, GIB, MSMWS_VA_HEAP_ALLOC_TOP_DOWN, &addr) == 0);
   CHECK(addr == 0ull - 2 * GIB);
   /* The largest free range is everything below the two: [4096, 2^64 - 2 GiB). */
   CHECK(msmws_va_heap_largest_free(heap) == 0ull - 2 * GIB - 4096);
   /* turnip's replay takes the whole of it. */
   uint64_t hole = 0;
   CHECK(msmws_va_heap_alloc(heap, 0ull - 2 * GIB - 4096, 4096, 0, &hole) == 0 && hole == 4096);
   CHECK(msmws_va_heap_largest_free(heap) == 0);
   CHECK(msmws_va_heap_free(heap, 4096, 0ull - 2 * GIB - 4096) == 0);
   CHECK(msmws_va_heap_free(heap, 0ull - GIB, GIB) == 0);
   CHECK(msmws_va_heap_free(heap, addr, GIB) == 0);
   CHECK(msmws_va_heap_free_size(heap) == 0ull - 4096);
   msmws_va_heap_destroy(heap);
}

static void
test_deferred_free(void)
{
   struct msmws_va_heap *heap = NULL;
   uint64_t a = 0, b = 0;

   CHECK(msmws_va_heap_create(0, 2 * MIB, &heap) == 0);
   CHECK(msmws_va_heap_alloc(heap, MIB, 4096, 0, &a) == 0);
   CHECK(msmws_va_heap_alloc(heap, MIB, 4096, 0, &b) == 0);
   CHECK(msmws_va_heap_free_after(heap, a, MIB, 1, 100) == 0);
   CHECK(msmws_va_heap_free_after(heap, a, MIB, 1, 100) == -ENOENT);
   CHECK(msmws_va_heap_free_size(heap) == 0);
   CHECK(msmws_va_heap_alloc_addr(heap, a, MIB) == -EBUSY);
   CHECK(msmws_va_heap_signal_queue(heap, 1, 99) == 0);
   CHECK(msmws_va_heap_free_size(heap) == 0);
   CHECK(msmws_va_heap_signal_queue(heap, 1, 100) == 0);
   CHECK(msmws_va_heap_free_size(heap) == MIB);
   CHECK(msmws_va_heap_alloc_addr(heap, a, MIB) == 0);
   msmws_va_heap_destroy(heap);
}

int
main(void)
{
   test_bad_input();
   test_no_cross_and_direction();
   test_fixed_address();
   test_deferred_free();
   return check_report("test_va_heap");
}
