/* SPDX-License-Identifier: MIT */
/*
 * vk_churn: the two Vulkan workloads the turnip-on-msm-winsys measurements need, driving
 * whatever Vulkan driver the loader picks (stock turnip, turnip on msm-winsys, or lavapipe in
 * the project's own test of this program). It only calls the Vulkan API; everything it measures
 * happens in the driver and below.
 *
 *   vk_churn churn FRAMES BUFFERS
 *      Per frame: allocate BUFFERS buffers of mixed sizes (4 KiB .. 1 MiB, each its own
 *      VkDeviceMemory, as an application without a sub-allocator does), bind them, use every one
 *      in one submit (vkCmdFillBuffer), then wait for the previous frame's submit and free its
 *      buffers. The last frame's buffers are freed after its submit.
 *
 *   vk_churn alloc LIVE PAIRS
 *      Allocate LIVE memory objects (4 KiB .. 64 KiB), then PAIRS times free one chosen at
 *      random and allocate a new one: the cost of a vkAllocateMemory/vkFreeMemory pair with LIVE
 *      allocations alive.
 *
 * Prints one JSON object on stdout: the workload, its parameters, the device name and the wall
 * time per frame or per pair (context only: the measurements that count are instruction and
 * kernel-call counts taken outside, on the same run). Exits non-zero with a message on stderr
 * when a Vulkan call fails, after releasing what it made.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <vulkan/vulkan.h>

#define CHECK(call)                                                                      \
   do {                                                                                  \
      VkResult r_ = (call);                                                              \
      if (r_ != VK_SUCCESS) {                                                            \
         fprintf(stderr, "vk_churn: %s failed: VkResult %d (line %d)\n", #call, r_,       \
                 __LINE__);                                                              \
         return r_;                                                                      \
      }                                                                                  \
   } while (0)

struct ctx {
   VkInstance instance;
   VkPhysicalDevice pdev;
   VkDevice dev;
   VkQueue queue;
   VkCommandPool pool;
   uint32_t queue_family;
   uint32_t mem_type;
   char name[VK_MAX_PHYSICAL_DEVICE_NAME_SIZE];
};

struct buf {
   VkBuffer buffer;
   VkDeviceMemory memory;
   VkDeviceSize size_B;
};

/* xorshift64*: every run allocates the same sizes in the same order. */
static uint64_t rng_state = 0x5eed1234;

static uint64_t
rng_below(uint64_t n)
{
   rng_state ^= rng_state >> 12;
   rng_state ^= rng_state << 25;
   rng_state ^= rng_state >> 27;
   return (rng_state * 0x2545f4914f6cdd1dull) % n;
}

