/* SPDX-License-Identifier: MIT */
/*
 * vk_capture_replay: the buffer-device-address capture/replay round trip a trace tool does,
 * against whatever Vulkan driver the loader picks. "Capture": allocate N memory objects with
 * VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_CAPTURE_REPLAY_BIT, bind a buffer to each and record its
 * opaque capture address and device address; free everything. "Replay": allocate them again
 * (in reverse order) at the recorded opaque addresses and check every buffer gets the same
 * device address. Also checks that asking for an address that is in use fails with
 * VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS.
 *
 *   vk_capture_replay [N]      (default 8)
 *
 * Prints one JSON line on success; exits non-zero with a message on stderr otherwise.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vulkan/vulkan.h>

#define CHECK(call)                                                                      \
   do {                                                                                  \
      VkResult r_ = (call);                                                              \
      if (r_ != VK_SUCCESS) {                                                            \
         fprintf(stderr, "vk_capture_replay: %s failed: VkResult %d (line %d)\n", #call,  \
                 r_, __LINE__);                                                          \
         exit(1);                                                                        \
      }                                                                                  \
   } while (0)

struct slot {
   VkDeviceMemory memory;
   VkBuffer buffer;
   uint64_t opaque;
   VkDeviceAddress address;
   VkDeviceSize size_B;
};

static VkDevice dev;
static uint32_t mem_type;

static VkResult
make(struct slot *s, uint64_t opaque)
{
   VkBufferCreateInfo bci = {
      .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
      .flags = VK_BUFFER_CREATE_DEVICE_ADDRESS_CAPTURE_REPLAY_BIT,
      .size = s->size_B,
      .usage = VK_BUFFER_USAGE_SHADER_DEVICE_ADDRESS_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
   };
   CHECK(vkCreateBuffer(dev, &bci, NULL, &s->buffer));
   VkMemoryOpaqueCaptureAddressAllocateInfo at = {
      .sType = VK_STRUCTURE_TYPE_MEMORY_OPAQUE_CAPTURE_ADDRESS_ALLOCATE_INFO,
      .opaqueCaptureAddress = opaque,
   };
   VkMemoryAllocateFlagsInfo flags = {
      .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_FLAGS_INFO,
      .pNext = opaque ? &at : NULL,
      .flags = VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_BIT |
               VK_MEMORY_ALLOCATE_DEVICE_ADDRESS_CAPTURE_REPLAY_BIT,
   };
   VkMemoryAllocateInfo mai = {
      .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
      .pNext = &flags,
      .allocationSize = s->size_B,
      .memoryTypeIndex = mem_type,
   };
   VkResult r = vkAllocateMemory(dev, &mai, NULL, &s->memory);
   if (r != VK_SUCCESS) {
      vkDestroyBuffer(dev, s->buffer, NULL);
      return r;
   }
   CHECK(vkBindBufferMemory(dev, s->buffer, s->memory, 0));
   VkDeviceMemoryOpaqueCaptureAddressInfo oi = {
      .sType = VK_STRUCTURE_TYPE_DEVICE_MEMORY_OPAQUE_CAPTURE_ADDRESS_INFO,
      .memory = s->memory,
   };
   s->opaque = vkGetDeviceMemoryOpaqueCaptureAddress(dev, &oi);
   VkBufferDeviceAddressInfo ai = {
      .sType = VK_STRUCTURE_TYPE_BUFFER_DEVICE_ADDRESS_INFO,
      .buffer = s->buffer,
   };
   s->address = vkGetBufferDeviceAddress(dev, &ai);
   return VK_SUCCESS;
}

static void
release(struct slot *s)
{
   vkDestroyBuffer(dev, s->buffer, NULL);
   vkFreeMemory(dev, s->memory, NULL);
}

int
main(int argc, char **argv)
{
   unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 8;
   VkInstance instance;
   VkApplicationInfo app = {
      .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
      .apiVersion = VK_API_VERSION_1_2,
   };
   VkInstanceCreateInfo ici = {
      .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
      .pApplicationInfo = &app,
   };
   CHECK(vkCreateInstance(&ici, NULL, &instance));
   uint32_t count = 1;
   VkPhysicalDevice pdev;
   VkResult er = vkEnumeratePhysicalDevices(instance, &count, &pdev);
   if ((er != VK_SUCCESS && er != VK_INCOMPLETE) || count == 0) {
      fprintf(stderr, "vk_capture_replay: no Vulkan device\n");
      return 1;
   }
   VkPhysicalDeviceVulkan12Features f12 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
   };
   VkPhysicalDeviceFeatures2 f2 = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
      .pNext = &f12,
   };
   vkGetPhysicalDeviceFeatures2(pdev, &f2);
   if (!f12.bufferDeviceAddressCaptureReplay) {
      fprintf(stderr, "vk_capture_replay: bufferDeviceAddressCaptureReplay not supported\n");
      return 2;
   }
   VkPhysicalDeviceMemoryProperties mp;
   vkGetPhysicalDeviceMemoryProperties(pdev, &mp);
   mem_type = 0;
   for (uint32_t i = 0; i < mp.memoryTypeCount; i++) {
      if (mp.memoryTypes[i].propertyFlags & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) {
         mem_type = i;
         break;
      }
   }
   float prio = 1.0f;
   VkDeviceQueueCreateInfo qci = {
      .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
      .queueCount = 1,
      .pQueuePriorities = &prio,
   };
   VkPhysicalDeviceVulkan12Features want = {
      .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
      .bufferDeviceAddress = VK_TRUE,
      .bufferDeviceAddressCaptureReplay = VK_TRUE,
   };
   VkDeviceCreateInfo dci = {
      .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
      .pNext = &want,
      .queueCreateInfoCount = 1,
      .pQueueCreateInfos = &qci,
   };
   CHECK(vkCreateDevice(pdev, &dci, NULL, &dev));

   struct slot *cap = calloc(n, sizeof(*cap));
   struct slot *rep = calloc(n, sizeof(*rep));
   struct slot clash = { .size_B = 4096 };
   int failures = 0;
   for (unsigned i = 0; i < n; i++) {
      cap[i].size_B = 4096u << (i % 5);
      CHECK(make(&cap[i], 0));
   }
   /* An address in use is refused. */
   VkResult r = make(&clash, cap[0].opaque);
   if (r != VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS) {
      fprintf(stderr, "vk_capture_replay: a used address gave VkResult %d\n", r);
      failures++;
      if (r == VK_SUCCESS)
         release(&clash);
   }
   for (unsigned i = 0; i < n; i++)
      release(&cap[i]);
   for (unsigned i = n; i-- > 0;) {
      rep[i].size_B = cap[i].size_B;
      CHECK(make(&rep[i], cap[i].opaque));
      if (rep[i].address != cap[i].address) {
         fprintf(stderr, "vk_capture_replay: buffer %u at 0x%" PRIx64 ", captured at 0x%" PRIx64 "\n",
                 i, rep[i].address, cap[i].address);
         failures++;
      }
   }
   VkPhysicalDeviceProperties props;
   vkGetPhysicalDeviceProperties(pdev, &props);
   printf("{\"device\": \"%s\", \"buffers\": %u, \"first_address\": \"0x%" PRIx64 "\", "
          "\"replayed_at_same_address\": %s}\n",
          props.deviceName, n, n ? cap[0].address : 0, failures ? "false" : "true");
   for (unsigned i = 0; i < n; i++)
      release(&rep[i]);
   free(cap);
   free(rep);
   vkDestroyDevice(dev, NULL);
   vkDestroyInstance(instance, NULL);
   return failures ? 1 : 0;
}