static double
now_ns(void)
{
   struct timespec ts;
   clock_gettime(CLOCK_MONOTONIC, &ts);
   return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static VkResult
ctx_init(struct ctx *c)
{
   memset(c, 0, sizeof(*c));
   const VkApplicationInfo app = {
      .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
      .pApplicationName = "vk_churn",
      .apiVersion = VK_API_VERSION_1_1,
   };
   const VkInstanceCreateInfo ici = {
      .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
      .pApplicationInfo = &app,
   };
   CHECK(vkCreateInstance(&ici, NULL, &c->instance));

   uint32_t n = 1;
   VkResult r = vkEnumeratePhysicalDevices(c->instance, &n, &c->pdev);
   if ((r != VK_SUCCESS && r != VK_INCOMPLETE) || n == 0) {
      fprintf(stderr, "vk_churn: no Vulkan device (VkResult %d)\n", r);
      return r == VK_SUCCESS ? VK_ERROR_INITIALIZATION_FAILED : r;
   }
   VkPhysicalDeviceProperties props;
   vkGetPhysicalDeviceProperties(c->pdev, &props);
   memcpy(c->name, props.deviceName, sizeof(c->name));

   uint32_t nq = 0;
   vkGetPhysicalDeviceQueueFamilyProperties(c->pdev, &nq, NULL);
   VkQueueFamilyProperties qf[16];
   nq = nq > 16 ? 16 : nq;
   vkGetPhysicalDeviceQueueFamilyProperties(c->pdev, &nq, qf);
   c->queue_family = UINT32_MAX;
   for (uint32_t i = 0; i < nq; i++) {
      if (qf[i].queueFlags & (VK_QUEUE_GRAPHICS_BIT | VK_QUEUE_COMPUTE_BIT | VK_QUEUE_TRANSFER_BIT)) {
         c->queue_family = i;
         break;
      }
   }
   if (c->queue_family == UINT32_MAX) {
      fprintf(stderr, "vk_churn: no queue family can fill buffers\n");
      return VK_ERROR_FEATURE_NOT_PRESENT;
   }

   /* Device-local memory, as a renderer's transient buffers use. */
   VkPhysicalDeviceMemoryProperties mp;
   vkGetPhysicalDeviceMemoryProperties(c->pdev, &mp);
   c->mem_type = UINT32_MAX;
   for (uint32_t i = 0; i < mp.memoryTypeCount; i++) {
      if (mp.memoryTypes[i].propertyFlags & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) {
         c->mem_type = i;
         break;
      }
   }
   if (c->mem_type == UINT32_MAX)
      c->mem_type = 0;

   const float prio = 1.0f;
   const VkDeviceQueueCreateInfo qci = {
      .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
      .queueFamilyIndex = c->queue_family,
      .queueCount = 1,
      .pQueuePriorities = &prio,
   };
   const VkDeviceCreateInfo dci = {
      .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
      .queueCreateInfoCount = 1,
      .pQueueCreateInfos = &qci,
   };
   CHECK(vkCreateDevice(c->pdev, &dci, NULL, &c->dev));
   vkGetDeviceQueue(c->dev, c->queue_family, 0, &c->queue);
   const VkCommandPoolCreateInfo pci = {
      .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
      .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
      .queueFamilyIndex = c->queue_family,
   };
   CHECK(vkCreateCommandPool(c->dev, &pci, NULL, &c->pool));
   return VK_SUCCESS;
}

static void
ctx_finish(struct ctx *c)
{
   if (c->dev) {
      vkDeviceWaitIdle(c->dev);
      if (c->pool)
         vkDestroyCommandPool(c->dev, c->pool, NULL);
      vkDestroyDevice(c->dev, NULL);
   }
   if (c->instance)
      vkDestroyInstance(c->instance, NULL);
}

static VkResult
mem_alloc(struct ctx *c, VkDeviceSize size_B, VkDeviceMemory *out)
{
   const VkMemoryAllocateInfo mai = {
      .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
      .allocationSize = size_B,
      .memoryTypeIndex = c->mem_type,
   };
   return vkAllocateMemory(c->dev, &mai, NULL, out);
}

static VkResult
buf_create(struct ctx *c, VkDeviceSize size_B, struct buf *b)
{
   memset(b, 0, sizeof(*b));
   b->size_B = size_B;
   const VkBufferCreateInfo bci = {
      .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
      .size = size_B,
      .usage = VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_STORAGE_BUFFER_BIT,
      .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
   };
   CHECK(vkCreateBuffer(c->dev, &bci, NULL, &b->buffer));
   VkMemoryRequirements req;
   vkGetBufferMemoryRequirements(c->dev, b->buffer, &req);
   if (!(req.memoryTypeBits & (1u << c->mem_type))) {
      fprintf(stderr, "vk_churn: buffers cannot use memory type %u\n", c->mem_type);
      return VK_ERROR_FEATURE_NOT_PRESENT;
   }
   CHECK(mem_alloc(c, req.size, &b->memory));
   CHECK(vkBindBufferMemory(c->dev, b->buffer, b->memory, 0));
   return VK_SUCCESS;
}

static void
buf_destroy(struct ctx *c, struct buf *b)
{
   if (b->buffer)
      vkDestroyBuffer(c->dev, b->buffer, NULL);
   if (b->memory)
      vkFreeMemory(c->dev, b->memory, NULL);
   memset(b, 0, sizeof(*b));
}

static VkDeviceSize
churn_size(void)
{
   /* Mostly small, weighted like a frame's transient buffers (as `msmws scenario bind-churn`). */
   static const VkDeviceSize sizes[] = { 4 << 10, 4 << 10, 16 << 10, 16 << 10,
                                         64 << 10, 64 << 10, 256 << 10, 1 << 20 };
   return sizes[rng_below(sizeof(sizes) / sizeof(sizes[0]))];
}

struct frame {
   struct buf *bufs;
   uint32_t count;
   VkCommandBuffer cmd;
   VkFence fence;
   /* The fence's submit succeeded: a fence whose vkQueueSubmit failed is never signalled
    * (the failed call changed no synchronization primitive), and waiting for it hangs. */
   bool submitted;
};

static VkResult
frame_release(struct ctx *c, struct frame *f)
{
   VkResult r = VK_SUCCESS;
   if (f->fence) {
      /* Released even when the wait fails: after VK_ERROR_DEVICE_LOST every object may (and
       * must) still be destroyed, and a fault-injection run counts what was left behind. */
      if (f->submitted)
         r = vkWaitForFences(c->dev, 1, &f->fence, VK_TRUE, UINT64_MAX);
      if (r != VK_SUCCESS)
         fprintf(stderr, "vk_churn: vkWaitForFences failed: VkResult %d\n", r);
      vkDestroyFence(c->dev, f->fence, NULL);
      f->fence = VK_NULL_HANDLE;
      f->submitted = false;
   }
   for (uint32_t i = 0; i < f->count; i++)
      buf_destroy(c, &f->bufs[i]);
   f->count = 0;
   return r;
}

static VkResult
churn(struct ctx *c, uint32_t frames, uint32_t per_frame)
{
   struct frame f[2] = { 0 };
   VkResult r = VK_SUCCESS;
   for (int i = 0; i < 2; i++) {
      f[i].bufs = calloc(per_frame, sizeof(struct buf));
      const VkCommandBufferAllocateInfo cai = {
         .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
         .commandPool = c->pool,
         .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
         .commandBufferCount = 1,
      };
      if (!f[i].bufs)
         r = VK_ERROR_OUT_OF_HOST_MEMORY;
      if (r == VK_SUCCESS)
         r = vkAllocateCommandBuffers(c->dev, &cai, &f[i].cmd);
   }
   double t0 = now_ns();
   for (uint32_t n = 0; r == VK_SUCCESS && n < frames; n++) {
      struct frame *cur = &f[n % 2], *prev = &f[(n + 1) % 2];
      while (cur->count < per_frame) {
         /* Counted even when it fails: frame_release frees what a failed create made. */
         r = buf_create(c, churn_size(), &cur->bufs[cur->count++]);
         if (r != VK_SUCCESS)
            break;
      }
      if (r != VK_SUCCESS)
         break;
      const VkCommandBufferBeginInfo begin = {
         .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
         .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
      };
      vkResetCommandBuffer(cur->cmd, 0);
      r = vkBeginCommandBuffer(cur->cmd, &begin);
      for (uint32_t i = 0; r == VK_SUCCESS && i < cur->count; i++)
         vkCmdFillBuffer(cur->cmd, cur->bufs[i].buffer, 0, VK_WHOLE_SIZE, n);
      if (r == VK_SUCCESS)
         r = vkEndCommandBuffer(cur->cmd);
      const VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
      if (r == VK_SUCCESS)
         r = vkCreateFence(c->dev, &fci, NULL, &cur->fence);
      const VkSubmitInfo si = {
         .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
         .commandBufferCount = 1,
         .pCommandBuffers = &cur->cmd,
      };
      if (r == VK_SUCCESS)
         r = vkQueueSubmit(c->queue, 1, &si, cur->fence);
      cur->submitted = r == VK_SUCCESS;
      if (r == VK_SUCCESS)
         r = frame_release(c, prev);
   }
   double t1 = now_ns();
   if (r != VK_SUCCESS)
      fprintf(stderr, "vk_churn: churn failed: VkResult %d\n", r);
   for (int i = 0; i < 2; i++) {
      VkResult rr = frame_release(c, &f[i]);
      r = r == VK_SUCCESS ? rr : r;
      if (f[i].cmd)
         vkFreeCommandBuffers(c->dev, c->pool, 1, &f[i].cmd);
      free(f[i].bufs);
   }
   if (r == VK_SUCCESS)
      printf("{\"workload\": \"churn\", \"device\": \"%s\", \"frames\": %u, "
             "\"buffers_per_frame\": %u, \"wall_ns_per_frame\": %.0f}\n",
             c->name, frames, per_frame, (t1 - t0) / frames);
   return r;
}

static VkResult
alloc_loop(struct ctx *c, uint32_t live, uint32_t pairs)
{
   VkDeviceMemory *mem = calloc(live ? live : 1, sizeof(*mem));
   if (!mem)
      return VK_ERROR_OUT_OF_HOST_MEMORY;
   VkResult r = VK_SUCCESS;
   uint32_t made = 0;
   for (; made < live && r == VK_SUCCESS; made++) {
      r = mem_alloc(c, (1 + rng_below(16)) << 12, &mem[made]);
      if (r != VK_SUCCESS)
         break;
   }
   double t0 = now_ns();
   for (uint32_t n = 0; r == VK_SUCCESS && live > 0 && n < pairs; n++) {
      uint32_t i = rng_below(live);
      vkFreeMemory(c->dev, mem[i], NULL);
      mem[i] = VK_NULL_HANDLE;
      r = mem_alloc(c, (1 + rng_below(16)) << 12, &mem[i]);
   }
   double t1 = now_ns();
   if (r != VK_SUCCESS)
      fprintf(stderr, "vk_churn: allocation failed with %u live: VkResult %d\n", made, r);
   for (uint32_t i = 0; i < made; i++) {
      if (mem[i])
         vkFreeMemory(c->dev, mem[i], NULL);
   }
   free(mem);
   if (r == VK_SUCCESS)
      printf("{\"workload\": \"alloc\", \"device\": \"%s\", \"live\": %u, \"pairs\": %u, "
             "\"wall_ns_per_pair\": %.0f}\n",
             c->name, live, pairs, pairs ? (t1 - t0) / pairs : 0.0);
   return r;
}

static int
usage(void)
{
   fprintf(stderr, "usage: vk_churn churn FRAMES BUFFERS | vk_churn alloc LIVE PAIRS\n");
   return 2;
}

int
main(int argc, char **argv)
{
   if (argc != 4)
      return usage();
   char *end1, *end2;
   unsigned long a = strtoul(argv[2], &end1, 10), b = strtoul(argv[3], &end2, 10);
   if (*end1 || *end2 || a > UINT32_MAX || b > UINT32_MAX)
      return usage();
   int churn_mode = !strcmp(argv[1], "churn");
   if (!churn_mode && strcmp(argv[1], "alloc"))
      return usage();

   struct ctx c;
   VkResult r = ctx_init(&c);
   if (r == VK_SUCCESS)
      r = churn_mode ? churn(&c, a, b) : alloc_loop(&c, a, b);
   ctx_finish(&c);
   return r == VK_SUCCESS ? 0 : 1;
}
